//! Backend URLs: the default one, splitting off the scheme and query, redacting passwords,
//! percent-encoding (of user info and of the `hold` protocol's fields), and
//! the duration syntax of their options (which the `lockhog` command line shares).

use std::time::Duration;

use crate::error::{Error, Result};
pub use crate::name::{percent_decode, percent_encode};
use crate::secret::{decode_lossy, Secrets, MASK};

/// A backend URL split into its parts, with the query's options still to be claimed.
///
/// `scheme://[user[:password]@]rest[?query]`: the user info runs to the first `@` that a plain
/// host list (`host[:port][,…]`) follows, so a password may hold `@`, `#`, `/`, `?`, `:` or
/// spaces as written; the query starts at the first `?` after it. Its `Debug` shows the
/// redacted URL only.
#[derive(Clone)]
pub struct BackendUrl {
    scheme: String,
    body: String,
    /// Byte length of the user info at the start of `body` after `//` (without its `@`).
    userinfo: Option<usize>,
    options: Vec<(String, String)>,
    redacted: String,
    secrets: Secrets,
}

impl std::fmt::Debug for BackendUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BackendUrl").field(&self.redacted).finish()
    }
}

impl BackendUrl {
    /// Splits `url` into scheme, body (what follows `scheme:` up to the query) and query
    /// options.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when there is no scheme or the query is malformed.
    pub fn parse(url: &str) -> Result<Self> {
        let redacted = redact(url);
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redacted.clone(),
            reason: reason.into(),
        };
        let (scheme, rest) = url
            .split_once(':')
            .filter(|(s, _)| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
            })
            .ok_or_else(|| {
                invalid("expected SCHEME:..., e.g. file:///tmp/locks, mem:, postgres://host/db")
            })?;
        let userinfo = rest.strip_prefix("//").and_then(userinfo_end);
        // The query starts after the user info: a `?` inside a password is the password's.
        let query_from = userinfo.map_or(0, |at| 2 + at + 1);
        let (body, query) = match rest[query_from..].find('?') {
            Some(q) => (&rest[..query_from + q], Some(&rest[query_from + q + 1..])),
            None => (rest, None),
        };
        let mut secrets = Secrets::default();
        if let Some(password) = userinfo
            .and_then(|at| rest[2..2 + at].split_once(':'))
            .map(|(_, p)| p)
        {
            secrets.add(password);
        }
        let mut options = Vec::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| invalid(&format!("query option {pair:?} has no value")))?;
            if is_secret_key(k) {
                secrets.add(v);
            }
            let k =
                percent_decode(k).ok_or_else(|| invalid("bad percent-encoding in the query"))?;
            let v =
                percent_decode(v).ok_or_else(|| invalid("bad percent-encoding in the query"))?;
            options.push((k, v));
        }
        Ok(BackendUrl {
            scheme: scheme.to_ascii_lowercase(),
            body: body.to_string(),
            userinfo,
            options,
            redacted,
            secrets,
        })
    }

    /// The scheme, lower case.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// What follows `scheme:` up to the query, user info included.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The user and password as written (still percent-encoded), when the URL has user info.
    pub fn credentials(&self) -> Option<(&str, Option<&str>)> {
        let info = &self.body[2..2 + self.userinfo?];
        Some(match info.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (info, None),
        })
    }

    /// What follows `//` and the user info up to the query (hosts, path); `None` when the body
    /// does not start with `//`.
    pub fn authority_rest(&self) -> Option<&str> {
        let rest = self.body.strip_prefix("//")?;
        Some(self.userinfo.map_or(rest, |at| &rest[at + 1..]))
    }

    /// `scheme://[user[:password]@]rest` for a client library that parses URLs itself: the
    /// user info percent-encoded (same bytes), so that the client splits it where lockhog did.
    #[cfg(any(feature = "postgres", feature = "redis"))]
    pub(crate) fn client_form(&self, scheme: &str, rest: &str) -> String {
        use crate::secret::escape;
        match self.credentials() {
            None => format!("{scheme}://{rest}"),
            Some((u, None)) => format!("{scheme}://{}@{rest}", escape(u)),
            Some((u, Some(p))) => format!("{scheme}://{}:{}@{rest}", escape(u), escape(p)),
        }
    }

    /// The URL with any password replaced by `***`: the only form to print.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URL's passwords, to scrub out of what a client library or server says.
    pub(crate) fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Removes and returns the query option `key`.
    pub fn take_option(&mut self, key: &str) -> Option<String> {
        let at = self.options.iter().position(|(k, _)| k == key)?;
        Some(self.options.remove(at).1)
    }

    /// Fails when options are left that nobody claimed: a misspelt option must not be ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] naming the unknown options.
    pub fn finish(&self) -> Result<()> {
        if self.options.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        Err(self.invalid(&format!(
            "unknown option(s) for {}: {}",
            self.scheme,
            names.join(", ")
        )))
    }

    /// An [`Error::InvalidUrl`] for this URL.
    pub fn invalid(&self, reason: &str) -> Error {
        Error::InvalidUrl {
            url: self.redacted.clone(),
            reason: self.secrets.scrub(reason),
        }
    }
}

/// The default backend URL: `file://$XDG_RUNTIME_DIR/lockhog`, or `file:///tmp/lockhog-$UID`
/// when `XDG_RUNTIME_DIR` is unset or not absolute.
///
/// The file backend holds this directory (whichever way it is reached) to the rules of a
/// private one: created with mode 0700, and refused unless it is a real directory (not a
/// symlink) owned by the effective uid that nobody else may write to, so another user cannot
/// plant it in `/tmp` first.
pub fn default_url() -> String {
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(dir) if dir.starts_with('/') => format!("file://{}/lockhog", dir.trim_end_matches('/')),
        // SAFETY: getuid cannot fail and touches no memory of ours.
        _ => format!("file:///tmp/lockhog-{}", unsafe { libc::getuid() }),
    }
}

/// Where the user info of `rest` (what follows `scheme://`) ends: the index of its `@`.
///
/// The user info ends at the first `@` that is followed, up to the next `/` or `?`, by a plain
/// host list (`host[:port][,…]`, no `@`); when none is, at the first `@` followed by no other
/// before the next `/` or `?`. So a password may hold `@`, `/`, `?`, `:`, spaces and `#` (which
/// is never a delimiter: no backend gives a fragment a meaning). A `/` or `?` before the first
/// `@` ends the authority when what precedes it is a plain host list: then the `@` belongs to
/// the path or query (`postgres://h:5432/db?application_name=me@x`).
///
/// Every backend reads its user info by this rule: the ones lockhog parses itself (MySQL,
/// etcd, Redlock) and the ones whose client library parses the URL (PostgreSQL, Redis), which
/// are handed the user info percent-encoded ([`BackendUrl::client_form`]), so that their own
/// splitting (tokio-postgres: the first `@`; the `url` crate: the last `@` before `/?#`) finds
/// the same one.
pub(crate) fn userinfo_end(rest: &str) -> Option<usize> {
    let first_at = rest.find('@')?;
    if let Some(delim) = rest[..first_at].find(['/', '?']) {
        if is_host_list(&rest[..delim]) {
            return None;
        }
    }
    let mut fallback = None;
    for (at, _) in rest.match_indices('@') {
        let segment = &rest[at + 1..];
        let segment = &segment[..segment.find(['/', '?']).unwrap_or(segment.len())];
        if segment.contains('@') {
            continue;
        }
        if !segment.is_empty() && is_host_list(segment) {
            return Some(at);
        }
        fallback = fallback.or(Some(at));
    }
    fallback
}

/// `host[:port][,host[:port]…]` (empty included), hosts plain names, addresses or `[v6]`.
fn is_host_list(s: &str) -> bool {
    s.split(',').all(|item| {
        let (host, port) = match item.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((addr, after))
                    if addr
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b":.%".contains(&b)) =>
                {
                    match after {
                        "" => return true,
                        _ => ("x", after.strip_prefix(':')),
                    }
                }
                _ => return false,
            },
            None => match item.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (item, None),
            },
        };
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
            && port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// True for query keys whose value is a secret: `password`, `pass`, `passwd`, `pwd` and any
/// key holding `password`, `secret` or `token`, in any case, percent-encoded or not.
fn is_secret_key(raw: &str) -> bool {
    let key = String::from_utf8_lossy(&decode_lossy(raw)).to_ascii_lowercase();
    matches!(key.as_str(), "pass" | "passwd" | "pwd")
        || ["password", "secret", "token"]
            .iter()
            .any(|s| key.contains(s))
}

/// Parses a duration as URL options (`ttl=`, `steal_after=`) and lockhog's command line write
/// it: in seconds, fractions allowed (`"0.25"`, `"30"`), or with a unit
/// suffix `ms`, `s`, `m` or `h` (`"250ms"`, `"30s"`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// assert_eq!(lockhog::url::parse_duration("1.5").unwrap(), Duration::from_millis(1500));
/// assert_eq!(lockhog::url::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(lockhog::url::parse_duration("-1").is_err());
/// ```
///
/// # Errors
///
/// [`Error::InvalidOption`] when the text is not a non-negative finite number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let bad = || Error::InvalidOption {
        reason: format!("{text:?} is not a duration (seconds, e.g. 2.5, or 250ms, 30s, 5m)"),
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    let secs = value * scale;
    if !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The value of the URL option `fencing`: `on` (the default) or `off` (no fencing tokens; see
/// [`LockRequest::no_fencing`](crate::LockRequest::no_fencing)).
///
/// # Errors
///
/// [`Error::InvalidOption`] for any other value.
pub(crate) fn parse_fencing(text: &str) -> Result<bool> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(Error::InvalidOption {
            reason: format!(
                "fencing is `on` or `off`, not {text:?} (MySQL's counter kind is \
                 `fencing_counter=sequence|table`)"
            ),
        }),
    }
}

/// Replaces the password in `scheme://user:password@host…` and any `password=` query option
/// with `***`.
///
/// The user info is found as every backend finds it (see [`BackendUrl`]), so a password with
/// `@`, `#`, `/`, `?` or spaces is hidden whole.
///
/// # Examples
///
/// ```
/// assert_eq!(
///     lockhog::url::redact("postgres://app:s3cret@db/prod?password=x&sslmode=require"),
///     "postgres://app:***@db/prod?password=***&sslmode=require"
/// );
/// assert_eq!(lockhog::url::redact("mysql://app:Xy#9k@db/prod"), "mysql://app:***@db/prod");
/// assert_eq!(lockhog::url::redact("file:///tmp/locks"), "file:///tmp/locks");
/// ```
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    let mut query_from = 0;
    if let Some(start) = out.find("://").map(|i| i + 3) {
        if let Some(mut at) = userinfo_end(&out[start..]).map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, MASK);
                at = colon + 1 + MASK.len();
            }
            query_from = at + 1;
        }
    }
    if let Some(q) = out[query_from..].find('?').map(|i| query_from + i) {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) => format!("{k}={MASK}"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// Passwords with the characters a careless split trips on, written raw in URLs by the tests
/// of every backend that has credentials.
#[cfg(test)]
pub(crate) const ODD_PASSWORDS: &[&str] = &[
    "Xy#9k",
    "p@ss",
    "a/b",
    "q?x=1",
    "sp ace",
    "c:d",
    "h#@/?% :x",
    "50%off",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scheme_body_query() {
        let mut u = BackendUrl::parse("file:///tmp/x?mode=fcntl&namespace=a%20b").unwrap();
        assert_eq!(u.scheme(), "file");
        assert_eq!(u.body(), "///tmp/x");
        assert_eq!(u.take_option("namespace").as_deref(), Some("a b"));
        assert!(u.finish().is_err());
        assert_eq!(u.take_option("mode").as_deref(), Some("fcntl"));
        assert!(u.finish().is_ok());
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "nocolon", ":x", "a b:c", "mem:?flag"] {
            assert!(BackendUrl::parse(bad).is_err(), "{bad}");
        }
    }

    use super::ODD_PASSWORDS as ODD;

    #[test]
    fn redaction_finds_the_user_info_each_backend_finds() {
        for scheme in ["postgres", "mysql", "redis", "redlock", "etcd", "etcds"] {
            for pw in ODD {
                let url = format!("{scheme}://app:{pw}@h1:1,h2:2/db?x=1");
                let shown = redact(&url);
                assert_eq!(
                    shown,
                    format!("{scheme}://app:***@h1:1,h2:2/db?x=1"),
                    "{url}"
                );
                let parsed = BackendUrl::parse(&url).unwrap();
                assert_eq!(parsed.credentials(), Some(("app", Some(*pw))), "{url}");
                assert_eq!(parsed.authority_rest(), Some("h1:1,h2:2/db"), "{url}");
                assert_eq!(parsed.body(), format!("//app:{pw}@h1:1,h2:2/db"), "{url}");
                assert!(!format!("{parsed:?}").contains(pw), "{parsed:?}");
                // Encoded, too.
                let enc = percent_encode(pw, |b| b.is_ascii_alphanumeric());
                let url = format!("{scheme}://app:{enc}@h/db");
                assert_eq!(redact(&url), format!("{scheme}://app:***@h/db"));
            }
        }
    }

    #[test]
    fn an_at_sign_after_a_host_is_not_user_info() {
        for url in [
            "postgres://h:5432/db?application_name=me@x",
            "file:///tmp/locks@v2",
            "postgres://[::1]:5432/d@b",
            "redis://h/0?x=a@b",
        ] {
            assert_eq!(redact(url), url);
            assert_eq!(BackendUrl::parse(url).unwrap().credentials(), None, "{url}");
        }
    }

    #[test]
    fn secret_query_options_are_redacted_in_any_case_and_encoding() {
        for key in [
            "password",
            "PASSWORD",
            "Password",
            "pass%77ord",
            "pass",
            "sslpassword",
        ] {
            let url = format!("postgres://h/db?{key}=s3cr%23t&sslmode=require");
            assert_eq!(
                redact(&url),
                format!("postgres://h/db?{key}=***&sslmode=require")
            );
            let e = BackendUrl::parse(&url).unwrap().finish().unwrap_err();
            assert!(!e.to_string().contains("s3cr"), "{e}");
        }
    }

    #[test]
    fn redacts_passwords_everywhere() {
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("redis://user@h"), "redis://user@h");
        assert_eq!(redact("mysql://u:p@ss@h/db"), "mysql://u:***@h/db");
        let e = BackendUrl::parse("postgres://u:hunter2@h/db?bogus=1")
            .unwrap()
            .finish()
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
