//! Many held locks share a few connections: 200 locks held at once by one locker sit on at
//! most `connections` server sessions, each lock exclusive, and all come back on release.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::collections::BTreeSet;

use lockhog::Locker;
use mysql_support::{bounded, get_lock, holder, raw, unique, with_option};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_locks_on_a_few_connections() {
    let url = server_url!();
    let locker = Locker::connect(&with_option(&url, "connections=3"))
        .await
        .unwrap();
    let other = Locker::connect(&url).await.unwrap();
    let base = unique("many");
    let names: Vec<String> = (0..200).map(|i| format!("{base}-{i}")).collect();
    // Taken concurrently, so that more than one connection is put to work.
    let guards = bounded("200 acquires", async {
        let tasks: Vec<_> = names
            .iter()
            .map(|n| {
                let (l, n) = (locker.clone(), n.clone());
                tokio::spawn(async move { l.lock(&n).try_acquire().await })
            })
            .collect();
        let mut guards = Vec::new();
        for t in tasks {
            guards.push(t.await.unwrap().expect("a free lock"));
        }
        guards
    })
    .await;

    let mut admin = raw(&url).await;
    let mut sessions = BTreeSet::new();
    for g in &guards {
        sessions.insert(holder(&mut admin, g.resource()).await.expect("held"));
    }
    eprintln!("200 locks held on {} connection(s)", sessions.len());
    assert!(
        (1..=3).contains(&sessions.len()),
        "200 locks on {} connections",
        sessions.len()
    );
    for n in names.iter().step_by(20) {
        assert!(other
            .lock(n)
            .try_acquire()
            .await
            .unwrap_err()
            .is_not_acquired());
        assert_eq!(
            get_lock(&mut admin, &locker.resource(n).unwrap(), 0.0).await,
            Some(false)
        );
    }
    let mut tokens: Vec<u64> = guards.iter().map(|g| g.fencing_token().unwrap()).collect();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 200, "fencing tokens repeat");
    for g in guards {
        assert!(g.release().await.unwrap());
    }
    for n in names.iter().step_by(20) {
        assert_eq!(holder(&mut admin, &locker.resource(n).unwrap()).await, None);
    }
}
