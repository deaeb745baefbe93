//! `max_hold`: a lock given back after a set time even while its holder lives, by a timer of
//! the library's own (so it works on every backend), which tells the guard through `lost()`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::backend::{DynBackend, ErasedHeld, LostSender};

/// Where a guard keeps its backend state: its own, or shared with a max_hold timer that may
/// take it first.
pub(crate) enum HeldSlot {
    Owned(Option<ErasedHeld>),
    Timed {
        slot: Arc<Mutex<Option<ErasedHeld>>>,
        timer: JoinHandle<()>,
    },
}

impl HeldSlot {
    /// `held`, given back by a timer after `max_hold` when one is set. Needs a tokio runtime
    /// when it is.
    pub(crate) fn new(
        held: ErasedHeld,
        max_hold: Option<Duration>,
        backend: &Arc<dyn DynBackend>,
        lost: &LostSender,
        name: &str,
    ) -> HeldSlot {
        let Some(max_hold) = max_hold else {
            return HeldSlot::Owned(Some(held));
        };
        let slot = Arc::new(Mutex::new(Some(held)));
        let (backend, lost, name) = (backend.clone(), lost.clone(), name.to_string());
        let ours = slot.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(max_hold).await;
            let Some(held) = take(&ours) else { return };
            // Told first, so the holder learns before anyone else can take the lock.
            lost.mark_lost(format!(
                "held for max_hold ({max_hold:?}): released by the library"
            ));
            tracing::warn!(%name, ?max_hold, "max_hold ran out: releasing");
            // A task of its own: aborting the timer (the guard dropped meanwhile) must not cut
            // the release short.
            drop(tokio::spawn(async move {
                if let Err(e) = backend.release(held).await {
                    tracing::warn!(%name, error = %e, "releasing after max_hold failed");
                }
            }));
        });
        HeldSlot::Timed { slot, timer }
    }

    /// The state, unless it was given back already (by the timer).
    pub(crate) fn take(&mut self) -> Option<ErasedHeld> {
        match self {
            HeldSlot::Owned(held) => held.take(),
            HeldSlot::Timed { slot, timer } => {
                timer.abort();
                take(slot)
            }
        }
    }

    /// The state, to borrow a descriptor from: only an owned one (a timed lock is never handed
    /// to a child process, which would keep it past max_hold).
    pub(crate) fn as_owned(&self) -> Option<&ErasedHeld> {
        match self {
            HeldSlot::Owned(held) => held.as_ref(),
            HeldSlot::Timed { .. } => None,
        }
    }
}

fn take(slot: &Mutex<Option<ErasedHeld>>) -> Option<ErasedHeld> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}
