//! Bad input: unreachable server, wrong password, missing database, unknown option — the
//! right error kind, quickly, and never a password in the message.

#![cfg(feature = "postgres")]

mod postgres_support;

use lockhog::{Error, Locker};
use postgres_support::{bounded, with_option};

/// `url` with its password replaced by `password`.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, host) = rest.split_once('@').unwrap();
    let user = auth.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

fn assert_backend_without(e: &Error, secret: &str) {
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
    let shown = format!("{e} / {e:?}");
    assert!(!shown.contains(secret), "the password leaked: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_backend_error_without_the_password() {
    let url = server_url!();
    let secret = "Wr0ngPassw0rd-xyzzy";
    let e = bounded("connect", Locker::connect(&with_password(&url, secret)))
        .await
        .unwrap_err();
    assert_backend_without(&e, secret);
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
    assert!(e.to_string().contains("***"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_database_is_a_backend_error() {
    let url = server_url!();
    let (head, _) = url.rsplit_once('/').unwrap();
    let e = bounded(
        "connect",
        Locker::connect(&format!("{head}/no_such_database_here")),
    )
    .await
    .unwrap_err();
    assert_backend_without(&e, "lockhog:lockhog@");
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_backend_error() {
    let e = bounded(
        "connect",
        Locker::connect("postgres://u:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=2"),
    )
    .await
    .unwrap_err();
    assert_backend_without(&e, "s3cr3t-pw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_options_and_bad_urls_are_refused() {
    for (url, secret) in [
        ("postgres://u:hunter2@127.0.0.1:1/db?bogus=1", "hunter2"),
        (
            "postgres://u:hunter2@127.0.0.1:1/db?connections=0",
            "hunter2",
        ),
        (
            "postgres://u:hunter2@127.0.0.1:1/db?port=notaport",
            "hunter2",
        ),
        ("postgres:relative", "-"),
    ] {
        let e = Locker::connect(url).await.unwrap_err();
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e:?}");
        assert!(!format!("{e} {e:?}").contains(secret), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_are_accepted() {
    let url = server_url!();
    let url = with_option(
        &url,
        "connections=1&max_waiters=2&connect_timeout=5&application_name=lh-opts&namespace=opts",
    );
    let locker = Locker::connect(&url).await.unwrap();
    assert_eq!(locker.namespace(), "opts");
    assert!(!locker.url().contains(":lockhog@"), "{}", locker.url());
    let g = locker.lock("x").try_acquire().await.unwrap();
    g.release().await.unwrap();
}
