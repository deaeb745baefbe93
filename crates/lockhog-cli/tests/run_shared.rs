//! `lockhog run --shared` and `hold --shared`: shared commands run at once under one name, a
//! plain (exclusive) `run` waits for all of them, and backends without shared locks refuse
//! the option with exit 2.
//!
//! Commands are `sh -c` scripts that print their token and `ready`, then block reading stdin:
//! two `ready` lines from two live commands prove they held the lock together. Every wait is
//! on a line or an exit, bounded by the support module's TIMEOUT.

#[allow(dead_code)] // helpers for the other test files too
mod support;

use std::path::Path;
use std::process::Command;

use support::{lockhog_cmd, Proc};

/// Prints the fencing token, then `ready`; then waits for a line, appends `done <token>` to
/// the log file `$1`, and exits 0.
const READER: &str = r#"echo "token=$LOCKHOG_FENCING_TOKEN"
echo ready
read line
echo "done $LOCKHOG_FENCING_TOKEN" >> "$1""#;

/// Prints what the log file `$1` holds when it starts.
const WRITER: &str = r#"echo "token=$LOCKHOG_FENCING_TOKEN"
cat "$1""#;

fn run_cmd(url: &str, args: &[&str], name: &str, script: &str, log: &Path) -> Command {
    let mut cmd = lockhog_cmd();
    cmd.args(["run", "-b", url])
        .args(args)
        .args([name, "--", "sh", "-c", script, "sh"])
        .arg(log);
    cmd
}

fn token(proc: &mut Proc) -> u64 {
    let line = proc.line();
    line.strip_prefix("token=")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("expected token=N, got {line:?}"))
}

/// Two `run --shared` hold the lock at once; a plain `run -n` is turned away (exit 1); a
/// plain `run` that waits starts only after both readers finished (it finds both their lines
/// in the log) and gets a greater token than both.
fn shared_runs_overlap_and_a_plain_run_waits(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let name = "run-shared";
    let mut readers: Vec<(Proc, u64)> = (0..2)
        .map(|i| {
            let cmd = run_cmd(url, &["--shared"], name, READER, &log);
            let mut p = Proc::spawn(cmd, &format!("lockhog run --shared (reader {i})"));
            let t = token(&mut p);
            assert_eq!(p.line(), "ready");
            (p, t)
        })
        .collect();
    assert_ne!(readers[0].1, readers[1].1, "two readers with one token");
    let turned_away =
        Proc::spawn(run_cmd(url, &["-n"], name, WRITER, &log), "lockhog run -n").finish();
    turned_away.assert_code(1);
    let mut writer = Proc::spawn(run_cmd(url, &[], name, WRITER, &log), "lockhog run");
    for (p, _) in &mut readers {
        p.send("go");
        assert_eq!(p.wait().code(), Some(0));
    }
    let writer_token = token(&mut writer);
    let mut seen = writer.rest_of_stdout();
    seen.sort();
    let mut want: Vec<String> = readers.iter().map(|(_, t)| format!("done {t}")).collect();
    want.sort();
    assert_eq!(seen, want, "the writer ran before both readers were done");
    assert!(readers.iter().all(|(_, t)| writer_token > *t));
    assert_eq!(writer.wait().code(), Some(0));
}

#[test]
fn shared_runs_overlap_and_a_plain_run_waits_for_them_flock() {
    let dir = tempfile::tempdir().unwrap();
    shared_runs_overlap_and_a_plain_run_waits(&format!("file://{}", dir.path().display()));
}

#[test]
fn shared_runs_overlap_and_a_plain_run_waits_for_them_fcntl() {
    let dir = tempfile::tempdir().unwrap();
    shared_runs_overlap_and_a_plain_run_waits(&format!(
        "file://{}?mode=fcntl",
        dir.path().display()
    ));
}

/// `hold --shared` beside another: both print `held` lines; a plain `hold -n` exits 1.
#[test]
fn shared_holds_coexist() {
    let locks = support::Locks::new();
    let a = locks.hold(&["--shared", "h"], 1);
    let b = locks.hold(&["--shared", "h"], 1);
    assert!(b.token(0) > a.token(0));
    locks.run("hold", &["-n", "h"]).assert_code(1);
    for mut h in [a, b] {
        h.proc.send("release");
        assert!(h.proc.finish().status.success());
    }
    locks.run("hold", &["-n", "h"]).assert_code(0);
}

/// A backend without shared locks refuses `--shared` with exit 2 and says why, before the
/// command runs; `--shared` with `--permits` is a usage error.
#[test]
fn shared_is_refused_where_the_backend_has_no_shared_locks() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let mut cmd = lockhog_cmd();
    cmd.args(["run", "-b", "mem:", "--shared", "x", "--", "touch"])
        .arg(&marker);
    let refused = Proc::spawn(cmd, "lockhog run --shared on mem:").finish();
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("no shared locks"),
        "{}",
        refused.stderr
    );
    assert!(!marker.exists(), "the command ran");
    let mut cmd = lockhog_cmd();
    cmd.args(["hold", "-b", "mem:", "--shared", "--permits", "2", "x"]);
    Proc::spawn(cmd, "lockhog hold --shared --permits")
        .finish()
        .assert_code(2);
}

/// `status` names every shared holder: `pid N shared` for each `flock -s` holder; in fcntl
/// mode, whose readers' locks the kernel lists without a pid, `shared` for each.
#[test]
fn status_names_every_shared_holder() {
    for (query, pids) in [("", true), ("?mode=fcntl", false)] {
        let locks = support::Locks::with_query(query);
        let holds = [
            locks.hold(&["--shared", "s"], 1),
            locks.hold(&["--shared", "s"], 1),
        ];
        let status = locks.run("status", &["--json", "s"]);
        status.assert_code(0);
        let line = &status.stdout[0];
        assert!(line.contains(r#""state":"held""#), "{query}: {line}");
        for h in &holds {
            let want = if pids {
                format!("pid {} shared", h.proc.pid)
            } else {
                "shared; shared".to_string()
            };
            assert!(line.contains(&want), "{query}: {want:?} not in {line}");
        }
        for mut h in holds {
            h.proc.send("release");
            assert!(h.proc.finish().status.success());
        }
    }
}

/// MySQL refuses `--shared` with exit 2 and says why: its named locks are exclusive only.
#[test]
fn mysql_refuses_shared_and_says_why() {
    let Some(url) = support::server("LOCKHOG_TEST_MYSQL_URL") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let mut cmd = lockhog_cmd();
    cmd.env("LOCKHOG_URL", url)
        .args(["run", "--shared", "x", "--", "touch"])
        .arg(&marker);
    let refused = Proc::spawn(cmd, "lockhog run --shared on mysql").finish();
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("exclusive only"),
        "{}",
        refused.stderr
    );
    assert!(!marker.exists(), "the command ran");
}

#[test]
fn shared_runs_overlap_and_a_plain_run_waits_for_them_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    shared_runs_overlap_and_a_plain_run_waits(&format!(
        "sqlite://{}/locks.db",
        dir.path().display()
    ));
}
