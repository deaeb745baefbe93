//! etcd bad input: malformed URLs and unknown options are usage errors before any I/O;
//! unreachable members and refused credentials are `Backend` errors within a bounded time,
//! and no message carries the password.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use etcd_support::{bounded, endpoints};
use lockhog::{Error, Locker};

#[tokio::test]
async fn malformed_urls_and_unknown_options_are_refused() {
    for url in [
        "etcd:127.0.0.1:2379",
        "etcd://",
        "etcd://h:1,,h:2",
        "etcd://h:notaport",
        "etcd://h:1/some/path",
        "etcd://h:1?bogus=1",
        "etcd://user@h:1",
    ] {
        let e = Locker::connect(url).await.unwrap_err();
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e:?}");
    }
    let e = Locker::connect("etcd://root:hunter2@h:1?bogus=1")
        .await
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
}

#[tokio::test]
async fn unreachable_members_are_backend_errors() {
    let e = bounded(
        "connecting to nothing",
        Locker::connect("etcd://app:hunter2@127.0.0.1:1,127.0.0.1:2"),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
    let text = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
    assert!(!text.contains("hunter2"), "{text}");
}

/// Credentials on a cluster without auth (the test cluster) are refused by etcd at connect:
/// a `Backend` error, without the password.
#[tokio::test]
async fn credentials_refused_are_backend_errors_without_the_password() {
    let url = etcd_url!();
    let live = endpoints(&url).join(",");
    let e = bounded(
        "connecting with credentials",
        Locker::connect(&format!("etcd://root:hunter2@{live}")),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
    let text = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
    assert!(!text.contains("hunter2"), "{text}");
}
