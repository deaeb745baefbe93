//! What a held Redis lock owns besides its connection: the lease renewed by a
//! compare-and-extend script, the compare-and-delete release, and the undo of an acquire
//! dropped before its answer arrived — for an exclusive holder (the lock key) and a shared
//! one (its member of the lock's readers set) alike.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{backend_err, scripts, shared, Conn};
use crate::backend::lease::Lease;
use crate::error::Result;

/// Where one acquisition lives on the server: the lock key with our owner value (exclusive),
/// or our owner as a member of the lock's readers set (shared). Shared by the guard, its
/// renewal and the undo of its acquire, so none of them copies the keys.
#[derive(Clone)]
pub(super) struct Hold(Arc<HoldKeys>);

pub(super) struct HoldKeys {
    /// The lock key, or the readers set when `shared`.
    pub(super) key: Vec<u8>,
    /// The lock's acquisition-time key, for an exclusive holder of a named lock.
    pub(super) since: Option<Vec<u8>>,
    pub(super) owner: Vec<u8>,
    /// The release channel (empty for a foreign resource: nobody listens).
    pub(super) channel: Vec<u8>,
    pub(super) shared: bool,
}

impl Hold {
    pub(super) fn new(keys: HoldKeys) -> Hold {
        Hold(Arc::new(keys))
    }
}

impl std::ops::Deref for Hold {
    type Target = HoldKeys;

    fn deref(&self) -> &HoldKeys {
        &self.0
    }
}

impl Hold {
    /// Gives the acquisition back if it is still ours; true when it was.
    pub(super) async fn release(&self, conn: &mut Conn) -> redis::RedisResult<bool> {
        let call = if self.shared {
            shared::release(&self.key, &self.owner, &self.channel)
        } else {
            scripts::release(&self.key, self.since.as_deref(), &self.owner, &self.channel)
        };
        let released: i64 = call.invoke(conn).await?;
        Ok(released == 1)
    }
}

/// The lease of one acquisition on one server, renewed while it is still ours.
pub(super) struct KeyLease {
    pub(super) conn: Conn,
    pub(super) hold: Hold,
    pub(super) ttl: Duration,
}

impl Lease for KeyLease {
    async fn renew(&self) -> Result<Option<Instant>> {
        let started = Instant::now();
        let mut conn = self.conn.clone();
        let h = &self.hold;
        let call = if h.shared {
            shared::extend(&h.key, &h.owner, self.ttl)
        } else {
            scripts::extend(&h.key, h.since.as_deref(), &h.owner, self.ttl)
        };
        let extended: i64 = call
            .invoke(&mut conn)
            .await
            .map_err(|e| backend_err("renewing a lease", e))?;
        Ok((extended == 1).then(|| started + self.ttl))
    }
}

/// Gives back in the background what an acquire dropped before its answer arrived may have
/// taken. Commands on one connection run in order, so the release runs after the acquire it
/// undoes.
pub(super) struct Undo {
    pub(super) conn: Option<Conn>,
    pub(super) hold: Hold,
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
        let hold = self.hold.clone();
        rt.spawn(async move {
            let _ = hold.release(&mut conn).await;
        });
    }
}
