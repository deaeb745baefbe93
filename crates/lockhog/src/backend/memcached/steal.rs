//! What `steal_after` needs on memcached: the acquisition time a lock item's value carries,
//! and the CAS unique of an item whose holder acquired longer ago than the limit (which the
//! acquire then replaces by compare-and-set, so that of two stealers only one wins).

use std::time::Duration;

use super::{io_err, now_micros, MemcachedBackend};
use crate::error::Result;

/// A lock item's value: the owner, when it was acquired (ms since the epoch, by the acquirer's
/// clock) and the name, as `<owner> <ms>\n<name>` for a named lock; a foreign key's value is
/// the owner alone.
pub(super) fn split_value(value: &[u8]) -> (&[u8], Option<u64>, Option<&[u8]>) {
    let (first, name) = match value.iter().position(|&b| b == b'\n') {
        Some(at) => (&value[..at], Some(&value[at + 1..])),
        None => (value, None),
    };
    let at = first.iter().rposition(|&b| b == b' ').and_then(|sp| {
        let ms = std::str::from_utf8(&first[sp + 1..]).ok()?.parse().ok()?;
        Some((sp, ms))
    });
    match at {
        Some((sp, ms)) => (&first[..sp], Some(ms), name),
        None => (first, None, name),
    }
}

impl MemcachedBackend {
    /// The CAS unique of `item` when it is a lockhog holder's that acquired longer ago than
    /// `steal_after` (by the acquirer's clock, written in the value); `None` otherwise.
    pub(super) async fn stale(
        &self,
        item: &str,
        steal_after: Option<Duration>,
    ) -> Result<Option<u64>> {
        let Some(limit) = steal_after else {
            return Ok(None);
        };
        let Some(held) = self
            .client
            .get(item)
            .await
            .map_err(|e| io_err("reading a lock", e))?
        else {
            return Ok(None); // released meanwhile: the next attempt adds it
        };
        let at = split_value(&held.value).1;
        let stale =
            at.is_some_and(|at| at.saturating_add(limit.as_millis() as u64) <= now_micros() / 1000);
        Ok(stale.then_some(held.cas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_owner_acquisition_time_and_name() {
        assert_eq!(
            split_value(b"ab/1/h 1700000000000\nname\nwith newline"),
            (
                &b"ab/1/h"[..],
                Some(1_700_000_000_000),
                Some(&b"name\nwith newline"[..])
            )
        );
        // A foreign key's value, and a value without a time (never judged stale).
        assert_eq!(split_value(b"ab/1/h"), (&b"ab/1/h"[..], None, None));
        assert_eq!(
            split_value(b"ab/1/h\nname"),
            (&b"ab/1/h"[..], None, Some(&b"name"[..]))
        );
    }
}
