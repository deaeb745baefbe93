//! The statements that take and give back a lock, with the fencing token drawn once it is
//! held. Lock strings are always bound as parameters.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::connector::describe;
use super::session::{Failure, Fencing, Timeout};

/// How long one server-side wait lasts when the caller waits forever; the wait is renewed.
const FOREVER_CHUNK: f64 = 3600.0;

/// Server errors after which the session is gone (killed, server shutting down).
const FATAL_CODES: &[u16] = &[1053, 1077, 1927, 4031];

/// A failed statement: the connection is dead, or only the statement failed.
pub(crate) fn classify(e: &mysql_async::Error) -> Failure {
    match e {
        mysql_async::Error::Server(s) if !FATAL_CODES.contains(&s.code) => {
            Failure::Server(describe(e))
        }
        _ => Failure::Dead(describe(e)),
    }
}

/// `GET_LOCK`, and the fencing token once it is held (0 when `fencing` is `None`: an unfenced
/// acquire draws none). `Ok(None)`: held elsewhere (or the wait ran out).
pub(crate) async fn get_lock(
    conn: &mut Conn,
    fencing: Option<Fencing>,
    lock: &str,
    timeout: Timeout,
) -> Result<Option<u64>, Failure> {
    let secs = match timeout {
        Timeout::Try => 0.0,
        Timeout::For(d) => d.as_secs_f64(),
        Timeout::Forever => FOREVER_CHUNK,
    };
    let Some(fencing) = fencing else {
        return Ok(plain_get_lock(conn, lock, secs).await?.then_some(0));
    };
    match fencing {
        Fencing::Sequence => {
            let got: Option<Option<i64>> = conn
                .exec_first(
                    "SELECT CASE GET_LOCK(?, ?) WHEN 1 THEN NEXTVAL(lockhog_fencing) \
                         WHEN 0 THEN 0 END",
                    (lock, secs),
                )
                .await
                .map_err(|e| classify(&e))?;
            match got.flatten() {
                Some(0) => Ok(None),
                Some(t) if t > 0 => Ok(Some(t as u64)),
                Some(t) => {
                    let _ = release_lock(conn, lock).await;
                    Err(Failure::Server(format!("the fencing sequence gave {t}")))
                }
                None => Err(Failure::Server(
                    "GET_LOCK returned NULL (the wait was interrupted)".into(),
                )),
            }
        }
        Fencing::Table => {
            if !plain_get_lock(conn, lock, secs).await? {
                return Ok(None);
            }
            let bumped = conn
                .exec_drop(
                    "UPDATE lockhog_fencing SET value = LAST_INSERT_ID(value + 1) WHERE id = 1",
                    (),
                )
                .await;
            let token = match bumped {
                Ok(()) if conn.affected_rows() == 1 => conn.last_insert_id(),
                Ok(()) => None,
                Err(e) => {
                    let f = classify(&e);
                    if matches!(f, Failure::Server(_)) {
                        let _ = release_lock(conn, lock).await;
                    }
                    return Err(f);
                }
            };
            match token.filter(|t| *t > 0) {
                Some(t) => Ok(Some(t)),
                None => {
                    let _ = release_lock(conn, lock).await;
                    Err(Failure::Server(
                        "the fencing table lockhog_fencing has no row with id 1".into(),
                    ))
                }
            }
        }
    }
}

/// `GET_LOCK` alone: true when held.
async fn plain_get_lock(conn: &mut Conn, lock: &str, secs: f64) -> Result<bool, Failure> {
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (lock, secs))
        .await
        .map_err(|e| classify(&e))?;
    match got.flatten() {
        Some(1) => Ok(true),
        Some(_) => Ok(false),
        None => Err(Failure::Server(
            "GET_LOCK returned NULL (the wait was interrupted)".into(),
        )),
    }
}

/// `RELEASE_LOCK`: 1 released (ours), 0 held by another session, NULL no such lock.
pub(crate) async fn release_lock(conn: &mut Conn, lock: &str) -> Result<bool, Failure> {
    let freed: Option<Option<i64>> = conn
        .exec_first("SELECT RELEASE_LOCK(?)", (lock,))
        .await
        .map_err(|e| classify(&e))?;
    Ok(freed.flatten() == Some(1))
}
