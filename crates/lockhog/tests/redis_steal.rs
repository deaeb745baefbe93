//! `steal_after` on `redis://` and `redlock://`: a holder that acquired longer ago than the
//! limit (by the server's clock, in the lock's `since` key) is taken over by exactly one of
//! the stealers that race for it; a `since` key naming another owner, a foreign key and a
//! limit shorter than the ttl never lead to a steal.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::Duration;

use lockhog::{Error, Locker};
use redis::AsyncCommands;
use redis_support::{
    at_most_one_stealer_wins, bounded, lockers, one_stealer_wins, raw, redlock_nodes, unique,
};

const TTL: Duration = Duration::from_secs(1);

/// A raw connection to every server of `url` (one for `redis://`, each node of `redlock://`).
async fn servers(url: &str) -> Vec<redis::aio::MultiplexedConnection> {
    let urls: Vec<String> = if url.starts_with("redlock://") {
        redlock_nodes(url)
            .iter()
            .map(|n| format!("redis://{n}"))
            .collect()
    } else {
        vec![url.to_string()]
    };
    let mut out = Vec::new();
    for u in urls {
        out.push(raw(&u).await);
    }
    out
}

/// Writes, on every server, a holder of `name` that is not renewing but whose lease has a
/// minute left, and whose `since` key says it acquired a minute ago — naming `since_owner` as
/// the one that acquired.
async fn plant_holder(url: &str, name: &str, since_owner: &str) {
    for mut conn in servers(url).await {
        let (secs, _): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
        let ago = (secs - 60) * 1000;
        let _: () = conn
            .pset_ex(
                format!("lockhog:lock:{name}"),
                "planted/1/elsewhere",
                60_000,
            )
            .await
            .unwrap();
        let _: () = conn
            .pset_ex(
                format!("lockhog:since:{name}"),
                format!("{ago} {since_owner}"),
                60_000,
            )
            .await
            .unwrap();
    }
}

/// Four lockers race to take over one stale holder at the same moment: exactly one wins,
/// the others find the winner (fresh) in the way. Five rounds.
/// `split_votes`: a race may end with no winner (Redlock: each stealer won a minority of the
/// nodes); it is run again on a new name until one wins, never two.
async fn one_of_racing_stealers_wins(url: &str, split_votes: bool) {
    let lockers = lockers::<4>(url).await;
    for round in 0..5 {
        let mut races = 0;
        let g = loop {
            races += 1;
            let name = unique(&format!("steal-race-{round}-{races}"));
            plant_holder(url, &name, "planted/1/elsewhere").await;
            if !split_votes {
                break one_stealer_wins(&lockers, &name, TTL).await;
            }
            if let Some(g) = at_most_one_stealer_wins(&lockers, &name, TTL).await {
                break g;
            }
            assert!(
                races < 20,
                "20 races in a row ended with no stealer winning"
            );
        };
        assert!(g.fencing_token().is_some());
        assert!(g.release().await.unwrap(), "the winner was stolen from");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_one_of_racing_stealers_wins() {
    one_of_racing_stealers_wins(&redis_url!(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_one_of_racing_stealers_wins() {
    let Some(url) = redis_support::env_url("LOCKHOG_TEST_REDLOCK_URL") else {
        return;
    };
    one_of_racing_stealers_wins(&url, true).await;
}

/// A `since` key left by an earlier holder says nothing about the current one: no steal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_since_key_of_another_owner_is_no_reason_to_steal() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("steal-other-since");
    plant_holder(&url, &name, "earlier/1/elsewhere").await;
    match locker
        .lock(&name)
        .ttl(TTL)
        .steal_after(TTL)
        .try_acquire()
        .await
    {
        Err(Error::Contended { .. }) => {}
        other => panic!("expected Contended, got {other:?}"),
    }
    // The same holder with its own acquisition time is taken over.
    plant_holder(&url, &name, "planted/1/elsewhere").await;
    let g = locker
        .lock(&name)
        .ttl(TTL)
        .steal_after(TTL)
        .try_acquire()
        .await
        .unwrap();
    assert!(g.release().await.unwrap());
}

/// Renewals keep the `since` key as long as the lock key: after more renewals than fit in
/// one ttl, it is still there, unchanged, so a holder renewing past many ttls can still be
/// taken over once steal_after has passed; the release deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_the_acquisition_time() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("steal-since-renewed");
    let ttl = Duration::from_millis(300);
    let g = locker.lock(&name).ttl(ttl).try_acquire().await.unwrap();
    let mut conn = raw(&url).await;
    let (lock, since) = (
        format!("lockhog:lock:{name}"),
        format!("lockhog:since:{name}"),
    );
    let first: String = conn.get(&since).await.unwrap();
    let owner: String = conn.get(&lock).await.unwrap();
    assert!(first.ends_with(&format!(" {owner}")), "{first:?} {owner:?}");
    // Four renewals, a third of the ttl apart, seen as the lock key's PTTL going up: more
    // than a ttl has passed since the acquire.
    let mut last: i64 = conn.pttl(&lock).await.unwrap();
    let mut renewals = 0;
    bounded("four renewals", async {
        while renewals < 4 {
            let now: i64 = conn.pttl(&lock).await.unwrap();
            if now > last {
                renewals += 1;
            }
            last = now;
            tokio::task::yield_now().await;
        }
    })
    .await;
    let value: Option<String> = conn.get(&since).await.unwrap();
    assert_eq!(
        value.as_deref(),
        Some(first.as_str()),
        "the acquisition time was not kept by the renewals"
    );
    assert!(g.release().await.unwrap());
    // The release takes it away with the lock key.
    let left: Option<String> = conn.get(&since).await.unwrap();
    assert_eq!(left, None, "the release left the acquisition time behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steal_after_is_refused_on_a_foreign_key_and_below_the_ttl() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let key = unique("steal-foreign");
    for request in [
        locker.lock_resource(&key).ttl(TTL).steal_after(TTL),
        locker.lock(&key).ttl(TTL * 2).steal_after(TTL),
        locker
            .lock(&key)
            .shared()
            .steal_after(Duration::from_secs(60)),
    ] {
        match request.try_acquire().await {
            Err(Error::InvalidOption { reason }) => {
                assert!(reason.contains("steal_after"), "{reason}")
            }
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }
}
