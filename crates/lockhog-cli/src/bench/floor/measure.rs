//! What every floor shares: the key it locks, the measuring loops (uncontended cycles, and
//! handoffs to a thread blocked in the backend), and how a floor fails.

use std::io;
use std::time::{Duration, Instant};

use crate::bench::stats::Sample;
use crate::bench::workloads::{Handoff, Uncontended};
use crate::exit::{Failure, UNAVAILABLE};

/// How long the floor's holder lets a waiter block before releasing.
pub const PARK: Duration = Duration::from_millis(2);

/// The name every floor locks (a file, a key, an advisory key's text).
pub const KEY: &str = "lockhog-bench-floor";

/// A floor's failure to reach or drive its backend: exit 69.
pub fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(UNAVAILABLE, format!("bench --floor: {what}: {e}"))
}

/// What a floor measured: the commands it ran, its cycles, and its handoffs if the
/// protocol can block.
pub type Measured = (&'static str, Uncontended, Option<Handoff>);

/// Runs `cycle` back to back for `run` after a short warm-up.
pub fn cycles(run: Duration, mut cycle: impl FnMut() -> io::Result<()>) -> io::Result<Uncontended> {
    for _ in 0..50 {
        cycle()?;
    }
    let mut latencies = Vec::with_capacity(16 * 1024);
    let started = Instant::now();
    while started.elapsed() < run {
        let t = Instant::now();
        cycle()?;
        latencies.push(t.elapsed());
    }
    Ok(Uncontended {
        cycles: latencies.len() as u64,
        elapsed: started.elapsed(),
        cycle: Sample::new(latencies),
    })
}

/// Handoffs between this thread (`lock`/`unlock`) and a waiter thread blocking in `wait`.
pub fn thread_handoff<W, R>(
    run: Duration,
    mut lock: impl FnMut() -> io::Result<()>,
    mut unlock: impl FnMut() -> io::Result<()>,
    mut wait: W,
    mut release: R,
) -> io::Result<Handoff>
where
    W: FnMut() -> io::Result<()> + Send,
    R: FnMut() -> io::Result<()> + Send,
{
    use std::sync::mpsc;
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel::<io::Result<Instant>>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for () in go_rx {
                let held = wait().map(|()| Instant::now());
                let ok = held.is_ok();
                let _ = held_tx.send(held.and_then(|t| release().map(|()| t)));
                if !ok {
                    return;
                }
            }
        });
        let mut latencies = Vec::new();
        let started = Instant::now();
        while latencies.len() < 20 || started.elapsed() < run {
            lock()?;
            go_tx.send(()).map_err(io::Error::other)?;
            std::thread::sleep(PARK);
            let released = Instant::now();
            unlock()?;
            let held = held_rx.recv().map_err(io::Error::other)??;
            latencies.push(held.saturating_duration_since(released));
        }
        drop(go_tx);
        Ok(Handoff {
            latency: Sample::new(latencies),
            park: PARK,
        })
    })
}
