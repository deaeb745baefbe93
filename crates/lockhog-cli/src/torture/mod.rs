//! `lockhog torture`: N worker processes hammer the same locks while faults strike, and a
//! checker says whether the backend kept what it promises (issue 7).
//!
//! The pieces: [`worker`] (the hidden `torture-worker` subcommand each client runs), [`hub`]
//! (the harness's end of the workers' Unix socket: stamps, journals, answers fenced writes,
//! strikes holders), [`journal`] (events on the harness's one clock), [`fence`] (the fenced
//! resource), [`faults`] (the injector), [`proxy`] (the loopback TCP proxy of `cut`),
//! [`supervise`] (starting, replacing and stopping workers) and [`checker`] (sections,
//! overlaps, token order, verdict).

mod alive;
mod checker;
mod faults;
mod fence;
mod hub;
mod journal;
mod proxy;
mod supervise;
mod via_run;
pub mod worker;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use lockhog::Locker;
use tokio::net::UnixListener;

use crate::cli::BackendArgs;
use crate::exit::{Failure, Outcome, UNAVAILABLE};
use checker::{Promise, Report};
use hub::Hub;
use journal::FaultKind;
use proxy::{Proxy, Servers};
pub use worker::WorkerArgs;

/// `--help` text after the options: what is printed, what the exit status means.
pub const AFTER_HELP: &str = "\
Examples:
  lockhog torture -b file:///tmp/locks --clients 8 --duration 10 --faults kill,pause
  lockhog torture -b \"$LOCKHOG_TEST_REDIS_URL\" --clients 8 --duration 30 --faults kill,pause,restart,cut

N worker processes (this binary) loop acquire -> critical section -> release on the locks
torture-0 .. torture-<M-1>. The harness stamps every grant (`enter`), write and section end
on its own monotonic clock (CLOCK_MONOTONIC) as it handles the worker's message; a worker
waits for the answer to `enter` before its section starts and to `exit` before it releases,
so every stamped section lies inside a real hold. Each section writes twice to a fenced
resource in the harness, which refuses a token older than the newest it accepted.

Faults (one at a time, every 0.4-1.2 s):
  kill     SIGKILL the next worker granted a lock (inside its section); start another
  pause    SIGSTOP the next worker granted a lock for --pause (past its lease), then SIGCONT
  restart  run --restart-command (else $LOCKHOG_TORTURE_RESTART, else LOCKHOG_TEST_X_RESTART
           when LOCKHOG_TEST_X_URL is this URL); without one the fault is unavailable: exit 2
  cut      workers reach the server through a 127.0.0.1 proxy that closes both sides of
           every connection (loopback servers only)
  kill-run every section runs as the command of `lockhog run` (which ignores SIGTERM);
           SIGKILL the `run` of the next command granted a lock. On file (flock) the command
           keeps the inherited lock and finishes its section; elsewhere it is SIGKILLed with
           its `run` (on lease backends the lease outlives it). Either way no other section
           may enter while it runs: violations=0 on every backend

The checker counts: violations (sections into which another section of the same lock
entered, each counted once; a killed holder's section ends at the kill), token_regressions
(grants whose token is not above every earlier grant's of the lock), fenced_rejections
(writes the fence refused). A violation is `lost` when the intruded holder's release said the
lock was no longer its own (a lease ran out under a paused holder, a connection was cut),
`held` otherwise (a killed holder never said so), and `unfenced` when a write of the intruded
holder was accepted after a newer holder's write: a stale write the fence let through.

Exit status 0 when the backend kept its promise:
  - every backend: token_regressions=0, no unfenced overlap, no held overlap;
  - file, postgres, mysql (the lock dies with its holder's fd or connection): violations=0
    under kill and pause. With cut or restart a living holder can lose its connection, and
    the lock, inside its section: those overlaps are judged as on lease backends;
  - lease backends (redis, redlock, memcached, etcd, sqlite): a pause past the lease lets a
    new holder in while the paused one is inside its section. That overlap is counted in
    violations and is expected; fencing is the defence, and it fails only when unfenced.
Exit 1 otherwise (the reasons go to stderr), 2 usage (an unavailable fault included), 69
backend unreachable. The last line on stdout is always
  torture: sections=S violations=V token_regressions=T fenced_rejections=R faults=F";

/// `lockhog torture`'s options.
#[derive(Debug, Args)]
pub struct TortureArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Worker processes
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// How long to run, in seconds (fractions allowed)
    #[arg(long, value_name = "SECS", value_parser = parse_positive)]
    pub duration: Duration,
    /// Faults to inject, comma separated
    #[arg(long, value_name = "FAULTS", value_delimiter = ',')]
    pub faults: Vec<FaultKind>,
    /// How many locks the workers share
    #[arg(long, value_name = "M", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub locks: u32,
    /// Lease ttl on lease backends
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_positive)]
    pub ttl: Duration,
    /// How long `pause` stops a holder [default: twice the ttl plus one second]
    #[arg(long, value_name = "SECS", value_parser = parse_positive)]
    pub pause: Option<Duration>,
    /// Shell command that restarts the server and returns once it answers
    #[arg(long, value_name = "COMMAND")]
    pub restart_command: Option<String>,
}

fn parse_positive(text: &str) -> Result<Duration, String> {
    match lockhog::url::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// The restart command for `url`: the option, else `LOCKHOG_TORTURE_RESTART`, else the
/// `LOCKHOG_TEST_X_RESTART` of the `LOCKHOG_TEST_X_URL` equal to `url` (scripts/test's).
fn restart_command(given: Option<&str>, url: &str) -> Option<String> {
    let nonempty = |s: String| (!s.trim().is_empty()).then_some(s);
    if let Some(c) = given {
        return nonempty(c.to_string());
    }
    if let Some(c) = std::env::var("LOCKHOG_TORTURE_RESTART")
        .ok()
        .and_then(nonempty)
    {
        return Some(c);
    }
    std::env::vars().find_map(|(k, v)| {
        let base = k.strip_prefix("LOCKHOG_TEST_")?.strip_suffix("_URL")?;
        (v == url)
            .then(|| std::env::var(format!("LOCKHOG_TEST_{base}_RESTART")).ok())
            .flatten()
            .and_then(nonempty)
    })
}

/// A private directory for the workers' socket, removed on drop.
struct RunDir(PathBuf);

impl RunDir {
    fn new() -> std::io::Result<RunDir> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("lockhog-torture-{}-{nanos:x}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(RunDir(dir))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `lockhog torture`.
pub async fn run(args: TortureArgs) -> Outcome {
    let url = match &args.backend.url {
        Some(u) => u.clone(),
        None => match std::env::var(lockhog::URL_ENV) {
            Ok(u) if !u.is_empty() => u,
            _ => lockhog::default_url(),
        },
    };
    let kinds: Vec<FaultKind> = args
        .faults
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Usage first (nothing touched yet), then whether the backend answers.
    let servers = if kinds.contains(&FaultKind::Cut) {
        Some(Servers::parse(&url).map_err(|e| Failure::usage(format!("the cut fault: {e}")))?)
    } else {
        None
    };
    let locker = Locker::connect(&url).await?;
    let shown = locker.url().to_string();
    let caps = locker.capabilities();
    if !caps.cross_process {
        return Err(Failure::usage(format!(
            "{shown} locks within one process only; torture needs locks across processes"
        )));
    }
    let restart = if kinds.contains(&FaultKind::Restart) {
        Some(
            restart_command(args.restart_command.as_deref(), &url).ok_or_else(|| {
                Failure::usage(format!(
                    "the restart fault is not available for {shown}: no server this harness can \
                 restart (give --restart-command, or run under scripts/test, which exports \
                 LOCKHOG_TEST_<NAME>_RESTART for the servers it starts)"
                ))
            })?,
        )
    } else {
        None
    };
    drop(locker);
    let pause = args.pause.unwrap_or(args.ttl * 2 + Duration::from_secs(1));
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    println!(
        "torture: backend={shown} clients={} locks={} duration={}s ttl={}s pause={}s faults={}",
        args.clients,
        args.locks,
        args.duration.as_secs_f64(),
        args.ttl.as_secs_f64(),
        pause.as_secs_f64(),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(",")
        },
    );

    let fail =
        |what: &str, e: std::io::Error| Failure::new(UNAVAILABLE, format!("torture: {what}: {e}"));
    let dir = RunDir::new().map_err(|e| fail("cannot make a temporary directory", e))?;
    let socket = dir.0.join("workers.sock");
    let listener = UnixListener::bind(&socket).map_err(|e| fail("cannot listen for workers", e))?;
    let proxy = match &servers {
        Some(s) => Some(Arc::new(
            Proxy::start(&s.targets)
                .await
                .map_err(|e| fail("cannot start the proxy", e))?,
        )),
        None => None,
    };
    let worker_url = match (&servers, &proxy) {
        (Some(s), Some(p)) => s.through(&p.addrs),
        _ => url.clone(),
    };
    let exe = std::env::current_exe().map_err(|e| fail("cannot find this program", e))?;

    let hub = Hub::new();
    let accept_hub = hub.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(accept_hub.clone().serve(stream));
        }
    });
    let spawner = supervise::Spawner {
        exe,
        socket,
        url: worker_url,
        locks: args.locks,
        ttl: args.ttl,
        via_run: kinds.contains(&FaultKind::KillRun),
    };
    let outcome =
        supervise::drive(&args, &spawner, &hub, kinds.clone(), pause, restart, proxy).await;
    acceptor.abort();
    outcome?;

    let (report, faults, errors, samples, harness_errors) = {
        let st = hub.lock();
        let end = st.journal.now();
        (
            checker::check(st.journal.events(), end),
            st.faults.clone(),
            st.errors,
            st.error_samples.clone(),
            st.harness_errors.clone(),
        )
    };
    let promise = Promise {
        connection_bound: !caps.lease,
        connection_faults: kinds.contains(&FaultKind::Cut) || kinds.contains(&FaultKind::Restart),
    };
    Ok(print_report(
        &report,
        &faults,
        errors,
        &samples,
        harness_errors,
        promise,
    ))
}

fn print_report(
    r: &Report,
    faults: &[(FaultKind, journal::Stamp, String)],
    errors: u64,
    samples: &[String],
    harness_errors: Vec<String>,
    promise: Promise,
) -> u8 {
    let mut counts: Vec<String> = Vec::new();
    for kind in [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Restart,
        FaultKind::Cut,
        FaultKind::KillRun,
    ] {
        let n = faults.iter().filter(|(k, _, _)| *k == kind).count();
        if n > 0 {
            counts.push(format!("{}={n}", kind.name()));
        }
    }
    println!(
        "torture: faults {}",
        if counts.is_empty() {
            "none".into()
        } else {
            counts.join(" ")
        }
    );
    println!(
        "torture: overlaps lost={} held={} unfenced={}; killed_sections={} worker_errors={}",
        r.lost_overlaps, r.held_overlaps, r.unfenced_overlaps, r.killed_sections, errors
    );
    for s in samples {
        println!("torture: worker error: {s}");
    }
    let mut why = checker::judge(r, promise);
    why.extend(harness_errors);
    if why.is_empty() {
        println!("torture: ok: the backend kept its promise");
    } else {
        for w in &why {
            eprintln!("lockhog: torture: {w}");
        }
        println!("torture: FAILED: {}", why.join("; "));
    }
    println!(
        "torture: sections={} violations={} token_regressions={} fenced_rejections={} faults={}",
        r.sections,
        r.violations,
        r.token_regressions,
        r.fenced_rejections,
        faults.len()
    );
    u8::from(!why.is_empty())
}
