//! Counting semaphores on PostgreSQL: permits are slot advisory locks, the count a row of
//! `lockhog_semaphores`. Two guards of one process (one locker or two) are two permits, the
//! permit is the advisory lock `psql` sees, and another count is refused from any session.

#![cfg(feature = "postgres")]

mod postgres_support;

use std::collections::HashSet;

use lockhog::backend::postgres::advisory_key;
use lockhog::{Error, Locker};
use postgres_support::{holders, raw, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_of_one_process_are_separate_permits() {
    let url = server_url!();
    let a = Locker::connect(&url).await.unwrap();
    let b = Locker::connect(&url).await.unwrap();
    assert!(a.capabilities().semaphore, "postgres claims semaphores");
    let name = unique("pg-sem");
    // One locker twice, then another locker of the same process: three permits of three.
    let first = a.semaphore(&name, 3).try_acquire().await.unwrap();
    let second = a.semaphore(&name, 3).try_acquire().await.unwrap();
    let third = b.semaphore(&name, 3).try_acquire().await.unwrap();
    let held = [&first, &second, &third];
    let resources: HashSet<&str> = held.iter().map(|g| g.resource()).collect();
    assert_eq!(
        resources.len(),
        3,
        "two guards share a permit: {resources:?}"
    );
    for locker in [&a, &b] {
        match locker.semaphore(&name, 3).try_acquire().await {
            Err(Error::Contended { .. }) => {}
            other => panic!("a fourth permit of three: {other:?}"),
        }
    }

    // Each permit is the session advisory lock of its slot name, seen by any client.
    let psql = raw(&url, "pg-sem-psql").await;
    for slot in 0..3 {
        let key = advisory_key("lockhog", &format!("{name}#permit-{slot}")).unwrap();
        assert_eq!(holders(&psql, key).await.len(), 1, "slot {slot} not held");
        let taken: bool = psql
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .unwrap()
            .get(0);
        assert!(!taken, "psql took slot {slot} while lockhog held it");
    }

    assert!(second.release().await.unwrap());
    let again = b.semaphore(&name, 3).try_acquire().await.unwrap();
    drop((first, third, again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_is_stored_and_another_is_refused() {
    let url = server_url!();
    let a = Locker::connect(&url).await.unwrap();
    let name = unique("pg-sem-count");
    let permit = a.semaphore(&name, 2).try_acquire().await.unwrap();

    let psql = raw(&url, "pg-sem-count-psql").await;
    let stored: i32 = psql
        .query_one(
            "SELECT permits FROM lockhog_semaphores WHERE namespace = $1 AND name = $2",
            &[&b"lockhog".as_slice(), &name.as_bytes()],
        )
        .await
        .expect("the count's row")
        .get(0);
    assert_eq!(stored, 2);

    // A fresh locker (a new connection, nothing cached) asking for another count is refused.
    let b = Locker::connect(&url).await.unwrap();
    for other in [1, 3] {
        match b.semaphore(&name, other).try_acquire().await {
            Err(Error::InvalidOption { reason }) => {
                assert!(reason.contains("has 2 permits"), "{reason}")
            }
            got => panic!("{other} permits on a 2-permit semaphore: {got:?}"),
        }
    }
    let second = b.semaphore(&name, 2).try_acquire().await.unwrap();
    drop((permit, second));
}
