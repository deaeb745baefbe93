//! The lease of a lock row, renewed by the shared renewal task of
//! [`backend::lease`](crate::backend::lease): every ttl/3, a compare-and-extend `UPDATE` that
//! only moves the expiry of a row that still carries our owner value.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::acquire::{renew, Row};
use super::db::Db;
use crate::backend::lease::Lease;
use crate::error::Result;

/// One lock row's lease.
pub(super) struct RowLease {
    pub(super) db: Arc<Db>,
    pub(super) row: Row,
    pub(super) owner: String,
    pub(super) ttl: Duration,
}

impl Lease for RowLease {
    async fn renew(&self) -> Result<Option<Instant>> {
        // Counted from before the write: the row's new expiry is at least this late.
        let started = Instant::now();
        let (row, owner, ttl) = (self.row.clone(), self.owner.clone(), self.ttl);
        let ours = self
            .db
            .call_write("renewing a lease in", move |c| renew(c, &row, &owner, ttl))
            .await?;
        Ok(ours.then(|| started + self.ttl))
    }
}
