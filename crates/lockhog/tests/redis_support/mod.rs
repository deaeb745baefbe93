//! Helpers of the Redis tests: the server's URL from the environment, raw connections, unique
//! names, and a hang guard.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

// Each test file uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use common::{
    bounded, cycle, lockers, percentile, spawn_timed_wait, unique, with_option, BOUND,
};

/// `LOCKHOG_TEST_REDIS_URL`, or `None` (with the skip reason printed; a failure under CI=true).
pub fn redis_url() -> Option<String> {
    env_url("LOCKHOG_TEST_REDIS_URL")
}

/// The URL in `var` (a Redis server that `scripts/test` starts): see [`common::env_url`].
pub fn env_url(var: &str) -> Option<String> {
    common::env_url(var, "Redis")
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

/// The subscribers of `channel` (`PUBSUB NUMSUB`).
pub async fn subscribers(conn: &mut redis::aio::MultiplexedConnection, channel: &str) -> i64 {
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(conn)
        .await
        .unwrap();
    counts[0].1
}
