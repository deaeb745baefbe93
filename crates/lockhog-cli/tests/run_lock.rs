//! `lockhog run`'s command never runs without its lock: when `run` is SIGKILLed the command
//! is stopped or keeps the lock; when the lock is lost the command is stopped as `--on-lost`
//! says and `run` exits 75; the command learns the lock's name, resource and fencing token.
//!
//! Commands are `sh -c` scripts that print to `run`'s stdout (the test's pipe) and block
//! reading `run`'s stdin: a line sent by the test lets them finish. Every wait is on a line, a
//! pipe that closes or an exit, bounded by the support module's TIMEOUT.

#[allow(dead_code)] // helpers for the other test files too
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::{bin, lockhog_cmd, server, Locks, Proc};

/// How the script meets SIGTERM: noted (`t=1`, and the read is retried), ignored, or not
/// caught (it ends the shell).
const NOTE_TERM: &str = r#"trap 'echo term; t=1' TERM"#;
const IGNORE_TERM: &str = r#"trap '' TERM"#;
const DIE_ON_TERM: &str = ":";

/// A command that prints the lock's variables and `ready`, then waits for a line on stdin
/// (a SIGTERM it notes does not end the wait; end of input does), prints `done` and exits 3.
fn script(on_term: &str) -> String {
    format!(
        r#"{on_term}
echo "name=$LOCKHOG_NAME"
echo "resource=$LOCKHOG_RESOURCE"
echo "token=$LOCKHOG_FENCING_TOKEN"
echo ready
while :; do t=; read line && break; [ -n "$t" ] || exit 9; done
echo "done $line"
exit 3"#
    )
}

/// What the command printed before `ready`.
struct Started {
    proc: Proc,
    resource: String,
    token: u64,
}

/// Starts `lockhog run -b URL <args…> NAME -- sh -c <script>` and reads up to `ready`.
fn start(url: &str, args: &[&str], name: &str, on_term: &str) -> Started {
    let mut cmd = lockhog_cmd();
    cmd.args(["run", "-b", url])
        .args(args)
        .args([name, "--", "sh", "-c", &script(on_term)]);
    let mut proc = Proc::spawn(cmd, &format!("lockhog run {args:?} {name}"));
    let field = |proc: &mut Proc, key: &str| {
        let line = proc.line();
        line.strip_prefix(&format!("{key}="))
            .unwrap_or_else(|| panic!("expected {key}=…, got {line:?}"))
            .to_string()
    };
    assert_eq!(field(&mut proc, "name"), name);
    let resource = field(&mut proc, "resource");
    let token = field(&mut proc, "token");
    let token = token
        .parse()
        .unwrap_or_else(|_| panic!("LOCKHOG_FENCING_TOKEN {token:?} is not a number"));
    assert_eq!(proc.line(), "ready");
    Started {
        proc,
        resource,
        token,
    }
}

/// A unique lock name per test and process, so runs against shared servers never meet.
fn unique(what: &str) -> String {
    format!("run-lock-{what}-{}", std::process::id())
}

// ---------------------------------------------------------------------------------------
// The environment

#[test]
fn the_command_learns_the_lock_and_a_token_below_the_next_holders() {
    let locks = Locks::new();
    let mut first = start(&locks.url(), &[], "payroll", DIE_ON_TERM);
    assert_eq!(
        first.resource,
        locks.lock_file("payroll").display().to_string()
    );
    first.proc.send("go");
    let rest = first.proc.rest_of_stdout();
    assert_eq!(rest, ["done go"]);
    assert_eq!(first.proc.wait().code(), Some(3));
    let next = locks.hold(&["payroll"], 1);
    assert!(
        next.token(0) > first.token,
        "next holder's token {} not above the command's {}",
        next.token(0),
        first.token
    );
}

// ---------------------------------------------------------------------------------------
// SIGKILL of `lockhog run`

#[test]
fn on_file_a_killed_run_leaves_the_lock_with_its_command_which_gets_sigterm() {
    let locks = Locks::new();
    let mut run = start(&locks.url(), &[], "backup", NOTE_TERM);
    run.proc.signal(libc::SIGKILL);
    assert_eq!(run.proc.wait().code(), None, "killed");
    // The command was told (parent-death SIGTERM) and runs on, still holding the lock.
    assert_eq!(run.proc.line(), "term");
    assert_eq!(locks.try_run("backup"), 1, "the command keeps the lock");
    run.proc.send("go");
    assert_eq!(run.proc.rest_of_stdout(), ["done go"]);
    assert_eq!(locks.try_run("backup"), 0, "freed when the command exits");
}

/// SIGKILLs `run` and checks that its command dies with it (its stdout, which only the two
/// of them hold, closes without `done`).
fn killed_run_kills_its_command(url: &str, name: &str) {
    let mut run = start(url, &["--ttl", "5"], name, NOTE_TERM);
    run.proc.signal(libc::SIGKILL);
    assert_eq!(run.proc.wait().code(), None, "killed");
    let rest = run.proc.rest_of_stdout();
    assert!(rest.is_empty(), "the command went on: {rest:?}");
}

#[test]
fn on_fcntl_locks_a_killed_run_kills_its_command() {
    // Record locks belong to the process: the lock died with `run`, so must the command.
    let locks = Locks::with_query("?mode=fcntl");
    killed_run_kills_its_command(&locks.url(), "fcntl");
    assert_eq!(locks.try_run("fcntl"), 0);
}

#[test]
fn on_postgres_a_killed_run_kills_its_command() {
    if let Some(url) = server("LOCKHOG_TEST_POSTGRES_URL") {
        killed_run_kills_its_command(&url, &unique("pg-kill"));
    }
}

#[test]
fn on_redis_a_killed_run_kills_its_command() {
    // The lease outlives `run` by up to its ttl; the command must not.
    if let Some(url) = server("LOCKHOG_TEST_REDIS_URL") {
        killed_run_kills_its_command(&url, &unique("redis-kill"));
    }
}

#[test]
fn with_on_lost_warn_a_killed_run_leaves_its_command_running() {
    let locks = Locks::with_query("?mode=fcntl");
    let mut run = start(&locks.url(), &["--on-lost", "warn"], "w", NOTE_TERM);
    run.proc.signal(libc::SIGKILL);
    assert_eq!(run.proc.wait().code(), None, "killed");
    run.proc.send("go");
    assert_eq!(run.proc.rest_of_stdout(), ["done go"]);
}

// ---------------------------------------------------------------------------------------
// A lock lost while the command runs

/// Deletes `key` on the Redis server of `url` (no password on the test server).
fn redis_del(url: &str, key: &str) {
    let rest = url.strip_prefix("redis://").expect("a redis:// URL");
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = host.rsplit('@').next().unwrap_or(host);
    let mut conn = TcpStream::connect(host).expect("connect to redis");
    conn.set_read_timeout(Some(support::TIMEOUT)).unwrap();
    let cmd = format!("*2\r\n$3\r\nDEL\r\n${}\r\n{key}\r\n", key.len());
    conn.write_all(cmd.as_bytes()).expect("send DEL");
    let mut reply = [0u8; 4];
    conn.read_exact(&mut reply).expect("DEL reply");
    assert_eq!(&reply, b":1\r\n", "DEL {key:?} removed nothing");
}

/// Runs a script under `--ttl 1 <args>` on redis, deletes its key, and returns the run.
fn lose_on_redis(url: &str, what: &str, args: &[&str], on_term: &str) -> Proc {
    let mut all = vec!["--ttl", "1"];
    all.extend_from_slice(args);
    let run = start(url, &all, &unique(what), on_term);
    redis_del(url, &run.resource);
    run.proc
}

/// Loses the lock of a command run with `args` on redis, and checks that `run` says `says`,
/// that the command is stopped without printing anything more, and that `run` exits 75.
fn stopped_when_lost_on_redis(what: &str, args: &[&str], on_term: &str, says: &str) {
    let Some(url) = server("LOCKHOG_TEST_REDIS_URL") else {
        return;
    };
    let mut proc = lose_on_redis(&url, what, args, on_term);
    proc.stderr_line(says);
    assert!(
        proc.rest_of_stdout().is_empty(),
        "the command went on or saw SIGTERM"
    );
    assert_eq!(proc.wait().code(), Some(75));
}

#[test]
fn a_lost_lock_stops_the_command_with_sigterm_and_run_exits_75() {
    stopped_when_lost_on_redis("term", &[], DIE_ON_TERM, "sending it SIGTERM");
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
    stopped_when_lost_on_redis(
        "grace",
        &["--grace", "0.5"],
        IGNORE_TERM,
        "outlived --grace",
    );
}

#[test]
fn on_lost_kill_sends_sigkill_at_once() {
    // NOTE_TERM: a SIGTERM would print `term`; SIGKILL came first and alone.
    stopped_when_lost_on_redis("kill", &["--on-lost", "kill"], NOTE_TERM, "killing it");
}

#[test]
fn on_lost_warn_lets_the_command_finish_and_exits_with_its_status() {
    let Some(url) = server("LOCKHOG_TEST_REDIS_URL") else {
        return;
    };
    let mut proc = lose_on_redis(&url, "warn", &["--on-lost", "warn"], NOTE_TERM);
    proc.stderr_line("goes on without the lock (--on-lost warn)");
    proc.send("go");
    assert_eq!(proc.rest_of_stdout(), ["done go"]);
    assert_eq!(proc.wait().code(), Some(3));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Ends the PostgreSQL session that holds advisory lock `resource` (`advisory:<key>`).
#[cfg(feature = "postgres")]
fn postgres_terminate(url: &str, resource: &str) {
    let key: i64 = resource
        .strip_prefix("advisory:")
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("resource {resource:?}"));
    runtime().block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to postgres");
        tokio::spawn(conn);
        // A bigint key is split over classid (high half) and objid (low half), objsubid 1.
        let rows = client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
                 AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1",
                &[&key],
            )
            .await
            .expect("pg_terminate_backend");
        assert_eq!(rows.len(), 1, "one session holds {resource}");
        assert!(rows[0].get::<_, bool>(0), "terminated");
    });
}

#[cfg(feature = "postgres")]
#[test]
fn on_postgres_a_terminated_session_stops_the_command() {
    let Some(url) = server("LOCKHOG_TEST_POSTGRES_URL") else {
        return;
    };
    let mut run = start(&url, &[], &unique("pg-lost"), DIE_ON_TERM);
    postgres_terminate(&url, &run.resource);
    run.proc.stderr_line("was lost while the command ran");
    assert!(run.proc.rest_of_stdout().is_empty(), "the command went on");
    assert_eq!(run.proc.wait().code(), Some(75));
}

/// Kills the MySQL connection that holds `GET_LOCK` lock `resource`.
#[cfg(feature = "mysql")]
fn mysql_kill(url: &str, resource: &str) {
    use mysql_async::prelude::Queryable;
    runtime().block_on(async {
        let mut conn = mysql_async::Conn::from_url(url)
            .await
            .expect("connect to mysql");
        let id: Option<u64> = conn
            .exec_first("SELECT IS_USED_LOCK(?)", (resource,))
            .await
            .expect("IS_USED_LOCK")
            .flatten();
        let id = id.unwrap_or_else(|| panic!("nobody holds {resource:?}"));
        // A connection id from the server, a number: nothing of ours is spliced in.
        conn.query_drop(format!("KILL {id}")).await.expect("KILL");
        conn.disconnect().await.expect("disconnect");
    });
}

#[cfg(feature = "mysql")]
#[test]
fn on_mysql_a_killed_session_stops_the_command() {
    let Some(url) = server("LOCKHOG_TEST_MYSQL_URL") else {
        return;
    };
    let mut run = start(&url, &[], &unique("my-lost"), DIE_ON_TERM);
    mysql_kill(&url, &run.resource);
    run.proc.stderr_line("was lost while the command ran");
    assert!(run.proc.rest_of_stdout().is_empty(), "the command went on");
    assert_eq!(run.proc.wait().code(), Some(75));
}

#[test]
fn help_documents_on_lost_grace_and_status_75() {
    let out = std::process::Command::new(bin())
        .args(["run", "--help"])
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--on-lost",
        "--grace",
        "75",
        "LOCKHOG_FENCING_TOKEN",
        "LOCKHOG_RESOURCE",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
