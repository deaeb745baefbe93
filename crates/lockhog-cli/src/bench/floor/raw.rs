//! The floors without a client library: `flock(2)` on a file, and Redis's and memcached's
//! protocols written and read raw on one blocking socket.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::measure::{cycles, fail, thread_handoff, Measured, KEY};
use crate::bench::workloads::Uncontended;
use crate::exit::{Failure, USAGE};

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

pub fn file(url: &str, u_run: Duration, h_run: Duration) -> Result<Measured, Failure> {
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

/// What the named-lock floor of `file` runs per cycle.
pub const FILE_NAMED: &str =
    "open(O_RDWR|O_CREAT) + flock(LOCK_EX|LOCK_NB) + flock(LOCK_UN) + close, by name";

/// The named-lock floor of `file`: what taking a lock by its name must do at least once (open
/// the file, creating it if missing; lock; unlock; close), back to back on one name.
pub fn file_named(url: &str, run: Duration) -> Result<Uncontended, Failure> {
    use std::os::unix::ffi::OsStrExt;
    let dir = url.strip_prefix("file://").unwrap_or(url);
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let path = std::path::Path::new(dir).join(format!("{KEY}-named.lock"));
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| fail(&path.display().to_string(), e))?;
    let check = |r: libc::c_int| {
        if r >= 0 {
            Ok(r)
        } else {
            Err(io::Error::last_os_error())
        }
    };
    cycles(run, || {
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC;
        // SAFETY: a NUL-terminated path; the descriptor is closed below on every path.
        let fd = check(unsafe { libc::open(c_path.as_ptr(), flags, 0o600) })?;
        // SAFETY: flock and close on the descriptor just opened.
        let locked = check(unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) })
            .and_then(|_| check(unsafe { libc::flock(fd, libc::LOCK_UN) }));
        check(unsafe { libc::close(fd) })?;
        locked.map(drop)
    })
    .map_err(|e| fail("open + flock", e))
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

pub fn redis(url: &str, u_run: Duration) -> Result<Measured, Failure> {
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

pub fn memcached(url: &str, u_run: Duration) -> Result<Measured, Failure> {
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
