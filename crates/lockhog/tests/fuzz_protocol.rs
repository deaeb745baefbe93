//! Property tests ("fuzzing" on stable: cargo-fuzz needs a nightly toolchain) of the lines
//! `lockhog hold` prints, [`lockhog::protocol`]: any name, resource and token survive a line
//! and come back, a line always has its fixed number of fields, and reading arbitrary text
//! never panics. The binary's side (its lines read back by these types) is in lockhog-cli's
//! tests/fuzz_cli.rs. Each target prints how many cases it ran.

mod fuzz_support;

use fuzz_support::{fuzz, odd_piece, PURE};
use lockhog::protocol::{HeldLine, ReleasedLine};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Any text, weighted towards what a line must survive ([`odd_piece`]: spaces, `%` and
/// escapes that look already encoded, control characters, non-ASCII, and `-`, the reserved
/// empty token, on its own).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(odd_piece(), 0..8).prop_map(|v| v.concat()),
        any::<String>(),
    ]
}

fn token() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), any::<u64>()]
}

/// The line's fields, checked to be `n`, the first `event`, and free of line breaks.
fn split(line: &str, event: &str, n: usize) -> Result<Vec<String>, TestCaseError> {
    prop_assert!(!line.contains(['\n', '\r']), "line break in {line:?}");
    let fields: Vec<String> = line.split(' ').map(str::to_string).collect();
    prop_assert_eq!(fields.len(), n, "{:?}", line);
    prop_assert_eq!(&fields[0], event);
    Ok(fields)
}

#[test]
fn lines_round_trip() {
    fuzz(
        "HeldLine and ReleasedLine: Display then FromStr",
        PURE,
        (text(), text(), token()),
        |(name, resource, token)| {
            let held = HeldLine::new(name.clone(), resource, token);
            let line = held.to_string();
            let fields = split(&line, "held", 4)?;
            prop_assert_eq!(&fields[3], &token.to_string());
            prop_assert_eq!(line.parse::<HeldLine>(), Ok(held));

            let released = ReleasedLine::new(name);
            let line = released.to_string();
            split(&line, "released", 2)?;
            prop_assert_eq!(line.parse::<ReleasedLine>(), Ok(released));
            Ok(())
        },
    );
}

/// Lines a reader may meet: arbitrary text, and near misses of real lines (a field dropped or
/// doubled, a broken escape, a signed or overlong token, the reserved `-`).
fn line() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        text(),
        "[a-z%]{0,4}%[0-9A-Fa-fg+-]{0,2}",
        Just("-".to_string()),
        Just("+7".to_string()),
        Just("18446744073709551616".to_string()),
        any::<u64>().prop_map(|t| t.to_string()),
    ];
    let event = prop_oneof![
        Just("held".to_string()),
        Just("released".to_string()),
        text()
    ];
    prop_oneof![
        any::<String>(),
        (event, prop::collection::vec(field, 0..6)).prop_map(|(event, fields)| [
            vec![event],
            fields
        ]
        .concat()
        .join(" ")),
    ]
}

#[test]
fn reading_arbitrary_lines() {
    fuzz(
        "HeldLine and ReleasedLine: FromStr on arbitrary text",
        PURE,
        line(),
        |line| {
            // Whatever a reader accepts it can write back, and that reads the same.
            if let Ok(held) = line.parse::<HeldLine>() {
                let again = held.to_string();
                split(&again, "held", 4)?;
                prop_assert_eq!(again.parse::<HeldLine>(), Ok(held));
            }
            if let Ok(released) = line.parse::<ReleasedLine>() {
                let again = released.to_string();
                split(&again, "released", 2)?;
                prop_assert_eq!(again.parse::<ReleasedLine>(), Ok(released));
            }
            Ok(())
        },
    );
}
