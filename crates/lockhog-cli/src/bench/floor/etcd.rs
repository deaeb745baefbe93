//! The etcd floor (see [`floor`](super)): what etcd's own concurrency mutex sends, on a bare
//! etcd client. One lease for the whole session, granted before the run; then per lock one
//! transaction that puts `<prefix>/<lease in hex>` with that lease (if it is not there yet)
//! and reads the queue's head (the key with the smallest create revision), and per unlock one
//! delete. A waiter puts its own key the same way and watches the head's key until it is
//! deleted.

use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, WatchFilterType, WatchOptions,
};

use super::measure::{fail, Measured, KEY, PARK};
use crate::bench::stats::Sample;
use crate::bench::workloads::{Handoff, Uncontended};
use crate::exit::{Failure, USAGE};

/// How long the sessions' leases last: longer than any run, so none needs a keep-alive.
const LEASE_TTL: i64 = 3600;

type EtcdResult<T> = Result<T, etcd_client::Error>;

/// One session: a client and its lease.
struct Session {
    client: Client,
    lease: i64,
    key: Vec<u8>,
}

impl Session {
    async fn open(endpoints: &[String]) -> EtcdResult<Session> {
        let mut client = Client::connect(endpoints, None).await?;
        let lease = client.lease_grant(LEASE_TTL, None).await?.id();
        Ok(Session {
            key: format!("{}/{lease:x}", prefix()).into_bytes(),
            client,
            lease,
        })
    }

    /// Puts our key under the prefix (unless it is there) and reads the queue's head: the
    /// mutex's one transaction. Returns the head's key and the transaction's revision.
    async fn join(&mut self) -> EtcdResult<(Vec<u8>, i64)> {
        let head = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend)
            .with_limit(1);
        let prefix = prefix().into_bytes();
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([
                TxnOp::put(
                    self.key.clone(),
                    "",
                    Some(PutOptions::new().with_lease(self.lease)),
                ),
                TxnOp::get(prefix.clone(), Some(head.clone())),
            ])
            .or_else([
                TxnOp::get(self.key.clone(), None),
                TxnOp::get(prefix, Some(head)),
            ]);
        let resp = self.client.txn(txn).await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let head = match resp.op_responses().get(1) {
            Some(TxnOpResponse::Get(g)) => g.kvs().first().map(|kv| kv.key().to_vec()),
            _ => None,
        };
        Ok((head.unwrap_or_default(), revision))
    }

    async fn lock(&mut self) -> EtcdResult<()> {
        let (head, _) = self.join().await?;
        if head != self.key {
            return Err(etcd_client::Error::InvalidArgs(
                "the floor's key is held by someone else".into(),
            ));
        }
        Ok(())
    }

    async fn unlock(&mut self) -> EtcdResult<()> {
        self.client.delete(self.key.clone(), None).await?;
        Ok(())
    }

    /// Joins behind the holder and waits until the holder's key is deleted.
    async fn wait(&mut self) -> EtcdResult<Instant> {
        let (head, revision) = self.join().await?;
        if head != self.key {
            let options = WatchOptions::new()
                .with_start_revision(revision + 1)
                .with_filters([WatchFilterType::NoPut]);
            let mut stream = self.client.watch(head, Some(options)).await?;
            loop {
                match stream.message().await? {
                    Some(resp)
                        if resp
                            .events()
                            .iter()
                            .any(|e| e.event_type() == EventType::Delete) =>
                    {
                        break
                    }
                    Some(_) => {}
                    None => return Err(etcd_client::Error::WatchError("the watch ended".into())),
                }
            }
        }
        Ok(Instant::now())
    }

    async fn close(mut self) {
        let _ = self.client.lease_revoke(self.lease).await;
    }
}

fn prefix() -> String {
    format!("{KEY}/mutex")
}

/// The `host:port` endpoints of an `etcd://` URL.
fn endpoints(url: &str) -> Result<Vec<String>, Failure> {
    let rest = url.strip_prefix("etcd://").ok_or_else(|| {
        Failure::new(
            USAGE,
            "bench --floor: the raw etcd floor speaks plain etcd:// only (no TLS, no login)",
        )
    })?;
    let hosts = rest.split(['/', '?']).next().unwrap_or_default();
    if hosts.contains('@') || hosts.is_empty() {
        return Err(Failure::new(
            USAGE,
            "bench --floor: the raw etcd floor needs etcd://host:port[,host:port…] without a login",
        ));
    }
    Ok(hosts.split(',').map(|h| format!("http://{h}")).collect())
}

/// Measures the etcd floor: uncontended lock + unlock on one session, then handoffs to a
/// second session waiting on a watch.
pub async fn etcd(url: &str, u_run: Duration, h_run: Duration) -> Result<Measured, Failure> {
    let e = |err: etcd_client::Error| fail("etcd", err);
    let endpoints = endpoints(url)?;
    let mut holder = Session::open(&endpoints).await.map_err(e)?;
    let mut waiter = Session::open(&endpoints).await.map_err(e)?;
    for _ in 0..50 {
        holder.lock().await.map_err(e)?;
        holder.unlock().await.map_err(e)?;
    }
    let mut latencies = Vec::with_capacity(4096);
    let started = Instant::now();
    while started.elapsed() < u_run {
        let t = Instant::now();
        holder.lock().await.map_err(e)?;
        holder.unlock().await.map_err(e)?;
        latencies.push(t.elapsed());
    }
    let uncontended = Uncontended {
        cycles: latencies.len() as u64,
        elapsed: started.elapsed(),
        cycle: Sample::new(latencies),
    };

    let mut latencies = Vec::new();
    let started = Instant::now();
    while latencies.len() < 20 || started.elapsed() < h_run {
        holder.lock().await.map_err(e)?;
        let waiting = tokio::spawn(async move {
            let held = waiter.wait().await;
            let released = match held {
                Ok(_) => waiter.unlock().await,
                Err(_) => Ok(()),
            };
            (waiter, held.and_then(|t| released.map(|()| t)))
        });
        tokio::time::sleep(PARK).await;
        let released = Instant::now();
        holder.unlock().await.map_err(e)?;
        let (back, held) = waiting.await.map_err(|err| fail("etcd waiter", err))?;
        waiter = back;
        latencies.push(held.map_err(e)?.saturating_duration_since(released));
    }
    holder.close().await;
    waiter.close().await;
    Ok((
        "etcd concurrency mutex: one session lease; txn(put <prefix>/<lease> + get head) + delete; waiter watches the head",
        uncontended,
        Some(Handoff {
            latency: Sample::new(latencies),
            park: PARK,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_plain_urls_only() {
        assert_eq!(
            endpoints("etcd://127.0.0.1:1,127.0.0.1:2/x?ttl=3").unwrap(),
            ["http://127.0.0.1:1", "http://127.0.0.1:2"]
        );
        assert!(endpoints("etcds://127.0.0.1:1").is_err());
        assert!(endpoints("etcd://u:p@127.0.0.1:1").is_err());
    }
}
