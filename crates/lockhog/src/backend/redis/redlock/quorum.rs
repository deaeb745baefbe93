//! The node set and its majority: running a command or script on every node at once, each
//! within a short timeout; the majority, the clock-drift allowance and the error when a
//! majority cannot be asked; and the lease renewed on a majority (see "How it works" in the
//! [module docs](super)).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use redis::FromRedisValue;
use tokio::time::{timeout, Instant};

use super::SCHEME;
use crate::backend::lease::Lease;
use crate::backend::redis::call::Call;
use crate::backend::redis::conn::Conn;
use crate::backend::redis::wake::Wakeups;
use crate::backend::redis::{backend_err, scripts};
use crate::error::{Error, Result};

pub(super) struct Node {
    pub(super) conn: Conn,
    pub(super) wakeups: Wakeups,
    /// `host:port`, for messages.
    pub(super) addr: String,
}

pub(super) fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// The allowance for clocks advancing at different rates, per the Redlock description.
pub(crate) fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

/// How long one node may take to answer one command: short against the ttl, so that a node
/// that does not answer cannot eat the validity.
pub(super) fn node_timeout(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Runs `op` on every node at once, each bounded by `limit`; one result per node.
pub(super) async fn on_all<T, F, Fut>(nodes: &[Node], limit: Duration, op: F) -> Vec<Result<T>>
where
    F: Fn(Conn) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    join_all(nodes.iter().map(|n| {
        let fut = op(n.conn.clone());
        async move {
            match timeout(limit, fut).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(backend_err(format_args!("node {}", n.addr), e)),
                Err(_) => Err(Error::backend(
                    SCHEME,
                    format!("node {} did not answer within {limit:?}", n.addr),
                )),
            }
        }
    }))
    .await
}

/// Runs one script invocation (its keys and arguments) on every node at once, each bounded by
/// `limit`; one result per node.
pub(super) async fn script_on_all<T: FromRedisValue>(
    nodes: &[Node],
    limit: Duration,
    script: &Call,
) -> Vec<Result<T>> {
    on_all(
        nodes,
        limit,
        |mut c| async move { script.invoke(&mut c).await },
    )
    .await
}

/// A majority could not be asked: the error that says which nodes failed and why.
pub(super) fn no_majority(what: &str, errors: &[&Error], n: usize) -> Error {
    let detail: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    Error::backend(
        SCHEME,
        format!(
            "{what}: {} of {n} nodes unreachable, a majority ({}) is needed: {}",
            errors.len(),
            quorum(n),
            detail.join("; ")
        ),
    )
}

/// Deletes `key` (and its acquisition time `since`) on every node where it holds `owner`,
/// publishing on `channel`; one result per node.
pub(super) async fn release_all(
    nodes: &[Node],
    key: &[u8],
    since: Option<&[u8]>,
    owner: &[u8],
    channel: &[u8],
    limit: Duration,
) -> Vec<Result<i64>> {
    script_on_all(nodes, limit, &scripts::release(key, since, owner, channel)).await
}

pub(super) struct QuorumLease {
    pub(super) nodes: Arc<[Node]>,
    pub(super) key: Vec<u8>,
    /// The lock's acquisition time on each node, for a named lock.
    pub(super) since: Option<Vec<u8>>,
    pub(super) owner: Vec<u8>,
    pub(super) ttl: Duration,
}

impl Lease for QuorumLease {
    async fn renew(&self) -> Result<Option<Instant>> {
        let started = Instant::now();
        let results: Vec<Result<i64>> = script_on_all(
            &self.nodes,
            node_timeout(self.ttl),
            &scripts::extend(&self.key, self.since.as_deref(), &self.owner, self.ttl),
        )
        .await;
        let n = self.nodes.len();
        let extended = results.iter().filter(|r| matches!(r, Ok(1))).count();
        let errors: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        let until = started + self.ttl.saturating_sub(drift(self.ttl));
        if extended >= quorum(n) && until > Instant::now() {
            Ok(Some(until))
        } else if extended + errors.len() >= quorum(n) {
            Err(no_majority("renewing a lease", &errors, n))
        } else {
            Ok(None)
        }
    }
}
