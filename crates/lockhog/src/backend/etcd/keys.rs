//! The etcd keys of a lock: `lockhog/<namespace>/<name>/<lease id in hex>-<n>`, one per holder
//! or waiter (`n` tells apart the entries of one session lease); for a foreign resource,
//! `<prefix>/<lease id in hex>` as etcd's own `concurrency.Mutex` (and so `etcdctl lock
//! <prefix>`) writes them.

use crate::backend::bad_resource;
use crate::error::Result;
use crate::name::{percent_encode, LockKey, MAX_NAME_BYTES};

/// The first segment of every key lockhog writes.
pub(super) const ROOT: &str = "lockhog";

/// A namespace or name as one key segment: every byte as it is, except `%` and `/`, which are
/// percent-encoded so that a segment never contains the separator (the lock `a` must not see
/// the queue of the lock `a/b` when it lists its own by prefix).
fn segment(text: &str) -> String {
    percent_encode(text, |b| b != b'%' && b != b'/')
}

/// The prefix of every lock of a namespace: `lockhog/<namespace>/`.
pub(super) fn namespace_prefix(namespace: &str) -> String {
    format!("{ROOT}/{}/", segment(namespace))
}

/// The lock's resource: `lockhog/<namespace>/<name>`, what `hold` and `status` print; a
/// foreign resource's prefix as it was given.
pub(super) fn resource(key: &LockKey) -> String {
    if let Some(prefix) = key.foreign_resource() {
        return prefix.to_string();
    }
    format!(
        "{}{}",
        namespace_prefix(key.namespace()),
        segment(key.name().as_str())
    )
}

/// A foreign resource on etcd: the prefix that `etcdctl lock <prefix>` and etcd's
/// `concurrency.NewMutex(session, prefix)` lock, of 1 to [`MAX_NAME_BYTES`] bytes.
pub(super) fn parse_resource(resource: &str) -> Result<String> {
    if resource.is_empty() || resource.len() > MAX_NAME_BYTES {
        return Err(bad_resource(
            resource,
            &format!(
                "the prefix of `etcdctl lock <prefix>` (etcd's concurrency mutex), \
                 1 to {MAX_NAME_BYTES} bytes"
            ),
        ));
    }
    Ok(resource.to_string())
}

/// The prefix of the lock's queue: `<resource>/`.
pub(super) fn queue_prefix(key: &LockKey) -> Vec<u8> {
    format!("{}/", resource(key)).into_bytes()
}

/// The key of one holder or waiter: `<resource>/<lease id as 16 hex digits>-<n in hex>`,
/// `n` telling apart the entries of one session lease on one name (0 but for a locker that
/// queues twice on it at once); for a
/// foreign resource, the lease id in hex without leading zeros, as Go's `%x` in etcd's
/// `concurrency.Mutex` writes it (`n` unused: one entry per lease there).
pub(super) fn entry_key(key: &LockKey, lease: i64, n: u64) -> Vec<u8> {
    entry_key_in(queue_prefix(key), key, lease, n)
}

/// A reader's key: `<resource>/read/<lease id as 16 hex digits>-<n in hex>` (see
/// [`shared`](super::shared)).
pub(super) fn reader_key(key: &LockKey, lease: i64, n: u64) -> Vec<u8> {
    let mut prefix = queue_prefix(key);
    prefix.extend_from_slice(super::shared::READ.as_bytes());
    entry_key_in(prefix, key, lease, n)
}

fn entry_key_in(mut k: Vec<u8>, key: &LockKey, lease: i64, n: u64) -> Vec<u8> {
    let id = match key.foreign_resource() {
        Some(_) => format!("{lease:x}"),
        None => format!("{lease:016x}-{n:x}"),
    };
    k.extend_from_slice(id.as_bytes());
    k
}

/// A queue entry's key split into the lock's resource and its name (decoded), when `key` is one
/// of `namespace`'s.
pub(super) fn parse_entry(namespace: &str, key: &[u8]) -> Option<(String, String)> {
    let prefix = namespace_prefix(namespace);
    let rest = std::str::from_utf8(key.strip_prefix(prefix.as_bytes())?).ok()?;
    let (name, entry) = rest.rsplit_once('/')?;
    // A reader's key is one segment deeper.
    let name = name.strip_suffix("/read").unwrap_or(name);
    // `<lease>-<n>`, or `<lease>` alone as lockhog wrote it before session leases.
    let (lease, n) = entry.split_once('-').unwrap_or((entry, "0"));
    let hex = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    if name.contains('/') || !hex(lease, 16..=16) || !hex(n, 1..=16) {
        return None;
    }
    let decoded = crate::name::percent_decode(name)?;
    Some((format!("{prefix}{name}"), decoded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::LockName;

    fn key(ns: &str, name: &str) -> LockKey {
        LockKey::new(ns, LockName::new(name).unwrap())
    }

    #[test]
    fn layout() {
        let k = key("lockhog", "nightly report");
        assert_eq!(resource(&k), "lockhog/lockhog/nightly report");
        assert_eq!(
            entry_key(&k, 0x1a2b, 10),
            b"lockhog/lockhog/nightly report/0000000000001a2b-a"
        );
        assert_eq!(resource(&key("a/b", "c/d%")), "lockhog/a%2Fb/c%2Fd%25");
        // The names a and a/b never share a queue.
        assert!(!entry_key(&key("n", "a/b"), 1, 0).starts_with(&queue_prefix(&key("n", "a"))));
        let nul = key("n", "x\0y é");
        assert_eq!(resource(&nul).as_bytes(), "lockhog/n/x\0y é".as_bytes());
    }

    #[test]
    fn a_foreign_prefix_is_etcds_mutex_layout() {
        let k = LockKey::for_resource("app", parse_resource("jobs/nightly").unwrap()).unwrap();
        assert_eq!(resource(&k), "jobs/nightly");
        assert_eq!(queue_prefix(&k), b"jobs/nightly/");
        assert_eq!(entry_key(&k, 0x1a2b, 3), b"jobs/nightly/1a2b");
        for bad in [String::new(), "p".repeat(MAX_NAME_BYTES + 1)] {
            let err = parse_resource(&bad).unwrap_err().to_string();
            assert!(
                err.contains("the prefix of `etcdctl lock <prefix>`"),
                "{err}"
            );
        }
    }

    #[test]
    fn entries_parse_back() {
        let k = key("app", "a/b é");
        let e = entry_key(&k, 7, 0x12);
        assert_eq!(
            parse_entry("app", &e),
            Some((resource(&k), "a/b é".to_string()))
        );
        assert_eq!(
            parse_entry("app", &reader_key(&k, 7, 1)),
            Some((resource(&k), "a/b é".to_string()))
        );
        let before_sessions = b"lockhog/app/x/0000000000000007";
        assert!(parse_entry("app", before_sessions).is_some());
        assert_eq!(parse_entry("app", b"lockhog/app/x/0000000000000007-"), None);
        assert_eq!(
            parse_entry("app", b"lockhog/app/x/0000000000000007-g"),
            None
        );
        assert_eq!(parse_entry("other", &e), None);
        assert_eq!(parse_entry("app", b"lockhog/app/x/notalease"), None);
        assert_eq!(parse_entry("app", b"lockhog/app/x"), None);
    }
}
