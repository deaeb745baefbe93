//! etcd leases: grant, keepalive (through [`crate::backend::lease`]'s renewal task) and revoke.
//!
//! etcd's keepalive is a bidirectional stream: each request extends the lease to its full ttl
//! and is answered with the ttl, or 0 once the lease has expired or was revoked. One stream
//! per lease is kept open and reopened (on any member) after an error; the schedule (every
//! ttl/3, sooner after a failure, lost once the lease's validity ran out with no renewal) is
//! the shared one of [`Renewal`](crate::backend::lease::Renewal), so etcd behaves like the
//! other lease backends. etcd-client's own `LeaseKeeper` only sends; it has no schedule and no
//! notion of "lost", which is why it is wrapped rather than used alone.

use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::Mutex;
use tokio::time::{timeout, Instant};

use super::connect::{call, etcd_err};
use crate::backend::lease::Lease;
use crate::error::Result;

/// etcd counts lease ttls in whole seconds: `ttl` rounded up, at least 1. (The server may
/// raise it further to its minimum, 1.5 election timeouts: 2 s with etcd's defaults.)
pub(super) fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    secs.clamp(1, i64::MAX as u64) as i64
}

/// A granted lease: its id and the ttl the server granted.
#[derive(Clone, Copy, Debug)]
pub(super) struct Granted {
    pub id: i64,
    pub ttl: Duration,
}

/// Grants a lease of `ttl` (see [`ttl_secs`]).
pub(super) async fn grant(client: &Client, ttl: Duration) -> Result<Granted> {
    let secs = ttl_secs(ttl);
    let resp = call("granting a lease", || {
        let mut c = client.clone();
        async move { c.lease_grant(secs, None).await }
    })
    .await?;
    Ok(Granted {
        id: resp.id(),
        ttl: Duration::from_secs(resp.ttl().max(1) as u64),
    })
}

/// Revokes the lease, which deletes every key attached to it (a session's: only its own
/// locker's). A lease already gone is not an error.
pub(super) async fn revoke(client: &Client, id: i64) -> Result<()> {
    let outcome = call("revoking a lease", || {
        let mut c = client.clone();
        async move { c.lease_revoke(id).await }
    })
    .await;
    match outcome {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("lease not found") => Ok(()),
        Err(e) => Err(e),
    }
}

/// One lease kept alive over one keepalive stream. See the [module docs](self).
pub(super) struct KeepAlive {
    client: Client,
    lease: Granted,
    stream: Mutex<Option<(LeaseKeeper, LeaseKeepAliveStream)>>,
}

impl KeepAlive {
    pub(super) fn new(client: Client, lease: Granted) -> Self {
        KeepAlive {
            client,
            lease,
            stream: Mutex::new(None),
        }
    }

    /// How long one renewal may take before it is tried again on a new stream (possibly on
    /// another member): a quarter of the ttl, so a hung member does not cost the lease.
    fn attempt_timeout(&self) -> Duration {
        (self.lease.ttl / 4).max(Duration::from_millis(250))
    }
}

impl Lease for KeepAlive {
    async fn renew(&self) -> Result<Option<Instant>> {
        let started = Instant::now();
        let mut slot = self.stream.lock().await;
        if let Some((keeper, stream)) = slot.as_mut() {
            let answer = timeout(self.attempt_timeout(), async {
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await;
            match answer {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => {
                    return Ok(Some(started + Duration::from_secs(resp.ttl() as u64)));
                }
                Ok(Ok(Some(_))) => return Ok(None),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => *slot = None,
            }
        }
        // Opening a stream sends the first keepalive and reads its answer.
        let mut client = self.client.clone();
        match timeout(
            self.attempt_timeout(),
            client.lease_keep_alive(self.lease.id),
        )
        .await
        {
            Ok(Ok(pair)) => {
                *slot = Some(pair);
                Ok(Some(started + self.lease.ttl))
            }
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(m))) if m.contains("not found") => {
                Ok(None)
            }
            Ok(Err(e)) => Err(etcd_err("renewing a lease", e)),
            Err(_) => Err(crate::Error::backend(
                super::connect::SCHEME,
                "renewing a lease: no answer in time",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_seconds() {
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::from_secs(1)), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(30)), 30);
    }
}
