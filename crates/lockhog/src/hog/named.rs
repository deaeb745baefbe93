//! A lockhog lock named by backend URL and name (or by the resource another program locks),
//! hogged through a connection of its own from a thread, a task or a process ([`HogFrom`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::async_hogger::AsyncHogger;
use super::hogger::{lost_is_error, marker, HogContext, Hogger};
use super::process::ProcessHog;
use super::task::AsyncHogHandle;
use super::{HogError, HogHandle, HogOptions};
use crate::error::BoxError;

/// Where a hog holds its lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HogFrom {
    /// A thread of this process (the default).
    #[default]
    Thread,
    /// A tokio task of the current runtime (async hogs only).
    Task,
    /// A `lockhog hold` child process: for locks owned per process, such as POSIX `fcntl`
    /// record locks, which no thread of the test's own process can take from it.
    Process,
}

/// A lockhog lock (or several) named by backend URL and name, to hog through a connection of
/// its own, so that it truly conflicts with the code under test even on backends whose locks
/// belong to a session.
///
/// It is a [`Hogger`] and an [`AsyncHogger`] (hogged from a thread or a task), and
/// [`NamedLock::hog`] can also hog it from a process.
///
/// [`NamedLock::resource`] and [`NamedLock::and_resource`] hog the lock the code under test
/// already takes under another library's name for it (see
/// [`Locker::lock_resource`](crate::Locker::lock_resource)): `advisory:42` for
/// `pg_advisory_lock(42)`, a `GET_LOCK` name, a pid file's path. Names are taken first, then
/// resources, each in the order given.
///
/// # Examples
///
/// ```
/// use lockhog::hog::{HogFrom, NamedLock};
///
/// let dir = tempfile::tempdir().unwrap();
/// let url = format!("file://{}", dir.path().display());
/// let hog = NamedLock::new(&url, "payroll").hog_from(HogFrom::Thread).hog()?;
///
/// let locker = lockhog::blocking::Locker::connect(&url)?;
/// assert!(locker.lock("payroll").try_acquire().unwrap_err().is_not_acquired());
/// hog.release()?;
/// assert!(locker.lock("payroll").try_acquire().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct NamedLock {
    url: String,
    names: Vec<String>,
    resources: Vec<String>,
    from: HogFrom,
    ttl: Option<Duration>,
    binary: Option<PathBuf>,
    options: HogOptions,
}

impl NamedLock {
    /// The lock `name` on the backend at `url`.
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        NamedLock {
            url: url.into(),
            names: vec![name.into()],
            resources: Vec::new(),
            from: HogFrom::Thread,
            ttl: None,
            binary: None,
            options: HogOptions::default(),
        }
    }

    /// The lock another program takes as `resource` on the backend at `url` (the syntax
    /// `lockhog hold` prints as RESOURCE; see
    /// [`Locker::lock_resource`](crate::Locker::lock_resource)).
    ///
    /// # Examples
    ///
    /// ```
    /// use lockhog::hog::NamedLock;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let pid_file = dir.path().join("app.pid");
    /// let url = format!("file://{}", dir.path().display());
    /// let hog = NamedLock::resource(&url, pid_file.to_str().unwrap()).hog()?;
    /// // The code under test takes flock(2) on its pid file, and finds it held.
    /// let file = std::fs::File::open(&pid_file)?;
    /// assert!(file.try_lock().is_err());
    /// hog.release()?;
    /// assert!(file.try_lock().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resource(url: impl Into<String>, resource: impl Into<String>) -> Self {
        NamedLock {
            names: Vec::new(),
            ..NamedLock::new(url, "").and_resource(resource)
        }
    }

    /// Hogs the lock `name` too (all are taken, in order, before the hog counts as held).
    pub fn and(mut self, name: impl Into<String>) -> Self {
        self.names.push(name.into());
        self
    }

    /// Hogs the foreign resource `resource` too (taken after the names).
    pub fn and_resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Where to hold the locks (default [`HogFrom::Thread`]).
    pub fn hog_from(mut self, from: HogFrom) -> Self {
        self.from = from;
        self
    }

    /// The lease ttl, on backends with leases.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The `lockhog` binary a process hog runs, instead of looking for it (see
    /// [`find_binary`](super::find_binary)).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// The hog's time limits (default [`HogOptions::default`]).
    pub fn options(mut self, options: HogOptions) -> Self {
        self.options = options;
        self
    }

    /// The names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The foreign resources.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// Hogs the locks from a thread or a process, within the [`NamedLock::options`] time
    /// limits.
    ///
    /// # Errors
    ///
    /// Those of [`hog_lock`](super::hog_lock) (a lock not acquired in time, a backend error
    /// as [`HogError::AcquireFailed`]); for a process hog also [`HogError::BinaryNotFound`],
    /// [`HogError::Process`], [`HogError::HoldExited`], [`HogError::Protocol`];
    /// [`HogError::Unsupported`] for [`HogFrom::Task`], which needs [`NamedLock::hog_async`].
    pub fn hog(self) -> Result<HogHandle, HogError> {
        let opts = self.options.clone();
        match self.from {
            HogFrom::Thread => opts.hog_lock(self),
            HogFrom::Process => {
                let mut extra: Vec<OsString> = Vec::new();
                if let Some(ttl) = self.ttl {
                    extra.push("--ttl".into());
                    extra.push(ttl.as_secs_f64().to_string().into());
                }
                for res in &self.resources {
                    // `--resource=RES`: one argument, so a resource that starts with `-` is
                    // never read as an option.
                    extra.push(format!("--resource={res}").into());
                }
                ProcessHog::start(
                    self.binary.as_deref(),
                    &self.url,
                    &self.names,
                    &extra,
                    self.names.len() + self.resources.len(),
                    &opts,
                )
                .map(HogHandle::process)
            }
            HogFrom::Task => Err(HogError::Unsupported(
                "a task hog needs a tokio runtime: use NamedLock::hog_async".into(),
            )),
        }
    }

    /// Hogs the locks from a task, a thread or a process (the last two started on tokio's
    /// blocking pool, so the runtime is never blocked).
    ///
    /// # Errors
    ///
    /// As [`NamedLock::hog`] and [`async_hog_lock`](super::async_hog_lock).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub async fn hog_async(self) -> Result<AsyncHogHandle, HogError> {
        match self.from {
            HogFrom::Task => self.options.clone().async_hog_lock(self).await,
            _ => tokio::task::spawn_blocking(move || self.hog())
                .await
                .map_err(|e| HogError::AcquirePanicked {
                    message: e.to_string(),
                })?
                .map(AsyncHogHandle::blocking),
        }
    }

    fn requests(&self, locker: &crate::Locker, ctx: &HogContext) -> Vec<crate::LockRequest> {
        let names = self.names.iter().map(|n| locker.lock(n));
        names
            .chain(self.resources.iter().map(|r| locker.lock_resource(r)))
            .map(|r| {
                let r = r.wait_at_most(ctx.remaining());
                match self.ttl {
                    Some(ttl) => r.ttl(ttl),
                    None => r,
                }
            })
            .collect()
    }
}

/// The guards of a [`NamedLock`] held from a thread, with the runtime that carries them.
#[derive(Debug)]
pub struct NamedHeld {
    rt: tokio::runtime::Runtime,
    guards: Vec<crate::LockGuard>,
}

impl Hogger<marker::Direct> for NamedLock {
    type Held = NamedHeld;
    fn acquire(self, ctx: &HogContext) -> Result<NamedHeld, BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lockhog-hog")
            .enable_all()
            .build()?;
        let guards = rt.block_on(AsyncHogger::acquire(self, ctx))?;
        Ok(NamedHeld { rt, guards })
    }
    fn release(held: NamedHeld) -> Result<(), BoxError> {
        held.rt
            .block_on(<Self as AsyncHogger<marker::Direct>>::release(held.guards))
    }
}

impl AsyncHogger<marker::Direct> for NamedLock {
    type Held = Vec<crate::LockGuard>;
    async fn acquire(self, ctx: &HogContext) -> Result<Self::Held, BoxError> {
        // A connection of our own: the test's locker is never shared with the hog.
        let locker = crate::Locker::connect(&self.url).await?;
        let mut guards = Vec::with_capacity(self.names.len());
        for request in self.requests(&locker, ctx) {
            guards.push(request.acquire().await?);
        }
        Ok(guards)
    }
    async fn release(guards: Self::Held) -> Result<(), BoxError> {
        let mut result = Ok(());
        for guard in guards.into_iter().rev() {
            let r = guard
                .release()
                .await
                .map_err(BoxError::from)
                .and_then(lost_is_error);
            result = result.and(r);
        }
        result
    }
}
