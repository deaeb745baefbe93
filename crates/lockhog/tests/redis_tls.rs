//! `rediss://` against a TLS-only `redis-server` of this test's own, with a CA made here by
//! `openssl`: locks work (waiters woken over TLS pub/sub too), a foreign key excludes
//! redis-cli over TLS, `steal_after` and shared locks pass their conformance checks, and a server whose certificate the CA did not sign is refused as a
//! backend error.

#![cfg(feature = "redis")]

mod redis_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lockhog::{Error, Locker};
use redis_support::{bounded, unique};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn missing(what: &str) -> Option<Server> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {what}");
    }
    eprintln!("skipped: {what}");
    None
}

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it, made in `dir`.
fn make_certs(dir: &Path, prefix: &str) -> bool {
    let ca = format!("{prefix}ca");
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=lockhog test CA",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ],
    ) && openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    ) && openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext",
            "-out",
            "server.pem",
        ],
    )
}

async fn tls_server(dir: &Path, port: u16) -> Option<Server> {
    if !make_certs(dir, "") {
        return missing("openssl cannot make test certificates");
    }
    let child = match Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => Server(c),
        Err(e) => return missing(&format!("redis-server cannot run: {e}")),
    };
    Some(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(_server) = tls_server(dir.path(), port).await else {
        return;
    };
    let ca = dir.path().join("ca.pem");
    let url = format!("rediss://127.0.0.1:{port}?ca={}", ca.display());
    // The server announces nothing when it is ready: connecting is tried within the bound.
    let a = bounded("the TLS server", async {
        loop {
            match Locker::connect(&url).await {
                Ok(l) => return l,
                Err(Error::Backend { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    let b = Locker::connect(&url).await.unwrap();
    let name = unique("tls");
    let held = a.lock(&name).try_acquire().await.unwrap();
    assert!(matches!(
        b.lock(&name).try_acquire().await,
        Err(Error::Contended { .. })
    ));
    let waiter = tokio::spawn({
        let name = name.clone();
        async move { b.lock(&name).wait().await }
    });
    assert!(held.release().await.unwrap());
    let got = bounded("the waiter", waiter).await.unwrap().unwrap();
    assert!(got.release().await.unwrap());

    // A foreign key over TLS: redis-cli's `SET key v NX` is refused while lockhog holds it.
    let key = unique("tls-report");
    let held = a.lock_resource(&key).try_acquire().await.unwrap();
    assert_eq!(held.fencing_token(), None);
    let set_nx = || {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(&ca)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["SET", &key, "theirs", "NX"])
            .output()
            .expect("redis-cli (Debian's redis-tools)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(set_nx(), "");
    assert!(held.release().await.unwrap());
    assert_eq!(set_nx(), "OK");

    // steal_after and shared locks, as the conformance suite checks them, over TLS too.
    #[cfg(feature = "testkit")]
    {
        use lockhog::testkit::{self, Target};
        let t = Target::new(url.as_str());
        testkit::steal_after_takes_over_a_live_holder(&t).await;
        testkit::shared_readers_coexist_writer_excludes(&t).await;
        testkit::shared_waiting_writer_is_not_starved(&t).await;
    }

    // A CA that did not sign the server's certificate: refused, as a backend error.
    assert!(make_certs(dir.path(), "other-"));
    let other = dir.path().join("other-ca.pem");
    let e = Locker::connect(&format!("rediss://127.0.0.1:{port}?ca={}", other.display()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e}");
}
