//! `status` on one Redis server: the namespace's lock keys (an exclusive holder each) and
//! readers sets (the shared holders whose lease is live), or the asked-for locks.

use redis::AsyncCommands;

use super::keys::{name_of_kind, prefix, readers_key, scan_pattern_of};
use super::{backend_err, given_name, lock_key, Conn};
use crate::backend::owner::describe_owner;
use crate::backend::{LockState, LockStatus};
use crate::error::Result;
use crate::name::LockKey;

/// Every key of `kind` (`lock`, `readers`) of the namespace, sorted.
async fn scan(conn: &mut Conn, namespace: &str, kind: &str) -> Result<Vec<Vec<u8>>> {
    let mut found = Vec::new();
    let mut iter: redis::AsyncIter<Vec<u8>> = conn
        .scan_match(scan_pattern_of(namespace, kind))
        .await
        .map_err(|e| backend_err("listing locks", e))?;
    while let Some(item) = iter.next_item().await {
        found.push(item.map_err(|e| backend_err("listing locks", e))?);
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// A lock to look at: its key, its readers set (none for a foreign key) and its name.
type Look = (Vec<u8>, Option<Vec<u8>>, Option<String>);

/// The status of the asked-for `keys`, or of every held lock of the namespace when `keys` is
/// empty.
pub(super) async fn status(
    conn: &mut Conn,
    namespace: &str,
    keys: &[LockKey],
) -> Result<Vec<LockStatus>> {
    let locks: Vec<Look> = if keys.is_empty() {
        let (lock_prefix, readers_prefix) =
            (prefix(namespace, "lock"), prefix(namespace, "readers"));
        let held = scan(conn, namespace, "lock").await?;
        let mut out: Vec<_> = held
            .iter()
            .map(|k| (k.clone(), None, name_of_kind(namespace, "lock", k)))
            .collect();
        for r in scan(conn, namespace, "readers").await? {
            let Some(tail) = r.strip_prefix(&readers_prefix[..]) else {
                continue;
            };
            let lock = [&lock_prefix[..], tail].concat();
            // A name whose key is held too is shown once, with its exclusive holder.
            if !held.contains(&lock) {
                let name = name_of_kind(namespace, "readers", &r);
                out.push((lock, Some(r), name));
            }
        }
        out
    } else {
        keys.iter()
            .map(|key| {
                let readers = key.foreign_resource().is_none().then(|| readers_key(key));
                let lock = lock_key(key);
                let name = given_name(keys, &lock);
                (lock, readers, name)
            })
            .collect()
    };
    let mut out = Vec::with_capacity(locks.len());
    for (k, readers, name) in locks {
        let mut pipe = redis::pipe();
        pipe.get(&k).cmd("PTTL").arg(&k).cmd("TIME");
        let (owner, pttl, (secs, micros)): (Option<Vec<u8>>, i64, (u64, u64)) = pipe
            .query_async(conn)
            .await
            .map_err(|e| backend_err("reading a lock", e))?;
        let resource = String::from_utf8_lossy(&k).into_owned();
        if let Some(owner) = owner {
            let mut holder = describe_owner(&owner);
            if pttl >= 0 {
                holder.push_str(&format!(" ttl {pttl}ms"));
            }
            out.push(LockStatus::new(
                name,
                resource,
                LockState::Held,
                Some(holder),
            ));
            continue;
        }
        let now = secs * 1000 + micros / 1000;
        let shared: Vec<(Vec<u8>, f64)> = match &readers {
            Some(r) => conn
                .zrangebyscore_withscores(r, format!("({now}"), "+inf")
                .await
                .map_err(|e| backend_err("reading a lock's shared holders", e))?,
            None => Vec::new(),
        };
        if shared.is_empty() {
            out.push(LockStatus::new(name, resource, LockState::Free, None));
            continue;
        }
        let holders: Vec<String> = shared
            .iter()
            .map(|(owner, until)| {
                let left = (*until as u64).saturating_sub(now);
                format!("{} ttl {left}ms", describe_owner(owner))
            })
            .collect();
        let holder = format!("shared by {}: {}", holders.len(), holders.join(", "));
        out.push(LockStatus::new(
            name,
            resource,
            LockState::Held,
            Some(holder),
        ));
    }
    if keys.is_empty() {
        out.retain(|s| s.state == LockState::Held);
    }
    Ok(out)
}
