//! What `run`, `hold`, `status` and `cleanup` share: checking names, connecting, acquiring with
//! the `-n`/`-w`/`--ttl` options, and the signals that end a wait or a hold.

use std::time::Duration;

use lockhog::{LockGuard, LockName, Locker, Wait};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::Instant;

use crate::args::{AcquireArgs, BackendArgs};
use crate::exit::{Failure, UNAVAILABLE};

/// Refuses bad names before anything touches the backend (connecting to `file:` creates its
/// directory), so that bad input leaves nothing behind.
pub fn check_names<S: AsRef<str>>(names: &[S]) -> Result<(), Failure> {
    for name in names {
        LockName::new(name.as_ref())?;
    }
    Ok(())
}

/// Connects to `-b URL`, else `LOCKHOG_URL`, else the default backend.
pub async fn connect(args: &BackendArgs) -> Result<Locker, Failure> {
    let locker = match &args.url {
        Some(url) => Locker::connect(url).await?,
        None => Locker::from_env().await?,
    };
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

/// Acquires `name` (a permit of it with `--permits`) as `-n`, `-w` (up to `deadline`) and
/// `--ttl` say, and logs how it went.
pub async fn acquire(
    locker: &Locker,
    name: &str,
    args: &AcquireArgs,
    deadline: Option<Instant>,
) -> lockhog::Result<LockGuard> {
    let wait = if args.no_wait {
        Wait::No
    } else if let Some(deadline) = deadline {
        Wait::For(deadline.saturating_duration_since(Instant::now()))
    } else {
        Wait::Forever
    };
    tracing::info!(name, ?wait, permits = args.permits, "acquiring");
    let guard = match args.permits {
        None => {
            let request = locker.lock(name).waiting(wait);
            match args.ttl {
                Some(ttl) => request.ttl(ttl),
                None => request,
            }
            .acquire()
            .await?
        }
        Some(permits) => {
            let request = locker.semaphore(name, permits).waiting(wait);
            match args.ttl {
                Some(ttl) => request.ttl(ttl),
                None => request,
            }
            .acquire()
            .await?
        }
    };
    let stats = guard.stats();
    tracing::info!(
        name,
        resource = guard.resource(),
        token = guard.fencing_token(),
        attempts = stats.attempts,
        waited_ms = millis(stats.waited),
        "acquired"
    );
    Ok(guard)
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
