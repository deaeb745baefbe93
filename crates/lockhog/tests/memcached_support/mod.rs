//! Helpers of the memcached tests: the server's URL from the environment and a raw
//! text-protocol client to look behind the library's back.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

// Each test file uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use common::{
    assert_free, bounded, env_url, in_fresh_namespace, lockers, one_stealer_wins,
    taken_after_foreign, unique, BOUND,
};

/// Returns from the test when the server is missing (outside CI; a failure under CI=true).
#[macro_export]
macro_rules! memcached_url {
    () => {
        match memcached_support::env_url("LOCKHOG_TEST_MEMCACHED_URL", "memcached") {
            Some(u) => u,
            None => return,
        }
    };
}

/// One raw text-protocol exchange; returns the first answer line.
pub fn raw(url: &str, request: &str) -> String {
    let addr = url.trim_start_matches("memcached://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim_end().to_string()
}
