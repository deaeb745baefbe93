//! `lockhog hold/status --resource` on the network stores (redis, redlock, memcached, etcd):
//! the four-field `held` line (a token only where the store numbers holders: etcd), `status`
//! saying held and free, `abandon` leaving the lock to its lease as for names, and bad
//! resources refused with exit 2 before anything is dialled or written. The URL goes in
//! LOCKHOG_URL, never on the command line.

#[allow(dead_code)] // helpers for the other test files too
mod support;

use std::process::Command;

use support::{hold, lockhog_cmd, server, Finished, Proc};

/// The stores of this test whose servers scripts/test started: `(env var, token expected)`.
const STORES: &[(&str, bool)] = &[
    ("LOCKHOG_TEST_REDIS_URL", false),
    ("LOCKHOG_TEST_REDLOCK_URL", false),
    ("LOCKHOG_TEST_MEMCACHED_URL", false),
    ("LOCKHOG_TEST_ETCD_URL", true),
];

/// A resource no other test or run uses (valid on every store of this test).
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("res-{what}-{}-{nanos}", std::process::id())
}

/// `lockhog <sub> <args…>` on `url` (given in LOCKHOG_URL).
fn cmd(url: &str, sub: &str, args: &[&str]) -> Command {
    let mut cmd = lockhog_cmd();
    cmd.env("LOCKHOG_URL", url).arg(sub).args(args);
    cmd
}

fn run(url: &str, sub: &str, args: &[&str]) -> Finished {
    Proc::spawn(cmd(url, sub, args), &format!("lockhog {sub} {args:?}")).finish()
}

/// The state `lockhog status --resource res` prints: `held` or `free`.
fn state(url: &str, res: &str) -> String {
    let done = run(url, "status", &["--resource", res]);
    done.assert_code(0);
    assert_eq!(done.stdout.len(), 1, "{done:#?}");
    let fields: Vec<&str> = done.stdout[0].split(' ').collect();
    assert_eq!(fields[1..3], [res, res], "{done:#?}");
    fields[0].to_string()
}

#[test]
fn hold_resource_prints_the_held_line_releases_and_abandons() {
    for &(var, numbered) in STORES {
        let Some(url) = server(var) else { continue };
        let res = unique("report");
        let mut h = hold(cmd(&url, "hold", &["--resource", &res]), var, 1);
        assert_eq!(
            (h.name(0), h.resource(0)),
            (res.clone(), res.clone()),
            "{var}"
        );
        assert_eq!(
            h.held[0].token.is_some(),
            numbered,
            "{var}: {:?}",
            h.held[0]
        );
        assert_eq!(state(&url, &res), "held", "{var}");
        h.proc.send("release");
        assert_eq!(h.proc.line(), format!("released {res}"), "{var}");
        assert!(h.proc.wait().success(), "{var}");
        assert_eq!(state(&url, &res), "free", "{var}");

        // `abandon` exits without releasing: the lock stays until its lease runs out.
        let abandoned = unique("abandoned");
        let mut h = hold(
            cmd(&url, "hold", &["--resource", &abandoned, "--ttl", "2"]),
            var,
            1,
        );
        h.proc.send("abandon");
        let done = h.proc.finish();
        done.assert_code(0);
        assert!(done.stdout.is_empty(), "no released line: {done:#?}");
        assert_eq!(state(&url, &abandoned), "held", "{var}");
    }
}

#[test]
fn bad_resources_exit_2_before_anything_is_dialled_or_written() {
    let long = "k".repeat(1025);
    let planted = unique("planted");
    let injection = format!("x 0 0 1\r\nset {planted} 0 0 1\r\nX");
    // Nothing listens on port 1: a resource refused before connecting never finds out.
    let cases: &[(&str, &str, &str)] = &[
        ("redis://127.0.0.1:1", "", "a Redis key of 1 to 1024 bytes"),
        (
            "redis://127.0.0.1:1",
            &long,
            "a Redis key of 1 to 1024 bytes",
        ),
        ("redlock://127.0.0.1:1", "", "a Redis key"),
        (
            "memcached://127.0.0.1:1",
            "a b",
            "a memcached key of 1 to 250",
        ),
        (
            "memcached://127.0.0.1:1",
            &long,
            "a memcached key of 1 to 250",
        ),
        (
            "etcd://127.0.0.1:1",
            "",
            "the prefix of `etcdctl lock <prefix>`",
        ),
        (
            "etcd://127.0.0.1:1",
            &long,
            "the prefix of `etcdctl lock <prefix>`",
        ),
    ];
    for &(url, res, expected) in cases {
        for sub in ["hold", "status"] {
            let done = run(url, sub, &["--resource", res]);
            done.assert_code(2);
            assert!(done.stderr.contains(expected), "{url} {res:?}: {done:#?}");
        }
    }
    // The same refusal against the real server: the injected command never reaches it.
    if let Some(url) = server("LOCKHOG_TEST_MEMCACHED_URL") {
        let done = run(&url, "hold", &["--resource", &injection]);
        done.assert_code(2);
        assert!(done.stdout.is_empty(), "{done:#?}");
        assert_eq!(state(&url, &planted), "free", "the injected `set` ran");
    }
}
