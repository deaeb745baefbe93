//! `status`: a lock is held when one owner holds its key on a majority of nodes.

use redis::AsyncCommands;

use super::quorum::{no_majority, on_all, quorum};
use super::RedlockBackend;
use crate::backend::redis::{given_name, lock_key, name_of, scan_pattern, CONNECT_TIMEOUT};
use crate::backend::{LockState, LockStatus};
use crate::error::{Error, Result};
use crate::name::LockKey;

pub(super) async fn status(
    backend: &RedlockBackend,
    namespace: &str,
    keys: &[LockKey],
) -> Result<Vec<LockStatus>> {
    let n = backend.nodes.len();
    let mut wanted: Vec<Vec<u8>> = if keys.is_empty() {
        let pattern = scan_pattern(namespace);
        let listed = on_all(&backend.nodes, CONNECT_TIMEOUT, |mut c| {
            let pattern = pattern.clone();
            async move {
                let mut found = Vec::new();
                let mut iter: redis::AsyncIter<Vec<u8>> = c.scan_match(pattern).await?;
                while let Some(item) = iter.next_item().await {
                    found.push(item?);
                }
                Ok(found)
            }
        })
        .await;
        let errors: Vec<&Error> = listed.iter().filter_map(|r| r.as_ref().err()).collect();
        if n - errors.len() < quorum(n) {
            return Err(no_majority("listing locks", &errors, n));
        }
        listed.into_iter().flatten().flatten().collect()
    } else {
        keys.iter().map(lock_key).collect()
    };
    wanted.sort();
    wanted.dedup();
    let mut out = Vec::new();
    for k in wanted {
        let answers = on_all(&backend.nodes, CONNECT_TIMEOUT, |mut c| {
            let k = k.clone();
            async move {
                redis::pipe()
                    .get(&k)
                    .cmd("PTTL")
                    .arg(&k)
                    .query_async::<(Option<Vec<u8>>, i64)>(&mut c)
                    .await
            }
        })
        .await;
        let errors: Vec<&Error> = answers.iter().filter_map(|r| r.as_ref().err()).collect();
        if n - errors.len() < quorum(n) {
            return Err(no_majority("reading a lock", &errors, n));
        }
        // Held when one owner holds the key on a majority of nodes.
        let owners: Vec<(&Vec<u8>, i64)> = answers
            .iter()
            .filter_map(|a| match a {
                Ok((Some(o), p)) => Some((o, *p)),
                _ => None,
            })
            .collect();
        let holder = owners.iter().find_map(|(o, _)| {
            let on: Vec<i64> = owners
                .iter()
                .filter(|(x, _)| x == o)
                .map(|(_, p)| *p)
                .collect();
            (on.len() >= quorum(n)).then(|| {
                let ttl = on.iter().copied().filter(|p| *p >= 0).min();
                let mut h = format!(
                    "{} on {}/{n} nodes",
                    crate::backend::owner::describe_owner(o),
                    on.len()
                );
                if let Some(ttl) = ttl {
                    h.push_str(&format!(" ttl {ttl}ms"));
                }
                h
            })
        });
        let name = given_name(keys, &k).or_else(|| name_of(namespace, &k));
        let resource = String::from_utf8_lossy(&k).into_owned();
        match holder {
            Some(h) => out.push(LockStatus::new(name, resource, LockState::Held, Some(h))),
            None if keys.is_empty() => {}
            None => out.push(LockStatus::new(name, resource, LockState::Free, None)),
        }
    }
    Ok(out)
}
