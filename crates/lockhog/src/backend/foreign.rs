//! Locks another program names in the store's own terms: the forms each backend takes, and
//! the refusal of a resource a backend cannot lock (see "Locking a resource another program
//! names" in the [module docs](super)).

use crate::error::{Error, Result};

/// The backends that lock resources other programs name, with the form each expects: what
/// the default [`Backend::parse_resource`](super::Backend::parse_resource) names when it
/// refuses.
pub const RESOURCE_FORMS: &str = "file: (an absolute path), postgres: (advisory:<i64> or \
     advisory:<i32>,<i32>), mysql: (a GET_LOCK name of 1 to 64 characters), \
     redis:/rediss:/redlock: (a Redis key, verbatim), memcached: (a memcached key), \
     etcd:/etcds: (the prefix of `etcdctl lock`)";

/// The [`Error::InvalidOption`] for a resource a backend cannot lock, saying what it
/// `expected`. The library puts the backend's name in front (`the file backend cannot lock
/// ...`).
pub fn bad_resource(resource: &str, expected: &str) -> Error {
    Error::InvalidOption {
        reason: format!("cannot lock the resource {resource:?}: expected {expected}"),
    }
}

/// `result` of a backend's [`Backend::parse_resource`](super::Backend::parse_resource), its
/// refusal prefixed with the backend's name.
pub(crate) fn scoped_parse(scheme: &str, result: Result<String>) -> Result<String> {
    result.map_err(|e| match e {
        Error::InvalidOption { reason } => Error::InvalidOption {
            reason: format!("the {scheme} backend {reason}"),
        },
        other => other,
    })
}
