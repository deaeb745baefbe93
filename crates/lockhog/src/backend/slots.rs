//! Slot-based counting semaphores over any backend's ordinary locks.
//!
//! A semaphore `name` with `N` permits is the `N` locks `name#permit-0` … `name#permit-{N-1}`
//! of the same namespace: taking a permit is taking the first free slot lock, so a permit
//! has everything the backend's lock has (crash release, lease renewal, lost notice, a
//! fencing token per slot), and at most `N` callers hold one at once because each slot is
//! exclusive. The count `N` itself is kept in the store by
//! [`Backend::record_permits`], so that a caller asking for a
//! different count is refused instead of using slots the others do not look at.
//!
//! Also here: the [`Permit`] a permit acquire returns.

use super::{AcquireContext, Acquired, Backend, ErasedHeld};
use crate::error::{Error, Result};
use crate::name::{LockKey, LockName, MAX_NAME_BYTES};

/// What a successful permit acquire returns: the acquisition, and the backend's own name for
/// the permit taken (a slot's lock file or key), printed by `run` and `hold`.
#[derive(Debug)]
pub struct Permit<H> {
    /// The acquisition; its token is strictly greater than every earlier holder's of the
    /// same permit (slot).
    pub acquired: Acquired<H>,
    /// The backend's name for the permit.
    pub resource: String,
}

/// The most permits a semaphore may have: slot designs try each slot in turn.
pub const MAX_PERMITS: u32 = 1024;

/// What follows a semaphore's name in its slots' names (then the slot number).
pub const SLOT_SUFFIX: &str = "#permit-";

/// The longest semaphore name: room is left for the slot suffix and number.
pub const MAX_SEMAPHORE_NAME_BYTES: usize = MAX_NAME_BYTES - SLOT_SUFFIX.len() - 4;

/// The error of a backend without semaphores.
pub fn unsupported(scheme: &str) -> Error {
    Error::InvalidOption {
        reason: format!("the {scheme} backend has no semaphores"),
    }
}

/// The error for a semaphore whose recorded count is not the one asked for.
pub fn count_mismatch(key: &LockKey, recorded: u32, asked: u32) -> Error {
    Error::InvalidOption {
        reason: format!(
            "semaphore {:?} has {recorded} permits on this store, not {asked}: every user of \
             a semaphore must ask for the same count (remove the semaphore to change it)",
            key.name().as_str()
        ),
    }
}

/// Checks a permit count and a semaphore name before any I/O.
///
/// # Errors
///
/// [`Error::InvalidOption`] for 0 or more than [`MAX_PERMITS`] permits; [`Error::InvalidName`]
/// for a name with no room left for the slot suffix.
pub(crate) fn validate(name: &LockName, permits: u32) -> Result<()> {
    if permits == 0 || permits > MAX_PERMITS {
        return Err(Error::InvalidOption {
            reason: format!("a semaphore has 1 to {MAX_PERMITS} permits, not {permits}"),
        });
    }
    if name.as_str().len() > MAX_SEMAPHORE_NAME_BYTES {
        return Err(Error::InvalidName {
            reason: format!(
                "a semaphore name is at most {MAX_SEMAPHORE_NAME_BYTES} bytes, this one has {}",
                name.as_str().len()
            ),
        });
    }
    Ok(())
}

/// The lock of slot `slot` of the semaphore `key`.
pub fn slot_key(key: &LockKey, slot: u32) -> LockKey {
    let name = format!("{}{SLOT_SUFFIX}{slot}", key.name().as_str());
    // validate() left room for the suffix, so the name is valid.
    let name = LockName::new(name).expect("a slot name fits");
    LockKey::new(key.namespace().to_string(), name)
}

/// One pass over the slots `0..permits`: the first one acquired, or `Ok(None)` when every
/// slot is held. The count must have been recorded first.
///
/// # Errors
///
/// Those of [`Backend::try_acquire`].
pub async fn try_slots<B: Backend + ?Sized>(
    backend: &B,
    key: &LockKey,
    permits: u32,
    ctx: &AcquireContext,
) -> Result<Option<Permit<B::Held>>> {
    for slot in 0..permits {
        let slot_key = slot_key(key, slot);
        if let Some(acquired) = backend.try_acquire(&slot_key, ctx).await? {
            return Ok(Some(Permit {
                acquired,
                resource: backend.resource(&slot_key),
            }));
        }
    }
    Ok(None)
}

pub(super) fn erase_permit<H: Send + Sync + 'static>(
    p: Option<Permit<H>>,
) -> Option<Permit<ErasedHeld>> {
    p.map(|p| Permit {
        acquired: Acquired {
            held: Box::new(p.acquired.held) as ErasedHeld,
            token: p.acquired.token,
        },
        resource: p.resource,
    })
}
