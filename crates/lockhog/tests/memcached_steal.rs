//! `steal_after` on memcached: a holder whose item says it acquired longer ago than the
//! limit (by the acquirer's clock, written in the item's value) is taken over by
//! compare-and-set, by exactly one of the stealers that race for it; a foreign key and a
//! limit shorter than the ttl are refused.

#![cfg(feature = "memcached")]

mod memcached_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lockhog::{Error, Locker};
use memcached_support::{lockers, one_stealer_wins, raw, unique};

const TTL: Duration = Duration::from_secs(1);

/// Replaces the item of `resource` with a holder that is not renewing but has a minute left,
/// and that acquired a minute ago (`acquired_ms_ago`), as lockhog writes it.
fn plant_holder(url: &str, resource: &str, name: &str, acquired_ms_ago: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let value = format!("planted/1/elsewhere {}\n{name}", now - acquired_ms_ago);
    assert_eq!(
        raw(
            url,
            &format!("set {resource} 0 60 {}\r\n{value}\r\n", value.len())
        ),
        "STORED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_racing_stealers_wins() {
    let url = memcached_url!();
    let lockers = lockers::<4>(&url).await;
    for round in 0..5 {
        let name = unique(&format!("mc-steal-race-{round}"));
        let g = lockers[0].lock(&name).try_acquire().await.unwrap();
        let resource = g.resource().to_string();
        assert!(g.release().await.unwrap());
        plant_holder(&url, &resource, &name, 60_000);
        let g = one_stealer_wins(&lockers, &name, TTL).await;
        assert!(g.release().await.unwrap(), "the winner was stolen from");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_young_holder_is_not_stolen_from() {
    let url = memcached_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("mc-steal-young");
    let g = locker.lock(&name).try_acquire().await.unwrap();
    let resource = g.resource().to_string();
    assert!(g.release().await.unwrap());
    plant_holder(&url, &resource, &name, 0);
    match locker
        .lock(&name)
        .ttl(TTL)
        .steal_after(TTL * 30)
        .try_acquire()
        .await
    {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended, got {other:?}"),
    }
    raw(&url, &format!("delete {resource}\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steal_after_is_refused_on_a_foreign_key_and_below_the_ttl() {
    let url = memcached_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let key = unique("mc-steal-foreign");
    for request in [
        locker.lock_resource(&key).ttl(TTL).steal_after(TTL),
        locker.lock(&key).ttl(TTL * 2).steal_after(TTL),
    ] {
        match request.try_acquire().await {
            Err(Error::InvalidOption { reason }) => {
                assert!(reason.contains("steal_after"), "{reason}")
            }
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }
}
