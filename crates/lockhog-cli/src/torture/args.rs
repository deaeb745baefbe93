//! The options of `lockhog torture` and of the hidden `torture-worker` it starts, and the
//! text `torture --help` prints after them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::journal::FaultKind;
use crate::args::BackendArgs;

/// `--help` text after the options: what is printed, what the exit status means.
pub const AFTER_HELP: &str = "\
Examples:
  lockhog torture -b file:///tmp/locks --clients 8 --duration 10 --faults kill,pause
  lockhog torture -b \"$LOCKHOG_TEST_REDIS_URL\" --clients 8 --duration 30 --faults kill,pause,restart,cut

N worker processes (this binary) loop acquire -> critical section -> release on the locks
torture-<run>-0 .. torture-<run>-<M-1>, where <run> is new for every run (so runs on one server
at once do not meet). The harness stamps every grant (`enter`), write and section end
on its own monotonic clock (CLOCK_MONOTONIC) as it handles the worker's message; a worker
waits for the answer to `enter` before its section starts and to `exit` before it releases,
so every stamped section lies inside a real hold. Each section writes twice to a fenced
resource in the harness, which refuses a token older than the newest it accepted.

Faults (one at a time, every 0.4-1.2 s):
  kill     SIGKILL the next worker granted a lock (inside its section); start another
  pause    SIGSTOP the next worker granted a lock for --pause (past its lease), then SIGCONT
  restart  run --restart-command (else $LOCKHOG_TORTURE_RESTART, else LOCKHOG_TEST_X_RESTART
           when LOCKHOG_TEST_X_URL is this URL); without one the fault is unavailable: exit 2
  cut      workers reach the server through a 127.0.0.1 proxy that closes both sides of
           every connection (loopback servers only)
  kill-run every section runs as the command of `lockhog run` (which ignores SIGTERM);
           SIGKILL the `run` of the next command granted a lock. On file (flock) the command
           keeps the inherited lock and finishes its section; elsewhere it is SIGKILLed with
           its `run` (on lease backends the lease outlives it). Either way no other section
           may enter while it runs: violations=0 on every backend

The checker counts: violations (sections into which another section of the same lock
entered, each counted once; a killed holder's section ends at the kill), token_regressions
(grants whose token is not above every earlier grant's of the lock), fenced_rejections
(writes the fence refused). A violation is `lost` when the intruded holder's release said the
lock was no longer its own (a lease ran out under a paused holder, a connection was cut),
`held` otherwise (a killed holder never said so), and `unfenced` when a write of the intruded
holder was accepted after a newer holder's write: a stale write the fence let through.

--permits N makes each lock a semaphore of N permits (on backends with semaphores; not with
kill-run). Each permit is checked as a lock (its sections are journaled as lock S*N+slot),
and a further line counts the holders of each semaphore at once:
  torture: permits=N max_holders=H over_admissions=O held=D
where an over-admission is a section entering while N others were inside, held when none of
those N had lost its permit. It fails the run when held, and on file, postgres and mysql
(without cut or restart) at all.

Exit status 0 when the backend kept its promise:
  - every backend: token_regressions=0, no unfenced overlap, no held overlap;
  - file, postgres, mysql (the lock dies with its holder's fd or connection): violations=0
    under kill and pause. With cut or restart a living holder can lose its connection, and
    the lock, inside its section: those overlaps are judged as on lease backends;
  - lease backends (redis, redlock, memcached, etcd, sqlite): a pause past the lease lets a
    new holder in while the paused one is inside its section. That overlap is counted in
    violations and is expected; fencing is the defence, and it fails only when unfenced.
Exit 1 otherwise (the reasons go to stderr), 2 usage (an unavailable fault included), 69
backend unreachable. The last line on stdout is always
  torture: sections=S violations=V token_regressions=T fenced_rejections=R faults=F";

/// `lockhog torture`'s options.
#[derive(Debug, Args)]
pub struct TortureArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Worker processes
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// How long to run, in seconds (fractions allowed)
    #[arg(long, value_name = "SECS", value_parser = parse_positive)]
    pub duration: Duration,
    /// Faults to inject, comma separated
    #[arg(long, value_name = "FAULTS", value_delimiter = ',')]
    pub faults: Vec<FaultKind>,
    /// How many locks the workers share
    #[arg(long, value_name = "M", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub locks: u32,
    /// Lease ttl on lease backends
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_positive)]
    pub ttl: Duration,
    /// How long `pause` stops a holder [default: twice the ttl plus one second]
    #[arg(long, value_name = "SECS", value_parser = parse_positive)]
    pub pause: Option<Duration>,
    /// Shell command that restarts the server and returns once it answers
    #[arg(long, value_name = "COMMAND")]
    pub restart_command: Option<String>,
    /// Each lock is a semaphore of N permits: workers take a permit, and the checker counts
    /// the holders of each semaphore at once (at most N)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub permits: Option<u32>,
}

fn parse_positive(text: &str) -> Result<Duration, String> {
    match lockhog::url::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// The hidden worker subcommand's arguments (set by the harness, not by people).
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The harness's Unix socket
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// This worker's id in the journal
    #[arg(long, value_name = "ID")]
    pub id: u32,
    /// How many locks to pick from
    #[arg(long, value_name = "M")]
    pub locks: u32,
    /// The locks' names are `<PREFIX>-<lock>`
    #[arg(long, value_name = "PREFIX")]
    pub names: String,
    /// The lease ttl in milliseconds
    #[arg(long, value_name = "MS")]
    pub ttl_ms: u64,
    /// Run each section as the command of `lockhog run` (the kill-run fault)
    #[arg(long)]
    pub via_run: bool,
    /// Be that command: one section of lock L, under the lock `lockhog run` holds
    #[arg(long, value_name = "L")]
    pub section: Option<u32>,
    /// Take a permit of a semaphore of N permits instead of a lock
    #[arg(long, value_name = "N")]
    pub permits: Option<u32>,
}
