//! The Redis keys of a lock, its release channel and its namespace's fencing counter (see
//! [the module docs](super)): the same for `redis://` and on every `redlock://` node.

use std::borrow::Cow;
use std::io::Write;

use crate::backend::bad_resource;
use crate::error::Result;
use crate::name::{percent_encode, LockKey, MAX_NAME_BYTES};

pub(crate) fn namespace_part(namespace: &str) -> String {
    percent_encode(namespace, keep_in_namespace)
}

fn keep_in_namespace(b: u8) -> bool {
    b != b'%' && b != b':'
}

/// [`namespace_part`], borrowed when nothing in it needs encoding (the common case).
fn namespace_bytes(namespace: &str) -> Cow<'_, [u8]> {
    if namespace.bytes().all(keep_in_namespace) {
        Cow::Borrowed(namespace.as_bytes())
    } else {
        Cow::Owned(namespace_part(namespace).into_bytes())
    }
}

/// Writes `NS:kind:NAME` (a key of a named lock) into `out`, without building it first.
pub(crate) fn write_key(out: &mut dyn Write, key: &LockKey, kind: &str) {
    // Writing into memory does not fail.
    let _ = out
        .write_all(&namespace_bytes(key.namespace()))
        .and_then(|()| out.write_all(b":"))
        .and_then(|()| out.write_all(kind.as_bytes()))
        .and_then(|()| out.write_all(b":"))
        .and_then(|()| out.write_all(key.name().as_str().as_bytes()));
}

/// Writes the Redis key of a lock into `out`: [`lock_key`], without building it first.
pub(crate) fn write_lock_key(out: &mut dyn Write, key: &LockKey) {
    match key.foreign_resource() {
        // Writing into memory does not fail.
        Some(res) => drop(out.write_all(res.as_bytes())),
        None => write_key(out, key, "lock"),
    }
}

/// Writes the namespace's fencing counter into `out`: [`fence_key`], without building it.
pub(crate) fn write_fence_key(out: &mut dyn Write, namespace: &str) {
    // Writing into memory does not fail.
    let _ = out
        .write_all(&namespace_bytes(namespace))
        .and_then(|()| out.write_all(b":fence"));
}

fn key_with(key: &LockKey, kind: &str) -> Vec<u8> {
    let mut k =
        Vec::with_capacity(key.namespace().len() + kind.len() + key.name().as_str().len() + 2);
    write_key(&mut k, key, kind);
    k
}

/// The Redis key of a lock: `NS:lock:NAME`, or a foreign resource's key as it was given.
pub(crate) fn lock_key(key: &LockKey) -> Vec<u8> {
    match key.foreign_resource() {
        Some(res) => res.as_bytes().to_vec(),
        None => key_with(key, "lock"),
    }
}

/// The name of the asked-for key whose Redis key is `k` (a foreign resource's is the
/// resource itself, under no namespace).
pub(crate) fn given_name(keys: &[LockKey], k: &[u8]) -> Option<String> {
    keys.iter()
        .find(|key| lock_key(key) == k)
        .map(|key| key.name().as_str().to_string())
}

/// A foreign resource on Redis: any key of 1 to [`MAX_NAME_BYTES`] bytes, taken verbatim
/// (`report` for redis-py's `Lock("report")`, `lock:report` for python-redis-lock's).
pub(crate) fn parse_resource(resource: &str) -> Result<String> {
    if resource.is_empty() || resource.len() > MAX_NAME_BYTES {
        return Err(bad_resource(
            resource,
            &format!("a Redis key of 1 to {MAX_NAME_BYTES} bytes, taken verbatim"),
        ));
    }
    Ok(resource.to_string())
}

/// A lock's RESOURCE: its Redis key (under Redlock, the same key on every node).
pub(crate) fn resource(key: &LockKey) -> String {
    String::from_utf8_lossy(&lock_key(key)).into_owned()
}

/// The pub/sub channel a release of the lock is published on: `NS:released:NAME`. Empty for
/// a foreign resource: other programs publish nothing, so its waiters poll, and its release
/// publishes nothing.
pub(crate) fn release_channel(key: &LockKey) -> Vec<u8> {
    match key.foreign_resource() {
        Some(_) => Vec::new(),
        None => key_with(key, "released"),
    }
}

/// The namespace's fencing counter for a named lock; `None` for a foreign resource, which
/// gets no token (nothing is written beside the other program's key).
pub(crate) fn fence_of(key: &LockKey) -> Option<Vec<u8>> {
    key.foreign_resource()
        .is_none()
        .then(|| fence_key(key.namespace()))
}

/// The companion key of a named lock that says when its holder acquired it:
/// `NS:since:NAME`, holding `<server ms> <owner>` (the owner, so that a stale companion of an
/// earlier holder never counts for a later one), with the lock key's expiry. `None` for a
/// foreign resource, whose acquisition time nobody records.
pub(crate) fn since_key(key: &LockKey) -> Option<Vec<u8>> {
    key.foreign_resource()
        .is_none()
        .then(|| key_with(key, "since"))
}

/// The sorted set of a lock's shared holders: `NS:readers:NAME`, each member an owner scored
/// by its lease's expiry in server milliseconds.
pub(crate) fn readers_key(key: &LockKey) -> Vec<u8> {
    key_with(key, "readers")
}

/// The sorted set of a lock's waiting writers: `NS:waiting:NAME`, each member a waiter id
/// scored by the expiry of its announcement; new readers stay out while it is not empty.
pub(crate) fn waiting_key(key: &LockKey) -> Vec<u8> {
    key_with(key, "waiting")
}

/// The namespace's fencing counter: `NS:fence`.
pub(crate) fn fence_key(namespace: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(namespace.len() + 6);
    write_fence_key(&mut k, namespace);
    k
}

/// The `SCAN MATCH` pattern of every lock key of the namespace.
pub(crate) fn scan_pattern(namespace: &str) -> Vec<u8> {
    scan_pattern_of(namespace, "lock")
}

/// The `SCAN MATCH` pattern of every key of `kind` (`lock`, `readers`) of the namespace.
pub(crate) fn scan_pattern_of(namespace: &str, kind: &str) -> Vec<u8> {
    let mut p = String::new();
    for c in namespace_part(namespace).chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    format!("{p}:{kind}:*").into_bytes()
}

/// The lock name of a key of `namespace`, when it is one.
pub(crate) fn name_of(namespace: &str, key: &[u8]) -> Option<String> {
    name_of_kind(namespace, "lock", key)
}

/// What every key of `kind` (`lock`, `readers`) of `namespace` starts with: `NS:kind:`.
pub(crate) fn prefix(namespace: &str, kind: &str) -> Vec<u8> {
    format!("{}:{kind}:", namespace_part(namespace)).into_bytes()
}

/// The lock name of a key of `kind` (`lock`, `readers`) of `namespace`, when it is one.
pub(crate) fn name_of_kind(namespace: &str, kind: &str, key: &[u8]) -> Option<String> {
    let name = key.strip_prefix(&prefix(namespace, kind)[..])?;
    String::from_utf8(name.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::LockName;

    fn key(ns: &str, name: &str) -> LockKey {
        LockKey::new(ns, LockName::new(name).unwrap())
    }

    #[test]
    fn keys_are_readable_and_distinct() {
        assert_eq!(lock_key(&key("lockhog", "a b")), b"lockhog:lock:a b");
        assert_eq!(fence_key("lockhog"), b"lockhog:fence");
        assert_eq!(release_channel(&key("app", "x")), b"app:released:x");
        // A namespace with `:` cannot alias another namespace's names.
        assert_ne!(
            lock_key(&key("a:lock:b", "c")),
            lock_key(&key("a", "b:lock:c"))
        );
        assert_eq!(lock_key(&key("a:b", "c")), b"a%3Ab:lock:c");
        assert_eq!(fence_key("a%b:c"), b"a%25b%3Ac:fence");
        assert_eq!(release_channel(&key("a%", "x")), b"a%25:released:x");
        assert_eq!(
            name_of("lockhog", b"lockhog:lock:with\0nul").as_deref(),
            Some("with\0nul")
        );
        assert_eq!(scan_pattern("a*b"), b"a\\*b:lock:*");
        assert_eq!(scan_pattern_of("a", "readers"), b"a:readers:*");
        let k = key("app", "x y");
        assert_eq!(since_key(&k).unwrap(), b"app:since:x y");
        assert_eq!(readers_key(&k), b"app:readers:x y");
        assert_eq!(waiting_key(&k), b"app:waiting:x y");
        assert_eq!(
            name_of_kind("app", "readers", b"app:readers:x y").as_deref(),
            Some("x y")
        );
    }

    #[test]
    fn a_foreign_key_is_verbatim_with_no_channel_or_counter() {
        let k = LockKey::for_resource("app", parse_resource("lock:a b").unwrap()).unwrap();
        assert_eq!(lock_key(&k), b"lock:a b");
        assert!(release_channel(&k).is_empty());
        assert_eq!(fence_of(&k), None);
        assert_eq!(since_key(&k), None);
        assert_eq!(fence_of(&key("app", "x")), Some(b"app:fence".to_vec()));
        for bad in [String::new(), "k".repeat(MAX_NAME_BYTES + 1)] {
            let err = parse_resource(&bad).unwrap_err().to_string();
            assert!(err.contains("a Redis key of 1 to 1024 bytes"), "{err}");
        }
    }
}
