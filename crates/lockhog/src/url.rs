//! Backend URLs: splitting off the scheme and query, and redacting passwords.

use crate::error::{Error, Result};
use crate::name::percent_decode;

/// A backend URL split into its parts, with the query's options still to be claimed.
#[derive(Clone, Debug)]
pub struct BackendUrl {
    scheme: String,
    body: String,
    options: Vec<(String, String)>,
    redacted: String,
}

impl BackendUrl {
    /// Splits `url` into scheme, body (what follows `scheme:` up to `?`) and query options.
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
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut options = Vec::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| invalid(&format!("query option {pair:?} has no value")))?;
            let k =
                percent_decode(k).ok_or_else(|| invalid("bad percent-encoding in the query"))?;
            let v =
                percent_decode(v).ok_or_else(|| invalid("bad percent-encoding in the query"))?;
            options.push((k, v));
        }
        Ok(BackendUrl {
            scheme: scheme.to_ascii_lowercase(),
            body: body.to_string(),
            options,
            redacted,
        })
    }

    /// The scheme, lower case.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// What follows `scheme:` up to the query.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The URL with any password replaced by `***`: the only form to print.
    pub fn redacted(&self) -> &str {
        &self.redacted
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
            reason: reason.into(),
        }
    }
}

/// Replaces the password in `scheme://user:password@host…` and any `password=` query option
/// with `***`.
///
/// # Examples
///
/// ```
/// assert_eq!(
///     lockhog::redact_url("postgres://app:s3cret@db/prod?password=x&sslmode=require"),
///     "postgres://app:***@db/prod?password=***&sslmode=require"
/// );
/// assert_eq!(lockhog::redact_url("file:///tmp/locks"), "file:///tmp/locks");
/// ```
pub fn redact_url(url: &str) -> String {
    redact(url)
}

fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

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
