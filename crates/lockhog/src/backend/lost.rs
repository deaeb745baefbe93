//! [`LostSender`]: how a backend tells a guard that its lock was lost while the guard lived.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct LostState {
    reason: Mutex<Option<String>>,
    notify: Notify,
}

/// The backend's side of a guard's lost-lock notice.
#[derive(Clone, Debug, Default)]
pub struct LostSender(Arc<LostState>);

impl LostSender {
    /// Reports that the lock was lost while its guard lived (lease expired, connection died,
    /// key deleted). Only the first reason is kept.
    pub fn mark_lost(&self, reason: impl Into<String>) {
        {
            let mut slot = self.0.reason.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_some() {
                return;
            }
            *slot = Some(reason.into());
        }
        self.0.notify.notify_waiters();
    }

    /// The reason, once the lock was reported lost.
    pub(crate) fn reason(&self) -> Option<String> {
        self.0
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Completes, with the reason, when the lock is reported lost. Cancel safe.
    pub(crate) async fn lost(&self) -> String {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a report between the two is not missed.
            notified.as_mut().enable();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }
}
