//! A held etcd lock: its key on the locker's session lease, and the release.

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};

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
    /// Deletes our key, only if it is still the one we created (same key, same create
    /// revision: a retry after a lost answer, or a release after our lease ran out and someone
    /// else queued, never deletes another holder's key). `Ok(true)` when our key was still
    /// there. The session lease stays, for the locker's other and later locks.
    pub(super) async fn release(self) -> Result<bool> {
        self.delete_in_task(None)
            .await
            .map_err(|e| Error::backend(SCHEME, format!("releasing a lock: {e}")))?
    }

    /// Gives the lock back from `Drop`: the same guarded delete, in a task on the runtime
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
            entry,
            place,
            runtime,
        } = self;
        runtime.spawn(async move {
            let deleted = delete_ours(&client, &entry).await;
            drop(place);
            if let (Err(e), Some(failed)) = (&deleted, failed) {
                tracing::debug!(error = %e, "{failed}");
            }
            deleted
        })
    }
}

/// Deletes `entry`'s key if it still has `entry`'s create revision; `true` when it did.
pub(super) async fn delete_ours(client: &Client, entry: &Entry) -> Result<bool> {
    let txn = Txn::new()
        .when([Compare::create_revision(
            entry.key.clone(),
            CompareOp::Equal,
            entry.rev,
        )])
        .and_then([TxnOp::delete(entry.key.clone(), None)]);
    let resp = call("releasing a lock", || {
        let mut c = client.clone();
        let txn = txn.clone();
        async move { c.txn(txn).await }
    })
    .await?;
    Ok(resp.succeeded())
}
