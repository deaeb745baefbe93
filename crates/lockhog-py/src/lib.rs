//! `lockhog._lockhog`: the extension module under the `lockhog` Python package (python/lockhog
//! wraps it in the documented API).

use pyo3::prelude::*;

mod cli;
mod errors;
mod guard;
mod locker;
mod names;
mod store;
mod wait;

/// lockhog's Rust core; use the `lockhog` package, not this module.
#[pymodule]
fn _lockhog(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<locker::NativeLocker>()?;
    m.add_class::<guard::NativeGuard>()?;
    m.add_class::<store::NativeStore>()?;
    m.add_function(wrap_pyfunction!(names::hashed_name, m)?)?;
    m.add_function(wrap_pyfunction!(cli::_cli, m)?)?;
    m.add_function(wrap_pyfunction!(locker::default_url, m)?)?;
    Ok(())
}
