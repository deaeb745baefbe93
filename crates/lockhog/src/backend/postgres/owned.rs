//! lockhog's own objects in the database (the fencing sequence, the semaphore table): found
//! on the session's `search_path` or created, and checked that no role outside lockhog's own
//! can change, replace or drop them.
//!
//! What is found under the object's name must be:
//!
//! - of the expected kind (a sequence, a table: not a view someone gave the name);
//! - owned by the connecting role or a role it is a member of (another owner could change or
//!   drop it);
//! - with none of the object's write privileges for `PUBLIC` or for a role the connecting
//!   role is not a member of;
//! - in a schema whose owner is trusted: the connecting role or one of its roles, a superuser,
//!   or the database's owner (a schema's owner may drop anything in it).
//!
//! When none is found, it is created in `current_schema()` (whose owner must be trusted the
//! same way) and looked up again.

use tokio_postgres::Client;

use super::SCHEME;
use crate::error::{Error, Result};

/// One kind of object lockhog keeps in the database, and the words its refusals use.
pub(crate) struct Object {
    /// Its name on the `search_path`, a constant identifier.
    pub name: &'static str,
    /// Its `pg_class.relkind`.
    pub relkind: &'static str,
    /// `sequence`, `table`.
    pub noun: &'static str,
    /// What lockhog uses it for, in messages: `fencing sequence`.
    pub role: &'static str,
    /// The SQL keyword of its kind, in the commands a refusal suggests: `SEQUENCE`.
    pub keyword: &'static str,
    /// The privileges that let a role change it (`UPDATE`, which allows `setval`).
    pub privileges: &'static [&'static str],
    /// The privileges as a refusal names them: `UPDATE, which allows setval`.
    pub privileges_said: &'static str,
    /// What a role that may change it could do: `tokens would repeat`.
    pub harm: &'static str,
    /// What a role that may drop it could do: `tokens would start again from 1`.
    pub drop_harm: &'static str,
    /// What follows `CREATE {keyword} IF NOT EXISTS schema.name`: its columns.
    pub definition: &'static str,
}

/// The object found and checked.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    /// Its OID.
    pub oid: u32,
    /// `schema.name`, quoted where needed by the server (`format('%I.%I')`): safe to put in
    /// SQL, and it names this object whatever the `search_path`.
    pub name: String,
}

/// Whether the role `o` (a `pg_roles` row) is trusted to own a schema: the connecting role or
/// one of its roles, a superuser, the database's owner.
const TRUSTED_OWNER: &str = "\
    (pg_catalog.pg_has_role(o.oid, 'MEMBER') OR o.rolsuper \
     OR o.rolname = 'pg_database_owner' \
     OR o.oid = (SELECT d.datdba FROM pg_catalog.pg_database d \
                 WHERE d.datname = pg_catalog.current_database()))";

/// What the `search_path` finds under `$1`: OID, qualified name, kind, owner, whether the
/// owner is ours, the schema's owner, whether that owner is trusted, and the roles outside
/// ours that hold one of the privileges `$2` on it, comma-separated.
fn describe_sql() -> String {
    format!(
        "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind::text, \
                pg_catalog.pg_get_userbyid(c.relowner), \
                pg_catalog.pg_has_role(c.relowner, 'MEMBER'), \
                o.rolname::text, {TRUSTED_OWNER}, \
                (SELECT pg_catalog.string_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' \
                        ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, ', ') \
                 FROM pg_catalog.aclexplode(c.relacl) a \
                 WHERE a.privilege_type OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]) \
                   AND (a.grantee = 0 OR NOT pg_catalog.pg_has_role(a.grantee, 'MEMBER'))), \
                current_user::text \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner \
         WHERE c.oid = pg_catalog.to_regclass($1)"
    )
}

/// The schema a missing object would be created in: its quoted name, its owner, whether
/// that owner is trusted, and the connecting role.
fn target_schema_sql() -> String {
    format!(
        "SELECT pg_catalog.format('%I', n.nspname), o.rolname::text, {TRUSTED_OWNER}, \
                current_user::text \
         FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner \
         WHERE n.nspname = pg_catalog.current_schema()"
    )
}

impl Object {
    /// Why a found object cannot be trusted, or `None` when it can.
    fn refusal(&self, row: &tokio_postgres::Row) -> Option<String> {
        let name: String = row.get(1);
        let kind: String = row.get(2);
        let owner: String = row.get(3);
        let owner_is_ours: bool = row.get(4);
        let schema_owner: String = row.get(5);
        let schema_trusted: bool = row.get(6);
        let writers: Option<String> = row.get(7);
        let us: String = row.get(8);
        let schema = name.rsplit_once('.').map_or("", |(s, _)| s);
        let Object {
            noun,
            role,
            keyword,
            harm,
            ..
        } = self;
        if kind != self.relkind {
            return Some(format!(
                "{name} is not a {noun} (relkind {kind}, owner {owner}); drop it or rename it, \
                 and lockhog will create its {noun}"
            ));
        }
        if !owner_is_ours {
            return Some(format!(
                "the {role} {name} is owned by role {owner}, not by {us} or a role it is a \
                 member of, so another role could change it and {harm}; if it is lockhog's \
                 own, give it to lockhog's role (ALTER {keyword} {name} OWNER TO …), else drop \
                 it (DROP {keyword} {name})"
            ));
        }
        if let Some(roles) = writers {
            return Some(format!(
                "the {role} {name} (owner {owner}) grants {}, to {roles}, outside the roles of \
                 {us}, so {harm}; revoke it (REVOKE {} ON {keyword} {name} FROM …)",
                self.privileges_said,
                self.privileges.join(", ")
            ));
        }
        if !schema_trusted {
            return Some(self.untrusted_schema(schema, &schema_owner, &us));
        }
        None
    }

    fn untrusted_schema(&self, schema: &str, owner: &str, us: &str) -> String {
        let Object {
            noun,
            role,
            drop_harm,
            ..
        } = self;
        format!(
            "the schema {schema} of the {role} is owned by role {owner}, neither {us} (or a \
             role it is a member of), a superuser nor the database's owner: that role may drop \
             the {noun} and {drop_harm}; put lockhog's {noun} in a schema lockhog's role \
             trusts (the first schema of its search_path)"
        )
    }

    /// Finds, or creates, and checks the object. `fail` turns a server error into the
    /// backend's error with what was being done.
    pub(crate) async fn ensure(
        &self,
        client: &Client,
        redacted: &str,
        fail: impl Fn(&str, tokio_postgres::Error) -> Error,
    ) -> Result<Checked> {
        let refuse = |why: String| Error::backend(SCHEME, format!("{why} ({redacted})"));
        let describe = describe_sql();
        let privileges: Vec<&str> = self.privileges.to_vec();
        let find = || async {
            client
                .query_opt(&describe, &[&self.name, &privileges])
                .await
                .map_err(|e| fail(&format!("cannot look up the {}", self.role), e))
        };
        let row = match find().await? {
            Some(row) => row,
            None => {
                self.create(client, &fail, &refuse).await?;
                find().await?.ok_or_else(|| {
                    refuse(format!(
                        "the {} {} was created but is not on the search_path",
                        self.role, self.name
                    ))
                })?
            }
        };
        if let Some(why) = self.refusal(&row) {
            return Err(refuse(why));
        }
        let checked = Checked {
            oid: row.get(0),
            name: row.get(1),
        };
        tracing::debug!(object = %checked.name, oid = checked.oid, "postgres {}", self.role);
        Ok(checked)
    }

    /// Creates the object in `current_schema()`, once its owner is found trusted; a
    /// concurrent creator is not an error.
    async fn create(
        &self,
        client: &Client,
        fail: &impl Fn(&str, tokio_postgres::Error) -> Error,
        refuse: &impl Fn(String) -> Error,
    ) -> Result<()> {
        use tokio_postgres::error::SqlState;
        let target = client
            .query_opt(&target_schema_sql(), &[])
            .await
            .map_err(|e| fail(&format!("cannot find a schema for the {}", self.role), e))?
            .ok_or_else(|| {
                refuse(format!(
                    "no schema of the search_path exists to create the {} {} in",
                    self.role, self.name
                ))
            })?;
        let (schema, owner, trusted, us): (String, String, bool, String) =
            (target.get(0), target.get(1), target.get(2), target.get(3));
        if !trusted {
            return Err(refuse(self.untrusted_schema(&schema, &owner, &us)));
        }
        // `schema` was quoted by the server (`format('%I')`); the name and definition are
        // constants.
        let sql = format!(
            "CREATE {} IF NOT EXISTS {schema}.{} {}",
            self.keyword, self.name, self.definition
        );
        match client.batch_execute(&sql).await {
            Err(e)
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    || e.code() == Some(&SqlState::DUPLICATE_TABLE) =>
            {
                Ok(())
            }
            Err(e) => Err(fail(&format!("cannot create the {}", self.role), e)),
            Ok(()) => Ok(()),
        }
    }
}
