//! A foreign Redis key, locked by `lock_resource`: redis-cli's `SET k v NX` blocks lockhog and
//! lockhog blocks it; the key is taken verbatim, with no fencing counter, channel or token; a
//! release never deletes someone else's value; Redlock takes the key on a majority of nodes.

#![cfg(feature = "redis")]

mod redis_support;

use lockhog::{Error, LockState, Locker};
use redis_support::{
    assert_free, in_fresh_namespace, redis_cli, redlock_nodes, taken_after_foreign, unique,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_blocks_lockhog_and_lockhog_blocks_redis_cli() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let key = unique("report");
    assert_eq!(redis_cli(&url, &["SET", &key, "theirs", "NX"]), "OK");

    let guard = taken_after_foreign(&locker, &key, async {
        assert_eq!(redis_cli(&url, &["DEL", &key]), "1");
    })
    .await;
    assert_eq!(guard.fencing_token(), None, "no made-up token");

    // lockhog now holds the very key, with a lease.
    assert_ne!(redis_cli(&url, &["GET", &key]), "theirs");
    let pttl: i64 = redis_cli(&url, &["PTTL", &key]).parse().unwrap();
    assert!(pttl > 0, "{pttl}");
    assert_eq!(redis_cli(&url, &["SET", &key, "theirs", "NX"]), "");
    assert!(guard.release().await.unwrap());
    assert_eq!(redis_cli(&url, &["EXISTS", &key]), "0");
    assert_eq!(redis_cli(&url, &["SET", &key, "theirs", "NX"]), "OK");
    assert_eq!(redis_cli(&url, &["DEL", &key]), "1");
    assert_free(&locker, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_but_the_key_is_written() {
    let url = redis_url!();
    let (locker, namespace) = in_fresh_namespace(&url).await;
    let key = unique("lock:report");
    let guard = locker.lock_resource(&key).try_acquire().await.unwrap();
    // No namespace prefix, no fencing counter beside the other program's key.
    assert_eq!(redis_cli(&url, &["EXISTS", &key]), "1");
    let ours = redis_cli(&url, &["KEYS", &format!("{namespace}*")]);
    assert_eq!(ours, "", "lockhog wrote {ours:?}");
    assert!(guard.release().await.unwrap());
    assert_eq!(redis_cli(&url, &["KEYS", &format!("{namespace}*")]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_never_deletes_someone_elses_value() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let key = unique("taken-over");
    let guard = locker.lock_resource(&key).try_acquire().await.unwrap();
    // As if our lease ran out and another client took the key.
    assert_eq!(redis_cli(&url, &["SET", &key, "theirs"]), "OK");
    assert!(
        !guard.release().await.unwrap(),
        "the key was not ours any more"
    );
    assert_eq!(redis_cli(&url, &["GET", &key]), "theirs");
    assert_eq!(redis_cli(&url, &["DEL", &key]), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_refused_before_anything_is_written() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let long = "k".repeat(lockhog::MAX_NAME_BYTES + 1);
    for bad in ["", long.as_str()] {
        match locker.lock_resource(bad).try_acquire().await {
            Err(Error::InvalidOption { reason }) => {
                assert!(
                    reason.contains("a Redis key of 1 to 1024 bytes"),
                    "{reason}"
                );
            }
            other => panic!("{bad:?}: expected InvalidOption, got {other:?}"),
        }
        assert_eq!(redis_cli(&url, &["EXISTS", bad]), "0", "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_takes_the_key_on_a_majority() {
    let Some(url) = redis_support::env_url("LOCKHOG_TEST_REDLOCK_URL") else {
        return;
    };
    let nodes = redlock_nodes(&url);
    let locker = Locker::connect(&url).await.unwrap();
    let key = unique("redlock-report");

    // Another Redlock client holding the key on a majority blocks lockhog.
    for node in &nodes[..2] {
        assert_eq!(redis_cli(node, &["SET", &key, "theirs", "NX"]), "OK");
    }
    match locker.lock_resource(&key).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended while a majority is taken, got {other:?}"),
    }
    assert_eq!(redis_cli(&nodes[2], &["EXISTS", &key]), "0", "given back");
    for node in &nodes[..2] {
        assert_eq!(redis_cli(node, &["DEL", &key]), "1");
    }

    // lockhog holds it on every node, with one value, and blocks the other client there.
    let guard = locker.lock_resource(&key).try_acquire().await.unwrap();
    assert_eq!(guard.fencing_token(), None);
    let values: Vec<String> = nodes.iter().map(|n| redis_cli(n, &["GET", &key])).collect();
    assert!(
        values.iter().all(|v| !v.is_empty() && *v == values[0]),
        "{values:?}"
    );
    for node in &nodes {
        assert_eq!(redis_cli(node, &["SET", &key, "theirs", "NX"]), "");
    }
    let held = locker.status_resources(&[&key]).await.unwrap();
    assert_eq!(held[0].state, LockState::Held, "{held:?}");
    assert!(guard.release().await.unwrap());
    for node in &nodes {
        assert_eq!(redis_cli(node, &["EXISTS", &key]), "0");
    }
}
