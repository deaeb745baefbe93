//! `status`: `IS_USED_LOCK` for named locks, the server's list of user locks where it keeps
//! one (MariaDB's `metadata_lock_info` plugin, MySQL's `performance_schema`), this
//! process's own locks, and each holder from `information_schema.PROCESSLIST`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use mysql_async::{Params, Value};

use super::name::lock_string_of;
use super::session::{Failure, Session};
use super::{MysqlBackend, NAMES};
use crate::backend::{LockState, LockStatus};
use crate::error::{Error, Result};
use crate::name::LockKey;

/// MariaDB with the `metadata_lock_info` plugin: user locks and their connection ids.
const MARIADB_LOCKS: &str =
    "SELECT TABLE_SCHEMA, THREAD_ID FROM information_schema.METADATA_LOCK_INFO \
     WHERE LOCK_TYPE = 'User lock' AND TABLE_SCHEMA LIKE 'lh:%'";

/// MySQL 5.7+ (and MariaDB 10.5+ with the instrument on): granted user locks.
const MYSQL_LOCKS: &str = "SELECT m.OBJECT_NAME, t.PROCESSLIST_ID \
     FROM performance_schema.metadata_locks m \
     JOIN performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID \
     WHERE m.OBJECT_TYPE = 'USER LEVEL LOCK' AND m.LOCK_STATUS = 'GRANTED' \
     AND m.OBJECT_NAME LIKE 'lh:%'";

struct Ours {
    name: String,
    namespace: String,
    since: SystemTime,
}

pub(super) async fn status(
    backend: &MysqlBackend,
    namespace: &str,
    keys: &[LockKey],
) -> Result<Vec<LockStatus>> {
    let session = backend.pool.session().await?;
    let fail = |f: Failure| {
        let c = &backend.pool.connector;
        Error::backend(
            super::SCHEME,
            format!(
                "cannot read lock status ({}): {}",
                c.redacted,
                c.scrub(f.message().to_string())
            ),
        )
    };
    let ours: HashMap<Arc<str>, Ours> = {
        let names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        names
            .iter()
            .filter(|((server, _), _)| *server == backend.server)
            .map(|((_, lock), h)| {
                let o = Ours {
                    name: h.name.clone(),
                    namespace: h.namespace.clone(),
                    since: h.since,
                };
                (lock.clone(), o)
            })
            .collect()
    };
    // lock string -> name we know it by, when we know it
    let mut wanted: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut holders: HashMap<String, u64> = HashMap::new();
    if keys.is_empty() {
        for (lock, o) in &ours {
            let name = (o.namespace == namespace).then(|| o.name.clone());
            wanted.insert(lock.to_string(), name);
        }
        for (lock, id) in server_list(&session).await {
            wanted.entry(lock.clone()).or_insert_with(|| None);
            holders.insert(lock, id);
        }
    } else {
        for k in keys {
            wanted.insert(lock_string_of(k), Some(k.name().to_string()));
        }
    }
    // The holder of every lock the list did not name one for.
    let ask: Vec<&String> = wanted
        .keys()
        .filter(|l| !holders.contains_key(*l))
        .collect();
    for lock in ask {
        let rows = session
            .rows(
                "SELECT IS_USED_LOCK(?)".into(),
                Some(Params::Positional(vec![Value::from(lock.as_str())])),
            )
            .await
            .map_err(fail)?;
        if let Some(id) = rows
            .first()
            .and_then(|r| r.get::<Option<u64>, _>(0))
            .flatten()
        {
            holders.insert(lock.clone(), id);
        }
    }
    let who = describe_holders(&session, holders.values().copied().collect()).await;
    let mut out = Vec::new();
    for (lock, name) in wanted {
        let holder = holders.get(&lock).map(|id| {
            let mut s = who
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("connection {id}"));
            if let Some(o) = ours.get(lock.as_str()) {
                let held = SystemTime::now()
                    .duration_since(o.since)
                    .map_or(0, |d| d.as_secs());
                s.push_str(&format!(
                    " (this process, pid {}, held {held}s)",
                    std::process::id()
                ));
            }
            s
        });
        let state = if holder.is_some() {
            LockState::Held
        } else {
            LockState::Free
        };
        out.push(LockStatus::new(name, lock, state, holder));
    }
    Ok(out)
}

/// Every `lh:` user lock the server can list, with its holder's connection id; empty when it
/// keeps no such list.
async fn server_list(session: &Session) -> Vec<(String, u64)> {
    for sql in [MARIADB_LOCKS, MYSQL_LOCKS] {
        match session.rows(sql.into(), None).await {
            Ok(rows) if !rows.is_empty() => {
                return rows
                    .iter()
                    .filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?)))
                    .collect();
            }
            Ok(_) => {}
            Err(f) => tracing::debug!("mysql status: {sql}: {}", f.message()),
        }
    }
    Vec::new()
}

/// `connection 42 lockhog@127.0.0.1:51234 (Sleep 3s)` per connection id, from
/// `information_schema.PROCESSLIST`.
async fn describe_holders(session: &Session, mut ids: Vec<u64>) -> HashMap<u64, String> {
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return HashMap::new();
    }
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let sql = format!(
        "SELECT ID, USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST WHERE ID IN ({})",
        list.join(",")
    );
    let rows = match session.rows(sql, None).await {
        Ok(rows) => rows,
        Err(f) => {
            tracing::debug!("mysql status: PROCESSLIST: {}", f.message());
            return HashMap::new();
        }
    };
    rows.iter()
        .filter_map(|r| {
            let id: u64 = r.get(0)?;
            let user: Option<String> = r.get(1)?;
            let host: Option<String> = r.get(2)?;
            let command: Option<String> = r.get(3)?;
            let time: Option<i64> = r.get(4)?;
            Some((
                id,
                format!(
                    "connection {id} {}@{} ({} {}s)",
                    user.unwrap_or_default(),
                    host.unwrap_or_default(),
                    command.unwrap_or_default(),
                    time.unwrap_or_default()
                ),
            ))
        })
        .collect()
}
