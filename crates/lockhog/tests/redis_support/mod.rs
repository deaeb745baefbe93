//! Helpers of the Redis tests: the server's URL from the environment, raw connections, unique
//! names, and a hang guard.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

// Each test file uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use common::{
    assert_free, at_most_one_stealer_wins, bounded, cycle, in_fresh_namespace, lockers,
    one_stealer_wins, percentile, spawn_timed_wait, taken_after_foreign, unique, with_option,
    BOUND,
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

/// A pub/sub connection of our own, subscribed to `channel`: to see what is published.
pub async fn listen(url: &str, channel: &str) -> redis::aio::PubSub {
    let mut listener = redis::Client::open(url)
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    listener.subscribe(channel).await.unwrap();
    listener
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

/// Runs `redis-cli` (Debian's redis-tools) with `args` against the server at `redis://…` or
/// against one `host:port`, and returns its output, trimmed. The password, if any, goes
/// through `REDISCLI_AUTH`, never the command line.
pub fn redis_cli(url: &str, args: &[&str]) -> String {
    let body = url.strip_prefix("redis://").unwrap_or(url);
    let (auth, rest) = match body.rsplit_once('@') {
        Some((auth, rest)) => (Some(auth), rest),
        None => (None, body),
    };
    let (addr, db) = rest.split_once('/').unwrap_or((rest, "0"));
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "6379"));
    let mut cmd = std::process::Command::new("redis-cli");
    cmd.args([
        "-h",
        host,
        "-p",
        port,
        "-n",
        if db.is_empty() { "0" } else { db },
    ]);
    if let Some(password) = auth.and_then(|a| a.split_once(':')).map(|(_, p)| p) {
        cmd.env("REDISCLI_AUTH", password);
    }
    let out = cmd
        .args(args)
        .output()
        .expect("redis-cli (Debian's redis-tools; scripts/test installs it)");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `host:port` of every node of a `redlock://` URL.
pub fn redlock_nodes(url: &str) -> Vec<String> {
    let body = url.strip_prefix("redlock://").expect("a redlock:// URL");
    let hosts = body.split(['/', '?']).next().unwrap();
    hosts.split(',').map(str::to_string).collect()
}
