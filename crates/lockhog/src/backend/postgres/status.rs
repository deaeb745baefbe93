//! `status`: held advisory locks from `pg_locks`, with their holders from
//! `pg_stat_activity`, and lock names where the lock is ours; for foreign resources, the lock
//! in either key space.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::key::Advisory;
use super::local::NAMES;
use super::PostgresBackend;
use crate::backend::{LockState, LockStatus};
use crate::error::Result;
use crate::name::LockKey;

/// Granted advisory locks in this database: with no keys asked for, every one of the bigint
/// form (`objsubid = 1`, lockhog's); else those of `$1` in the bigint form and of `$2` in the
/// two-int form (`objsubid = 2`). The key is rebuilt from the two 32-bit halves the server
/// stores, as [`Advisory::packed`] packs them.
const HELD: &str = "\
SELECT (l.classid::bigint << 32) | l.objid::bigint AS key, l.objsubid = 2, l.mode, l.pid, \
       coalesce(a.application_name, ''), \
       coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') \
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
WHERE l.locktype = 'advisory' AND l.granted \
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
  AND (cardinality($1::bigint[]) + cardinality($2::bigint[]) = 0 AND l.objsubid = 1 \
       OR l.objsubid = 1 AND (l.classid::bigint << 32) | l.objid::bigint = ANY($1) \
       OR l.objsubid = 2 AND (l.classid::bigint << 32) | l.objid::bigint = ANY($2)) \
ORDER BY 2, 1, 4";

struct Holder {
    pid: i32,
    shared: bool,
    application: String,
    connected: String,
}

pub(super) async fn status(
    backend: &PostgresBackend,
    namespace: &str,
    keys: &[LockKey],
) -> Result<Vec<LockStatus>> {
    let wanted: Vec<Advisory> = keys.iter().map(Advisory::of).collect();
    let in_space = |space: usize| -> Vec<i64> {
        let keys = wanted.iter().filter(|k| k.space() == space);
        keys.map(|k| k.packed()).collect()
    };
    let (one, two) = (in_space(0), in_space(1));
    let conn = backend.pool.session().await?;
    let rows = {
        let _busy = conn.busy();
        conn.client
            .query(HELD, &[&one, &two])
            .await
            .map_err(|e| backend.pool.connector.error("cannot read pg_locks", e))?
    };
    let mut held: BTreeMap<Advisory, Vec<Holder>> = BTreeMap::new();
    for row in rows {
        let (packed, two): (i64, bool) = (row.get(0), row.get(1));
        let key = if two {
            Advisory::Two((packed >> 32) as i32, packed as i32)
        } else {
            Advisory::One(packed)
        };
        let mode: String = row.get(2);
        held.entry(key).or_default().push(Holder {
            pid: row.get(3),
            shared: mode == "ShareLock",
            application: row.get(4),
            connected: row.get(5),
        });
    }
    let ours = |key: Advisory| -> Option<(String, SystemTime)> {
        let names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        names
            .get(&backend.local_key(key))
            .filter(|e| e.namespace == namespace)
            .map(|e| (e.name.clone(), e.since))
    };
    let line = |key: Advisory, name: Option<String>| {
        let holders = held.get(&key);
        let since = ours(key).map(|(_, s)| s);
        let holder = holders.map(|hs| {
            hs.iter()
                .map(|h| describe(h, since))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let state = if holders.is_some() {
            LockState::Held
        } else {
            LockState::Free
        };
        LockStatus::new(name, key.to_string(), state, holder)
    };
    if !keys.is_empty() {
        return Ok(keys
            .iter()
            .zip(&wanted)
            .map(|(k, key)| line(*key, Some(k.name().to_string())))
            .collect());
    }
    Ok(held
        .keys()
        .map(|key| line(*key, ours(*key).map(|(n, _)| n)))
        .collect())
}

/// `pid 4242 lockhog shared since 2024-05-01T12:00:00Z`: the pid, the application name, the
/// mode when shared, and since when — the acquire time for this process's locks, else the
/// holder's session start (the lock is at most that old).
fn describe(h: &Holder, ours_since: Option<SystemTime>) -> String {
    let mut s = format!("pid {}", h.pid);
    if !h.application.is_empty() {
        s.push(' ');
        s.push_str(&h.application);
    }
    if h.shared {
        s.push_str(" shared");
    }
    match ours_since {
        Some(t) => {
            s.push_str(" held since ");
            s.push_str(&utc(t));
        }
        None if !h.connected.is_empty() => {
            s.push_str(" connected since ");
            s.push_str(&h.connected);
        }
        None => {}
    }
    s
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a system time (proleptic Gregorian, UTC).
fn utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dates() {
        let at = |s| utc(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
