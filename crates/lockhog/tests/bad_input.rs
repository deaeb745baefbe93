//! Bad URLs, names and options: a clear error of the right kind, before any I/O, and nothing
//! created on disk.

use std::time::Duration;

use lockhog::{Error, Locker, RetryPolicy};

async fn connect_err(url: &str) -> Error {
    Locker::connect(url).await.expect_err(url)
}

#[tokio::test]
async fn unknown_and_unbuilt_schemes_are_invalid_urls() {
    for url in ["nosuch://x", "no-colon", "", "://x"] {
        assert!(
            matches!(connect_err(url).await, Error::InvalidUrl { .. }),
            "{url}"
        );
    }
    let e = connect_err("postgres://app:hunter2@127.0.0.1:1/db").await;
    // Not built: an invalid URL. Built: nothing listens on port 1, a backend error.
    if cfg!(feature = "postgres") {
        assert!(matches!(e, Error::Backend { .. }), "{e}");
    } else {
        assert!(matches!(e, Error::InvalidUrl { .. }), "{e}");
    }
    assert!(
        !format!("{e} {e:?}").contains("hunter2"),
        "password leaked: {e}"
    );
    assert!(matches!(
        connect_err("mem:somewhere").await,
        Error::InvalidUrl { .. }
    ));
}

#[tokio::test]
async fn relative_and_remote_paths_create_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    for url in [
        "file://relative/dir",
        "file:relative",
        "file://otherhost/tmp/x",
    ] {
        assert!(
            matches!(connect_err(url).await, Error::InvalidUrl { .. }),
            "{url}"
        );
    }
    assert!(!std::path::Path::new("relative").exists());
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn unknown_options_are_refused_before_the_directory_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("not-yet");
    for query in [
        "?bogus=1",
        "?mode=lockf",
        "?ttl=0",
        "?ttl=soon",
        "?namespace=",
    ] {
        let e = connect_err(&format!("file://{}{query}", target.display())).await;
        assert!(
            matches!(e, Error::InvalidUrl { .. } | Error::InvalidOption { .. }),
            "{query}: {e}"
        );
        assert!(!target.exists(), "{query} created the directory");
    }
}

#[tokio::test]
async fn unusable_directories_are_backend_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    for path in [
        file.clone(),
        file.join("below"),
        "/proc/lockhog-cannot-exist".into(),
    ] {
        let e = connect_err(&format!("file://{}", path.display())).await;
        assert!(
            matches!(
                e,
                Error::Backend {
                    backend: "file",
                    ..
                }
            ),
            "{}: {e}",
            path.display()
        );
    }
}

#[tokio::test]
async fn bad_requests_fail_before_any_io() {
    let dir = tempfile::tempdir().unwrap();
    let locker = Locker::connect(&format!("file://{}", dir.path().display()))
        .await
        .unwrap();
    let e = locker
        .lock("x")
        .ttl(Duration::ZERO)
        .try_acquire()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e}");
    let e = locker
        .lock("x")
        .retry(RetryPolicy::default().initial(Duration::ZERO))
        .wait()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e}");
    let e = locker.lock("").wait().await.unwrap_err();
    assert!(
        matches!(e, Error::InvalidName { .. }) && !e.is_not_acquired(),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a refused request touched the disk"
    );
}

#[tokio::test]
async fn unsupported_modes_are_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let file = Locker::connect(&format!("file://{}", dir.path().display()))
        .await
        .unwrap();
    let mem = Locker::connect("mem:").await.unwrap();
    for e in [
        mem.lock("x").shared().try_acquire().await.unwrap_err(),
        file.lock("x").fair().try_acquire().await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::InvalidOption { .. }), "{e}");
    }
    assert!(mem.capabilities().fair);
    mem.lock("fair-ok").fair().try_acquire().await.unwrap();
}

#[tokio::test]
async fn fencing_is_on_or_off_and_nothing_else() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("locks");
    for bad in ["maybe", "OFF", "0", "false", "", "sequence", "table"] {
        let url = format!("file://{}?fencing={bad}", dir.display());
        match connect_err(&url).await {
            Error::InvalidOption { reason } => {
                assert!(reason.contains("`on` or `off`"), "{bad:?}: {reason}")
            }
            e => panic!("{bad:?}: expected InvalidOption, got {e}"),
        }
        assert!(!dir.exists(), "{bad:?}: the lock directory was created");
        let e = connect_err(&format!("mem:?fencing={bad}")).await;
        assert!(matches!(e, Error::InvalidOption { .. }), "{bad:?}: {e}");
    }
    for (value, token) in [("on", true), ("off", false)] {
        let url = format!("file://{}?fencing={value}", dir.display());
        let locker = Locker::connect(&url).await.unwrap();
        let guard = locker.lock("job").try_acquire().await.unwrap();
        assert_eq!(guard.fencing_token().is_some(), token, "fencing={value}");
    }
}
