//! `etcd://` URLs, the client, and calls with bounded time and retries across members.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use tokio::time::{sleep, timeout, Instant};

use crate::error::{Error, Result};
use crate::name::percent_decode;
use crate::url::BackendUrl;

pub(super) const SCHEME: &str = "etcd";

/// The client port when an endpoint has none.
pub const DEFAULT_PORT: u16 = 2379;

/// How long connecting to one member may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the first round trip of [`connect`] may take, retries included.
pub(super) const CHECK_BUDGET: Duration = Duration::from_secs(5);
/// How long one request may wait for its answer before it is tried again (on another member:
/// a member that is paused or cut off hangs rather than refuses).
pub(super) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one operation may take, retries included, before it is an error.
pub(super) const OP_BUDGET: Duration = Duration::from_secs(10);

/// What an `etcd://` URL says: the members' endpoints and the credentials.
pub(super) struct Target {
    pub endpoints: Vec<String>,
    pub user: Option<(String, String)>,
}

/// Parses `etcd://[user:password@]host[:port][,host[:port]…][/]`. Query options were taken
/// by the caller (namespace, ttl); any left is an error.
pub(super) fn parse(url: &BackendUrl) -> Result<Target> {
    url.finish()?;
    let usage = "expected etcd://[user:password@]host[:port][,host[:port]…]";
    let rest = url
        .body()
        .strip_prefix("//")
        .ok_or_else(|| url.invalid(usage))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (creds, hosts) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let user = match creds {
        None => None,
        Some(c) => {
            let (u, p) = c.split_once(':').ok_or_else(|| {
                url.invalid("credentials are user:password (etcd has no password-less users)")
            })?;
            let decode = |s: &str| {
                percent_decode(s).ok_or_else(|| url.invalid("bad percent-encoding in the user"))
            };
            Some((decode(u)?, decode(p)?))
        }
    };
    let mut endpoints = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            return Err(url.invalid(usage));
        }
        let with_port = match host.rsplit_once(':') {
            // An IPv6 literal without a port is `[::1]`; with one, `[::1]:2379`.
            Some((h, p)) if !h.is_empty() && !p.contains(']') => {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| url.invalid(&format!("bad port in {host:?}")))?;
                host.to_string()
            }
            _ => format!("{host}:{DEFAULT_PORT}"),
        };
        endpoints.push(format!("http://{with_port}"));
    }
    Ok(Target { endpoints, user })
}

/// A client over every endpoint (requests are balanced over the members, and tried again on
/// another when one fails), checked by one round trip within [`CHECK_BUDGET`], so an
/// unreachable cluster or refused credentials fail here.
pub(super) async fn connect(target: &Target, shown: &str) -> Result<Client> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true);
    if let Some((user, password)) = &target.user {
        options = options.with_user(user.clone(), password.clone());
    }
    let cannot = |e: etcd_client::Error| etcd_err(format_args!("cannot connect to {shown}"), e);
    // With credentials, connecting authenticates (one round trip); bound it.
    let client = match timeout(
        CHECK_BUDGET,
        Client::connect(&target.endpoints, Some(options)),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(cannot(e)),
        Err(_) => {
            return Err(Error::backend(
                SCHEME,
                format!("cannot connect to {shown}: no answer within {CHECK_BUDGET:?}"),
            ))
        }
    };
    let doing = format!("cannot connect to {shown}");
    call_within(CHECK_BUDGET, &doing, || {
        let mut c = client.clone();
        async move { c.get("lockhog/", None).await }
    })
    .await?;
    Ok(client)
}

/// An error of the etcd client as [`Error::Backend`], with what was being done. The client's
/// messages carry endpoints and server messages, never the password.
pub(super) fn etcd_err(doing: impl std::fmt::Display, e: etcd_client::Error) -> Error {
    Error::Backend {
        backend: SCHEME,
        message: format!("{doing}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// True for failures that another attempt (on another member, or after an election) may not
/// meet: no connection, a member that went away, no leader, a request that timed out.
pub(super) fn retryable(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => match s.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => true,
            Code::Unknown => {
                let m = s.message();
                m.contains("transport") || m.contains("connection") || m.contains("h2")
            }
            _ => false,
        },
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails for good, or [`OP_BUDGET`] has passed. Every operation
/// lockhog sends may be sent twice (puts are guarded by compares, deletes by the create
/// revision, revokes are idempotent), so a retry after a lost answer is safe.
pub(super) async fn call<T, F, Fut>(doing: &str, op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    call_within(OP_BUDGET, doing, op).await
}

/// [`call`] with its own budget.
pub(super) async fn call_within<T, F, Fut>(budget: Duration, doing: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + budget;
    let mut pause = Duration::from_millis(5);
    let mut last: Option<etcd_client::Error> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(match last {
                Some(e) => etcd_err(format_args!("{doing} (for {budget:?})"), e),
                None => Error::backend(SCHEME, format!("{doing}: no answer within {budget:?}")),
            });
        }
        match timeout(left.min(ATTEMPT_TIMEOUT), op()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if retryable(&e) => {
                tracing::debug!(error = %e, doing, "etcd request failed; trying again");
                last = Some(e);
                sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Ok(Err(e)) => return Err(etcd_err(doing, e)),
            Err(_) => tracing::debug!(doing, "etcd request not answered in time; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<Target> {
        parse(&BackendUrl::parse(url).unwrap())
    }

    #[test]
    fn endpoints_and_credentials() {
        let t = target("etcd://a:1,b,[::1]:3,[::1]").unwrap();
        assert_eq!(
            t.endpoints,
            [
                "http://a:1",
                "http://b:2379",
                "http://[::1]:3",
                "http://[::1]:2379"
            ]
        );
        assert!(t.user.is_none());
        let t = target("etcd://root:p%40ss@h:1/").unwrap();
        assert_eq!(t.user, Some(("root".into(), "p@ss".into())));
        for bad in [
            "etcd:h:1",
            "etcd://",
            "etcd://h:1,,h:2",
            "etcd://h:x",
            "etcd://h:0",
            "etcd://h:1/db",
            "etcd://user@h:1",
        ] {
            assert!(target(bad).is_err(), "{bad}");
        }
        let e = target("etcd://u:hunter2@h:1?bogus=1").err().unwrap();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
