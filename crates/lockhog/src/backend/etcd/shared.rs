//! Shared (reader) locks, as etcd's `RWMutex` recipe queues them: a reader's key is
//! `<resource>/read/<lease>-<n>`, in the same queue as the writers' (every other key under
//! `<resource>/`, the exclusive locks' keys), ordered by create revision with them.
//!
//! A reader holds once no *writer* key is older than its own, and waits for the youngest such
//! writer's deletion; a writer (an exclusive lock, see [`queue`](super::queue)) holds once no
//! key at all is older, readers included. So readers that come after a waiting writer queue
//! behind it: a stream of readers never starves a writer, and both are served first come,
//! first served. A reader's key carries no time: readers are never stolen (`steal_after`).

use etcd_client::{
    Client, Compare, CompareOp, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse,
};

use super::connect::call;
use super::queue::{may_create, send_join, Entry, Sends, Turn};
use crate::error::Result;

/// The segment under a lock's queue prefix that holds its readers' keys.
pub(super) const READ: &str = "read/";

/// The key ranges of the writers of the queue `prefix` (`<resource>/`): all of it but
/// `<prefix>read/`, as `[start, end)` pairs.
fn writer_ranges(prefix: &[u8]) -> [(Vec<u8>, Vec<u8>); 2] {
    let mut read = prefix.to_vec();
    read.extend_from_slice(READ.as_bytes());
    let after_read = prefix_end(&read);
    [(prefix.to_vec(), read), (after_read, prefix_end(prefix))]
}

/// The first key after every key that starts with `p` (etcd's range end of a prefix; `p`
/// always ends in `/`, so the last byte can be raised).
fn prefix_end(p: &[u8]) -> Vec<u8> {
    let mut end = p.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// The youngest writer key older than `rev` in each writer range.
fn older_writers(prefix: &[u8], rev: i64) -> Vec<TxnOp> {
    writer_ranges(prefix)
        .into_iter()
        .map(|(start, end)| {
            let options = GetOptions::new()
                .with_range(end)
                .with_max_create_revision(rev - 1)
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_limit(1)
                .with_keys_only();
            TxnOp::get(start, Some(options))
        })
        .collect()
}

/// The youngest of the keys the reads of [`older_writers`] found.
fn youngest(ops: &[TxnOpResponse]) -> Option<&KeyValue> {
    ops.iter()
        .filter_map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first(),
            _ => None,
        })
        .max_by_key(|kv| kv.create_revision())
}

/// Creates a reader's key (if it does not exist yet) and, in the same transaction, checks
/// whether any writer is queued: when none is, the reader holds.
pub(super) async fn join(
    client: &Client,
    prefix: &[u8],
    key: &[u8],
    owner: &[u8],
    lease: i64,
    sends: &Sends,
) -> Result<(Entry, bool)> {
    let no_writer = writer_ranges(prefix)
        .into_iter()
        // An empty range compares as one key of create revision 0.
        .map(|(start, end)| Compare::create_revision(start, CompareOp::Equal, 0).with_range(end));
    let mut when: Vec<Compare> = may_create(key).into();
    when.extend(no_writer);
    let put = TxnOp::put(key, owner, Some(PutOptions::new().with_lease(lease)));
    // Queued behind a writer, or a retry that finds our key: the look that follows decides.
    let txn = Txn::new()
        .when(when)
        .and_then([put.clone()])
        .or_else([TxnOp::txn(
            Txn::new()
                .when(may_create(key))
                .and_then([put])
                .or_else([TxnOp::get(key, None)]),
        )]);
    let (entry, no_writer, _) = send_join(
        client,
        "joining the lock's queue as a reader",
        key,
        txn,
        sends,
    )
    .await?;
    Ok((entry, no_writer))
}

/// A reader's look: the youngest writer older than our key, checking in the same transaction
/// that our key is still there.
pub(super) async fn turn(client: &Client, prefix: &[u8], me: &Entry) -> Result<Turn> {
    let txn = Txn::new()
        .when([Compare::create_revision(
            me.key.clone(),
            CompareOp::Equal,
            me.rev,
        )])
        .and_then(older_writers(prefix, me.rev));
    let resp = call("looking for our turn", || {
        let mut c = client.clone();
        let txn = txn.clone();
        async move { c.txn(txn).await }
    })
    .await?;
    if !resp.succeeded() {
        return Err(super::queue::place_lost());
    }
    let revision = resp.header().map_or(0, |h| h.revision());
    let ops = resp.op_responses();
    Ok(match youngest(&ops) {
        None => Turn::Ours,
        Some(writer) => Turn::After {
            key: writer.key().to_vec(),
            revision,
            head: None,
            alone: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_are_the_queue_but_its_readers() {
        let [(a, b), (c, d)] = writer_ranges(b"lockhog/ns/x/");
        assert_eq!(
            (a.as_slice(), b.as_slice()),
            (&b"lockhog/ns/x/"[..], &b"lockhog/ns/x/read/"[..])
        );
        assert_eq!(
            (c.as_slice(), d.as_slice()),
            (&b"lockhog/ns/x/read0"[..], &b"lockhog/ns/x0"[..])
        );
        // A writer's key (hex lease) falls in the first range, a reader's in neither.
        let w = b"lockhog/ns/x/00000000000000ab-1".as_slice();
        assert!(w >= a.as_slice() && w < b.as_slice());
        let r = b"lockhog/ns/x/read/00000000000000ab-2".as_slice();
        assert!(r >= b.as_slice() && r < c.as_slice());
    }
}
