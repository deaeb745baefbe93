//! Starting, replacing and stopping the worker processes, and the run's timeline: workers
//! start, the injector runs until the duration is over (finishing a fault under way), every
//! worker is told to stop and given the ttl plus five seconds, and stragglers are killed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::args::TortureArgs;
use super::faults::Injector;
use super::hub::{self, Hub};
use super::journal::FaultKind;
use super::proxy::Proxy;
use super::rng::Rng;
use crate::exit::{Failure, UNAVAILABLE};

/// How to start a worker.
pub struct Spawner {
    pub exe: PathBuf,
    pub socket: PathBuf,
    pub url: String,
    pub locks: u32,
    /// The locks' names are `<names>-<lock>`: new for every run.
    pub names: String,
    pub ttl: Duration,
    /// Sections run as commands of `lockhog run` (the `kill-run` fault).
    pub via_run: bool,
    /// Workers take permits of semaphores of this many permits.
    pub permits: Option<u32>,
}

impl Spawner {
    fn spawn(&self, id: u32) -> std::io::Result<tokio::process::Child> {
        let stderr = if std::env::var_os("RUST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        tokio::process::Command::new(&self.exe)
            .arg("torture-worker")
            .arg("--socket")
            .arg(&self.socket)
            .args(["--id", &id.to_string(), "--locks", &self.locks.to_string()])
            .args(["--names", &self.names])
            .args(["--ttl-ms", &self.ttl.as_millis().to_string()])
            .args(self.via_run.then_some("--via-run"))
            .args(self.permits.map(|n| format!("--permits={n}")))
            .env(lockhog::URL_ENV, &self.url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
    }
}

/// Starts the workers and the injector, keeps `clients` workers running until the duration
/// is over, then stops everyone: bounded in time and in the number of workers started.
pub async fn drive(
    args: &TortureArgs,
    spawner: &Spawner,
    hub: &Hub,
    kinds: Vec<FaultKind>,
    pause: Duration,
    restart: Option<String>,
    proxy: Option<Arc<Proxy>>,
) -> Result<(), Failure> {
    let max_spawns = args.clients.saturating_mul(4).saturating_add(1000);
    let mut next_id = 0u32;
    let mut running: HashMap<u32, u32> = HashMap::new();
    let mut children = JoinSet::new();
    let mut start =
        |children: &mut JoinSet<u32>, running: &mut HashMap<u32, u32>| -> Result<(), Failure> {
            let id = next_id;
            next_id += 1;
            let mut child = spawner.spawn(id).map_err(|e| {
                Failure::new(UNAVAILABLE, format!("torture: cannot start a worker: {e}"))
            })?;
            running.insert(id, child.id().unwrap_or(0));
            children.spawn(async move {
                let _ = child.wait().await;
                id
            });
            Ok(())
        };
    for _ in 0..args.clients {
        start(&mut children, &mut running)?;
    }
    let end = Instant::now() + args.duration;
    let injector = Injector {
        kinds,
        pause,
        ttl: args.ttl,
        restart,
        proxy: proxy.clone(),
        hub: hub.clone(),
        rng: Rng::from_entropy(),
    };
    let mut injecting = tokio::spawn(injector.run(end));
    let mut injector_done = false;
    let mut interrupted = false;
    let mut spawned = args.clients;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end), if !interrupted => {
                // The duration is over; a fault under way (a pause, a restart) finishes first.
                if injector_done { break; }
                let _ = (&mut injecting).await;
                break;
            }
            _ = &mut injecting, if !injector_done => injector_done = true,
            Some(Ok(id)) = children.join_next() => {
                running.remove(&id);
                if Instant::now() < end && spawned < max_spawns {
                    spawned += 1;
                    start(&mut children, &mut running)?;
                }
            }
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                injecting.abort();
                break;
            }
        }
    }
    // No worker stays stopped, whatever happened to the injector.
    for (_, pid) in hub.workers() {
        hub::signal(pid, libc::SIGCONT);
    }
    hub.stop();
    let grace = Instant::now() + args.ttl + Duration::from_secs(5);
    while !running.is_empty() {
        match tokio::time::timeout_at(grace, children.join_next()).await {
            Ok(Some(Ok(id))) => {
                running.remove(&id);
            }
            Ok(_) => break,
            Err(_) => {
                // Stragglers: killed, their open sections end now.
                let known: HashMap<u32, u32> = hub.workers().into_iter().collect();
                for (id, pid) in &running {
                    match known.get(id) {
                        Some(&p) => hub.kill(*id, p),
                        None => hub::signal(*pid, libc::SIGKILL),
                    }
                }
                while children.join_next().await.is_some() {}
                break;
            }
        }
    }
    if interrupted {
        return Err(Failure::new(130, "torture: interrupted"));
    }
    Ok(())
}
