//! The lines `lockhog hold` prints on stdout, as types: the CLI writes them with `Display` and
//! process hogs (or any reader in Rust) read them with `FromStr`, so both ends share one
//! encoding.
//!
//! A plain line is fields separated by single spaces:
//!
//! - `held <NAME> <RESOURCE> <TOKEN>` once a lock is held ([`HeldLine`]);
//! - `released <NAME>` once it is released ([`ReleasedLine`]).
//!
//! NAME and RESOURCE are encoded by [`encode_field`]: every space, control character (bytes
//! below 0x20, and 0x7f) and `%` becomes `%XX` (upper-case hex), so a line never holds a line
//! break and always splits into the same number of fields, whatever the text. TOKEN is the
//! fencing token in decimal, or `-` for a lock without one (a foreign resource taken with
//! `--resource` on a store that does not number its holders), keeping four fields.
//!
//! Reading is lenient where leniency is harmless: an escape may use lower-case hex, and a
//! field may hold bytes the writer would have escaped (other than the space); a malformed
//! escape, a wrong field count or a token that is not plain decimal digits is refused.
//!
//! ```
//! use lockhog::protocol::{HeldLine, ReleasedLine};
//!
//! let held = HeldLine::new("pay day", "/tmp/l/pay%20day.lock", 7);
//! assert_eq!(held.to_string(), "held pay%20day /tmp/l/pay%2520day.lock 7");
//! assert_eq!("held pay%20day /tmp/l/pay%2520day.lock 7".parse(), Ok(held));
//! let foreign = HeldLine::new("advisory:42", "advisory:42", None);
//! assert_eq!(foreign.to_string(), "held advisory:42 advisory:42 -");
//! assert_eq!("held advisory:42 advisory:42 -".parse(), Ok(foreign));
//! assert_eq!(ReleasedLine::new("pay day").to_string(), "released pay%20day");
//! assert!("held a b".parse::<HeldLine>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use crate::LockGuard;

/// The token field of a lock without a fencing token.
const NO_TOKEN: &str = "-";

/// Percent-encodes `text` for one field of a plain line: each space, control character
/// (bytes below 0x20, and 0x7f) and `%` becomes `%XX`; everything else, including non-ASCII
/// text, is kept. [`crate::url::percent_decode`] gives the text back.
pub fn encode_field(text: &str) -> String {
    crate::url::percent_encode(text, |b| b > b' ' && b != b'%' && b != 0x7f)
}

/// Decodes one field of a plain line.
fn decode_field(what: &'static str, field: &str) -> Result<String, ParseLineError> {
    crate::url::percent_decode(field).ok_or_else(|| ParseLineError::BadEscape {
        what,
        field: field.to_string(),
    })
}

/// A line that is not the one expected, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseLineError {
    /// The first field is not the line's event word (`held`, `released`).
    #[error("expected a `{expected}` line")]
    Event {
        /// The event word expected.
        expected: &'static str,
    },
    /// The line does not split into the event's number of fields.
    #[error("expected {expected} space-separated fields, found {found}")]
    Fields {
        /// How many fields the event has.
        expected: usize,
        /// How many the line has.
        found: usize,
    },
    /// A `%` not followed by two hex digits, or escapes that decode to bytes that are not UTF-8.
    #[error("bad escape in the {what} field {field:?}")]
    BadEscape {
        /// Which field (`name`, `resource`).
        what: &'static str,
        /// The field as it was on the line.
        field: String,
    },
    /// The token field is not a decimal number that fits 64 bits.
    #[error("bad token {0:?}: expected decimal digits")]
    BadToken(String),
}

/// Splits `line` into exactly `N` fields, the first being `event`.
fn fields<'a, const N: usize>(
    line: &'a str,
    event: &'static str,
) -> Result<[&'a str; N], ParseLineError> {
    let found: Vec<&str> = line.split(' ').collect();
    let fields: [&str; N] = found
        .as_slice()
        .try_into()
        .map_err(|_| ParseLineError::Fields {
            expected: N,
            found: found.len(),
        })?;
    if fields[0] != event {
        return Err(ParseLineError::Event { expected: event });
    }
    Ok(fields)
}

/// `held <NAME> <RESOURCE> <TOKEN>`: one lock held by `lockhog hold`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct HeldLine {
    /// The lock's name.
    pub name: String,
    /// The backend's own name for the lock (for `file:`, the lock file's path).
    pub resource: String,
    /// The fencing token; `None` (written `-`) for a lock without one.
    pub token: Option<u64>,
}

impl HeldLine {
    /// The line for a lock named `name`, held as `resource` with fencing token `token` (a
    /// number, or `None` for a lock without one).
    pub fn new(
        name: impl Into<String>,
        resource: impl Into<String>,
        token: impl Into<Option<u64>>,
    ) -> HeldLine {
        HeldLine {
            name: name.into(),
            resource: resource.into(),
            token: token.into(),
        }
    }
}

impl From<&LockGuard> for HeldLine {
    fn from(guard: &LockGuard) -> HeldLine {
        HeldLine::new(
            guard.name().as_str(),
            guard.resource(),
            guard.fencing_token(),
        )
    }
}

impl fmt::Display for HeldLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "held {} {} ",
            encode_field(&self.name),
            encode_field(&self.resource),
        )?;
        match self.token {
            Some(token) => write!(f, "{token}"),
            None => f.write_str(NO_TOKEN),
        }
    }
}

impl FromStr for HeldLine {
    type Err = ParseLineError;

    fn from_str(line: &str) -> Result<HeldLine, ParseLineError> {
        let [_, name, resource, token] = fields::<4>(line, "held")?;
        let name = decode_field("name", name)?;
        let resource = decode_field("resource", resource)?;
        let token = if token == NO_TOKEN {
            None
        } else {
            // `u64::from_str` also takes a leading `+`, which no writer produces.
            let number = Some(token)
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| ParseLineError::BadToken(token.to_string()))?;
            Some(number)
        };
        Ok(HeldLine {
            name,
            resource,
            token,
        })
    }
}

/// `released <NAME>`: a lock `lockhog hold` released.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ReleasedLine {
    /// The lock's name.
    pub name: String,
}

impl ReleasedLine {
    /// The line for the lock named `name`.
    pub fn new(name: impl Into<String>) -> ReleasedLine {
        ReleasedLine { name: name.into() }
    }
}

impl fmt::Display for ReleasedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "released {}", encode_field(&self.name))
    }
}

impl FromStr for ReleasedLine {
    type Err = ParseLineError;

    fn from_str(line: &str) -> Result<ReleasedLine, ParseLineError> {
        let [_, name] = fields::<2>(line, "released")?;
        Ok(ReleasedLine::new(decode_field("name", name)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_never_contain_separators() {
        assert_eq!(encode_field("a b%c\td\x7fe"), "a%20b%25c%09d%7Fe");
        assert_eq!(encode_field("é/x"), "é/x");
        assert_eq!(encode_field("line\nbreak\r"), "line%0Abreak%0D");
    }

    #[test]
    fn the_wire_format() {
        let held = HeldLine::new("a b", "/l/a%20b.lock", 42);
        assert_eq!(held.to_string(), "held a%20b /l/a%2520b.lock 42");
        assert_eq!(ReleasedLine::new("a\nb").to_string(), "released a%0Ab");
        assert_eq!("released a%0ab".parse(), Ok(ReleasedLine::new("a\nb")));
    }

    #[test]
    fn refused_lines() {
        let err = |line: &str| line.parse::<HeldLine>().unwrap_err();
        assert_eq!(
            err("held a b"),
            ParseLineError::Fields {
                expected: 4,
                found: 3
            }
        );
        assert_eq!(
            err("held a  b 1").to_string(),
            "expected 4 space-separated fields, found 5"
        );
        assert_eq!(
            err("hold a b 1"),
            ParseLineError::Event { expected: "held" }
        );
        assert!(matches!(
            err("held a%2 b 1"),
            ParseLineError::BadEscape { what: "name", .. }
        ));
        assert!(matches!(
            err("held a b%FF 1"),
            ParseLineError::BadEscape {
                what: "resource",
                ..
            }
        ));
        assert!(matches!(
            err("held a %+1 1"),
            ParseLineError::BadEscape { .. }
        ));
        assert_eq!("held a b -".parse(), Ok(HeldLine::new("a", "b", None)));
        assert_eq!(HeldLine::new("a", "b", None).to_string(), "held a b -");
        assert!("held a b --".parse::<HeldLine>().is_err());
        for token in ["+7", "", "0x7", "18446744073709551616", " 7", "7\r"] {
            let line = format!("held a b {token}");
            assert!(line.parse::<HeldLine>().is_err(), "{line:?}");
        }
        assert_eq!(
            "held a b 18446744073709551615".parse::<HeldLine>(),
            Ok(HeldLine::new("a", "b", u64::MAX))
        );
        assert!("released".parse::<ReleasedLine>().is_err());
        assert!("held a".parse::<ReleasedLine>().is_err());
    }
}
