//! Helpers for driving the `lockhog` binary from tests: every wait is on a line, a pipe or a
//! process exit, and bounded by [`TIMEOUT`], failing the test with a message when it runs out.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use lockhog::protocol::HeldLine;

pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockhog")
}

/// A fresh lock directory and its `file://` URL.
pub struct Locks {
    dir: tempfile::TempDir,
    query: String,
}

impl Locks {
    pub fn new() -> Self {
        Locks::with_query("")
    }

    /// A lock directory whose URL ends with `query` (e.g. `?mode=fcntl`).
    pub fn with_query(query: &str) -> Self {
        Locks {
            dir: tempfile::tempdir().expect("temp dir"),
            query: query.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("file://{}{}", self.path().display(), self.query)
    }

    pub fn lock_file(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.lock"))
    }

    /// `lockhog <sub> -b <url> <args…>` with a clean environment for logs and URLs.
    pub fn cmd(&self, sub: &str, args: &[&str]) -> Command {
        let mut cmd = lockhog_cmd();
        cmd.arg(sub).arg("-b").arg(self.url()).args(args);
        cmd
    }

    /// Runs `lockhog <sub> -b <url> <args…>` to completion.
    pub fn run(&self, sub: &str, args: &[&str]) -> Finished {
        Proc::spawn(self.cmd(sub, args), &format!("lockhog {sub} {args:?}")).finish()
    }

    /// Starts `lockhog hold -b <url> <args…>` and waits for its `held` lines, one per NAME.
    pub fn hold(&self, args: &[&str], names: usize) -> Hold {
        hold(
            self.cmd("hold", args),
            &format!("lockhog hold {args:?}"),
            names,
        )
    }

    /// The exit code of `lockhog run -b <url> -n <name> -- true`: 0 when the lock is free.
    pub fn try_run(&self, name: &str) -> i32 {
        self.run("run", &["-n", name, "--", "true"]).code()
    }
}

/// `LOCKHOG_TEST_<X>_URL` (a server scripts/test started); `None` (skip) when unset, a
/// failure under `CI=true`.
#[allow(dead_code)] // not every test file needs a server
pub fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("{var} is not set under CI"),
        _ => {
            eprintln!("skipped: {var} is not set (run through scripts/test)");
            None
        }
    }
}

pub fn lockhog_cmd() -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_remove("RUST_LOG").env_remove("LOCKHOG_URL");
    cmd
}

/// A child process with its stdout and stderr read line by line on threads and its exit
/// awaited on another, so every wait can be bounded.
pub struct Proc {
    what: String,
    pub pid: libc::pid_t,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    pub stderr: Receiver<String>,
    exit: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
}

fn lines_of(read: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(read).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    pub fn spawn(mut cmd: Command, what: &str) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = lines_of(child.stdout.take().expect("piped"));
        let stderr = lines_of(child.stderr.take().expect("piped"));
        let stdin = child.stdin.take();
        let pid = child.id() as libc::pid_t;
        let (tx, exit) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(status);
            }
        });
        Proc {
            what: what.to_string(),
            pid,
            stdin,
            stdout,
            stderr,
            exit,
            status: None,
        }
    }

    /// The next line on stdout.
    pub fn line(&mut self) -> String {
        match self.stdout.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(e) => panic!(
                "{}: no line on stdout within {TIMEOUT:?} ({e}); stderr: {}",
                self.what,
                self.drain_stderr()
            ),
        }
    }

    /// Every line left on stdout, once it ends: when every process holding its write end (the
    /// process and any child it handed it to) has exited.
    #[allow(dead_code)] // not every test file that includes this module uses it
    pub fn rest_of_stdout(&mut self) -> Vec<String> {
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{}: stdout still open after {TIMEOUT:?} (so far {lines:?})",
                    self.what
                ),
            }
        }
    }

    /// The first stderr line containing `text`, waiting at most [`TIMEOUT`].
    #[allow(dead_code)] // not every test file that includes this module uses it
    pub fn stderr_line(&mut self, text: &str) -> String {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("{}: no {text:?} on stderr ({e})", self.what),
            }
        }
    }

    /// Writes `line` to its stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").unwrap_or_else(|e| panic!("{}: write stdin: {e}", self.what));
        stdin.flush().expect("flush stdin");
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn signal(&self, sig: libc::c_int) {
        assert!(self.status.is_none(), "{} already exited", self.what);
        // SAFETY: plain kill(2) on our own unreaped child.
        assert_eq!(
            unsafe { libc::kill(self.pid, sig) },
            0,
            "kill {}",
            self.what
        );
    }

    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let status = self
            .exit
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("{} did not exit within {TIMEOUT:?} ({e})", self.what));
        self.status = Some(status);
        status
    }

    pub fn drain_stderr(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Closes stdin, waits for the exit and collects what is left of both outputs.
    pub fn finish(mut self) -> Finished {
        self.close_stdin();
        let status = self.wait();
        let collect = |rx: &Receiver<String>, which: &str| {
            let mut lines = Vec::new();
            loop {
                match rx.recv_timeout(TIMEOUT) {
                    Ok(line) => lines.push(line),
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(e) => panic!("{}: {which} never closed ({e})", self.what),
                }
            }
            lines
        };
        Finished {
            what: self.what.clone(),
            status,
            stdout: collect(&self.stdout, "stdout"),
            stderr: collect(&self.stderr, "stderr").join("\n"),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() && self.exit.try_recv().is_err() {
            // SAFETY: plain kill(2); the waiter thread has not reaped the child yet.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }
}

/// A process that ran to completion.
#[derive(Debug)]
pub struct Finished {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("{} was killed: {:?}", self.what, self.status))
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "{self:#?}");
        self
    }
}

/// A running `lockhog hold` whose `held` lines have been read.
pub struct Hold {
    pub proc: Proc,
    pub held: Vec<HeldLine>,
}

/// Starts `cmd` (a `lockhog hold`) and waits for `names` held lines.
pub fn hold(cmd: Command, what: &str, names: usize) -> Hold {
    let mut proc = Proc::spawn(cmd, what);
    let held = (0..names)
        .map(|_| {
            let line = proc.line();
            line.parse()
                .unwrap_or_else(|e| panic!("{what}: not a `held` line: {line:?}: {e}"))
        })
        .collect();
    Hold { proc, held }
}

impl Hold {
    /// The name of the i-th held line, decoded.
    pub fn name(&self, i: usize) -> String {
        self.held[i].name.clone()
    }

    pub fn resource(&self, i: usize) -> String {
        self.held[i].resource.clone()
    }

    pub fn token(&self, i: usize) -> u64 {
        self.held[i].token.expect("a lock held by name has a token")
    }
}
