//! `lockhog run --permits N`: at most N commands run at once under one name, each with its own
//! permit (resource and fencing token); the next waits for a permit or, with `-n`, is turned
//! away; another N is refused before its command runs.
//!
//! Commands are `sh -c` scripts that print their permit and `ready`, then block reading
//! stdin; every wait is on a line or an exit, bounded by the support module's TIMEOUT. The
//! same cases run on a lock directory and on PostgreSQL (`LOCKHOG_TEST_POSTGRES_URL`), whose
//! URL goes in the environment, never on the command line.

#[allow(dead_code)] // helpers for the other test files too
mod support;

use std::process::Command;

use support::{lockhog_cmd, server, Finished, Locks, Proc};

/// Where the semaphores live: a fresh lock directory, or a server's URL.
enum Store {
    Dir(Locks),
    Server(String),
}

impl Store {
    /// The stores of this build that these tests run on; a server whose URL is unset is
    /// skipped (a failure under `CI=true`).
    fn all() -> Vec<Store> {
        let mut stores = vec![Store::Dir(Locks::new())];
        if cfg!(feature = "postgres") {
            stores.extend(server("LOCKHOG_TEST_POSTGRES_URL").map(Store::Server));
        }
        stores
    }

    /// `lockhog <sub> <args…>` on this store.
    fn cmd(&self, sub: &str, args: &[&str]) -> Command {
        match self {
            Store::Dir(locks) => locks.cmd(sub, args),
            Store::Server(url) => {
                let mut cmd = lockhog_cmd();
                cmd.env("LOCKHOG_URL", url).arg(sub).args(args);
                cmd
            }
        }
    }

    fn run(&self, sub: &str, args: &[&str]) -> Finished {
        Proc::spawn(self.cmd(sub, args), &format!("lockhog {sub} {args:?}")).finish()
    }

    /// `what`, made unique on a shared server so that runs never meet.
    fn name(&self, what: &str) -> String {
        match self {
            Store::Dir(_) => what.to_string(),
            Store::Server(_) => format!("run-permits-{what}-{}", std::process::id()),
        }
    }
}

/// Prints the permit's resource and token, then `ready`, then waits for a line and exits 0.
const SCRIPT: &str = r#"echo "resource=$LOCKHOG_RESOURCE"
echo "token=$LOCKHOG_FENCING_TOKEN"
echo ready
read line
echo "done $line""#;

struct Running {
    proc: Proc,
    resource: String,
    token: u64,
}

fn start(store: &Store, args: &[&str], name: &str) -> Running {
    let mut cmd = store.cmd("run", args);
    cmd.args([name, "--", "sh", "-c", SCRIPT]);
    let mut proc = Proc::spawn(cmd, &format!("lockhog run {args:?} {name}"));
    let resource = proc.line();
    let resource = resource
        .strip_prefix("resource=")
        .unwrap_or_else(|| panic!("expected resource=…, got {resource:?}"))
        .to_string();
    let token = proc.line();
    let token = token
        .strip_prefix("token=")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("expected token=N, got {token:?}"));
    assert_eq!(proc.line(), "ready");
    Running {
        proc,
        resource,
        token,
    }
}

fn finish(mut run: Running) {
    run.proc.send("go");
    assert_eq!(run.proc.rest_of_stdout(), ["done go"]);
    assert_eq!(run.proc.wait().code(), Some(0));
}

#[test]
fn at_most_n_commands_run_at_once_and_the_next_takes_a_freed_permit() {
    for store in Store::all() {
        at_most_n_commands_run_at_once(&store);
    }
}

fn at_most_n_commands_run_at_once(store: &Store) {
    let name = store.name("encoders");
    let first = start(store, &["--permits", "2"], &name);
    let second = start(store, &["--permits", "2"], &name);
    assert_ne!(
        first.resource, second.resource,
        "two commands on one permit"
    );

    // Both permits are out: a third command is turned away and does not run.
    let third = store.run("run", &["-n", "--permits", "2", &name, "--", "echo", "ran"]);
    third.assert_code(1);
    assert!(
        third.stdout.is_empty(),
        "the command ran: {:?}",
        third.stdout
    );

    // A waiting third command starts on the permit the first gives back.
    let mut cmd = store.cmd("run", &["--permits", "2"]);
    cmd.args([&name, "--", "sh", "-c", SCRIPT]);
    let mut waiter = Proc::spawn(cmd, "lockhog run --permits 2 encoders (waiting)");
    let (freed, freed_token) = (first.resource.clone(), first.token);
    finish(first);
    let line = waiter.line();
    assert_eq!(line, format!("resource={freed}"), "the waiter's permit");
    let token: u64 = waiter
        .line()
        .strip_prefix("token=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(token > freed_token, "the permit's token did not increase");
    assert_eq!(waiter.line(), "ready");
    finish(Running {
        proc: waiter,
        resource: freed,
        token,
    });
    finish(second);
}

#[test]
fn another_permit_count_is_refused_before_its_command_runs() {
    for store in Store::all() {
        another_permit_count_is_refused(&store);
    }
}

fn another_permit_count_is_refused(store: &Store) {
    let name = store.name("renders");
    let holder = start(store, &["--permits", "2"], &name);
    for other in ["1", "3"] {
        let run = store.run("run", &["--permits", other, &name, "--", "echo", "ran"]);
        run.assert_code(2);
        assert!(run.stdout.is_empty(), "the command ran: {:?}", run.stdout);
        assert!(
            run.stderr.contains("2 permits"),
            "the error names the stored count: {}",
            run.stderr
        );
    }
    finish(holder);
    let zero = store.run("run", &["--permits", "0", &name, "--", "echo", "ran"]);
    zero.assert_code(2);
    assert!(zero.stdout.is_empty());
}

/// An attacker who can write in the lock directory plants the count file as a symlink to a
/// file of the victim's: `run --permits` neither follows it nor writes through it, and does
/// not run its command.
#[test]
fn a_planted_count_symlink_is_refused_and_not_followed() {
    let locks = Locks::new();
    let victim = locks.path().join("victim.txt");
    std::fs::write(&victim, b"precious\n").expect("write");
    let count_file = locks.path().join("jobs%23permit-count.lock");
    std::os::unix::fs::symlink(&victim, &count_file).expect("symlink");
    let run = locks.run(
        "run",
        &["-n", "--permits", "2", "jobs", "--", "echo", "ran"],
    );
    assert_ne!(run.code(), 0, "{run:#?}");
    assert!(run.stdout.is_empty(), "the command ran: {:?}", run.stdout);
    assert_eq!(std::fs::read(&victim).expect("read"), b"precious\n");
    assert!(
        std::fs::symlink_metadata(&count_file)
            .expect("still there")
            .file_type()
            .is_symlink(),
        "the planted link was replaced"
    );
}
