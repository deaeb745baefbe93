//! Lock names to the strings given to `GET_LOCK`: at most 64 characters, readable, and the
//! same on every machine; and the `GET_LOCK` strings other programs use, taken as they are.

use crate::backend::bad_resource;
use crate::error::Result;
use crate::name::{LockKey, LockName};

/// `GET_LOCK` names are at most 64 characters on MySQL 5.7 and later.
pub const MAX_LOCK_STRING: usize = 64;

/// How many characters of the name the readable part keeps.
const READABLE_CHARS: usize = 24;

/// How many bytes of [`LockKey::digest`] the string carries, as hex (128 bits).
const DIGEST_BYTES: usize = 16;

/// Checks a `GET_LOCK` string another program uses: 1 to 64 characters, any of them.
pub(crate) fn parse(resource: &str) -> Result<String> {
    let chars = resource.chars().count();
    if chars == 0 || chars > MAX_LOCK_STRING {
        let expected =
            format!("a GET_LOCK name of 1 to {MAX_LOCK_STRING} characters (this one has {chars})");
        return Err(bad_resource(resource, &expected));
    }
    Ok(resource.to_string())
}

/// The string given to `GET_LOCK` for `key`: a foreign resource as it is, else lockhog's
/// string for the name (below).
pub(crate) fn lock_string_of(key: &LockKey) -> String {
    match key.foreign_resource() {
        Some(res) => res.to_string(),
        None => named_lock_string(key),
    }
}

/// The string lockhog gives to `GET_LOCK` for `key`:
/// `lh:<readable>:<digest>`, where `<readable>` is the first 24 characters of the name with
/// every character outside `[A-Za-z0-9._-]` replaced by `_`, and `<digest>` the first 16 bytes
/// of [`LockKey::digest`] (SHA-256 of the namespace's byte length as a little-endian `u64`,
/// the namespace, then the name) as 32 lower-case hex digits. At most 60 characters.
fn named_lock_string(key: &LockKey) -> String {
    // Built by hand: this runs twice on every acquire (the lock and its resource), and
    // formatting each digit through `fmt` cost more than the rest of it.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(MAX_LOCK_STRING);
    s.push_str("lh:");
    s.extend(key.name().as_str().chars().take(READABLE_CHARS).map(|c| {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '_'
        }
    }));
    s.push(':');
    for b in &key.digest()[..DIGEST_BYTES] {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    debug_assert!(s.len() <= MAX_LOCK_STRING);
    s
}

/// The string lockhog gives to `GET_LOCK` for the lock `name` in `namespace` (lockhog's
/// default namespace is [`crate::DEFAULT_NAMESPACE`]); `hold` and `status` print it as the
/// RESOURCE. See the [module docs](super) for the rule and the same in SQL.
///
/// # Examples
///
/// ```
/// let s = lockhog::backend::mysql::lock_string("lockhog", "nightly report").unwrap();
/// assert!(s.starts_with("lh:nightly_report:"));
/// assert!(s.len() <= 64);
/// ```
///
/// # Errors
///
/// [`crate::Error::InvalidName`] for an empty name or one over [`crate::MAX_NAME_BYTES`].
pub fn lock_string(namespace: &str, name: &str) -> Result<String> {
    Ok(lock_string_of(&LockKey::new(
        namespace,
        LockName::new(name)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_readable_and_distinct() {
        let long = "y".repeat(1024);
        let s = lock_string("lockhog", &long).unwrap();
        assert_eq!(s.chars().count(), 3 + 24 + 1 + 32);
        assert!(s.len() <= MAX_LOCK_STRING);
        let u = lock_string("lockhog", &"é".repeat(512)).unwrap();
        assert!(u.starts_with("lh:________________________:"), "{u}");
        assert!(u.is_ascii());
        // Same readable part, different digests.
        assert_ne!(
            lock_string("lockhog", "a b").unwrap(),
            lock_string("lockhog", "a_b").unwrap()
        );
        assert_ne!(
            lock_string("lockhog", "job").unwrap(),
            lock_string("other", "job").unwrap()
        );
    }

    #[test]
    fn foreign_strings_are_taken_as_they_are() {
        for good in [
            "import",
            "a b 'c'; DROP TABLE x",
            &"é".repeat(64),
            "lh:x:00",
        ] {
            assert_eq!(parse(good).unwrap(), good);
        }
        for bad in [String::new(), "x".repeat(65), "é".repeat(65)] {
            let e = parse(&bad).unwrap_err();
            assert!(e.to_string().contains("a GET_LOCK name of 1 to 64"), "{e}");
        }
    }

    #[test]
    fn pinned() {
        // Two versions of lockhog must agree on which MySQL lock a name means (the SQL in the
        // module docs is checked against this in tests/mysql_interop.rs).
        assert_eq!(
            lock_string("lockhog", "nightly-report").unwrap(),
            "lh:nightly-report:bb00d8d57849c13fae7de278fad1820f"
        );
    }
}
