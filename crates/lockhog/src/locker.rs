//! [`Locker`]: a connection to one backend.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, Capabilities, CleanupReport, DynBackend, LockStatus};
use crate::error::{Error, Result};
use crate::name::{LockKey, LockName, DEFAULT_NAMESPACE};
use crate::options::{validate_ttl, RetryPolicy};
use crate::request::LockRequest;
use crate::semaphore::SemaphoreRequest;
use crate::url::{default_url, parse_duration, parse_fencing, BackendUrl};

/// The environment variable [`Locker::from_env`] reads.
pub const URL_ENV: &str = "LOCKHOG_URL";

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
    pub(crate) backend: Arc<dyn DynBackend>,
    namespace: String,
    ttl: Option<Duration>,
    retry: RetryPolicy,
    /// False with `?fencing=off`: every request is [`LockRequest::no_fencing`].
    fencing: bool,
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
    /// `namespace`, `ttl` and `fencing=on|off` (`off` makes every request
    /// [`LockRequest::no_fencing`]) apply to every backend; others are the backend's own, and
    /// an option nobody knows is an error.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for an unknown scheme, a backend not in this build or a malformed
    /// URL; [`Error::InvalidOption`] for a bad `ttl` or `fencing`; [`Error::Backend`] when the
    /// store cannot be reached or used (an unwritable directory, a refused connection).
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
        let fencing = parsed
            .take_option("fencing")
            .map_or(Ok(true), |v| parse_fencing(&v))?;
        // Whatever a backend or its client library says on the way is scrubbed of the URL's
        // passwords, source chain included.
        let secrets = parsed.secrets().clone();
        let backend = crate::backend::registry::connect(&mut parsed)
            .await
            .map_err(|e| secrets.scrub_error(e, parsed.redacted()))?;
        Ok(Locker {
            backend,
            namespace,
            ttl,
            retry: RetryPolicy::default(),
            fencing,
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

    /// Checks that the backend `url` names can lock the foreign `resource` (see
    /// [`Locker::lock_resource`]) and returns it in the form that backend prints, without
    /// connecting: connecting may create a directory or a database file, and a bad resource
    /// should leave nothing behind.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a URL [`Locker::connect`] would refuse by its scheme;
    /// [`Error::InvalidOption`] for a resource the backend cannot lock, naming the form it
    /// expects.
    ///
    /// # Examples
    ///
    /// ```
    /// use lockhog::Locker;
    ///
    /// assert_eq!(Locker::check_resource("file:///tmp/locks", "/run/app.pid")?, "/run/app.pid");
    /// assert!(Locker::check_resource("file:///tmp/locks", "run/app.pid").is_err());
    /// assert!(Locker::check_resource("mem:", "anything").is_err());
    /// # Ok::<(), lockhog::Error>(())
    /// ```
    pub fn check_resource(url: &str, resource: &str) -> Result<String> {
        let parsed = BackendUrl::parse(url)?;
        let resource = crate::backend::registry::parse_resource(&parsed, resource)?;
        // What `lock_resource` would refuse too (its length), so that this check is whole.
        LockKey::for_resource(DEFAULT_NAMESPACE, resource.as_str())?;
        Ok(resource)
    }

    /// A locker over a backend of your own (see [`Backend`]), in the default namespace.
    pub fn with_backend<B: Backend>(backend: B) -> Locker {
        let url = format!("{}:", backend.scheme());
        Locker {
            backend: Arc::new(backend),
            namespace: DEFAULT_NAMESPACE.to_string(),
            ttl: None,
            retry: RetryPolicy::default(),
            fencing: true,
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
        LockRequest::new(
            self.backend.clone(),
            LockName::new(name.as_ref()).map(|n| self.key(n)),
            self.ttl,
            self.retry,
            self.fencing,
        )
    }

    /// Starts a request for a lock addressed by its resource in the store's own convention,
    /// the one other programs take: the syntax `hold` and `status` print as RESOURCE. On
    /// `file:`, an absolute path (`flock`, or `fcntl` with `?mode=fcntl`); on `postgres:`,
    /// `advisory:<i64>` (`pg_advisory_lock(42)`) or `advisory:<i32>,<i32>`
    /// (`pg_advisory_lock(7, 99)`); on `mysql:`, the `GET_LOCK` name; on `redis:`, `rediss:`
    /// and `redlock:`, the key itself (`SET key token NX PX`); on `memcached:`, the key
    /// itself (`add`); on `etcd:` and `etcds:`, the prefix of `etcdctl lock <prefix>`. Other
    /// backends refuse with [`Error::InvalidOption`] (see
    /// [`RESOURCE_FORMS`](crate::backend::RESOURCE_FORMS)).
    ///
    /// The namespace does not apply. The guard's name is the resource, and its
    /// [`fencing_token`](crate::LockGuard::fencing_token) is `None` unless the store numbers
    /// holders itself ([`Capabilities::resource_fencing`]). A bad resource is reported by the
    /// acquire methods, before any I/O.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let pid_file = dir.path().join("app.pid");
    /// let locker = lockhog::Locker::connect(&format!("file://{}", dir.path().display())).await?;
    /// let guard = locker.lock_resource(pid_file.to_str().unwrap()).try_acquire().await?;
    /// assert_eq!(guard.resource(), pid_file.to_str().unwrap());
    /// assert_eq!(guard.fencing_token(), None);
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn lock_resource(&self, resource: impl AsRef<str>) -> LockRequest {
        LockRequest::new(
            self.backend.clone(),
            self.resource_key(resource.as_ref()),
            self.ttl,
            self.retry,
            self.fencing,
        )
    }

    /// Starts a request for one of the `permits` permits of the counting semaphore `name`: at
    /// most `permits` holders at once. Every user of the semaphore must ask for the same
    /// count; see [`SemaphoreRequest`] and
    /// [`Capabilities::semaphore`](crate::Capabilities::semaphore).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let locker = lockhog::Locker::connect("mem:").await?;
    /// let permit = locker.semaphore("uploads", 4).wait().await?;
    /// let token = permit.fencing_token(); // per permit, as for a lock
    /// permit.release().await?;
    /// # let _ = token;
    /// # Ok::<(), lockhog::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn semaphore(&self, name: impl AsRef<str>, permits: u32) -> SemaphoreRequest {
        SemaphoreRequest::new(self.lock(name), permits)
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
        LockRequest::new(
            self.backend.clone(),
            Ok(self.key(LockName::from_hash(value))),
            self.ttl,
            self.retry,
            self.fencing,
        )
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
    /// Those of [`LockRequest::acquire`] (then `f` did not run); `f`'s own result is returned
    /// inside `Ok` when the lock was held while `f` ran from start to end, else inside
    /// [`Error::LostWhileHeld`] (the lock was lost meanwhile, or its release failed).
    pub async fn with_lock<R, F, Fut, T>(&self, request: R, f: F) -> Result<T>
    where
        R: IntoLockRequest,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
        T: Send + 'static,
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

    /// The state of the locks addressed by their foreign resources (see
    /// [`Locker::lock_resource`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for a resource the backend cannot lock; [`Error::Backend`].
    pub async fn status_resources(&self, resources: &[&str]) -> Result<Vec<LockStatus>> {
        let keys = resources
            .iter()
            .map(|r| self.resource_key(r))
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

    pub(crate) fn key(&self, name: LockName) -> LockKey {
        LockKey::new(self.namespace.clone(), name)
    }

    /// The key of a foreign resource, as the backend parses it.
    fn resource_key(&self, resource: &str) -> Result<LockKey> {
        LockKey::for_resource(self.namespace.clone(), self.parse_resource(resource)?)
    }

    /// A foreign resource as the backend writes it (`advisory:007` is `advisory:7`).
    pub(crate) fn parse_resource(&self, resource: &str) -> Result<String> {
        self.backend.parse_resource(resource)
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
