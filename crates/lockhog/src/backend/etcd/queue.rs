//! The queue of one lock: joining it, finding our turn, and waiting on our predecessor only.
//!
//! Every holder or waiter owns one key under the lock's queue prefix, attached to its
//! locker's session lease. The owner is the key with the smallest create revision; everyone
//! else waits for the key just before its own (the largest create revision below ours) to be
//! deleted, then looks again. A release or an expiry therefore wakes exactly one waiter, and waiters acquire in the
//! order their keys were created: first come, first served.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget,
    Txn, TxnOp, TxnOpResponse, WatchFilterType, WatchOptions,
};
use tokio::time::{sleep, timeout_at, Duration, Instant};

use super::connect::{call, SCHEME};
use super::session::Session;
use super::steal::{holder_value, Head};
use crate::error::{Error, Result};

/// Our place in a lock's queue.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// Our key.
    pub key: Vec<u8>,
    /// Its create revision: our place, and the fencing token once we hold the lock.
    pub rev: i64,
}

/// The key that a dropped acquire writes so that its join, if it reaches etcd only later,
/// creates nothing: `\0lockhog-cancelled/<our key>`, outside every queue.
pub(super) fn cancel_marker(key: &[u8]) -> Vec<u8> {
    let mut marker = b"\0lockhog-cancelled/".to_vec();
    marker.extend_from_slice(key);
    marker
}

/// Writes our key's cancel marker on the session lease: from then on no join of that key,
/// however late it reaches etcd, creates it.
pub(super) async fn mark_cancelled(client: &Client, place: &Place) -> Result<()> {
    let (marker, lease) = (cancel_marker(&place.key), place.session.lease);
    call("cancelling a join", || {
        let mut c = client.clone();
        let marker = marker.clone();
        async move {
            c.put(marker, "", Some(PutOptions::new().with_lease(lease)))
                .await
        }
    })
    .await
    .map(drop)
}

/// The compare every join makes: its acquire was not dropped.
fn not_cancelled(key: &[u8]) -> Compare {
    Compare::create_revision(cancel_marker(key), CompareOp::Equal, 0)
}

/// The compares of a join that creates our key: it is not there yet (a retry must not create
/// it twice), and the acquire was not dropped.
pub(super) fn may_create(key: &[u8]) -> [Compare; 2] {
    [
        Compare::create_revision(key, CompareOp::Equal, 0),
        not_cancelled(key),
    ]
}

/// The queue's first key, by create revision.
fn first() -> GetOptions {
    GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1)
}

/// The key of the first answer of `op`, when it is a read that found one.
fn first_key(op: Option<&TxnOpResponse>) -> Option<&KeyValue> {
    match op {
        Some(TxnOpResponse::Get(g)) => g.kvs().first(),
        _ => None,
    }
}

/// Creates our key (if it does not exist yet: a retried request must not create it twice)
/// and reads the queue's first key in the same transaction. Returns our entry and whether we
/// are first, i.e. hold the lock. When the queue is empty our key is a holder's from the
/// start, with the time in its value (see [`steal`](super::steal)); a waiter's has none.
pub(super) async fn join(
    client: &Client,
    prefix: &[u8],
    key: &[u8],
    owner: &[u8],
    lease: i64,
    sends: &Sends,
) -> Result<(Entry, bool)> {
    let with_lease = || Some(PutOptions::new().with_lease(lease));
    let queue_behind = Txn::new()
        .when(may_create(key))
        .and_then([
            TxnOp::put(key, owner, with_lease()),
            TxnOp::get(prefix, Some(first())),
        ])
        .or_else([TxnOp::get(key, None), TxnOp::get(prefix, Some(first()))]);
    let txn = Txn::new()
        // An empty range compares as one key of create revision 0.
        .when([
            Compare::create_revision(prefix, CompareOp::Equal, 0).with_prefix(),
            not_cancelled(key),
        ])
        .and_then([
            TxnOp::put(key, holder_value(owner), with_lease()),
            TxnOp::get(prefix, Some(first())),
        ])
        .or_else([TxnOp::txn(queue_behind)]);
    let (entry, _, ops) = send_join(client, "joining the lock's queue", key, txn, sends).await?;
    let head = first_key(ops.get(1)).map(|kv| kv.key().to_vec());
    Ok((entry, head.as_deref() == Some(key)))
}

/// What became of a join's attempts: how many were sent, and whether one was answered.
#[derive(Debug, Default)]
pub(super) struct Sends {
    count: AtomicU32,
    answered: AtomicBool,
}

impl Sends {
    /// Whether the join may still be applied by etcd later than its answer says: it was sent
    /// more than once (an attempt that failed or went unanswered may have reached etcd, and
    /// may yet), or sent and never answered.
    pub(super) fn uncertain(&self) -> bool {
        let sent = self.count.load(Ordering::SeqCst);
        sent > 1 || (sent == 1 && !self.answered.load(Ordering::SeqCst))
    }
}

/// A waiter's key vanished (its lease expired while etcd was out of reach, or someone deleted
/// it, or stole it).
pub(super) fn place_lost() -> Error {
    Error::backend(
        SCHEME,
        "our place in the lock's queue was lost while waiting (our lease expired or our key \
         was deleted)",
    )
}

/// Sends a join shaped `if C then [put ours, …] else [if ours is absent then [put ours, …]
/// else [get ours, …]]` (ours is absent unless this is a retry). Returns our entry, whether `C`
/// held, and the answers of the innermost branch that ran. Counts its attempts in `sends`.
pub(super) async fn send_join(
    client: &Client,
    doing: &str,
    key: &[u8],
    txn: Txn,
    sends: &Sends,
) -> Result<(Entry, bool, Vec<TxnOpResponse>)> {
    let resp = call(doing, || {
        sends.count.fetch_add(1, Ordering::SeqCst);
        let mut c = client.clone();
        let txn = txn.clone();
        async move { c.txn(txn).await }
    })
    .await?;
    sends.answered.store(true, Ordering::SeqCst);
    let revision = resp.header().map(|h| h.revision());
    let (rev, ops) = match resp.op_responses().first() {
        Some(TxnOpResponse::Txn(inner)) if !resp.succeeded() => {
            let ops = inner.op_responses();
            let rev = match inner.succeeded() {
                true => revision,
                false => first_key(ops.first()).map(KeyValue::create_revision),
            };
            (rev, ops)
        }
        _ => (revision, resp.op_responses()),
    };
    let rev = rev.ok_or_else(|| Error::backend(SCHEME, "joining the queue: malformed answer"))?;
    let entry = Entry {
        key: key.to_vec(),
        rev,
    };
    Ok((entry, resp.succeeded(), ops))
}

/// Where a waiter stands.
pub(super) enum Turn {
    /// No key before ours: we hold the lock (and our key says since when).
    Ours,
    /// The key we wait on, as of `revision`, and the queue's head (for a writer).
    After {
        key: Vec<u8>,
        revision: i64,
        head: Option<Head>,
        /// Whether that key and ours were the whole queue.
        alone: bool,
    },
}

/// Looks for the key just before ours, checking in the same transaction that ours is still
/// there (its lease may have expired while we waited, if etcd was out of reach for a ttl).
/// When no key is older than ours, the same transaction writes the time into our key's value:
/// we hold the lock from then on.
pub(super) async fn turn(client: &Client, prefix: &[u8], me: &Entry, owner: &[u8]) -> Result<Turn> {
    let before = GetOptions::new()
        .with_prefix()
        .with_max_create_revision(me.rev - 1)
        .with_sort(SortTarget::Create, SortOrder::Descend)
        .with_limit(1)
        .with_keys_only();
    let txn = Txn::new()
        .when([
            Compare::create_revision(me.key.clone(), CompareOp::Equal, me.rev),
            // Every key of the queue is ours or younger.
            Compare::create_revision(prefix, CompareOp::Greater, me.rev - 1).with_prefix(),
        ])
        .and_then([TxnOp::put(
            me.key.clone(),
            holder_value(owner),
            Some(PutOptions::new().with_ignore_lease()),
        )])
        .or_else([
            TxnOp::get(me.key.clone(), Some(GetOptions::new().with_keys_only())),
            TxnOp::get(prefix, Some(before)),
            TxnOp::get(prefix, Some(first())),
            TxnOp::get(
                prefix,
                Some(GetOptions::new().with_prefix().with_count_only()),
            ),
        ]);
    let resp = call("looking for our turn", || {
        let mut c = client.clone();
        let txn = txn.clone();
        async move { c.txn(txn).await }
    })
    .await?;
    if resp.succeeded() {
        return Ok(Turn::Ours);
    }
    let ops = resp.op_responses();
    if first_key(ops.first()).map(KeyValue::create_revision) != Some(me.rev) {
        return Err(place_lost());
    }
    let revision = resp.header().map_or(0, |h| h.revision());
    let count = match ops.get(3) {
        Some(TxnOpResponse::Get(g)) => g.count(),
        _ => 0,
    };
    match (first_key(ops.get(1)), first_key(ops.get(2))) {
        (Some(pred), Some(head)) => Ok(Turn::After {
            key: pred.key().to_vec(),
            revision,
            head: Some(Head::of(head)),
            alone: count == 2,
        }),
        // Between the compare and the reads nothing changes: a transaction is atomic.
        _ => Err(Error::backend(
            SCHEME,
            "looking for our turn: malformed answer",
        )),
    }
}

/// How a wait on the predecessor ended.
pub(super) enum Woken {
    /// It was deleted. `ours_kept`: the same watch covered our key, and saw no deletion of it
    /// up to then.
    Deleted { ours_kept: bool },
    /// The watch ended or could not start, or our key was deleted: look again.
    Look,
    /// The deadline passed.
    Deadline,
}

/// Waits until `pred` is deleted after `revision` (a watch from `revision + 1`, so a deletion
/// between our look and the watch is not missed), or until `deadline`. With `ours`, the watch
/// covers every key from the lower of the two to the higher (in key order): one watch sends
/// its events in the order they happened, so when `pred`'s deletion comes with none of ours
/// before it, our key was still there when `pred` went. The deletions of other keys in that
/// range are passed over.
pub(super) async fn wait_deleted(
    client: &Client,
    pred: &[u8],
    revision: i64,
    deadline: Option<Instant>,
    ours: Option<&[u8]>,
) -> Result<Woken> {
    let far = Instant::now() + Duration::from_secs(86400 * 365);
    let deadline = deadline.unwrap_or(far);
    let mut options = WatchOptions::new()
        .with_start_revision(revision + 1)
        .with_filters([WatchFilterType::NoPut]);
    let mut from = pred;
    if let Some(ours) = ours {
        from = pred.min(ours);
        let mut end = pred.max(ours).to_vec();
        end.push(0);
        options = options.with_range(end);
    }
    let mut c = client.clone();
    let mut stream = match timeout_at(deadline, c.watch(from, Some(options))).await {
        Err(_) => return Ok(Woken::Deadline),
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            // The look that follows retries across members, or reports the failure.
            tracing::debug!(error = %e, "cannot watch the predecessor; looking again");
            sleep(Duration::from_millis(10)).await;
            return Ok(Woken::Look);
        }
    };
    loop {
        match timeout_at(deadline, stream.message()).await {
            Err(_) => return Ok(Woken::Deadline),
            Ok(Ok(Some(resp))) => {
                let deleted = |key: &[u8]| {
                    resp.events().iter().any(|e| {
                        e.event_type() == EventType::Delete
                            && e.kv().is_some_and(|kv| kv.key() == key)
                    })
                };
                if ours.is_some_and(deleted) {
                    return Ok(Woken::Look);
                }
                if deleted(pred) {
                    return Ok(Woken::Deleted {
                        ours_kept: ours.is_some(),
                    });
                }
                if resp.canceled() {
                    return Ok(Woken::Look);
                }
            }
            Ok(Ok(None)) | Ok(Err(_)) => {
                tracing::debug!("the predecessor's watch ended; looking again");
                sleep(Duration::from_millis(10)).await;
                return Ok(Woken::Look);
            }
        }
    }
}

/// Our key in a lock's queue and the session lease it is on. The key is the session's claim
/// (see [`Session::claim`]), given back when this is dropped: after the key was deleted.
pub(super) struct Place {
    pub session: Arc<Session>,
    pub key: Vec<u8>,
    /// The session's number for this entry.
    pub id: u64,
    /// The claim is kept for good: a cancel marker of this key could not be deleted.
    keep_claim: bool,
    /// A join of this key may still reach etcd late (see [`Sends::uncertain`]): leaving writes
    /// the cancel marker first, and keeps it.
    pub join_uncertain: bool,
}

impl Place {
    /// `key`, claimed already.
    pub(super) fn new(session: Arc<Session>, key: Vec<u8>, id: u64) -> Self {
        Place {
            session,
            key,
            id,
            keep_claim: false,
            join_uncertain: false,
        }
    }
}

impl Place {
    /// The key is never used again (a delete of it may still arrive late).
    pub(super) fn keep_claim_for_good(&mut self) {
        self.keep_claim = true;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if !self.keep_claim {
            self.session.unclaim(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends(count: u32, answered: bool) -> Sends {
        Sends {
            count: AtomicU32::new(count),
            answered: AtomicBool::new(answered),
        }
    }

    #[test]
    fn a_join_is_uncertain_once_an_attempt_may_have_gone_unanswered() {
        assert!(
            !sends(0, false).uncertain(),
            "never sent: nothing can arrive"
        );
        assert!(!sends(1, true).uncertain(), "sent once and answered");
        assert!(sends(1, false).uncertain(), "sent once, no answer");
        assert!(
            sends(2, true).uncertain(),
            "the first attempt may still arrive"
        );
    }
}
