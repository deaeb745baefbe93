//! Connecting to Redis: the client for a URL (TLS roots included), the command connections'
//! timeouts, the one-round-trip check that a server answers, and the URL's own options.

use redis::{Client, RedisError};

use super::{Conn, CONNECT_TIMEOUT, RESPONSE_TIMEOUT, SCHEME};
use crate::error::{Error, Result};
use crate::url::BackendUrl;

/// An error of the redis client as [`Error::Backend`], with what was being done. Server and
/// client messages never carry the password (redis-rs does not print connection info).
pub(crate) fn backend_err(doing: impl std::fmt::Display, e: RedisError) -> Error {
    Error::Backend {
        backend: SCHEME,
        message: format!("{doing}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// A client for the `redis://` or `rediss://` URL `url` (without query), trusting the PEM
/// roots `ca` when given.
pub(crate) fn client(url: &str, ca: Option<&str>, shown: &str) -> Result<Client> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: shown.to_string(),
        reason,
    };
    if url.starts_with("rediss:") {
        // rustls needs a process-wide crypto provider; another library may have installed one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    match ca {
        None => Client::open(url).map_err(|e| invalid(e.to_string())),
        Some(path) => {
            if !url.starts_with("rediss:") {
                return Err(invalid("`ca` only applies to rediss:// URLs".into()));
            }
            let pem = std::fs::read(path)
                .map_err(|e| invalid(format!("cannot read the CA file {path}: {e}")))?;
            Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(|e| invalid(e.to_string()))
        }
    }
}

/// The connection settings of every command connection.
pub(crate) fn conn_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

/// A reconnecting multiplexed connection, checked by one round trip (so a wrong password or an
/// unreachable server fails here).
pub(crate) async fn connect_checked(client: &Client, shown: &str) -> Result<Conn> {
    let mut conn = Conn::lazy(client.clone(), conn_config());
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| backend_err(format_args!("cannot connect to {shown}"), e))?;
    Ok(conn)
}

/// Takes the `wake` option: `pubsub` (the default) or `poll`.
pub(crate) fn take_wake(url: &mut BackendUrl) -> Result<bool> {
    match url.take_option("wake").as_deref() {
        None | Some("pubsub") => Ok(true),
        Some("poll") => Ok(false),
        Some(other) => Err(url.invalid(&format!(
            "wake={other:?}: expected `pubsub` (the default) or `poll`"
        ))),
    }
}

/// Splits a `redis://` URL into what the client takes and the TLS roots option.
pub(super) fn client_url(url: &mut BackendUrl) -> Result<(String, Option<String>)> {
    let ca = url.take_option("ca");
    let Some(rest) = url.authority_rest() else {
        return Err(url.invalid("expected redis://[user:password@]host[:port][/db]"));
    };
    // The user info percent-encoded, so the client's URL parser splits it where lockhog did.
    Ok((url.client_form(url.scheme(), rest), ca))
}
