//! The `lockhog` command as a library: [`main_from`] runs it on given arguments, for the
//! binary (src/main.rs) and for programs that embed the command, such as the Python wheel's
//! `python -m lockhog`.
//!
//! The command line is a fixed contract (docs/cli.md); each
//! subcommand lives in its own module, exit statuses in `exit`, printed lines in `output`.

mod args;
#[cfg(feature = "bench")]
mod bench;
mod cleanup;
mod cli;
mod exit;
mod hold;
mod lock;
mod output;
mod run;
mod status;
#[cfg(feature = "torture")]
mod torture;

use std::ffi::OsString;
use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

/// Runs the `lockhog` command on `args` (the program's name first, as in
/// `std::env::args_os`) and returns the status to exit with.
///
/// It runs as the binary does, in the calling process: it installs handlers for SIGINT and
/// SIGTERM (which then no longer end the process), reads stdin for `hold`, and `hold`'s
/// `abandon` ends the process at once. Call it on the main thread: `run` ties its command's
/// life to the thread that started it.
pub fn main_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // Usage errors exit 2 and --help/--version exit 0, as clap does by default.
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(exit::USAGE);
        }
    };
    init_logging();
    // A current-thread runtime: the command does one thing at a time (acquire, then wait on a
    // child, stdin or a signal), blocking waits happen off this thread (the file backend's
    // helper thread, tokio's blocking pool for stdin), and one thread keeps the process small
    // and its behaviour easy to follow. Background work of a held lock (lease renewal) runs
    // whenever we await, which is all the time we hold one.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lockhog: cannot start the async runtime: {e}");
            return exit::UNAVAILABLE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Hold(args) => hold::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Cleanup(args) => cleanup::run(args).await,
            #[cfg(feature = "torture")]
            Command::Torture(args) => torture::run(args).await,
            #[cfg(feature = "torture")]
            Command::TortureWorker(args) => torture::worker::run(args).await,
            #[cfg(feature = "bench")]
            Command::Bench(args) => bench::run(args).await,
        }
    });
    // Do not wait for tokio's blocking pool: a read of stdin parked there can never be called
    // off, and would keep us from exiting after `hold` was ended by a signal.
    runtime.shutdown_background();
    exit::finish(outcome)
}

/// Logs to stderr when `RUST_LOG` asks for them (e.g. `RUST_LOG=debug`, `RUST_LOG=lockhog=trace`);
/// none otherwise, so stderr carries only `lockhog:` messages.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
