//! etcd handoffs: a waiter whose predecessor is the queue's head holds when that key is
//! deleted, without another look — but only while its own key is still there; and the time it
//! holds since, written after the handoff, reaches its key.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use etcd_client::{Client, Compare, CompareOp, EventType, KeyValue, Txn, TxnOp, WatchOptions};
use etcd_support::{bounded, lockers, queue, raw, unique, wait_queue_len, BOUND};
use lockhog::{Error, Locker};

/// Deletes `keys` in one transaction: at one revision, as a lease that carried them all would.
async fn delete_at_once(raw: &Client, keys: &[&KeyValue]) {
    let txn = Txn::new()
        .when(
            keys.iter()
                .map(|kv| {
                    Compare::create_revision(kv.key(), CompareOp::Equal, kv.create_revision())
                })
                .collect::<Vec<_>>(),
        )
        .and_then(
            keys.iter()
                .map(|kv| TxnOp::delete(kv.key(), None))
                .collect::<Vec<_>>(),
        );
    assert!(raw.clone().txn(txn).await.unwrap().succeeded());
}

fn place_lost(got: &Result<lockhog::LockGuard, Error>) -> bool {
    matches!(got, Err(Error::Backend { message, .. }) if message.contains("place in the lock's queue was lost"))
}

/// Holder and waiter are the whole queue (the waiter's watch covers both keys): both keys go
/// at one revision. The waiter must not take the head's deletion for its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_alone_behind_the_head_gets_no_lock_when_its_key_goes_with_the_head() {
    let url = etcd_url!();
    let [a, b] = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("handoff-alone");
    let holder = a.lock(&name).try_acquire().await.unwrap();
    let resource = holder.resource().to_string();
    let waiter = tokio::spawn(b.lock(&name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 2).await;
    let keys = queue(&raw, &resource).await;
    delete_at_once(&raw, &[&keys[0], &keys[1]]).await;
    let got = bounded("the waiter", waiter).await.unwrap();
    assert!(place_lost(&got), "{got:?}");
    wait_queue_len(&raw, &resource, 0).await;
    assert!(!holder.release().await.unwrap());
}

/// A longer queue (the waiter behind the head watches the head only, then reads): the head and
/// the first waiter's key go at once; the first waiter gets no lock, the second one holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_behind_the_head_gets_no_lock_when_its_key_goes_with_the_head() {
    let url = etcd_url!();
    let [a, b, c] = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("handoff-queue");
    let holder = a.lock(&name).try_acquire().await.unwrap();
    let resource = holder.resource().to_string();
    let first = tokio::spawn(b.lock(&name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 2).await;
    let second = tokio::spawn(c.lock(&name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 3).await;
    let keys = queue(&raw, &resource).await;
    delete_at_once(&raw, &[&keys[0], &keys[1]]).await;
    let got = bounded("the first waiter", first).await.unwrap();
    assert!(place_lost(&got), "{got:?}");
    let next = bounded("the second waiter", second).await.unwrap().unwrap();
    assert!(next.fencing_token() > holder.fencing_token());
    assert!(next.release().await.unwrap());
    assert!(!holder.release().await.unwrap());
}

/// After a handoff, the new holder's key comes to say since when it holds (what `steal_after`
/// reads), though the handoff did not wait for that write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_by_handoff_gets_its_time_written() {
    let url = etcd_url!();
    let [a, b]: [Locker; 2] = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("handoff-time");
    let holder = a.lock(&name).try_acquire().await.unwrap();
    let resource = holder.resource().to_string();
    let waiter = tokio::spawn(b.lock(&name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 2).await;
    assert!(holder.release().await.unwrap());
    let next = bounded("the waiter", waiter).await.unwrap().unwrap();
    let kv = queue(&raw, &resource).await.remove(0);
    assert_eq!(kv.create_revision() as u64, next.fencing_token().unwrap());
    // An owner value has three parts, a holder's a fourth: the time.
    let timed = |v: &[u8]| v.iter().filter(|&&b| b == b'/').count() == 3;
    if !timed(kv.value()) {
        bounded("the holder's time", async {
            let options = WatchOptions::new().with_start_revision(kv.mod_revision() + 1);
            let mut watch = raw.clone().watch(kv.key(), Some(options)).await.unwrap();
            while let Some(resp) = watch.message().await.unwrap() {
                let put = resp
                    .events()
                    .iter()
                    .find(|e| e.event_type() == EventType::Put);
                if let Some(e) = put {
                    assert!(timed(e.kv().unwrap().value()), "{:?}", e.kv());
                    return;
                }
            }
            panic!("the watch ended");
        })
        .await;
    }
    assert!(next.release().await.unwrap());
}
