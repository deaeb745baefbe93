//! Our own connections, never mysql_async's pool (which resets and closes connections as it
//! sees fit): a small shared set of session connections that carries uncontended locks, and
//! an idle pool of waiter connections that block in `GET_LOCK(name, timeout)` (both kept by
//! [`SessionPool`]); and the fencing counter, found or created on connect.

use std::sync::Arc;

use tokio::time::Instant;

use super::connector::Connector;
use super::fencing::{self, Problem};
use super::session::Session;
use super::SCHEME;
use crate::backend::session_pool::{Connect, SessionPool};
use crate::error::{Error, Result};

/// The shared session connections and the idle waiter connections of one backend.
pub(crate) type Pool = SessionPool<Connector>;

/// Opens the first connection, finds or creates the fencing counter, and starts.
pub(crate) async fn connect(mut connector: Connector) -> Result<Pool> {
    let mut conn = connector
        .open(None)
        .await?
        .expect("no deadline, so no timeout");
    connector.counter = match fencing::ensure(&mut conn, connector.fencing).await {
        Ok(kind) => kind,
        Err(Problem::Server(e)) => {
            let doing = "cannot set up the fencing counter lockhog_fencing";
            return Err(connector.error(doing, &e));
        }
        Err(Problem::Unsafe(why)) => {
            let message = format!("{why} ({})", connector.redacted);
            return Err(Error::backend(SCHEME, message));
        }
    };
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
