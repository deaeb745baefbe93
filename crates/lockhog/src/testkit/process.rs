//! `lockhog hold` as a child process: the other process of the crash and protocol checks.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};

use super::BOUND;
use crate::protocol::HeldLine;

/// A running `lockhog hold` that has printed its `held` lines.
#[derive(Debug)]
pub struct HoldProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// One per `held` line, in order.
    pub held: Vec<HeldLine>,
}

impl HoldProcess {
    /// Runs `bin hold <args…> <names…>` with `url` in `LOCKHOG_URL` (never on the command line,
    /// which every local user can read) and waits (at most [`BOUND`]) for one `held`
    /// line per name.
    ///
    /// # Panics
    ///
    /// When the binary cannot run, exits early, or prints something else than `held` lines.
    pub fn start(bin: &Path, url: &str, args: &[&str], names: &[&str]) -> HoldProcess {
        let mut hold = HoldProcess::spawn(bin, url, args, names);
        hold.await_held(names.len());
        hold
    }

    /// Runs `bin hold <args…> <names…>` as [`HoldProcess::start`] does, without waiting for
    /// its `held` lines: for a holder that is to wait for a lock held here. Read them with
    /// [`HoldProcess::await_held`].
    ///
    /// # Panics
    ///
    /// When the binary cannot run.
    pub fn spawn(bin: &Path, url: &str, args: &[&str], names: &[&str]) -> HoldProcess {
        let mut cmd = Command::new(bin);
        cmd.env("LOCKHOG_URL", url)
            .arg("hold")
            .args(args)
            .args(names)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // If the test process dies, this child must not hold its locks on.
        crate::hog::tied::die_with_us(&mut cmd);
        let mut child = crate::hog::tied::on_spawner_thread(move || cmd.spawn())
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        HoldProcess {
            child,
            stdin,
            lines,
            held: Vec::new(),
        }
    }

    /// Waits (at most [`BOUND`] each) for `count` more `held` lines and adds them to
    /// [`HoldProcess::held`].
    ///
    /// # Panics
    ///
    /// When one does not come in time, or another line comes instead.
    pub fn await_held(&mut self, count: usize) {
        for _ in 0..count {
            let line = self.next_line("a `held` line");
            let held = line
                .parse()
                .unwrap_or_else(|e| panic!("expected a `held` line, got {line:?}: {e}"));
            self.held.push(held);
        }
    }

    /// The next stdout line, waiting at most [`BOUND`].
    ///
    /// # Panics
    ///
    /// When none comes: the child exited or hung.
    pub fn next_line(&mut self, what: &str) -> String {
        match self.lines.recv_timeout(BOUND) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("lockhog hold printed no {what} within {BOUND:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                panic!("lockhog hold ended ({status:?}) before printing {what}")
            }
        }
    }

    /// The next stdout line if one has come already, without waiting.
    pub fn try_next_line(&mut self) -> Option<String> {
        self.lines.try_recv().ok()
    }

    /// Writes one line to the child's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .expect("write to lockhog hold");
    }

    /// Closes the child's stdin (end of file).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill lockhog hold");
        self.child.wait().expect("reap lockhog hold");
    }

    /// Closes stdin and waits for the child to exit (at most [`BOUND`], then kills it and
    /// panics). Lines it prints meanwhile are dropped: read those you need first.
    ///
    /// # Panics
    ///
    /// When it does not exit in time.
    pub fn wait(mut self) -> ExitStatus {
        self.stdin = None;
        // The reader thread hangs up when the child's stdout closes, which it does on exit.
        let deadline = std::time::Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("lockhog hold did not exit within {BOUND:?}");
                }
            }
        }
        self.child.wait().expect("reap lockhog hold")
    }
}

impl Drop for HoldProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
