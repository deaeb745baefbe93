//! `etcds://` against a single-member etcd of this test's own that serves clients over TLS
//! only and demands a client certificate (`--client-cert-auth`), with certificates made here by
//! `openssl`: locks and woken waiters work; a server the client cannot verify, or a client
//! without a certificate, is refused as a backend error; etcd's auth with a real password
//! works over TLS, and a wrong password is refused without either password in the error.

#![cfg(feature = "etcd")]

mod etcd_support;
mod tls_support;

use etcd_support::{unique, wait_queue_len};
use lockhog::{Error, Locker};
use tls_support::etcd::{bounded, query_path, SecureEtcd, BOUND};
use tls_support::{random_hex, Ca};

/// Connects to `url`, which must work; a failure shows the server's log.
async fn connect(s: &SecureEtcd, url: &str) -> Locker {
    match bounded("connecting", Locker::connect(url)).await {
        Ok(l) => l,
        Err(e) => panic!("{e:?}\netcd's log:\n{}", s.log_tail()),
    }
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
    let Some(s) = SecureEtcd::start(None).await else {
        return;
    };
    let url = s.url("", &s.tls_query());
    let a = connect(&s, &url).await;
    let b = connect(&s, &url).await;
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
    let raw = s.raw_client().await;
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
    let Some(s) = SecureEtcd::start(None).await else {
        return;
    };
    // The server is up and our full settings work, so every refusal below is TLS's.
    let ok = connect(&s, &s.url("", &s.tls_query())).await;
    drop(ok);
    let client = format!(
        "cert={}&key={}",
        query_path(&s.client().cert),
        query_path(&s.client().key)
    );
    let other = Ca::new(s.dir(), "other-ca");
    let no_ca = s.url("", &client);
    let wrong_ca = s.url("", &format!("ca={}&{client}", query_path(other.cert())));
    let no_cert = s.url("", &format!("ca={}", query_path(s.ca().cert())));
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
    let password = format!("Root-{}-pw", random_hex());
    let wrong = format!("Wrong-{}-pw", random_hex());
    let Some(s) = SecureEtcd::start(Some(("root", &password))).await else {
        return;
    };

    let good = connect(&s, &s.url(&format!("root:{password}@"), &s.tls_query())).await;
    assert!(!format!("{good:?} {}", good.url()).contains(&password));
    let name = unique("auth");
    let held = good.lock(&name).try_acquire().await.unwrap();
    assert!(held.release().await.unwrap());

    let e = bounded(
        "connecting with a wrong password",
        Locker::connect(&s.url(&format!("root:{wrong}@"), &s.tls_query())),
    )
    .await
    .unwrap_err();
    let source = format!("{:?}", std::error::Error::source(&e));
    let text = backend_error("a wrong password", e) + &source;
    assert!(!text.contains(&password), "{text}");
    assert!(!text.contains(&wrong), "{text}");
}
