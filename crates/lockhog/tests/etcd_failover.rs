//! etcd with members down: an endpoint list whose first member is dead works, and with one of
//! the three members stopped (the leader) locks keep working and a held lock stays held.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use std::time::Duration;

use etcd_support::{bounded, endpoints, leader, members, unique, BOUND};
use lockhog::{Error, Locker};

/// Exercises a locker: acquire, contend, wait for a release, ten times.
async fn works(a: &Locker, b: &Locker, what: &str) {
    for i in 0..10 {
        let name = unique(what);
        let g = a.lock(&name).try_acquire().await.unwrap();
        let tried = b.lock(&name).try_acquire().await;
        assert!(
            matches!(tried, Err(Error::Contended { .. })),
            "{i}: {tried:?}"
        );
        let waiter = tokio::spawn(b.lock(&name).wait_for(BOUND));
        let token = g.fencing_token();
        assert!(g.release().await.unwrap());
        let next = bounded("the waiter", waiter).await.unwrap().unwrap();
        assert!(next.fencing_token() > token);
        assert!(next.release().await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_member_first_in_the_list() {
    let url = etcd_url!();
    let live = endpoints(&url).join(",");
    // Port 1 on loopback refuses every connection.
    let with_dead = format!("etcd://127.0.0.1:1,{live}");
    let a = Locker::connect(&with_dead).await.unwrap();
    let b = Locker::connect(&with_dead).await.unwrap();
    works(&a, &b, "dead-first").await;
    let only_dead = Locker::connect("etcd://127.0.0.1:1,127.0.0.1:2").await;
    assert!(
        matches!(only_dead, Err(Error::Backend { .. })),
        "{only_dead:?}"
    );
}

/// The leader is killed (SIGKILL) while a lock is held with a 5 s lease: the survivors elect a
/// new leader (about one election timeout, 1 s), the holder's keepalive moves to a live member
/// and keeps the lock (a waiter that waits 7 s, more than the ttl plus the election, times
/// out), new locks work through lockers made before and after the kill, and the holder's
/// release hands the lock to a waiter. Then the member is started again and rejoins.
///
/// (With etcd's shortest lease, 2 s, a leader's death can cost the lock: no keepalive is
/// answered until a new leader is elected, and the holder, unable to confirm its lease within
/// its ttl, reports it lost and stops renewing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_stopped_locks_keep_working() {
    let url = etcd_url!();
    let Some(members) = members() else { return };
    let before = (
        Locker::connect(&url).await.unwrap(),
        Locker::connect(&url).await.unwrap(),
    );
    let name = unique("across-kill");
    let held = before
        .0
        .lock(&name)
        .ttl(Duration::from_secs(5))
        .try_acquire()
        .await
        .unwrap();

    let victim = &members[leader(&members).await];
    victim.kill();

    let waited = before.1.lock(&name).wait_for(Duration::from_secs(7)).await;
    assert!(
        matches!(waited, Err(Error::TimedOut { .. })),
        "{waited:?}, holder {held:?}"
    );
    assert!(
        !held.is_lost(),
        "the lock was lost when a member died: {held:?}"
    );
    works(&before.0, &before.1, "member-down-old").await;
    let after = (
        Locker::connect(&url).await.unwrap(),
        Locker::connect(&url).await.unwrap(),
    );
    works(&after.0, &after.1, "member-down-new").await;

    let waiter = tokio::spawn(after.1.lock(&name).wait_for(BOUND));
    let token = held.fencing_token();
    assert!(held.release().await.unwrap());
    let next = bounded("the waiter", waiter).await.unwrap().unwrap();
    assert!(next.fencing_token() > token);
    next.release().await.unwrap();

    victim.start();
    works(&after.0, &before.1, "member-back").await;
}
