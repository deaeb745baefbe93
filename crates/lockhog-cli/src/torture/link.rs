//! A worker's end of the harness's Unix socket, and the exchange of one critical section
//! over it (`enter`, two `write`s, `exit`), which both kinds of worker run.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};

use super::rng::Rng;
use crate::exit::{Failure, UNAVAILABLE};

/// How long a command whose `lockhog run` was killed stays in its section.
const ORPHAN_LINGER: Duration = Duration::from_millis(300);
/// The longest pause between the two writes of a section, in microseconds.
const MAX_DWELL_US: u64 = 1500;

/// The worker's connection to the harness: lines out, answers in.
pub struct Link {
    out: OwnedWriteHalf,
    replies: mpsc::UnboundedReceiver<String>,
}

impl Link {
    pub async fn send(&mut self, line: &str) -> bool {
        let mut bytes = line.replace(['\n', '\r'], " ").into_bytes();
        bytes.push(b'\n');
        self.out.write_all(&bytes).await.is_ok()
    }

    /// Sends `line` and returns the answer; `None` when the harness went away.
    pub async fn ask(&mut self, line: &str) -> Option<String> {
        if !self.send(line).await {
            return None;
        }
        self.replies.recv().await
    }
}

/// Connects to the harness: the link, and a flag set when the harness says `stop` or goes
/// away.
pub async fn connect(socket: &Path) -> Result<(Link, watch::Receiver<bool>), Failure> {
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

/// Asks to enter, and once answered runs the section: two writes, then `exit`. `Some(false)`
/// when the run is over and the section never started, `None` when the harness went away.
pub async fn inside(link: &mut Link, rng: &mut Rng, lock: u32, token: u64) -> Option<bool> {
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
