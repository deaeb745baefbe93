//! `run`: the command's status, the lock held while it runs, signals, several locks.

use crate::support::{bin, Locks, Proc, TIMEOUT};

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

#[test]
fn run_with_fencing_off_leaves_the_fencing_token_unset() {
    let off = Locks::with_query("?fencing=off");
    let fenced = format!("file://{}", off.path().display());
    // The lock is still a lock (a fenced `run` of the same name is refused meanwhile), and a
    // token in our own environment does not leak into the command's.
    let script = r#"echo "token=${LOCKHOG_FENCING_TOKEN-unset}"; "$BIN" run -b "$FENCED" -n job -- true; echo "fenced=$?""#;
    let mut cmd = off.cmd("run", &["job", "--", "sh", "-c", script]);
    cmd.env("LOCKHOG_FENCING_TOKEN", "999")
        .env("BIN", bin())
        .env("FENCED", &fenced);
    let out = Proc::spawn(cmd, "run with fencing=off").finish();
    out.assert_code(0);
    assert_eq!(out.stdout, ["token=unset", "fenced=1"], "{out:#?}");

    // The same directory without the option: a token.
    let mut cmd = crate::support::lockhog_cmd();
    cmd.args(["run", "-b", &fenced, "job", "--", "sh", "-c"])
        .arg(r#"echo "token=${LOCKHOG_FENCING_TOKEN-unset}""#);
    let out = Proc::spawn(cmd, "run fenced").finish();
    out.assert_code(0);
    let token = out.stdout[0].strip_prefix("token=").unwrap_or_default();
    assert!(token.parse::<u64>().is_ok_and(|t| t > 0), "{out:#?}");
}
