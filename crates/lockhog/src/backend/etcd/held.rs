//! A held etcd lock: its key on the locker's session lease, and the release.

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};

use super::connect::{call, SCHEME};
use super::queue::{Entry, Place};
use crate::backend::lease::release_in_background;
use crate::error::{Error, Result};

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
        // Our own delete is no loss to report.
        self.place.session.unhold(self.place.id);
        let EtcdHeld {
            client,
            entry,
            place,
            runtime,
        } = self;
        // In a task of its own, so that a release dropped in flight still deletes the key:
        // the session lease that carries it lives on.
        let deleting = runtime.spawn(async move {
            let deleted = delete_ours(&client, &entry).await;
            drop(place);
            deleted
        });
        deleting
            .await
            .map_err(|e| Error::backend(SCHEME, format!("releasing a lock: {e}")))?
    }

    /// Gives the lock back from `Drop`: the same guarded delete, in a task on the runtime
    /// captured at acquire.
    pub(super) fn release_on_drop(self) {
        self.place.session.unhold(self.place.id);
        let failed = "deleting a dropped lock's key failed; it goes with the session lease";
        let EtcdHeld {
            client,
            entry,
            place,
            runtime,
        } = self;
        release_in_background(&runtime, failed, async move {
            let deleted = delete_ours(&client, &entry).await;
            drop(place);
            deleted
        });
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
