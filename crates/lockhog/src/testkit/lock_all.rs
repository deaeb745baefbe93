//! The checks on [`Locker::lock_all`](crate::Locker::lock_all): all or none within one wait
//! bound, and no deadlock between callers that take overlapping sets in opposite orders, be
//! they tasks of one process or `lockhog run` processes.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::checks::{bounded, hold, NO_URL};
use super::{assert_not_acquired, not_applicable, Target, BOUND};
use crate::Locker;

/// `n` names of a check, each including the check's name.
fn names(check: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("conformance-{check}-{i}"))
        .collect()
}

async fn all_free(l: &Locker, names: &[String]) {
    for name in names {
        let g = l
            .lock(name)
            .try_acquire()
            .await
            .unwrap_or_else(|e| panic!("{name} was left held: {e}"));
        assert!(g.release().await.unwrap());
    }
}

/// One lock of the set held elsewhere: `lock_all` fails (contended, or timed out at its
/// bound) and leaves none of the others held; once it is free, `lock_all` holds every lock
/// and releases every one.
pub async fn lock_all_takes_all_or_none(t: &Target) {
    let set = names("lock_all_takes_all_or_none", 3);
    let (a, b) = (t.locker().await, t.locker().await);
    let blocker = hold(a.lock(&set[1])).await;
    assert_not_acquired(b.lock_all(&set).try_acquire().await, "contended");
    all_free(&a, &[set[0].clone(), set[2].clone()]).await;
    let waited = bounded(
        "lock_all with a bound",
        b.lock_all(&set).wait_for(Duration::from_millis(200)),
    )
    .await;
    assert_not_acquired(waited, "timed out");
    all_free(&a, &[set[0].clone(), set[2].clone()]).await;
    assert!(blocker.release().await.unwrap());

    let all = b.lock_all(&set).wait_for(BOUND).await.expect("a free set");
    assert_eq!(all.guards().len(), 3);
    for name in &set {
        assert_not_acquired(a.lock(name).try_acquire().await, "contended");
    }
    assert!(all.release().await.unwrap());
    all_free(&a, &set).await;
}

/// Tasks on two lockers take two overlapping sets, in opposite orders, over and over: every
/// one finishes.
pub async fn lock_all_never_deadlocks(t: &Target) {
    let set = names("lock_all_never_deadlocks", 3);
    let lockers = [t.locker().await, t.locker().await];
    let orders: [Vec<String>; 2] = [
        vec![set[0].clone(), set[1].clone()],
        vec![set[2].clone(), set[1].clone(), set[0].clone()],
    ];
    let orders = Arc::new(orders);
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let locker = lockers[i % 2].clone();
            let orders = orders.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let all = locker
                        .lock_all(&orders[i % 2])
                        .wait_for(BOUND)
                        .await
                        .expect("lock_all");
                    tokio::task::yield_now().await;
                    assert!(all.release().await.unwrap());
                }
            })
        })
        .collect();
    bounded("tasks taking overlapping sets in opposite orders", async {
        for task in tasks {
            task.await.expect("a task panicked");
        }
    })
    .await;
}

/// Two `lockhog run` processes name the same two locks in opposite orders while the first
/// lock (in resource order) is held here: once it is let go, both get both locks in turn and
/// run their command.
pub async fn lock_all_across_processes(t: &Target) {
    let a = t.locker().await;
    if !a.capabilities().cross_process {
        return not_applicable(
            "lock_all_across_processes",
            "the backend is in-process only",
        );
    }
    let Some(url) = t.url() else {
        return not_applicable("lock_all_across_processes", NO_URL);
    };
    let mut set = names("lock_all_across_processes", 2);
    set.sort_by_key(|n| a.resource(n).unwrap());
    for round in 0..3 {
        let first = hold(a.lock(&set[0])).await;
        let runs: Vec<_> = [[&set[0], &set[1]], [&set[1], &set[0]]]
            .iter()
            .map(|order| {
                let mut cmd = Command::new(t.hold_bin());
                cmd.env("LOCKHOG_URL", url)
                    .arg("run")
                    .args(order)
                    .args(["--", "true"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit());
                crate::hog::tied::die_with_us(&mut cmd);
                crate::hog::tied::on_spawner_thread(move || cmd.spawn())
                    .unwrap_or_else(|e| panic!("cannot run lockhog run: {e}"))
            })
            .collect();
        assert!(first.release().await.unwrap());
        for mut run in runs {
            let status = tokio::time::timeout(
                BOUND,
                tokio::task::spawn_blocking(move || {
                    let status = run.wait();
                    (run, status)
                }),
            )
            .await;
            match status {
                Ok(Ok((_, Ok(s)))) => assert!(s.success(), "round {round}: run exited with {s}"),
                Ok(other) => panic!("round {round}: cannot wait for run: {other:?}"),
                Err(_) => panic!(
                    "round {round}: two `lockhog run`s taking the same locks in opposite \
                     orders did not finish within {BOUND:?}: a deadlock"
                ),
            }
        }
    }
    all_free(&a, &set).await;
}
