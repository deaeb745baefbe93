//! A semaphore's permit count on the file backend: kept as the counter of one more lock file,
//! `<name>#permit-count.lock`, beside the slots' lock files (see [`crate::backend::slots`]).
//!
//! The count is written once, by the first user, under that file's lock, and only into an
//! empty file: the file then holds a counter like any lock file (twenty digits and a
//! newline), so nothing here writes what lockhog would not write anyway. Later users read it;
//! a read that finds the file empty or half-written takes the lock and looks again. `cleanup`
//! treats the file as the unheld lock file it is and removes it, forgetting the count: the
//! next user records its own. So do not change a semaphore's count, or run `cleanup`, while
//! it is in use.

use std::io;
use std::time::Duration;

use super::dir::Moved;
use super::{fencing, FileBackend, MOVED_RETRIES};
use crate::backend::slots::count_mismatch;
use crate::error::{Error, Result};
use crate::name::{LockKey, LockName};

/// The count file's lock name, after the semaphore's name: never a slot's (`#permit-<n>`).
const COUNT_SUFFIX: &str = "#permit-count";

/// Longest pause between attempts at the count file's lock, which its holders keep for one
/// read and one write.
const MAX_PAUSE: Duration = Duration::from_millis(20);

impl FileBackend {
    /// Records `permits` for `key`, or checks it against the recorded count.
    pub(super) async fn record_permits_in_file(&self, key: &LockKey, permits: u32) -> Result<()> {
        let name = LockName::new(format!("{}{COUNT_SUFFIX}", key.name().as_str()))?;
        let count_key = LockKey::new(key.namespace().to_string(), name);
        let mut pause = Duration::from_millis(1);
        let mut moved = 0;
        loop {
            let tree = self.tree();
            let target = self.target(&tree, &count_key)?;
            let path = target.path();
            // The fast path: the count is there already, read without a lock.
            if let Ok((file, _)) = target.dir.open_file(&target.name, false) {
                if let Ok(Some(recorded)) = fencing::read(&file) {
                    return compare(key, recorded, permits);
                }
            }
            match self.try_lock_target(&target, true, None, false) {
                Ok(Some((held, _))) => {
                    let io_error =
                        |e: io::Error| self.io_error("cannot record the count in", &path, e);
                    return match fencing::read(held.file()).map_err(io_error)? {
                        Some(recorded) => compare(key, recorded, permits),
                        None => fencing::write(held.file(), permits.into()).map_err(io_error),
                    };
                }
                Ok(None) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) if Moved::is(&e) && moved < MOVED_RETRIES => {
                    moved += 1;
                    self.refresh(&tree)?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn compare(key: &LockKey, recorded: u64, permits: u32) -> Result<()> {
    if recorded == u64::from(permits) {
        return Ok(());
    }
    Err(match u32::try_from(recorded) {
        Ok(recorded) => count_mismatch(key, recorded, permits),
        Err(_) => Error::InvalidOption {
            reason: format!(
                "semaphore {:?} has an unusable permit count",
                key.name().as_str()
            ),
        },
    })
}
