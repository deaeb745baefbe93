//! A held etcd lock: its key on the locker's session lease, and the release.

use etcd_client::Client;

use super::connect::{call, SCHEME};
use super::queue::{Entry, Place};
use crate::error::{Error, Result};
use tokio::task::JoinHandle;

/// A held etcd lock: our key (and its create revision, the fencing token) and its place on
/// the session lease, which keeps it alive and watches it.
pub struct EtcdHeld {
    pub(super) client: Client,
    pub(super) entry: Entry,
    pub(super) place: Place,
    pub(super) runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for EtcdHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdHeld")
            .field("key", &String::from_utf8_lossy(&self.entry.key))
            .field("rev", &self.entry.rev)
            .field("lease", &format_args!("{:016x}", self.place.session.lease))
            .finish_non_exhaustive()
    }
}

impl EtcdHeld {
    /// Deletes our key (see [`leave`]: no one but our session makes a key of that name, and it
    /// does so again only once this delete is answered). `Ok(true)` when our key was still
    /// there. The session lease stays, for the locker's other and later locks.
    pub(super) async fn release(self) -> Result<bool> {
        self.delete_in_task(None)
            .await
            .map_err(|e| Error::backend(SCHEME, format!("releasing a lock: {e}")))?
    }

    /// Gives the lock back from `Drop`: the same delete, in a task on the runtime
    /// captured at acquire.
    pub(super) fn release_on_drop(self) {
        let failed = "deleting a dropped lock's key failed; it goes with the session lease";
        drop(self.delete_in_task(Some(failed)));
    }

    /// The delete, in a task of its own, so that a release dropped in flight still makes it:
    /// the session lease that carries the key lives on. A failure is logged with `failed`,
    /// when given.
    fn delete_in_task(self, failed: Option<&'static str>) -> JoinHandle<Result<bool>> {
        // Our own delete is no loss to report.
        self.place.session.unhold(self.place.id);
        let EtcdHeld {
            client,
            mut place,
            runtime,
            ..
        } = self;
        runtime.spawn(async move {
            let deleted = leave(&client, &mut place).await;
            drop(place);
            if let (Err(e), Some(failed)) = (&deleted, failed) {
                tracing::debug!(error = %e, "{failed}");
            }
            deleted
        })
    }
}

/// Deletes our key at `place`, by key alone: no one else writes a key with our lease id in
/// it, and our session makes it again only once this delete is answered (the key is claimed
/// until then). A delete sent more than once (an attempt failed or went unanswered) might
/// still be applied late, after the key was made again: its key is then never used again (the
/// claim is kept). `true` when the key was there.
pub(super) async fn leave(client: &Client, place: &mut Place) -> Result<bool> {
    let mut sent = 0;
    let deleted = call("leaving the lock's queue", || {
        sent += 1;
        let mut c = client.clone();
        let key = place.key.clone();
        async move { c.delete(key, None).await }
    })
    .await;
    if sent > 1 || deleted.is_err() {
        place.keep_claim_for_good();
    }
    Ok(deleted?.deleted() > 0)
}
