//! `redlock://` — the Redlock algorithm over independent Redis servers.
//!
//! # URL
//!
//! `redlock://[user:password@]h1:p1,h2:p2,h3:p3[/db][?wake=poll]`: an odd number of nodes (1, 3, 5, …;
//! an even or zero count is refused as [`Error::InvalidUrl`], since it tolerates no more
//! failures than the odd count below it and splits votes more often). The credentials and db
//! apply to every node. Keys, values and scripts are those of the single-node backend (see
//! [the parent module](super)), so the RESOURCE is the same Redis key on every node.
//!
//! # How it works
//!
//! An attempt sends the acquire script (`SET NX PX` with one owner token, then `INCR` of the
//! node's fencing counter) to every node at once, each with a short timeout. It succeeds when a
//! majority answered "acquired" and time is left: validity = ttl − elapsed − drift, with
//! drift = ttl/100 + 2 ms. The fencing token is then the largest of the majority's counters,
//! and a second round raises the counter of every node that still holds our lock to that
//! token; the lock is granted only when a majority confirmed the raise within the validity.
//! Otherwise the attempt undoes itself on every node (compare-and-delete) and counts as not
//! acquired; waiters retry after a jittered backoff, or at once when a release is published on
//! any node. Renewal extends the key on every node and keeps the lock while a majority
//! confirms; release deletes it on every node. `steal_after` is judged on each node by the
//! single-node script (the node's clock, the holder's `since` key there), so a takeover needs
//! a majority of nodes where the holder is old enough. Shared locks are refused.
//!
//! # When nodes are down
//!
//! With a minority of nodes down or unreachable everything keeps working (slower by the node
//! timeout when a node does not answer at all). When a majority of nodes cannot be asked, an
//! attempt fails with [`Error::Backend`], not [`Error::Contended`]: nobody can hold the lock
//! then, and waiting for "the holder" to release would hide an outage (the CLI exits 69, not
//! 1). Connecting fails the same way when a majority does not answer.
//!
//! # What it guarantees, and what it does not
//!
//! - **Mutual exclusion** holds while each lease is shorter than the time every node keeps a
//!   key (no node restarts without persistence and comes back within a ttl, which would let it
//!   grant our key again — restart such nodes only after the longest ttl), and while the
//!   clocks of the nodes and the client advance at about the same rate (within the drift).
//!   A clock that jumps (a manual change, a bad NTP step) can expire a key early on one node.
//! - A holder **paused** (GC, swap, SIGSTOP) for longer than its validity may act after its
//!   lock expired and was granted to someone else. No lock based on time can prevent that;
//!   the fencing token is the defence: the protected resource refuses a token below the
//!   largest it has seen.
//! - **Fencing tokens**: every grant's token is greater than that of every earlier grant that
//!   completed (its raise reached a majority), because any two majorities share a node, and on
//!   that node our counter was raised to our token before our key there could be released or
//!   expire. A node that lost its counter (restart without persistence) starts it again at its
//!   clock in microseconds, which is above earlier tokens unless its clock went back.

mod acquire;
mod quorum;
mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{join_all, select_all};
use tokio::time::{timeout, Instant};

use self::acquire::Attempt;
use self::quorum::{no_majority, node_timeout, on_all, quorum, release_all, Node};
use super::conn::Conn;
use super::wake::Wakeups;
use super::{
    capabilities, client, release_channel, resource, ttl_of, CONNECT_TIMEOUT, MAX_PUBSUB_WAIT,
};
use crate::backend::lease::Renewal;
use crate::backend::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockStatus};
use crate::error::{Error, Result};
use crate::name::LockKey;
use crate::url::BackendUrl;

/// The row of this backend in the backend registry.
pub(crate) const ROW: super::super::row::BackendRow =
    super::super::row::BackendRow::of::<RedlockBackend>(&["redlock"], Some("redis"), |url| {
        Ok(super::super::row::connecting(RedlockBackend::connect(url)?))
    })
    .port(6379);

const SCHEME: &str = "redlock";

/// The `redlock://` backend. See the [module docs](self).
pub struct RedlockBackend {
    nodes: Arc<[Node]>,
}

impl std::fmt::Debug for RedlockBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addrs: Vec<&str> = self.nodes.iter().map(|n| n.addr.as_str()).collect();
        f.debug_struct("RedlockBackend")
            .field("nodes", &addrs)
            .finish()
    }
}

/// A lock held on a majority of nodes.
pub struct RedlockHeld {
    nodes: Arc<[Node]>,
    key: Vec<u8>,
    since: Option<Vec<u8>>,
    channel: Vec<u8>,
    owner: Vec<u8>,
    renewal: Renewal,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for RedlockHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedlockHeld")
            .field("key", &String::from_utf8_lossy(&self.key))
            .finish_non_exhaustive()
    }
}

impl RedlockHeld {
    /// Deletes our key on every node that still has it with our owner value; one result per
    /// node.
    async fn release_everywhere(&self) -> Vec<Result<i64>> {
        let (key, owner, channel) = (&self.key, &self.owner, &self.channel);
        let since = self.since.as_deref();
        release_all(&self.nodes, key, since, owner, channel, CONNECT_TIMEOUT).await
    }
}

/// Parses `[user:password@]h1:p1,h2:p2[/db]` into one `redis://` URL per node.
fn node_urls(url: &BackendUrl) -> Result<Vec<(String, String)>> {
    let rest = url
        .authority_rest()
        .ok_or_else(|| url.invalid("expected redlock://host:port,host:port,host:port"))?;
    let (hosts, db) = match rest.split_once('/') {
        Some((h, db)) => (h, format!("/{db}")),
        None => (rest, String::new()),
    };
    let hosts: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
    if hosts.is_empty() || hosts.len().is_multiple_of(2) {
        return Err(url.invalid(&format!(
            "Redlock needs an odd number of nodes (1, 3, 5, …), not {}",
            hosts.len()
        )));
    }
    Ok(hosts
        .into_iter()
        .map(|h| (url.client_form("redis", &format!("{h}{db}")), h.to_string()))
        .collect())
}

impl RedlockBackend {
    /// Connects to every node of the `redlock://` URL; succeeds when a majority answers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a malformed URL or an even or zero node count;
    /// [`Error::Backend`] when a majority of nodes cannot be reached or refuse the credentials.
    ///
    /// Takes its options off `url` and returns the future that connects; the caller refuses the
    /// options left on `url` ([`BackendUrl::finish`]) before awaiting it.
    pub fn connect(
        url: &mut BackendUrl,
    ) -> Result<impl Future<Output = Result<Self>> + Send + 'static> {
        let pubsub = super::take_wake(url)?;
        let shown = url.redacted().to_string();
        let node_urls = node_urls(url)?;
        Ok(async move {
            let mut nodes = Vec::new();
            for (node_url, addr) in node_urls {
                let client = client(&node_url, None, &shown)?;
                // Lazy: a node that is down now is connected when it comes back.
                let conn = Conn::lazy(client.clone(), super::conn_config());
                nodes.push(Node {
                    conn,
                    wakeups: Wakeups::new(client, pubsub),
                    addr,
                });
            }
            let n = nodes.len();
            let pings = on_all(&nodes, CONNECT_TIMEOUT, |mut c| async move {
                redis::cmd("PING").query_async::<String>(&mut c).await
            })
            .await;
            let errors: Vec<&Error> = pings.iter().filter_map(|r| r.as_ref().err()).collect();
            if n - errors.len() < quorum(n) {
                return Err(no_majority(
                    &format!("cannot connect to {shown}"),
                    &errors,
                    n,
                ));
            }
            for e in &errors {
                tracing::warn!(error = %e, "a redlock node is unreachable; going on with the majority");
            }
            Ok(RedlockBackend {
                nodes: nodes.into(),
            })
        })
    }
}

impl Backend for RedlockBackend {
    type Held = RedlockHeld;

    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn resource(&self, key: &LockKey) -> String {
        resource(key)
    }

    fn parse_resource(res: &str) -> Result<String> {
        super::keys::parse_resource(res)
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<RedlockHeld>>> {
        match self.attempt(key, ctx).await? {
            Attempt::Acquired(a) => Ok(Some(a)),
            Attempt::Busy { .. } => Ok(None),
        }
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<RedlockHeld>>> {
        let channel = release_channel(key);
        let limit = node_timeout(ttl_of(ctx));
        // Subscribe on every node that answers in time; a release on any of them wakes us.
        let subs: Vec<_> = join_all(
            self.nodes
                .iter()
                .map(|n| timeout(limit, n.wakeups.subscribe(&channel))),
        )
        .await
        .into_iter()
        .filter_map(|s| s.ok())
        .collect();
        let live = subs.iter().any(|s| s.live());
        let mut attempt = 0u32;
        loop {
            let mut notified: Vec<_> = subs.iter().map(|s| Box::pin(s.notified())).collect();
            for n in &mut notified {
                n.as_mut().enable();
            }
            ctx.note_attempt();
            attempt = attempt.saturating_add(1);
            let (pttl, split) = match self.attempt(key, ctx).await? {
                Attempt::Acquired(a) => return Ok(Some(a)),
                Attempt::Busy { pttl, split } => (pttl, split),
            };
            let now = Instant::now();
            let backoff = ctx.options.retry.delay(attempt);
            let pause = if split {
                // Split votes: step back by a random share so the contenders do not collide
                // again; a release message does not cut this short.
                notified.clear();
                backoff
            } else if live {
                let cap = MAX_PUBSUB_WAIT;
                if pttl >= 0 {
                    cap.min(Duration::from_millis(pttl as u64 + 1))
                } else {
                    cap
                }
            } else if pttl >= 0 {
                backoff.min(Duration::from_millis(pttl as u64 + 1))
            } else {
                backoff
            };
            let mut wake = now + pause;
            if let Some(deadline) = deadline {
                if now >= deadline {
                    return Ok(None);
                }
                wake = wake.min(deadline);
            }
            if notified.is_empty() {
                tokio::time::sleep_until(wake).await;
            } else {
                tokio::select! {
                    _ = select_all(notified) => {}
                    _ = tokio::time::sleep_until(wake) => {}
                }
            }
        }
    }

    async fn release(&self, mut held: RedlockHeld) -> Result<bool> {
        held.renewal.stop();
        let n = held.nodes.len();
        let results = held.release_everywhere().await;
        let deleted = results.iter().filter(|r| matches!(r, Ok(1))).count();
        let errors: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        if deleted < quorum(n) && n - errors.len() < quorum(n) {
            return Err(no_majority("releasing a lock", &errors, n));
        }
        Ok(deleted >= quorum(n))
    }

    fn release_on_drop(&self, mut held: RedlockHeld) {
        held.renewal.stop();
        let runtime = held.runtime.clone();
        runtime.spawn(async move {
            held.release_everywhere().await;
        });
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        status::status(self, namespace, keys).await
    }

    async fn cleanup(&self, namespace: &str) -> Result<CleanupReport> {
        let held = self.status(namespace, &[]).await?.len() as u64;
        Ok(CleanupReport::new(0, held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_counts() {
        let urls = |u: &str| node_urls(&BackendUrl::parse(u).unwrap());
        assert_eq!(urls("redlock://a:1,b:2,c:3").unwrap().len(), 3);
        assert_eq!(urls("redlock://a:1").unwrap().len(), 1);
        for bad in [
            "redlock://a:1,b:2",
            "redlock://",
            "redlock:x",
            "redlock://a,b,c,d",
        ] {
            assert!(matches!(urls(bad), Err(Error::InvalidUrl { .. })), "{bad}");
        }
        let with_auth = urls("redlock://u:pw@a:1,b:2,c:3/2").unwrap();
        assert_eq!(with_auth[1].0, "redis://u:pw@b:2/2");
        // A password with `@`, `/`, `#` and `?` is handed to each node's client encoded.
        let odd = urls("redlock://u:p@w#x/y?z@a:1,b:2,c:3/2").unwrap();
        assert_eq!(odd[2].0, "redis://u:p%40w%23x%2Fy%3Fz@c:3/2");
        assert_eq!(with_auth[1].1, "b:2");
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(5), 3);
    }
}
