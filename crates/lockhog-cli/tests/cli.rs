//! The `lockhog` binary against the command-line contract (docs/cli.md), on the file backend.
//!
//! No test sleeps to wait for a state: every wait is on a line, a pipe or a process exit, and
//! every wait is bounded by [`TIMEOUT`], failing the test with a message when it runs out.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use lockhog::percent_decode;
use support::{bin, hold, lockhog_cmd, Finished, Locks, Proc, TIMEOUT};
// ---------------------------------------------------------------------------------------
// hold

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

// ---------------------------------------------------------------------------------------
// run

#[test]
fn run_holds_every_name_while_the_command_runs() {
    let locks = Locks::new();
    // The command tries each lock itself (the binary and URL reach it through its
    // environment, never spliced into the script): both are held. Its environment names the
    // first lock of the command line.
    let script = r#""$BIN" run -n a -- true; echo "a=$?"; "$BIN" run -n b -- true; echo "b=$?"; echo "name=$LOCKHOG_NAME""#;
    let mut cmd = locks.cmd("run", &["b", "a", "--", "sh", "-c", script]);
    cmd.env("BIN", bin()).env("LOCKHOG_URL", locks.url());
    let out = Proc::spawn(cmd, "run b a").finish();
    out.assert_code(0);
    assert_eq!(out.stdout, ["a=1", "b=1", "name=b"], "{out:#?}");
    assert_eq!(locks.try_run("a"), 0);
    assert_eq!(locks.try_run("b"), 0);

    // One of them held elsewhere: nothing runs, and the other is not kept.
    let mut holder = locks.hold(&["b"], 1);
    let refused = locks.run("run", &["-n", "a", "b", "--", "echo", "ran"]);
    refused.assert_code(1);
    assert!(refused.stdout.is_empty(), "{refused:#?}");
    assert_eq!(locks.try_run("a"), 0);
    holder.proc.send("release");
    assert_eq!(holder.proc.line(), "released b");
    assert!(holder.proc.wait().success());
}

#[test]
fn run_exits_with_the_command_status() {
    let locks = Locks::new();
    locks
        .run("run", &["x", "--", "sh", "-c", "exit 3"])
        .assert_code(3);
    let out = locks.run("run", &["x", "--", "echo", "hello", "world"]);
    out.assert_code(0);
    assert_eq!(out.stdout, ["hello world"]);
    // Killed by a signal: 128+N, as shells say it.
    locks
        .run("run", &["x", "--", "sh", "-c", "kill -9 $$"])
        .assert_code(128 + libc::SIGKILL);
}

#[test]
fn run_holds_the_lock_while_the_command_runs() {
    let locks = Locks::new();
    let url = locks.url();
    let out = locks.run(
        "run",
        &[
            "same",
            "--",
            "sh",
            "-c",
            r#""$0" run -b "$1" -n same -- true; echo "inner=$?""#,
            bin(),
            &url,
        ],
    );
    out.assert_code(0);
    assert_eq!(out.stdout, ["inner=1"], "{out:#?}");
    assert_eq!(locks.try_run("same"), 0, "released after the command");
}

#[test]
fn run_reports_commands_that_cannot_start_and_releases() {
    let locks = Locks::new();
    let missing = locks.run("run", &["x", "--", "no-such-command-lockhog-test"]);
    missing.assert_code(127);
    assert!(
        missing.stderr.contains("no-such-command-lockhog-test"),
        "{missing:#?}"
    );
    let not_exec = locks.path().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let denied = locks.run("run", &["x", "--", not_exec.to_str().unwrap()]);
    denied.assert_code(126);
    assert!(denied.stderr.contains("not-executable"), "{denied:#?}");
    assert_eq!(locks.try_run("x"), 0);
}

/// A child that says `ready`, then waits; on `sig` it checks that the lock is still held
/// (lockhog must release only after the child exits), says so and exits 5.
fn trapping_child(locks: &Locks, sig: &str) -> Proc {
    let script = format!(
        r#"trap '"$0" run -b "$1" -n x -- true; echo "got-{sig} inner=$?"; kill $p; exit 5' {sig}
sleep 1000 >/dev/null 2>&1 &
p=$!
echo ready
wait $p"#
    );
    let url = locks.url();
    let cmd = locks.cmd("run", &["x", "--", "sh", "-c", &script, bin(), &url]);
    Proc::spawn(cmd, &format!("run with a {sig} trap"))
}

#[test]
fn run_forwards_sigterm_and_sigint_and_releases_after_the_child() {
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGINT, "INT")] {
        let locks = Locks::new();
        let mut p = trapping_child(&locks, name);
        assert_eq!(p.line(), "ready");
        p.signal(sig);
        assert_eq!(p.line(), format!("got-{name} inner=1"));
        let done = p.finish();
        done.assert_code(5);
        assert_eq!(locks.try_run("x"), 0);
    }
}

#[test]
fn a_signal_while_waiting_for_the_lock_ends_run_without_running_the_command() {
    let locks = Locks::new();
    let mut h = locks.hold(&["x"], 1);
    let mut cmd = locks.cmd("run", &["x", "--", "echo", "ran"]);
    // The log line says the handlers are in place and the wait has begun.
    cmd.env("RUST_LOG", "lockhog=info");
    let waiting = Proc::spawn(cmd, "run waiting for x");
    loop {
        let line = waiting
            .stderr
            .recv_timeout(TIMEOUT)
            .expect("a log line on stderr");
        if line.contains("acquiring") {
            break;
        }
    }
    waiting.signal(libc::SIGTERM);
    let done = waiting.finish();
    done.assert_code(128 + libc::SIGTERM);
    assert!(done.stdout.is_empty(), "{done:#?}");
    h.proc.send("release");
    assert!(h.proc.wait().success());
}

// ---------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------
// status and cleanup

#[test]
fn status_shows_the_holder_then_free() {
    let locks = Locks::new();
    let mut h = locks.hold(&["payroll"], 1);
    let resource = locks.lock_file("payroll").display().to_string();
    let held = format!("held payroll {resource} pid%20{}", h.proc.pid);

    // A held lock reported `free` here, under load, is the library's /proc/locks read race
    // (it reads the file in many small read(2) calls, between which the kernel's list moves).
    let named = locks.run("status", &["payroll"]);
    named.assert_code(0);
    assert_eq!(named.stdout, std::slice::from_ref(&held), "{named:#?}");
    let all = locks.run("status", &[]);
    assert_eq!(all.stdout, [held], "{all:#?}");
    let json = locks.run("status", &["--json", "payroll"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout[0]).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "name": "payroll",
            "resource": resource,
            "state": "held",
            "holder": format!("pid {}", h.proc.pid),
        })
    );

    h.proc.send("release");
    assert!(h.proc.wait().success());
    let free = locks.run("status", &["payroll"]);
    assert_eq!(free.stdout, [format!("free payroll {resource}")]);
    // A name never used is free too.
    let never = locks.run("status", &["--json", "never"]);
    let v: serde_json::Value = serde_json::from_str(&never.stdout[0]).unwrap();
    assert_eq!(v["state"], "free");
    assert_eq!(v["holder"], serde_json::Value::Null);
}

#[test]
fn status_of_unrecoverable_names_prints_a_dash() {
    let locks = Locks::new();
    let long = "n".repeat(300); // shortened to prefix~digest: the name cannot be recovered
    let mut h = locks.hold(&[&long], 1);
    let all = locks.run("status", &[]);
    assert_eq!(all.stdout.len(), 1, "{all:#?}");
    let fields: Vec<&str> = all.stdout[0].split(' ').collect();
    assert_eq!(&fields[..2], ["held", "-"], "{all:#?}");
    let json = locks.run("status", &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout[0]).unwrap();
    assert_eq!(v["name"], serde_json::Value::Null);
    h.proc.send("release");
    assert!(h.proc.wait().success());
}

#[test]
fn cleanup_removes_unheld_files_and_keeps_held_ones() {
    let locks = Locks::new();
    assert_eq!(locks.try_run("stale"), 0);
    assert!(locks.lock_file("stale").exists());
    let mut h = locks.hold(&["busy"], 1);
    let done = locks.run("cleanup", &[]);
    done.assert_code(0);
    assert_eq!(done.stdout, ["cleanup: removed 1 kept 1"]);
    assert!(!locks.lock_file("stale").exists());
    assert!(locks.lock_file("busy").exists());
    assert_eq!(
        locks.try_run("busy"),
        1,
        "cleanup did not break the held lock"
    );
    h.proc.send("release");
    assert!(h.proc.wait().success());
}

// ---------------------------------------------------------------------------------------
// help

#[test]
fn every_subcommand_has_examples() {
    for sub in ["run", "hold", "status", "cleanup"] {
        let mut cmd = lockhog_cmd();
        cmd.args([sub, "--help"]);
        let done = Proc::spawn(cmd, &format!("{sub} --help")).finish();
        done.assert_code(0);
        let text = done.stdout.join("\n");
        assert!(text.contains("Examples:"), "{sub}: {text}");
        assert!(text.contains(&format!("lockhog {sub}")), "{sub}: {text}");
    }
}
