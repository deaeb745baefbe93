//! `postgres://` over TLS against the test server, which serves TLS with a certificate for
//! localhost and 127.0.0.1 signed by a CA that `scripts/test` made with openssl
//! (`LOCKHOG_TEST_POSTGRES_CA`). Its role in `LOCKHOG_TEST_POSTGRES_TLS_URL` may log in only
//! over TLS, so a lockhog session of that role is an encrypted one, and `pg_stat_ssl` says so
//! too. Failures (a wrong host name, no CA, a server without TLS) are backend errors that never
//! show the URL's password.

#![cfg(feature = "postgres")]

mod postgres_support;

use std::time::Duration;

use lockhog::backend::postgres::advisory_key;
use lockhog::{Error, Locker};
use postgres_support::{bounded, holders, raw, unique, unique_app, with_option, BOUND};

/// A password no error may show.
const SECRET: &str = "Sup3r-s3cret-tls-pw";

/// `url`'s parts: (scheme, user, password, host, port and path).
fn parts(url: &str) -> (&str, &str, &str, &str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, place) = rest.split_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let (host, port_path) = place.split_once(':').unwrap();
    (scheme, user, password, host, port_path)
}

/// `url` with another host and password.
fn with_host_and_password(url: &str, host: &str, password: &str) -> String {
    let (scheme, user, _, _, port_path) = parts(url);
    format!("{scheme}://{user}:{password}@{host}:{port_path}")
}

/// Connecting fails with a backend error that does not show `SECRET`; returns its text.
async fn refused(url: &str) -> String {
    let e = bounded("connect", Locker::connect(url)).await.unwrap_err();
    let shown = format!("{e} / {e:?}");
    assert!(matches!(e, Error::Backend { .. }), "{url}: {shown}");
    assert!(!shown.contains(SECRET), "the password leaked: {shown}");
    eprintln!("refused as expected: {e}");
    e.to_string()
}

/// (sessions, of which over TLS) among the server's sessions named `app`.
async fn tls_sessions(plain: &tokio_postgres::Client, app: &str) -> (i64, i64) {
    let row = plain
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Sessions named `app` blocked on a lock.
async fn waiting(plain: &tokio_postgres::Client, app: &str) -> i64 {
    plain
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
            &[&app],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_and_verify_full_encrypt_every_session() {
    let plain_url = server_url!();
    let tls = tls_server!();
    let plain = raw(&plain_url, "tls-observer").await;
    let ca = format!("sslrootcert={}", tls.ca);
    let (_, _, _, _, port_path) = parts(&tls.url);
    let localhost = with_host_and_password(&tls.url, "localhost", parts(&tls.url).2);
    for (what, mode, url, options) in [
        ("require without a CA", "require", &tls.url, ""),
        ("verify-ca", "verify-ca", &tls.url, ca.as_str()),
        ("verify-full at 127.0.0.1", "verify-full", &tls.url, &ca),
        ("verify-full at localhost", "verify-full", &localhost, &ca),
        ("prefer (the default)", "prefer", &tls.url, ""),
        (
            "verify-full, a role also allowed in plain",
            "verify-full",
            &plain_url,
            &ca,
        ),
    ] {
        let app = unique_app("tls");
        let mut url = with_option(url, &format!("sslmode={mode}&application_name={app}"));
        if !options.is_empty() {
            url = with_option(&url, options);
        }
        let locker = bounded("connect", Locker::connect(&url))
            .await
            .unwrap_or_else(|e| panic!("{what} ({port_path}): {e}"));
        let g = locker.lock(unique("tls")).try_acquire().await.unwrap();
        let (sessions, encrypted) = tls_sessions(&plain, &app).await;
        assert!(sessions >= 1, "{what}: no session named {app}");
        assert_eq!(encrypted, sessions, "{what}: a session without TLS");
        assert!(g.release().await.unwrap(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_acquire_release_round_over_tls() {
    let plain_url = server_url!();
    let tls = tls_server!();
    let plain = raw(&plain_url, "tls-round-observer").await;
    let app = unique_app("tls-round");
    let locker = Locker::connect(&with_option(
        &tls.url,
        &format!(
            "sslmode=verify-full&sslrootcert={}&application_name={app}",
            tls.ca
        ),
    ))
    .await
    .unwrap();
    let name = unique("tls-round");
    let key = advisory_key("lockhog", &name).unwrap();

    // Held over TLS: another session sees it and cannot take it.
    let held = locker.lock(&name).try_acquire().await.unwrap();
    let seen = holders(&plain, key).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let ssl: bool = plain
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = $1", &[&seen[0].0])
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the holding session is encrypted");
    let taken: bool = plain
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .unwrap()
        .get(0);
    assert!(!taken);
    let first = held.fencing_token();
    assert!(held.release().await.unwrap());

    // Held elsewhere: the locker waits in the server on a waiter connection of its own (over
    // TLS too) and is woken by the release.
    plain
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    let waiter = {
        let (locker, name) = (locker.clone(), name.clone());
        tokio::spawn(async move { locker.lock(&name).wait_for(BOUND).await })
    };
    // The server has no event for "a session started waiting"; its activity view is polled.
    bounded("the waiter to block in the server", async {
        while waiting(&plain, &app).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(!waiter.is_finished());
    let (sessions, encrypted) = tls_sessions(&plain, &app).await;
    assert!(sessions >= 2, "a session and a waiter: {sessions}");
    assert_eq!(encrypted, sessions);
    plain
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    let second = bounded("the waiter", waiter).await.unwrap().unwrap();
    assert!(second.fencing_token() > first);
    assert!(second.release().await.unwrap());

    // A wait that gives up, and one dropped while blocked in the server (cancelled with a
    // cancel request, which goes over TLS too): neither leaves the lock held.
    plain
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    assert!(matches!(
        locker
            .lock(&name)
            .wait_for(Duration::from_millis(300))
            .await,
        Err(Error::TimedOut { .. })
    ));
    let dropped = {
        let (locker, name) = (locker.clone(), name.clone());
        tokio::spawn(async move { locker.lock(&name).wait_for(BOUND).await })
    };
    bounded("the wait to block in the server", async {
        while waiting(&plain, &app).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    dropped.abort();
    let _ = dropped.await;
    // The wait ends while the lock is still held elsewhere: cancelled, not granted (seen, as
    // above, in the server's activity view, which is polled).
    bounded("the cancelled wait to end", async {
        while waiting(&plain, &app).await > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    plain
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    let again = locker
        .lock(&name)
        .wait_for(BOUND)
        .await
        .unwrap_or_else(|e| panic!("acquire after the cancelled wait: {e}"));
    assert!(again.release().await.unwrap());
    assert!(holders(&plain, key).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_only_role_is_refused_without_tls() {
    let tls = tls_server!();
    let url = with_host_and_password(&tls.url, "127.0.0.1", SECRET);
    let e = refused(&with_option(&url, "sslmode=disable")).await;
    assert!(e.contains("no encryption"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_name() {
    let tls = tls_server!();
    // The connection goes to 127.0.0.1 (hostaddr) but the name to check is another one.
    let url = with_host_and_password(&tls.url, "wrong-host.invalid", SECRET);
    let url = with_option(&url, &format!("hostaddr=127.0.0.1&sslrootcert={}", tls.ca));
    let e = refused(&with_option(&url, "sslmode=verify-full")).await;
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    assert!(e.contains("wrong-host.invalid"), "the URL is named: {e}");

    // verify-ca checks the chain only: the same URL (with the right password) connects.
    let (_, _, password, _, _) = parts(&tls.url);
    let ok = with_host_and_password(&tls.url, "wrong-host.invalid", password);
    let ok = with_option(
        &ok,
        &format!(
            "hostaddr=127.0.0.1&sslrootcert={}&sslmode=verify-ca",
            tls.ca
        ),
    );
    let locker = bounded("connect", Locker::connect(&ok)).await.unwrap();
    let g = locker.lock(unique("tls-ca")).try_acquire().await.unwrap();
    assert!(g.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_without_the_ca_fails() {
    let tls = tls_server!();
    let url = with_host_and_password(&tls.url, "127.0.0.1", SECRET);
    for mode in ["verify-full", "verify-ca"] {
        // No root certificate at all: refused before connecting, saying what to set (unless
        // libpq's default file exists here, which then does not hold this test CA).
        let e = refused(&with_option(&url, &format!("sslmode={mode}"))).await;
        let default = std::env::var_os("HOME")
            .map(|h| std::path::Path::new(&h).join(".postgresql/root.crt"))
            .is_some_and(|p| p.is_file());
        if !default {
            assert!(e.contains("sslrootcert"), "{e}");
        }
        // The system's roots do not know the test CA: the handshake fails.
        let e = refused(&with_option(
            &url,
            &format!("sslmode={mode}&sslrootcert=system"),
        ))
        .await;
        assert!(
            e.contains("certificate") || e.contains("sslrootcert=system"),
            "{e}"
        );
        // A root certificate file that is not there.
        let e = refused(&with_option(
            &url,
            &format!("sslmode={mode}&sslrootcert=/nonexistent/lockhog-ca.pem"),
        ))
        .await;
        assert!(e.contains("/nonexistent/lockhog-ca.pem"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_fails_against_a_server_without_tls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that answers PostgreSQL's SSLRequest with 'N' (no TLS here), as a server with
    // ssl=off does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if s.read_exact(&mut request).await.is_ok() {
                    assert_eq!(request, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], "SSLRequest");
                    let _ = s.write_all(b"N").await;
                    let mut rest = Vec::new();
                    let _ = s.read_to_end(&mut rest).await;
                }
            });
        }
    });
    let url = format!("postgres://u:{SECRET}@127.0.0.1:{port}/db?connect_timeout=5");
    let e = refused(&format!("{url}&sslmode=require")).await;
    assert!(e.contains("does not support TLS"), "{e}");
    if let Some(tls) = postgres_support::tls() {
        let e = refused(&format!("{url}&sslmode=verify-full&sslrootcert={}", tls.ca)).await;
        assert!(e.contains("does not support TLS"), "{e}");
    }
    server.abort();
}
