//! compute_once on Redis: concurrent callers run the computation once and all get its value;
//! later callers get the stored value; a failure is not cached and the next caller computes.

#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockhog::compute_once::{ComputeError, ComputeOnce, RedisStore};
use lockhog::Locker;
use tokio::sync::Notify;

fn url() -> Option<String> {
    lockhog::testkit::Target::from_env("LOCKHOG_TEST_REDIS_URL")
        .url()
        .map(str::to_string)
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}-{}-{nanos}", std::process::id())
}

const BOUND: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(60);

async fn once(url: &str) -> ComputeOnce<RedisStore> {
    ComputeOnce::new(
        Locker::connect(url).await.unwrap(),
        RedisStore::connect(url).await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_compute_once() {
    let Some(url) = url() else { return };
    let key = unique("report");
    let runs = Arc::new(AtomicU32::new(0));
    let started = Arc::new(Notify::new());
    let finish = Arc::new(Notify::new());
    // The first caller computes, and holds its computation open until told to finish.
    let first = tokio::spawn({
        let (url, key, runs, started, finish) = (
            url.clone(),
            key.clone(),
            runs.clone(),
            started.clone(),
            finish.clone(),
        );
        async move {
            once(&url)
                .await
                .get_or_compute(&key, TTL, || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    started.notify_one();
                    finish.notified().await;
                    Ok::<_, std::io::Error>(b"forty-two".to_vec())
                })
                .await
        }
    });
    tokio::time::timeout(BOUND, started.notified())
        .await
        .unwrap();
    // Eight more callers (each its own connections) arrive while it computes.
    let others: Vec<_> = (0..8)
        .map(|_| {
            let (url, key, runs) = (url.clone(), key.clone(), runs.clone());
            tokio::spawn(async move {
                once(&url)
                    .await
                    .get_or_compute(&key, TTL, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::io::Error>(b"computed twice".to_vec())
                    })
                    .await
            })
        })
        .collect();
    // Wait until all eight wait on the lock (each subscribed to its release channel).
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let channel = format!("lockhog:released:compute-once:{key}");
    tokio::time::timeout(BOUND, async {
        loop {
            let n: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut raw)
                .await
                .unwrap();
            if n[0].1 == 8 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the callers never all waited");
    finish.notify_one();
    let got = tokio::time::timeout(BOUND, first).await.unwrap().unwrap();
    assert_eq!(got.unwrap(), b"forty-two");
    for o in others {
        let v = tokio::time::timeout(BOUND, o)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(v, b"forty-two");
    }
    // A later caller gets the stored value too.
    let later = once(&url)
        .await
        .get_or_compute(&key, TTL, || async {
            Ok::<_, std::io::Error>(b"recomputed".to_vec())
        })
        .await
        .unwrap();
    assert_eq!(later, b"forty-two");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the computation ran more than once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_not_cached() {
    let Some(url) = url() else { return };
    let key = unique("flaky");
    let o = once(&url).await;
    let failed = o
        .get_or_compute(&key, TTL, || async { Err::<Vec<u8>, _>("backend down") })
        .await;
    assert!(matches!(failed, Err(ComputeError::Failed("backend down"))));
    let runs = AtomicU32::new(0);
    let ok = o
        .get_or_compute(&key, TTL, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, &str>(b"fine".to_vec())
        })
        .await
        .unwrap();
    assert_eq!(ok, b"fine");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the retry did not compute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiters_compute_after_a_failure() {
    let Some(url) = url() else { return };
    let key = unique("fail-then-wait");
    let started = Arc::new(Notify::new());
    let finish = Arc::new(Notify::new());
    let first = tokio::spawn({
        let (url, key, started, finish) =
            (url.clone(), key.clone(), started.clone(), finish.clone());
        async move {
            once(&url)
                .await
                .get_or_compute(&key, TTL, || async move {
                    started.notify_one();
                    finish.notified().await;
                    Err::<Vec<u8>, _>("first attempt failed")
                })
                .await
        }
    });
    tokio::time::timeout(BOUND, started.notified())
        .await
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (url, key, runs) = (url.clone(), key.clone(), runs.clone());
            tokio::spawn(async move {
                once(&url)
                    .await
                    .get_or_compute(&key, TTL, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, &str>(b"second try".to_vec())
                    })
                    .await
            })
        })
        .collect();
    finish.notify_one();
    let first = tokio::time::timeout(BOUND, first).await.unwrap().unwrap();
    assert!(matches!(first, Err(ComputeError::Failed(_))));
    for w in waiters {
        let v = tokio::time::timeout(BOUND, w)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(v, b"second try");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_keys_and_ttls_are_refused() {
    let Some(url) = url() else { return };
    let o = once(&url).await;
    for (key, ttl) in [("", TTL), ("k", Duration::ZERO)] {
        let r = o
            .get_or_compute(key, ttl, || async { Ok::<_, &str>(vec![]) })
            .await;
        assert!(matches!(r, Err(ComputeError::Lock(_))), "{key:?} {ttl:?}");
    }
}
