//! The command line as clap sees it: subcommands, their options and their help.
//!
//! The surface is a fixed contract (docs/cli.md): other tools and tests
//! drive `lockhog` through it, so options are added, never renamed.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::args::{parse_wait, AcquireArgs, BackendArgs};

/// Locks for shells, cron and tests in any language.
#[derive(Debug, Parser)]
#[command(
    name = "lockhog",
    version,
    about = "Run commands under distributed locks, hold locks for tests, inspect and clean up",
    long_about = None,
    after_help = "The backend is given by -b/--backend, else the LOCKHOG_URL environment variable, \
else file://$XDG_RUNTIME_DIR/lockhog (or file:///tmp/lockhog-$UID).\n\n\
Exit codes: 0 success, 1 lock not acquired, 2 usage error, 69 backend unreachable or refused,\n\
75 run's lock was lost while its command ran (see lockhog run --help).\n\
RUST_LOG=debug turns on logs on stderr."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command while holding a lock, then release it; exit with the command's status
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Take locks and hold them until told on stdin (release / abandon) or until stdin ends
    #[command(after_help = HOLD_EXAMPLES)]
    Hold(HoldArgs),
    /// Show whether locks are held, and by whom when the backend knows
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Remove stale resources nobody holds (unheld lock files, expired rows)
    #[command(after_help = CLEANUP_EXAMPLES)]
    Cleanup(CleanupArgs),
    #[cfg(feature = "bench")]
    /// Measure what a lock costs on a backend: cycles/s, handoff latency, contention, fairness
    #[command(after_help = crate::bench::BENCH_EXAMPLES)]
    Bench(crate::bench::BenchArgs),
    #[cfg(feature = "torture")]
    /// Hammer locks from N worker processes while faults strike, and check the outcome
    #[command(after_help = crate::torture::AFTER_HELP)]
    Torture(crate::torture::TortureArgs),
    #[cfg(feature = "torture")]
    /// One worker of `torture` (started by it, not by people)
    #[command(name = "torture-worker", hide = true)]
    TortureWorker(crate::torture::WorkerArgs),
}

const RUN_EXAMPLES: &str = "\
Examples:
  lockhog run -w 30 nightly-report -- ./report.sh
  lockhog run -n -E 0 backup -- rsync -a /data /backup     # skip quietly when already running
  lockhog run -b file:///tmp/locks deploy -- make deploy
  lockhog run -b postgres://db/app --resource advisory:42 -- ./migrate.sh   # the lock migrate takes
  lockhog run --permits 4 encoders -- ffmpeg -i in.mkv out.mp4  # at most 4 at once

COMMAND runs only while the lock is held:
  - lost lock (lease ran out, connection or key gone): --on-lost term (default) sends COMMAND
    SIGTERM, then SIGKILL after --grace seconds; kill sends SIGKILL at once; warn only warns
    and lets COMMAND finish without the lock;
  - lockhog itself killed (Linux): on file:// (flock mode) COMMAND inherits the locked
    descriptor and keeps the lock until it exits, and gets SIGTERM; on other backends COMMAND
    gets SIGKILL at once, as the lock goes with lockhog's connection or lease. Not with warn.
COMMAND's environment gets LOCKHOG_NAME, LOCKHOG_RESOURCE and LOCKHOG_FENCING_TOKEN (pass the
token to what the lock protects, which refuses a token lower than the highest it has seen).
With --resource on a store that keeps no counter for it, or a backend URL with ?fencing=off
(no token drawn, so nothing downstream can fence), LOCKHOG_FENCING_TOKEN is unset.

Exit status: that of COMMAND (128+N when killed by signal N; 127 not found, 126 not
executable); 75 when the lock was lost while COMMAND ran (not with --on-lost warn, which
exits with COMMAND's status); 1 (or -E CODE) when the lock is not acquired; 2 usage error;
69 backend error. SIGINT and SIGTERM are forwarded to COMMAND; the lock is released after it
exits.";

const HOLD_EXAMPLES: &str = "\
Examples:
  lockhog hold -b file:///tmp/locks payroll
  lockhog hold -n --json payroll ledger
  printf 'abandon\\n' | lockhog hold payroll      # exit without releasing (the crash case)
  lockhog hold -b postgres://db/app --resource advisory:42 --resource advisory:7,99
  lockhog hold --resource /run/app.pid            # flock the pid file the app locks

Prints one line per lock once all are held, `held NAME RESOURCE TOKEN` (with --json, one
JSON object per line), NAME and RESOURCE percent-encoded so that a line has four fields.
Then reads stdin: `release` or end of file releases every lock and prints `released NAME`
per lock; SIGINT and SIGTERM do the same; `abandon` exits at once without releasing.

--resource RES takes the lock another program takes, by the RESOURCE lockhog prints: file:
an absolute path; postgres: advisory:<i64> or advisory:<i32>,<i32>; mysql: the GET_LOCK name;
redis, rediss, redlock, memcached: the key itself; etcd: the prefix of `etcdctl lock`.
Its NAME is RES; its TOKEN is `-` when the store keeps no counter for it. Names are taken
first, then resources, each in the order given.";

const STATUS_EXAMPLES: &str = "\
Examples:
  lockhog status                       # every lock of the namespace
  lockhog status payroll ledger
  lockhog status --json -b file:///tmp/locks
  lockhog status -b mysql://db/app --resource import

Prints `STATE NAME RESOURCE [HOLDER]` per lock, STATE being held, free or unknown, NAME `-`
when the backend cannot recover it; fields percent-encoded (e.g. `pid%204242`).";

const CLEANUP_EXAMPLES: &str = "\
Examples:
  lockhog cleanup
  lockhog cleanup -b file:///tmp/locks

Prints `cleanup: removed N kept M`. Do not run it while flock(1) users wait on the same files.";

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub acquire: AcquireArgs,
    /// Exit status to use when the lock is not acquired
    #[arg(
        short = 'E',
        long = "conflict-exit-code",
        value_name = "CODE",
        default_value_t = 1
    )]
    pub conflict_exit_code: u8,
    /// What to do with COMMAND when the lock is lost while it runs
    #[arg(long = "on-lost", value_name = "POLICY", value_enum, default_value_t = OnLost::Term)]
    pub on_lost: OnLost,
    /// With --on-lost term: seconds from SIGTERM to SIGKILL (fractions allowed)
    #[arg(long = "grace", value_name = "SECS", default_value = "10", value_parser = parse_wait)]
    pub grace: Duration,
    /// The locks' names; with several, every one is held while COMMAND runs (taken all or
    /// none, in an order every caller shares, so two runs naming the same locks in any order
    /// never deadlock)
    #[arg(value_name = "NAME", required_unless_present = "resources")]
    pub names: Vec<String>,
    /// Also hold the resource RES another program locks (repeatable; see hold --help)
    #[arg(long = "resource", value_name = "RES")]
    pub resources: Vec<String>,
    /// The command to run with the lock held, after `--`
    #[arg(value_name = "COMMAND", last = true, required = true, num_args = 1..)]
    pub command: Vec<OsString>,
}

/// `run --on-lost`: what a lost lock means for the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnLost {
    /// SIGTERM, then SIGKILL after --grace; run exits 75
    Term,
    /// SIGKILL at once; run exits 75
    Kill,
    /// Warn and let the command finish without the lock; run exits with its status
    Warn,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub acquire: AcquireArgs,
    /// One JSON object per line instead of the plain format
    #[arg(long)]
    pub json: bool,
    /// The locks to hold, taken in this order
    #[arg(value_name = "NAME", required_unless_present = "resources")]
    pub names: Vec<String>,
    /// Also hold the resource RES another program locks (repeatable; taken after the names)
    #[arg(long = "resource", value_name = "RES")]
    pub resources: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// One JSON object per line instead of the plain format
    #[arg(long)]
    pub json: bool,
    /// The locks to show [default: every lock of the namespace]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Also show the resource RES another program locks (repeatable)
    #[arg(long = "resource", value_name = "RES")]
    pub resources: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_wait_conflicts_with_wait() {
        let e = Cli::try_parse_from(["lockhog", "hold", "-n", "-w", "1", "x"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn run_takes_the_command_after_dashes() {
        let cli = Cli::try_parse_from(["lockhog", "run", "-w", "0.5", "x", "--", "ls", "-l"])
            .expect("parses");
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.acquire.wait, Some(Duration::from_millis(500)));
        assert_eq!(run.command, ["ls", "-l"]);
        assert_eq!(run.on_lost, OnLost::Term);
        assert_eq!(run.grace, Duration::from_secs(10));
        assert!(Cli::try_parse_from(["lockhog", "run", "x", "--"]).is_err());
        assert!(
            Cli::try_parse_from(["lockhog", "run", "--on-lost", "x", "y", "--", "ls"]).is_err()
        );
        assert!(Cli::try_parse_from(["lockhog", "run", "x"]).is_err());
    }
}
