//! Throwaway Unix users and groups for the attack tests (removed on drop, also when a test
//! fails), commands run as them, and scenarios run in a private `/tmp`.
//!
//! These need root, `useradd`, `setpriv` and `unshare`. Without root the tests that use them
//! skip with a message, unless `CI=true`, where anything missing is a failure.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::support::{Finished, Proc};

/// True when this process may create users and mount namespaces; otherwise says why and,
/// under `CI=true`, fails the test.
pub fn can_run(test: &str) -> bool {
    // SAFETY: no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let missing: Vec<&str> = ["useradd", "userdel", "groupadd", "setpriv", "unshare"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", "command -v \"$1\" >/dev/null", "sh", tool])
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = if root {
        format!("missing tools: {}", missing.join(", "))
    } else {
        "not root (a second Unix user and a private /tmp need root)".to_string()
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: cannot run under CI: {why}"
    );
    eprintln!("{test}: skipped: {why}");
    false
}

/// `useradd`/`groupadd`/`userdel` lock /etc/passwd and fail while another holds it: one at a
/// time in this process, and a bounded number of retries for other processes.
static ACCOUNTS: Mutex<()> = Mutex::new(());

fn account_tool(args: &[&str]) -> Output {
    let _one = ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = None;
    for _ in 0..50 {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
        // 10: "cannot lock /etc/passwd" (another process is editing it): back off, try again.
        if out.status.code() != Some(10) {
            return out;
        }
        last = Some(out);
        // A deliberate pause: a back-off between retries of a tool that fails at once while
        // another process edits /etc/passwd; no state of ours is being waited for.
        std::thread::sleep(Duration::from_millis(100));
    }
    last.expect("tried")
}

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "lh{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn id_of(flag: &str, name: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().expect("id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("id {flag} {name}: {out:?}"))
}

/// A throwaway group, deleted on drop.
pub struct Group {
    pub name: String,
}

impl Group {
    pub fn new(tag: &str) -> Group {
        let name = unique(tag);
        let out = account_tool(&["groupadd", &name]);
        assert!(out.status.success(), "groupadd {name}: {out:?}");
        Group { name }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        account_tool(&["groupdel", &self.name]);
    }
}

/// A throwaway user with a group of its own (and `extra` groups), no home, deleted on drop.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl User {
    pub fn new(tag: &str, extra: &[&Group]) -> User {
        let name = unique(tag);
        let groups: Vec<&str> = extra.iter().map(|g| g.name.as_str()).collect();
        let mut args = vec!["useradd", "-M", "-U", "-s", "/bin/sh"];
        let joined = groups.join(",");
        if !groups.is_empty() {
            args.extend(["-G", &joined]);
        }
        args.push(&name);
        let out = account_tool(&args);
        assert!(out.status.success(), "useradd {name}: {out:?}");
        let (uid, gid) = (id_of("-u", &name), id_of("-g", &name));
        User { name, uid, gid }
    }

    /// `program args…` run as this user (with its groups) under umask 022.
    pub fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args([
                "--init-groups",
                "--",
                "sh",
                "-c",
                "umask 022; exec \"$@\"",
                "sh",
            ])
            .arg(program)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("LOCKHOG_URL")
            .env_remove("XDG_RUNTIME_DIR");
        cmd
    }

    /// Runs `program args…` as this user to completion (bounded).
    pub fn run(&self, program: &str, args: &[&str]) -> Finished {
        let what = format!("{} as {}", program, self.name);
        Proc::spawn(self.cmd(program, args), &what).finish()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        account_tool(&["userdel", "-r", &self.name]);
    }
}

/// Runs `script` (fixed text: data comes in through `env`) with `sh -eu` in a mount namespace
/// of its own with an empty tmpfs on `/tmp`, as root, with `XDG_RUNTIME_DIR` and
/// `LOCKHOG_URL` unset.
pub fn in_private_tmp(script: &str, env: &[(&str, String)]) -> Finished {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-euc"])
        .arg(format!("mount -t tmpfs -o mode=1777 tmpfs /tmp\n{script}"))
        .env_remove("RUST_LOG")
        .env_remove("LOCKHOG_URL")
        .env_remove("XDG_RUNTIME_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc::spawn(cmd, "a scenario in a private /tmp").finish()
}
