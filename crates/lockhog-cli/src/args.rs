//! The options several subcommands share, flattened into each: where the locks live (`-b`),
//! how long to wait for them and lease them (`-n`, `-w`, `--ttl`), whether NAME is a
//! counting semaphore (`--permits`), and whether the locks are taken shared (`--shared`).

use std::time::Duration;

use clap::Args;

/// Where the locks live.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Backend URL, e.g. file:///tmp/locks, postgres://host/db [default: $LOCKHOG_URL, else
    /// file://$XDG_RUNTIME_DIR/lockhog]
    // Not clap's `env`: its help would print the variable's value, password included.
    #[arg(short = 'b', long = "backend", value_name = "URL")]
    pub url: Option<String>,
}

/// How long to wait for a lock, and the lease.
#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// Try once; do not wait when the lock is held
    #[arg(short = 'n', long = "no-wait", conflicts_with = "wait")]
    pub no_wait: bool,
    /// Wait at most SECS seconds (fractions allowed) [default: wait forever]
    #[arg(short = 'w', long = "wait", value_name = "SECS", value_parser = parse_wait)]
    pub wait: Option<Duration>,
    /// Lease time to live on backends with leases (renewed while held)
    #[arg(long = "ttl", value_name = "SECS", value_parser = parse_ttl)]
    pub ttl: Option<Duration>,
    /// NAME is a counting semaphore of N permits: take one permit, so that at most N holders
    /// run at once (every user of NAME must give the same N)
    #[arg(long = "permits", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub permits: Option<u32>,
    /// Take every lock of the call shared (a reader lock): any number of shared holders at
    /// once, none beside an exclusive one. Refused (exit 2) on backends without shared locks
    #[arg(long = "shared", conflicts_with = "permits")]
    pub shared: bool,
}

/// `-w SECS`, `--grace SECS`: seconds, fractions allowed, zero included.
pub fn parse_wait(text: &str) -> Result<Duration, String> {
    lockhog::url::parse_duration(text).map_err(|e| e.to_string())
}

/// `--ttl SECS`: as [`parse_wait`], but above zero.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    match lockhog::url::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a lease ttl must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}
