//! The lines `hold` and `status` print: the plain format and the JSON one.
//!
//! Plain lines are fields separated by single spaces, every field that carries text from
//! outside (a name, a resource, a holder) encoded by [`lockhog::protocol::encode_field`], so a
//! line always splits into the same number of fields. `hold`'s lines are
//! [`lockhog::protocol`]'s types, which readers parse back.

use std::io::Write;

use lockhog::protocol::{encode_field as field, HeldLine, ReleasedLine};
use lockhog::{LockGuard, LockState, LockStatus};
use serde_json::json;

/// `held <NAME> <RESOURCE> <TOKEN>`, or its JSON object.
pub fn held(guard: &LockGuard, json: bool) -> String {
    let line = HeldLine::from(guard);
    if json {
        json!({
            "event": "held",
            "name": line.name,
            "resource": line.resource,
            "token": line.token,
        })
        .to_string()
    } else {
        line.to_string()
    }
}

/// `released <NAME>`, or its JSON object.
pub fn released(name: &str, json: bool) -> String {
    if json {
        json!({ "event": "released", "name": name }).to_string()
    } else {
        ReleasedLine::new(name).to_string()
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
