//! Waking waiters of this process on a release. memcached cannot notify, so waiters poll; but
//! a waiter in the same process as the holder (another task, another locker) need not wait
//! for its next poll: every release made by this process wakes the waiters of this process on
//! that item of that server at once. Waiters in other processes keep polling.
//!
//! A waiter registers its interest before each attempt and arms its notification before
//! sending it, so a release that lands between a failed attempt and the wait is never missed.
//! A release wakes one waiter, not all: one item can go to one holder, and a herd of failed
//! `add`s would only slow the server (the others wake at their next poll, or at the next
//! release).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The waiters of this process per (server, item), and the notification they wait on.
type Table = HashMap<(String, String), (Arc<Notify>, usize)>;

static WAITERS: LazyLock<Mutex<Table>> = LazyLock::new(Mutex::default);

fn table() -> MutexGuard<'static, Table> {
    WAITERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One waiter's interest in one item; dropping it withdraws the interest.
pub(super) struct Interest {
    key: (String, String),
    notify: Arc<Notify>,
}

impl Interest {
    pub(super) fn new(addr: &str, item: &str) -> Interest {
        let key = (addr.to_string(), item.to_string());
        let mut table = table();
        let (notify, count) = table
            .entry(key.clone())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        *count += 1;
        let notify = notify.clone();
        Interest { key, notify }
    }

    /// What a release notifies.
    pub(super) fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut table = table();
        if let Some((_, count)) = table.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                table.remove(&self.key);
            }
        }
    }
}

/// Wakes a waiter of this process on `item` of `addr`: its holder here just released it.
pub(super) fn released(addr: &str, item: &str) {
    let table = table();
    if table.is_empty() {
        return;
    }
    if let Some((notify, _)) = table.get(&(addr.to_string(), item.to_string())) {
        notify.notify_one();
    }
}
