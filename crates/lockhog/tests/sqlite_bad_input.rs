//! Bad input to the SQLite backend gives clear errors and never harms a file: a file that is
//! not SQLite, a missing directory, a relative path, a foreign table of the same name.

#![cfg(feature = "sqlite")]

mod sqlite_support;

use std::process::Command;

use lockhog::{Error, Locker};
use sqlite_support::{bin, TempDb};

fn siblings(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
    let db = TempDb::new();
    let content = "name,owner\nnightly-report,alice\n".repeat(200);
    std::fs::write(&db.path, &content).unwrap();
    let dir = db.path.parent().unwrap();
    let before = siblings(dir);
    match Locker::connect(&db.url("")).await {
        Err(Error::Backend { message, .. }) => {
            assert!(message.contains("not a SQLite database"), "{message}");
            assert!(
                message.contains(&db.path.display().to_string()),
                "{message}"
            );
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&db.path).unwrap(),
        content,
        "the file changed"
    );
    assert_eq!(
        siblings(dir),
        before,
        "files appeared beside it (-wal, -shm, -journal?)"
    );
}

#[tokio::test]
async fn a_missing_directory_is_an_error_and_is_not_created() {
    let db = TempDb::new();
    let missing = db.path.parent().unwrap().join("no/such/dir");
    let url = format!("sqlite://{}/locks.db", missing.display());
    match Locker::connect(&url).await {
        Err(Error::Backend { message, .. }) => {
            assert!(message.contains("does not create"), "{message}");
            assert!(message.contains("no/such/dir"), "{message}");
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
    assert!(
        !db.path.parent().unwrap().join("no").exists(),
        "a directory was created"
    );
}

#[tokio::test]
async fn a_directory_is_not_a_database() {
    let db = TempDb::new();
    let dir = db.path.parent().unwrap();
    match Locker::connect(&format!("sqlite://{}", dir.display())).await {
        Err(Error::Backend { message, .. }) => assert!(message.contains("directory"), "{message}"),
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn relative_and_remote_paths_and_unknown_options_are_invalid_urls() {
    let db = TempDb::new();
    for url in [
        "sqlite:locks.db".to_string(),
        "sqlite://locks.db".to_string(),
        "sqlite://host/tmp/locks.db".to_string(),
        "sqlite::memory:".to_string(),
        db.url("?bogus=1"),
        db.url("?synchronous=off"),
        format!(
            "sqlite://{}/bad%zzname.db",
            db.path.parent().unwrap().display()
        ),
    ] {
        match Locker::connect(&url).await {
            Err(Error::InvalidUrl { .. }) => {}
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
    assert!(!db.path.exists(), "a refused URL created the database");
}

#[tokio::test]
async fn synchronous_normal_is_accepted() {
    let db = TempDb::new();
    let locker = db.locker("?synchronous=normal").await;
    let g = locker.lock("x").try_acquire().await.unwrap();
    assert!(g.release().await.unwrap());
}

#[tokio::test]
async fn a_foreign_table_of_the_same_name_is_refused_and_left_alone() {
    let db = TempDb::new();
    let raw = db.raw();
    raw.execute_batch(
        "CREATE TABLE lockhog_locks (id INTEGER PRIMARY KEY, note TEXT);
         INSERT INTO lockhog_locks (note) VALUES ('mine');",
    )
    .unwrap();
    match Locker::connect(&db.url("")).await {
        Err(Error::Backend { message, .. }) => {
            assert!(message.contains("lockhog_locks"), "{message}")
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
    let note: String = raw
        .query_row("SELECT note FROM lockhog_locks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(note, "mine");
}

#[tokio::test]
async fn an_applications_own_database_keeps_its_tables() {
    let db = TempDb::new();
    let raw = db.raw();
    raw.execute_batch(
        "CREATE TABLE locks (name TEXT PRIMARY KEY);
         INSERT INTO locks VALUES ('the application''s own');",
    )
    .unwrap();
    let locker = db.locker("").await;
    let g = locker.lock("report").try_acquire().await.unwrap();
    g.release().await.unwrap();
    let name: String = raw
        .query_row("SELECT name FROM locks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "the application's own");
}

/// The command line's exit codes: 69 for a database that cannot be used, 2 for a bad URL.
#[test]
fn the_command_line_exits_69_for_an_unusable_database_and_2_for_a_bad_url() {
    let db = TempDb::new();
    std::fs::write(&db.path, "not a database").unwrap();
    let missing = db.path.parent().unwrap().join("missing/locks.db");
    for (url, code) in [
        (db.url(""), 69),
        (format!("sqlite://{}", missing.display()), 69),
        ("sqlite://relative.db".to_string(), 2),
    ] {
        let out = Command::new(bin())
            .args(["hold", "-n", "-b", &url, "x"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{url}: {stderr}");
        assert!(stderr.starts_with("lockhog: "), "{stderr}");
    }
}
