//! Shared (reader) locks on `redis://`: a reader in a process killed with SIGKILL stops
//! counting when its lease runs out, `status` lists shared holders, a reader whose entry
//! vanished is told it lost the lock, and a writer that gives up waiting stops holding new
//! readers back at once.

#![cfg(feature = "redis")]

mod redis_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use lockhog::{Error, LockState, Locker};
use redis::AsyncCommands;
use redis_support::{bounded, in_fresh_namespace, listen, lockers, raw, unique, BOUND};

/// Set in the child process: the URL and the name it holds shared.
const CHILD_ENV: &str = "LOCKHOG_TEST_REDIS_SHARED_CHILD";

/// In the child: takes the lock shared with a short lease, says so, and waits to be killed.
#[tokio::test]
#[ignore = "run by killed_reader_releases_at_lease_expiry in a child process"]
async fn child_reader() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, name) = spec.split_once(' ').unwrap();
    let locker = Locker::connect(url).await.unwrap();
    let guard = locker
        .lock(name)
        .shared()
        .ttl(Duration::from_millis(500))
        .try_acquire()
        .await
        .unwrap();
    println!("held {}", guard.fencing_token().unwrap());
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_reader_releases_at_lease_expiry() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("shared-killed");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_reader",
            "--nocapture",
            "--quiet",
        ])
        .env(CHILD_ENV, format!("{url} {name}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let token: u64 = loop {
        let line = lines.next().expect("the child exited").unwrap();
        if let Some(t) = line.strip_prefix("held ") {
            break t.parse().unwrap();
        }
    };
    let status = locker.status(&[&name]).await.unwrap();
    assert_eq!(status[0].state, LockState::Held, "{status:?}");
    let holder = status[0].holder.clone().unwrap_or_default();
    assert!(
        holder.starts_with("shared by 1: ") && holder.contains(&format!("pid {}", child.id())),
        "{holder}"
    );
    match locker.lock(&name).try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("a writer got in beside a live reader: {other:?}"),
    }
    child.kill().unwrap(); // SIGKILL: nothing is released
    child.wait().unwrap();
    let writer = locker.lock(&name).wait_for(BOUND).await.unwrap();
    assert!(writer.fencing_token().unwrap() > token);
    assert!(writer.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_shared_holders() {
    let url = redis_url!();
    let (locker, _namespace) = in_fresh_namespace(&url).await;
    let (r1, r2) = (
        locker.lock("read").shared().try_acquire().await.unwrap(),
        locker.lock("read").shared().try_acquire().await.unwrap(),
    );
    let w = locker.lock("write").try_acquire().await.unwrap();
    let all = locker.status(&[]).await.unwrap();
    let names: Vec<_> = all.iter().map(|s| s.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["write", "read"], "{all:?}");
    let read = &all[1];
    assert_eq!(read.state, LockState::Held);
    assert!(
        read.holder.as_deref().unwrap().starts_with("shared by 2: "),
        "{read:?}"
    );
    assert_eq!(read.resource, w.resource().replace("write", "read"));
    for g in [r1, r2, w] {
        assert!(g.release().await.unwrap());
    }
    assert_eq!(
        locker.status(&["read"]).await.unwrap()[0].state,
        LockState::Free
    );
    assert!(locker.status(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_whose_entry_vanished_is_told() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("shared-lost");
    let reader = locker
        .lock(&name)
        .shared()
        .ttl(Duration::from_millis(300))
        .try_acquire()
        .await
        .unwrap();
    let mut conn = raw(&url).await;
    let _: () = conn.del(format!("lockhog:readers:{name}")).await.unwrap();
    let reason = bounded("the reader's lost notice", reader.lost()).await;
    assert!(reason.contains("someone else"), "{reason}");
    assert!(!reader.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_gives_up_lets_readers_in_again() {
    let url = redis_url!();
    let [a, b] = lockers(&url).await;
    let name = unique("shared-withdrawn");
    let first = a.lock(&name).shared().try_acquire().await.unwrap();
    let mut conn = raw(&url).await;
    let waiting = format!("lockhog:waiting:{name}");
    let writer = tokio::spawn({
        let (b, name) = (b.clone(), name.clone());
        async move { b.lock(&name).wait_for(Duration::from_secs(2)).await }
    });
    // Once the writer announced itself, new readers are kept out.
    bounded("the writer's announcement", async {
        while conn.zcard::<_, u64>(&waiting).await.unwrap() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    match a.lock(&name).shared().try_acquire().await {
        Err(Error::Contended { .. }) => {}
        other => panic!("a reader got in past a waiting writer: {other:?}"),
    }
    match bounded("the writer", writer).await.unwrap() {
        Err(Error::TimedOut { .. }) => {}
        other => panic!("expected the writer to time out, got {other:?}"),
    }
    // Its announcement is gone with it, not left to run out.
    let second = a.lock(&name).shared().try_acquire().await.unwrap();
    assert!(first.release().await.unwrap());
    assert!(second.release().await.unwrap());
}

/// The release of the last reader publishes on the lock's channel (a waiting writer wakes),
/// the release of a reader that leaves others holding does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_readers_release_wakes_writers() {
    let url = redis_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let name = unique("shared-wake");
    let (r1, r2) = (
        locker.lock(&name).shared().try_acquire().await.unwrap(),
        locker.lock(&name).shared().try_acquire().await.unwrap(),
    );
    let channel = format!("lockhog:released:{name}");
    let mut listener = listen(&url, &channel).await;
    let mut conn = raw(&url).await;
    assert!(r1.release().await.unwrap());
    // A marker published after the first release: it must be the first message.
    let _: i64 = conn.publish(&channel, "marker").await.unwrap();
    assert!(r2.release().await.unwrap());
    let mut messages = listener.on_message();
    let mut payloads = Vec::new();
    for _ in 0..2 {
        let m = bounded("a message", messages.next()).await.unwrap();
        payloads.push(m.get_payload::<String>().unwrap());
    }
    // The reader's release that left another holding published nothing; the last one did.
    assert_eq!(payloads, ["marker", ""]);
}
