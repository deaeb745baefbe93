//! What `run`, `hold`, `status` and `cleanup` share: checking names, connecting, acquiring with
//! the `-n`/`-w`/`--ttl` options, and the signals that end a wait or a hold.

use std::time::Duration;

use lockhog::{LockAllGuard, LockGuard, LockName, Locker, Wait};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::Instant;

use crate::args::{AcquireArgs, BackendArgs};
use crate::exit::{Failure, UNAVAILABLE};

/// What a command locks: a lock name, or the resource another program locks
/// (`--resource`).
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    Name(&'a str),
    Resource(&'a str),
}

impl<'a> Target<'a> {
    /// `names`, then `resources`: the order `hold` takes them in.
    pub fn all(names: &'a [String], resources: &'a [String]) -> Vec<Target<'a>> {
        let names = names.iter().map(|n| Target::Name(n));
        names
            .chain(resources.iter().map(|r| Target::Resource(r)))
            .collect()
    }

    /// The name or the resource, as given.
    pub fn text(&self) -> &'a str {
        match self {
            Target::Name(t) | Target::Resource(t) => t,
        }
    }
}

/// Refuses bad names and resources before anything touches the backend (connecting to
/// `file:` creates its directory, to `sqlite:` its database), so that bad input leaves
/// nothing behind.
pub fn check_targets(args: &BackendArgs, targets: &[Target<'_>]) -> Result<(), Failure> {
    for target in targets {
        match target {
            Target::Name(name) => drop(LockName::new(*name)?),
            Target::Resource(res) => drop(Locker::check_resource(&url(args), res)?),
        }
    }
    Ok(())
}

/// `-b URL`, else `LOCKHOG_URL`, else the default backend (as [`Locker::from_env`]).
fn url(args: &BackendArgs) -> String {
    match &args.url {
        Some(url) => url.clone(),
        None => match std::env::var(lockhog::URL_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => lockhog::default_url(),
        },
    }
}

/// Connects to `-b URL`, else `LOCKHOG_URL`, else the default backend.
pub async fn connect(args: &BackendArgs) -> Result<Locker, Failure> {
    let locker = Locker::connect(&url(args)).await?;
    // Locker::url is redacted: the raw URL is never printed, not even in logs.
    tracing::debug!(
        url = locker.url(),
        namespace = locker.namespace(),
        "connected"
    );
    Ok(locker)
}

/// When the wait of `-w SECS` runs out, if there is one: one deadline for all the locks of a
/// command, so `hold -w 5 a b` waits at most five seconds in all.
pub fn deadline(args: &AcquireArgs) -> Option<Instant> {
    args.wait.map(|w| Instant::now() + w)
}

/// Acquires `target` (a permit of it with `--permits`) as `-n`, `-w` (up to `deadline`),
/// `--ttl` and `--shared` say, and logs how it went.
pub async fn acquire(
    locker: &Locker,
    target: Target<'_>,
    args: &AcquireArgs,
    deadline: Option<Instant>,
) -> lockhog::Result<LockGuard> {
    let wait = wait_of(args, deadline);
    let name = target.text();
    tracing::info!(
        name,
        ?wait,
        permits = args.permits,
        shared = args.shared,
        "acquiring"
    );
    let guard = match (target, args.permits) {
        (Target::Name(name), Some(permits)) => {
            let mut request = locker.semaphore(name, permits).waiting(wait);
            if let Some(ttl) = args.ttl {
                request = request.ttl(ttl);
            }
            request.acquire().await?
        }
        (Target::Resource(_), Some(_)) => {
            return Err(lockhog::Error::InvalidOption {
                reason: "--permits takes a lock name: a foreign resource is one lock".into(),
            })
        }
        (target, None) => {
            let mut request = match target {
                Target::Name(name) => locker.lock(name),
                Target::Resource(res) => locker.lock_resource(res),
            }
            .waiting(wait);
            if let Some(ttl) = args.ttl {
                request = request.ttl(ttl);
            }
            if args.shared {
                request = request.shared();
            }
            request.acquire().await?
        }
    };
    log_acquired(&guard);
    Ok(guard)
}

fn log_acquired(guard: &LockGuard) {
    let stats = guard.stats();
    tracing::info!(
        name = guard.name().as_str(),
        resource = guard.resource(),
        token = ?guard.fencing_token(),
        attempts = stats.attempts,
        waited_ms = millis(stats.waited),
        "acquired"
    );
}

/// Acquires every one of `targets` as [`acquire`] does one: all or none, in the order of their
/// resources, within `deadline` (see [`Locker::lock_all`]). With `--permits`, `targets` is
/// one name, and one permit of it is taken.
pub async fn acquire_all(
    locker: &Locker,
    targets: &[Target<'_>],
    args: &AcquireArgs,
    deadline: Option<Instant>,
) -> lockhog::Result<LockAllGuard> {
    if args.permits.is_some() {
        return match targets {
            [one] => Ok(acquire(locker, *one, args, deadline).await?.into()),
            _ => Err(lockhog::Error::InvalidOption {
                reason: "--permits takes one lock name".into(),
            }),
        };
    }
    let wait = wait_of(args, deadline);
    let names = targets.iter().filter_map(|t| match t {
        Target::Name(name) => Some(*name),
        Target::Resource(_) => None,
    });
    let resources = targets.iter().filter_map(|t| match t {
        Target::Resource(res) => Some(*res),
        Target::Name(_) => None,
    });
    let mut request = locker
        .lock_all(names)
        .and_resources(resources)
        .waiting(wait);
    if let Some(ttl) = args.ttl {
        request = request.ttl(ttl);
    }
    if args.shared {
        request = request.shared();
    }
    tracing::info!(?targets, ?wait, shared = args.shared, "acquiring");
    let all = request.acquire().await?;
    all.guards().iter().for_each(log_acquired);
    Ok(all)
}

/// The wait that `-n` and `-w` (up to `deadline`) ask for.
fn wait_of(args: &AcquireArgs, deadline: Option<Instant>) -> Wait {
    if args.no_wait {
        Wait::No
    } else if let Some(deadline) = deadline {
        Wait::For(deadline.saturating_duration_since(Instant::now()))
    } else {
        Wait::Forever
    }
}

/// A duration in milliseconds with a fraction, for logs.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// SIGINT and SIGTERM, caught: once installed they no longer end the process, and each
/// command decides what they mean (forward to the child, release and exit).
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    /// Installs the handlers. Do it before acquiring, so no signal falls between the default
    /// action and ours.
    pub fn install() -> Result<Self, Failure> {
        let fail = |e: std::io::Error| {
            Failure::new(UNAVAILABLE, format!("cannot install signal handlers: {e}"))
        };
        Ok(Signals {
            int: signal(SignalKind::interrupt()).map_err(fail)?,
            term: signal(SignalKind::terminate()).map_err(fail)?,
        })
    }

    /// The number of the next signal received.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as `Signal::recv` is: a signal is never lost by dropping this future.
    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            Some(()) = self.int.recv() => libc::SIGINT,
            Some(()) = self.term.recv() => libc::SIGTERM,
            // Streams end only when the runtime shuts down: nothing more will come.
            else => std::future::pending().await,
        }
    }
}
