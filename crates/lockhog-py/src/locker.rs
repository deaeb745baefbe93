//! `NativeLocker`: a connected `lockhog::Locker`, with blocking and asyncio entry points.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;
use crate::guard::NativeGuard;
use crate::names::Name;
use crate::wait::{block_on, seconds};

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
    blocking: bool,
    timeout: Option<f64>,
    ttl: Option<f64>,
    shared: bool,
}

impl Request {
    fn build(self, locker: &lockhog::Locker) -> lockhog::Result<lockhog::LockRequest> {
        let mut req = match &self.target {
            Target::Name(name) => name.request(locker),
            Target::Resource(res) => locker.lock_resource(res),
        };
        req = match (self.blocking, self.timeout) {
            (false, None) => req.no_wait(),
            (false, Some(_)) => {
                return Err(lockhog::Error::InvalidOption {
                    reason: "a timeout makes no sense for a non-blocking acquire".into(),
                })
            }
            (true, Some(t)) => req.wait_at_most(seconds(t, "timeout")?),
            (true, None) => req,
        };
        if let Some(ttl) = self.ttl {
            req = req.ttl(seconds(ttl, "ttl")?);
        }
        if self.shared {
            req = req.shared();
        }
        Ok(req)
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

async fn acquire(req: lockhog::Result<lockhog::LockRequest>) -> PyResult<NativeGuard> {
    let guard = req.map_err(to_py)?.acquire().await.map_err(to_py)?;
    Ok(NativeGuard::start(guard))
}

impl NativeLocker {
    /// The request for `name` (a resource when `resource`); a name of the wrong type fails
    /// here, bad values when awaited.
    fn request(
        &self,
        name: &Bound<'_, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
        resource: bool,
    ) -> PyResult<lockhog::Result<lockhog::LockRequest>> {
        let target = if resource {
            Target::Resource(name.extract()?)
        } else {
            Target::Name(Name::extract(name)?)
        };
        let req = Request {
            target,
            blocking,
            timeout,
            ttl,
            shared,
        };
        Ok(req.build(&self.inner))
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
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Takes the lock `name`, or the resource `name` when `resource` (blocking, the GIL
    /// released, Ctrl-C honoured).
    // The arguments are Python's keywords, one each.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, blocking=true, timeout=None, ttl=None, shared=false, resource=false))]
    fn acquire(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
        resource: bool,
    ) -> PyResult<NativeGuard> {
        let req = self.request(name, blocking, timeout, ttl, shared, resource)?;
        block_on(py, acquire(req))?
    }

    /// Takes the lock `name` (the resource `name` when `resource`) without blocking the event
    /// loop; cancelling the awaitable cancels the acquire.
    // The arguments are Python's keywords, one each.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, blocking=true, timeout=None, ttl=None, shared=false, resource=false))]
    fn acquire_async<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
        resource: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = self.request(name, blocking, timeout, ttl, shared, resource)?;
        pyo3_async_runtimes::tokio::future_into_py(py, acquire(req))
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
