//! A torture worker: the hidden `lockhog torture-worker` subcommand, one process per client.
//!
//! It connects to the harness's Unix socket, says `hello <id> <pid>`, and loops until told
//! `stop` (or until the harness goes away): acquire a random lock of `torture-0 …
//! torture-<M-1>` (from `LOCKHOG_URL`, so no password shows in a process list), then
//!
//! ```text
//! enter L T      -> ok | end       the section starts only once the harness answered;
//!                                  `end`: the run is over, the section never starts
//! write L T      -> accept|reject  the fenced resource; a refused holder leaves at once
//! write L T      -> accept|reject  a second write after a short random pause
//! exit L T       -> ok             the section ends before the release starts
//! released L T ours|lost|failed    what release() said (no answer)
//! ```
//!
//! A backend error is reported as `error <message>` and retried with a growing, bounded
//! backoff; after three in a row the worker connects afresh. Every wait is bounded: an acquire
//! waits at most two seconds before the loop looks at `stop` again, a release at most five.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lockhog::{LockGuard, Locker};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};

use super::journal::Release;
use crate::exit::{Failure, Outcome, SUCCESS, UNAVAILABLE};

/// How long one acquire waits before the loop checks for `stop`.
const ACQUIRE_BOUND: Duration = Duration::from_secs(2);
/// How long a release may take before it counts as failed.
const RELEASE_BOUND: Duration = Duration::from_secs(5);
/// How long a command whose `lockhog run` was killed stays in its section.
const ORPHAN_LINGER: Duration = Duration::from_millis(300);
/// The longest pause between the two writes of a section, in microseconds.
const MAX_DWELL_US: u64 = 1500;

/// The hidden worker subcommand's arguments (set by the harness, not by people).
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The harness's Unix socket
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// This worker's id in the journal
    #[arg(long, value_name = "ID")]
    pub id: u32,
    /// How many locks to pick from
    #[arg(long, value_name = "M")]
    pub locks: u32,
    /// The lease ttl in milliseconds
    #[arg(long, value_name = "MS")]
    pub ttl_ms: u64,
    /// Run each section as the command of `lockhog run` (the kill-run fault)
    #[arg(long)]
    pub via_run: bool,
    /// Be that command: one section of lock L, under the lock `lockhog run` holds
    #[arg(long, value_name = "L")]
    pub section: Option<u32>,
}

/// A small xorshift generator: the worker needs spread, not quality.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `seed` (any value; zero is avoided).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Seeded from the clock and the process id.
    pub fn from_entropy() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng::new(t ^ (u64::from(std::process::id()) << 32))
    }

    /// The next value.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub(super) struct Link {
    out: OwnedWriteHalf,
    replies: mpsc::UnboundedReceiver<String>,
}

impl Link {
    pub(super) async fn send(&mut self, line: &str) -> bool {
        let mut bytes = line.replace(['\n', '\r'], " ").into_bytes();
        bytes.push(b'\n');
        self.out.write_all(&bytes).await.is_ok()
    }

    /// Sends `line` and returns the answer; `None` when the harness went away.
    pub(super) async fn ask(&mut self, line: &str) -> Option<String> {
        if !self.send(line).await {
            return None;
        }
        self.replies.recv().await
    }
}

/// Connects to the harness: the link, and a flag set when the harness says `stop` or goes
/// away.
pub(super) async fn connect(socket: &Path) -> Result<(Link, watch::Receiver<bool>), Failure> {
    let stream = UnixStream::connect(socket).await.map_err(|e| {
        Failure::new(
            UNAVAILABLE,
            format!("torture worker: cannot reach the harness: {e}"),
        )
    })?;
    let (rd, out) = stream.into_split();
    let (reply_tx, replies) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        let mut lines = BufReader::new(rd).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line == "stop" {
                let _ = stop_tx.send(true);
            } else if reply_tx.send(line).is_err() {
                break;
            }
        }
        // The harness went away: stop, and let a pending `ask` see the end.
        let _ = stop_tx.send(true);
    });
    Ok((Link { out, replies }, stop))
}

/// Runs the worker until the harness says `stop` or goes away.
pub async fn run(args: WorkerArgs) -> Outcome {
    if let Some(lock) = args.section {
        return super::via_run::section(&args, lock).await;
    }
    let (mut link, mut stop) = connect(&args.socket).await?;
    if !link
        .send(&format!("hello {} {}", args.id, std::process::id()))
        .await
    {
        return Ok(SUCCESS);
    }
    if args.via_run {
        return super::via_run::worker(&args, link, stop).await;
    }
    let ttl = Duration::from_millis(args.ttl_ms.max(1));
    let mut rng = Rng::from_entropy();
    let mut locker: Option<Locker> = None;
    let mut errors: u32 = 0;
    while !*stop.borrow() {
        if errors > 0 {
            let backoff = Duration::from_millis((25u64 << errors.min(5)).min(1000));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => break,
            }
        }
        let current = match &locker {
            Some(l) => l.clone(),
            None => match Locker::from_env().await {
                Ok(l) => {
                    locker = Some(l.clone());
                    l
                }
                Err(e) => {
                    errors = errors.saturating_add(1);
                    link.send(&format!("error connect: {e}")).await;
                    continue;
                }
            },
        };
        let lock = rng.below(u64::from(args.locks)) as u32;
        let request = current
            .lock(format!("torture-{lock}"))
            .ttl(ttl)
            .wait_for(ACQUIRE_BOUND);
        let acquired = tokio::select! {
            r = request => r,
            _ = stop.changed() => break,
        };
        let guard = match acquired {
            Ok(g) => g,
            Err(e) if e.is_not_acquired() => continue,
            Err(e) => {
                errors = errors.saturating_add(1);
                if errors >= 3 {
                    locker = None;
                }
                link.send(&format!("error acquire: {e}")).await;
                continue;
            }
        };
        errors = 0;
        match section(&mut link, &mut rng, lock, guard).await {
            Some(true) => {}
            Some(false) | None => break,
        }
    }
    Ok(SUCCESS)
}

/// Asks to enter, and once answered runs the section: two writes, then `exit`. `Some(false)`
/// when the run is over and the section never started, `None` when the harness went away.
pub(super) async fn inside(link: &mut Link, rng: &mut Rng, lock: u32, token: u64) -> Option<bool> {
    match link.ask(&format!("enter {lock} {token}")).await?.as_str() {
        "ok" => {}
        // `kill-run` struck our `lockhog run`: go on a while, as a command's cleanup would,
        // long enough for any waiter to get the lock if our `run`'s death freed it.
        "orphan" => tokio::time::sleep(ORPHAN_LINGER).await,
        _ => return Some(false), // "end": the run is over and the section never started
    }
    // Paused here by `pause`: the harness stops us before it answers `enter`.
    let first = link.ask(&format!("write {lock} {token}")).await?;
    if first == "accept" {
        let dwell = rng.below(MAX_DWELL_US + 1);
        if dwell > 0 {
            tokio::time::sleep(Duration::from_micros(dwell)).await;
        }
        link.ask(&format!("write {lock} {token}")).await?;
    }
    link.ask(&format!("exit {lock} {token}")).await?;
    Some(true)
}

/// One critical section and the release. `Some(true)` to go on, `Some(false)` when told to
/// stop, `None` when the harness went away.
async fn section(link: &mut Link, rng: &mut Rng, lock: u32, guard: LockGuard) -> Option<bool> {
    let token = guard.fencing_token();
    let go_on = inside(link, rng, lock, token).await?;
    let outcome = match tokio::time::timeout(RELEASE_BOUND, guard.release()).await {
        Ok(Ok(true)) => Release::Ours,
        Ok(Ok(false)) => Release::Lost,
        Ok(Err(_)) | Err(_) => Release::Failed,
    };
    if go_on {
        link.send(&format!("released {lock} {token} {}", outcome.word()))
            .await
            .then_some(true)
    } else {
        Some(false)
    }
}
