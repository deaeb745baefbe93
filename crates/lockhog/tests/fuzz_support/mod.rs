//! The runner of the property tests ("fuzzing" on stable: cargo-fuzz needs a nightly
//! toolchain): proptest with no failure persistence, and a count of the cases each target ran,
//! printed. Used by lockhog's tests/fuzz_*.rs and, with `#[path]`, by lockhog-cli's
//! tests/fuzz_cli.rs (so it uses nothing but proptest).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::{any, prop_oneof, Just};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases of a target that runs only pure code.
pub const PURE: u32 = 10_000;

/// The configuration of a target of `cases` cases: no failure persistence.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs `test` on `cases` values of `strategy`, then prints the count.
pub fn fuzz<S: Strategy>(
    what: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    fuzz_with(config(cases), what, strategy, test)
}

/// [`fuzz`] with a configuration of its own.
pub fn fuzz_with<S: Strategy>(
    config: Config,
    what: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let ran = AtomicU64::new(0);
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    if let Err(e) = outcome {
        panic!("{what}: {e}");
    }
    eprintln!("fuzz {what}: {} cases", ran.load(Ordering::Relaxed));
}

/// A piece of text a line or a file name must survive: plain characters, a space, `%` and
/// escapes that look already encoded, a control character (NUL, line breaks, DEL…), `\r\n`,
/// a lone `-`, non-ASCII, any character. Concatenate a few for a name.
pub fn odd_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9/._-]{1,8}",
        Just(" ".to_string()),
        Just("%".to_string()),
        "%[0-9A-Fa-f]{2}",
        "[\\x00-\\x1f\\x7f]",
        Just("\r\n".to_string()),
        Just("-".to_string()),
        Just("é€😀".to_string()),
        any::<char>().prop_map(String::from),
    ]
}
