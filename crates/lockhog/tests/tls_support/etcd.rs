//! A single-member etcd of a test's own that serves clients over TLS only and demands a client
//! certificate (`--client-cert-auth`), with a CA, a server certificate for 127.0.0.1 and a
//! client certificate made by `openssl` in its own temporary directory; optionally with etcd's
//! auth enabled for a user and password of the test's choosing. Shared by lockhog's
//! tests/etcd_tls.rs and lockhog-cli's tests/secrets.rs (the latter includes this directory by
//! `#[path]`, so everything here uses only crates both have under their `etcd` feature).

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::{have_openssl, missing, random_hex, Ca, Pair};

/// The hang guard for every wait: a broken setup fails instead of hanging. Never a speed.
pub const BOUND: Duration = Duration::from_secs(30);

/// What etcd (zap logger) says once its TLS client listener serves.
const READY: &str = "serving client traffic securely";

/// How many of the server's last log lines a failure shows.
const LOG_TAIL: usize = 40;

/// `f`, or a panic naming `what` when it does not finish within [`BOUND`].
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running etcd process, killed on drop. Its log (stderr) is read by a thread, which also
/// reports when the server is ready or has exited.
struct Server {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    /// `127.0.0.1:PORT`, the TLS client endpoint.
    endpoint: String,
}

enum Started {
    Ready,
    Exited,
}

impl Server {
    /// Starts a single-member etcd in `dir` serving clients on https only, with the server
    /// certificate `server`, trusting client certificates signed by `ca` and demanding one.
    /// Returns once its log says it serves (a failure shows the log's tail), or `None` when
    /// there is no `etcd` to run.
    fn start(dir: &Path, server: &Pair, ca: &Ca) -> Option<Server> {
        let client_url = format!("https://127.0.0.1:{}", free_port());
        // Plain peer traffic is fine: there is no peer, but etcd listens for them anyway.
        let peer_url = format!("http://127.0.0.1:{}", free_port());
        let spawned = Command::new("etcd")
            .args(["--name", "tls", "--data-dir"])
            .arg(dir.join("etcd-data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("tls={peer_url}")])
            .arg("--cert-file")
            .arg(&server.cert)
            .arg("--key-file")
            .arg(&server.key)
            .arg("--trusted-ca-file")
            .arg(ca.cert())
            .arg("--client-cert-auth")
            .args([
                "--unsafe-no-fsync",
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                missing(&format!(
                    "etcd cannot run ({e}); Debian: apt-get install etcd-server"
                ));
                return None;
            }
        };
        let stderr = child.stderr.take().expect("etcd's stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn({
            let log = log.clone();
            move || {
                let mut told = false;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if !told && line.contains(READY) {
                        told = true;
                        let _ = tx.send(Started::Ready);
                    }
                    let mut log = log.lock().unwrap();
                    log.push(line);
                    // Only the tail is ever shown.
                    if log.len() > 4 * LOG_TAIL {
                        log.drain(..2 * LOG_TAIL);
                    }
                }
                let _ = tx.send(Started::Exited);
            }
        });
        let etcd = Server {
            child,
            log,
            reader: Some(reader),
            endpoint: client_url.trim_start_matches("https://").to_string(),
        };
        match rx.recv_timeout(BOUND) {
            Ok(Started::Ready) => Some(etcd),
            Ok(Started::Exited) => panic!("etcd exited before it served:\n{}", etcd.log_tail()),
            Err(_) => panic!("etcd did not serve within {BOUND:?}:\n{}", etcd.log_tail()),
        }
    }

    /// The last lines of the server's log.
    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(LOG_TAIL)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A TLS-only etcd with its certificates (see the module's documentation), killed and its
/// directory removed on drop.
pub struct SecureEtcd {
    // Declared first so that the server is killed before its directory is removed.
    server: Server,
    ca: Ca,
    client: Pair,
    /// The user and password etcd's auth was enabled for.
    auth: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl SecureEtcd {
    /// Makes the certificates, starts etcd and, with `auth = Some((user, password))`, adds
    /// `user` with `password` and the root role and enables etcd's auth. `None` (a skip, or a
    /// panic under `CI=true`) when `openssl` or `etcd` is missing; any other failure panics
    /// with the server's log.
    pub async fn start(auth: Option<(&str, &str)>) -> Option<SecureEtcd> {
        if !have_openssl() {
            missing("openssl is not installed (Debian: apt-get install openssl)");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let ca = Ca::new(dir.path(), "ca");
        // etcd's own gRPC gateway dials the server with the server certificate as its client
        // certificate, so the server certificate must be good for both.
        let server = ca.issue(
            "server",
            "127.0.0.1",
            &[
                "subjectAltName=IP:127.0.0.1",
                "extendedKeyUsage=serverAuth,clientAuth",
            ],
        );
        // Not a user name: with --client-cert-auth, etcd's auth takes the CN as the user.
        let client = ca.issue(
            "client",
            "lockhog-test-client",
            &["extendedKeyUsage=clientAuth"],
        );
        let server = Server::start(dir.path(), &server, &ca)?;
        let mut etcd = SecureEtcd {
            server,
            ca,
            client,
            auth: None,
            dir,
        };
        if let Some((user, password)) = auth {
            etcd.enable_auth(user, password).await;
        }
        Some(etcd)
    }

    /// Adds `user` with `password` and the root role, then enables auth. etcd refuses to
    /// enable auth without a `root` user holding the root role, so for another `user` a root
    /// user is added too, with a random password nobody uses.
    async fn enable_auth(&mut self, user: &str, password: &str) {
        let mut raw = self.raw_client().await;
        add_root_user(&mut raw, user, password).await;
        if user != "root" {
            add_root_user(&mut raw, "root", &format!("Unused-{}", random_hex())).await;
        }
        bounded("enabling auth", raw.auth_enable())
            .await
            .unwrap_or_else(|e| panic!("enable auth: {e}\netcd's log:\n{}", self.log_tail()));
        self.auth = Some((user.to_string(), password.to_string()));
    }

    /// `127.0.0.1:PORT`, the TLS client endpoint.
    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// The CA that signed the server's and the client's certificates.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The client certificate (CN `lockhog-test-client`) and its key.
    pub fn client(&self) -> &Pair {
        &self.client
    }

    /// The directory of the certificates and the server's data, for more files of a test's own.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `etcds://USERINFO127.0.0.1:PORT?QUERY` (`userinfo` is empty or ends with `@`).
    pub fn url(&self, userinfo: &str, query: &str) -> String {
        format!("etcds://{userinfo}{}?{query}", self.endpoint())
    }

    /// The query that trusts our CA and presents our client certificate.
    pub fn tls_query(&self) -> String {
        format!(
            "ca={}&cert={}&key={}",
            query_path(self.ca.cert()),
            query_path(&self.client.cert),
            query_path(&self.client.key)
        )
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    /// A raw client with our CA and client certificate (and, once auth is enabled, its user
    /// and password), to look behind the library's back.
    pub async fn raw_client(&self) -> Client {
        let read = |p: &Path| std::fs::read(p).expect("read a PEM file");
        let tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(read(self.ca.cert())))
            .identity(Identity::from_pem(
                read(&self.client.cert),
                read(&self.client.key),
            ));
        let mut options = ConnectOptions::new().with_tls(tls);
        if let Some((user, password)) = &self.auth {
            options = options.with_user(user.as_str(), password.as_str());
        }
        let endpoint = format!("https://{}", self.endpoint());
        bounded("a raw client", Client::connect([endpoint], Some(options)))
            .await
            .unwrap_or_else(|e| panic!("a raw TLS client: {e}\netcd's log:\n{}", self.log_tail()))
    }
}

/// Adds `user` with `password` and grants it the root role.
async fn add_root_user(raw: &mut Client, user: &str, password: &str) {
    bounded(
        &format!("adding user {user}"),
        raw.user_add(user, password, None),
    )
    .await
    .unwrap_or_else(|e| panic!("add user {user}: {e}"));
    bounded(
        &format!("granting {user} the root role"),
        raw.user_grant_role(user, "root"),
    )
    .await
    .unwrap_or_else(|e| panic!("grant {user} the root role: {e}"));
}

/// `path` as a URL query value: lockhog percent-decodes query values, so a `%`, `&`, `#` or
/// space in a temporary directory's path must be escaped to arrive intact.
pub fn query_path(path: &Path) -> String {
    let path = path.to_str().expect("a UTF-8 temporary path");
    lockhog::url::percent_encode(path, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_')
    })
}
