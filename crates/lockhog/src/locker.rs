//! [`Locker`]: a connection to one backend; [`LockRequest`]: how to take one lock.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::{
    file::FileBackend, mem::MemBackend, AcquireContext, Backend, Capabilities, CleanupReport,
    DynBackend, LockStatus,
};
use crate::error::{Error, Result};
use crate::guard::{AcquireStats, LockGuard, LostSender};
use crate::name::{LockKey, LockName, DEFAULT_NAMESPACE};
use crate::options::{parse_duration, AcquireOptions, RetryPolicy, Wait};
use crate::url::BackendUrl;

/// The environment variable [`Locker::from_env`] reads.
pub const URL_ENV: &str = "LOCKHOG_URL";

/// Schemes of the contract whose backends sit behind a cargo feature: (scheme, feature).
const FEATURE_SCHEMES: &[(&str, &str)] = &[
    ("sqlite", "sqlite"),
    ("postgres", "postgres"),
    ("postgresql", "postgres"),
    ("mysql", "mysql"),
    ("redis", "redis"),
    ("rediss", "redis"),
    ("redlock", "redis"),
    ("memcached", "memcached"),
    ("etcd", "etcd"),
    ("etcds", "etcd"),
];

/// A handle on one lock store. Cheap to clone; clones share the backend (and its connections).
///
/// # Examples
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let locker = lockhog::Locker::connect(&format!("file://{}", dir.path().display())).await?;
/// let guard = locker.lock("nightly-report").wait().await?;
/// // ... the critical section ...
/// guard.release().await?;
/// # Ok::<(), lockhog::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Locker {
    backend: Arc<dyn DynBackend>,
    namespace: String,
    ttl: Option<Duration>,
    retry: RetryPolicy,
    url: Arc<str>,
}

impl std::fmt::Debug for Locker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locker")
            .field("url", &self.url)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Locker {
    /// Connects to the backend named by `url` (see the table in the crate docs). Query options
    /// `namespace` and `ttl` apply to every backend; others are the backend's own, and an
    /// option nobody knows is an error.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for an unknown scheme, a backend not in this build or a malformed
    /// URL; [`Error::Backend`] when the store cannot be reached or used (an unwritable
    /// directory, a refused connection).
    pub async fn connect(url: &str) -> Result<Locker> {
        let mut parsed = BackendUrl::parse(url)?;
        let namespace = match parsed.take_option("namespace") {
            Some(ns) => validate_namespace(&ns)?,
            None => DEFAULT_NAMESPACE.to_string(),
        };
        let ttl = parsed
            .take_option("ttl")
            .map(|t| parse_duration(&t).and_then(validate_ttl))
            .transpose()?;
        let backend: Arc<dyn DynBackend> = match parsed.scheme() {
            "mem" => Arc::new(MemBackend::open(&mut parsed)?),
            "file" => Arc::new(FileBackend::open(&mut parsed)?),
            #[cfg(feature = "redis")]
            "redis" | "rediss" => {
                Arc::new(crate::backend::redis::RedisBackend::connect(&mut parsed).await?)
            }
            #[cfg(feature = "redis")]
            "redlock" => Arc::new(
                crate::backend::redis::redlock::RedlockBackend::connect(&mut parsed).await?,
            ),
            #[cfg(feature = "memcached")]
            "memcached" => {
                Arc::new(crate::backend::memcached::MemcachedBackend::connect(&mut parsed).await?)
            }
            #[cfg(feature = "mysql")]
            "mysql" => Arc::new(crate::backend::mysql::MysqlBackend::connect(&mut parsed).await?),
            #[cfg(feature = "sqlite")]
            "sqlite" => Arc::new(crate::backend::sqlite::SqliteBackend::open(&mut parsed).await?),
            #[cfg(feature = "etcd")]
            "etcd" | "etcds" => {
                Arc::new(crate::backend::etcd::EtcdBackend::connect(&mut parsed).await?)
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                Arc::new(crate::backend::postgres::PostgresBackend::connect(&mut parsed).await?)
            }
            s => {
                let reason = match FEATURE_SCHEMES.iter().find(|(scheme, _)| *scheme == s) {
                    Some((_, feature)) => format!(
                        "the {s} backend is not in this build of lockhog (cargo feature `{feature}`)"
                    ),
                    None => format!(
                        "unknown scheme {s:?}; known: mem, file, {}",
                        FEATURE_SCHEMES.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ")
                    ),
                };
                return Err(parsed.invalid(&reason));
            }
        };
        Ok(Locker {
            backend,
            namespace,
            ttl,
            retry: RetryPolicy::default(),
            url: parsed.redacted().into(),
        })
    }

    /// Connects to `LOCKHOG_URL`, or to the default file backend when it is unset.
    ///
    /// # Errors
    ///
    /// As [`Locker::connect`].
    pub async fn from_env() -> Result<Locker> {
        match std::env::var(URL_ENV) {
            Ok(url) if !url.is_empty() => Locker::connect(&url).await,
            _ => Locker::connect(&default_url()).await,
        }
    }

    /// A locker over a backend of your own (see [`Backend`]), in the default namespace.
    pub fn with_backend<B: Backend>(backend: B) -> Locker {
        let url = format!("{}:", backend.scheme());
        Locker {
            backend: Arc::new(backend),
            namespace: DEFAULT_NAMESPACE.to_string(),
            ttl: None,
            retry: RetryPolicy::default(),
            url: url.into(),
        }
    }

    /// The same store under another namespace: locks of one namespace never conflict with
    /// those of another.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for an empty namespace or one over 128 bytes.
    pub fn with_namespace(&self, namespace: &str) -> Result<Locker> {
        Ok(Locker {
            namespace: validate_namespace(namespace)?,
            ..self.clone()
        })
    }

    /// The URL this locker was made from, with any password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// What the backend guarantees.
    pub fn capabilities(&self) -> Capabilities {
        self.backend.capabilities()
    }

    /// Starts a request for the lock `name`. Nothing happens until one of the acquire methods
    /// of [`LockRequest`] is awaited; an invalid name is reported then, before any I/O.
    pub fn lock(&self, name: impl AsRef<str>) -> LockRequest {
        LockRequest {
            locker: self.clone(),
            name: LockName::new(name.as_ref()),
            wait: Wait::Forever,
            ttl: self.ttl,
            retry: self.retry,
            shared: false,
            fair: false,
        }
    }

    /// Starts a request for the lock named by any [`Hash`] value, through the stable SHA-256
    /// digest of [`LockName::from_hash`].
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let locker = lockhog::Locker::connect("mem:").await?;
    /// let _g = locker.lock_hashed(&("pay", 1234u64)).try_acquire().await?;
    /// assert!(locker.lock_hashed(&("pay", 1234u64)).try_acquire().await.unwrap_err().is_not_acquired());
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn lock_hashed<H: Hash + ?Sized>(&self, value: &H) -> LockRequest {
        let name = LockName::from_hash(value);
        LockRequest {
            name: Ok(name),
            ..self.lock("-")
        }
    }

    /// Runs `f` while holding the lock: the decorator form. `request` is a name (wait until
    /// acquired) or a configured [`LockRequest`]. When the lock is not acquired, `f` does not
    /// run and the error says why ([`Error::Contended`] with [`LockRequest::no_wait`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let locker = lockhog::Locker::connect("mem:").await?;
    /// let total = locker.with_lock("ledger", || async { 40 + 2 }).await?;
    /// assert_eq!(total, 42);
    ///
    /// let _held = locker.lock("ledger").try_acquire().await?;
    /// let mut ran = false;
    /// let outcome = locker.with_lock(locker.lock("ledger").no_wait(), || async { ran = true }).await;
    /// assert!(matches!(outcome, Err(lockhog::Error::Contended { .. })));
    /// assert!(!ran);
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`LockRequest::acquire`]; `f`'s own result is returned inside `Ok`.
    pub async fn with_lock<R, F, Fut, T>(&self, request: R, f: F) -> Result<T>
    where
        R: IntoLockRequest,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        request.into_request(self).run(f).await
    }

    /// The backend's resource for `name`, as `hold` and `status` print it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`].
    pub fn resource(&self, name: &str) -> Result<String> {
        Ok(self.backend.resource(&self.key(LockName::new(name)?)))
    }

    /// The state of the locks `names`, or of every lock the backend can list when empty.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::Backend`].
    pub async fn status(&self, names: &[&str]) -> Result<Vec<LockStatus>> {
        let keys = names
            .iter()
            .map(|n| LockName::new(*n).map(|n| self.key(n)))
            .collect::<Result<Vec<_>>>()?;
        self.backend.status(&self.namespace, &keys).await
    }

    /// Removes stale resources that nobody holds (unheld lock files, expired rows).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    pub async fn cleanup(&self) -> Result<CleanupReport> {
        self.backend.cleanup(&self.namespace).await
    }

    fn key(&self, name: LockName) -> LockKey {
        LockKey::new(self.namespace.clone(), name)
    }
}

/// The default backend URL: `file://$XDG_RUNTIME_DIR/lockhog`, or `file:///tmp/lockhog-$UID`
/// when `XDG_RUNTIME_DIR` is unset or not absolute.
pub fn default_url() -> String {
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(dir) if dir.starts_with('/') => format!("file://{}/lockhog", dir.trim_end_matches('/')),
        // SAFETY: getuid cannot fail and touches no memory of ours.
        _ => format!("file:///tmp/lockhog-{}", unsafe { libc::getuid() }),
    }
}

fn validate_namespace(ns: &str) -> Result<String> {
    if ns.is_empty() || ns.len() > 128 {
        return Err(Error::InvalidOption {
            reason: format!("a namespace is 1 to 128 bytes, not {}", ns.len()),
        });
    }
    Ok(ns.to_string())
}

fn validate_ttl(ttl: Duration) -> Result<Duration> {
    if ttl.is_zero() {
        return Err(Error::InvalidOption {
            reason: "a lease ttl must be above zero".into(),
        });
    }
    Ok(ttl)
}

/// A lock name or a configured [`LockRequest`]: what [`Locker::with_lock`] accepts.
pub trait IntoLockRequest {
    /// The request, made with `locker` when this is only a name.
    fn into_request(self, locker: &Locker) -> LockRequest;
}

impl IntoLockRequest for LockRequest {
    fn into_request(self, _: &Locker) -> LockRequest {
        self
    }
}

impl IntoLockRequest for &str {
    fn into_request(self, locker: &Locker) -> LockRequest {
        locker.lock(self)
    }
}

impl IntoLockRequest for String {
    fn into_request(self, locker: &Locker) -> LockRequest {
        locker.lock(self)
    }
}

impl IntoLockRequest for &LockName {
    fn into_request(self, locker: &Locker) -> LockRequest {
        locker.lock(self.as_str())
    }
}

/// How to take one lock: built by [`Locker::lock`], consumed by an acquire method.
///
/// # Cancel safety
///
/// Every acquire method is cancel safe: dropping its future at any await point leaves the lock
/// not held.
#[must_use = "a lock request does nothing until acquired"]
#[derive(Debug)]
pub struct LockRequest {
    locker: Locker,
    name: Result<LockName>,
    wait: Wait,
    ttl: Option<Duration>,
    retry: RetryPolicy,
    shared: bool,
    fair: bool,
}

impl LockRequest {
    /// Asks for a shared (reader) lock: any number of shared holders at once, none while an
    /// exclusive holder has it. Acquiring fails with [`Error::InvalidOption`] on backends
    /// without shared locks (see [`Capabilities::shared`]).
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Asks that waiters acquire in the order they started waiting. Acquiring fails with
    /// [`Error::InvalidOption`] on backends that cannot queue (see [`Capabilities::fair`]).
    pub fn fair(mut self) -> Self {
        self.fair = true;
        self
    }

    /// The lease's time to live on backends with leases (it is renewed while the guard lives).
    /// Backends whose locks live as long as their holder (file, mem) do not need one and
    /// ignore it.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The backoff between attempts on backends that poll.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Makes [`LockRequest::acquire`] try once.
    pub fn no_wait(mut self) -> Self {
        self.wait = Wait::No;
        self
    }

    /// Makes [`LockRequest::acquire`] wait at most `bound`.
    pub fn wait_at_most(mut self, bound: Duration) -> Self {
        self.wait = Wait::For(bound);
        self
    }

    /// Sets how [`LockRequest::acquire`] waits.
    pub fn waiting(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// One attempt.
    ///
    /// # Errors
    ///
    /// [`Error::Contended`] when someone else holds the lock; [`Error::InvalidName`],
    /// [`Error::InvalidOption`], [`Error::Backend`].
    pub async fn try_acquire(self) -> Result<LockGuard> {
        self.waiting(Wait::No).acquire().await
    }

    /// Waits at most `bound` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`] when the bound ran out; [`Error::InvalidName`],
    /// [`Error::InvalidOption`], [`Error::Backend`].
    pub async fn wait_for(self, bound: Duration) -> Result<LockGuard> {
        self.waiting(Wait::For(bound)).acquire().await
    }

    /// Waits until the lock is acquired.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::InvalidOption`], [`Error::Backend`].
    pub async fn wait(self) -> Result<LockGuard> {
        self.waiting(Wait::Forever).acquire().await
    }

    /// Acquires as configured (by default, waiting until acquired).
    ///
    /// # Errors
    ///
    /// [`Error::Contended`], [`Error::TimedOut`], [`Error::InvalidName`],
    /// [`Error::InvalidOption`], [`Error::Backend`].
    pub async fn acquire(self) -> Result<LockGuard> {
        let name = self.name?;
        self.retry.validate()?;
        let ttl = self.ttl.map(validate_ttl).transpose()?;
        let locker = self.locker;
        let caps = locker.capabilities();
        let unsupported = |what: &str| {
            Err(Error::InvalidOption {
                reason: format!(
                    "the {} backend has no {what} locks",
                    locker.backend.scheme()
                ),
            })
        };
        if self.shared && !caps.shared {
            return unsupported("shared");
        }
        if self.fair && !caps.fair {
            return unsupported("fair (FIFO)");
        }
        let key = locker.key(name.clone());
        let lost = LostSender::default();
        let ctx = AcquireContext::new(
            AcquireOptions {
                ttl,
                retry: self.retry,
                shared: self.shared,
                fair: self.fair,
            },
            lost.clone(),
        );
        let started = Instant::now();
        let acquired = match self.wait {
            Wait::No => {
                ctx.note_attempt();
                locker.backend.try_acquire(&key, &ctx).await?
            }
            Wait::For(bound) => {
                locker
                    .backend
                    .wait_acquire(&key, &ctx, Some(started + bound))
                    .await?
            }
            Wait::Forever => locker.backend.wait_acquire(&key, &ctx, None).await?,
        };
        let waited = started.elapsed();
        let stats = AcquireStats {
            attempts: ctx.attempts(),
            waited,
        };
        let Some(acquired) = acquired else {
            tracing::debug!(name = %name, attempts = stats.attempts, ?waited, "not acquired");
            return Err(match self.wait {
                Wait::No => Error::Contended {
                    name: name.to_string(),
                },
                _ => Error::TimedOut {
                    name: name.to_string(),
                    waited,
                },
            });
        };
        tracing::debug!(name = %name, attempts = stats.attempts, ?waited, token = acquired.token, "acquired");
        let resource = locker.backend.resource(&key);
        Ok(LockGuard::new(
            locker.backend.clone(),
            acquired.held,
            name,
            resource,
            acquired.token,
            stats,
            lost,
        ))
    }

    /// Runs `f` while holding the lock, then releases it (also when `f` panics). See
    /// [`Locker::with_lock`].
    ///
    /// # Errors
    ///
    /// Those of [`LockRequest::acquire`].
    pub async fn run<F, Fut, T>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.acquire().await?;
        let out = f().await;
        guard.release().await?;
        Ok(out)
    }
}
