//! etcd queues: waiters acquire in the order they joined (FIFO by create revision), and each is
//! woken by its predecessor only — a release wakes exactly one waiter.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use std::sync::{Arc, Mutex};

use etcd_support::{bounded, raw, unique, wait_queue_len, BOUND};
use lockhog::{Error, Locker};

const WAITERS: usize = 16;
const LOCKERS: usize = 4;

async fn lockers(url: &str) -> Vec<Locker> {
    let mut out = Vec::new();
    for _ in 0..LOCKERS {
        out.push(Locker::connect(url).await.unwrap());
    }
    out
}

/// 16 waiters over 4 connections, each confirmed in the queue (the queue's key count, seen
/// through a watch) before the next starts, acquire in exactly that order; and each of them
/// looked at the queue exactly three times (join, see its predecessor, see it gone): none was
/// woken by a release that was not its predecessor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_waiters_acquire_in_queue_order_each_woken_once() {
    let url = etcd_url!();
    let lockers = lockers(&url).await;
    assert!(lockers[0].capabilities().fair);
    let raw = raw(&url).await;
    let name = unique("fifo");
    let holder = lockers[0].lock(&name).try_acquire().await.unwrap();
    let resource = holder.resource().to_string();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..WAITERS {
        let req = lockers[i % LOCKERS].lock(&name).fair();
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let guard = req.wait_for(BOUND).await.expect("a waiter did not acquire");
            let attempts = guard.stats().attempts;
            order.lock().unwrap().push(i);
            assert!(guard.release().await.unwrap(), "waiter {i} lost its lock");
            attempts
        }));
        wait_queue_len(&raw, &resource, i + 2).await;
    }
    assert!(holder.release().await.unwrap());
    let mut attempts = Vec::new();
    for t in tasks {
        attempts.push(bounded("a waiter", t).await.expect("a waiter panicked"));
    }
    assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
    assert_eq!(
        attempts,
        vec![3; WAITERS],
        "each waiter looks at the queue when it joins, once to find its predecessor, and once \
         when that predecessor is gone"
    );
    wait_queue_len(&raw, &resource, 0).await;
}

/// A waiter in the middle that gives up (its acquire is dropped) leaves the queue; the one
/// behind it is woken by that departure, finds its new predecessor, and the order of the rest
/// holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_gives_up_hands_its_place_on() {
    let url = etcd_url!();
    let lockers = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("fifo-cancel");
    let holder = lockers[0].lock(&name).try_acquire().await.unwrap();
    let resource = holder.resource().to_string();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let req = lockers[i % LOCKERS].lock(&name);
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let guard = req.wait_for(BOUND).await.expect("a waiter did not acquire");
            order.lock().unwrap().push(i);
            let attempts = guard.stats().attempts;
            guard.release().await.unwrap();
            attempts
        }));
        wait_queue_len(&raw, &resource, i + 2).await;
    }
    // Waiter 1 gives up: its task is cancelled mid-wait; its key goes with its lease.
    tasks.remove(1).abort();
    wait_queue_len(&raw, &resource, 4).await;
    holder.release().await.unwrap();
    let mut attempts = Vec::new();
    for t in tasks {
        attempts.push(bounded("a waiter", t).await.expect("a waiter panicked"));
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 2, 3]);
    // Waiter 2 is woken by waiter 1 leaving and then by waiter 0's release (4 looks), or, when
    // waiter 0 came and went before waiter 2 handled the departure, finds itself first at that
    // one look (3). Nobody else looks more than its own 3 times: no thundering herd.
    assert!(
        matches!(attempts[..], [3, 3 | 4, 3]),
        "looks at the queue per waiter: {attempts:?}"
    );
}

/// A try while others wait does not jump the queue, and leaves no key behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_never_jumps_the_queue() {
    let url = etcd_url!();
    let lockers = lockers(&url).await;
    let raw = raw(&url).await;
    let name = unique("fifo-try");
    let holder = lockers[0].lock(&name).try_acquire().await.unwrap();
    let resource = holder.resource().to_string();
    let waiter = tokio::spawn(lockers[1].lock(&name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 2).await;
    let tried = lockers[2].lock(&name).try_acquire().await;
    assert!(matches!(tried, Err(Error::Contended { .. })), "{tried:?}");
    wait_queue_len(&raw, &resource, 2).await;
    let holder_token = holder.fencing_token();
    holder.release().await.unwrap();
    let next = bounded("the waiter", waiter).await.unwrap().unwrap();
    assert!(next.fencing_token() > holder_token);
    let tried = lockers[2].lock(&name).try_acquire().await;
    assert!(matches!(tried, Err(Error::Contended { .. })), "{tried:?}");
    next.release().await.unwrap();
    wait_queue_len(&raw, &resource, 0).await;
}
