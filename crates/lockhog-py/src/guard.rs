//! `NativeGuard`: a held lock, owned by a task of its own on the runtime.
//!
//! The task holds the Rust guard and watches it for a lost-lock notice until it is told to
//! release, or until the Python object is dropped (then it releases on its own). That keeps
//! release, the lost notice and drop from ever waiting on each other.

use std::sync::Mutex;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::sync::{oneshot, watch};

use crate::errors::to_py;
use crate::wait::{block_on, seconds};

type ReleaseReply = oneshot::Sender<lockhog::Result<bool>>;

/// A held lock (see `lockhog.Lock`).
#[pyclass(module = "lockhog._lockhog", frozen)]
pub struct NativeGuard {
    release: Mutex<Option<oneshot::Sender<ReleaseReply>>>,
    lost: watch::Receiver<Option<String>>,
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    resource: String,
    #[pyo3(get)]
    fencing_token: u64,
    #[pyo3(get)]
    attempts: u32,
    #[pyo3(get)]
    waited: f64,
}

impl NativeGuard {
    /// Hands `guard` to its task. Must run on the runtime (it spawns).
    pub(crate) fn start(guard: lockhog::LockGuard) -> NativeGuard {
        let (release_tx, release_rx) = oneshot::channel();
        let (lost_tx, lost_rx) = watch::channel(None);
        let out = NativeGuard {
            release: Mutex::new(Some(release_tx)),
            lost: lost_rx,
            name: guard.name().to_string(),
            resource: guard.resource().to_owned(),
            // Python locks by name only, and the library gives every named lock a token.
            fencing_token: guard
                .fencing_token()
                .expect("a lock taken by name has a fencing token"),
            attempts: guard.stats().attempts,
            waited: guard.stats().waited.as_secs_f64(),
        };
        tokio::spawn(hold(guard, release_rx, lost_tx));
        out
    }

    fn take_release(&self) -> PyResult<oneshot::Sender<ReleaseReply>> {
        self.release
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this lock was released already"))
    }
}

/// Holds `guard` until told to release (or until the sender is dropped), reporting a lost
/// lock on `lost` meanwhile.
async fn hold(
    guard: lockhog::LockGuard,
    mut release: oneshot::Receiver<ReleaseReply>,
    lost: watch::Sender<Option<String>>,
) {
    let reply = tokio::select! {
        reply = &mut release => reply.ok(),
        reason = guard.lost() => {
            lost.send_replace(Some(reason));
            release.await.ok()
        }
    };
    let out = guard.release().await;
    if let Some(reply) = reply {
        let _ = reply.send(out);
    }
}

async fn release(tx: oneshot::Sender<ReleaseReply>) -> PyResult<bool> {
    let (reply_tx, reply_rx) = oneshot::channel();
    // The task ends only after replying, or once its sender is gone, which is this one.
    tx.send(reply_tx)
        .map_err(|_| PyRuntimeError::new_err("the lock's task is gone"))?;
    let out = reply_rx
        .await
        .map_err(|_| PyRuntimeError::new_err("the lock's task is gone"))?;
    out.map_err(to_py)
}

async fn wait_lost(mut lost: watch::Receiver<Option<String>>) -> Option<String> {
    // An Err means the task ended: the lock was released, not lost.
    lost.wait_for(Option::is_some).await.ok()?.clone()
}

#[pymethods]
impl NativeGuard {
    /// The reason the backend gave when it reported the lock lost, else None.
    #[getter]
    fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Releases the lock; True when it was still ours.
    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        let tx = self.take_release()?;
        block_on(py, release(tx))?
    }

    /// Releases the lock without blocking the event loop.
    fn release_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let tx = self.take_release()?;
        pyo3_async_runtimes::tokio::future_into_py(py, release(tx))
    }

    /// Waits until the lock is reported lost (the reason), the timeout passes or the lock is
    /// released (None).
    #[pyo3(signature = (timeout=None))]
    fn wait_lost(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<String>> {
        let lost = self.lost.clone();
        match timeout {
            None => block_on(py, wait_lost(lost)),
            Some(t) => {
                let bound = seconds(t, "timeout").map_err(to_py)?;
                block_on(py, async move {
                    tokio::time::timeout(bound, wait_lost(lost))
                        .await
                        .ok()
                        .flatten()
                })
            }
        }
    }

    /// Waits without blocking the event loop until the lock is reported lost (the reason) or
    /// released (None).
    fn wait_lost_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let lost = self.lost.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(wait_lost(lost).await) })
    }
}
