//! `lockhog bench --floor`: the backend's own lock commands on a bare client, no lockhog.
//!
//! What any lock on that protocol must pay, from the same machine and in the same run as
//! lockhog's figures:
//! - `file`: `flock(LOCK_EX|LOCK_NB)` + `flock(LOCK_UN)` on one open descriptor; handoff to a
//!   thread blocked in `flock(LOCK_EX)` on a second descriptor of the same file;
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
//!   mode with `synchronous=FULL` (lockhog's settings), on its own table in the same file.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::report::Report;
use super::stats::Sample;
use super::workloads::{Handoff, Uncontended};
use super::{phases, scheme_of, BenchArgs, Progress};
use crate::exit::{Failure, UNAVAILABLE, USAGE};

/// How long the floor's holder lets a waiter block before releasing.
pub(super) const PARK: Duration = Duration::from_millis(2);

pub(super) const KEY: &str = "lockhog-bench-floor";

pub(super) fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(UNAVAILABLE, format!("bench --floor: {what}: {e}"))
}

pub async fn run(url: &str, args: &BenchArgs, progress: &Progress) -> Result<Report, Failure> {
    let scheme = scheme_of(url);
    let (u_run, h_run, _) = phases(args.duration);
    // Options of lockhog's own (namespace=, ttl=, …) mean nothing to a bare client.
    let bare = url.split_once('?').map_or(url, |(u, _)| u).to_string();
    progress.phase("floor: uncontended cycles, then handoff", u_run + h_run);
    let (commands, uncontended, handoff) = match scheme.as_str() {
        "file" => blocking(move || file(&bare, u_run, h_run)).await?,
        "redis" => blocking(move || redis(&bare, u_run)).await?,
        "memcached" => blocking(move || memcached(&bare, u_run)).await?,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => super::floor_sql::postgres(&bare, u_run, h_run).await?,
        #[cfg(feature = "mysql")]
        "mysql" => super::floor_sql::mysql(&bare, u_run, h_run).await?,
        #[cfg(feature = "sqlite")]
        "sqlite" => blocking(move || super::floor_sql::sqlite(&bare, u_run)).await?,
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
    })
}

pub(super) type Measured = (&'static str, Uncontended, Option<Handoff>);

async fn blocking(
    f: impl FnOnce() -> Result<Measured, Failure> + Send + 'static,
) -> Result<Measured, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| fail("the measuring thread", e))?
}

/// Runs `cycle` back to back for `run` after a short warm-up.
pub(super) fn cycles(
    run: Duration,
    mut cycle: impl FnMut() -> io::Result<()>,
) -> io::Result<Uncontended> {
    for _ in 0..50 {
        cycle()?;
    }
    let mut latencies = Vec::with_capacity(16 * 1024);
    let started = Instant::now();
    while started.elapsed() < run {
        let t = Instant::now();
        cycle()?;
        latencies.push(t.elapsed());
    }
    Ok(Uncontended {
        cycles: latencies.len() as u64,
        elapsed: started.elapsed(),
        cycle: Sample::new(latencies),
    })
}

fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:{default_port}")
    }
}

// ---------------------------------------------------------------------------------------------
// file

fn file(url: &str, u_run: Duration, h_run: Duration) -> Result<Measured, Failure> {
    use std::os::fd::AsRawFd;
    let dir = url.strip_prefix("file://").unwrap_or(url);
    let path = std::path::Path::new(dir).join(format!("{KEY}.lock"));
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| fail(&path.display().to_string(), e))
    };
    let flock = |f: &std::fs::File, op: libc::c_int| {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let (a, b) = (open()?, open()?);
    let uncontended = cycles(u_run, || {
        flock(&a, libc::LOCK_EX | libc::LOCK_NB)?;
        flock(&a, libc::LOCK_UN)
    })
    .map_err(|e| fail("flock", e))?;
    let handoff = thread_handoff(
        h_run,
        || flock(&a, libc::LOCK_EX),
        || flock(&a, libc::LOCK_UN),
        || flock(&b, libc::LOCK_EX),
        || flock(&b, libc::LOCK_UN),
    )
    .map_err(|e| fail("flock", e))?;
    Ok((
        "flock(LOCK_EX|LOCK_NB) + flock(LOCK_UN) on an open fd",
        uncontended,
        Some(handoff),
    ))
}

/// Handoffs between this thread (`lock`/`unlock`) and a waiter thread blocking in `wait`.
fn thread_handoff<W, R>(
    run: Duration,
    mut lock: impl FnMut() -> io::Result<()>,
    mut unlock: impl FnMut() -> io::Result<()>,
    mut wait: W,
    mut release: R,
) -> io::Result<Handoff>
where
    W: FnMut() -> io::Result<()> + Send,
    R: FnMut() -> io::Result<()> + Send,
{
    use std::sync::mpsc;
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel::<io::Result<Instant>>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for () in go_rx {
                let held = wait().map(|()| Instant::now());
                let ok = held.is_ok();
                let _ = held_tx.send(held.and_then(|t| release().map(|()| t)));
                if !ok {
                    return;
                }
            }
        });
        let mut latencies = Vec::new();
        let started = Instant::now();
        while latencies.len() < 20 || started.elapsed() < run {
            lock()?;
            go_tx.send(()).map_err(io::Error::other)?;
            std::thread::sleep(PARK);
            let released = Instant::now();
            unlock()?;
            let held = held_rx.recv().map_err(io::Error::other)??;
            latencies.push(held.saturating_duration_since(released));
        }
        drop(go_tx);
        Ok(Handoff {
            latency: Sample::new(latencies),
            park: PARK,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// redis and memcached: raw protocol on a blocking socket

struct Wire {
    out: TcpStream,
    input: BufReader<TcpStream>,
    line: String,
}

impl Wire {
    fn connect(addr: &str) -> io::Result<Wire> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Wire {
            out: s.try_clone()?,
            input: BufReader::new(s),
            line: String::new(),
        })
    }

    /// Sends `req` and reads one line of answer (without its CRLF).
    fn ask(&mut self, req: &[u8]) -> io::Result<&str> {
        self.out.write_all(req)?;
        self.line.clear();
        if self.input.read_line(&mut self.line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        Ok(self.line.trim_end())
    }

    /// Reads one more line.
    fn more(&mut self) -> io::Result<&str> {
        self.line.clear();
        self.input.read_line(&mut self.line)?;
        Ok(self.line.trim_end())
    }
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

fn expect(got: &str, want: &str) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::other(format!("expected {want:?}, got {got:?}")))
    }
}

const COMPARE_AND_DELETE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

fn redis(url: &str, u_run: Duration) -> Result<Measured, Failure> {
    if url.contains('@') {
        return Err(Failure::new(
            USAGE,
            "bench --floor: the raw Redis floor does not log in; use a URL without a password",
        ));
    }
    let addr = host_port(url, 6379);
    let mut w = Wire::connect(&addr).map_err(|e| fail(&addr, e))?;
    let sha = (|| {
        let len = w.ask(&resp(&["SCRIPT", "LOAD", COMPARE_AND_DELETE]))?;
        if !len.starts_with('$') {
            return Err(io::Error::other(format!("SCRIPT LOAD: {len}")));
        }
        Ok(w.more()?.to_string())
    })()
    .map_err(|e| fail("redis", e))?;
    let mut n = 0u64;
    let uncontended = cycles(u_run, || {
        n += 1;
        let token = format!("floor-{n}");
        expect(
            w.ask(&resp(&["SET", KEY, &token, "NX", "PX", "30000"]))?,
            "+OK",
        )?;
        expect(w.ask(&resp(&["EVALSHA", &sha, "1", KEY, &token]))?, ":1")
    })
    .map_err(|e| fail("redis", e))?;
    Ok((
        "SET key token NX PX 30000 + EVALSHA compare-and-delete (raw RESP, one socket)",
        uncontended,
        None,
    ))
}

fn memcached(url: &str, u_run: Duration) -> Result<Measured, Failure> {
    let addr = host_port(url, 11211);
    let mut w = Wire::connect(&addr).map_err(|e| fail(&addr, e))?;
    let mut n = 0u64;
    let uncontended = cycles(u_run, || {
        n += 1;
        let token = format!("floor-{n}");
        let add = format!("add {KEY} 0 30 {}\r\n{token}\r\n", token.len());
        expect(w.ask(add.as_bytes())?, "STORED")?;
        expect(w.ask(format!("delete {KEY}\r\n").as_bytes())?, "DELETED")
    })
    .map_err(|e| fail("memcached", e))?;
    Ok((
        "add key 0 30 + delete key (raw text protocol, one socket)",
        uncontended,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_from_urls() {
        assert_eq!(host_port("redis://127.0.0.1:6380", 6379), "127.0.0.1:6380");
        assert_eq!(host_port("redis://h/2", 6379), "h:6379");
        assert_eq!(host_port("memcached://u:p@h:1", 11211), "h:1");
    }

    #[test]
    fn resp_frames() {
        assert_eq!(resp(&["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
