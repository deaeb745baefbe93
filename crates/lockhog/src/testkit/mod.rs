//! The conformance suite every backend runs (feature `testkit`).
//!
//! Written once, run against each backend with two independent lockers (two connections), it
//! checks what [`Locker`] promises: mutual exclusion, try/wait/timeout outcomes, release by
//! Drop, fencing tokens, lease expiry, crash release through a killed `lockhog hold`, the
//! `hold` stdin protocol, names at the limits, namespaces, cancel safety, counting
//! semaphores and shared (reader) locks.
//!
//! A backend adds one line to a test file; [`conformance_suite!`](crate::conformance_suite)
//! expands to one `#[tokio::test]` per check:
//!
//! ```ignore
//! use lockhog::testkit::Target;
//!
//! lockhog::conformance_suite!(mem_backend, Target::new("mem:"));
//! lockhog::conformance_suite!(postgres_backend, Target::from_env("LOCKHOG_TEST_POSTGRES_URL"));
//! ```
//!
//! A backend outside lockhog runs the suite through a locker factory,
//! [`Target::from_factory`]; the checks that need another process to reach the store by URL do
//! not apply to it.
//!
//! A target read from the environment is skipped, with the reason printed, when its variable
//! is unset — except under `CI=true`, where a missing server fails the test.
//!
//! Checks that need another process run `lockhog hold`: the binary named by
//! [`Target::with_hold_bin`], else `LOCKHOG_BIN`, else `lockhog` beside the test executable.

mod attempts;
mod cancel;
mod checks;
mod limits;
mod lock_all;
mod process;
mod process_checks;
mod resource_checks;
mod semaphore;
mod shared;

pub use attempts::*;
pub use cancel::*;
pub use checks::*;
pub use limits::*;
pub use lock_all::*;
pub use process::HoldProcess;
pub use process_checks::*;
pub use resource_checks::*;
pub use semaphore::*;
pub use shared::*;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{Error, Locker};

/// Makes a new, independent locker on the store under test.
type Factory =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = crate::Result<Locker>> + Send>> + Send + Sync>;

/// The hang guard for every wait in the suite: long enough for a loaded machine, short enough
/// that a broken backend fails instead of hanging the run. It is never asserted as a speed.
pub const BOUND: Duration = Duration::from_secs(30);

/// A backend to run the suite against.
pub struct Target {
    url: Option<String>,
    factory: Option<Factory>,
    missing: Option<String>,
    hold_bin: Option<PathBuf>,
    unreachable_url: Option<String>,
    _dir: Option<tempfile_lite::TempDir>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url.as_deref().map(crate::url::redact))
            .field("factory", &self.factory.is_some())
            .field("missing", &self.missing)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A target at `url`.
    pub fn new(url: impl Into<String>) -> Target {
        Target {
            url: Some(url.into()),
            factory: None,
            missing: None,
            hold_bin: None,
            unreachable_url: None,
            _dir: None,
        }
    }

    /// A file-backend target in a fresh temporary directory, removed when the target is
    /// dropped. `query` is appended to the URL (e.g. `"?mode=fcntl"`, or `""`).
    pub fn temp_file_dir(query: &str) -> Target {
        let dir = tempfile_lite::TempDir::new().expect("cannot create a temporary directory");
        let mut t = Target::new(format!("file://{}{query}", dir.path().display()));
        t._dir = Some(dir);
        t
    }

    /// A `sqlite://` target on a new database file in a fresh temporary directory, removed
    /// when the target is dropped. `query` is appended to the URL (e.g. `"?ttl=5s"`, or `""`).
    pub fn temp_sqlite(query: &str) -> Target {
        let dir = tempfile_lite::TempDir::new().expect("cannot create a temporary directory");
        let mut t = Target::new(format!("sqlite://{}/locks.db{query}", dir.path().display()));
        t._dir = Some(dir);
        t
    }

    /// A target whose URL is in the environment variable `var` (set by `scripts/test`).
    /// When it is unset the checks are skipped with a printed reason, or fail under
    /// `CI=true`.
    pub fn from_env(var: &str) -> Target {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => Target::new(url),
            _ => Target {
                url: None,
                factory: None,
                missing: Some(format!(
                    "{var} is not set: run the suite through scripts/test, which starts the server"
                )),
                hold_bin: None,
                unreachable_url: None,
                _dir: None,
            },
        }
    }

    /// A target whose lockers `factory` makes, each a new, independent handle on one store:
    /// how a backend that is not built into lockhog (used through
    /// [`Locker::with_backend`]) runs the suite. It has no URL, so the checks that start a
    /// `lockhog hold` process do not apply.
    ///
    /// # Examples
    ///
    /// ```
    /// use lockhog::testkit::Target;
    ///
    /// let target = Target::from_factory(|| async { lockhog::Locker::connect("mem:").await });
    /// assert!(target.url().is_none());
    /// ```
    pub fn from_factory<F, Fut>(factory: F) -> Target
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::Result<Locker>> + Send + 'static,
    {
        Target {
            url: None,
            factory: Some(Arc::new(move || Box::pin(factory()))),
            missing: None,
            hold_bin: None,
            unreachable_url: None,
            _dir: None,
        }
    }

    /// The `lockhog` binary for the checks that need another process.
    pub fn with_hold_bin(mut self, bin: impl Into<PathBuf>) -> Target {
        self.hold_bin = Some(bin.into());
        self
    }

    /// A URL of this backend where nothing answers, for the check that an unreachable server
    /// gives [`Error::Backend`] within the wait bound.
    pub fn with_unreachable_url(mut self, url: impl Into<String>) -> Target {
        self.unreachable_url = Some(url.into());
        self
    }

    /// True when the checks can run; `false` (with the reason printed) when they must be
    /// skipped, outside CI only.
    ///
    /// # Panics
    ///
    /// Under `CI=true`, when the target's environment variable is unset.
    pub fn is_available(&self) -> bool {
        if self.url.is_some() || self.factory.is_some() {
            return true;
        }
        let why = self.missing.as_deref().unwrap_or("no URL");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and the backend is missing: {why}");
        }
        eprintln!("skipped: {why}");
        false
    }

    /// The URL another process can reach the store by; `None` for a target made by
    /// [`Target::from_factory`] or one whose environment variable is unset.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// A new, independent locker (its own connections) on the target.
    ///
    /// # Panics
    ///
    /// When the backend cannot be connected, or the target is not available.
    pub async fn locker(&self) -> Locker {
        let made = match (&self.factory, self.url.as_deref()) {
            (Some(factory), _) => factory().await,
            (None, Some(url)) => Locker::connect(url).await,
            (None, None) => panic!("is_available() was checked first"),
        };
        made.unwrap_or_else(|e| panic!("cannot connect to {self:?}: {e}"))
    }

    /// The `lockhog` binary to run `hold` with.
    ///
    /// # Panics
    ///
    /// When none can be found: the checks that need it must not pass silently.
    pub fn hold_bin(&self) -> PathBuf {
        if let Some(bin) = &self.hold_bin {
            return bin.clone();
        }
        if let Some(bin) = std::env::var_os("LOCKHOG_BIN") {
            return bin.into();
        }
        let exe = std::env::current_exe().expect("current_exe");
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("lockhog");
            if candidate.is_file() {
                return candidate;
            }
        }
        panic!("no lockhog binary: set LOCKHOG_BIN or Target::with_hold_bin (cargo build -p lockhog-cli)")
    }

    pub(crate) fn unreachable_url(&self) -> Option<&str> {
        self.unreachable_url.as_deref()
    }
}

/// Prints why a check does not apply to this backend, and returns.
fn not_applicable(check: &str, why: &str) {
    eprintln!("{check}: not applicable: {why}");
}

/// Asserts `result` is the "not acquired" outcome `want` ("contended" or "timed out").
#[track_caller]
fn assert_not_acquired<T: std::fmt::Debug>(result: Result<T, Error>, want: &str) {
    match (&result, want) {
        (Err(Error::Contended { .. }), "contended")
        | (Err(Error::TimedOut { .. }), "timed out") => {}
        _ => panic!("expected {want}, got {result:?}"),
    }
}

/// A throwaway temporary directory, so the suite needs no dependency beyond the library's.
mod tempfile_lite {
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> std::io::Result<TempDir> {
            use std::sync::atomic::{AtomicU32, Ordering};
            static SEQ: AtomicU32 = AtomicU32::new(0);
            let base = std::env::temp_dir();
            loop {
                let path = base.join(format!(
                    "lockhog-testkit-{}-{}",
                    std::process::id(),
                    SEQ.fetch_add(1, Ordering::Relaxed)
                ));
                match std::fs::create_dir(&path) {
                    Ok(()) => return Ok(TempDir(path)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Expands to a module of `#[tokio::test]`s, one per conformance check, against the
/// [`Target`] that `$target` makes (evaluated afresh in each test).
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $target:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                $target;
                mutual_exclusion_threads,
                mutual_exclusion_tasks,
                try_fails_while_held,
                wait_for_gives_up_at_its_bound,
                waiter_wakes_on_release,
                release_by_drop,
                release_reports_ownership,
                fencing_tokens_increase,
                fencing_tokens_survive_cleanup,
                lease_expires_when_not_renewed,
                killed_holder_releases,
                abandoned_holder,
                hold_protocol,
                names_at_the_limits,
                invalid_names_are_refused,
                hashed_names,
                namespaces_are_separate,
                with_lock_runs_only_when_acquired,
                cancelled_acquire_leaves_nothing_held,
                cancel_at_random_points,
                status_reports_held_and_free,
                unreachable_backend_errors,
                attempts_are_counted_and_capped,
                lock_all_takes_all_or_none,
                lock_all_never_deadlocks,
                lock_all_across_processes,
                max_hold_gives_the_lock_back,
                steal_after_takes_over_a_live_holder,
                printed_resources_are_the_same_lock,
                semaphore_admits_at_most_n,
                semaphore_try_wait_and_release,
                semaphore_different_count_refused,
                semaphore_killed_holder_releases,
                shared_readers_coexist_writer_excludes,
                shared_waiting_writer_is_not_starved
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($target:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let target: $crate::testkit::Target = $target;
                if target.is_available() {
                    $crate::testkit::$check(&target).await;
                }
            }
        )*
    };
}
