//! The fault injector: one fault at a time, at random moments, the kinds taken in turn, until
//! the run's end.
//!
//! - `kill`: SIGKILL the next worker that reports a grant, before it is answered (so it dies
//!   holding the lock, inside its section); the supervisor starts another worker.
//! - `pause`: SIGSTOP the next worker that reports a grant, before it is answered, for the
//!   pause length (past its lease), then SIGCONT: it resumes inside its section and writes
//!   with its old token — the paused client of Martin Kleppmann's article "How to do
//!   distributed locking".
//! - `restart`: run the restart command (`sh -c`), which stops the server and starts it
//!   again, returning once it answers.
//! - `cut`: close both sides of every connection through the proxy.
//! - `kill-run`: SIGKILL the `lockhog run` whose command reports the next grant, before it is
//!   answered; the command goes on if it can (see `hub`).
//!
//! Faults never overlap, so a pause is never combined with a cut of the paused worker's
//! connection: each fault's effect is seen on its own.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::hub::{signal, Hub, Pending};
use super::journal::FaultKind;
use super::proxy::Proxy;
use super::rng::Rng;

/// How long an armed `kill` or `pause` waits for a grant before it is called off.
const ARM_BOUND: Duration = Duration::from_secs(3);
/// How long a restart command may take.
const RESTART_BOUND: Duration = Duration::from_secs(120);

/// What the injector needs.
pub struct Injector {
    pub kinds: Vec<FaultKind>,
    pub pause: Duration,
    /// The lease ttl, given to the restart command as LOCKHOG_TORTURE_TTL_MS.
    pub ttl: Duration,
    pub restart: Option<String>,
    pub proxy: Option<Arc<Proxy>>,
    pub hub: Hub,
    pub rng: Rng,
}

impl Injector {
    /// Injects faults until `until` (a pause or restart under way is finished first).
    pub async fn run(mut self, until: Instant) {
        if self.kinds.is_empty() {
            return;
        }
        // Round robin from a random start, so a short run still sees every kind.
        let mut turn = self.rng.below(self.kinds.len() as u64) as usize;
        loop {
            // 0.4 to 1.2 s between faults: several per ten seconds, with time between them
            // for the backend to recover and for sections to run.
            let gap = Duration::from_millis(400 + self.rng.below(800));
            if Instant::now() + gap >= until || self.hub.stopping() {
                return;
            }
            tokio::time::sleep(gap).await;
            let kind = self.kinds[turn % self.kinds.len()];
            turn += 1;
            match kind {
                FaultKind::Kill | FaultKind::KillRun => {
                    let (tx, rx) = oneshot::channel();
                    let (pending, what) = match kind {
                        FaultKind::Kill => (Pending::Kill(tx), "killed pid"),
                        _ => (Pending::KillRun(tx), "killed run pid"),
                    };
                    self.hub.arm(pending);
                    match tokio::time::timeout(ARM_BOUND, rx).await {
                        Ok(Ok(pid)) => self.hub.record_fault(kind, format!("{what} {pid}")),
                        _ => self.hub.disarm(),
                    }
                }
                FaultKind::Pause => {
                    let (tx, rx) = oneshot::channel();
                    self.hub.arm(Pending::Pause(tx));
                    match tokio::time::timeout(ARM_BOUND, rx).await {
                        Ok(Ok(pid)) => {
                            tokio::time::sleep(self.pause).await;
                            signal(pid, libc::SIGCONT);
                            self.hub.record_fault(kind, format!("paused pid {pid}"));
                        }
                        _ => self.hub.disarm(),
                    }
                }
                FaultKind::Restart => {
                    let Some(command) = &self.restart else {
                        continue;
                    };
                    let started = Instant::now();
                    match restart(command, self.ttl).await {
                        Ok(()) => self.hub.record_fault(
                            kind,
                            format!("restarted in {} ms", started.elapsed().as_millis()),
                        ),
                        Err(e) => {
                            self.hub.lock().harness_errors.push(e);
                            return;
                        }
                    }
                }
                FaultKind::Cut => {
                    if let Some(proxy) = &self.proxy {
                        let n = proxy.cut();
                        self.hub.record_fault(kind, format!("cut {n} connections"));
                    }
                }
            }
        }
    }
}

/// Runs the restart command; an error says how it failed.
async fn restart(command: &str, ttl: Duration) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("LOCKHOG_TORTURE_TTL_MS", ttl.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run the restart command: {e}"))?;
    let mut stderr = child.stderr.take();
    let status = match tokio::time::timeout(RESTART_BOUND, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("restart command: {e}")),
        Err(_) => {
            return Err(format!(
                "restart command still running after {} s",
                RESTART_BOUND.as_secs()
            ))
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    if let Some(err) = stderr.as_mut() {
        use tokio::io::AsyncReadExt;
        let _ = tokio::time::timeout(Duration::from_secs(1), err.read_to_string(&mut text)).await;
    }
    let last = text.lines().last().unwrap_or("").to_string();
    Err(format!("restart command failed ({status}): {last}"))
}
