//! Passwords taken from a backend URL, and scrubbing them out of text a client library or
//! server wrote, so that no message, log line or error source chain lockhog hands out shows one.

use std::fmt;

use crate::error::{BoxError, Error};
use crate::name::percent_encode;

/// What replaces a password in anything shown.
pub(crate) const MASK: &str = "***";

/// Every form in which a URL's passwords could be echoed: as written in the URL, percent-decoded
/// and percent-encoded. Its `Debug` shows how many, never which.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    /// Longest first, so that a form containing another is replaced whole.
    forms: Vec<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} forms)", self.forms.len())
    }
}

impl Secrets {
    /// Adds a password as written in the URL (`raw`, possibly percent-encoded), with its
    /// decoded and encoded forms.
    pub fn add(&mut self, raw: &str) {
        let decoded = String::from_utf8_lossy(&decode_lossy(raw)).into_owned();
        let escaped = escape(raw);
        let all = percent_encode(&decoded, |b| b.is_ascii_alphanumeric());
        let unreserved = percent_encode(&decoded, |b| {
            b.is_ascii_alphanumeric() || b"-._~".contains(&b)
        });
        for form in [raw.to_string(), decoded, escaped, all, unreserved] {
            if !form.is_empty() && !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// `text` with every form of every password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), MASK);
            }
        }
        out
    }

    /// `text` scrubbed except where it quotes `shown` (the redacted URL, already safe: its
    /// user or database may well be spelt like the password).
    pub fn scrub_except(&self, text: &str, shown: &str) -> String {
        if shown.is_empty() {
            return self.scrub(text);
        }
        let pieces: Vec<String> = text.split(shown).map(|p| self.scrub(p)).collect();
        pieces.join(shown)
    }

    /// `e` with every password scrubbed out of its message (but for the redacted URL `shown`)
    /// and source chain; unchanged when the URL had none, so a source stays the client's own
    /// error type then.
    pub fn scrub_error(&self, e: Error, shown: &str) -> Error {
        if self.forms.is_empty() {
            return e;
        }
        match e {
            Error::Backend {
                backend,
                message,
                source,
            } => Error::Backend {
                backend,
                message: self.scrub_except(&message, shown),
                source: source.map(|s| self.wrap(&*s)),
            },
            Error::InvalidUrl { url, reason } => Error::InvalidUrl {
                url,
                reason: self.scrub_except(&reason, shown),
            },
            Error::InvalidOption { reason } => Error::InvalidOption {
                reason: self.scrub_except(&reason, shown),
            },
            other => other,
        }
    }

    /// `e` as an error whose `Display`, `Debug` and whole source chain are scrubbed: what a
    /// caller gets as an [`crate::Error`]'s source in place of the client library's own error.
    pub fn wrap(&self, e: &(dyn std::error::Error + 'static)) -> BoxError {
        Box::new(Scrubbed::new(self, e))
    }
}

/// A client library's error, as scrubbed text (see [`Secrets::wrap`]).
#[derive(Clone)]
pub(crate) struct Scrubbed {
    display: String,
    debug: String,
    source: Option<Box<Scrubbed>>,
}

impl Scrubbed {
    fn new(secrets: &Secrets, e: &(dyn std::error::Error + 'static)) -> Scrubbed {
        Scrubbed {
            display: secrets.scrub(&e.to_string()),
            debug: secrets.scrub(&format!("{e:?}")),
            source: e.source().map(|s| Box::new(Scrubbed::new(secrets, s))),
        }
    }
}

impl fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.debug)
    }
}

impl std::error::Error for Scrubbed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// `%XX` decoded where well formed; anything else kept as it is (as the client libraries do).
pub(crate) fn decode_lossy(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .filter(|h| bytes[i] == b'%' && h.bytes().all(|b| b.is_ascii_hexdigit()));
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// A URL part as written, with every byte but the unreserved ones and well-formed `%XX`
/// escapes percent-encoded: it decodes to the same bytes, and no client can split it anywhere.
pub(crate) fn escape(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    for (i, &b) in bytes.iter().enumerate() {
        let escape_start = b == b'%'
            && raw
                .get(i + 1..i + 3)
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || escape_start {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_scrubbed() {
        let mut s = Secrets::default();
        s.add("p%40ss w#rd");
        for form in [
            "p%40ss w#rd",
            "p@ss w#rd",
            "p%40ss%20w%23rd",
            "p%40ss%20w%23rd",
        ] {
            assert_eq!(s.scrub(&format!("<{form}>")), "<***>", "{form}");
        }
        assert!(!format!("{s:?}").contains("ss"));
    }

    #[test]
    fn escaping_keeps_the_bytes() {
        for raw in ["a%2Fb", "50%off", "#/?@ :", "é", "%%41"] {
            assert_eq!(decode_lossy(&escape(raw)), decode_lossy(raw), "{raw}");
            assert!(escape(raw)
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        }
    }

    #[test]
    fn a_wrapped_error_chain_is_scrubbed() {
        #[derive(Debug)]
        struct Inner;
        impl fmt::Display for Inner {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("inner hunter2")
            }
        }
        impl std::error::Error for Inner {}
        let outer = std::io::Error::other(Inner);
        let mut s = Secrets::default();
        s.add("hunter2");
        let wrapped = s.wrap(&outer);
        let mut text = format!("{wrapped} {wrapped:?}");
        let mut source = wrapped.source();
        while let Some(e) = source {
            text.push_str(&format!(" {e} {e:?}"));
            source = e.source();
        }
        assert!(text.contains("inner ***"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
