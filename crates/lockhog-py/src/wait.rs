//! Waiting on Rust futures from Python threads: the GIL released, Ctrl-C honoured.

use std::future::Future;
use std::time::Duration;

use pyo3::panic::PanicException;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How often a blocked thread takes the GIL back to run Python's signal handlers: short enough
/// that Ctrl-C feels immediate, long enough to cost nothing measurable.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// The tokio runtime every lockhog future runs on (the one pyo3-async-runtimes bridges asyncio
/// to, so blocking and async callers share connections and background tasks).
pub(crate) fn runtime() -> &'static Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `fut` on the runtime and waits for it with the GIL released. Between slices of
/// [`SIGNAL_CHECK`] the thread runs Python's signal handlers; when one raises (Ctrl-C's
/// `KeyboardInterrupt`) the future is cancelled and the exception returned. An output that
/// arrived meanwhile is dropped, so a lock acquired just then is released by its guard.
pub(crate) fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime();
    let mut task = rt.spawn(fut);
    loop {
        let done = py
            .detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut task).await }));
        match done {
            Ok(joined) => return joined.map_err(|e| PanicException::new_err(e.to_string())),
            Err(_slice_over) => {
                if let Err(interrupt) = py.check_signals() {
                    task.abort();
                    // Wait for the cancellation to land, so nothing this call took outlives it.
                    py.detach(|| drop(rt.block_on(task)));
                    return Err(interrupt);
                }
            }
        }
    }
}

/// A duration in seconds from Python: finite and not negative.
pub(crate) fn seconds(value: f64, what: &str) -> lockhog::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| lockhog::Error::InvalidOption {
        reason: format!("{what} must be a finite number of seconds, at least 0, not {value}"),
    })
}
