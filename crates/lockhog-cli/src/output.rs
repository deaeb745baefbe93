//! The lines `hold` and `status` print: the plain format and the JSON one.
//!
//! Plain lines are fields separated by single spaces. Every field that carries text from
//! outside (a name, a resource, a holder) has each space, control character (bytes below 0x20
//! and 0x7f) and `%` percent-encoded, so a line always splits into the same number of fields
//! and `lockhog::percent_decode` gives the text back.

use std::io::Write;

use lockhog::{LockGuard, LockState, LockStatus};
use serde_json::json;

/// Percent-encodes `text` for one field of a plain line.
pub fn field(text: &str) -> String {
    lockhog::percent_encode(text, |b| b > b' ' && b != b'%' && b != 0x7f)
}

/// `held <NAME> <RESOURCE> <TOKEN>`, or its JSON object.
pub fn held(guard: &LockGuard, json: bool) -> String {
    let name = guard.name().as_str();
    if json {
        json!({
            "event": "held",
            "name": name,
            "resource": guard.resource(),
            "token": guard.fencing_token(),
        })
        .to_string()
    } else {
        format!(
            "held {} {} {}",
            field(name),
            field(guard.resource()),
            guard.fencing_token()
        )
    }
}

/// `released <NAME>`, or its JSON object.
pub fn released(name: &str, json: bool) -> String {
    if json {
        json!({ "event": "released", "name": name }).to_string()
    } else {
        format!("released {}", field(name))
    }
}

fn state_word(state: LockState) -> &'static str {
    match state {
        LockState::Held => "held",
        LockState::Free => "free",
        // LockState is #[non_exhaustive]: a state this build does not know is not a claim.
        _ => "unknown",
    }
}

/// `<state> <NAME> <RESOURCE>[ <holder>]` with NAME `-` when unknown, or its JSON object.
pub fn status(status: &LockStatus, json: bool) -> String {
    let state = state_word(status.state);
    if json {
        return json!({
            "name": status.name,
            "resource": status.resource,
            "state": state,
            "holder": status.holder,
        })
        .to_string();
    }
    let name = status
        .name
        .as_deref()
        .map_or_else(|| "-".to_string(), field);
    let mut line = format!("{state} {name} {}", field(&status.resource));
    if let Some(holder) = &status.holder {
        line.push(' ');
        line.push_str(&field(holder));
    }
    line
}

/// Writes `line` and a newline to stdout and flushes at once, so a reader waiting on the line
/// sees it now, whatever stdout is (a pipe is block-buffered otherwise).
///
/// # Errors
///
/// When stdout cannot be written (e.g. the reader went away).
pub fn emit(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_never_contain_separators() {
        assert_eq!(field("a b%c\td\x7fe"), "a%20b%25c%09d%7Fe");
        assert_eq!(field("é/x"), "é/x");
        assert_eq!(field("line\nbreak\r"), "line%0Abreak%0D");
    }

    #[test]
    fn status_lines() {
        let s = LockStatus::new(
            None,
            "/tmp/a b.lock".into(),
            LockState::Held,
            Some("pid 42".into()),
        );
        assert_eq!(status(&s, false), "held - /tmp/a%20b.lock pid%2042");
        let v: serde_json::Value = serde_json::from_str(&status(&s, true)).unwrap();
        assert_eq!(v["name"], serde_json::Value::Null);
        assert_eq!(v["state"], "held");
        assert_eq!(v["holder"], "pid 42");
        let free = LockStatus::new(Some("x".into()), "/r".into(), LockState::Free, None);
        assert_eq!(status(&free, false), "free x /r");
    }

    #[test]
    fn released_lines() {
        assert_eq!(released("a b", false), "released a%20b");
        let v: serde_json::Value = serde_json::from_str(&released("a b", true)).unwrap();
        assert_eq!(v, json!({"event": "released", "name": "a b"}));
    }
}
