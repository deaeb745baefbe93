//! A foreign memcached key, locked by `lock_resource`: a raw client's `add` blocks lockhog and
//! lockhog blocks it; the key is the item itself, with no fencing counter or token; a release
//! never deletes someone else's item; bad keys (and protocol injection) are refused before
//! anything is sent.

#![cfg(feature = "memcached")]

mod memcached_support;

use lockhog::{Error, Locker};
use memcached_support::{assert_free, in_fresh_namespace, raw, taken_after_foreign, unique};

/// The other client's `add` of `key`: true when stored.
fn add(url: &str, key: &str) -> bool {
    match raw(url, &format!("add {key} 0 0 6\r\ntheirs\r\n")).as_str() {
        "STORED" => true,
        "NOT_STORED" => false,
        other => panic!("add {key}: {other}"),
    }
}

/// Whether `key` exists (`mg` answers `EN` when it does not).
fn exists(url: &str, key: &str) -> bool {
    raw(url, &format!("mg {key}\r\n")) != "EN"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_add_blocks_lockhog_and_lockhog_blocks_it() {
    let url = memcached_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let key = unique("report");
    assert!(add(&url, &key));

    let guard = taken_after_foreign(&locker, &key, async {
        assert_eq!(raw(&url, &format!("delete {key}\r\n")), "DELETED");
    })
    .await;
    assert_eq!(guard.fencing_token(), None, "no made-up token");

    assert!(!add(&url, &key), "lockhog holds the very key");
    assert!(guard.release().await.unwrap());
    assert!(!exists(&url, &key));
    assert!(add(&url, &key));
    assert_eq!(raw(&url, &format!("delete {key}\r\n")), "DELETED");
    assert_free(&locker, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fencing_counter_is_written_and_others_items_survive_a_release() {
    let url = memcached_url!();
    let (locker, namespace) = in_fresh_namespace(&url).await;
    let key = unique("taken-over");
    let guard = locker.lock_resource(&key).try_acquire().await.unwrap();
    assert!(!exists(&url, &format!("{namespace}:fence")));
    // As if our lease ran out and another client took the key.
    assert_eq!(
        raw(&url, &format!("set {key} 0 0 6\r\ntheirs\r\n")),
        "STORED"
    );
    assert!(
        !guard.release().await.unwrap(),
        "the item was not ours any more"
    );
    assert!(exists(&url, &key));
    assert_eq!(raw(&url, &format!("delete {key}\r\n")), "DELETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_refused_before_anything_is_sent() {
    let url = memcached_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let planted = unique("injected");
    let injection = format!("x 0 0 1\r\nset {planted} 0 0 1\r\nX");
    let long = "k".repeat(251);
    for bad in ["", "a b", "tab\there", long.as_str(), injection.as_str()] {
        match locker.lock_resource(bad).try_acquire().await {
            Err(Error::InvalidOption { reason }) => {
                assert!(
                    reason.contains("a memcached key of 1 to 250 bytes"),
                    "{reason}"
                );
            }
            other => panic!("{bad:?}: expected InvalidOption, got {other:?}"),
        }
    }
    assert!(!exists(&url, &planted), "the injected command ran");
}
