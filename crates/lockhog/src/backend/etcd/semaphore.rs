//! A semaphore's permit count on etcd: the key `lockhog/NS/NAME#permit-count` (no lease, so
//! it stays), created by the first user in a transaction that only creates it when it does not
//! exist, and read by every later one in the same transaction. It is not under any lock's
//! queue prefix (`…/NAME/`), so no queue ever sees it. Its permits are slot locks (see
//! [`crate::backend::slots`]), ordinary lease-backed queue entries of this backend.

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

use super::connect::{call, SCHEME};
use super::keys::resource;
use crate::backend::slots::count_mismatch;
use crate::error::{Error, Result};
use crate::name::{LockKey, LockName};

/// Records `permits` for `key` unless a count is there, and refuses another count.
pub(super) async fn record(client: &Client, key: &LockKey, permits: u32) -> Result<()> {
    let name = LockName::new(format!("{}#permit-count", key.name().as_str()))?;
    let count_key = resource(&LockKey::new(key.namespace().to_string(), name)).into_bytes();
    let value = permits.to_string();
    let txn = Txn::new()
        .when([Compare::create_revision(
            count_key.clone(),
            CompareOp::Equal,
            0,
        )])
        .and_then([TxnOp::put(count_key.clone(), value, None)])
        .or_else([TxnOp::get(count_key, None)]);
    let resp = call("recording a semaphore's count", || {
        let mut c = client.clone();
        let txn = txn.clone();
        async move { c.txn(txn).await }
    })
    .await?;
    if resp.succeeded() {
        return Ok(());
    }
    let recorded = match resp.op_responses().first() {
        Some(TxnOpResponse::Get(g)) => g
            .kvs()
            .first()
            .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse::<u32>().ok()),
        _ => None,
    };
    match recorded {
        Some(r) if r == permits => Ok(()),
        Some(r) => Err(count_mismatch(key, r, permits)),
        None => Err(Error::backend(
            SCHEME,
            format!(
                "semaphore {:?}: an unusable permit count",
                key.name().as_str()
            ),
        )),
    }
}
