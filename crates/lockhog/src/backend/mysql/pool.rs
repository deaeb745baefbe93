//! Our own connections, never mysql_async's pool (which resets and closes connections as it
//! sees fit): a small shared set of session connections that carries uncontended locks, and
//! an idle pool of waiter connections that block in `GET_LOCK(name, timeout)` (both kept by
//! [`SessionPool`]); and the fencing counter, found or created on connect.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::time::Instant;

use super::connector::{Connector, FencingKind};
use super::session::{Fencing, Session};
use crate::backend::session_pool::{Connect, SessionPool};
use crate::error::Result;

/// The fencing counter's name, a sequence or a table in the URL's database.
pub(crate) const FENCING_OBJECT: &str = "lockhog_fencing";

/// The shared session connections and the idle waiter connections of one backend.
pub(crate) type Pool = SessionPool<Connector>;

/// Opens the first connection, finds or creates the fencing counter, and starts.
pub(crate) async fn connect(mut connector: Connector) -> Result<Pool> {
    let mut conn = connector
        .open(None)
        .await?
        .expect("no deadline, so no timeout");
    connector.counter = ensure_fencing(&mut conn, connector.fencing)
        .await
        .map_err(|e| connector.error("cannot set up the fencing counter lockhog_fencing", &e))?;
    let first = Session::spawn(conn, connector.counter, connector.lost_check);
    let (sessions, max_waiters) = (connector.sessions, connector.max_waiters);
    Ok(SessionPool::new(connector, first, sessions, max_waiters))
}

impl Connect for Connector {
    type Conn = Session;

    const SESSION: &'static str = "mysql session connection";

    async fn connect(&self, deadline: Option<Instant>) -> Result<Option<Arc<Session>>> {
        Ok(self
            .open(deadline)
            .await?
            .map(|c| Session::spawn(c, self.counter, self.lost_check)))
    }
}

/// Finds the fencing counter in the URL's database, creating it when missing: a sequence on
/// MariaDB 10.3 and later (unless `?fencing=table`), a one-row InnoDB table elsewhere. An
/// existing counter is always used as it is, so every client of one database draws from the
/// same counter whatever it prefers.
async fn ensure_fencing(
    conn: &mut Conn,
    preferred: Option<FencingKind>,
) -> std::result::Result<Fencing, mysql_async::Error> {
    async fn existing(conn: &mut Conn) -> std::result::Result<Option<Fencing>, mysql_async::Error> {
        let kind: Option<String> = conn
            .exec_first(
                "SELECT TABLE_TYPE FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (FENCING_OBJECT,),
            )
            .await?;
        Ok(kind.map(|k| {
            if k == "SEQUENCE" {
                Fencing::Sequence
            } else {
                Fencing::Table
            }
        }))
    }
    let kind = match existing(conn).await? {
        Some(k) => k,
        None => {
            let version: String = conn
                .query_first("SELECT VERSION()")
                .await?
                .unwrap_or_default();
            let has_sequences = version.contains("MariaDB") && conn.server_version() >= (10, 3, 0);
            let want = match preferred {
                Some(FencingKind::Table) => FencingKind::Table,
                Some(FencingKind::Sequence) | None if has_sequences => FencingKind::Sequence,
                _ => FencingKind::Table,
            };
            match want {
                FencingKind::Sequence => {
                    conn.query_drop(format!(
                        "CREATE SEQUENCE IF NOT EXISTS {FENCING_OBJECT} \
                         START WITH 1 INCREMENT BY 1 MINVALUE 1 CACHE 1000 ENGINE=InnoDB"
                    ))
                    .await?
                }
                FencingKind::Table => {
                    conn.query_drop(format!(
                        "CREATE TABLE IF NOT EXISTS {FENCING_OBJECT} \
                         (id TINYINT UNSIGNED PRIMARY KEY, value BIGINT UNSIGNED NOT NULL) \
                         ENGINE=InnoDB"
                    ))
                    .await?
                }
            }
            // Someone may have created the other kind at the same moment: read it back.
            existing(conn).await?.unwrap_or(Fencing::Table)
        }
    };
    if kind == Fencing::Table {
        conn.query_drop(format!(
            "INSERT IGNORE INTO {FENCING_OBJECT} (id, value) VALUES (1, 0)"
        ))
        .await?;
    }
    tracing::debug!(?kind, "mysql fencing counter");
    Ok(kind)
}
