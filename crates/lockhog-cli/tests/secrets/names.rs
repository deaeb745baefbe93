//! (b) Lock names reach SQL, Lua, memcached and the shell only as data.

use std::path::PathBuf;
use std::time::Duration;

use lockhog::testkit::Target;
use lockhog::{LockState, Locker};

use super::common::*;

// ---------------------------------------------------------------------------------------------
// (b) names are data

fn canary_dir() -> PathBuf {
    std::env::temp_dir().join(format!("lockhog-injection-{}", std::process::id()))
}

/// Names written to break out of SQL, Lua, memcached's text protocol, etcd key ranges and shell.
fn hostile_names() -> Vec<String> {
    let canary = canary_dir().join("pwned");
    let canary = canary.display();
    vec![
        "'); DROP TABLE lockhog_fencing; --".into(),
        "'); DROP SEQUENCE lockhog_fencing; --".into(),
        r#"" OR 1=1 --"#.into(),
        "x'; SELECT pg_sleep(0); SELECT '".into(),
        "\\'; DELETE FROM lockhog_fencing; #".into(),
        "]]..redis.call('FLUSHALL')..[[".into(),
        "\"..redis.call('FLUSHALL')..\"".into(),
        "x\r\nflush_all\r\n".into(),
        "x flush_all noreply".into(),
        format!("$(touch {canary})"),
        format!("`touch {canary}`"),
        format!("; touch {canary}; #"),
        "\0".into(),
        "a\0b".into(),
        "*".into(),
        "%".into(),
        "/".into(),
        "\u{0}\u{7f}\u{1b}[2J".into(),
        "'".repeat(1024),
        ";".repeat(1024),
        "]".repeat(512) + &"[".repeat(512),
    ]
}

/// Takes every hostile name (each held while another locker tries it, then released, and once
/// more through `lockhog hold` and `run` in a child process), with a sentinel lock held by
/// another locker throughout; then the sentinel is still held and no canary file exists.
/// Returns how many names were used.
async fn take_hostile_names(url: &str) -> usize {
    std::fs::create_dir_all(canary_dir()).unwrap();
    let (a, b) = (
        Locker::connect(url).await.unwrap(),
        Locker::connect(url).await.unwrap(),
    );
    let sentinel = b
        .lock("injection-sentinel")
        .wait_for(Duration::from_secs(30))
        .await
        .expect("sentinel");
    let names = hostile_names();
    for name in &names {
        let g = a
            .lock(name)
            .wait_for(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(
            b.lock(name)
                .try_acquire()
                .await
                .unwrap_err()
                .is_not_acquired(),
            "{name:?}: not exclusive"
        );
        let st = b.status(&[name]).await.expect("status");
        assert_eq!(st[0].state, LockState::Held, "{name:?}: {st:?}");
        assert!(g.release().await.unwrap(), "{name:?}");
    }
    // The same names through the command line (no NUL: argv cannot carry it).
    let dir = tempfile::tempdir().unwrap();
    let argv_names: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.contains('\0'))
        .collect();
    let url_owned = url.to_string();
    let dir_path = dir.path().to_path_buf();
    let argv: Vec<String> = argv_names.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut args = vec!["hold", "-w", "30", "-b", &url_owned];
        args.extend(argv.iter().map(String::as_str));
        let ran = lockhog(&dir_path, &args, None, b"release\n");
        assert_eq!(ran.code, 0, "{ran:?}");
        for name in &argv {
            let ran = lockhog(
                &dir_path,
                &["run", "-w", "30", "-b", &url_owned, name, "--", "true"],
                None,
                b"",
            );
            assert_eq!(ran.code, 0, "{ran:?}");
        }
    })
    .await
    .unwrap();
    let st = a.status(&["injection-sentinel"]).await.expect("status");
    assert_eq!(st[0].state, LockState::Held, "the sentinel: {st:?}");
    assert!(sentinel.release().await.unwrap(), "the sentinel was lost");
    let canary = canary_dir().join("pwned");
    assert!(
        !canary.exists(),
        "a name reached a shell: {canary:?} exists"
    );
    names.len()
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_names_are_parameters() {
    let target = Target::from_env("LOCKHOG_TEST_POSTGRES_URL");
    let Some(url) = target.url() else { return };
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS lockhog_injection_canary (x int)")
        .await
        .unwrap();
    let n = take_hostile_names(url).await;
    for object in ["lockhog_fencing", "lockhog_injection_canary"] {
        let row = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&object])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "{object} is gone");
    }
    eprintln!("postgres: {n} hostile names, the fencing sequence and a canary table intact");
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_names_are_parameters() {
    use mysql_async::prelude::Queryable;
    let target = Target::from_env("LOCKHOG_TEST_MYSQL_URL");
    let Some(url) = target.url() else { return };
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    conn.query_drop("CREATE TABLE IF NOT EXISTS lockhog_injection_canary (x int)")
        .await
        .unwrap();
    let n = take_hostile_names(url).await;
    for object in ["lockhog_fencing", "lockhog_injection_canary"] {
        let count: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = ?",
                (object,),
            )
            .await
            .unwrap();
        assert_eq!(count, Some(1), "{object} is gone");
    }
    conn.disconnect().await.unwrap();
    eprintln!("mysql: {n} hostile names, the fencing object and a canary table intact");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_names_are_parameters() {
    for var in ["LOCKHOG_TEST_REDIS_URL", "LOCKHOG_TEST_REDLOCK_URL"] {
        let target = Target::from_env(var);
        let Some(url) = target.url() else { continue };
        let nodes: Vec<String> = url
            .split_once("://")
            .unwrap()
            .1
            .split([',', '/', '?'])
            .filter(|n| n.contains(':'))
            .map(str::to_string)
            .collect();
        for node in &nodes {
            let reply = redis_cmd(node, &[b"SET", b"lockhog-injection-canary", b"1"]);
            assert_eq!(reply, b"+OK\r\n");
        }
        let n = take_hostile_names(url).await;
        for node in &nodes {
            let reply = redis_cmd(node, &[b"EXISTS", b"lockhog-injection-canary"]);
            assert_eq!(reply, b":1\r\n", "{var}: {node} was flushed");
        }
        eprintln!("{var}: {n} hostile names, a canary key intact on every node");
    }
}

#[cfg(feature = "memcached")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_names_are_parameters() {
    let target = Target::from_env("LOCKHOG_TEST_MEMCACHED_URL");
    let Some(url) = target.url() else { return };
    let addr = first_host(url);
    let reply = memcached_cmd(
        &addr,
        b"set lockhog-injection-canary 0 0 1\r\n1\r\n",
        b"\r\n",
    );
    assert_eq!(reply, b"STORED\r\n");
    let n = take_hostile_names(url).await;
    let reply = memcached_cmd(&addr, b"get lockhog-injection-canary\r\n", b"END\r\n");
    assert!(
        reply.starts_with(b"VALUE lockhog-injection-canary"),
        "flushed: {}",
        String::from_utf8_lossy(&reply)
    );
    eprintln!("memcached: {n} hostile names, a canary key intact");
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_names_are_parameters() {
    let target = Target::from_env("LOCKHOG_TEST_ETCD_URL");
    let Some(url) = target.url() else { return };
    // No raw etcd client here: the sentinel lock held by another locker throughout is the
    // canary (a name that escaped its key, e.g. into a range delete, would take it).
    let n = take_hostile_names(url).await;
    eprintln!("etcd: {n} hostile names, the sentinel lock intact");
}
