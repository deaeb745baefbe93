//! Bad input and refusals: a zero ttl, Redlock node counts, a wrong password (never shown),
//! ACL users, an unreachable server.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::Duration;

use lockhog::{Error, Locker};
use redis_support::{raw, unique, with_option};

#[tokio::test]
async fn a_zero_ttl_is_refused() {
    let url = redis_url!();
    let e = Locker::connect(&with_option(&url, "ttl=0"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e}");
    let locker = Locker::connect(&url).await.unwrap();
    let e = locker
        .lock(unique("zero-ttl"))
        .ttl(Duration::ZERO)
        .try_acquire()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e}");
}

#[tokio::test]
async fn redlock_needs_an_odd_number_of_nodes() {
    for url in [
        "redlock://127.0.0.1:1,127.0.0.1:2",
        "redlock://",
        "redlock://a:1,b:2,c:3,d:4",
    ] {
        let e = Locker::connect(url).await.unwrap_err();
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e}");
    }
}

#[tokio::test]
async fn unknown_options_and_malformed_urls_are_refused() {
    for url in [
        "redis://127.0.0.1:1?bogus=1",
        "redis:127.0.0.1",
        "redis://127.0.0.1:1?ca=/x",
    ] {
        let e = Locker::connect(url).await.unwrap_err();
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error() {
    for url in [
        "redis://127.0.0.1:1",
        "redlock://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
    ] {
        let e = Locker::connect(url).await.unwrap_err();
        assert!(matches!(e, Error::Backend { .. }), "{url}: {e}");
    }
}

/// Creates an ACL user `name` with password `password` that may use everything.
async fn acl_user(url: &str, name: &str, password: &str) {
    let mut conn = raw(url).await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(name)
        .arg("on")
        .arg(format!(">{password}"))
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query_async(&mut conn)
        .await
        .unwrap();
}

fn with_user(url: &str, user: &str, password: &str) -> String {
    url.replacen("redis://", &format!("redis://{user}:{password}@"), 1)
}

#[tokio::test]
async fn acl_users_work_and_a_wrong_password_is_never_shown() {
    let url = redis_url!();
    let user = unique("acl");
    acl_user(&url, &user, "right-horse-battery").await;

    let good = Locker::connect(&with_user(&url, &user, "right-horse-battery"))
        .await
        .unwrap();
    assert!(
        !good.url().contains("right-horse-battery"),
        "{}",
        good.url()
    );
    let g = good.lock(unique("acl-lock")).try_acquire().await.unwrap();
    assert!(g.release().await.unwrap());

    let secret = "wrong-staple-9f3a";
    for bad in [
        with_user(&url, &user, secret),
        with_user(&url, "no-such-user", secret),
    ] {
        let e = Locker::connect(&bad).await.unwrap_err();
        assert!(matches!(e, Error::Backend { .. }), "{e}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(secret), "password shown: {shown}");
    }
    let redlock = format!(
        "redlock://{user}:{secret}@{},{}",
        url.trim_start_matches("redis://"),
        "127.0.0.1:1,127.0.0.1:2"
    );
    let e = Locker::connect(&redlock).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(matches!(e, Error::Backend { .. }), "{e}");
    assert!(!shown.contains(secret), "password shown: {shown}");

    let mut conn = raw(&url).await;
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut conn)
        .await
        .unwrap();
}
