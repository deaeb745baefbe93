//! Bad input: a wrong password, a database that does not exist, a closed port, a server that
//! never answers, a malformed URL: `Backend` (or `InvalidUrl`) errors from
//! `Locker::connect`, within the wait bound, never carrying the password.

#![cfg(feature = "mysql")]

mod mysql_support;

use std::time::Duration;

use lockhog::{Error, Locker};
use mysql_support::{bounded, with_option};

/// `url` with its password and database replaced.
fn with_parts(url: &str, password: Option<&str>, db: Option<&str>) -> String {
    let (head, rest) = url.split_once("://").unwrap();
    let (auth, hostpath) = rest.rsplit_once('@').unwrap();
    let user = auth.split(':').next().unwrap();
    let (host, path) = hostpath.split_once('/').unwrap();
    let auth = match password {
        Some(p) => format!("{user}:{p}"),
        None => auth.to_string(),
    };
    let path = db.unwrap_or(path);
    format!("{head}://{auth}@{host}/{path}")
}

fn backend_error(outcome: lockhog::Result<Locker>, secret: &str) -> String {
    match outcome {
        Err(e @ Error::Backend { .. }) => {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(secret), "the password leaked: {text}");
            text
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_backend_error_without_the_password() {
    let url = server_url!();
    let secret = "n0t-the-Passw0rd";
    let bad = with_parts(&url, Some(secret), None);
    let text = backend_error(bounded("connect", Locker::connect(&bad)).await, secret);
    assert!(text.contains("Access denied"), "{text}");
    assert!(text.contains(":***@"), "the URL is shown redacted: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_database_is_a_backend_error() {
    let url = server_url!();
    let bad = with_parts(&url, None, Some("lockhog_no_such_database"));
    let text = backend_error(
        bounded("connect", Locker::connect(&bad)).await,
        "lockhog:lockhog@",
    );
    assert!(text.contains("lockhog_no_such_database"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_a_backend_error() {
    let secret = "s3cret-pw";
    let url = format!("mysql://lockhog:{secret}@127.0.0.1:1/lockhog");
    backend_error(bounded("connect", Locker::connect(&url)).await, secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_gives_up_at_connect_timeout() {
    // A socket that accepts connections (the kernel completes the handshake) and never
    // sends MySQL's greeting.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let secret = "s3cret-pw";
    let url = format!("mysql://lockhog:{secret}@127.0.0.1:{port}/lockhog?connect_timeout=300ms");
    let text = backend_error(bounded("connect", Locker::connect(&url)).await, secret);
    assert!(text.contains("connect_timeout"), "{text}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_urls_are_invalid_before_any_io() {
    let secret = "s3cret-pw";
    for url in [
        format!("mysql://u:{secret}@127.0.0.1:1"),
        format!("mysql://u:{secret}@127.0.0.1:1/"),
        format!("mysql://u:{secret}@127.0.0.1:1/db?bogus=1"),
        format!("mysql://u:{secret}@127.0.0.1:99999/db"),
        format!("mysql://u:{secret}@127.0.0.1:1/db?connections=0"),
        format!("mysql://u:{secret}@127.0.0.1:1/db?fencing_counter=clock"),
    ] {
        match Locker::connect(&url).await {
            Err(e @ Error::InvalidUrl { .. }) => {
                assert!(!format!("{e} {e:?}").contains(secret), "{e}");
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_are_accepted() {
    let url = server_url!();
    let url = with_option(
        &url,
        "connections=2&max_waiters=3&connect_timeout=5&lost_check=250ms&namespace=errors-test",
    );
    let locker = Locker::connect(&url).await.unwrap();
    assert_eq!(locker.namespace(), "errors-test");
    let g = locker
        .lock("x")
        .wait_for(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(g.resource().starts_with("lh:x:"));
    g.release().await.unwrap();
}
