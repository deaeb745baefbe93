//! The URL's options, and opening one connection: bounded by a connect timeout, set up for
//! holding locks, with messages that never carry the password.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::session::Fencing;
use super::SCHEME;
use crate::backend::session_pool::{count_option, open_within};
use crate::error::{Error, Result};
use crate::name::percent_decode;
use crate::secret::Secrets;
use crate::url::parse_duration;
use crate::url::BackendUrl;

/// The port a `mysql://` URL without one connects to.
pub(crate) const DEFAULT_PORT: u16 = 3306;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SESSIONS: usize = 4;
const DEFAULT_MAX_WAITERS: usize = 64;
/// How often a connection that holds locks is pinged to notice that it died.
const DEFAULT_LOST_CHECK: Duration = Duration::from_secs(1);

/// Which counter to create when the database has none yet (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FencingKind {
    /// A MariaDB `SEQUENCE`: the token is drawn in the statement that takes the lock.
    Sequence,
    /// An InnoDB table with one row, bumped with `LAST_INSERT_ID(value + 1)`.
    Table,
}

/// Everything needed to open connections, parsed from the URL.
pub(crate) struct Connector {
    opts: Opts,
    pub connect_timeout: Duration,
    pub sessions: usize,
    pub max_waiters: usize,
    pub lost_check: Duration,
    /// `None`: a sequence where the server has them, else a table.
    pub fencing: Option<FencingKind>,
    /// The counter the database has, found (or created) on connect before any session is
    /// opened: how sessions draw tokens.
    pub counter: Fencing,
    /// `host:port`: `GET_LOCK` names are server-wide, so this is what in-process arbitration
    /// is keyed by.
    pub server: String,
    /// The URL with its password redacted, for messages.
    pub redacted: String,
    secrets: Secrets,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never mysql_async's Opts: its Debug shows the password.
        f.debug_struct("Connector")
            .field("url", &self.redacted)
            .finish()
    }
}

impl Connector {
    /// Parses `mysql://[user[:password]@]host[:port]/database[?options]`.
    pub fn from_url(url: &mut BackendUrl) -> Result<Connector> {
        let usage = "expected mysql://user:password@host:port/database";
        let rest = url
            .authority_rest()
            .ok_or_else(|| url.invalid(usage))?
            .to_string();
        let (hostport, db) = rest.split_once('/').ok_or_else(|| {
            url.invalid("a database is needed (it keeps the fencing counter): mysql://…/database")
        })?;
        let decode = |s: &str, what: &str| {
            percent_decode(s).ok_or_else(|| url.invalid(&format!("bad percent-encoding in {what}")))
        };
        let db = decode(db, "the database")?;
        if db.is_empty() {
            return Err(url.invalid("a database is needed: mysql://…/database"));
        }
        // The user info as every backend splits it (see `BackendUrl`).
        let (user, password) = match url.credentials() {
            None => (None, None),
            Some((u, p)) => (
                Some(decode(u, "the user")?),
                p.map(|p| decode(p, "the password")).transpose()?,
            ),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| url.invalid(usage))?;
        let port = port.unwrap_or(DEFAULT_PORT);

        let sessions = count_option(url, "connections", DEFAULT_SESSIONS)?;
        let max_waiters = count_option(url, "max_waiters", DEFAULT_MAX_WAITERS)?;
        let duration =
            |url: &mut BackendUrl, key: &str, default: Duration| -> Result<Duration> {
                match url.take_option(key) {
                    None => Ok(default),
                    Some(v) => match parse_duration(&v) {
                        Ok(d) if !d.is_zero() => Ok(d),
                        _ => Err(url
                            .invalid(&format!("{key} is a duration above zero, e.g. 5 or 500ms"))),
                    },
                }
            };
        let connect_timeout = duration(url, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)?;
        let lost_check = duration(url, "lost_check", DEFAULT_LOST_CHECK)?;
        let prefer_socket = match url.take_option("prefer_socket").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(url.invalid("prefer_socket is `true` or `false`")),
        };
        let fencing = match url.take_option("fencing_counter").as_deref() {
            None => None,
            Some("sequence") => Some(FencingKind::Sequence),
            Some("table") => Some(FencingKind::Table),
            Some(_) => return Err(url.invalid("fencing_counter is `sequence` or `table`")),
        };

        let opts = OptsBuilder::default()
            .ip_or_hostname(host.clone())
            .tcp_port(port)
            .user(user)
            .pass(password.clone())
            .db_name(Some(db))
            // On a loopback address, reconnect through the server's Unix socket when it
            // can be reached (mysql_async's default): about twice the round trips per second.
            .prefer_socket(prefer_socket)
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            // Locks are pinned to connections: no statement cache is shared, and nothing
            // may reset a session under its locks.
            .stmt_cache_size(16);
        Ok(Connector {
            opts: opts.into(),
            connect_timeout,
            sessions,
            max_waiters,
            lost_check,
            fencing,
            // Until connect has found the database's counter.
            counter: Fencing::Table,
            server: format!("{host}:{port}"),
            redacted: url.redacted().to_string(),
            secrets: url.secrets().clone(),
        })
    }

    /// Strips the password from `message` should a server or library ever echo it.
    pub fn scrub(&self, message: String) -> String {
        self.secrets.scrub(&message)
    }

    /// An [`Error::Backend`] saying what was being done, with the redacted URL.
    pub fn error(&self, doing: &str, e: &mysql_async::Error) -> Error {
        // Only what the server or library said is scrubbed: the rest is ours.
        let said = self.scrub(describe(e));
        Error::backend(SCHEME, format!("{doing} ({}): {said}", self.redacted))
    }

    /// Opens one connection within the connect timeout and `deadline`; `Ok(None)` when the
    /// deadline came first.
    pub async fn open(&self, deadline: Option<tokio::time::Instant>) -> Result<Option<Conn>> {
        let open = self.open_unbounded();
        open_within(SCHEME, &self.redacted, self.connect_timeout, deadline, open).await
    }

    async fn open_unbounded(&self) -> Result<Conn> {
        let mut conn = Conn::new(self.opts.clone())
            .await
            .map_err(|e| self.error("cannot connect", &e))?;
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| self.error("cannot set up the session", &e))?;
        // Long lock waits must not be cut short by a statement time limit.
        let setup = if version.unwrap_or_default().contains("MariaDB") {
            "SET SESSION max_statement_time = 0"
        } else {
            "SET SESSION max_execution_time = 0"
        };
        if let Err(e) = conn.query_drop(setup).await {
            tracing::debug!("mysql: {setup} failed: {}", describe(&e));
        }
        Ok(conn)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return None,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => None,
    };
    Some((host.to_string(), port))
}

/// A mysql_async error as text: the server's message with its code when there is one.
pub(crate) fn describe(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => {
            format!("{} (error {}, SQLSTATE {})", s.message, s.code, s.state)
        }
        other => without_repeated_prefix(&other.to_string()),
    }
}

/// `text` without a leading `P: ` that is said again right after it: mysql_async's I/O errors
/// read "Input/output error: Input/output error: connection closed" (its wrapper and the
/// `io::Error` each name the kind).
fn without_repeated_prefix(text: &str) -> String {
    if let Some((head, rest)) = text.split_once(": ") {
        if rest.starts_with(&format!("{head}: ")) {
            return rest.to_string();
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_prefix_is_said_once() {
        assert_eq!(
            without_repeated_prefix("Input/output error: Input/output error: connection closed"),
            "Input/output error: connection closed"
        );
        assert_eq!(without_repeated_prefix("a: b: c"), "a: b: c");
        assert_eq!(without_repeated_prefix("plain"), "plain");
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(split_host_port("h"), Some(("h".into(), None)));
        assert_eq!(split_host_port("h:3307"), Some(("h".into(), Some(3307))));
        assert_eq!(split_host_port("[::1]:1"), Some(("::1".into(), Some(1))));
        assert_eq!(split_host_port("[::1]"), Some(("::1".into(), None)));
        assert_eq!(split_host_port(":1"), None);
        assert_eq!(split_host_port("h:x"), None);
    }

    #[test]
    fn odd_passwords_are_read_whole() {
        // Not a bare `%`: lockhog reads MySQL and etcd URLs with well-formed escapes only.
        for pw in crate::url::ODD_PASSWORDS
            .iter()
            .filter(|p| crate::name::percent_decode(p).is_some())
        {
            let url = format!("mysql://app:{pw}@db:3307/locks");
            let c = Connector::from_url(&mut BackendUrl::parse(&url).unwrap()).unwrap();
            let want = String::from_utf8(crate::secret::decode_lossy(pw)).unwrap();
            assert_eq!(c.opts.pass(), Some(want.as_str()), "{url}");
            assert_eq!(c.opts.user(), Some("app"), "{url}");
            assert_eq!(c.server, "db:3307", "{url}");
            let debug = format!("{c:?}");
            assert!(!debug.contains(pw) && !debug.contains(&want), "{debug}");
        }
    }

    #[test]
    fn urls() {
        let mut u = BackendUrl::parse("mysql://u:p%40ss@db:3307/locks?connections=2").unwrap();
        let c = Connector::from_url(&mut u).unwrap();
        assert_eq!(c.server, "db:3307");
        assert_eq!(c.sessions, 2);
        assert!(!format!("{c:?}").contains("p@ss"));
        for bad in [
            "mysql://u:p@h:3306",
            "mysql://u:p@h:3306/",
            "mysql:h/db",
            "mysql://u:secret@h/db?bogus=1",
            "mysql://u:secret@h/db?fencing_counter=maybe",
        ] {
            let mut u = BackendUrl::parse(bad).unwrap();
            // As the registry does: the backend takes its options, then the rest are refused.
            let e = Connector::from_url(&mut u)
                .and_then(|_| u.finish())
                .unwrap_err();
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
