//! Security of passwords and lock names, through the CLI (SECURITY.md has the promises):
//!
//! - passwords in backend URLs never reach stdout or stderr: `hold`, `run`, `status` and
//!   `cleanup` with `RUST_LOG=trace`, against every server backend, with a wrong password and,
//!   where the test servers have password-protected users, a correct one (a user made here with
//!   a distinctive password: the scripts' `lockhog:lockhog` would match the program's own
//!   name); every byte of both streams is searched, raw and percent-encoded;
//! - lock names reach SQL, Lua, memcached's text protocol and the shell only as data: locks
//!   named like injections are taken on every server backend, and the server state is checked
//!   intact afterwards (the fencing sequence or table, keys set before, a lock held meanwhile by
//!   another process, no file created by a `$(touch …)` name).
//!
//! Servers come from `LOCKHOG_TEST_*_URL` (scripts/test): unset, a case is skipped with a
//! printed reason, or fails under `CI=true`. etcd's shared cluster has no auth, so the right
//! password is tried on an etcd of this test's own (TLS only, client certificates, auth on:
//! lockhog's tests/tls_support), which needs `etcd` and `openssl` the same way.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lockhog::testkit::Target;
use lockhog::{LockState, Locker};

// lockhog's own TLS test support (certificates by openssl, a TLS-only etcd), shared rather
// than copied so both crates test against the same server setup.
#[path = "../../lockhog/tests/tls_support/mod.rs"]
mod tls_support;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Passwords that occur nowhere else: a hit can only be a leak.
const GOOD_PW: &str = "Gq7xZ2kWv9Lp-good";
const WRONG_PW: &str = "Rt5mN8bYc3Hs-wrong";

/// A random password with every character a URL parser trips on: `@` (then `#`, so what follows
/// cannot pass for a host), `#`, `/`, `?`, `:`, `=`, a space and `%`.
fn odd_password(tag: &str) -> String {
    format!("Od{}@#x/y?z=1 :%w-{tag}", tls_support::random_hex())
}

/// How a password is written in the URL: raw, only `%` percent-encoded (`%25`).
fn in_url(password: &str) -> String {
    password.replace('%', "%25")
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockhog")
}

/// A finished `lockhog` run: exit code and every byte it wrote.
struct Ran {
    what: String,
    code: i32,
    out: Vec<u8>,
    err: Vec<u8>,
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
fn lockhog(dir: &Path, args: &[&str], env_url: Option<&str>, stdin: &[u8]) -> Ran {
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

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Fails when `secret` (raw, percent-encoded or upper-cased) appears anywhere in what `ran`
/// wrote.
#[track_caller]
fn assert_no_secret(ran: &Ran, secret: &str) {
    let encoded = lockhog::percent_encode(secret, |b| b.is_ascii_alphanumeric());
    let unreserved = lockhog::percent_encode(secret, |b| {
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
fn odd_good_and_wrong(backend: &str, url: &str, user: &str, set: impl FnOnce(&str)) -> usize {
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
fn good_and_wrong(backend: &str, good: (&str, &str), wrong: (&str, &str)) -> usize {
    every_command(&format!("{backend}-good"), good.0, good.1, true)
        + every_command(&format!("{backend}-wrong"), wrong.0, wrong.1, false)
}

/// `hold`, `run`, `status` (named and all) and `cleanup` against `url` (by `-b` and by
/// `LOCKHOG_URL`); `ok`: the credentials are good, so everything must succeed, else every
/// command must fail with 69 (refused). Returns how many runs were searched.
fn every_command(label: &str, url: &str, secret: &str, ok: bool) -> usize {
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
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme://");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{scheme}://{user}:{password}@{rest}")
}

/// host:port of the first server in `url`.
fn first_host(url: &str) -> String {
    let rest = url.split_once("://").expect("scheme://").1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    rest.split([',', '/', '?']).next().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Raw Redis (RESP over TCP) and memcached (text protocol), so the checks do not trust lockhog.

fn redis_cmd(addr: &str, args: &[&[u8]]) -> Vec<u8> {
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

fn memcached_cmd(addr: &str, line: &[u8], end: &[u8]) -> Vec<u8> {
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

// ---------------------------------------------------------------------------------------------
// (a) passwords

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_POSTGRES_URL");
    let Some(url) = target.url() else { return };
    // A role with a password found nowhere else (SUPERUSER like the scripts' lockhog role, so
    // it may use the fencing sequence that role created).
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect as the scripts' role");
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lockhog_secrets') THEN
                 CREATE ROLE lockhog_secrets LOGIN SUPERUSER PASSWORD '{GOOD_PW}';
               END IF;
             END $$;
             ALTER ROLE lockhog_secrets PASSWORD '{GOOD_PW}'"
        ))
        .await
        .expect("create the role");
    let good = with_credentials(url, "lockhog_secrets", GOOD_PW);
    let wrong = with_credentials(url, "lockhog_secrets", WRONG_PW);
    let url = url.to_string();
    let handle = tokio::runtime::Handle::current();
    let n = tokio::task::spawn_blocking(move || {
        good_and_wrong("postgres", (&good, GOOD_PW), (&wrong, WRONG_PW))
            + odd_good_and_wrong("postgres", &url, "lockhog_secrets", |pw| {
                handle
                    .block_on(
                        client
                            .batch_execute(&format!("ALTER ROLE lockhog_secrets PASSWORD '{pw}'")),
                    )
                    .expect("set the odd password")
            })
    })
    .await
    .unwrap();
    eprintln!("postgres: {n} runs searched, no password found");
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_passwords_never_printed() {
    use mysql_async::prelude::Queryable;
    let target = Target::from_env("LOCKHOG_TEST_MYSQL_URL");
    let Some(url) = target.url() else { return };
    let mut conn = mysql_async::Conn::from_url(url)
        .await
        .expect("connect as the scripts' user");
    for host in ["127.0.0.1", "localhost"] {
        conn.query_drop(format!(
            "CREATE USER IF NOT EXISTS 'lockhog_secrets'@'{host}' IDENTIFIED BY '{GOOD_PW}'"
        ))
        .await
        .expect("create the user");
        conn.query_drop(format!(
            "ALTER USER 'lockhog_secrets'@'{host}' IDENTIFIED BY '{GOOD_PW}'"
        ))
        .await
        .expect("reset the password");
        // The scripts' user has ALL on *.* but not GRANT OPTION, so GRANT is refused; on
        // MariaDB its privileges can still be copied through the grant table it may write.
        let granted = conn
            .query_drop(format!("GRANT ALL ON *.* TO 'lockhog_secrets'@'{host}'"))
            .await;
        if granted.is_err() {
            conn.query_drop(format!(
                "UPDATE mysql.global_priv g, mysql.global_priv l \
                 SET g.Priv = JSON_SET(g.Priv, '$.access', \
                                       CAST(JSON_VALUE(l.Priv, '$.access') AS UNSIGNED)) \
                 WHERE g.User = 'lockhog_secrets' AND g.Host = '{host}' \
                   AND l.User = 'lockhog' AND l.Host = '{host}'"
            ))
            .await
            .expect("copy the privileges of the scripts' user");
        }
    }
    conn.query_drop("FLUSH PRIVILEGES").await.expect("flush");
    let good = with_credentials(url, "lockhog_secrets", GOOD_PW);
    let wrong = with_credentials(url, "lockhog_secrets", WRONG_PW);
    let url = url.to_string();
    let handle = tokio::runtime::Handle::current();
    let (n, conn) = tokio::task::spawn_blocking(move || {
        let mut n = good_and_wrong("mysql", (&good, GOOD_PW), (&wrong, WRONG_PW));
        n += odd_good_and_wrong("mysql", &url, "lockhog_secrets", |pw| {
            for host in ["127.0.0.1", "localhost"] {
                handle
                    .block_on(conn.query_drop(format!(
                        "ALTER USER 'lockhog_secrets'@'{host}' IDENTIFIED BY '{pw}'"
                    )))
                    .expect("set the odd password");
            }
        });
        (n, conn)
    })
    .await
    .unwrap();
    conn.disconnect().await.unwrap();
    eprintln!("mysql: {n} runs searched, no password found");
}

/// An ACL user with `password` on the Redis server at `addr`, allowed everything.
fn redis_acl_user(addr: &str, user: &str, password: &str) {
    let pw = format!(">{password}");
    let reply = redis_cmd(
        addr,
        &[
            b"ACL",
            b"SETUSER",
            user.as_bytes(),
            b"on",
            pw.as_bytes(),
            b"~*",
            b"&*",
            b"+@all",
        ],
    );
    assert_eq!(reply, b"+OK\r\n", "{}", String::from_utf8_lossy(&reply));
}

#[cfg(feature = "redis")]
#[test]
fn redis_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_REDIS_URL");
    let Some(url) = target.url() else { return };
    redis_acl_user(&first_host(url), "lockhog_secrets", GOOD_PW);
    let good = with_credentials(url, "lockhog_secrets", GOOD_PW);
    let wrong = with_credentials(url, "lockhog_secrets", WRONG_PW);
    let mut n = good_and_wrong("redis", (&good, GOOD_PW), (&wrong, WRONG_PW));
    let host = first_host(url);
    n += odd_good_and_wrong("redis", url, "lockhog_secrets", |pw| {
        redis_acl_user(&host, "lockhog_secrets", pw)
    });
    // The default user with a password, which this server does not require: refused too.
    n += every_command(
        "redis-wrong-default",
        &with_credentials(url, "", WRONG_PW),
        WRONG_PW,
        false,
    );
    eprintln!("redis: {n} runs searched, no password found");
}

#[cfg(feature = "redis")]
#[test]
fn redlock_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_REDLOCK_URL");
    let Some(url) = target.url() else { return };
    let nodes = url.split_once("://").unwrap().1;
    for node in nodes.split([',', '/', '?']).filter(|n| n.contains(':')) {
        redis_acl_user(node, "lockhog_secrets", GOOD_PW);
    }
    let good = with_credentials(url, "lockhog_secrets", GOOD_PW);
    let wrong = with_credentials(url, "lockhog_secrets", WRONG_PW);
    let mut n = good_and_wrong("redlock", (&good, GOOD_PW), (&wrong, WRONG_PW));
    n += odd_good_and_wrong("redlock", url, "lockhog_secrets", |pw| {
        for node in nodes.split([',', '/', '?']).filter(|n| n.contains(':')) {
            redis_acl_user(node, "lockhog_secrets", pw);
        }
    });
    eprintln!("redlock: {n} runs searched, no password found");
}

/// memcached has no authentication (the binary protocol's SASL is not used): a URL with
/// credentials is refused as a usage error, and the password is not echoed.
#[cfg(feature = "memcached")]
#[test]
fn memcached_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_MEMCACHED_URL");
    let Some(url) = target.url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = with_credentials(url, "u", WRONG_PW);
    let mut n = 0;
    for args in [
        vec!["status", "-b", &url],
        vec!["cleanup", "-b", &url],
        vec!["run", "-n", "-b", &url, "x", "--", "true"],
        vec!["hold", "-n", "-b", &url, "x"],
    ] {
        let ran = lockhog(dir.path(), &args, None, b"release\n");
        assert_no_secret(&ran, WRONG_PW);
        assert_ne!(ran.code, 0, "credentials were silently ignored: {ran:?}");
        n += 1;
    }
    eprintln!("memcached: {n} runs searched, no password found");
}

/// The test cluster runs without etcd's auth, so no password is right: every command is refused
/// (authentication is not enabled) and says so without the password.
#[cfg(feature = "etcd")]
#[test]
fn etcd_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_ETCD_URL");
    let Some(url) = target.url() else { return };
    let n = every_command(
        "etcd-wrong",
        &with_credentials(url, "root", WRONG_PW),
        WRONG_PW,
        false,
    );
    let odd = odd_password("wrong");
    let n = n + every_command(
        "etcd-odd-wrong",
        &with_credentials(url, "root", &in_url(&odd)),
        &odd,
        false,
    );
    eprintln!("etcd: {n} runs searched, no password found");
}

/// The right password and a wrong one over `etcds://` with client certificates, against an etcd
/// of this test's own with auth enabled (the shared cluster has none): with the right one every
/// command succeeds (so its trace logs cover a real session: authenticate, lock, status,
/// cleanup), with the wrong one every command is refused; neither password is ever printed.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_secure_passwords_never_printed() {
    use tls_support::etcd::SecureEtcd;
    // Random inside, so a hit can only be this run's password, not text that happens to match.
    let good = odd_password("good");
    let wrong = odd_password("wrong");
    let Some(etcd) = SecureEtcd::start(Some(("root", &good))).await else {
        return;
    };
    let good_url = etcd.url(&format!("root:{}@", in_url(&good)), &etcd.tls_query());
    let wrong_url = etcd.url(&format!("root:{}@", in_url(&wrong)), &etcd.tls_query());
    let ran = tokio::task::spawn_blocking(move || {
        good_and_wrong("etcds", (&good_url, &good), (&wrong_url, &wrong))
    })
    .await;
    let n = match ran {
        Ok(n) => n,
        // A failed run panicked with its output; the server's log says what etcd saw.
        Err(e) => panic!("{e}\netcd's log:\n{}", etcd.log_tail()),
    };
    eprintln!("etcds: {n} runs searched, no password found");
}

// ---------------------------------------------------------------------------------------------
// (b) names are data

fn canary_dir() -> PathBuf {
    std::env::temp_dir().join(format!("lockhog-injection-{}", std::process::id()))
}

/// Names written to break out of SQL, Lua, memcached's text protocol, etcd key ranges and shell.
fn hostile_names() -> Vec<String> {
    let canary = canary_dir().join("pwned");
    let canary = canary.display();
    vec![
        "'); DROP TABLE lockhog_fencing; --".into(),
        "'); DROP SEQUENCE lockhog_fencing; --".into(),
        r#"" OR 1=1 --"#.into(),
        "x'; SELECT pg_sleep(0); SELECT '".into(),
        "\\'; DELETE FROM lockhog_fencing; #".into(),
        "]]..redis.call('FLUSHALL')..[[".into(),
        "\"..redis.call('FLUSHALL')..\"".into(),
        "x\r\nflush_all\r\n".into(),
        "x flush_all noreply".into(),
        format!("$(touch {canary})"),
        format!("`touch {canary}`"),
        format!("; touch {canary}; #"),
        "\0".into(),
        "a\0b".into(),
        "*".into(),
        "%".into(),
        "/".into(),
        "\u{0}\u{7f}\u{1b}[2J".into(),
        "'".repeat(1024),
        ";".repeat(1024),
        "]".repeat(512) + &"[".repeat(512),
    ]
}

/// Takes every hostile name (each held while another locker tries it, then released, and once
/// more through `lockhog hold` and `run` in a child process), with a sentinel lock held by
/// another locker throughout; then the sentinel is still held and no canary file exists.
/// Returns how many names were used.
async fn take_hostile_names(url: &str) -> usize {
    std::fs::create_dir_all(canary_dir()).unwrap();
    let (a, b) = (
        Locker::connect(url).await.unwrap(),
        Locker::connect(url).await.unwrap(),
    );
    let sentinel = b
        .lock("injection-sentinel")
        .wait_for(Duration::from_secs(30))
        .await
        .expect("sentinel");
    let names = hostile_names();
    for name in &names {
        let g = a
            .lock(name)
            .wait_for(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(
            b.lock(name)
                .try_acquire()
                .await
                .unwrap_err()
                .is_not_acquired(),
            "{name:?}: not exclusive"
        );
        let st = b.status(&[name]).await.expect("status");
        assert_eq!(st[0].state, LockState::Held, "{name:?}: {st:?}");
        assert!(g.release().await.unwrap(), "{name:?}");
    }
    // The same names through the command line (no NUL: argv cannot carry it).
    let dir = tempfile::tempdir().unwrap();
    let argv_names: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.contains('\0'))
        .collect();
    let url_owned = url.to_string();
    let dir_path = dir.path().to_path_buf();
    let argv: Vec<String> = argv_names.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut args = vec!["hold", "-w", "30", "-b", &url_owned];
        args.extend(argv.iter().map(String::as_str));
        let ran = lockhog(&dir_path, &args, None, b"release\n");
        assert_eq!(ran.code, 0, "{ran:?}");
        for name in &argv {
            let ran = lockhog(
                &dir_path,
                &["run", "-w", "30", "-b", &url_owned, name, "--", "true"],
                None,
                b"",
            );
            assert_eq!(ran.code, 0, "{ran:?}");
        }
    })
    .await
    .unwrap();
    let st = a.status(&["injection-sentinel"]).await.expect("status");
    assert_eq!(st[0].state, LockState::Held, "the sentinel: {st:?}");
    assert!(sentinel.release().await.unwrap(), "the sentinel was lost");
    let canary = canary_dir().join("pwned");
    assert!(
        !canary.exists(),
        "a name reached a shell: {canary:?} exists"
    );
    names.len()
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_names_are_parameters() {
    let target = Target::from_env("LOCKHOG_TEST_POSTGRES_URL");
    let Some(url) = target.url() else { return };
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS lockhog_injection_canary (x int)")
        .await
        .unwrap();
    let n = take_hostile_names(url).await;
    for object in ["lockhog_fencing", "lockhog_injection_canary"] {
        let row = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&object])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "{object} is gone");
    }
    eprintln!("postgres: {n} hostile names, the fencing sequence and a canary table intact");
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_names_are_parameters() {
    use mysql_async::prelude::Queryable;
    let target = Target::from_env("LOCKHOG_TEST_MYSQL_URL");
    let Some(url) = target.url() else { return };
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    conn.query_drop("CREATE TABLE IF NOT EXISTS lockhog_injection_canary (x int)")
        .await
        .unwrap();
    let n = take_hostile_names(url).await;
    for object in ["lockhog_fencing", "lockhog_injection_canary"] {
        let count: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = ?",
                (object,),
            )
            .await
            .unwrap();
        assert_eq!(count, Some(1), "{object} is gone");
    }
    conn.disconnect().await.unwrap();
    eprintln!("mysql: {n} hostile names, the fencing object and a canary table intact");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_names_are_parameters() {
    for var in ["LOCKHOG_TEST_REDIS_URL", "LOCKHOG_TEST_REDLOCK_URL"] {
        let target = Target::from_env(var);
        let Some(url) = target.url() else { continue };
        let nodes: Vec<String> = url
            .split_once("://")
            .unwrap()
            .1
            .split([',', '/', '?'])
            .filter(|n| n.contains(':'))
            .map(str::to_string)
            .collect();
        for node in &nodes {
            let reply = redis_cmd(node, &[b"SET", b"lockhog-injection-canary", b"1"]);
            assert_eq!(reply, b"+OK\r\n");
        }
        let n = take_hostile_names(url).await;
        for node in &nodes {
            let reply = redis_cmd(node, &[b"EXISTS", b"lockhog-injection-canary"]);
            assert_eq!(reply, b":1\r\n", "{var}: {node} was flushed");
        }
        eprintln!("{var}: {n} hostile names, a canary key intact on every node");
    }
}

#[cfg(feature = "memcached")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_names_are_parameters() {
    let target = Target::from_env("LOCKHOG_TEST_MEMCACHED_URL");
    let Some(url) = target.url() else { return };
    let addr = first_host(url);
    let reply = memcached_cmd(
        &addr,
        b"set lockhog-injection-canary 0 0 1\r\n1\r\n",
        b"\r\n",
    );
    assert_eq!(reply, b"STORED\r\n");
    let n = take_hostile_names(url).await;
    let reply = memcached_cmd(&addr, b"get lockhog-injection-canary\r\n", b"END\r\n");
    assert!(
        reply.starts_with(b"VALUE lockhog-injection-canary"),
        "flushed: {}",
        String::from_utf8_lossy(&reply)
    );
    eprintln!("memcached: {n} hostile names, a canary key intact");
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_names_are_parameters() {
    let target = Target::from_env("LOCKHOG_TEST_ETCD_URL");
    let Some(url) = target.url() else { return };
    // No raw etcd client here: the sentinel lock held by another locker throughout is the
    // canary (a name that escaped its key, e.g. into a range delete, would take it).
    let n = take_hostile_names(url).await;
    eprintln!("etcd: {n} hostile names, the sentinel lock intact");
}
