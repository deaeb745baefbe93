//! What a held Redis key owns besides its connection: the lease renewed by
//! compare-and-`PEXPIRE`, the compare-and-delete release, and the undo of an acquire dropped
//! before its answer arrived.

use std::time::Duration;

use tokio::time::Instant;

use super::{backend_err, scripts, ttl_ms, Conn};
use crate::backend::lease::Lease;
use crate::error::Result;

/// The lease of one key on one server: renewed by compare-and-`PEXPIRE`.
pub(super) struct KeyLease {
    pub(super) conn: Conn,
    pub(super) key: Vec<u8>,
    pub(super) owner: Vec<u8>,
    pub(super) ttl: Duration,
}

impl Lease for KeyLease {
    async fn renew(&self) -> Result<Option<Instant>> {
        let started = Instant::now();
        let mut conn = self.conn.clone();
        let extended: i64 = scripts::EXTEND
            .key(&self.key)
            .arg(&self.owner)
            .arg(ttl_ms(self.ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| backend_err("renewing a lease", e))?;
        Ok((extended == 1).then(|| started + self.ttl))
    }
}

/// Compare-and-delete of `key` if it holds `owner`; true when deleted.
pub(super) async fn release_key(
    conn: &mut Conn,
    key: &[u8],
    owner: &[u8],
    channel: &[u8],
) -> redis::RedisResult<bool> {
    let deleted: i64 = scripts::RELEASE
        .key(key)
        .arg(owner)
        .arg(channel)
        .invoke_async(conn)
        .await?;
    Ok(deleted == 1)
}

/// Deletes our key in the background if the acquire that may have set it is dropped before
/// its answer arrived. Commands on one connection run in order, so the delete runs after the
/// `SET` it undoes.
pub(super) struct Undo {
    pub(super) conn: Option<Conn>,
    pub(super) key: Vec<u8>,
    pub(super) owner: Vec<u8>,
    pub(super) channel: Vec<u8>,
}

impl Undo {
    pub(super) fn disarm(mut self) {
        self.conn = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return; // the lease expires
        };
        let (key, owner, channel) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.owner),
            std::mem::take(&mut self.channel),
        );
        rt.spawn(async move {
            let _ = release_key(&mut conn, &key, &owner, &channel).await;
        });
    }
}
