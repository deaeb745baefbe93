//! Shared (reader) locks on `file:`: readers' fencing tokens never repeat although readers
//! bump one counter together; in `?mode=fcntl` one reader's release leaves another reader's
//! lock of the same process in place, and a writer waiting in this process holds back this
//! process's later readers (the in-process FIFO table).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use common::BOUND;
use lockhog::{Error, Locker};

async fn locker(dir: &Path, query: &str) -> Locker {
    Locker::connect(&format!("file://{}{query}", dir.display()))
        .await
        .unwrap()
}

/// Eight tasks on two lockers take overlapping shared locks of one name, forty times each:
/// every token differs, and a writer afterwards gets one above them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_tokens_never_repeat() {
    for query in ["", "?mode=fcntl"] {
        let dir = tempfile::tempdir().unwrap();
        let lockers = [
            locker(dir.path(), query).await,
            locker(dir.path(), query).await,
        ];
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let locker = lockers[i % 2].clone();
                tokio::spawn(async move {
                    let mut tokens = Vec::new();
                    for _ in 0..40 {
                        let g = locker
                            .lock("readers")
                            .shared()
                            .wait_for(BOUND)
                            .await
                            .unwrap();
                        tokens.push(g.fencing_token().expect("a named lock has a token"));
                        tokio::task::yield_now().await;
                        assert!(g.release().await.unwrap());
                    }
                    tokens
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(tokio::time::timeout(BOUND, t).await.unwrap().unwrap());
        }
        let distinct: HashSet<u64> = all.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            all.len(),
            "{query}: a reader's token repeated"
        );
        let writer = lockers[0].lock("readers").try_acquire().await.unwrap();
        assert!(writer.fencing_token().unwrap() > *all.iter().max().unwrap());
    }
}

/// Python's `fcntl.lockf(LOCK_EX | LOCK_NB)` on `path` from another process: true when it got
/// the lock. (Python is a test dependency of the workspace: its absence fails the test.)
fn python_lockf_ex(path: &Path) -> bool {
    let script = "import fcntl, sys\n\
        f = open(sys.argv[1], 'r+')\n\
        try:\n    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
        except BlockingIOError:\n    sys.exit(1)\n";
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .status()
        .expect("python3");
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("python3 failed: {other:?}"),
    }
}

/// Two readers of one process in fcntl mode; the first releases; another process still cannot
/// take a write lock (POSIX record locks of a process would all go with the first close).
#[tokio::test]
async fn fcntl_one_readers_release_keeps_the_other_readers_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        locker(dir.path(), "?mode=fcntl").await,
        locker(dir.path(), "?mode=fcntl").await,
    );
    let first = a.lock("kept").shared().try_acquire().await.unwrap();
    let second = b.lock("kept").shared().try_acquire().await.unwrap();
    let path = Path::new(second.resource()).to_path_buf();
    assert!(first.release().await.unwrap());
    assert!(
        !python_lockf_ex(&path),
        "another process took a write lock while a reader still held"
    );
    assert!(second.release().await.unwrap());
    assert!(python_lockf_ex(&path), "not free after both released");
}

/// fcntl mode, one process: reader A holds; a writer waits; a new reader of this process is
/// refused at once (it would come after the writer); once A releases, the writer gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcntl_waiting_writer_holds_back_later_readers_of_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        locker(dir.path(), "?mode=fcntl").await,
        locker(dir.path(), "?mode=fcntl").await,
    );
    let reader = a.lock("fifo").shared().try_acquire().await.unwrap();
    let writer_locker = b.clone();
    let writer = tokio::spawn(async move { writer_locker.lock("fifo").wait_for(BOUND).await });
    // Until the writer is queued a new reader gets in; once it is, every new reader is
    // refused: a bounded stream of readers finds that moment.
    tokio::time::timeout(BOUND, async {
        loop {
            assert!(!writer.is_finished(), "the writer got in beside a reader");
            match a.lock("fifo").shared().try_acquire().await {
                Ok(g) => assert!(g.release().await.unwrap()),
                Err(Error::Contended { .. }) => break,
                Err(e) => panic!("{e}"),
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("no new reader was ever refused behind the waiting writer");
    for l in [&a, &b] {
        assert!(matches!(
            l.lock("fifo").shared().try_acquire().await,
            Err(Error::Contended { .. })
        ));
    }
    let token = reader.fencing_token().unwrap();
    assert!(reader.release().await.unwrap());
    let writer = tokio::time::timeout(BOUND, writer)
        .await
        .expect("the writer did not get the lock")
        .unwrap()
        .unwrap();
    assert!(writer.fencing_token().unwrap() > token);
}
