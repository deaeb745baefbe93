//! The workloads of `lockhog bench`: uncontended cycles, handoff, and many clients on few locks
//! (whose waits give the fairness figures) or on the permits of one semaphore.
//!
//! Every time is taken with `std::time::Instant` (the monotonic clock) in this one process, so
//! the two ends of a handoff — the holder's release and the waiter's return — are on one clock.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use lockhog::Locker;
use tokio::sync::mpsc;

use super::stats::Sample;
use crate::exit::{Failure, UNAVAILABLE};

/// How long any single wait of the benchmark may take before it counts as a failure: far
/// beyond any healthy handoff, short enough that a stuck run still ends.
pub const BOUND: Duration = Duration::from_secs(30);

/// The semaphore phase's clients, and the permits of its one semaphore.
pub const SEMAPHORE_CLIENTS: usize = 16;
pub const SEMAPHORE_PERMITS: u32 = 4;

/// Uncontended acquire + release cycles from one task.
#[derive(Debug)]
pub struct Uncontended {
    pub cycles: u64,
    pub elapsed: Duration,
    /// Latency of each whole cycle (acquire, then release).
    pub cycle: Sample,
}

impl Uncontended {
    pub fn rate(&self) -> f64 {
        self.cycles as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs acquire + release cycles of `name` on `locker` for `run` (after a short unmeasured
/// warm-up that opens connections and loads scripts).
pub async fn uncontended(
    locker: &Locker,
    name: &str,
    run: Duration,
) -> Result<Uncontended, Failure> {
    let warm = Instant::now();
    let mut n = 0;
    while n < 20 || (warm.elapsed() < run / 10 && n < 1000) {
        locker.lock(name).try_acquire().await?.release().await?;
        n += 1;
    }
    let mut latencies = Vec::with_capacity(16 * 1024);
    let started = Instant::now();
    while started.elapsed() < run {
        let t = Instant::now();
        let guard = locker.lock(name).try_acquire().await?;
        guard.release().await?;
        latencies.push(t.elapsed());
    }
    Ok(Uncontended {
        cycles: latencies.len() as u64,
        elapsed: started.elapsed(),
        cycle: Sample::new(latencies),
    })
}

/// Handoffs: a holder releases while a waiter, on its own locker, is parked in `wait()`.
#[derive(Debug)]
pub struct Handoff {
    /// From just before the holder's release to the waiter holding the lock.
    pub latency: Sample,
    /// How long the holder let the waiter settle into its wait before each release.
    pub park: Duration,
}

enum FromWaiter {
    Ready,
    Held(Instant),
    Released,
    Failed(String),
}

/// The waiter's side: its own thread, its own runtime and its own [`Locker`] (own connections),
/// as another process would have. Each message on `go` starts one wait.
fn waiter_thread(
    url: String,
    name: String,
    mut go: mpsc::UnboundedReceiver<()>,
    tell: mpsc::UnboundedSender<FromWaiter>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = tell.send(FromWaiter::Failed(format!("cannot start a runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let locker = match Locker::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                let _ = tell.send(FromWaiter::Failed(e.to_string()));
                return;
            }
        };
        let _ = tell.send(FromWaiter::Ready);
        while go.recv().await.is_some() {
            match locker.lock(&name).wait_for(BOUND).await {
                Ok(guard) => {
                    let _ = tell.send(FromWaiter::Held(Instant::now()));
                    if let Err(e) = guard.release().await {
                        let _ = tell.send(FromWaiter::Failed(e.to_string()));
                        return;
                    }
                    let _ = tell.send(FromWaiter::Released);
                }
                Err(e) => {
                    let _ = tell.send(FromWaiter::Failed(e.to_string()));
                    return;
                }
            }
        }
    });
}

async fn next(rx: &mut mpsc::UnboundedReceiver<FromWaiter>) -> Result<FromWaiter, Failure> {
    match rx.recv().await {
        Some(FromWaiter::Failed(e)) => Err(Failure::new(
            UNAVAILABLE,
            format!("bench: the handoff waiter failed: {e}"),
        )),
        Some(m) => Ok(m),
        None => Err(Failure::new(UNAVAILABLE, "bench: the handoff waiter died")),
    }
}

/// Runs handoffs of `name` for about `run`: `holder` takes the lock, a waiter on another
/// thread starts `wait()`, the holder sleeps `park` and releases.
pub async fn handoff(
    url: &str,
    holder: &Locker,
    name: &str,
    run: Duration,
    park: Duration,
) -> Result<Handoff, Failure> {
    let (go_tx, go_rx) = mpsc::unbounded_channel();
    let (tell_tx, mut tell_rx) = mpsc::unbounded_channel();
    let (u, n) = (url.to_string(), name.to_string());
    let waiter = thread::Builder::new()
        .name("bench-waiter".into())
        .spawn(move || waiter_thread(u, n, go_rx, tell_tx))
        .map_err(|e| Failure::new(UNAVAILABLE, format!("cannot start a thread: {e}")))?;

    let outcome = async {
        let FromWaiter::Ready = next(&mut tell_rx).await? else {
            return Err(Failure::new(UNAVAILABLE, "bench: the waiter is confused"));
        };
        let mut latencies = Vec::new();
        let started = Instant::now();
        while latencies.len() < 20 || started.elapsed() < run {
            let guard = holder.lock(name).wait_for(BOUND).await?;
            let _ = go_tx.send(());
            tokio::time::sleep(park).await;
            let released = Instant::now();
            guard.release().await?;
            let FromWaiter::Held(held) = next(&mut tell_rx).await? else {
                return Err(Failure::new(UNAVAILABLE, "bench: the waiter is confused"));
            };
            if held < released {
                return Err(Failure::new(
                    UNAVAILABLE,
                    "bench: the waiter held the lock before the holder released it",
                ));
            }
            latencies.push(held - released);
            let FromWaiter::Released = next(&mut tell_rx).await? else {
                return Err(Failure::new(UNAVAILABLE, "bench: the waiter is confused"));
            };
            if latencies.len() >= 100_000 {
                break;
            }
        }
        Ok(Handoff {
            latency: Sample::new(latencies),
            park,
        })
    }
    .await;
    drop(go_tx);
    // The waiter ends once `go` is closed (or has already ended on a failure); joining it off
    // this thread keeps our runtime free to run the holder's connection tasks meanwhile.
    let _ = tokio::task::spawn_blocking(move || waiter.join()).await;
    outcome
}

/// Many clients, each with its own [`Locker`] (own connections), on few locks.
#[derive(Debug)]
pub struct Contended {
    pub cycles: u64,
    pub elapsed: Duration,
    /// From asking for a lock to holding it, over every acquisition.
    pub waits: Sample,
    /// Cycles done by each client: how evenly the locks were shared.
    pub per_client: Vec<u64>,
}

impl Contended {
    pub fn rate(&self) -> f64 {
        self.cycles as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `clients` clients on `names` for `run` — on permits of a semaphore of `permits` under each
/// name when that is given — on a multi-thread runtime of its own (one worker per core) so
/// that the clients run in parallel as separate processes would.
pub async fn contended(
    url: &str,
    clients: usize,
    names: Vec<String>,
    permits: Option<u32>,
    run: Duration,
) -> Result<Contended, Failure> {
    let url = url.to_string();
    let work = move || -> Result<Contended, Failure> {
        let workers = thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .map_err(|e| Failure::new(UNAVAILABLE, format!("cannot start a runtime: {e}")))?;
        runtime.block_on(contended_on_runtime(&url, clients, names, permits, run))
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Failure::new(UNAVAILABLE, format!("bench: contended phase failed: {e}")))?
}

async fn contended_on_runtime(
    url: &str,
    clients: usize,
    names: Vec<String>,
    permits: Option<u32>,
    run: Duration,
) -> Result<Contended, Failure> {
    let mut lockers = Vec::with_capacity(clients);
    for _ in 0..clients {
        lockers.push(Locker::connect(url).await?);
    }
    let names = Arc::new(names);
    let started = Instant::now();
    let tasks: Vec<_> = lockers
        .into_iter()
        .enumerate()
        .map(|(client, locker)| {
            let names = names.clone();
            tokio::spawn(async move {
                // xorshift64*, seeded per client: a fixed, cheap spread over the locks.
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (client as u64 + 1);
                let mut waits = Vec::new();
                while started.elapsed() < run {
                    state ^= state >> 12;
                    state ^= state << 25;
                    state ^= state >> 27;
                    let pick = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize;
                    let asked = Instant::now();
                    let name = &names[pick % names.len()];
                    let guard = match permits {
                        Some(n) => locker.semaphore(name, n).wait_for(BOUND).await?,
                        None => locker.lock(name).wait_for(BOUND).await?,
                    };
                    waits.push(asked.elapsed());
                    guard.release().await?;
                }
                Ok::<_, lockhog::Error>(waits)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut per_client = Vec::with_capacity(clients);
    for task in tasks {
        let waits = task
            .await
            .map_err(|e| Failure::new(UNAVAILABLE, format!("bench: a client failed: {e}")))??;
        per_client.push(waits.len() as u64);
        all.extend(waits);
    }
    let elapsed = started.elapsed();
    Ok(Contended {
        cycles: all.len() as u64,
        elapsed,
        waits: Sample::new(all),
        per_client,
    })
}
