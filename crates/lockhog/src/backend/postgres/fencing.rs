//! The fencing sequence: found (or created) once per backend, checked that no role outside
//! lockhog's own can reset or replace it (see [`super::owned`]), and then named by its OID in
//! every statement.
//!
//! The sequence is looked up by name on the session's `search_path`, as it always was, so a
//! sequence an earlier version created (in the first schema of the path, usually `public`)
//! keeps counting. No role outside lockhog's may hold `UPDATE` on it, which allows `setval`.
//! Statements call `pg_catalog.nextval(OID)`: no later object on the `search_path`, and no
//! `nextval(text)` planted in `public`, can stand in.

use tokio_postgres::Client;

use super::owned::{Checked, Object};
use crate::error::{Error, Result};

/// The fencing sequence's name, in the first schema of the `search_path` where it was created.
pub(crate) const NAME: &str = "lockhog_fencing";

/// The checked sequence.
pub(crate) type Sequence = Checked;

const SEQUENCE: Object = Object {
    name: NAME,
    relkind: "S",
    noun: "sequence",
    role: "fencing sequence",
    keyword: "SEQUENCE",
    privileges: &["UPDATE"],
    privileges_said: "UPDATE, which allows setval",
    harm: "tokens would repeat",
    drop_harm: "tokens would start again from 1",
    definition: "",
};

/// Finds, or creates, and checks the fencing sequence. `fail` turns a server error into the
/// backend's error with what was being done.
pub(crate) async fn ensure(
    client: &Client,
    redacted: &str,
    fail: impl Fn(&str, tokio_postgres::Error) -> Error,
) -> Result<Sequence> {
    SEQUENCE.ensure(client, redacted, fail).await
}
