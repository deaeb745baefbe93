//! A waiter's wake-up when the key it waited on, the queue's head, is deleted: our key is
//! first from then on, as long as it is still there, and we hold the lock without another
//! round of consensus. Since when we hold is written in the background, off the handoff's path.
//!
//! Why: a key older than ours cannot be created after ours (create revisions only grow), so
//! once every key that was older than ours at our last look is gone, none is; the head is the
//! only older key when it is also the key just before ours. Whether ours is still there (our
//! lease may have run out, or someone deleted it): when the two keys were the whole queue, the
//! watch covered both and saw that (see [`wait_deleted`](super::queue::wait_deleted));
//! otherwise one read served by the member it reaches checks it. That read may lag behind the
//! cluster, but only ever shows an older state: one where our key was already first is one
//! where it still is (older keys never come back), and one where it was not yet sends us to
//! the full look.

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};
use tokio::time::timeout;

use super::connect::{call, ATTEMPT_TIMEOUT};
use super::queue::Entry;
use super::steal::holder_value;

/// Whether our key is first in the queue (by create revision) as the member that answers
/// sees it. `false` also when the read fails: the full look that follows retries, or reports.
pub(super) async fn first_is_ours(client: &Client, prefix: &[u8], me: &Entry) -> bool {
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(
            etcd_client::SortTarget::Create,
            etcd_client::SortOrder::Ascend,
        )
        .with_limit(1)
        .with_keys_only()
        .with_serializable();
    let mut c = client.clone();
    match timeout(ATTEMPT_TIMEOUT, c.get(prefix, Some(options))).await {
        Ok(Ok(resp)) => resp
            .kvs()
            .first()
            .is_some_and(|kv| kv.key() == me.key.as_slice() && kv.create_revision() == me.rev),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "reading the queue's head failed; looking again");
            false
        }
        Err(_) => false,
    }
}

/// Writes the time into our key's value, as a holder's (see [`steal`](super::steal)), from a
/// task on `runtime`: only while the key is still the one we created, so a write that arrives
/// after our release (or after the key was deleted and made again) changes nothing. Until
/// it lands, a waiter that may steal sees a head without a time, which it never steals.
pub(super) fn say_holding(
    client: &Client,
    me: &Entry,
    owner: &[u8],
    runtime: &tokio::runtime::Handle,
) {
    let txn = Txn::new()
        .when([Compare::create_revision(
            me.key.clone(),
            CompareOp::Equal,
            me.rev,
        )])
        .and_then([TxnOp::put(
            me.key.clone(),
            holder_value(owner),
            Some(PutOptions::new().with_ignore_lease()),
        )]);
    let client = client.clone();
    runtime.spawn(async move {
        let written = call("saying since when we hold", || {
            let mut c = client.clone();
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
        .await;
        if let Err(e) = written {
            tracing::debug!(error = %e, "writing a holder's time failed; it is never stolen");
        }
    });
}
