//! `lockhog bench --floor`: the backend's own lock commands on a bare client, no lockhog.
//!
//! What any lock on that protocol must pay, from the same machine and in the same run as
//! lockhog's figures:
//! - `file`: `flock(LOCK_EX|LOCK_NB)` + `flock(LOCK_UN)` on one open descriptor; handoff to a
//!   thread blocked in `flock(LOCK_EX)` on a second descriptor of the same file. Beside it,
//!   the *named-lock* floor: `open(O_CREAT)` + `flock` + unlock + `close` of the file by its
//!   path, what a lock taken by name must do at least once (reported as `named_floor_*`);
//! - `redis`: `SET key token NX PX 30000` + `EVALSHA` of a compare-and-delete script, written
//!   and read as raw RESP on one blocking socket (what `redis-benchmark` does; no client
//!   library);
//! - `memcached`: `add` + `delete`, raw text protocol on one blocking socket;
//! - `postgres`: prepared `SELECT pg_advisory_lock($1)` + `SELECT pg_advisory_unlock($1)` on
//!   one tokio-postgres connection (the SQL of `pgbench -M prepared`, which scripts/bench runs
//!   too); handoff to a second session blocked in `pg_advisory_lock`;
//! - `mysql`: prepared `SELECT GET_LOCK(?, 0)` + `SELECT RELEASE_LOCK(?)` on one mysql_async
//!   connection; handoff to a second one blocked in `GET_LOCK(?, 30)`;
//! - `sqlite`: `BEGIN IMMEDIATE; INSERT` a row; `COMMIT`, then `DELETE` it by owner, in WAL
//!   mode with `synchronous=FULL` (lockhog's settings), on its own table in the same file;
//! - `etcd`: what etcd's own concurrency mutex sends on a bare etcd client: one lease per
//!   session, then per lock a transaction that puts `<prefix>/<lease>` and reads the queue's
//!   head, and a delete; handoff to a second session watching the holder's key.

#[cfg(feature = "etcd")]
mod etcd;
mod measure;
mod raw;
mod sql;

use super::plan::{phases, scheme_of, BenchArgs, Progress};
use super::report::Report;
use crate::exit::{Failure, USAGE};
use measure::{fail, Measured};

/// Measures the floor of `url`'s backend.
pub async fn run(url: &str, args: &BenchArgs, progress: &Progress) -> Result<Report, Failure> {
    let scheme = scheme_of(url);
    let (u_run, h_run, _) = phases(args.duration);
    // Options of lockhog's own (namespace=, ttl=, …) mean nothing to a bare client.
    let bare = url.split_once('?').map_or(url, |(u, _)| u).to_string();
    progress.phase("floor: uncontended cycles, then handoff", u_run + h_run);
    let named = match scheme.as_str() {
        "file" => {
            let bare = bare.clone();
            let named = tokio::task::spawn_blocking(move || raw::file_named(&bare, u_run))
                .await
                .map_err(|e| fail("the measuring thread", e))??;
            Some((raw::FILE_NAMED, named))
        }
        _ => None,
    };
    let (commands, uncontended, handoff) = match scheme.as_str() {
        "file" => blocking(move || raw::file(&bare, u_run, h_run)).await?,
        "redis" => blocking(move || raw::redis(&bare, u_run)).await?,
        "memcached" => blocking(move || raw::memcached(&bare, u_run)).await?,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => sql::postgres(&bare, u_run, h_run).await?,
        #[cfg(feature = "mysql")]
        "mysql" => sql::mysql(&bare, u_run, h_run).await?,
        #[cfg(feature = "etcd")]
        "etcd" => etcd::etcd(&bare, u_run, h_run).await?,
        #[cfg(feature = "sqlite")]
        "sqlite" => blocking(move || sql::sqlite(&bare, u_run)).await?,
        other => {
            return Err(Failure::new(
                USAGE,
                format!("bench --floor: no floor for {other:?} URLs in this build"),
            ))
        }
    };
    Ok(Report {
        mode: "floor",
        backend: lockhog::url::redact(url),
        scheme,
        duration: args.duration,
        clients: 1,
        locks: 1,
        commands: Some(commands.to_string()),
        uncontended: Some(uncontended),
        handoff,
        contended: None,
        semaphore: None,
        named_floor: named,
    })
}

/// Runs a floor that blocks on its own thread, off the runtime.
async fn blocking(
    f: impl FnOnce() -> Result<Measured, Failure> + Send + 'static,
) -> Result<Measured, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| fail("the measuring thread", e))?
}
