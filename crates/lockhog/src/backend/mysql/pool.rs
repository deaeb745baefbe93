//! Our own connections, never mysql_async's pool (which resets and closes connections as it
//! sees fit): a small shared set of session connections that carries uncontended locks, and
//! an idle pool of waiter connections that block in `GET_LOCK(name, timeout)`.

use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::connector::{Connector, FencingKind};
use super::session::{Fencing, Session};
use crate::error::Result;

/// The fencing counter's name, a sequence or a table in the URL's database.
pub(crate) const FENCING_OBJECT: &str = "lockhog_fencing";

/// Idle waiter connections kept for reuse.
const MAX_IDLE_WAITERS: usize = 4;

/// The shared session connections and the idle waiter connections of one backend.
pub(crate) struct Pool {
    pub connector: Connector,
    pub fencing: Fencing,
    sessions: Mutex<Vec<Arc<Session>>>,
    opening: tokio::sync::Mutex<()>,
    idle_waiters: Mutex<Vec<Arc<Session>>>,
    /// Bounds the connections blocked in `GET_LOCK` (or holding a lock taken that way).
    waiter_slots: Arc<Semaphore>,
}

/// A waiter connection checked out of the pool, with its slot.
pub(crate) struct Waiter {
    pub session: Arc<Session>,
    pub slot: OwnedSemaphorePermit,
}

impl Pool {
    /// Opens the first connection, finds or creates the fencing counter, and starts.
    pub async fn connect(connector: Connector) -> Result<Pool> {
        let mut conn = connector
            .open(None)
            .await?
            .expect("no deadline, so no timeout");
        let fencing = ensure_fencing(&mut conn, connector.fencing)
            .await
            .map_err(|e| {
                connector.error("cannot set up the fencing counter lockhog_fencing", &e)
            })?;
        let first = Session::spawn(conn, fencing, connector.lost_check);
        Ok(Pool {
            waiter_slots: Arc::new(Semaphore::new(connector.max_waiters)),
            connector,
            fencing,
            sessions: Mutex::new(vec![first]),
            opening: tokio::sync::Mutex::new(()),
            idle_waiters: Mutex::new(Vec::new()),
        })
    }

    async fn open(&self, deadline: Option<Instant>) -> Result<Option<Arc<Session>>> {
        Ok(self
            .connector
            .open(deadline)
            .await?
            .map(|c| Session::spawn(c, self.fencing, self.connector.lost_check)))
    }

    /// Live session connections.
    pub fn sessions(&self) -> Vec<Arc<Session>> {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|c| !c.is_dead());
        s.clone()
    }

    /// The least busy live session connection, opening another (up to `connections`) when
    /// every one has commands queued.
    pub async fn session(&self) -> Result<Arc<Session>> {
        loop {
            let live = self.sessions();
            let best = live.iter().min_by_key(|c| c.load()).cloned();
            if let Some(c) = &best {
                if c.load() == 0 || live.len() >= self.connector.sessions {
                    return Ok(c.clone());
                }
            }
            // Open one more; while another task is already opening, use what there is.
            let opening = match (self.opening.try_lock(), &best) {
                (Ok(g), _) => g,
                (Err(_), Some(c)) => return Ok(c.clone()),
                (Err(_), None) => self.opening.lock().await,
            };
            if self.sessions().len() >= self.connector.sessions {
                drop(opening);
                continue;
            }
            let conn = match self.open(None).await {
                Ok(Some(c)) => c,
                Ok(None) => unreachable!("no deadline"),
                Err(e) => match best {
                    // A busy server that refuses one more connection is no reason to fail.
                    Some(c) => {
                        tracing::debug!("cannot open another mysql session connection: {e}");
                        return Ok(c);
                    }
                    None => return Err(e),
                },
            };
            self.sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn.clone());
            return Ok(conn);
        }
    }

    /// A free waiter slot, if one is free now.
    pub fn try_waiter_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.waiter_slots.clone().try_acquire_owned().ok()
    }

    /// Waits for a waiter slot.
    pub async fn waiter_slot(&self) -> OwnedSemaphorePermit {
        self.waiter_slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slots are never closed")
    }

    /// A connection of its own for a waiter: an idle one, or a new one. `Ok(None)` when
    /// `deadline` passed while connecting.
    pub async fn waiter(
        &self,
        slot: OwnedSemaphorePermit,
        deadline: Option<Instant>,
    ) -> Result<Option<Waiter>> {
        let idle = {
            let mut idle = self.idle_waiters.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|c| !c.is_dead());
            idle.pop()
        };
        let session = match idle {
            Some(c) => c,
            None => match self.open(deadline).await? {
                Some(c) => c,
                None => return Ok(None),
            },
        };
        Ok(Some(Waiter { session, slot }))
    }

    /// Takes back a waiter connection that holds no lock, or closes it when enough are idle.
    pub fn return_waiter(&self, session: Arc<Session>) {
        if session.is_dead() {
            return;
        }
        let mut idle = self.idle_waiters.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_WAITERS {
            idle.push(session);
        }
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
