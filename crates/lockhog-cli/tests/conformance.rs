//! The conformance suite (lockhog::testkit) against every backend in this build. It lives in
//! the CLI's tests because its crash and protocol checks run the `lockhog` binary.

use lockhog::testkit::Target;

fn hold_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockhog")
}

lockhog::conformance_suite!(mem_backend, Target::new("mem:").with_hold_bin(hold_bin()));
lockhog::conformance_suite!(
    file_backend,
    Target::temp_file_dir("").with_hold_bin(hold_bin())
);
lockhog::conformance_suite!(
    file_fcntl_backend,
    Target::temp_file_dir("?mode=fcntl").with_hold_bin(hold_bin())
);
#[cfg(feature = "postgres")]
lockhog::conformance_suite!(
    postgres_backend,
    Target::from_env("LOCKHOG_TEST_POSTGRES_URL")
        .with_hold_bin(hold_bin())
        .with_unreachable_url("postgres://lockhog@127.0.0.1:1/postgres")
);
#[cfg(feature = "redis")]
lockhog::conformance_suite!(
    redis_backend,
    Target::from_env("LOCKHOG_TEST_REDIS_URL")
        .with_hold_bin(hold_bin())
        .with_unreachable_url("redis://127.0.0.1:1")
);
#[cfg(feature = "redis")]
lockhog::conformance_suite!(
    redlock_backend,
    Target::from_env("LOCKHOG_TEST_REDLOCK_URL")
        .with_hold_bin(hold_bin())
        .with_unreachable_url("redlock://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3")
);
#[cfg(feature = "memcached")]
lockhog::conformance_suite!(
    memcached_backend,
    Target::from_env("LOCKHOG_TEST_MEMCACHED_URL")
        .with_hold_bin(hold_bin())
        .with_unreachable_url("memcached://127.0.0.1:1")
);
#[cfg(feature = "mysql")]
lockhog::conformance_suite!(
    mysql_backend,
    Target::from_env("LOCKHOG_TEST_MYSQL_URL")
        .with_hold_bin(hold_bin())
        .with_unreachable_url("mysql://lockhog@127.0.0.1:1/lockhog")
);
#[cfg(feature = "sqlite")]
lockhog::conformance_suite!(
    sqlite_backend,
    Target::temp_sqlite("")
        .with_hold_bin(hold_bin())
        // A database in a directory that does not exist: the nearest thing to an unreachable
        // server for a file.
        .with_unreachable_url("sqlite:///nonexistent-lockhog-dir/locks.db")
);
#[cfg(feature = "etcd")]
lockhog::conformance_suite!(
    etcd_backend,
    Target::from_env("LOCKHOG_TEST_ETCD_URL")
        .with_hold_bin(hold_bin())
        .with_unreachable_url("etcd://127.0.0.1:1")
);
