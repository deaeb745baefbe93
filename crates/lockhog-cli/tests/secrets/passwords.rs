//! (a) Passwords in backend URLs never reach stdout or stderr.

use lockhog::testkit::Target;

use super::common::*;

// ---------------------------------------------------------------------------------------------
// (a) passwords

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_POSTGRES_URL");
    let Some(url) = target.url() else { return };
    // A role with a password found nowhere else (SUPERUSER like the scripts' lockhog role, so
    // it may use the fencing sequence that role created).
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect as the scripts' role");
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lockhog_secrets') THEN
                 CREATE ROLE lockhog_secrets LOGIN SUPERUSER PASSWORD '{GOOD_PW}';
               END IF;
             END $$;
             ALTER ROLE lockhog_secrets PASSWORD '{GOOD_PW}'"
        ))
        .await
        .expect("create the role");
    let good = with_credentials(url, "lockhog_secrets", GOOD_PW);
    let wrong = with_credentials(url, "lockhog_secrets", WRONG_PW);
    let url = url.to_string();
    let handle = tokio::runtime::Handle::current();
    let n = tokio::task::spawn_blocking(move || {
        good_and_wrong("postgres", (&good, GOOD_PW), (&wrong, WRONG_PW))
            + odd_good_and_wrong("postgres", &url, "lockhog_secrets", |pw| {
                handle
                    .block_on(
                        client
                            .batch_execute(&format!("ALTER ROLE lockhog_secrets PASSWORD '{pw}'")),
                    )
                    .expect("set the odd password")
            })
    })
    .await
    .unwrap();
    eprintln!("postgres: {n} runs searched, no password found");
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_passwords_never_printed() {
    use mysql_async::prelude::Queryable;
    let target = Target::from_env("LOCKHOG_TEST_MYSQL_URL");
    let Some(url) = target.url() else { return };
    let mut conn = mysql_async::Conn::from_url(url)
        .await
        .expect("connect as the scripts' user");
    for host in ["127.0.0.1", "localhost"] {
        conn.query_drop(format!(
            "CREATE USER IF NOT EXISTS 'lockhog_secrets'@'{host}' IDENTIFIED BY '{GOOD_PW}'"
        ))
        .await
        .expect("create the user");
        conn.query_drop(format!(
            "ALTER USER 'lockhog_secrets'@'{host}' IDENTIFIED BY '{GOOD_PW}'"
        ))
        .await
        .expect("reset the password");
        // The scripts' user has ALL on *.* but not GRANT OPTION, so GRANT is refused; on
        // MariaDB its privileges can still be copied through the grant table it may write.
        let granted = conn
            .query_drop(format!("GRANT ALL ON *.* TO 'lockhog_secrets'@'{host}'"))
            .await;
        if granted.is_err() {
            conn.query_drop(format!(
                "UPDATE mysql.global_priv g, mysql.global_priv l \
                 SET g.Priv = JSON_SET(g.Priv, '$.access', \
                                       CAST(JSON_VALUE(l.Priv, '$.access') AS UNSIGNED)) \
                 WHERE g.User = 'lockhog_secrets' AND g.Host = '{host}' \
                   AND l.User = 'lockhog' AND l.Host = '{host}'"
            ))
            .await
            .expect("copy the privileges of the scripts' user");
        }
    }
    conn.query_drop("FLUSH PRIVILEGES").await.expect("flush");
    let good = with_credentials(url, "lockhog_secrets", GOOD_PW);
    let wrong = with_credentials(url, "lockhog_secrets", WRONG_PW);
    let url = url.to_string();
    let handle = tokio::runtime::Handle::current();
    let (n, conn) = tokio::task::spawn_blocking(move || {
        let mut n = good_and_wrong("mysql", (&good, GOOD_PW), (&wrong, WRONG_PW));
        n += odd_good_and_wrong("mysql", &url, "lockhog_secrets", |pw| {
            for host in ["127.0.0.1", "localhost"] {
                handle
                    .block_on(conn.query_drop(format!(
                        "ALTER USER 'lockhog_secrets'@'{host}' IDENTIFIED BY '{pw}'"
                    )))
                    .expect("set the odd password");
            }
        });
        (n, conn)
    })
    .await
    .unwrap();
    conn.disconnect().await.unwrap();
    eprintln!("mysql: {n} runs searched, no password found");
}

/// An ACL user with `password` on the Redis server at `addr`, allowed everything.
fn redis_acl_user(addr: &str, user: &str, password: &str) {
    let pw = format!(">{password}");
    let reply = redis_cmd(
        addr,
        &[
            b"ACL",
            b"SETUSER",
            user.as_bytes(),
            b"on",
            pw.as_bytes(),
            b"~*",
            b"&*",
            b"+@all",
        ],
    );
    assert_eq!(reply, b"+OK\r\n", "{}", String::from_utf8_lossy(&reply));
}

#[cfg(feature = "redis")]
#[test]
fn redis_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_REDIS_URL");
    let Some(url) = target.url() else { return };
    redis_acl_user(&first_host(url), "lockhog_secrets", GOOD_PW);
    let good = with_credentials(url, "lockhog_secrets", GOOD_PW);
    let wrong = with_credentials(url, "lockhog_secrets", WRONG_PW);
    let mut n = good_and_wrong("redis", (&good, GOOD_PW), (&wrong, WRONG_PW));
    let host = first_host(url);
    n += odd_good_and_wrong("redis", url, "lockhog_secrets", |pw| {
        redis_acl_user(&host, "lockhog_secrets", pw)
    });
    // The default user with a password, which this server does not require: refused too.
    n += every_command(
        "redis-wrong-default",
        &with_credentials(url, "", WRONG_PW),
        WRONG_PW,
        false,
    );
    eprintln!("redis: {n} runs searched, no password found");
}

#[cfg(feature = "redis")]
#[test]
fn redlock_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_REDLOCK_URL");
    let Some(url) = target.url() else { return };
    let nodes = url.split_once("://").unwrap().1;
    for node in nodes.split([',', '/', '?']).filter(|n| n.contains(':')) {
        redis_acl_user(node, "lockhog_secrets", GOOD_PW);
    }
    let good = with_credentials(url, "lockhog_secrets", GOOD_PW);
    let wrong = with_credentials(url, "lockhog_secrets", WRONG_PW);
    let mut n = good_and_wrong("redlock", (&good, GOOD_PW), (&wrong, WRONG_PW));
    n += odd_good_and_wrong("redlock", url, "lockhog_secrets", |pw| {
        for node in nodes.split([',', '/', '?']).filter(|n| n.contains(':')) {
            redis_acl_user(node, "lockhog_secrets", pw);
        }
    });
    eprintln!("redlock: {n} runs searched, no password found");
}

/// memcached has no authentication (the binary protocol's SASL is not used): a URL with
/// credentials is refused as a usage error, and the password is not echoed.
#[cfg(feature = "memcached")]
#[test]
fn memcached_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_MEMCACHED_URL");
    let Some(url) = target.url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = with_credentials(url, "u", WRONG_PW);
    let mut n = 0;
    for args in [
        vec!["status", "-b", &url],
        vec!["cleanup", "-b", &url],
        vec!["run", "-n", "-b", &url, "x", "--", "true"],
        vec!["hold", "-n", "-b", &url, "x"],
    ] {
        let ran = lockhog(dir.path(), &args, None, b"release\n");
        assert_no_secret(&ran, WRONG_PW);
        assert_ne!(ran.code, 0, "credentials were silently ignored: {ran:?}");
        n += 1;
    }
    eprintln!("memcached: {n} runs searched, no password found");
}

/// The test cluster runs without etcd's auth, so no password is right: every command is refused
/// (authentication is not enabled) and says so without the password.
#[cfg(feature = "etcd")]
#[test]
fn etcd_passwords_never_printed() {
    let target = Target::from_env("LOCKHOG_TEST_ETCD_URL");
    let Some(url) = target.url() else { return };
    let n = every_command(
        "etcd-wrong",
        &with_credentials(url, "root", WRONG_PW),
        WRONG_PW,
        false,
    );
    let odd = odd_password("wrong");
    let n = n + every_command(
        "etcd-odd-wrong",
        &with_credentials(url, "root", &in_url(&odd)),
        &odd,
        false,
    );
    eprintln!("etcd: {n} runs searched, no password found");
}

/// The right password and a wrong one over `etcds://` with client certificates, against an etcd
/// of this test's own with auth enabled (the shared cluster has none): with the right one every
/// command succeeds (so its trace logs cover a real session: authenticate, lock, status,
/// cleanup), with the wrong one every command is refused; neither password is ever printed.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_secure_passwords_never_printed() {
    use crate::tls_support::etcd::SecureEtcd;
    // Random inside, so a hit can only be this run's password, not text that happens to match.
    let good = odd_password("good");
    let wrong = odd_password("wrong");
    let Some(etcd) = SecureEtcd::start(Some(("root", &good))).await else {
        return;
    };
    let good_url = etcd.url(&format!("root:{}@", in_url(&good)), &etcd.tls_query());
    let wrong_url = etcd.url(&format!("root:{}@", in_url(&wrong)), &etcd.tls_query());
    let ran = tokio::task::spawn_blocking(move || {
        good_and_wrong("etcds", (&good_url, &good), (&wrong_url, &wrong))
    })
    .await;
    let n = match ran {
        Ok(n) => n,
        // A failed run panicked with its output; the server's log says what etcd saw.
        Err(e) => panic!("{e}\netcd's log:\n{}", etcd.log_tail()),
    };
    eprintln!("etcds: {n} runs searched, no password found");
}
