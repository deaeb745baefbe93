//! The `kill-run` fault's workers: each section runs as the command of `lockhog run`, so the
//! harness can kill the `run` while its command is inside, and see whether the command keeps
//! the lock or dies with its `run`.
//!
//! A worker in `--via-run` mode loops `lockhog run -w 2 --ttl T torture-L -- lockhog
//! torture-worker --section L …` (the URL in `LOCKHOG_URL`, as always) until told to stop. The
//! command says `hello-run <pid> <run's pid>`, takes its token from `LOCKHOG_FENCING_TOKEN`,
//! runs one section and exits; `run` releases.

use std::process::Stdio;

use tokio::sync::watch;

use super::args::WorkerArgs;
use super::link::{connect, inside, Link};
use super::rng::Rng;
use crate::exit::{Failure, Outcome, SUCCESS, UNAVAILABLE};

/// The worker: runs sections through `lockhog run` until told to stop.
pub async fn worker(args: &WorkerArgs, mut link: Link, mut stop: watch::Receiver<bool>) -> Outcome {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(UNAVAILABLE, format!("torture worker: {e}")))?;
    let ttl = format!("{}", args.ttl_ms.max(1) as f64 / 1000.0);
    let mut rng = Rng::from_entropy();
    while !*stop.borrow() {
        let lock = rng.below(u64::from(args.locks)).to_string();
        let mut child = match tokio::process::Command::new(&exe)
            .args([
                "run",
                "-w",
                "2",
                "--ttl",
                &ttl,
                &format!("{}-{lock}", args.names),
                "--",
            ])
            .arg(&exe)
            .arg("torture-worker")
            .arg("--socket")
            .arg(&args.socket)
            .args([
                "--id",
                &args.id.to_string(),
                "--locks",
                &args.locks.to_string(),
                "--names",
                &args.names,
            ])
            .args(["--ttl-ms", &args.ttl_ms.to_string(), "--section", &lock])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                link.send(&format!("error cannot start lockhog run: {e}"))
                    .await;
                return Ok(SUCCESS);
            }
        };
        tokio::select! {
            status = child.wait() => match status.map(|s| s.code()) {
                // Done, not acquired within -w, lost (75), or killed by the fault.
                Ok(Some(0 | 1 | 75) | None) => {}
                Ok(Some(code)) => {
                    link.send(&format!("error lockhog run exited {code}")).await;
                }
                Err(e) => {
                    link.send(&format!("error waiting for lockhog run: {e}")).await;
                }
            },
            // Let the `run` finish rather than kill it: killing it would kill a command inside
            // its section (on every backend but file), which the checker rightly counts as a
            // worker that died without being killed. A command told `end` exits at once, and
            // `run` waits at most two seconds for a lock.
            _ = stop.changed() => {
                let _ = child.wait().await;
                break;
            }
        }
    }
    Ok(SUCCESS)
}

/// The command: one section of `lock` with the token `lockhog run` gave it.
pub async fn section(args: &WorkerArgs, lock: u32) -> Outcome {
    // Deaf to the SIGTERM its `run`'s death sends on file backends: the section goes on, as
    // a real command's cleanup would, and must still hold the lock it inherited.
    // SAFETY: setting a signal to be ignored has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    let token: u64 = std::env::var("LOCKHOG_FENCING_TOKEN")
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| Failure::usage("torture section: no LOCKHOG_FENCING_TOKEN"))?;
    // SAFETY: getppid has no preconditions.
    let supervisor = unsafe { libc::getppid() };
    let (mut link, _stop) = connect(&args.socket).await?;
    if !link
        .send(&format!("hello-run {} {supervisor}", std::process::id()))
        .await
    {
        return Ok(SUCCESS);
    }
    let _ = inside(&mut link, &mut Rng::from_entropy(), lock, token).await;
    Ok(SUCCESS)
}
