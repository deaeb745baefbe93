//! `status` and `cleanup`: the queues under `lockhog/<namespace>/`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use etcd_client::{
    Client, Compare, CompareOp, GetOptions, KeyValue, SortOrder, SortTarget, Txn, TxnOp,
};

use super::connect::call;
use super::keys::{namespace_prefix, parse_entry, queue_prefix, resource};
use super::shared::READ;
use super::steal::split;
use crate::backend::owner::describe_owner;
use crate::backend::{CleanupReport, LockState, LockStatus};
use crate::error::Result;
use crate::name::LockKey;

/// Every key under `prefix`, oldest (smallest create revision) first.
async fn entries(client: &Client, prefix: Vec<u8>) -> Result<Vec<KeyValue>> {
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend);
    let mut resp = call("listing locks", || {
        let mut c = client.clone();
        let (prefix, options) = (prefix.clone(), options.clone());
        async move { c.get(prefix, Some(options)).await }
    })
    .await?;
    Ok(resp.take_kvs())
}

/// Seconds left on a lease, `None` when it is gone (or the key has none).
async fn lease_left(client: &Client, lease: i64) -> Result<Option<i64>> {
    if lease == 0 {
        return Ok(None);
    }
    let resp = call("reading a lease", || {
        let mut c = client.clone();
        async move { c.lease_time_to_live(lease, None).await }
    })
    .await?;
    Ok((resp.ttl() >= 0).then_some(resp.ttl()))
}

/// One holder: owner, token, how long it has held, its lease.
async fn describe_holder(client: &Client, kv: &KeyValue) -> Result<String> {
    let (owner, since) = split(kv.value());
    let mut holder = format!("{}, token {}", describe_owner(owner), kv.create_revision());
    if let Some(age) = since.and_then(|s| SystemTime::now().duration_since(s).ok()) {
        holder.push_str(&format!(", held {}s", age.as_secs()));
    }
    match lease_left(client, kv.lease()).await? {
        Some(left) => holder.push_str(&format!(", lease {left}s left")),
        None if kv.lease() == 0 => holder.push_str(", no lease (never expires)"),
        None => holder.push_str(", lease expired"),
    }
    Ok(holder)
}

/// One lock's status from its queue (oldest first): the first key holds it, or, when it is
/// a reader's, every reader's key before the first writer's.
async fn describe(
    client: &Client,
    name: Option<String>,
    resource: String,
    queue: &[KeyValue],
) -> Result<LockStatus> {
    if queue.is_empty() {
        return Ok(LockStatus::new(name, resource, LockState::Free, None));
    }
    let readers = format!("{resource}/{READ}");
    let is_reader = |kv: &KeyValue| kv.key().starts_with(readers.as_bytes());
    let holding = match queue.iter().position(|kv| !is_reader(kv)) {
        Some(0) => 1,
        Some(writer) => writer,
        None => queue.len(),
    };
    let mut holders = Vec::with_capacity(holding);
    for kv in &queue[..holding] {
        holders.push(describe_holder(client, kv).await?);
    }
    let mut holder = match is_reader(&queue[0]) {
        true => format!("shared by {}: {}", holding, holders.join("; ")),
        false => holders.remove(0),
    };
    if queue.len() > holding {
        holder.push_str(&format!(", {} waiting", queue.len() - holding));
    }
    Ok(LockStatus::new(
        name,
        resource,
        LockState::Held,
        Some(holder),
    ))
}

/// The locks `keys`, or every lock with a queue under the namespace when `keys` is empty.
pub(super) async fn status(
    client: &Client,
    namespace: &str,
    keys: &[LockKey],
) -> Result<Vec<LockStatus>> {
    let mut out = Vec::new();
    if !keys.is_empty() {
        for key in keys {
            let queue = entries(client, queue_prefix(key)).await?;
            let name = Some(key.name().as_str().to_string());
            out.push(describe(client, name, resource(key), &queue).await?);
        }
        return Ok(out);
    }
    let mut queues: BTreeMap<String, (String, Vec<KeyValue>)> = BTreeMap::new();
    for kv in entries(client, namespace_prefix(namespace).into_bytes()).await? {
        if let Some((resource, name)) = parse_entry(namespace, kv.key()) {
            queues
                .entry(resource)
                .or_insert((name, Vec::new()))
                .1
                .push(kv);
        }
    }
    for (resource, (name, queue)) in queues {
        out.push(describe(client, Some(name), resource, &queue).await?);
    }
    Ok(out)
}

/// Deletes the namespace's queue keys that can never go away by themselves: those without a
/// lease (written by hand) or whose lease is gone. Keys of live leases are kept; etcd deletes
/// them when their lease expires. Each delete is guarded by the key's create revision, so a
/// key created again meanwhile is left alone.
pub(super) async fn cleanup(client: &Client, namespace: &str) -> Result<CleanupReport> {
    let (mut removed, mut kept) = (0, 0);
    for kv in entries(client, namespace_prefix(namespace).into_bytes()).await? {
        if parse_entry(namespace, kv.key()).is_none() {
            continue;
        }
        if lease_left(client, kv.lease()).await?.is_some() {
            kept += 1;
            continue;
        }
        let txn = Txn::new()
            .when([Compare::create_revision(
                kv.key(),
                CompareOp::Equal,
                kv.create_revision(),
            )])
            .and_then([TxnOp::delete(kv.key(), None)]);
        let resp = call("deleting a stale queue key", || {
            let mut c = client.clone();
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
        .await?;
        if resp.succeeded() {
            removed += 1;
        }
    }
    Ok(CleanupReport::new(removed, kept))
}
