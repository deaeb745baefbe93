//! lockhog's errors as the exceptions of `lockhog._errors` (defined in Python, so that
//! `InvalidName` can be both a `LockhogError` and a `ValueError`).

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The Python exception for `err`; its message is the Rust error's, which never holds a
/// password.
pub(crate) fn to_py(err: lockhog::Error) -> PyErr {
    Python::attach(|py| build(py, &err).unwrap_or_else(|e| e))
}

fn build(py: Python<'_>, err: &lockhog::Error) -> PyResult<PyErr> {
    use lockhog::Error as E;
    let attrs = PyDict::new(py);
    let class = match err {
        E::Contended { name } => {
            attrs.set_item("name", name)?;
            "Contended"
        }
        E::TimedOut {
            name,
            waited,
            attempts,
        } => {
            attrs.set_item("name", name)?;
            attrs.set_item("waited", waited.as_secs_f64())?;
            attrs.set_item("attempts", attempts)?;
            "TimedOut"
        }
        E::InvalidName { .. } => "InvalidName",
        E::InvalidUrl { url, .. } => {
            attrs.set_item("url", url)?;
            "InvalidUrl"
        }
        E::InvalidOption { .. } => "InvalidOption",
        E::Backend { backend, .. } => {
            attrs.set_item("backend", *backend)?;
            "BackendError"
        }
        _ => "LockhogError",
    };
    let exc = py
        .import("lockhog._errors")?
        .getattr(class)?
        .call((err.to_string(),), Some(&attrs))?;
    Ok(PyErr::from_value(exc))
}
