//! Measurements against the etcd cluster (ignored: run by hand, in release mode):
//!
//! ```text
//! LOCKHOG_SERVICES=etcd scripts/test --with-services -- \
//!     cargo test --release -p lockhog --all-features --test etcd_bench -- --ignored --nocapture
//! ```
//!
//! Prints uncontended acquire+release cycles/s next to raw etcd loops in the same run (put +
//! delete: the two writes any lock needs; grant + txn + delete + revoke: the four this backend
//! sends), the handoff latency from a release to the next waiter holding, and the wait times
//! of 16 clients contending for one lock.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use etcd_support::{
    cycle, lockers, percentile, raw, spawn_timed_wait, unique, wait_queue_len, BOUND,
};
use lockhog::Locker;

const CYCLES: u32 = 300;

fn rate(n: u32, took: Duration) -> f64 {
    f64::from(n) / took.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
async fn bench_etcd() {
    let url = etcd_url!();
    let client = raw(&url).await;

    // Raw: put + delete of one key.
    let key = unique("bench-raw");
    let started = Instant::now();
    for _ in 0..CYCLES {
        let mut c = client.clone();
        c.put(key.as_str(), "x", None).await.unwrap();
        c.delete(key.as_str(), None).await.unwrap();
    }
    let raw2 = rate(CYCLES, started.elapsed());

    // Raw: what one lockhog cycle sends (grant, txn put-if-absent, guarded delete, revoke).
    let started = Instant::now();
    for _ in 0..CYCLES {
        let mut c = client.clone();
        let lease = c.lease_grant(30, None).await.unwrap().id();
        let k = format!("{key}/{lease:016x}");
        let put = Txn::new()
            .when([Compare::create_revision(k.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                k.as_str(),
                "x",
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let rev = c.txn(put).await.unwrap().header().unwrap().revision();
        let del = Txn::new()
            .when([Compare::create_revision(k.as_str(), CompareOp::Equal, rev)])
            .and_then([TxnOp::delete(k.as_str(), None)]);
        c.txn(del).await.unwrap();
        c.lease_revoke(lease).await.unwrap();
    }
    let raw4 = rate(CYCLES, started.elapsed());

    // lockhog: try + release, uncontended.
    let [a, b] = lockers(&url).await;
    let name = unique("bench-cycle");
    let started = Instant::now();
    for _ in 0..CYCLES {
        cycle(&a, &name).await;
    }
    let ours = rate(CYCLES, started.elapsed());
    println!(
        "etcd uncontended: lockhog {ours:.0} cycles/s; raw put+delete {raw2:.0}/s; raw \
         grant+txn+txn+revoke {raw4:.0}/s ({CYCLES} cycles each, 3-member cluster)"
    );

    // Handoff: A holds, B is confirmed queued, A releases; from the release's start to B
    // holding.
    let name = unique("bench-handoff");
    let resource = a.resource(&name).unwrap();
    let mut handoffs = Vec::new();
    for _ in 0..100 {
        let g = a.lock(&name).try_acquire().await.unwrap();
        let waiter = spawn_timed_wait(b.lock(&name));
        wait_queue_len(&client, &resource, 2).await;
        let released = Instant::now();
        g.release().await.unwrap();
        let (held, g2) = waiter.await.unwrap();
        handoffs.push(held - released);
        g2.release().await.unwrap();
    }
    handoffs.sort();
    println!(
        "etcd handoff (release start to next holder): p50 {:?}, p90 {:?}, max {:?} (100 handoffs)",
        percentile(&handoffs, 0.5),
        percentile(&handoffs, 0.9),
        handoffs.last().unwrap()
    );

    // 16 clients (4 connections) contending for one lock for 5 s: every wait, and the longest.
    let lockers: [Locker; 4] = lockers(&url).await;
    let name = unique("bench-fifo");
    let until = Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let locker = lockers[i % 4].clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut waits = Vec::new();
            while Instant::now() < until {
                let asked = Instant::now();
                let g = locker.lock(&name).fair().wait_for(BOUND).await.unwrap();
                waits.push(asked.elapsed());
                g.release().await.unwrap();
            }
            waits
        }));
    }
    let mut waits = Vec::new();
    let mut per_client = Vec::new();
    for t in tasks {
        let w = t.await.unwrap();
        per_client.push(w.len());
        waits.extend(w);
    }
    waits.sort();
    println!(
        "etcd 16 clients on one lock for 5 s: {} acquisitions ({:.0}/s), per client min {} max \
         {}; wait p50 {:?}, p99 {:?}, longest {:?}",
        waits.len(),
        waits.len() as f64 / 5.0,
        per_client.iter().min().unwrap(),
        per_client.iter().max().unwrap(),
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        waits.last().unwrap()
    );
}
