//! Exit statuses and how errors map to them (docs/cli.md, "Exit status", lists them for
//! users).

/// Success.
pub const SUCCESS: u8 = 0;
/// The lock was not acquired (contended with `-n`, or the `-w` bound ran out).
pub const NOT_ACQUIRED: u8 = 1;
/// Bad input: clap's own usage errors use the same status.
pub const USAGE: u8 = 2;
/// The backend could not be reached or refused (sysexits' `EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;
/// `run`: the lock was lost while the command ran, and the command was stopped (`--on-lost
/// term|kill`); sysexits' `EX_TEMPFAIL`, as running again later may succeed.
pub const LOCK_LOST: u8 = 75;
/// The command exists but cannot be executed (as shells report it).
pub const CANNOT_EXECUTE: u8 = 126;
/// The command was not found (as shells report it).
pub const COMMAND_NOT_FOUND: u8 = 127;

/// The status of a process that ends because of signal `signal`: 128+N, as shells report it.
pub fn from_signal(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// The exit status for a library error.
///
/// `lockhog::Error` is `#[non_exhaustive]`: a variant added later counts as a backend failure,
/// the one status that never tells a script "someone else holds it" by mistake.
pub fn code_for(err: &lockhog::Error) -> u8 {
    use lockhog::Error as E;
    match err {
        E::Contended { .. } | E::TimedOut { .. } => NOT_ACQUIRED,
        E::InvalidName { .. } | E::InvalidUrl { .. } | E::InvalidOption { .. } => USAGE,
        E::Backend { .. } => UNAVAILABLE,
        E::LostWhileHeld { .. } => LOCK_LOST,
        _ => UNAVAILABLE,
    }
}

/// Why a subcommand ends unsuccessfully: a status and the message for stderr.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    /// Printed as `lockhog: <message>`; `None` for an exit that needs no words (a signal).
    pub message: Option<String>,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: Some(message.into()),
        }
    }

    /// An exit with `code` and nothing to say.
    pub fn silent(code: u8) -> Self {
        Failure {
            code,
            message: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(USAGE, message)
    }
}

impl From<lockhog::Error> for Failure {
    fn from(err: lockhog::Error) -> Self {
        // Display only, never the source chain: the library redacts its own messages, but a
        // client library's error deeper in the chain might quote a URL.
        Failure::new(code_for(&err), err.to_string())
    }
}

/// What a subcommand returns: the status to exit with on success paths (`run` passes its
/// command's status through), or a failure.
pub type Outcome = Result<u8, Failure>;

/// Prints a failure's message and turns an outcome into the process's exit status.
pub fn finish(outcome: Outcome) -> u8 {
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            if let Some(message) = &failure.message {
                eprintln!("lockhog: {message}");
            }
            failure.code
        }
    }
}

/// A warning on stderr, in the same voice as errors.
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("lockhog: warning: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn errors_map_to_the_contract() {
        use lockhog::Error as E;
        assert_eq!(code_for(&E::Contended { name: "x".into() }), 1);
        let timed_out = E::TimedOut {
            name: "x".into(),
            waited: Duration::ZERO,
            attempts: 1,
        };
        assert_eq!(code_for(&timed_out), 1);
        assert_eq!(code_for(&E::InvalidName { reason: "".into() }), 2);
        let url = E::InvalidUrl {
            url: "".into(),
            reason: "".into(),
        };
        assert_eq!(code_for(&url), 2);
        assert_eq!(code_for(&E::InvalidOption { reason: "".into() }), 2);
        assert_eq!(code_for(&E::backend("file", "boom")), 69);
    }

    #[test]
    fn signals_map_like_shells() {
        assert_eq!(from_signal(libc::SIGTERM), 143);
        assert_eq!(from_signal(libc::SIGINT), 130);
    }
}
