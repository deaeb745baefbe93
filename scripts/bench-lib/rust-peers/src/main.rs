//! Rust peers of lockhog under lockhog bench's workloads:
//!
//! ```text
//! lockhog-bench-peers rslock redis://127.0.0.1:PORT SECONDS
//! lockhog-bench-peers sqlx   postgres://…          SECONDS
//! ```
//!
//! Prints one JSON object: uncontended acquire+release cycles/s (p50/p99 of a cycle) over 60 %
//! of the time, then handoffs (a holder releases while a waiter task, with its own connection,
//! waits in the peer's blocking acquire) over the rest; both ends of a handoff are read from
//! `std::time::Instant` in this one process. Each peer is used as its documentation shows,
//! with its defaults (rslock retries 3 times with up to 200 ms between tries; `acquire` loops).

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::{PgAdvisoryLock, PgConnection};
use sqlx::Connection;

const NAME: &str = "lockhog-bench-peer";
const PARK: Duration = Duration::from_millis(5);
const TTL: Duration = Duration::from_secs(30);

fn quantile(v: &mut [Duration], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some((v[rank - 1].as_secs_f64() * 1e7).round() / 10.0)
}

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxErr> {
    let args: Vec<String> = std::env::args().collect();
    let [_, peer, url, secs] = &args[..] else {
        return Err("usage: lockhog-bench-peers rslock|sqlx URL SECONDS".into());
    };
    let run = Duration::from_secs_f64(secs.parse()?);
    let (u_run, h_run) = (run.mul_f64(0.6), run.mul_f64(0.4));
    let (cycles, elapsed, mut handoffs) = match peer.as_str() {
        "rslock" => rslock(url, u_run, h_run).await?,
        "sqlx" => sqlx_peer(url, u_run, h_run).await?,
        other => return Err(format!("unknown peer {other}").into()),
    };
    let n = cycles.len();
    let mut cycles = cycles;
    let max = handoffs.iter().max().map(|d| d.as_secs_f64() * 1e6);
    println!(
        "{}",
        json!({
            "mode": "peer",
            "peer": if peer == "sqlx" { "sqlx PgAdvisoryLock" } else { "rslock" },
            "uncontended_cycles": n,
            "uncontended_cycles_per_s": (n as f64 / elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "uncontended_p50_us": quantile(&mut cycles, 0.5),
            "uncontended_p99_us": quantile(&mut cycles, 0.99),
            "handoff_rounds": handoffs.len(),
            "handoff_p50_us": quantile(&mut handoffs, 0.5),
            "handoff_p99_us": quantile(&mut handoffs, 0.99),
            "handoff_max_us": max,
            "handoff_park_ms": PARK.as_secs_f64() * 1e3,
        })
    );
    Ok(())
}

type Measured = (Vec<Duration>, Duration, Vec<Duration>);

async fn rslock(url: &str, u_run: Duration, h_run: Duration) -> Result<Measured, BoxErr> {
    let rl = rslock::LockManager::new(vec![url.to_string()]);
    for _ in 0..20 {
        let lock = rl.lock(NAME, TTL).await?;
        rl.unlock(&lock).await;
    }
    let mut cycles = Vec::new();
    let started = Instant::now();
    while started.elapsed() < u_run {
        let t = Instant::now();
        let lock = rl.lock(NAME, TTL).await?;
        rl.unlock(&lock).await;
        cycles.push(t.elapsed());
    }
    let elapsed = started.elapsed();

    let waiter = rslock::LockManager::new(vec![url.to_string()]);
    let mut handoffs = Vec::new();
    let h_started = Instant::now();
    while handoffs.len() < 5 || h_started.elapsed() < h_run {
        let held = rl.acquire_no_guard(NAME, TTL).await?;
        let w = waiter.clone();
        let task = tokio::spawn(async move {
            let lock = w.acquire_no_guard(NAME, TTL).await?;
            let at = Instant::now();
            w.unlock(&lock).await;
            Ok::<_, rslock::LockError>(at)
        });
        tokio::time::sleep(PARK).await;
        let released = Instant::now();
        rl.unlock(&held).await;
        let at = task.await??;
        handoffs.push(at.saturating_duration_since(released));
    }
    Ok((cycles, elapsed, handoffs))
}

async fn try_cycle(lock: &PgAdvisoryLock, conn: &mut PgConnection) -> Result<(), BoxErr> {
    match lock.try_acquire(conn).await? {
        sqlx::Either::Left(guard) => {
            guard.release_now().await?;
            Ok(())
        }
        sqlx::Either::Right(_) => Err("uncontended try_acquire failed".into()),
    }
}

async fn sqlx_peer(url: &str, u_run: Duration, h_run: Duration) -> Result<Measured, BoxErr> {
    let lock = PgAdvisoryLock::new(NAME);
    let mut conn = PgConnection::connect(url).await?;
    for _ in 0..20 {
        try_cycle(&lock, &mut conn).await?;
    }
    let mut cycles = Vec::new();
    let started = Instant::now();
    while started.elapsed() < u_run {
        let t = Instant::now();
        try_cycle(&lock, &mut conn).await?;
        cycles.push(t.elapsed());
    }
    let elapsed = started.elapsed();

    let mut waiter = Some(PgConnection::connect(url).await?);
    let mut handoffs = Vec::new();
    let h_started = Instant::now();
    while handoffs.len() < 5 || h_started.elapsed() < h_run {
        let held = lock.acquire(&mut conn).await?;
        let mut wc = waiter.take().expect("the waiter's connection is back");
        let task = tokio::spawn(async move {
            let lock = PgAdvisoryLock::new(NAME);
            let r = async {
                let guard = lock.acquire(&mut wc).await?;
                let at = Instant::now();
                guard.release_now().await?;
                Ok::<_, sqlx::Error>(at)
            }
            .await;
            (wc, r)
        });
        tokio::time::sleep(PARK).await;
        let released = Instant::now();
        held.release_now().await?;
        let (wc, at) = task.await?;
        waiter = Some(wc);
        handoffs.push(at?.saturating_duration_since(released));
    }
    Ok((cycles, elapsed, handoffs))
}
