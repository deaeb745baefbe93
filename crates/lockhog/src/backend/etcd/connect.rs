//! `etcd://` and `etcds://` URLs, the client, and calls with bounded time and retries across
//! members.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use tokio::time::{sleep, timeout, Instant};

use crate::backend::with_causes;
use crate::error::{Error, Result};
use crate::name::percent_decode;
use crate::secret::Secrets;
use crate::url::BackendUrl;

/// The backend's name in errors, for both schemes (as `redis` is for `rediss://`).
pub(super) const SCHEME: &str = "etcd";
/// The scheme of etcd's client API over TLS.
pub(super) const TLS_SCHEME: &str = "etcds";

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

/// What an `etcd://` or `etcds://` URL says: the members' endpoints, the credentials and, for
/// `etcds://`, the TLS files.
pub(super) struct Target {
    pub endpoints: Vec<String>,
    pub user: Option<(String, String)>,
    /// `Some` for `etcds://`.
    pub tls: Option<TlsFiles>,
    /// The URL's passwords, scrubbed out of the client's errors.
    pub secrets: Secrets,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand: `user` holds the password.
        f.debug_struct("Target")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user.as_ref().map(|(u, _)| (u, "***")))
            .field("tls", &self.tls)
            .finish()
    }
}

/// The PEM files named by an `etcds://` URL's options (paths only: [`TlsFiles::load`] reads
/// them).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TlsFiles {
    /// `ca=`: the CA certificate(s) that verify the members; `None`: the system's roots.
    pub ca: Option<String>,
    /// `cert=` and `key=`: our client certificate and its private key, for members started
    /// with `--client-cert-auth`.
    pub identity: Option<(String, String)>,
}

impl TlsFiles {
    /// Reads the files into the client's TLS settings. The contents are checked only for
    /// looking like PEM here (so a wrong path fails as a clear usage error); the TLS stack
    /// parses them when connecting.
    fn load(&self, shown: &str) -> Result<TlsOptions> {
        let read = |option: &str, path: &str, what: &str, marker: &str| -> Result<Vec<u8>> {
            let invalid = |reason: String| Error::InvalidUrl {
                url: shown.to_string(),
                reason,
            };
            let pem = std::fs::read(path)
                .map_err(|e| invalid(format!("cannot read the `{option}` file {path}: {e}")))?;
            if !pem.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                return Err(invalid(format!(
                    "the `{option}` file {path} holds no PEM {what}"
                )));
            }
            Ok(pem)
        };
        let cert_marker = "-----BEGIN CERTIFICATE-----";
        let tls = match &self.ca {
            Some(path) => TlsOptions::new().ca_certificate(Certificate::from_pem(read(
                "ca",
                path,
                "certificate",
                cert_marker,
            )?)),
            None => TlsOptions::new().with_native_roots(),
        };
        Ok(match &self.identity {
            Some((cert, key)) => tls.identity(Identity::from_pem(
                read("cert", cert, "certificate", cert_marker)?,
                // PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys all end their header so.
                read("key", key, "private key", "PRIVATE KEY-----")?,
            )),
            None => tls,
        })
    }
}

/// Parses `etcd://[user:password@]host[:port][,host[:port]…][/]` and its TLS form
/// `etcds://…[?ca=PATH][&cert=PATH&key=PATH]`, taking the TLS options. The other options were
/// taken by the caller (namespace, ttl); any left is an error.
pub(super) fn parse(url: &mut BackendUrl) -> Result<Target> {
    let tls = url.scheme() == TLS_SCHEME;
    let ca = url.take_option("ca");
    let cert = url.take_option("cert");
    let key = url.take_option("key");
    let usage = if tls {
        "expected etcds://[user:password@]host[:port][,host[:port]…][?ca=PATH][&cert=PATH&key=PATH]"
    } else {
        "expected etcd://[user:password@]host[:port][,host[:port]…]"
    };
    let files = if tls {
        for (option, value) in [("ca", &ca), ("cert", &cert), ("key", &key)] {
            if value.as_deref() == Some("") {
                return Err(url.invalid(&format!("`{option}=` needs the path of a PEM file")));
            }
        }
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(url.invalid("`cert` needs `key` (the client certificate's key)"))
            }
            (None, Some(_)) => {
                return Err(url.invalid("`key` needs `cert` (the client certificate)"))
            }
        };
        Some(TlsFiles { ca, identity })
    } else {
        let given = [("ca", &ca), ("cert", &cert), ("key", &key)]
            .into_iter()
            .find(|(_, v)| v.is_some());
        if let Some((option, _)) = given {
            return Err(url.invalid(&format!(
                "`{option}` is a TLS option: use etcds:// (etcd:// is plaintext)"
            )));
        }
        None
    };
    let rest = url.authority_rest().ok_or_else(|| url.invalid(usage))?;
    let hosts = rest.strip_suffix('/').unwrap_or(rest);
    // The user info as every backend splits it (see `BackendUrl`).
    let user = match url.credentials() {
        None => None,
        Some((u, p)) => {
            let p = p.ok_or_else(|| {
                url.invalid("credentials are user:password (etcd has no password-less users)")
            })?;
            let decode = |s: &str| {
                percent_decode(s).ok_or_else(|| url.invalid("bad percent-encoding in the user"))
            };
            Some((decode(u)?, decode(p)?))
        }
    };
    let protocol = if tls { "https" } else { "http" };
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
        endpoints.push(format!("{protocol}://{with_port}"));
    }
    Ok(Target {
        endpoints,
        user,
        tls: files,
        secrets: url.secrets().clone(),
    })
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
    if let Some(files) = &target.tls {
        options = options.with_tls(files.load(shown)?);
    }
    let cannot = |e: etcd_client::Error| {
        target.secrets.scrub_error(
            etcd_err(format_args!("cannot connect to {shown}"), e),
            shown,
        )
    };
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
        // A transport error's own text is only "transport error": what went wrong (a refused
        // connection, a certificate the CA did not sign) is in its sources.
        message: format!("{doing}: {}", with_causes(&e)),
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
/// lockhog sends may be sent twice (puts are guarded by compares; a key deleted by a request
/// sent twice is never made again, see `held::leave`; revokes are idempotent), so a retry
/// after a lost answer is safe.
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

    /// As the registry does: the backend takes its options, then the rest are refused.
    fn target(url: &str) -> Result<Target> {
        let mut url = BackendUrl::parse(url).unwrap();
        let target = parse(&mut url)?;
        url.finish()?;
        Ok(target)
    }

    fn invalid_because(url: &str, because: &str) {
        match target(url) {
            Err(Error::InvalidUrl { reason, .. }) => {
                assert!(reason.contains(because), "{url}: {reason}")
            }
            Err(e) => panic!("{url}: expected InvalidUrl, got {e:?}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }

    #[test]
    fn odd_passwords_are_read_whole() {
        for pw in crate::url::ODD_PASSWORDS
            .iter()
            .filter(|p| crate::name::percent_decode(p).is_some())
        {
            let t = target(&format!("etcd://root:{pw}@a:1,b:2/")).unwrap();
            let want = String::from_utf8(crate::secret::decode_lossy(pw)).unwrap();
            assert_eq!(t.user, Some(("root".into(), want.clone())), "{pw}");
            assert_eq!(t.endpoints, ["http://a:1", "http://b:2"]);
            let debug = format!("{t:?}");
            assert!(!debug.contains(pw) && !debug.contains(&want), "{debug}");
        }
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
        assert!(t.tls.is_none());
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

    #[test]
    fn etcds_endpoints_and_tls_files() {
        let t = target("etcds://a:1,b,[::1]:3").unwrap();
        assert_eq!(
            t.endpoints,
            ["https://a:1", "https://b:2379", "https://[::1]:3"]
        );
        assert_eq!(t.tls, Some(TlsFiles::default()));
        let t =
            target("ETCDS://root:p%40ss@h:1/?ca=/etc/ca.pem&cert=/c%20d.pem&key=/k.pem").unwrap();
        assert_eq!(t.endpoints, ["https://h:1"]);
        assert_eq!(t.user, Some(("root".into(), "p@ss".into())));
        assert_eq!(
            t.tls,
            Some(TlsFiles {
                ca: Some("/etc/ca.pem".into()),
                identity: Some(("/c d.pem".into(), "/k.pem".into())),
            })
        );
        let t = target("etcds://h?cert=c.pem&key=k.pem").unwrap();
        let files = t.tls.unwrap();
        assert_eq!(files.ca, None);
        assert!(files.identity.is_some());
    }

    #[test]
    fn tls_options_are_checked() {
        for option in ["ca", "cert", "key"] {
            invalid_because(&format!("etcd://h:1?{option}=/x.pem"), "use etcds://");
            invalid_because(&format!("etcds://h:1?{option}="), "path of a PEM file");
        }
        invalid_because("etcds://h:1?cert=/c.pem", "`cert` needs `key`");
        invalid_because("etcds://h:1?ca=/a.pem&key=/k.pem", "`key` needs `cert`");
        invalid_because("etcds://h:1?ca=/a.pem&bogus=1", "bogus");
        invalid_because("etcds://h:1/db?ca=/a.pem", "expected etcds://");
        for bad in ["etcds:h:1", "etcds://", "etcds://h:0", "etcds://user@h"] {
            assert!(target(bad).is_err(), "{bad}");
        }
        let e = target("etcds://u:hunter2@h:1?cert=/c.pem").err().unwrap();
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
    }

    #[test]
    fn tls_files_are_read_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        std::fs::write(path("ca.pem"), cert).unwrap();
        std::fs::write(path("c.pem"), cert).unwrap();
        std::fs::write(path("k.pem"), key).unwrap();
        std::fs::write(path("junk"), "not pem").unwrap();
        let shown = "etcds://u:***@h";
        let load = |ca: Option<&str>, identity: Option<(&str, &str)>| {
            TlsFiles {
                ca: ca.map(path),
                identity: identity.map(|(c, k)| (path(c), path(k))),
            }
            .load(shown)
        };
        load(Some("ca.pem"), Some(("c.pem", "k.pem"))).unwrap();
        load(None, None).unwrap();
        let refused = |e: Error, option: &str, file: &str| match e {
            Error::InvalidUrl { url, reason } => {
                assert_eq!(url, shown);
                assert!(reason.contains(&format!("`{option}`")), "{reason}");
                assert!(reason.contains(&path(file)), "{reason}");
            }
            e => panic!("expected InvalidUrl, got {e:?}"),
        };
        refused(
            load(Some("missing.pem"), None).unwrap_err(),
            "ca",
            "missing.pem",
        );
        refused(load(Some("junk"), None).unwrap_err(), "ca", "junk");
        refused(
            load(None, Some(("missing.pem", "k.pem"))).unwrap_err(),
            "cert",
            "missing.pem",
        );
        refused(
            load(None, Some(("c.pem", "missing.pem"))).unwrap_err(),
            "key",
            "missing.pem",
        );
        // A certificate is no key.
        refused(
            load(None, Some(("c.pem", "c.pem"))).unwrap_err(),
            "key",
            "c.pem",
        );
    }
}
