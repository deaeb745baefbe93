//! compute_once on Redis: concurrent callers run the computation once and all get its value;
//! later callers get the stored value; a failure is not cached and the next caller computes.

#![cfg(feature = "redis")]

mod redis_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockhog::compute_once::{ComputeError, ComputeOnce, RedisStore};
use lockhog::Locker;
use redis_support::{bounded, raw, subscribers, unique};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const TTL: Duration = Duration::from_secs(60);

async fn once(url: &str) -> ComputeOnce<RedisStore> {
    ComputeOnce::new(
        Locker::connect(url).await.unwrap(),
        RedisStore::connect(url).await.unwrap(),
    )
}

type Caller = JoinHandle<Result<Vec<u8>, ComputeError<&'static str>>>;

/// A caller (its own connections) whose computation counts itself in `runs`, tells `started`,
/// holds the computation open until `finish` is told, then gives `result`.
fn first_caller(
    url: &str,
    key: &str,
    runs: &Arc<AtomicU32>,
    (started, finish): (&Arc<Notify>, &Arc<Notify>),
    result: Result<&'static [u8], &'static str>,
) -> Caller {
    let (url, key, runs, started, finish) = (
        url.to_string(),
        key.to_string(),
        runs.clone(),
        started.clone(),
        finish.clone(),
    );
    tokio::spawn(async move {
        once(&url)
            .await
            .get_or_compute(&key, TTL, || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                started.notify_one();
                finish.notified().await;
                result.map(<[u8]>::to_vec)
            })
            .await
    })
}

/// `n` callers (each its own connections) whose computation counts itself in `runs` and gives
/// `value`.
fn callers(
    n: usize,
    url: &str,
    key: &str,
    runs: &Arc<AtomicU32>,
    value: &'static [u8],
) -> Vec<Caller> {
    (0..n)
        .map(|_| {
            let (url, key, runs) = (url.to_string(), key.to_string(), runs.clone());
            tokio::spawn(async move {
                once(&url)
                    .await
                    .get_or_compute(&key, TTL, || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok(value.to_vec())
                    })
                    .await
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_compute_once() {
    let url = redis_url!();
    let key = unique("report");
    let runs = Arc::new(AtomicU32::new(0));
    let started = Arc::new(Notify::new());
    let finish = Arc::new(Notify::new());
    // The first caller computes, and holds its computation open until told to finish.
    let first = first_caller(&url, &key, &runs, (&started, &finish), Ok(b"forty-two"));
    bounded("the first computation's start", started.notified()).await;
    // Eight more callers (each its own connections) arrive while it computes.
    let others = callers(8, &url, &key, &runs, b"computed twice");
    // Wait until all eight wait on the lock (each subscribed to its release channel).
    let mut raw = raw(&url).await;
    let channel = format!("lockhog:released:compute-once:{key}");
    bounded("the callers all waiting", async {
        while subscribers(&mut raw, &channel).await != 8 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    finish.notify_one();
    let got = bounded("the first caller", first).await.unwrap();
    assert_eq!(got.unwrap(), b"forty-two");
    for o in others {
        let v = bounded("a caller", o).await.unwrap().unwrap();
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
    let url = redis_url!();
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
    let url = redis_url!();
    let key = unique("fail-then-wait");
    let started = Arc::new(Notify::new());
    let finish = Arc::new(Notify::new());
    // Its own count: `runs` below counts only the waiters' computations.
    let first_runs = Arc::new(AtomicU32::new(0));
    let first = first_caller(
        &url,
        &key,
        &first_runs,
        (&started, &finish),
        Err("first attempt failed"),
    );
    bounded("the first computation's start", started.notified()).await;
    let runs = Arc::new(AtomicU32::new(0));
    let waiters = callers(3, &url, &key, &runs, b"second try");
    finish.notify_one();
    let first = bounded("the first caller", first).await.unwrap();
    assert!(matches!(first, Err(ComputeError::Failed(_))));
    for w in waiters {
        let v = bounded("a waiter", w).await.unwrap().unwrap();
        assert_eq!(v, b"second try");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_keys_and_ttls_are_refused() {
    let url = redis_url!();
    let o = once(&url).await;
    for (key, ttl) in [("", TTL), ("k", Duration::ZERO)] {
        let r = o
            .get_or_compute(key, ttl, || async { Ok::<_, &str>(vec![]) })
            .await;
        assert!(matches!(r, Err(ComputeError::Lock(_))), "{key:?} {ttl:?}");
    }
}
