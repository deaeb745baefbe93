//! URL options: the libpq options tokio-postgres knows, libpq's `sslmode` and `sslrootcert`,
//! and lockhog's `connections=` and `max_waiters=`, read into the [`Connector`] that opens
//! sessions (what they mean: "URL options" and "TLS" in the [module docs](super)).

use std::time::Duration;

use tokio_postgres::Config;

use super::pool::Connector;
use super::tls::{MakeRustls, RootCert, SslMode};
use super::SCHEME;
use crate::backend::session_pool::count_option;
use crate::error::{Error, Result};
use crate::name::percent_encode;
use crate::url::BackendUrl;

/// The port a `postgres://` URL without one connects to.
pub(crate) const DEFAULT_PORT: u16 = 5432;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SESSIONS: usize = 4;
const DEFAULT_MAX_WAITERS: usize = 64;

/// The options tokio-postgres understands in a URL's query.
const LIBPQ_OPTIONS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// What a `postgres://` URL asks for: how to open sessions, the server and database they
/// reach, and the bounds of the connection pool.
pub(super) struct Settings {
    pub connector: Connector,
    /// Which server and database a key is arbitrated for ([`server_identity`]).
    pub server: String,
    pub sessions: usize,
    pub max_waiters: usize,
}

/// Takes every option out of `url` (an unknown one is an error) and builds the
/// [`Connector`]; connects to nothing.
pub(super) fn parse(url: &mut BackendUrl) -> Result<Settings> {
    let Some(rest) = url.authority_rest().map(str::to_string) else {
        return Err(url.invalid("expected postgres://user:password@host:port/database"));
    };
    let sessions = count_option(url, "connections", DEFAULT_SESSIONS)?;
    let max_waiters = count_option(url, "max_waiters", DEFAULT_MAX_WAITERS)?;
    let mut ssl_mode = None;
    while let Some(v) = url.take_option("sslmode") {
        ssl_mode = Some(SslMode::parse(&v).map_err(|why| url.invalid(&why))?);
    }
    let ssl_mode = ssl_mode.unwrap_or(SslMode::Prefer);
    let mut root_cert = None;
    while let Some(v) = url.take_option("sslrootcert") {
        root_cert = Some(v);
    }
    let mut query = Vec::new();
    for key in LIBPQ_OPTIONS {
        while let Some(v) = url.take_option(key) {
            let enc = percent_encode(&v, |b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
            });
            query.push(format!("{key}={enc}"));
        }
    }
    // tokio-postgres takes the user info up to the first `@` of the whole URL: hand it ours
    // percent-encoded, and no other `@` (hosts and database are percent-decoded there).
    let text = format!(
        "{}?{}",
        url.client_form("postgresql", &rest.replace('@', "%40")),
        query.join("&")
    );
    let mut config: Config = text
        .parse()
        .map_err(|e: tokio_postgres::Error| url.invalid(&format!("not a postgres URL: {e}")))?;
    config.ssl_mode(ssl_mode.negotiation());
    let tls = match ssl_mode {
        SslMode::Disable => None,
        _ => RootCert::from_option(root_cert),
    };
    let tls = MakeRustls::new(ssl_mode, tls.as_ref()).map_err(|why| {
        Error::backend(
            SCHEME,
            format!("cannot connect to {}: {why}", url.redacted()),
        )
    })?;
    if config.get_application_name().is_none() {
        config.application_name("lockhog");
    }
    if !query.iter().any(|q| q.starts_with("keepalives_idle=")) {
        config.keepalives_idle(Duration::from_secs(30));
    }
    let connect_timeout = config
        .get_connect_timeout()
        .copied()
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    config.connect_timeout(connect_timeout);
    let server = server_identity(&config);
    let mut secrets = url.secrets().clone();
    // The password as tokio-postgres will send it, should it come from elsewhere too.
    if let Some(p) = config.get_password() {
        secrets.add(&crate::name::percent_encode(
            &String::from_utf8_lossy(p),
            |b| b.is_ascii_alphanumeric(),
        ));
    }
    let connector = Connector {
        config,
        tls,
        connect_timeout,
        redacted: url.redacted().to_string(),
        secrets,
        fencing: Default::default(),
        semaphores: Default::default(),
    };
    Ok(Settings {
        connector,
        server,
        sessions,
        max_waiters,
    })
}

/// `host:port[,host:port…]/database`: which server and database a key is arbitrated for.
fn server_identity(config: &Config) -> String {
    use tokio_postgres::config::Host;
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports
                .get(i)
                .or(ports.first())
                .copied()
                .unwrap_or(DEFAULT_PORT);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default();
    format!("{}/{db}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokio_postgres_gets_the_password_lockhog_parsed() {
        for pw in crate::url::ODD_PASSWORDS {
            let url = format!("postgres://app:{pw}@h:5433/d%40b?sslmode=disable");
            let settings = parse(&mut BackendUrl::parse(&url).unwrap()).unwrap();
            let config = &settings.connector.config;
            let want = String::from_utf8(crate::secret::decode_lossy(pw)).unwrap();
            assert_eq!(config.get_password(), Some(want.as_bytes()), "{url}");
            assert_eq!(config.get_user(), Some("app"), "{url}");
            assert_eq!(settings.server, "h:5433/d@b", "{url}");
            let debug = format!("{:?}", settings.connector);
            assert!(!debug.contains(pw) && !debug.contains(&want), "{debug}");
        }
    }
}
