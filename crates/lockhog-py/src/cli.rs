//! `_cli`: the `lockhog` command run inside the Python process, for `python -m lockhog`.

use std::ffi::OsString;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Runs the `lockhog` command on `argv` (the program's name first) with the GIL released,
/// and returns its exit status. Only on the main thread: `run` ties its command's life to the
/// thread that started it, and the command takes over SIGINT and SIGTERM.
#[pyfunction]
pub(crate) fn _cli(py: Python<'_>, argv: Vec<OsString>) -> PyResult<u8> {
    // SAFETY: getpid and gettid have no preconditions.
    let main_thread = unsafe { libc::getpid() == libc::gettid() };
    if !main_thread {
        return Err(PyRuntimeError::new_err(
            "the lockhog command runs only on the main thread",
        ));
    }
    Ok(py.detach(move || lockhog_cli::main_from(argv)))
}
