//! Hogging from a child process: `lockhog hold` run as a child, driven through its stdin and
//! stdout (its lines are [`crate::protocol`]'s; docs/cli.md has the whole contract).
//!
//! Needed for locks owned per process (POSIX `fcntl` record locks: a thread of the same process
//! never conflicts with them) and for tests in other languages.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{HogError, HogOptions};
use crate::protocol::HeldLine;

/// The environment variable naming the `lockhog` binary a process hog runs.
pub const BIN_ENV: &str = "LOCKHOG_BIN";

/// Finds the `lockhog` binary: `$LOCKHOG_BIN`; else beside the current executable, or one
/// directory up (test binaries live in `target/<profile>/deps`); else on `PATH`.
///
/// # Errors
///
/// [`HogError::BinaryNotFound`], listing every place looked at.
pub fn find_binary() -> Result<PathBuf, HogError> {
    search(
        std::env::var_os(BIN_ENV),
        std::env::current_exe().ok(),
        std::env::var_os("PATH"),
    )
}

fn search(
    bin_env: Option<OsString>,
    exe: Option<PathBuf>,
    path: Option<OsString>,
) -> Result<PathBuf, HogError> {
    if let Some(bin) = bin_env.filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if is_executable(&bin) {
            Ok(bin)
        } else {
            Err(HogError::BinaryNotFound {
                searched: vec![bin],
            })
        };
    }
    let mut searched = Vec::new();
    if let Some(exe) = exe {
        for dir in exe.ancestors().skip(1).take(2) {
            searched.push(dir.join("lockhog"));
        }
    }
    if let Some(path) = path {
        searched.extend(std::env::split_paths(&path).map(|d| d.join("lockhog")));
    }
    match searched.iter().find(|p| is_executable(p)) {
        Some(found) => Ok(found.clone()),
        None => Err(HogError::BinaryNotFound { searched }),
    }
}

/// Spawns, retrying a few times on `ETXTBSY`: a binary written a moment ago (a test's
/// stand-in) can still be open for writing in a child that another thread is forking.
fn spawn(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(tries));
            }
            other => return other,
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The running `lockhog hold` child of a process hog.
#[derive(Debug)]
pub(crate) struct ProcessHog {
    program: PathBuf,
    pid: libc::pid_t,
    stdin: Option<ChildStdin>,
    /// stdout lines; disconnected at end of file.
    lines: mpsc::Receiver<String>,
    /// The exit status, from the thread that waits for the child.
    exit: mpsc::Receiver<ExitStatus>,
    exited: Option<ExitStatus>,
    /// All of stderr, once it ends.
    stderr: mpsc::Receiver<String>,
    held: Vec<HeldLine>,
    release_timeout: Duration,
}

impl ProcessHog {
    /// Runs `lockhog hold -w <acquire timeout> EXTRA… -- NAME…` with the URL in
    /// `LOCKHOG_URL` and waits for its `locks` `held` lines (one per name and per
    /// `--resource` in `extra_args`).
    pub(crate) fn start(
        program: Option<&Path>,
        url: &str,
        names: &[String],
        extra_args: &[OsString],
        locks: usize,
        opts: &HogOptions,
    ) -> Result<ProcessHog, HogError> {
        let program = match program {
            Some(p) if is_executable(p) => p.to_path_buf(),
            Some(p) => {
                return Err(HogError::BinaryNotFound {
                    searched: vec![p.to_path_buf()],
                })
            }
            None => find_binary()?,
        };
        let timeout = opts.acquire_timeout();
        let mut cmd = Command::new(&program);
        // The URL goes in the environment, not argv: any local user can read a process's argv
        // (/proc/PID/cmdline), and the URL may carry a password. Set explicitly, so a
        // LOCKHOG_URL inherited from this process cannot take its place.
        cmd.env("LOCKHOG_URL", url)
            .arg("hold")
            .arg("-w")
            .arg(format!("{}", timeout.as_secs_f64()))
            .args(extra_args)
            .arg("--")
            .args(names)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // If the test process dies, this child must not hold its locks on.
        super::tied::die_with_us(&mut cmd);
        let mut child =
            super::tied::on_spawner_thread(move || spawn(&mut cmd)).map_err(|source| {
                HogError::Process {
                    doing: "start",
                    program: program.clone(),
                    source,
                }
            })?;
        tracing::debug!(program = %program.display(), pid = child.id(), "hog: started lockhog hold");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let stdin = child.stdin.take();
        let pid = child.id() as libc::pid_t;

        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, stderr_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            let _ = err_tx.send(String::from_utf8_lossy(&text).trim().to_string());
        });
        let (exit_tx, exit) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = exit_tx.send(status);
            }
        });

        let mut hog = ProcessHog {
            program,
            pid,
            stdin,
            lines,
            exit,
            exited: None,
            stderr: stderr_rx,
            held: Vec::with_capacity(locks),
            release_timeout: opts.release_timeout(),
        };
        // `hold -w` gives up by itself at the acquire timeout and exits 1; the release timeout
        // on top is its grace to say so, past which it is killed.
        let deadline = Instant::now() + timeout + hog.release_timeout;
        while hog.held.len() < locks {
            match hog
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => match line.parse::<HeldLine>() {
                    Ok(held) => hog.held.push(held),
                    Err(e) => {
                        hog.kill();
                        let reason = e.to_string();
                        return Err(HogError::Protocol { line, reason });
                    }
                },
                Err(RecvTimeoutError::Timeout) => {
                    hog.kill();
                    return Err(HogError::AcquireTimedOut { timeout });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let grace = Instant::now() + hog.release_timeout;
                    let status = match hog.wait_exit(grace) {
                        // Exit 1: not acquired within `-w`, our acquire timeout.
                        Some(s) if s.code() == Some(1) => {
                            return Err(HogError::AcquireTimedOut { timeout })
                        }
                        Some(s) => s.to_string(),
                        None => {
                            hog.kill();
                            "no exit status (killed)".to_string()
                        }
                    };
                    let stderr = hog.stderr_text(grace);
                    return Err(HogError::HoldExited { status, stderr });
                }
            }
        }
        Ok(hog)
    }

    pub(crate) fn held(&self) -> &[HeldLine] {
        &self.held
    }

    /// Writes `release`, then waits for stdout to end and the child to exit 0.
    pub(crate) fn release(&mut self) -> Result<(), HogError> {
        self.finish("release")
    }

    /// Writes `abandon`, then waits for the child to exit.
    pub(crate) fn abandon(&mut self) -> Result<(), HogError> {
        self.finish("abandon")
    }

    fn finish(&mut self, command: &str) -> Result<(), HogError> {
        let deadline = Instant::now() + self.release_timeout;
        if let Some(mut stdin) = self.stdin.take() {
            // A child that already died cannot read it; its exit status tells what happened.
            let _ = stdin
                .write_all(format!("{command}\n").as_bytes())
                .and_then(|()| stdin.flush());
        }
        // stdout ends when the child exits (`released` lines come before).
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => tracing::debug!(%line, "hog: lockhog hold said"),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    return Err(HogError::StillHolding {
                        timeout: self.release_timeout,
                    });
                }
            }
        }
        let Some(status) = self.wait_exit(deadline) else {
            self.kill();
            return Err(HogError::StillHolding {
                timeout: self.release_timeout,
            });
        };
        if status.success() {
            Ok(())
        } else {
            let stderr = self.stderr_text(deadline);
            Err(HogError::ReleaseFailed {
                source: format!(
                    "`{} hold` exited with {status} on {command}: {stderr}",
                    self.program.display()
                )
                .into(),
            })
        }
    }

    fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self
                .exit
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok();
        }
        self.exited
    }

    fn stderr_text(&self, deadline: Instant) -> String {
        self.stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| "(stderr not closed)".into())
    }

    /// SIGKILL, unless the child is known to have exited (then its pid may be reused).
    fn kill(&mut self) {
        if self.exited.is_none() {
            if let Ok(status) = self.exit.try_recv() {
                self.exited = Some(status);
                return;
            }
            tracing::warn!(pid = self.pid, "hog: killing lockhog hold");
            // SAFETY: kill(2) touches no memory; the child is not reaped yet (its waiter
            // thread has not reported), so the pid is still ours.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
            self.exited = self.exit.recv_timeout(Duration::from_secs(5)).ok();
        }
    }
}

impl Drop for ProcessHog {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_binary(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let bin = dir.join("lockhog");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    #[test]
    fn the_binary_is_found_by_env_then_beside_the_executable_then_on_path() {
        let tmp = tempfile::tempdir().unwrap();
        let debug = tmp.path().join("target/debug");
        let exe = debug.join("deps/some_test-1234");
        let on_path = tmp.path().join("bin");
        let path = Some(on_path.clone().into_os_string());

        let err = search(None, Some(exe.clone()), path.clone()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("LOCKHOG_BIN"), "{text}");
        assert!(
            text.contains(&debug.join("lockhog").display().to_string()),
            "{text}"
        );

        let path_bin = fake_binary(&on_path);
        assert_eq!(
            search(None, Some(exe.clone()), path.clone()).unwrap(),
            path_bin
        );
        let up_one = fake_binary(&debug);
        assert_eq!(
            search(None, Some(exe.clone()), path.clone()).unwrap(),
            up_one
        );
        let beside = fake_binary(&debug.join("deps"));
        assert_eq!(
            search(None, Some(exe.clone()), path.clone()).unwrap(),
            beside
        );

        let env = Some(path_bin.clone().into_os_string());
        assert_eq!(
            search(env, Some(exe.clone()), path.clone()).unwrap(),
            path_bin
        );
        let missing = Some(OsString::from("/nonexistent/lockhog"));
        assert!(matches!(
            search(missing, Some(exe), path),
            Err(HogError::BinaryNotFound { .. })
        ));
    }
}
