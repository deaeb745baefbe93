//! `NativeLocker`: a connected `lockhog::Locker`, with blocking and asyncio entry points.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;
use crate::guard::NativeGuard;
use crate::names::Name;
use crate::wait::{block_on, seconds};
use lockhog::Wait;

/// A connection to one lock store (see `lockhog.Locker`).
#[pyclass(module = "lockhog._lockhog", frozen)]
pub struct NativeLocker {
    inner: lockhog::Locker,
}

/// What one acquire takes: a lock by name, or a resource another program names.
enum Target {
    Name(Name),
    Resource(String),
}

/// How one acquire should go, checked before any I/O.
struct Request {
    target: Target,
    wait: Wait,
    ttl: Option<f64>,
    shared: bool,
    /// A permit of a semaphore of this many permits, rather than the lock itself.
    permits: Option<u32>,
}

/// What one acquire takes, built: a lock, or one permit of a semaphore.
enum Built {
    Lock(lockhog::LockRequest),
    Permit(lockhog::SemaphoreRequest),
}

/// How to wait, from Python's `blocking` and `timeout` (as `threading.Lock.acquire` takes
/// them).
fn wait_of(blocking: bool, timeout: Option<f64>) -> lockhog::Result<Wait> {
    match (blocking, timeout) {
        (false, None) => Ok(Wait::No),
        (false, Some(_)) => Err(lockhog::Error::InvalidOption {
            reason: "a timeout makes no sense for a non-blocking acquire".into(),
        }),
        (true, Some(t)) => Ok(Wait::For(seconds(t, "timeout")?)),
        (true, None) => Ok(Wait::Forever),
    }
}

impl Request {
    fn build(self, locker: &lockhog::Locker) -> lockhog::Result<Built> {
        let ttl = self.ttl.map(|t| seconds(t, "ttl")).transpose()?;
        match (self.permits, &self.target) {
            (None, target) => {
                let mut req = match target {
                    Target::Name(name) => name.request(locker),
                    Target::Resource(res) => locker.lock_resource(res),
                };
                req = req.waiting(self.wait);
                if let Some(ttl) = ttl {
                    req = req.ttl(ttl);
                }
                if self.shared {
                    req = req.shared();
                }
                Ok(Built::Lock(req))
            }
            (Some(permits), Target::Name(name)) if !self.shared => {
                let mut req = locker.semaphore(name.to_name(), permits);
                req = req.waiting(self.wait);
                if let Some(ttl) = ttl {
                    req = req.ttl(ttl);
                }
                Ok(Built::Permit(req))
            }
            (Some(_), _) => Err(lockhog::Error::InvalidOption {
                reason: "a semaphore is taken by name, and has no shared mode".into(),
            }),
        }
    }
}

async fn open(url: Option<String>, namespace: Option<String>) -> PyResult<NativeLocker> {
    let locker = match url {
        Some(url) => lockhog::Locker::connect(&url).await,
        None => lockhog::Locker::from_env().await,
    };
    let locker = match namespace {
        Some(ns) => locker.and_then(|l| l.with_namespace(&ns)),
        None => locker,
    };
    locker.map(|inner| NativeLocker { inner }).map_err(to_py)
}

async fn acquire(req: lockhog::Result<Built>) -> PyResult<NativeGuard> {
    let guard = match req.map_err(to_py)? {
        Built::Lock(req) => req.acquire().await,
        Built::Permit(req) => req.acquire().await,
    };
    Ok(NativeGuard::start(guard.map_err(to_py)?))
}

/// Every lock of `req`, all or none, each handed to a guard task of its own; in the order
/// they were taken, which Python releases in reverse.
async fn acquire_all(req: lockhog::Result<lockhog::LockAllRequest>) -> PyResult<Vec<NativeGuard>> {
    let all = req.map_err(to_py)?.acquire().await.map_err(to_py)?;
    Ok(all
        .into_guards()
        .into_iter()
        .map(NativeGuard::start)
        .collect())
}

impl NativeLocker {
    /// The request for `name` (a resource when `resource`, a permit when `permits`); a name
    /// of the wrong type fails here, bad values when awaited.
    // The arguments are Python's keywords, one each.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        name: &Bound<'_, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
        resource: bool,
        permits: Option<u32>,
    ) -> PyResult<lockhog::Result<Built>> {
        let target = if resource {
            Target::Resource(name.extract()?)
        } else {
            Target::Name(Name::extract(name)?)
        };
        let built = wait_of(blocking, timeout).and_then(|wait| {
            let req = Request {
                target,
                wait,
                ttl,
                shared,
                permits,
            };
            req.build(&self.inner)
        });
        Ok(built)
    }

    /// The request for all of `names` and `resources` at once; a name of the wrong type fails
    /// here, bad values when awaited.
    fn request_all(
        &self,
        names: &Bound<'_, PyAny>,
        resources: Vec<String>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
    ) -> PyResult<lockhog::Result<lockhog::LockAllRequest>> {
        let names = names
            .try_iter()?
            .map(|n| Name::extract(&n?).map(|n| n.to_name()))
            .collect::<PyResult<Vec<String>>>()?;
        Ok(wait_of(blocking, timeout).and_then(|wait| {
            let mut req = self.inner.lock_all(names).and_resources(resources);
            req = req.waiting(wait);
            if let Some(ttl) = ttl {
                req = req.ttl(seconds(ttl, "ttl")?);
            }
            Ok(req)
        }))
    }
}

#[pymethods]
impl NativeLocker {
    /// Connects (blocking) to `url`, or to `LOCKHOG_URL` / the default file directory.
    #[staticmethod]
    #[pyo3(signature = (url=None, namespace=None))]
    fn connect(py: Python<'_>, url: Option<String>, namespace: Option<String>) -> PyResult<Self> {
        block_on(py, open(url, namespace))?
    }

    /// Connects without blocking the event loop.
    #[staticmethod]
    #[pyo3(signature = (url=None, namespace=None))]
    fn connect_async(
        py: Python<'_>,
        url: Option<String>,
        namespace: Option<String>,
    ) -> PyResult<Bound<'_, PyAny>> {
        pyo3_async_runtimes::tokio::future_into_py(py, open(url, namespace))
    }

    /// The URL, password redacted.
    #[getter]
    fn url(&self) -> &str {
        self.inner.url()
    }

    /// The namespace.
    #[getter]
    fn namespace(&self) -> &str {
        self.inner.namespace()
    }

    /// What the backend guarantees, by name.
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.capabilities();
        let d = PyDict::new(py);
        for (k, v) in [
            ("lease", c.lease),
            ("native_fencing", c.native_fencing),
            ("lost_notice", c.lost_notice),
            ("fair", c.fair),
            ("shared", c.shared),
            ("crash_release", c.crash_release),
            ("native_wait", c.native_wait),
            ("cross_process", c.cross_process),
            ("resource_fencing", c.resource_fencing),
            ("semaphore", c.semaphore),
            ("shared_writer_priority", c.shared_writer_priority),
            ("steal_after", c.steal_after),
            ("free_fencing", c.free_fencing),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Takes the lock `name`, or the resource `name` when `resource` (blocking, the GIL
    /// released, Ctrl-C honoured).
    // The arguments are Python's keywords, one each.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, blocking=true, timeout=None, ttl=None, shared=false, resource=false, permits=None))]
    fn acquire(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
        resource: bool,
        permits: Option<u32>,
    ) -> PyResult<NativeGuard> {
        let req = self.request(name, blocking, timeout, ttl, shared, resource, permits)?;
        block_on(py, acquire(req))?
    }

    /// Takes the lock `name` (the resource `name` when `resource`) without blocking the event
    /// loop; cancelling the awaitable cancels the acquire.
    // The arguments are Python's keywords, one each.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, blocking=true, timeout=None, ttl=None, shared=false, resource=false, permits=None))]
    fn acquire_async<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
        resource: bool,
        permits: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = self.request(name, blocking, timeout, ttl, shared, resource, permits)?;
        pyo3_async_runtimes::tokio::future_into_py(py, acquire(req))
    }

    /// Takes every lock of `names` and `resources`, all or none, within one wait (blocking,
    /// the GIL released, Ctrl-C honoured): their guards, in the order they were taken.
    #[pyo3(signature = (names, resources=Vec::new(), blocking=true, timeout=None, ttl=None))]
    fn acquire_all(
        &self,
        py: Python<'_>,
        names: &Bound<'_, PyAny>,
        resources: Vec<String>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
    ) -> PyResult<Vec<NativeGuard>> {
        let req = self.request_all(names, resources, blocking, timeout, ttl)?;
        block_on(py, acquire_all(req))?
    }

    /// `acquire_all` without blocking the event loop; cancelling the awaitable cancels it and
    /// gives back what was taken.
    #[pyo3(signature = (names, resources=Vec::new(), blocking=true, timeout=None, ttl=None))]
    fn acquire_all_async<'py>(
        &self,
        py: Python<'py>,
        names: &Bound<'py, PyAny>,
        resources: Vec<String>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = self.request_all(names, resources, blocking, timeout, ttl)?;
        pyo3_async_runtimes::tokio::future_into_py(py, acquire_all(req))
    }

    /// The backend's resource for `name`.
    fn resource(&self, name: &str) -> PyResult<String> {
        self.inner.resource(name).map_err(to_py)
    }

    /// The resource another program names, as the backend writes it (`advisory:007` is
    /// `advisory:7`); a resource it cannot lock raises `InvalidOption`. No I/O.
    fn check_resource(&self, resource: &str) -> PyResult<String> {
        // Only the URL's scheme matters here, so its redacted form does.
        lockhog::Locker::check_resource(self.inner.url(), resource).map_err(to_py)
    }

    /// (name, resource, state, holder) for each of `names`, then each of `resources`; every
    /// lock the backend can list when both are empty.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (names, resources=Vec::new()))]
    fn status(
        &self,
        py: Python<'_>,
        names: Vec<String>,
        resources: Vec<String>,
    ) -> PyResult<Vec<(Option<String>, String, &'static str, Option<String>)>> {
        let locker = self.inner.clone();
        let found = block_on(py, async move {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
            let mut found = Vec::new();
            if !names.is_empty() || resources.is_empty() {
                found = locker.status(&names).await?;
            }
            if !resources.is_empty() {
                found.extend(locker.status_resources(&resources).await?);
            }
            Ok::<_, lockhog::Error>(found)
        })?
        .map_err(to_py)?;
        Ok(found
            .into_iter()
            .map(|s| {
                let state = match s.state {
                    lockhog::LockState::Held => "held",
                    lockhog::LockState::Free => "free",
                    _ => "unknown",
                };
                (s.name, s.resource, state, s.holder)
            })
            .collect())
    }

    /// Removes stale resources nobody holds: (removed, kept).
    fn cleanup(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let locker = self.inner.clone();
        let report = block_on(py, async move { locker.cleanup().await })?.map_err(to_py)?;
        Ok((report.removed, report.kept))
    }
}

/// The URL a locker without one connects to when `LOCKHOG_URL` is unset.
#[pyfunction]
pub(crate) fn default_url() -> String {
    lockhog::default_url()
}
