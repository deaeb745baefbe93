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

/// How one acquire should go, checked before any I/O.
struct Request {
    name: Name,
    blocking: bool,
    timeout: Option<f64>,
    ttl: Option<f64>,
    shared: bool,
}

impl Request {
    fn build(self, locker: &lockhog::Locker) -> lockhog::Result<lockhog::LockRequest> {
        let mut req = self.name.request(locker);
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
    /// The request for `name`; a name of the wrong type fails here, bad values when awaited.
    fn request(
        &self,
        name: &Bound<'_, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
    ) -> PyResult<lockhog::Result<lockhog::LockRequest>> {
        let req = Request {
            name: Name::extract(name)?,
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
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Takes the lock `name` (blocking, the GIL released, Ctrl-C honoured).
    #[pyo3(signature = (name, blocking=true, timeout=None, ttl=None, shared=false))]
    fn acquire(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
    ) -> PyResult<NativeGuard> {
        let req = self.request(name, blocking, timeout, ttl, shared)?;
        block_on(py, acquire(req))?
    }

    /// Takes the lock `name` without blocking the event loop; cancelling the awaitable
    /// cancels the acquire.
    #[pyo3(signature = (name, blocking=true, timeout=None, ttl=None, shared=false))]
    fn acquire_async<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        ttl: Option<f64>,
        shared: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = self.request(name, blocking, timeout, ttl, shared)?;
        pyo3_async_runtimes::tokio::future_into_py(py, acquire(req))
    }

    /// The backend's resource for `name`.
    fn resource(&self, name: &str) -> PyResult<String> {
        self.inner.resource(name).map_err(to_py)
    }

    /// (name, resource, state, holder) for each of `names`, or every lock the backend can
    /// list when empty.
    #[allow(clippy::type_complexity)]
    fn status(
        &self,
        py: Python<'_>,
        names: Vec<String>,
    ) -> PyResult<Vec<(Option<String>, String, &'static str, Option<String>)>> {
        let locker = self.inner.clone();
        let found = block_on(py, async move {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            locker.status(&names).await
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
