//! A semaphore's permit count in MySQL/MariaDB: one row of the InnoDB table
//! `lockhog_semaphores` in the URL's database (created on first use), inserted by the first
//! user and read by every later one. Its permits are slot locks (see
//! [`crate::backend::slots`]), ordinary `GET_LOCK` named locks, released when their holder's
//! connection closes.
//!
//! As for the fencing counter, who may change the table is decided by grants: an account that
//! may `UPDATE` it can change a semaphore's count under its users. Keep lockhog's database to
//! lockhog's accounts.

use mysql_async::{Params, Value};

use super::session::Failure;
use super::MysqlBackend;
use crate::backend::slots::count_mismatch;
use crate::error::{Error, Result};
use crate::name::LockKey;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS lockhog_semaphores (\
     namespace VARBINARY(128) NOT NULL, \
     name VARBINARY(1024) NOT NULL, \
     permits INT UNSIGNED NOT NULL, \
     PRIMARY KEY (namespace, name)) ENGINE=InnoDB";
const INSERT: &str =
    "INSERT IGNORE INTO lockhog_semaphores (namespace, name, permits) VALUES (?, ?, ?)";
const SELECT: &str = "SELECT permits FROM lockhog_semaphores WHERE namespace = ? AND name = ?";

impl MysqlBackend {
    /// Records `permits` for `key` unless a count is there, and refuses another count.
    pub(super) async fn record_permits_in_table(&self, key: &LockKey, permits: u32) -> Result<()> {
        let fail = |f: Failure| {
            let c = &self.pool.connector;
            Error::backend(
                super::SCHEME,
                format!(
                    "cannot record a semaphore's count ({}): {}",
                    c.redacted,
                    c.scrub(f.message().to_string())
                ),
            )
        };
        let session = self.pool.session().await?;
        let key_params = || {
            vec![
                Value::from(key.namespace().as_bytes()),
                Value::from(key.name().as_str().as_bytes()),
            ]
        };
        if !self
            .semaphore_table
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            session.rows(CREATE.into(), None).await.map_err(fail)?;
            self.semaphore_table
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut insert = key_params();
        insert.push(Value::from(permits));
        session
            .rows(INSERT.into(), Some(Params::Positional(insert)))
            .await
            .map_err(fail)?;
        let rows = session
            .rows(SELECT.into(), Some(Params::Positional(key_params())))
            .await
            .map_err(fail)?;
        match rows
            .first()
            .and_then(|r| r.get::<Option<u32>, _>(0))
            .flatten()
        {
            Some(recorded) if recorded == permits => Ok(()),
            Some(recorded) => Err(count_mismatch(key, recorded, permits)),
            None => Err(Error::backend(
                super::SCHEME,
                format!(
                    "semaphore {:?}: no permit count was stored",
                    key.name().as_str()
                ),
            )),
        }
    }
}
