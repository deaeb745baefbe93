//! Helpers of the Redis tests: the server's URL from the environment, raw connections, unique
//! names, and a hang guard.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

/// The hang guard for every wait: a broken backend fails instead of hanging. Never a speed.
pub const BOUND: Duration = Duration::from_secs(30);

/// `LOCKHOG_TEST_REDIS_URL`, or `None` (with the skip reason printed; a failure under CI=true).
pub fn redis_url() -> Option<String> {
    env_url("LOCKHOG_TEST_REDIS_URL")
}

/// The URL in `var`: see [`lockhog::testkit::Target::url`].
pub fn env_url(var: &str) -> Option<String> {
    lockhog::testkit::Target::from_env(var)
        .url()
        .map(str::to_string)
}

/// Returns from the test when the server is missing (outside CI).
#[macro_export]
macro_rules! redis_url {
    () => {
        match redis_support::redis_url() {
            Some(url) => url,
            None => return,
        }
    };
}

/// A raw connection to the server, to look behind the library's back.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A lock name no other test (or earlier run) uses.
pub fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{what}-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// `f`, or a panic naming `what` when it does not finish within [`BOUND`].
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {BOUND:?}"))
}

/// `url` with the query option `opt` (`key=value`) added.
pub fn with_option(url: &str, opt: &str) -> String {
    if url.contains('?') {
        format!("{url}&{opt}")
    } else {
        format!("{url}?{opt}")
    }
}
