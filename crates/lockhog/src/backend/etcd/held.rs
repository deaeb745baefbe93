//! A held etcd lock: its key and lease, the tasks that keep the lease alive and watch the key,
//! and the release.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, Txn, TxnOp, WatchFilterType, WatchOptions,
};
use tokio::task::JoinHandle;
use tokio::time::sleep;

use super::connect::call;
use super::lease::revoke;
use super::queue::Entry;
use crate::backend::lease::{release_in_background, Renewal};
use crate::backend::LostSender;
use crate::error::Result;

/// A held etcd lock: our key (and its create revision, the fencing token), our lease, the
/// renewal task and the task watching our key.
pub struct EtcdHeld {
    pub(super) client: Client,
    pub(super) entry: Entry,
    pub(super) lease: i64,
    pub(super) renewal: Renewal,
    pub(super) watch: JoinHandle<()>,
    /// Set before our own release deletes the key, so the watch does not report it as lost.
    pub(super) releasing: Arc<AtomicBool>,
    pub(super) runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for EtcdHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdHeld")
            .field("key", &String::from_utf8_lossy(&self.entry.key))
            .field("rev", &self.entry.rev)
            .field("lease", &format_args!("{:016x}", self.lease))
            .finish_non_exhaustive()
    }
}

impl EtcdHeld {
    /// Stops both background tasks; nothing reports a loss after this.
    fn stop(&mut self) {
        self.releasing.store(true, Ordering::SeqCst);
        self.renewal.stop();
        self.watch.abort();
    }

    /// Deletes our key, only if it is still the one we created (same key, same create
    /// revision: a retry after a lost answer, or a release after our lease ran out and someone
    /// else queued, never deletes another holder's key). `Ok(true)` when our key was still
    /// there. The lease, which no longer carries a key, is revoked in the background: the lock
    /// is free once the delete is applied, and the caller need not wait one more round trip.
    pub(super) async fn release(mut self) -> Result<bool> {
        self.stop();
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.entry.key.clone(),
                CompareOp::Equal,
                self.entry.rev,
            )])
            .and_then([TxnOp::delete(self.entry.key.clone(), None)]);
        let deleted = call("releasing a lock", || {
            let mut c = self.client.clone();
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
        .await;
        self.revoke_in_background();
        Ok(deleted?.succeeded())
    }

    /// Gives the lock back from `Drop`: revokes the lease (which deletes our key and nobody
    /// else's) in a task on the runtime captured at acquire.
    pub(super) fn release_on_drop(mut self) {
        self.stop();
        self.revoke_in_background();
    }

    fn revoke_in_background(&self) {
        let (client, lease) = (self.client.clone(), self.lease);
        let failed = "revoking a released lock's lease failed; it expires";
        release_in_background(&self.runtime, failed, async move {
            revoke(&client, lease).await
        });
    }
}

/// Watches our key from just after its creation and reports the lock lost when it is deleted
/// by anyone but our release (an expired lease, `etcdctl del`, a revoked lease). A broken
/// watch is opened again from the same revision, so no deletion is missed; when that revision
/// was compacted, a read decides.
pub(super) fn watch_own_key(
    client: Client,
    entry: Entry,
    lost: LostSender,
    releasing: Arc<AtomicBool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut from = entry.rev + 1;
        let mut pause = Duration::from_millis(10);
        loop {
            let options = WatchOptions::new()
                .with_start_revision(from)
                .with_filters([WatchFilterType::NoPut]);
            let mut c = client.clone();
            if let Ok(mut stream) = c.watch(entry.key.clone(), Some(options)).await {
                while let Ok(Some(resp)) = stream.message().await {
                    if resp
                        .events()
                        .iter()
                        .any(|e| e.event_type() == EventType::Delete)
                    {
                        if !releasing.load(Ordering::SeqCst) {
                            lost.mark_lost(format!(
                                "the lock's key {} was deleted (its lease expired or was \
                                 revoked, or someone deleted it)",
                                String::from_utf8_lossy(&entry.key)
                            ));
                        }
                        return;
                    }
                    if resp.canceled() {
                        // Compacted past `from`: is our key still the one we created?
                        match still_there(&client, &entry).await {
                            Some((true, revision)) => from = revision + 1,
                            Some((false, _)) => {
                                if !releasing.load(Ordering::SeqCst) {
                                    lost.mark_lost("the lock's key is gone");
                                }
                                return;
                            }
                            None => {}
                        }
                        break;
                    }
                    pause = Duration::from_millis(10);
                }
            }
            sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    })
}

/// Whether our key still exists with our create revision, and the revision of that read.
async fn still_there(client: &Client, entry: &Entry) -> Option<(bool, i64)> {
    let resp = call("reading our key", || {
        let mut c = client.clone();
        let key = entry.key.clone();
        async move { c.get(key, None).await }
    })
    .await
    .ok()?;
    let there = resp
        .kvs()
        .first()
        .is_some_and(|kv| kv.create_revision() == entry.rev);
    Some((there, resp.header().map_or(0, |h| h.revision())))
}
