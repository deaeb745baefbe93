//! The checks for shared (reader) locks ([`LockRequest::shared`](crate::LockRequest::shared)):
//! readers coexist and a writer excludes them, each with a fencing token; where the backend
//! claims [`Capabilities::shared_writer_priority`](crate::Capabilities::shared_writer_priority),
//! a waiting writer — in this process or in another — is not starved by new readers; and
//! refusal on backends without shared locks.

use tokio::task::JoinHandle;

use super::checks::{bounded, hold, token_of, NO_URL};
use super::process::HoldProcess;
use super::{assert_not_acquired, not_applicable, Target};
use crate::{Error, LockGuard, Locker};

/// False (with the reason printed) when the backend has no shared locks, after checking that
/// it refuses them with an `InvalidOption` naming "shared" rather than taking an exclusive
/// lock instead.
async fn has_shared(check: &str, locker: &Locker) -> bool {
    if locker.capabilities().shared {
        return true;
    }
    match locker
        .lock("conformance-shared-refused")
        .shared()
        .try_acquire()
        .await
    {
        Err(Error::InvalidOption { reason }) => {
            assert!(
                reason.contains("shared"),
                "the refusal does not say why: {reason}"
            )
        }
        other => panic!("a backend without shared locks must refuse them, got {other:?}"),
    }
    not_applicable(check, "the backend has no shared locks (and refuses them)");
    false
}

/// False (with the reason printed) when the backend does not claim writer priority.
async fn claims_writer_priority(check: &str, locker: &Locker) -> bool {
    if !has_shared(check, locker).await {
        return false;
    }
    if !locker.capabilities().shared_writer_priority {
        not_applicable(check, "the backend does not claim writer priority");
        return false;
    }
    true
}

async fn try_shared(locker: &Locker, name: &str, what: &str) -> LockGuard {
    locker
        .lock(name)
        .shared()
        .try_acquire()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Two readers from two lockers (and a third from the first locker) hold together, each with
/// a fencing token; a writer's try fails while they hold; once they release, the writer
/// acquires with a token above theirs, and then a reader's try fails and a waiting reader
/// wakes on the writer's release with a token above the writer's.
pub async fn shared_readers_coexist_writer_excludes(t: &Target) {
    let (a, b) = (t.locker().await, t.locker().await);
    if !has_shared("shared_readers_coexist_writer_excludes", &a).await {
        return;
    }
    let name = "conformance-shared-coexist";
    let readers = [
        try_shared(&a, name, "a reader of a free lock").await,
        try_shared(&b, name, "a second reader beside the first").await,
        try_shared(&a, name, "a third reader, on the first one's locker").await,
    ];
    let top = readers.iter().map(token_of).max().expect("three readers");
    for locker in [&a, &b] {
        assert_not_acquired(locker.lock(name).try_acquire().await, "contended");
    }
    for r in readers {
        assert!(
            r.release().await.unwrap(),
            "a reader's release said it was not ours"
        );
    }
    let writer = a
        .lock(name)
        .try_acquire()
        .await
        .unwrap_or_else(|e| panic!("the writer after every reader released: {e}"));
    assert!(
        token_of(&writer) > top,
        "the writer's token is not above the readers'"
    );
    for locker in [&a, &b] {
        assert_not_acquired(locker.lock(name).shared().try_acquire().await, "contended");
    }
    let waiting = tokio::spawn(async move { hold(b.lock(name).shared()).await });
    tokio::task::yield_now().await;
    assert!(
        !waiting.is_finished(),
        "a reader acquired while a writer held"
    );
    let writer_token = token_of(&writer);
    assert!(writer.release().await.unwrap());
    let reader = bounded("the waiting reader", waiting)
        .await
        .expect("the waiting reader panicked");
    assert!(token_of(&reader) > writer_token);
    assert!(reader.release().await.unwrap());
}

/// A stream of new readers from `lockers`, each released at once, until one is refused
/// (within the wait bound): what a writer that waits behind the current reader must bring
/// about. Panics if `writer_done` says the writer got in while a reader held.
async fn readers_until_refused(lockers: &[&Locker], name: &str, writer_done: impl Fn() -> bool) {
    bounded("a new reader refused behind the waiting writer", async {
        for i in 0.. {
            assert!(!writer_done(), "the writer acquired while a reader held");
            match lockers[i % lockers.len()]
                .lock(name)
                .shared()
                .try_acquire()
                .await
            {
                Ok(reader) => assert!(reader.release().await.unwrap()),
                Err(Error::Contended { .. }) => return,
                Err(e) => panic!("a reader's try failed: {e}"),
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    // Once queued, the writer keeps every new reader out, from every locker.
    for locker in lockers {
        assert_not_acquired(locker.lock(name).shared().try_acquire().await, "contended");
    }
    assert!(!writer_done(), "the writer acquired while a reader held");
}

/// Reader A holds; a writer from another locker waits; new readers try, from both lockers,
/// until one is refused, which must happen while A still holds (the writer is queued); every
/// later reader is refused too; A releases and the writer gets the lock with a greater token.
/// Then the same with the writer in another process (`lockhog hold`), where the target has a
/// URL and the backend is cross-process.
pub async fn shared_waiting_writer_is_not_starved(t: &Target) {
    let check = "shared_waiting_writer_is_not_starved";
    let (a, b) = (t.locker().await, t.locker().await);
    if !claims_writer_priority(check, &a).await {
        return;
    }
    let name = "conformance-shared-priority";
    let first = try_shared(&a, name, "reader A of a free lock").await;
    let writer_locker = b.clone();
    let writer: JoinHandle<LockGuard> =
        tokio::spawn(async move { hold(writer_locker.lock(name)).await });
    readers_until_refused(&[&a, &b], name, || writer.is_finished()).await;
    let first_token = token_of(&first);
    assert!(first.release().await.unwrap());
    let writer = bounded("the waiting writer", writer)
        .await
        .expect("the writer panicked");
    assert!(token_of(&writer) > first_token);
    assert!(writer.release().await.unwrap());

    if !a.capabilities().cross_process {
        return not_applicable(check, "(another process) the backend is in-process only");
    }
    let Some(url) = t.url() else {
        return not_applicable(check, NO_URL);
    };
    let name = "conformance-shared-priority-process";
    let first = try_shared(&a, name, "reader A of a free lock").await;
    let mut writer = HoldProcess::spawn(&t.hold_bin(), url, &[], &[name]);
    readers_until_refused(&[&a, &b], name, || false).await;
    if let Some(line) = writer.try_next_line() {
        panic!("the writer process acquired while a reader held: {line}");
    }
    let first_token = token_of(&first);
    assert!(first.release().await.unwrap());
    tokio::task::block_in_place(|| writer.await_held(1));
    let token = writer.held[0].token.expect("a named lock has a token");
    assert!(token > first_token);
    writer.send("release");
    assert!(tokio::task::block_in_place(|| writer.wait()).success());
}
