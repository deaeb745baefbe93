//! flock(1) against lockhog both ways, and bad input refused before anything is created.

use std::path::Path;
use std::process::Command;

use crate::support::{lockhog_cmd, Finished, Locks, Proc};

// flock(1) interop

fn flock_bin() -> Option<&'static str> {
    ["/usr/bin/flock", "/bin/flock"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

#[test]
fn flock_sees_locks_held_by_lockhog() {
    let Some(flock) = flock_bin() else {
        eprintln!("skipped: no flock(1)");
        return;
    };
    let locks = Locks::new();
    let mut h = locks.hold(&["shared"], 1);
    let lock_file = locks.lock_file("shared");
    let busy = Proc::spawn(
        {
            let mut c = Command::new(flock);
            c.arg("-n").arg(&lock_file).arg("true");
            c
        },
        "flock -n while held",
    )
    .finish();
    busy.assert_code(1);
    h.proc.send("release");
    assert!(h.proc.wait().success());
    let free = Proc::spawn(
        {
            let mut c = Command::new(flock);
            c.arg("-n").arg(&lock_file).arg("true");
            c
        },
        "flock -n after release",
    )
    .finish();
    free.assert_code(0);
}

#[test]
fn lockhog_sees_locks_held_by_flock() {
    let Some(flock) = flock_bin() else {
        eprintln!("skipped: no flock(1)");
        return;
    };
    let locks = Locks::new();
    let mut cmd = Command::new(flock);
    cmd.arg(locks.lock_file("shared"))
        .args(["-c", "echo ready; read line || :"]);
    let mut holder = Proc::spawn(cmd, "flock holding");
    assert_eq!(holder.line(), "ready");
    assert_eq!(locks.try_run("shared"), 1);
    holder.close_stdin();
    assert!(holder.wait().success());
    assert_eq!(locks.try_run("shared"), 0);
}

// bad input

fn assert_usage_error(done: &Finished) {
    assert_eq!(done.code(), 2, "{done:#?}");
    assert!(!done.stderr.trim().is_empty(), "a message: {done:#?}");
    assert!(done.stdout.is_empty(), "{done:#?}");
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn bad_input_is_a_usage_error_and_creates_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    // A lock directory that does not exist yet: connecting would create it.
    let url = format!("file://{}/locks", scratch.path().display());
    let long = "x".repeat(1025);
    let bogus = format!("{url}?bogus=1");
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "-b", &url, "", "--", "true"],
        vec!["hold", "-b", &url, ""],
        vec!["hold", "-b", &url, "ok", ""],
        vec!["status", "-b", &url, ""],
        vec!["run", "-b", &url, &long, "--", "true"],
        vec!["hold", "-b", &url, &long],
        vec!["run", "-b", "nosuch://x", "x", "--", "true"],
        vec!["hold", "-b", "nosuch://x", "x"],
        vec!["run", "-b", "file://relative/dir", "x", "--", "true"],
        vec!["status", "-b", "file://relative/dir"],
        vec!["cleanup", "-b", "file://relative/dir"],
        vec!["run", "-b", &url, "x", "--"],
        vec!["run", "-b", &url, "x"],
        vec!["run", "-b", &url, "-n", "-w", "1", "x", "--", "true"],
        vec!["hold", "-b", &url, "-n", "-w", "1", "x"],
        vec!["hold", "-b", &url, "-w", "soon", "x"],
        vec!["hold", "-b", &url, "-w", "-1", "x"],
        vec!["hold", "-b", &url, "--ttl", "0", "x"],
        vec!["run", "-b", &url, "-E", "256", "x", "--", "true"],
        vec!["hold", "-b", &url],
        vec!["hold", "-b", &url, "twice", "twice"],
        vec!["hold", "-b", &bogus, "x"],
        vec!["frobnicate"],
    ];
    for args in cases {
        let mut cmd = lockhog_cmd();
        cmd.args(&args).current_dir(scratch.path());
        let done = Proc::spawn(cmd, &format!("{args:?}")).finish();
        assert_usage_error(&done);
        assert!(
            entries(scratch.path()).is_empty(),
            "{args:?} created {:?}",
            entries(scratch.path())
        );
    }
}

#[test]
fn a_directory_that_cannot_be_created_is_a_backend_error() {
    let locks = Locks::new();
    for args in [
        vec![
            "run",
            "-b",
            "file:///proc/lockhog-test/x",
            "x",
            "--",
            "true",
        ],
        vec!["hold", "-b", "file:///proc/lockhog-test/x", "x"],
        vec!["status", "-b", "file:///proc/lockhog-test/x"],
        vec!["cleanup", "-b", "file:///proc/lockhog-test/x"],
    ] {
        let mut cmd = lockhog_cmd();
        cmd.args(&args);
        let done = Proc::spawn(cmd, &format!("{args:?}")).finish();
        done.assert_code(69);
        assert!(done.stderr.starts_with("lockhog: "), "{done:#?}");
    }
    assert!(entries(locks.path()).is_empty());
}

#[test]
fn passwords_never_reach_stderr() {
    for url in [
        "postgres://u:hunter2@127.0.0.1:1/db",
        "redis://:hunter2@127.0.0.1:1/0",
        "file:///tmp/lockhog-test-never?password=hunter2",
    ] {
        for args in [
            vec!["run", "-b", url, "x", "--", "true"],
            vec!["hold", "-b", url, "x"],
            vec!["status", "-b", url],
            vec!["cleanup", "-b", url],
        ] {
            for log in [None, Some("trace")] {
                let mut cmd = lockhog_cmd();
                cmd.args(&args);
                if let Some(log) = log {
                    cmd.env("RUST_LOG", log);
                }
                let done = Proc::spawn(cmd, &format!("{args:?}")).finish();
                assert_ne!(done.code(), 0, "{done:#?}");
                assert!(!done.stderr.is_empty(), "{done:#?}");
                assert!(!done.stderr.contains("hunter2"), "{done:#?}");
                assert!(!done.stdout.join("\n").contains("hunter2"), "{done:#?}");
            }
        }
    }
    // Nor through LOCKHOG_URL, whose value clap's help must not show either.
    for args in [vec!["hold", "x"], vec!["hold", "--help"]] {
        let mut cmd = lockhog_cmd();
        cmd.args(&args)
            .env("LOCKHOG_URL", "postgres://u:hunter2@127.0.0.1:1/db");
        let done = Proc::spawn(cmd, &format!("{args:?} via env")).finish();
        assert!(!done.stderr.contains("hunter2"), "{done:#?}");
        assert!(!done.stdout.join("\n").contains("hunter2"), "{done:#?}");
    }
}
