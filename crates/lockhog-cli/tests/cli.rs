//! The `lockhog` binary against the command-line contract (docs/cli.md), on the file backend.
//!
//! No test sleeps to wait for a state: every wait is on a line, a pipe or a process exit, and
//! every wait is bounded by `support::TIMEOUT`, failing the test with a message when it runs out.

mod support;

#[path = "cli/hold.rs"]
mod hold;
#[path = "cli/input.rs"]
mod input;
#[path = "cli/run.rs"]
mod run;
#[path = "cli/status.rs"]
mod status;
