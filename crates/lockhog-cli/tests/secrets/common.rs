//! What both halves of the secrets tests share: running the CLI, searching its output, and
//! raw Redis and memcached clients that do not trust lockhog.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::tls_support;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);
/// Passwords that occur nowhere else: a hit can only be a leak.
pub(crate) const GOOD_PW: &str = "Gq7xZ2kWv9Lp-good";
pub(crate) const WRONG_PW: &str = "Rt5mN8bYc3Hs-wrong";

/// A random password with every character a URL parser trips on: `@` (then `#`, so what follows
/// cannot pass for a host), `#`, `/`, `?`, `:`, `=`, a space and `%`.
pub(crate) fn odd_password(tag: &str) -> String {
    format!("Od{}@#x/y?z=1 :%w-{tag}", tls_support::random_hex())
}

/// How a password is written in the URL: raw, only `%` percent-encoded (`%25`).
pub(crate) fn in_url(password: &str) -> String {
    password.replace('%', "%25")
}

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockhog")
}

/// A finished `lockhog` run: exit code and every byte it wrote.
pub(crate) struct Ran {
    pub(crate) what: String,
    pub(crate) code: i32,
    pub(crate) out: Vec<u8>,
    pub(crate) err: Vec<u8>,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited {}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.code,
            String::from_utf8_lossy(&self.out),
            String::from_utf8_lossy(&self.err)
        )
    }
}

/// Runs `lockhog ARGS…` with `RUST_LOG=trace`, `stdin` fed to it, both outputs in files (no pipe
/// can fill up), bounded by [`TIMEOUT`].
pub(crate) fn lockhog(dir: &Path, args: &[&str], env_url: Option<&str>, stdin: &[u8]) -> Ran {
    let what = format!("lockhog {}", args.join(" "));
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (out_path, err_path) = (dir.join(format!("{n}.out")), dir.join(format!("{n}.err")));
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("RUST_LOG", "trace")
        .env_remove("LOCKHOG_URL")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    if let Some(url) = env_url {
        cmd.env("LOCKHOG_URL", url);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(TIMEOUT) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child, not yet reaped (the waiter is blocked).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what} did not exit within {TIMEOUT:?}");
        }
    };
    Ran {
        code: status
            .code()
            .unwrap_or_else(|| panic!("{what} was killed: {status:?}")),
        out: std::fs::read(out_path).unwrap(),
        err: std::fs::read(err_path).unwrap(),
        what,
    }
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Fails when `secret` (raw, percent-encoded or upper-cased) appears anywhere in what `ran`
/// wrote.
#[track_caller]
pub(crate) fn assert_no_secret(ran: &Ran, secret: &str) {
    let encoded = lockhog::url::percent_encode(secret, |b| b.is_ascii_alphanumeric());
    let unreserved = lockhog::url::percent_encode(secret, |b| {
        b.is_ascii_alphanumeric() || b"-._~".contains(&b)
    });
    for form in [
        secret.to_string(),
        encoded,
        unreserved,
        in_url(secret),
        secret.to_ascii_uppercase(),
        secret.to_ascii_lowercase(),
    ] {
        for (stream, bytes) in [("stdout", &ran.out), ("stderr", &ran.err)] {
            assert!(
                !contains(bytes, form.as_bytes()),
                "the password {form:?} is in {stream}: {ran:?}"
            );
        }
    }
}

/// [`good_and_wrong`] for `user` on `url` with passwords made by [`odd_password`]: `set` gives
/// the user the right one first.
pub(crate) fn odd_good_and_wrong(
    backend: &str,
    url: &str,
    user: &str,
    set: impl FnOnce(&str),
) -> usize {
    let (good, wrong) = (odd_password("good"), odd_password("wrong"));
    set(&good);
    let good_url = with_credentials(url, user, &in_url(&good));
    let wrong_url = with_credentials(url, user, &in_url(&wrong));
    good_and_wrong(
        &format!("{backend}-odd"),
        (&good_url, &good),
        (&wrong_url, &wrong),
    )
}

/// [`every_command`] with the right credentials (`good`: URL and password), then the wrong
/// ones; the labels are `{backend}-good` and `{backend}-wrong`.
pub(crate) fn good_and_wrong(backend: &str, good: (&str, &str), wrong: (&str, &str)) -> usize {
    every_command(&format!("{backend}-good"), good.0, good.1, true)
        + every_command(&format!("{backend}-wrong"), wrong.0, wrong.1, false)
}

/// `hold`, `run`, `status` (named and all) and `cleanup` against `url` (by `-b` and by
/// `LOCKHOG_URL`); `ok`: the credentials are good, so everything must succeed, else every
/// command must fail with 69 (refused). Returns how many runs were searched.
pub(crate) fn every_command(label: &str, url: &str, secret: &str, ok: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("secrets-{label}-{}", std::process::id());
    let runs: Vec<(Vec<&str>, &[u8])> = vec![
        (vec!["hold", "-w", "10", &name], b"release\n"),
        (vec!["run", "-w", "10", &name, "--", "true"], b""),
        (vec!["status", &name], b""),
        (vec!["status", "--json"], b""),
        (vec!["cleanup"], b""),
        (vec!["hold", "--json", "-n", &name], b"release\n"),
    ];
    let mut searched = 0;
    for (args, stdin) in &runs {
        let mut with_b = vec![args[0], "-b", url];
        with_b.extend_from_slice(&args[1..]);
        for ran in [
            lockhog(dir.path(), &with_b, None, stdin),
            lockhog(dir.path(), args, Some(url), stdin),
        ] {
            assert_no_secret(&ran, secret);
            let want = if ok { 0 } else { 69 };
            assert_eq!(ran.code, want, "{label}: {ran:?}");
            if ok {
                // The trace logs really ran: the search covered them.
                assert!(!ran.err.is_empty(), "{label}: no logs at all: {ran:?}");
            }
            searched += 1;
        }
    }
    searched
}

/// `scheme://host…` → `scheme://user:password@host…` (the URL must carry no credentials yet,
/// or carry the ones to replace).
pub(crate) fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme://");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{scheme}://{user}:{password}@{rest}")
}

/// host:port of the first server in `url`.
pub(crate) fn first_host(url: &str) -> String {
    let rest = url.split_once("://").expect("scheme://").1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    rest.split([',', '/', '?']).next().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Raw Redis (RESP over TCP) and memcached (text protocol), so the checks do not trust lockhog.

pub(crate) fn redis_cmd(addr: &str, args: &[&[u8]]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("redis {addr}: {e}"));
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    s.write_all(&req).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // One reply of the simple kinds used here (+OK, :N, $N…, -ERR) fits one line or two.
    loop {
        let n = s.read(&mut buf).unwrap();
        reply.extend_from_slice(&buf[..n]);
        let complete = match reply.first() {
            Some(b'$') if !reply.starts_with(b"$-1") => {
                reply.iter().filter(|&&b| b == b'\n').count() >= 2
            }
            Some(_) => reply.ends_with(b"\r\n"),
            None => false,
        };
        if n == 0 || complete {
            return reply;
        }
    }
}

pub(crate) fn memcached_cmd(addr: &str, line: &[u8], end: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("memcached {addr}: {e}"));
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(line).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.ends_with(end) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "memcached closed the connection");
        reply.extend_from_slice(&buf[..n]);
    }
    reply
}
