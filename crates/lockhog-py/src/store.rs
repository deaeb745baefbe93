//! `NativeStore`: lockhog's Redis result store, for `lockhog.compute_once`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use lockhog::compute_once::{RedisStore, ResultStore};

use crate::errors::to_py;
use crate::wait::{block_on, seconds};

/// Computed values in Redis, where Rust's `lockhog::compute_once` keeps them.
#[pyclass(module = "lockhog._lockhog", frozen)]
pub struct NativeStore {
    inner: RedisStore,
}

fn name(key: &str) -> PyResult<lockhog::LockName> {
    lockhog::LockName::new(key).map_err(to_py)
}

#[pymethods]
impl NativeStore {
    /// Connects to a `redis://` or `rediss://` URL.
    #[staticmethod]
    fn connect(py: Python<'_>, url: String) -> PyResult<Self> {
        let inner = block_on(py, async move { RedisStore::connect(&url).await })?;
        Ok(NativeStore {
            inner: inner.map_err(to_py)?,
        })
    }

    /// The value stored under `key` in `namespace`, or None.
    fn get<'py>(
        &self,
        py: Python<'py>,
        namespace: String,
        key: &str,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let (store, key) = (self.inner.clone(), name(key)?);
        let got = block_on(py, async move { store.get(&namespace, &key).await })?;
        Ok(got.map_err(to_py)?.map(|v| PyBytes::new(py, &v)))
    }

    /// Stores `value` under `key` in `namespace` for `ttl` seconds.
    fn put(
        &self,
        py: Python<'_>,
        namespace: String,
        key: &str,
        value: Vec<u8>,
        ttl: f64,
    ) -> PyResult<()> {
        let (store, key) = (self.inner.clone(), name(key)?);
        let ttl = seconds(ttl, "ttl").map_err(to_py)?;
        let put = block_on(
            py,
            async move { store.put(&namespace, &key, &value, ttl).await },
        )?;
        put.map_err(to_py)
    }
}
