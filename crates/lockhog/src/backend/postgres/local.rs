//! In-process arbitration: a session holds advisory locks re-entrantly, so the guards of one
//! process are kept apart by process-wide permits per (server and database, key), taken
//! before any round trip (see "Connections" in the [module docs](super)); and the names of
//! the locks this process holds, for `status`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use super::key::Advisory;
use crate::backend::named_semaphores::{NamedPermit, NamedSemaphores};
use crate::name::LockKey;

/// A (server and database, key) pair: the unit of in-process arbitration.
pub(super) type LocalKey = (Arc<str>, Advisory);
pub(super) type Permit = NamedPermit<LocalKey>;

/// Permits per key: an exclusive holder takes them all, a shared one takes one.
const SHARED_PERMITS: u32 = 1 << 20;

/// In-process arbitration, process-wide: every locker of this process on the same server and
/// database shares it.
pub(super) static LOCAL: LazyLock<NamedSemaphores<LocalKey>> =
    LazyLock::new(|| NamedSemaphores::with_capacity(SHARED_PERMITS));

/// The names of the locks this process holds, for `status`.
pub(super) static NAMES: LazyLock<Mutex<HashMap<LocalKey, HeldName>>> =
    LazyLock::new(Default::default);

pub(super) struct HeldName {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) since: SystemTime,
    holders: usize,
}

/// A held lock's entry in [`NAMES`]; removed with the last holder.
pub(super) struct NameTicket(LocalKey);

impl NameTicket {
    pub(super) fn new(id: &LocalKey, key: &LockKey) -> NameTicket {
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        names
            .entry(id.clone())
            .or_insert_with(|| HeldName {
                namespace: key.namespace().to_string(),
                name: key.name().to_string(),
                since: SystemTime::now(),
                holders: 0,
            })
            .holders += 1;
        NameTicket(id.clone())
    }
}

impl Drop for NameTicket {
    fn drop(&mut self) {
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = names.get_mut(&self.0) {
            e.holders -= 1;
            if e.holders == 0 {
                names.remove(&self.0);
            }
        }
    }
}

/// The permits an acquire takes of its key: one when shared, all of them when exclusive.
pub(super) fn permits(shared: bool) -> u32 {
    if shared {
        1
    } else {
        LOCAL.capacity()
    }
}
