//! What one lock costs.
//!
//! - `acquire_release`: an uncontended acquire + release cycle on `mem:` and `file://`, through
//!   the async and the blocking API, next to the floor for the file backend: a bare
//!   `flock(LOCK_EX)` / `flock(LOCK_UN)` pair on one open descriptor (and, for scale, an
//!   open + flock + close, which is what any per-acquire file lock must pay).
//! - `handoff`: a holder releases while a waiter is parked in `wait()`; the time from just before
//!   the release to the waiter holding the lock, which should be about one wake-up of a
//!   blocked thread, not a polling interval.
//!
//! Run with `cargo bench -p lockhog --bench acquire`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use lockhog::Locker;
use tokio::runtime::Runtime;

const NAME: &str = "bench";

/// How long the holder lets the waiter get into `wait()` before releasing. Long enough for the
/// file backend's helper thread to be parked in `flock`; not counted in the measurement.
const PARK: Duration = Duration::from_micros(300);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn flock(file: &File, op: libc::c_int) {
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
}

fn acquire_release(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("acquire_release");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let mem = rt.block_on(Locker::connect("mem:")).expect("mem:");
    group.bench_function("mem/async", |b| {
        b.iter(|| {
            rt.block_on(async {
                let g = mem.lock(NAME).try_acquire().await.unwrap();
                g.release().await.unwrap();
            })
        })
    });

    let file = rt
        .block_on(Locker::connect(&file_url(dir.path())))
        .expect("file:");
    group.bench_function("file/async", |b| {
        b.iter(|| {
            rt.block_on(async {
                let g = file.lock(NAME).try_acquire().await.unwrap();
                g.release().await.unwrap();
            })
        })
    });

    let blocking = lockhog::blocking::Locker::connect(&file_url(dir.path())).expect("file:");
    group.bench_function("file/blocking", |b| {
        b.iter(|| {
            let g = blocking.lock(NAME).try_acquire().unwrap();
            g.release().unwrap();
        })
    });

    let raw_path = dir.path().join("raw.lock");
    let raw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&raw_path)
        .expect("raw lock file");
    group.bench_function("raw_flock/lock_unlock", |b| {
        b.iter(|| {
            flock(&raw, libc::LOCK_EX | libc::LOCK_NB);
            flock(&raw, libc::LOCK_UN);
        })
    });
    group.bench_function("raw_flock/open_lock_close", |b| {
        b.iter(|| {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&raw_path)
                .unwrap();
            flock(&f, libc::LOCK_EX | libc::LOCK_NB);
            drop(f);
        })
    });
    group.finish();
}

/// `iters` handoffs from this thread (the holder) to a waiter thread; returns the sum of the
/// times from just before each release to the waiter holding the lock.
fn handoffs(rt: &Runtime, holder: &Locker, waiter: &Locker, iters: u64) -> Duration {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel::<Instant>();
    let waiter = waiter.clone();
    let thread = thread::spawn(move || {
        let rt = runtime();
        for () in go_rx {
            let t1 = rt.block_on(async {
                let g = waiter.lock(NAME).wait().await.unwrap();
                let t1 = Instant::now();
                g.release().await.unwrap();
                t1
            });
            held_tx.send(t1).unwrap();
        }
    });
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let g = rt.block_on(holder.lock(NAME).try_acquire()).unwrap();
        go_tx.send(()).unwrap();
        thread::sleep(PARK);
        let t0 = Instant::now();
        rt.block_on(g.release()).unwrap();
        let t1 = held_rx.recv().unwrap();
        total += t1.saturating_duration_since(t0);
    }
    drop(go_tx);
    thread.join().unwrap();
    total
}

fn handoff(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("handoff");
    // Every handoff also spends PARK unmeasured, so keep the sample count and time small.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));

    let mem = rt.block_on(Locker::connect("mem:")).expect("mem:");
    group.bench_function("mem", |b| {
        b.iter_custom(|iters| handoffs(&rt, &mem, &mem, iters))
    });

    // Two lockers, as two processes would have.
    let url = file_url(dir.path());
    let holder = rt.block_on(Locker::connect(&url)).expect("file:");
    let waiter = rt.block_on(Locker::connect(&url)).expect("file:");
    group.bench_function("file", |b| {
        b.iter_custom(|iters| handoffs(&rt, &holder, &waiter, iters))
    });
    group.finish();
}

criterion_group!(benches, acquire_release, handoff);
criterion_main!(benches);
