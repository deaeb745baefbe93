//! `etcds://` against a single-member etcd of this test's own that serves clients over TLS
//! only and demands a client certificate (`--client-cert-auth`), with certificates made here by
//! `openssl`: locks and woken waiters work; a server the client cannot verify, or a client
//! without a certificate, is refused as a backend error; etcd's auth with a real password
//! works over TLS, and a wrong password is refused without either password in the error.

#![cfg(feature = "etcd")]

mod tls_support;

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions, WatchOptions,
};
use lockhog::{Error, Locker};
use tls_support::{have_openssl, missing, Ca, Pair};

/// The hang guard for every wait: a broken setup fails instead of hanging. Never a speed.
const BOUND: Duration = Duration::from_secs(30);

/// What etcd (zap logger) says once its TLS client listener serves.
const READY: &str = "serving client traffic securely";

/// How many of the server's last log lines a failure shows.
const LOG_TAIL: usize = 40;

/// `f`, or a panic naming `what` when it does not finish within [`BOUND`].
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

/// A lock name no other test (or earlier run) uses.
fn unique(what: &str) -> String {
    format!("{what}-{}-{}", std::process::id(), random_hex())
}

/// 64 random bits in hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running etcd, killed on drop. Its log (stderr) is read by a thread, which also reports
/// when the server is ready or has exited.
struct Etcd {
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

impl Etcd {
    /// Starts a single-member etcd in `dir` serving clients on https only, with the server
    /// certificate `server`, trusting client certificates signed by `ca` and demanding one.
    /// Returns once its log says it serves (a failure shows the log's tail), or `None` when
    /// there is no `etcd` to run.
    fn start(dir: &Path, server: &Pair, ca: &Ca) -> Option<Etcd> {
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
        let etcd = Etcd {
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

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate both signed by it, and
/// an etcd that uses them.
struct Setup {
    // Declared first so that the server is killed before its directory is removed.
    etcd: Etcd,
    ca: Ca,
    client: Pair,
    dir: tempfile::TempDir,
}

impl Setup {
    /// `None` (skipped, or a failure under CI=true) when openssl or etcd is missing.
    fn new() -> Option<Setup> {
        if !have_openssl() {
            missing("openssl is not installed");
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
        let etcd = Etcd::start(dir.path(), &server, &ca)?;
        Some(Setup {
            etcd,
            ca,
            client,
            dir,
        })
    }

    /// `etcds://USERINFO127.0.0.1:PORT?QUERY`.
    fn url(&self, userinfo: &str, query: &str) -> String {
        format!("etcds://{userinfo}{}?{query}", self.etcd.endpoint)
    }

    /// The query that trusts our CA and presents our client certificate.
    fn tls(&self) -> String {
        format!(
            "ca={}&cert={}&key={}",
            self.ca.cert().display(),
            self.client.cert.display(),
            self.client.key.display()
        )
    }

    /// Connects to `url`, which must work; a failure shows the server's log.
    async fn connect(&self, url: &str) -> Locker {
        match bounded("connecting", Locker::connect(url)).await {
            Ok(l) => l,
            Err(e) => panic!("{e:?}\netcd's log:\n{}", self.etcd.log_tail()),
        }
    }

    /// A raw client with our CA and client certificate, to look behind the library's back.
    async fn raw(&self) -> Client {
        let read = |p: &Path| std::fs::read(p).expect("read a PEM file");
        let tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(read(self.ca.cert())))
            .identity(Identity::from_pem(
                read(&self.client.cert),
                read(&self.client.key),
            ));
        let endpoint = format!("https://{}", self.etcd.endpoint);
        bounded(
            "a raw client",
            Client::connect([endpoint], Some(ConnectOptions::new().with_tls(tls))),
        )
        .await
        .expect("a raw TLS client")
    }
}

/// Waits until the queue of the lock whose RESOURCE is `resource` has `n` keys, woken by a
/// watch on the queue (never by sleeping).
async fn wait_queue_len(client: &Client, resource: &str, n: i64) {
    let prefix = format!("{resource}/");
    bounded(&format!("{resource} queueing {n} keys"), async {
        loop {
            let resp = client
                .clone()
                .get(
                    prefix.as_str(),
                    Some(GetOptions::new().with_prefix().with_count_only()),
                )
                .await
                .expect("count the queue");
            if resp.count() == n {
                return;
            }
            let after = resp.header().expect("a header").revision();
            let options = WatchOptions::new()
                .with_prefix()
                .with_start_revision(after + 1);
            let mut watch = client
                .clone()
                .watch(prefix.as_str(), Some(options))
                .await
                .expect("watch the queue");
            // Any event changes the count: read it again.
            while let Some(resp) = watch.message().await.expect("watch") {
                if !resp.events().is_empty() {
                    break;
                }
            }
        }
    })
    .await;
}

/// `e` is a backend error; its text is returned for further checks.
fn backend_error(what: &str, e: Error) -> String {
    let text = format!("{e} {e:?}");
    assert!(matches!(e, Error::Backend { .. }), "{what}: {text}");
    eprintln!("{what}: {e}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_over_tls_with_a_client_certificate() {
    let Some(s) = Setup::new() else { return };
    let url = s.url("", &s.tls());
    let a = s.connect(&url).await;
    let b = s.connect(&url).await;
    let name = unique("tls");
    let held = a.lock(&name).try_acquire().await.unwrap();
    let e = b.lock(&name).try_acquire().await.unwrap_err();
    assert!(e.is_not_acquired(), "{e:?}");
    let first = held.fencing_token();
    assert!(held.release().await.unwrap());
    let got = b.lock(&name).try_acquire().await.unwrap();
    assert!(got.fencing_token() > first);

    // A waiter on `a`, queued behind `b`'s hold, is woken by a release from another task.
    let waiter = tokio::spawn({
        let (a, name) = (a.clone(), name.clone());
        async move { a.lock(&name).wait_for(BOUND).await }
    });
    let raw = s.raw().await;
    wait_queue_len(&raw, &a.resource(&name).unwrap(), 2).await;
    let released = tokio::spawn(async move { got.release().await });
    assert!(bounded("the release", released).await.unwrap().unwrap());
    let woken = bounded("the waiter", waiter)
        .await
        .unwrap()
        .expect("the waiter acquires once the holder releases");
    assert!(woken.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_servers_and_clients_without_a_certificate_are_refused() {
    let Some(s) = Setup::new() else { return };
    // The server is up and our full settings work, so every refusal below is TLS's.
    let ok = s.connect(&s.url("", &s.tls())).await;
    drop(ok);
    let client = format!(
        "cert={}&key={}",
        s.client.cert.display(),
        s.client.key.display()
    );
    let other = Ca::new(s.dir.path(), "other-ca");
    let no_ca = s.url("", &client);
    let wrong_ca = s.url("", &format!("ca={}&{client}", other.cert().display()));
    let no_cert = s.url("", &format!("ca={}", s.ca.cert().display()));
    let (no_ca, wrong_ca, no_cert) = bounded("connecting with bad TLS settings", async {
        tokio::join!(
            Locker::connect(&no_ca),
            Locker::connect(&wrong_ca),
            Locker::connect(&no_cert)
        )
    })
    .await;
    backend_error("the system's roots", no_ca.unwrap_err());
    backend_error("a CA that did not sign the server", wrong_ca.unwrap_err());
    backend_error("no client certificate", no_cert.unwrap_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_with_a_real_password_over_tls() {
    let Some(s) = Setup::new() else { return };
    let password = format!("Root-{}-pw", random_hex());
    let wrong = format!("Wrong-{}-pw", random_hex());
    let mut raw = s.raw().await;
    raw.user_add("root", password.as_str(), None)
        .await
        .expect("add user root");
    raw.user_grant_role("root", "root")
        .await
        .expect("grant root the root role");
    raw.auth_enable().await.expect("enable auth");

    let good = s
        .connect(&s.url(&format!("root:{password}@"), &s.tls()))
        .await;
    assert!(!format!("{good:?} {}", good.url()).contains(&password));
    let name = unique("auth");
    let held = good.lock(&name).try_acquire().await.unwrap();
    assert!(held.release().await.unwrap());

    let e = bounded(
        "connecting with a wrong password",
        Locker::connect(&s.url(&format!("root:{wrong}@"), &s.tls())),
    )
    .await
    .unwrap_err();
    let source = format!("{:?}", std::error::Error::source(&e));
    let text = backend_error("a wrong password", e) + &source;
    assert!(!text.contains(&password), "{text}");
    assert!(!text.contains(&wrong), "{text}");
}
