//! The fencing sequence: found (or created) once per backend, checked that no role outside
//! lockhog's own can reset or replace it, and then named by its OID in every statement.
//!
//! The sequence is looked up by name on the session's `search_path`, as it always was, so a
//! sequence an earlier version created (in the first schema of the path, usually `public`)
//! keeps counting. What is found must be:
//!
//! - a sequence (not a table or view someone named `lockhog_fencing`);
//! - owned by the connecting role or a role it is a member of (another owner could `setval`,
//!   `ALTER SEQUENCE … RESTART` or drop it: tokens would repeat);
//! - with no `UPDATE` privilege (which allows `setval`) for `PUBLIC` or for a role the
//!   connecting role is not a member of;
//! - in a schema whose owner is trusted: the connecting role or one of its roles, a superuser,
//!   or the database's owner (a schema's owner may drop anything in it, and the next connect
//!   would create a fresh sequence counting from 1).
//!
//! When none is found, it is created in `current_schema()` (whose owner must be trusted the
//! same way) and looked up again. Statements then call `pg_catalog.nextval(OID)`: no later
//! object on the `search_path`, and no `nextval(text)` planted in `public`, can stand in.

use tokio_postgres::Client;

use super::SCHEME;
use crate::error::{Error, Result};

/// The fencing sequence's name, in the first schema of the `search_path` where it was created.
pub(crate) const NAME: &str = "lockhog_fencing";

/// The checked sequence.
#[derive(Debug, Clone)]
pub(crate) struct Sequence {
    /// Its OID: statements name it by this, so nothing can shadow it.
    pub oid: u32,
    /// `schema.lockhog_fencing`, quoted where needed, for messages.
    pub name: String,
}

/// Whether the role `o` (a `pg_roles` row) is trusted to own a schema: the connecting role or
/// one of its roles, a superuser, the database's owner.
const TRUSTED_OWNER: &str = "\
    (pg_catalog.pg_has_role(o.oid, 'MEMBER') OR o.rolsuper \
     OR o.rolname = 'pg_database_owner' \
     OR o.oid = (SELECT d.datdba FROM pg_catalog.pg_database d \
                 WHERE d.datname = pg_catalog.current_database()))";

/// What the `search_path` finds under [`NAME`]: OID, qualified name, kind, owner, whether the
/// owner is ours, the schema's owner, whether that owner is trusted, and the roles outside
/// ours that may `setval` it (`UPDATE`), comma-separated.
fn describe_sql() -> String {
    format!(
        "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind::text, \
                pg_catalog.pg_get_userbyid(c.relowner), \
                pg_catalog.pg_has_role(c.relowner, 'MEMBER'), \
                o.rolname::text, {TRUSTED_OWNER}, \
                (SELECT pg_catalog.string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' \
                        ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, ', ') \
                 FROM pg_catalog.aclexplode(c.relacl) a \
                 WHERE a.privilege_type = 'UPDATE' \
                   AND (a.grantee = 0 OR NOT pg_catalog.pg_has_role(a.grantee, 'MEMBER'))), \
                current_user::text \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner \
         WHERE c.oid = pg_catalog.to_regclass($1)"
    )
}

/// The schema a missing sequence would be created in: its quoted name, its owner, whether
/// that owner is trusted, and the connecting role.
fn target_schema_sql() -> String {
    format!(
        "SELECT pg_catalog.format('%I', n.nspname), o.rolname::text, {TRUSTED_OWNER}, \
                current_user::text \
         FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner \
         WHERE n.nspname = pg_catalog.current_schema()"
    )
}

/// Why a sequence cannot be trusted, or `None` when it can.
fn refusal(row: &tokio_postgres::Row) -> Option<String> {
    let name: String = row.get(1);
    let kind: String = row.get(2);
    let owner: String = row.get(3);
    let owner_is_ours: bool = row.get(4);
    let schema_owner: String = row.get(5);
    let schema_trusted: bool = row.get(6);
    let updaters: Option<String> = row.get(7);
    let us: String = row.get(8);
    let schema = name.rsplit_once('.').map_or("", |(s, _)| s);
    if kind != "S" {
        return Some(format!(
            "{name} is not a sequence (relkind {kind}, owner {owner}); drop it or rename it, \
             and lockhog will create its sequence"
        ));
    }
    if !owner_is_ours {
        return Some(format!(
            "the fencing sequence {name} is owned by role {owner}, not by {us} or a role it is \
             a member of, so another role could reset it and tokens would repeat; if it is \
             lockhog's own, give it to lockhog's role (ALTER SEQUENCE {name} OWNER TO …), \
             else drop it (DROP SEQUENCE {name})"
        ));
    }
    if let Some(roles) = updaters {
        return Some(format!(
            "the fencing sequence {name} (owner {owner}) grants UPDATE, which allows setval, \
             to {roles}, outside the roles of {us}, so tokens could repeat; revoke it \
             (REVOKE UPDATE ON SEQUENCE {name} FROM …)"
        ));
    }
    if !schema_trusted {
        return Some(untrusted_schema(schema, &schema_owner, &us));
    }
    None
}

fn untrusted_schema(schema: &str, owner: &str, us: &str) -> String {
    format!(
        "the schema {schema} of the fencing sequence is owned by role {owner}, neither {us} \
         (or a role it is a member of), a superuser nor the database's owner: that role may \
         drop the sequence and tokens would start again from 1; put lockhog's sequence in a \
         schema lockhog's role trusts (the first schema of its search_path)"
    )
}

/// Finds, or creates, and checks the fencing sequence. `fail` turns a server error into the
/// backend's error with what was being done.
pub(crate) async fn ensure(
    client: &Client,
    redacted: &str,
    fail: impl Fn(&str, tokio_postgres::Error) -> Error,
) -> Result<Sequence> {
    let refuse = |why: String| Error::backend(SCHEME, format!("{why} ({redacted})"));
    let describe = describe_sql();
    let find = || async {
        client
            .query_opt(&describe, &[&NAME])
            .await
            .map_err(|e| fail("cannot look up the fencing sequence", e))
    };
    let row = match find().await? {
        Some(row) => row,
        None => {
            create(client, &fail, &refuse).await?;
            find().await?.ok_or_else(|| {
                refuse(format!(
                    "the fencing sequence {NAME} was created but is not on the search_path"
                ))
            })?
        }
    };
    if let Some(why) = refusal(&row) {
        return Err(refuse(why));
    }
    let sequence = Sequence {
        oid: row.get(0),
        name: row.get(1),
    };
    tracing::debug!(sequence = %sequence.name, oid = sequence.oid, "postgres fencing sequence");
    Ok(sequence)
}

/// Creates the sequence in `current_schema()`, once its owner is found trusted; a concurrent
/// creator is not an error.
async fn create(
    client: &Client,
    fail: &impl Fn(&str, tokio_postgres::Error) -> Error,
    refuse: &impl Fn(String) -> Error,
) -> Result<()> {
    use tokio_postgres::error::SqlState;
    let target = client
        .query_opt(&target_schema_sql(), &[])
        .await
        .map_err(|e| fail("cannot find a schema for the fencing sequence", e))?
        .ok_or_else(|| {
            refuse(format!(
                "no schema of the search_path exists to create the fencing sequence {NAME} in"
            ))
        })?;
    let (schema, owner, trusted, us): (String, String, bool, String) =
        (target.get(0), target.get(1), target.get(2), target.get(3));
    if !trusted {
        return Err(refuse(untrusted_schema(&schema, &owner, &us)));
    }
    // `schema` was quoted by the server (`format('%I')`); NAME is a constant identifier.
    match client
        .batch_execute(&format!("CREATE SEQUENCE IF NOT EXISTS {schema}.{NAME}"))
        .await
    {
        Err(e)
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                || e.code() == Some(&SqlState::DUPLICATE_TABLE) =>
        {
            Ok(())
        }
        Err(e) => Err(fail("cannot create the fencing sequence", e)),
        Ok(()) => Ok(()),
    }
}
