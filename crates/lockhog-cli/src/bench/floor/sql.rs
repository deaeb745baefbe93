//! The floors of the SQL backends (see [`floor`](super)): prepared advisory-lock
//! statements on tokio-postgres, `GET_LOCK`/`RELEASE_LOCK` on mysql_async, a row insert and
//! delete on rusqlite.

#[cfg(any(feature = "postgres", feature = "mysql"))]
use super::measure::PARK;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use crate::bench::{
    stats::Sample,
    workloads::{Handoff, Uncontended},
};
#[cfg(any(feature = "postgres", feature = "mysql"))]
use std::time::Instant;

#[cfg(any(feature = "mysql", feature = "sqlite"))]
use super::measure::KEY;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use super::measure::{fail, Measured};
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use crate::exit::Failure;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// postgres

#[cfg(feature = "postgres")]
pub async fn postgres(url: &str, u_run: Duration, h_run: Duration) -> Result<Measured, Failure> {
    use tokio_postgres::NoTls;
    let connect = || async {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| fail("postgres", e))?;
        tokio::spawn(conn);
        Ok::<_, Failure>(client)
    };
    let (c, w) = (connect().await?, connect().await?);
    let pg = |e: tokio_postgres::Error| fail("postgres", e);
    let lock = c.prepare("SELECT pg_advisory_lock($1)").await.map_err(pg)?;
    let unlock = c
        .prepare("SELECT pg_advisory_unlock($1)")
        .await
        .map_err(pg)?;
    let key: i64 = 0x006c_6f63_6b68_6f67;
    for _ in 0..50 {
        c.query_one(&lock, &[&key]).await.map_err(pg)?;
        c.query_one(&unlock, &[&key]).await.map_err(pg)?;
    }
    let mut latencies = Vec::with_capacity(16 * 1024);
    let started = Instant::now();
    while started.elapsed() < u_run {
        let t = Instant::now();
        c.query_one(&lock, &[&key]).await.map_err(pg)?;
        c.query_one(&unlock, &[&key]).await.map_err(pg)?;
        latencies.push(t.elapsed());
    }
    let uncontended = Uncontended {
        cycles: latencies.len() as u64,
        elapsed: started.elapsed(),
        cycle: Sample::new(latencies),
    };

    let w = std::sync::Arc::new(w);
    let mut latencies = Vec::new();
    let started = Instant::now();
    while latencies.len() < 20 || started.elapsed() < h_run {
        c.query_one(&lock, &[&key]).await.map_err(pg)?;
        let w2 = w.clone();
        let waiter = tokio::spawn(async move {
            w2.query_one("SELECT pg_advisory_lock($1)", &[&key]).await?;
            let held = Instant::now();
            w2.query_one("SELECT pg_advisory_unlock($1)", &[&key])
                .await?;
            Ok::<_, tokio_postgres::Error>(held)
        });
        tokio::time::sleep(PARK).await;
        let released = Instant::now();
        c.query_one(&unlock, &[&key]).await.map_err(pg)?;
        let held = waiter
            .await
            .map_err(|e| fail("postgres waiter", e))?
            .map_err(pg)?;
        latencies.push(held.saturating_duration_since(released));
    }
    Ok((
        "prepared SELECT pg_advisory_lock($1) + SELECT pg_advisory_unlock($1) (tokio-postgres)",
        uncontended,
        Some(Handoff {
            latency: Sample::new(latencies),
            park: PARK,
        }),
    ))
}

// ---------------------------------------------------------------------------------------------
// mysql

#[cfg(feature = "mysql")]
type MysqlPair = (Option<Option<i64>>, Option<Option<i64>>);

#[cfg(feature = "mysql")]
async fn mysql_cycle(c: &mut mysql_async::Conn) -> mysql_async::Result<MysqlPair> {
    use mysql_async::prelude::Queryable;
    let got = c.exec_first("SELECT GET_LOCK(?, 0)", (KEY,)).await?;
    let freed = c.exec_first("SELECT RELEASE_LOCK(?)", (KEY,)).await?;
    Ok((got, freed))
}

#[cfg(feature = "mysql")]
pub async fn mysql(url: &str, u_run: Duration, h_run: Duration) -> Result<Measured, Failure> {
    use mysql_async::prelude::Queryable;
    let my = |e: mysql_async::Error| fail("mysql", e);
    let mut c = mysql_async::Conn::from_url(url).await.map_err(my)?;
    let w = mysql_async::Conn::from_url(url).await.map_err(my)?;
    for _ in 0..50 {
        mysql_cycle(&mut c).await.map_err(my)?;
    }
    let mut latencies = Vec::with_capacity(16 * 1024);
    let started = Instant::now();
    while started.elapsed() < u_run {
        let t = Instant::now();
        let (got, freed) = mysql_cycle(&mut c).await.map_err(my)?;
        if got != Some(Some(1)) || freed != Some(Some(1)) {
            return Err(fail("mysql", "GET_LOCK or RELEASE_LOCK did not return 1"));
        }
        latencies.push(t.elapsed());
    }
    let uncontended = Uncontended {
        cycles: latencies.len() as u64,
        elapsed: started.elapsed(),
        cycle: Sample::new(latencies),
    };

    let mut w = Some(w);
    let mut latencies = Vec::new();
    let started = Instant::now();
    while latencies.len() < 20 || started.elapsed() < h_run {
        let _: Option<Option<i64>> = c
            .exec_first("SELECT GET_LOCK(?, 0)", (KEY,))
            .await
            .map_err(my)?;
        let mut wc = w.take().expect("the waiter's connection is back");
        let waiter = tokio::spawn(async move {
            let r: mysql_async::Result<Instant> = async {
                let _: Option<Option<i64>> =
                    wc.exec_first("SELECT GET_LOCK(?, 30)", (KEY,)).await?;
                let held = Instant::now();
                let _: Option<Option<i64>> =
                    wc.exec_first("SELECT RELEASE_LOCK(?)", (KEY,)).await?;
                Ok(held)
            }
            .await;
            (wc, r)
        });
        tokio::time::sleep(PARK).await;
        let released = Instant::now();
        let _: Option<Option<i64>> = c
            .exec_first("SELECT RELEASE_LOCK(?)", (KEY,))
            .await
            .map_err(my)?;
        let (wc, held) = waiter.await.map_err(|e| fail("mysql waiter", e))?;
        w = Some(wc);
        latencies.push(held.map_err(my)?.saturating_duration_since(released));
    }
    Ok((
        "prepared SELECT GET_LOCK(?, 0) + SELECT RELEASE_LOCK(?) (mysql_async)",
        uncontended,
        Some(Handoff {
            latency: Sample::new(latencies),
            park: PARK,
        }),
    ))
}

// ---------------------------------------------------------------------------------------------
// sqlite

#[cfg(feature = "sqlite")]
pub fn sqlite(url: &str, u_run: Duration) -> Result<Measured, Failure> {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    let sq = |e: rusqlite::Error| fail("sqlite", e);
    let c = rusqlite::Connection::open(path).map_err(sq)?;
    c.busy_timeout(Duration::from_secs(5)).map_err(sq)?;
    let _: String = c
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sq)?;
    c.execute_batch(
        "PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS lockhog_bench_floor (
             name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL
         ) WITHOUT ROWID;",
    )
    .map_err(sq)?;
    let mut n = 0i64;
    let uncontended = super::measure::cycles(u_run, || {
        n += 1;
        let owner = format!("floor-{n}");
        let r = (|| {
            c.execute_batch("BEGIN IMMEDIATE")?;
            c.prepare_cached(
                "INSERT INTO lockhog_bench_floor (name, owner, expires_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(rusqlite::params![KEY, owner, n])?;
            c.execute_batch("COMMIT")?;
            c.prepare_cached("DELETE FROM lockhog_bench_floor WHERE name = ?1 AND owner = ?2")?
                .execute(rusqlite::params![KEY, owner])?;
            Ok::<_, rusqlite::Error>(())
        })();
        r.map_err(std::io::Error::other)
    })
    .map_err(|e| fail("sqlite", e))?;
    Ok((
        "BEGIN IMMEDIATE; INSERT row; COMMIT + DELETE row by owner (WAL, synchronous=FULL)",
        uncontended,
        None,
    ))
}
