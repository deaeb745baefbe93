//! `lockhog torture`: N worker processes hammer the same locks while faults strike, and a
//! checker says whether the backend kept what it promises (TORTURE.md has what each backend
//! promises and what runs showed).
//!
//! The pieces: [`args`] (the options of both subcommands), [`worker`] (the hidden
//! `torture-worker` subcommand each client runs), [`via_run`] (its `kill-run` form, each
//! section under `lockhog run`), [`link`] (a worker's end of the socket and the exchange of one
//! section), [`rng`] (random choices), [`hub`]
//! (the harness's end of the workers' Unix socket: stamps, journals, answers fenced writes,
//! strikes holders), [`journal`] (events on the harness's one clock), [`fence`] (the fenced
//! resource), [`faults`] (the injector), [`proxy`] (the loopback TCP proxy of `cut`),
//! [`supervise`] (starting, replacing and stopping workers) and [`checker`] (sections,
//! overlaps, token order, verdict).

mod alive;
mod args;
mod checker;
mod faults;
mod fence;
mod hub;
mod journal;
mod link;
mod permits;
mod proxy;
mod rng;
mod supervise;
mod via_run;
pub mod worker;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lockhog::Locker;
use tokio::net::UnixListener;

use crate::exit::{Failure, Outcome, UNAVAILABLE};
pub use args::{TortureArgs, WorkerArgs, AFTER_HELP};
use checker::{Promise, Report};
use hub::Hub;
use journal::FaultKind;
use proxy::{Proxy, Servers};

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

    /// The prefix of this run's lock names, `torture-<pid>-<nanos>` like the directory's:
    /// unique among the runs on this machine at once.
    fn names(&self) -> String {
        let run = self.0.file_name().unwrap_or_default().to_string_lossy();
        run.strip_prefix("lockhog-").unwrap_or(&run).to_string()
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
    if let Some(n) = args.permits {
        if !caps.semaphore {
            return Err(Failure::usage(format!(
                "--permits {n}: {shown} has no semaphores"
            )));
        }
        if kinds.contains(&FaultKind::KillRun) {
            return Err(Failure::usage("--permits does not combine with kill-run"));
        }
    }
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
        names: dir.names(),
        ttl: args.ttl,
        via_run: kinds.contains(&FaultKind::KillRun),
        permits: args.permits,
    };
    let outcome =
        supervise::drive(&args, &spawner, &hub, kinds.clone(), pause, restart, proxy).await;
    acceptor.abort();
    outcome?;

    let (report, permit_report, faults, errors, samples, harness_errors) = {
        let st = hub.lock();
        let end = st.journal.now();
        let permit_report = args.permits.map(|n| {
            let sections = checker::sections(st.journal.events(), end);
            (n, permits::count(&sections, n))
        });
        (
            checker::check(st.journal.events(), end),
            permit_report,
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
    let mut harness_errors = harness_errors;
    if let Some((n, p)) = permit_report {
        println!(
            "torture: permits={n} max_holders={} over_admissions={} held={}",
            p.max_holders, p.over_admissions, p.held_over_admissions
        );
        let strict = promise.connection_bound && !promise.connection_faults;
        harness_errors.extend(permits::judge(&p, n, strict));
    }
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

#[cfg(test)]
mod tests {
    use super::RunDir;

    #[test]
    fn each_run_names_its_locks_apart() {
        let (a, b) = (RunDir::new().unwrap(), RunDir::new().unwrap());
        assert!(a.names().starts_with("torture-"), "{}", a.names());
        assert_ne!(a.names(), b.names(), "two runs at once share lock names");
    }
}
