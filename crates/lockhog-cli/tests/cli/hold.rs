//! `hold`: the held and released lines, waits, signals, `abandon`, names that need encoding.

use std::path::{Path, PathBuf};

use lockhog::url::percent_decode;

use crate::support::{hold, lockhog_cmd, Locks, Proc, TIMEOUT};

#[test]
fn hold_release_line_releases_and_run_is_refused_meanwhile() {
    // flock(2) locks, and POSIX record locks (owned per process: only another process sees
    // them, which is what `hold` is for).
    for query in ["", "?mode=fcntl"] {
        hold_then_release(&Locks::with_query(query));
    }
}

fn hold_then_release(locks: &Locks) {
    let mut h = locks.hold(&["-n", "payroll", "ledger"], 2);
    assert_eq!(h.name(0), "payroll");
    assert_eq!(h.name(1), "ledger");
    assert_eq!(
        PathBuf::from(h.resource(0)),
        locks.lock_file("payroll"),
        "file resource is the lock file's absolute path"
    );
    // Tokens grow per name (the conformance suite checks that); across names nothing is
    // promised, so only check they are tokens at all.
    assert!(
        h.token(0) > 0 && h.token(1) > 0,
        "fencing tokens start above zero"
    );

    let refused = locks.run("run", &["-n", "payroll", "--", "true"]);
    refused.assert_code(1);
    assert!(refused.stderr.contains("lockhog: "), "{refused:#?}");
    locks
        .run("run", &["-n", "-E", "7", "payroll", "--", "true"])
        .assert_code(7);
    locks
        .run("run", &["-w", "0.2", "ledger", "--", "true"])
        .assert_code(1);
    // The command never ran.
    let not_run = locks.run("run", &["-n", "ledger", "--", "echo", "ran"]);
    assert!(not_run.stdout.is_empty(), "{not_run:#?}");

    h.proc.send("release");
    assert_eq!(h.proc.line(), "released payroll");
    assert_eq!(h.proc.line(), "released ledger");
    assert!(h.proc.wait().success());
    assert_eq!(locks.try_run("payroll"), 0);
    assert_eq!(locks.try_run("ledger"), 0);
}

#[test]
fn hold_waits_for_the_lock_and_gives_up_at_its_bound() {
    let locks = Locks::new();
    let mut first = locks.hold(&["x"], 1);
    let gave_up = locks.run("hold", &["-w", "0.2", "x"]);
    gave_up.assert_code(1);
    assert!(gave_up.stdout.is_empty(), "{gave_up:#?}");
    // The message says how many attempts were made ("1 attempt": the file backend waits in
    // one blocking call).
    assert!(
        gave_up.stderr.contains("was not acquired within") && gave_up.stderr.contains(" attempt"),
        "{gave_up:#?}"
    );
    // Without -n or -w, a second holder waits, and gets the lock when the first lets go.
    let mut second = Proc::spawn(locks.cmd("hold", &["x"]), "second hold");
    first.proc.send("release");
    assert_eq!(first.proc.line(), "released x");
    assert!(first.proc.wait().success());
    let line = second.line();
    assert!(line.starts_with("held x "), "{line:?}");
    let first_token = first.token(0);
    let second_token: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        second_token > first_token,
        "{line:?} after token {first_token}"
    );
    second.send("release");
    assert_eq!(second.line(), "released x");
    assert!(second.wait().success());
}

#[test]
fn hold_end_of_input_releases() {
    let locks = Locks::new();
    let mut h = locks.hold(&["x"], 1);
    assert_eq!(locks.try_run("x"), 1);
    h.proc.close_stdin();
    assert_eq!(h.proc.line(), "released x");
    assert!(h.proc.wait().success());
    assert_eq!(locks.try_run("x"), 0);
}

#[test]
fn hold_json_lines() {
    let locks = Locks::new();
    let mut p = Proc::spawn(locks.cmd("hold", &["--json", "a b"]), "hold --json");
    let held: serde_json::Value = serde_json::from_str(&p.line()).expect("JSON line");
    assert_eq!(held["event"], "held");
    assert_eq!(held["name"], "a b");
    assert_eq!(
        held["resource"],
        locks.lock_file("a%20b").display().to_string()
    );
    assert!(held["token"].as_u64().is_some_and(|t| t > 0), "{held}");
    p.send("release");
    let released: serde_json::Value = serde_json::from_str(&p.line()).expect("JSON line");
    assert_eq!(
        released,
        serde_json::json!({"event": "released", "name": "a b"})
    );
    assert!(p.wait().success());
}

#[test]
fn hold_abandon_exits_without_release_and_the_fd_lock_dies() {
    let locks = Locks::new();
    let mut h = locks.hold(&["x", "y"], 2);
    h.proc.send("abandon");
    let done = h.proc.finish();
    done.assert_code(0);
    assert!(done.stdout.is_empty(), "no released lines: {done:#?}");
    // flock locks die with the process's descriptors.
    assert_eq!(locks.try_run("x"), 0);
    assert_eq!(locks.try_run("y"), 0);
}

#[test]
fn hold_signals_release_like_end_of_input() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let locks = Locks::new();
        let mut h = locks.hold(&["x"], 1);
        h.proc.signal(sig);
        assert_eq!(h.proc.line(), "released x", "signal {sig}");
        assert!(h.proc.wait().success(), "signal {sig}");
        assert_eq!(locks.try_run("x"), 0);
    }
}

#[test]
fn hold_warns_on_unknown_lines_and_keeps_holding() {
    let locks = Locks::new();
    let mut h = locks.hold(&["x"], 1);
    h.proc.send("relase");
    let warning = h.proc.stderr.recv_timeout(TIMEOUT).expect("a warning");
    assert!(warning.contains("relase"), "{warning}");
    assert_eq!(locks.try_run("x"), 1, "still held");
    h.proc.send("release");
    assert_eq!(h.proc.line(), "released x");
    assert!(h.proc.wait().success());
}

#[test]
fn hold_is_all_or_nothing() {
    let locks = Locks::new();
    let mut other = locks.hold(&["b"], 1);
    let failed = locks.run("hold", &["-n", "a", "b"]);
    failed.assert_code(1);
    assert!(failed.stdout.is_empty(), "{failed:#?}");
    assert_eq!(locks.try_run("a"), 0, "a was given back");
    other.proc.send("release");
    assert!(other.proc.wait().success());
}

#[test]
fn names_with_spaces_percent_and_controls_stay_four_fields() {
    let locks = Locks::new();
    let names = [
        "with space",
        "50%",
        "tab\there",
        "new\nline",
        "del\x7f",
        "bell\x07",
        "%20",
        "é ü",
    ];
    let mut h = locks.hold(&names, names.len());
    for (i, name) in names.iter().enumerate() {
        assert_eq!(h.name(i), *name);
        let resource = h.resource(i);
        assert!(Path::new(&resource).exists(), "{resource:?}");
    }
    h.proc.send("release");
    for name in names {
        let line = h.proc.line();
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 2, "{line:?}");
        assert_eq!(fields[0], "released");
        assert_eq!(percent_decode(fields[1]).as_deref(), Some(name));
    }
    assert!(h.proc.wait().success());
}

#[test]
fn default_backend_comes_from_lockhog_url() {
    let locks = Locks::new();
    let mut cmd = lockhog_cmd();
    cmd.env("LOCKHOG_URL", locks.url())
        .args(["hold", "from-env"]);
    let mut h = hold(cmd, "hold from env", 1);
    assert_eq!(PathBuf::from(h.resource(0)), locks.lock_file("from-env"));
    h.proc.send("release");
    assert!(h.proc.wait().success());
}
