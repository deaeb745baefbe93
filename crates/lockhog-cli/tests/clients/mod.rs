//! The other programs the resource tests race lockhog against, run as their users run them:
//! `psql` and the `mysql` client as interactive sessions fed on stdin, `flock(1)`, and Python's
//! `fcntl`. Passwords reach the clients through their environment or an option file of mode
//! 0600, never through argv. A missing client is a skip, or a failure under `CI=true`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;

use crate::support::{Finished, Proc};

/// `LOCKHOG_TEST_<X>_URL`; `None` (skip) when unset, a failure under `CI=true`.
pub fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => missing(&format!("{var} is not set (run through scripts/test)")),
    }
}

/// `Some(())` when `program` runs; `None` (skip) when it does not, a failure under `CI=true`.
pub fn have(program: &str) -> Option<()> {
    let found = Command::new(program).arg("--version").output().is_ok();
    if found {
        Some(())
    } else {
        missing(&format!(
            "{program} is not installed (scripts/test installs it)"
        ))
    }
}

fn missing<T>(why: &str) -> Option<T> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// A server URL split for a command-line client.
pub struct Server {
    pub host: String,
    pub port: String,
    pub user: String,
    pub password: String,
    pub database: String,
}

impl Server {
    pub fn parse(url: &str) -> Server {
        let parsed = lockhog::url::BackendUrl::parse(url).expect("a test server URL");
        let decode = |s: &str| lockhog::url::percent_decode(s).expect("percent-encoding");
        let (user, password) = parsed.credentials().unwrap_or(("", None));
        let rest = parsed.authority_rest().expect("host in the URL");
        let (hostport, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = hostport.rsplit_once(':').expect("a port in the URL");
        Server {
            host: host.to_string(),
            port: port.to_string(),
            user: decode(user),
            password: decode(password.unwrap_or("")),
            database: decode(database),
        }
    }
}

/// An interactive client session: one statement per line on stdin, one answer line each.
pub struct Session {
    proc: Proc,
    /// Keeps the client's option file for as long as it runs.
    _dir: Option<tempfile::TempDir>,
}

impl Session {
    /// `psql` on `url`, unaligned and tuples only, stopping on the first error.
    pub fn psql(url: &str) -> Session {
        let s = Server::parse(url);
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .env("PGHOST", &s.host)
            .env("PGPORT", &s.port)
            .env("PGUSER", &s.user)
            .env("PGPASSWORD", &s.password)
            .env("PGDATABASE", &s.database)
            .env("PGAPPNAME", "resource-test-psql");
        Session {
            proc: Proc::spawn(cmd, "psql"),
            _dir: None,
        }
    }

    /// The `mysql` client on `url`, in batch mode, flushing each answer.
    pub fn mysql(url: &str) -> Session {
        let (dir, option_file) = mysql_option_file(url);
        let mut cmd = Command::new("mysql");
        cmd.arg(format!("--defaults-extra-file={option_file}"))
            .args(["-N", "-B", "-n"]);
        Session {
            proc: Proc::spawn(cmd, "mysql"),
            _dir: Some(dir),
        }
    }

    /// Runs `sql` (one statement ending in `;`, on one line) and returns its answer line.
    pub fn query(&mut self, sql: &str) -> String {
        self.proc.send(sql);
        self.proc.line()
    }

    /// Sends `sql` without waiting for its answer (a statement that blocks).
    pub fn send(&mut self, sql: &str) {
        self.proc.send(sql);
    }

    /// The next answer line (of a statement [`Session::send`] sent).
    pub fn answer(&mut self) -> String {
        self.proc.line()
    }

    /// Ends the session (its locks go with it) and checks it exited cleanly.
    pub fn quit(self) {
        let done = self.proc.finish();
        assert!(done.status.success(), "{done:#?}");
    }
}

/// `mysql` once: `sql` on the command line (no secrets in it), the password in an option file.
pub fn mysql_once(url: &str, sql: &str) -> Finished {
    let (_dir, option_file) = mysql_option_file(url);
    let mut cmd = Command::new("mysql");
    cmd.arg(format!("--defaults-extra-file={option_file}"))
        .args(["-N", "-B", "-e", sql]);
    Proc::spawn(cmd, "mysql -e").finish()
}

/// A private directory holding a `[client]` option file (mode 0600) for `url`.
fn mysql_option_file(url: &str) -> (tempfile::TempDir, String) {
    let s = Server::parse(url);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("client.cnf");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("option file");
    write!(
        file,
        "[client]\nhost={}\nport={}\nuser={}\npassword=\"{}\"\ndatabase={}\n",
        s.host, s.port, s.user, s.password, s.database
    )
    .expect("write option file");
    (dir, path.display().to_string())
}
