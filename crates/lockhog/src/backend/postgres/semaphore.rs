//! A semaphore's permit count in PostgreSQL: one row of the table `lockhog_semaphores`,
//! inserted by the semaphore's first user and read by every later one, so that a caller asking
//! for another count is refused. Its permits are slot locks (see
//! [`crate::backend::slots`]): ordinary session advisory locks, released when their holder's
//! session ends.
//!
//! The table is found on the `search_path` or created on first use, and checked like the
//! fencing sequence (see [`super::owned`]): a role outside lockhog's own that may write to it
//! could raise a count under its users and admit more holders, so such a table is refused.

use super::owned::Object;
use super::PostgresBackend;
use crate::backend::slots::count_mismatch;
use crate::error::{Error, Result};
use crate::name::LockKey;

const TABLE: Object = Object {
    name: "lockhog_semaphores",
    relkind: "r",
    noun: "table",
    role: "semaphore table",
    keyword: "TABLE",
    privileges: &["INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER"],
    privileges_said: "INSERT, UPDATE, DELETE, TRUNCATE or TRIGGER",
    harm: "a semaphore's count could change under its users and admit more holders",
    drop_harm: "every semaphore's count would be forgotten",
    definition: "(namespace pg_catalog.bytea NOT NULL, name pg_catalog.bytea NOT NULL, \
                 permits pg_catalog.int4 NOT NULL, PRIMARY KEY (namespace, name))",
};

/// Inserts the count unless one is there, and returns the stored count: the inserted row, or
/// the row that was there. No row comes back when another session inserted the same key
/// after this statement's snapshot was taken; run again, the row is then visible. `table` is
/// the server-quoted `schema.name` of the checked table; keys and counts are bound.
fn record_sql(table: &str) -> String {
    format!(
        "WITH ins AS (INSERT INTO {table} (namespace, name, permits) \
                      VALUES ($1::pg_catalog.bytea, $2::pg_catalog.bytea, $3::pg_catalog.int4) \
                      ON CONFLICT (namespace, name) DO NOTHING RETURNING permits) \
         SELECT permits FROM ins \
         UNION ALL \
         SELECT permits FROM {table} \
         WHERE namespace OPERATOR(pg_catalog.=) $1::pg_catalog.bytea \
           AND name OPERATOR(pg_catalog.=) $2::pg_catalog.bytea"
    )
}

impl PostgresBackend {
    /// Records `permits` for `key` unless a count is there, and refuses another count.
    pub(super) async fn record_permits_in_table(&self, key: &LockKey, permits: u32) -> Result<()> {
        let connector = &self.pool.connector;
        let conn = self.pool.session().await?;
        let _busy = conn.busy();
        let table = match connector.semaphores.get() {
            Some(table) => table.name.clone(),
            None => {
                let fail = |doing: &str, e| connector.error(doing, e);
                let found = TABLE
                    .ensure(&conn.client, &connector.redacted, fail)
                    .await?;
                connector.semaphores.get_or_init(|| found).name.clone()
            }
        };
        let sql = record_sql(&table);
        // validate() caps permits at MAX_PERMITS, far below i32::MAX.
        let asked = permits as i32;
        let (namespace, name) = (key.namespace().as_bytes(), key.name().as_str().as_bytes());
        for _ in 0..2 {
            let row = conn
                .client
                .query_opt(&sql, &[&namespace, &name, &asked])
                .await
                .map_err(|e| connector.error("cannot record a semaphore's count", e))?;
            if let Some(row) = row {
                // A negative count is none lockhog wrote: refused as a mismatch all the same.
                let recorded = u32::try_from(row.get::<_, i32>(0)).unwrap_or(0);
                return if recorded == permits {
                    Ok(())
                } else {
                    Err(count_mismatch(key, recorded, permits))
                };
            }
        }
        Err(Error::backend(
            super::SCHEME,
            format!(
                "semaphore {:?}: no permit count was stored ({})",
                key.name().as_str(),
                connector.redacted
            ),
        ))
    }
}
