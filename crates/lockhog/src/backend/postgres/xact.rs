//! Transaction-level advisory locks on the caller's own connection: `pg_advisory_xact_lock`
//! and friends, under the same keys as lockhog's session locks (so the two exclude each
//! other), released by the server when the transaction commits or rolls back.
//!
//! They need no lockhog connection and no guard, and they work behind PgBouncer in
//! transaction mode (the lock lives exactly as long as the transaction PgBouncer keeps on one
//! server connection) — where session locks do not. Only the integer key is written into the
//! SQL these helpers send; the lock name never is.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

use super::key::advisory_key;
use super::{pg_error, SCHEME};
use crate::error::{Error, Result};

const SAVEPOINT: &str = "lockhog_xact_lock";

// Every function is named with its schema and every key cast to bigint: a key that fits in an
// integer would otherwise resolve to a `pg_advisory_xact_lock(integer)` that a role with CREATE
// on a schema of the search path planted (an exact match beats pg_catalog's bigint one).
fn lock_sql(key: i64) -> String {
    format!("SELECT pg_catalog.pg_advisory_xact_lock({key}::pg_catalog.int8)")
}

fn try_sql(key: i64) -> String {
    format!("SELECT pg_catalog.pg_try_advisory_xact_lock({key}::pg_catalog.int8)")
}

/// Waits under a savepoint with `lock_timeout` set for this wait only: on a timeout the
/// savepoint is rolled back, so the caller's transaction stays usable, and `lock_timeout` is
/// back to what it was either way.
fn timeout_sql(key: i64, bound: Duration) -> String {
    let ms = bound.as_micros().div_ceil(1000).max(1);
    format!(
        "SAVEPOINT {SAVEPOINT}; \
         SELECT pg_catalog.set_config('lockhog.saved_lock_timeout', \
                pg_catalog.current_setting('lock_timeout'), true); \
         SELECT pg_catalog.set_config('lock_timeout', '{ms}ms', true); \
         SELECT pg_catalog.pg_advisory_xact_lock({key}::pg_catalog.int8); \
         RELEASE SAVEPOINT {SAVEPOINT}; \
         SELECT pg_catalog.set_config('lock_timeout', \
                pg_catalog.current_setting('lockhog.saved_lock_timeout'), true)"
    )
}

fn rollback_sql() -> String {
    format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}")
}

fn backend(doing: &str, e: tokio_postgres::Error) -> Error {
    Error::Backend {
        backend: SCHEME,
        message: format!("{doing}: {}", pg_error(&e)),
        source: Some(Box::new(e)),
    }
}

/// What [`try_sql`] answered: `Ok` when the lock was granted, else [`Error::Contended`].
fn try_outcome(messages: &[SimpleQueryMessage], name: &str) -> Result<()> {
    let granted = messages.iter().any(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0) == Some("t"),
        _ => false,
    });
    if granted {
        Ok(())
    } else {
        Err(Error::Contended {
            name: name.to_string(),
        })
    }
}

/// What a failed [`timeout_sql`] comes to, given how its [`rollback_sql`] went: a failed
/// rollback, else [`Error::TimedOut`] when `lock_timeout` fired, else the wait's error.
fn wait_failed(
    e: tokio_postgres::Error,
    rolled_back: std::result::Result<(), tokio_postgres::Error>,
    name: &str,
    bound: Duration,
) -> Error {
    if let Err(e) = rolled_back {
        return backend("cannot roll back to the savepoint", e);
    }
    if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
        Error::TimedOut {
            name: name.to_string(),
            waited: bound,
            // One blocking wait that the server's lock_timeout ended.
            attempts: 1,
        }
    } else {
        backend("pg_advisory_xact_lock", e)
    }
}

/// Waits until the transaction holds the lock `name` of `namespace`
/// (`pg_advisory_xact_lock`). The lock is released when the transaction ends.
///
/// # Examples
///
/// ```no_run
/// # async fn f(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use lockhog::backend::postgres::xact_lock;
///
/// let tx = client.transaction().await?;
/// xact_lock(&tx, "lockhog", "pay-invoice-42").await?;
/// // ... pay the invoice once ...
/// tx.commit().await?; // releases the lock
/// # Ok(()) }
/// ```
///
/// # Cancel safety
///
/// Dropping the future leaves the wait running on the server; roll the transaction back (or
/// drop it) to end it.
///
/// # Errors
///
/// [`Error::InvalidName`]; [`Error::Backend`] when the server fails the statement (which
/// aborts the transaction, as any failed statement does).
pub async fn xact_lock(
    tx: &tokio_postgres::Transaction<'_>,
    namespace: &str,
    name: &str,
) -> Result<()> {
    let key = advisory_key(namespace, name)?;
    tx.batch_execute(&lock_sql(key))
        .await
        .map_err(|e| backend("pg_advisory_xact_lock", e))
}

/// Takes the lock `name` of `namespace` for the transaction if it is free
/// (`pg_try_advisory_xact_lock`).
///
/// # Errors
///
/// [`Error::Contended`] when someone else holds it (the transaction stays usable);
/// [`Error::InvalidName`]; [`Error::Backend`].
pub async fn try_xact_lock(
    tx: &tokio_postgres::Transaction<'_>,
    namespace: &str,
    name: &str,
) -> Result<()> {
    let key = advisory_key(namespace, name)?;
    let messages = tx
        .simple_query(&try_sql(key))
        .await
        .map_err(|e| backend("pg_try_advisory_xact_lock", e))?;
    try_outcome(&messages, name)
}

/// Waits at most `bound` for the lock `name` of `namespace`, for the transaction. The wait
/// runs under a savepoint with `lock_timeout`, so when it times out the transaction is
/// still usable and its own `lock_timeout` is unchanged.
///
/// # Examples
///
/// ```no_run
/// # async fn f(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use lockhog::backend::postgres::xact_lock_timeout;
///
/// let tx = client.transaction().await?;
/// match xact_lock_timeout(&tx, "lockhog", "report", Duration::from_secs(2)).await {
///     Ok(()) => { /* held until commit */ }
///     Err(lockhog::Error::TimedOut { .. }) => { /* someone else is on it */ }
///     Err(e) => return Err(e.into()),
/// }
/// tx.commit().await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::TimedOut`] when the bound ran out (SQLSTATE 55P03); [`Error::InvalidName`];
/// [`Error::Backend`].
pub async fn xact_lock_timeout(
    tx: &tokio_postgres::Transaction<'_>,
    namespace: &str,
    name: &str,
    bound: Duration,
) -> Result<()> {
    let key = advisory_key(namespace, name)?;
    match tx.batch_execute(&timeout_sql(key, bound)).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let rolled_back = tx.batch_execute(&rollback_sql()).await;
            Err(wait_failed(e, rolled_back, name, bound))
        }
    }
}

/// The same helpers for the synchronous `postgres` crate's transactions.
pub mod blocking {
    use super::*;

    /// See [`xact_lock`](super::xact_lock).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(client: &mut postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = client.transaction()?;
    /// lockhog::backend::postgres::blocking::xact_lock(&mut tx, "lockhog", "pay-invoice-42")?;
    /// tx.commit()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`xact_lock`](super::xact_lock).
    pub fn xact_lock(
        tx: &mut postgres::Transaction<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<()> {
        let key = advisory_key(namespace, name)?;
        tx.batch_execute(&lock_sql(key))
            .map_err(|e| backend("pg_advisory_xact_lock", e))
    }

    /// See [`try_xact_lock`](super::try_xact_lock).
    ///
    /// # Errors
    ///
    /// As [`try_xact_lock`](super::try_xact_lock).
    pub fn try_xact_lock(
        tx: &mut postgres::Transaction<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<()> {
        let key = advisory_key(namespace, name)?;
        let messages = tx
            .simple_query(&try_sql(key))
            .map_err(|e| backend("pg_try_advisory_xact_lock", e))?;
        try_outcome(&messages, name)
    }

    /// See [`xact_lock_timeout`](super::xact_lock_timeout).
    ///
    /// # Errors
    ///
    /// As [`xact_lock_timeout`](super::xact_lock_timeout).
    pub fn xact_lock_timeout(
        tx: &mut postgres::Transaction<'_>,
        namespace: &str,
        name: &str,
        bound: Duration,
    ) -> Result<()> {
        let key = advisory_key(namespace, name)?;
        match tx.batch_execute(&timeout_sql(key, bound)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let rolled_back = tx.batch_execute(&rollback_sql());
                Err(wait_failed(e, rolled_back, name, bound))
            }
        }
    }
}
