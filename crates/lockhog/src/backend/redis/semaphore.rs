//! A semaphore's permit count on Redis: the key `NS:permits:NAME`, set once with `SET NX` by
//! the first user and compared by every later one. Its permits are slot locks (see
//! [`crate::backend::slots`]), ordinary leases of this backend, so a permit is renewed, lost
//! and crash-released exactly as a lock is. The count key has no expiry; delete it to change
//! the count once nobody uses the semaphore.

use redis::aio::ConnectionLike;

use super::backend_err;
use crate::backend::slots::count_mismatch;
use crate::error::{Error, Result};
use crate::name::LockKey;

/// The Redis key of a semaphore's count: `NS:permits:NAME`.
pub(crate) fn count_key(key: &LockKey) -> Vec<u8> {
    let mut k = format!("{}:permits:", super::keys::namespace_part(key.namespace())).into_bytes();
    k.extend_from_slice(key.name().as_str().as_bytes());
    k
}

/// Records `permits` as the count of `key` unless one is recorded, and returns the recorded
/// count (ours, when we were first).
pub(crate) async fn record(
    conn: &mut impl ConnectionLike,
    key: &LockKey,
    permits: u32,
) -> Result<u32> {
    let k = count_key(key);
    let mut pipe = redis::pipe();
    pipe.cmd("SET").arg(&k).arg(permits).arg("NX").ignore();
    pipe.cmd("GET").arg(&k);
    let (recorded,): (Option<String>,) = pipe
        .query_async(conn)
        .await
        .map_err(|e| backend_err("recording a semaphore's count", e))?;
    recorded
        .as_deref()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| Error::InvalidOption {
            reason: format!(
                "semaphore {:?} has an unusable permit count on this server",
                key.name().as_str()
            ),
        })
}

/// [`record`], refusing a count other than `permits`.
pub(crate) async fn check(
    conn: &mut impl ConnectionLike,
    key: &LockKey,
    permits: u32,
) -> Result<()> {
    match record(conn, key, permits).await? {
        recorded if recorded == permits => Ok(()),
        recorded => Err(count_mismatch(key, recorded, permits)),
    }
}
