//! The fencing counter: found in the URL's database, or created there, and checked that it
//! cannot hand out a token twice by itself.
//!
//! MySQL and MariaDB have no search path and no object owners: an unqualified name means the
//! session's default database, which lockhog sets from the URL and never changes (a
//! `TEMPORARY` table could shadow it, but only in the session that creates it), and who may
//! create, reset or drop the counter is decided by grants alone, which an ordinary account
//! cannot read for others. So what is checked is the counter's shape, which a planted object
//! could get wrong on purpose:
//!
//! - a `SEQUENCE` or a base table (not a view over something else);
//! - stored by InnoDB (a `MEMORY` table forgets its value on restart, and tokens start over);
//! - a sequence that counts up and does not `CYCLE`;
//! - a table without triggers (a trigger could rewrite the value on every bump).
//!
//! Everything else — that no other account has `CREATE`, `INSERT`, `UPDATE`, `ALTER` or `DROP`
//! on lockhog's database — is for the administrator to ensure.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::connector::FencingKind;
use super::session::Fencing;

/// The fencing counter's name, a sequence or a table in the URL's database.
pub(crate) const NAME: &str = "lockhog_fencing";

/// Why the counter could not be set up.
pub(crate) enum Problem {
    /// The server refused or failed.
    Server(mysql_async::Error),
    /// The counter exists but could repeat tokens: why, and what to do.
    Unsafe(String),
}

impl From<mysql_async::Error> for Problem {
    fn from(e: mysql_async::Error) -> Self {
        Problem::Server(e)
    }
}

/// What `information_schema` says of the counter: the database, its type and engine.
type Found = (String, String, Option<String>);

async fn existing(conn: &mut Conn) -> Result<Option<Found>, mysql_async::Error> {
    conn.exec_first(
        "SELECT TABLE_SCHEMA, TABLE_TYPE, ENGINE FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        (NAME,),
    )
    .await
}

/// Finds the fencing counter in the URL's database, creating it when missing: a sequence on
/// MariaDB 10.3 and later (unless `?fencing_counter=table`), a one-row InnoDB table elsewhere. An
/// existing counter is used as it is, whatever its kind, so every client of one database
/// draws from the same counter — once it has passed the checks of the module docs.
pub(crate) async fn ensure(
    conn: &mut Conn,
    preferred: Option<FencingKind>,
) -> Result<Fencing, Problem> {
    let found = match existing(conn).await? {
        Some(found) => found,
        None => {
            create(conn, preferred).await?;
            // Someone may have created the other kind at the same moment: read it back.
            existing(conn)
                .await?
                .ok_or_else(|| Problem::Unsafe(format!("{NAME} was created but cannot be found")))?
        }
    };
    let kind = check(conn, found).await?;
    if kind == Fencing::Table {
        conn.query_drop(format!(
            "INSERT IGNORE INTO {NAME} (id, value) VALUES (1, 0)"
        ))
        .await?;
    }
    tracing::debug!(?kind, "mysql fencing counter");
    Ok(kind)
}

async fn create(conn: &mut Conn, preferred: Option<FencingKind>) -> Result<(), Problem> {
    let version: String = conn
        .query_first("SELECT VERSION()")
        .await?
        .unwrap_or_default();
    let has_sequences = version.contains("MariaDB") && conn.server_version() >= (10, 3, 0);
    let sql = match preferred {
        Some(FencingKind::Sequence) | None if has_sequences => format!(
            "CREATE SEQUENCE IF NOT EXISTS {NAME} \
             START WITH 1 INCREMENT BY 1 MINVALUE 1 CACHE 1000 ENGINE=InnoDB"
        ),
        _ => format!(
            "CREATE TABLE IF NOT EXISTS {NAME} \
             (id TINYINT UNSIGNED PRIMARY KEY, value BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB"
        ),
    };
    Ok(conn.query_drop(sql).await?)
}

/// The counter's kind, once its shape is found safe.
async fn check(conn: &mut Conn, (db, kind, engine): Found) -> Result<Fencing, Problem> {
    let name = format!("{db}.{NAME}");
    let refuse = |why: String| {
        Problem::Unsafe(format!(
            "{why}, so tokens could repeat; if nothing has been fenced with it yet, drop it \
             (DROP {} {name}) and lockhog will create its own, else fix it keeping its value",
            match kind.as_str() {
                "SEQUENCE" => "SEQUENCE",
                "VIEW" => "VIEW",
                _ => "TABLE",
            }
        ))
    };
    let fencing = match kind.as_str() {
        "SEQUENCE" => Fencing::Sequence,
        "BASE TABLE" => Fencing::Table,
        other => {
            return Err(refuse(format!(
                "{name} is a {other}, neither a sequence nor a base table"
            )))
        }
    };
    if engine.as_deref() != Some("InnoDB") {
        let engine = engine.as_deref().unwrap_or("no engine");
        return Err(refuse(format!(
            "{name} is stored by {engine}, not InnoDB, and may lose its value"
        )));
    }
    match fencing {
        Fencing::Sequence => {
            let shape: Option<(i64, u8)> = conn
                .query_first(format!("SELECT increment, cycle_option FROM {NAME}"))
                .await?;
            let (increment, cycles) = shape.unwrap_or((0, 0));
            if increment <= 0 || cycles != 0 {
                return Err(refuse(format!(
                    "the fencing sequence {name} has INCREMENT BY {increment}{}",
                    if cycles != 0 { " and CYCLE" } else { "" }
                )));
            }
        }
        Fencing::Table => {
            let triggers: Option<String> = conn
                .exec_first(
                    "SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS \
                     WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ?",
                    (NAME,),
                )
                .await?
                .flatten();
            if let Some(triggers) = triggers {
                return Err(refuse(format!(
                    "the fencing table {name} has triggers ({triggers}) that may rewrite it"
                )));
            }
        }
    }
    Ok(fencing)
}
