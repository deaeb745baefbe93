//! `lockhog`: run commands under locks, hold locks for tests, inspect and clean up (the
//! command itself is the library's `main_from`).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(lockhog_cli::main_from(std::env::args_os()))
}
