//! `steal_after` on etcd: a holder's key says since when it holds, and a waiter allowed to
//! steal deletes a head held longer than that, guarded by the head key's mod revision (so of
//! two waiters that try at once, one deletes it and the other finds it changed).
//!
//! The time is the holder's wall clock, in unix milliseconds after its owner value
//! (`<owner>/<ms>`), written when the key becomes the queue's head: by the join when the queue
//! was empty, or by the look that finds it first. A waiter's key carries no time, nor does a
//! key of etcd's own mutex or of an older lockhog: those are never stolen. etcd keeps no clock
//! of its own, so the machines' clocks must agree to well within `steal_after`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{Client, Compare, CompareOp, KeyValue, Txn, TxnOp};
use tokio::time::Instant;

use super::connect::call;
use crate::error::{Error, Result};

/// The value of a holder's key: its owner value, then `/` and the time now.
pub(super) fn holder_value(owner: &[u8]) -> Vec<u8> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut v = owner.to_vec();
    v.extend_from_slice(format!("/{ms}").as_bytes());
    v
}

/// Splits a key's value into the owner value and, for a holder, since when it holds.
pub(super) fn split(value: &[u8]) -> (&[u8], Option<SystemTime>) {
    // An owner value is `<random>/<pid>/<host>` (the host without `/`); a holder's has a
    // fourth part.
    if value.iter().filter(|&&b| b == b'/').count() != 3 {
        return (value, None);
    }
    let at = value.iter().rposition(|&b| b == b'/').unwrap_or(0);
    let since = std::str::from_utf8(&value[at + 1..])
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
    match since {
        Some(since) => (&value[..at], Some(since)),
        None => (value, None),
    }
}

/// The queue's head as a waiter saw it.
#[derive(Clone, Debug)]
pub(super) struct Head {
    key: Vec<u8>,
    mod_rev: i64,
    since: Option<SystemTime>,
}

impl Head {
    pub(super) fn of(kv: &KeyValue) -> Head {
        Head {
            key: kv.key().to_vec(),
            mod_rev: kv.mod_revision(),
            since: split(kv.value()).1,
        }
    }

    /// The head's key.
    pub(super) fn key(&self) -> &[u8] {
        &self.key
    }

    /// When a waiter with `steal_after` may take it over: `None` when it carries no time
    /// (a waiter about to say it holds, or a key lockhog did not write).
    pub(super) fn stealable_at(&self, steal_after: Duration) -> Option<Instant> {
        let at = self.since? + steal_after;
        let now = Instant::now();
        Some(match at.duration_since(SystemTime::now()) {
            Ok(left) => now + left,
            Err(_) => now,
        })
    }

    /// Deletes the head if it is unchanged since it was read. `true` when it was.
    pub(super) async fn steal(&self, client: &Client) -> Result<bool> {
        let txn = Txn::new()
            .when([Compare::mod_revision(
                self.key.clone(),
                CompareOp::Equal,
                self.mod_rev,
            )])
            .and_then([TxnOp::delete(self.key.clone(), None)]);
        let resp = call("taking over a lock held too long", || {
            let mut c = client.clone();
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
        .await?;
        if resp.succeeded() {
            tracing::warn!(key = %String::from_utf8_lossy(&self.key), "steal_after: took over a lock held too long");
        }
        Ok(resp.succeeded())
    }
}

/// steal_after on a foreign prefix: refused.
pub(super) fn refuse_foreign() -> Error {
    Error::InvalidOption {
        reason: "etcd: no steal_after on a foreign prefix: etcd's own mutex (etcdctl lock) \
                 keeps no time of acquisition, and its holder is never told that its key was \
                 deleted"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_value_carries_its_time() {
        let owner = b"00ff/42/host-a";
        let v = holder_value(owner);
        let (o, since) = split(&v);
        assert_eq!(o, owner);
        let age = SystemTime::now().duration_since(since.unwrap()).unwrap();
        assert!(age < Duration::from_secs(3600), "{age:?}");
        assert_eq!(split(owner), (&owner[..], None), "a waiter's value");
        assert_eq!(split(b""), (&b""[..], None), "etcd's own mutex");
        assert_eq!(split(b"a/1/h/x"), (&b"a/1/h/x"[..], None));
    }
}
