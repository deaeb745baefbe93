//! The session lease: one etcd lease per locker and ttl, carrying the keys of all of that
//! locker's locks and waits, as etcd's own `concurrency.Session` does (one lease for many
//! locks: a lock costs one put and one delete, not a grant and a revoke as well).
//!
//! A session is granted on the first acquire that needs it and kept alive while the locker
//! lives, idle or not (one keepalive every ttl/3). Its renewals also check that the keys it
//! holds are still there, so a guard whose key was deleted behind its back is told within a
//! third of the ttl. When the lease itself is lost (a keepalive finds it gone, or no renewal
//! was answered before it ran out), every guard on it is told, and the next acquire grants a
//! new one. The session's lease is revoked once the locker and all its guards are gone.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::connect::call;
use super::lease::{grant, revoke, ttl_secs, KeepAlive};
use super::queue::Entry;
use crate::backend::lease::{release_in_background, Lease, Renewal};
use crate::backend::LostSender;
use crate::error::Result;

/// etcd refuses a transaction with more than 128 compares (its `--max-txn-ops` default).
const CHECK_BATCH: usize = 128;

/// The sessions of one locker, one per distinct ttl (in whole seconds, as etcd counts them).
pub(super) struct Sessions {
    client: Client,
    by_ttl: tokio::sync::Mutex<HashMap<i64, Arc<Session>>>,
}

impl Sessions {
    pub(super) fn new(client: Client) -> Self {
        Sessions {
            client,
            by_ttl: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The live session of `ttl`, granted when there is none yet or the last one was lost.
    pub(super) async fn get(&self, ttl: Duration) -> Result<Arc<Session>> {
        let mut map = self.by_ttl.lock().await;
        if let Some(session) = map.get(&ttl_secs(ttl)) {
            if session.alive() {
                return Ok(session.clone());
            }
        }
        let session = self.private(ttl).await?;
        map.insert(ttl_secs(ttl), session.clone());
        Ok(session)
    }

    /// A session of its own for one acquisition: for a foreign resource this locker already
    /// queues on, whose key (`<prefix>/<lease in hex>`) allows one entry per lease.
    pub(super) async fn private(&self, ttl: Duration) -> Result<Arc<Session>> {
        Session::grant(&self.client, ttl).await
    }
}

/// A key the session holds a lock with, checked on renewals.
struct Watched {
    entry: Entry,
    lost: LostSender,
}

#[derive(Default)]
struct Book {
    /// Why the session's lease was lost; `None` while it lives.
    dead: Option<String>,
    held: HashMap<u64, Watched>,
    /// The keys this session queues with now, or whose delete is not done yet: none is used
    /// twice at once.
    claimed: HashSet<Vec<u8>>,
}

/// What the session and its renewal task share.
struct State {
    client: Client,
    book: Mutex<Book>,
}

impl State {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lease is lost: tells every guard on it.
    fn kill(&self, reason: &str) {
        let mut book = self.book();
        book.dead = Some(reason.to_string());
        for (_, w) in book.held.drain() {
            w.lost.mark_lost(session_lost(reason));
        }
    }

    /// Tells the guards whose key is gone (or was created again by someone else).
    async fn check_keys(&self) {
        let held: Vec<(u64, Entry)> = {
            let book = self.book();
            book.held
                .iter()
                .map(|(id, w)| (*id, w.entry.clone()))
                .collect()
        };
        for batch in held.chunks(CHECK_BATCH) {
            let txn = Txn::new()
                .when(
                    batch
                        .iter()
                        .map(|(_, e)| {
                            Compare::create_revision(e.key.clone(), CompareOp::Equal, e.rev)
                        })
                        .collect::<Vec<_>>(),
                )
                .or_else(
                    batch
                        .iter()
                        .map(|(_, e)| {
                            TxnOp::get(e.key.clone(), Some(GetOptions::new().with_keys_only()))
                        })
                        .collect::<Vec<_>>(),
                );
            let resp = match call("checking the session's keys", || {
                let mut c = self.client.clone();
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
            {
                Ok(r) if r.succeeded() => continue,
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "checking the session's keys failed; next renewal");
                    continue;
                }
            };
            let mut book = self.book();
            for ((id, entry), op) in batch.iter().zip(resp.op_responses()) {
                let there = match op {
                    TxnOpResponse::Get(g) => g
                        .kvs()
                        .first()
                        .is_some_and(|kv| kv.create_revision() == entry.rev),
                    _ => true,
                };
                if !there {
                    if let Some(w) = book.held.remove(id) {
                        w.lost.mark_lost(format!(
                            "the lock's key {} was deleted (by someone else: our session \
                             lease is still alive)",
                            String::from_utf8_lossy(&entry.key)
                        ));
                    }
                }
            }
        }
    }
}

fn session_lost(reason: &str) -> String {
    format!("the lock's key went with its session lease ({reason})")
}

/// The lease as the shared renewal task sees it: a keepalive, then a check of the keys.
struct SessionLease {
    keepalive: KeepAlive,
    state: Arc<State>,
}

impl Lease for SessionLease {
    async fn renew(&self) -> Result<Option<Instant>> {
        let until = self.keepalive.renew().await?;
        if until.is_some() {
            // Not awaited: a slow check must not hold up the next keepalive.
            let state = self.state.clone();
            tokio::spawn(async move { state.check_keys().await });
        }
        Ok(until)
    }
}

/// One session lease and what is attached to it. Dropping the last handle revokes the lease
/// (in a task on the runtime it was granted on), which deletes any key still on it.
pub(super) struct Session {
    /// The lease id, also in every key of a named lock taken with it.
    pub lease: i64,
    state: Arc<State>,
    next: AtomicU64,
    _renewal: Renewal,
    fan_out: JoinHandle<()>,
    runtime: tokio::runtime::Handle,
}

impl Session {
    async fn grant(client: &Client, ttl: Duration) -> Result<Arc<Session>> {
        let started = Instant::now();
        let granted = grant(client, ttl).await?;
        let state = Arc::new(State {
            client: client.clone(),
            book: Mutex::new(Book::default()),
        });
        let lost = LostSender::default();
        let renewal = Renewal::spawn(
            SessionLease {
                keepalive: KeepAlive::new(client.clone(), granted),
                state: state.clone(),
            },
            granted.ttl,
            started + granted.ttl,
            lost.clone(),
        );
        let fan_out = tokio::spawn({
            let state = state.clone();
            async move { state.kill(&lost.lost().await) }
        });
        Ok(Arc::new(Session {
            lease: granted.id,
            state,
            next: AtomicU64::new(0),
            _renewal: renewal,
            fan_out,
            runtime: tokio::runtime::Handle::current(),
        }))
    }

    /// Whether the lease is still believed alive.
    pub(super) fn alive(&self) -> bool {
        self.state.book().dead.is_none()
    }

    /// Marks the lease lost (an acquire found it gone before the renewal did).
    pub(super) fn kill(&self, reason: &str) {
        self.state.kill(reason);
    }

    /// A number unique within the session, for its book of held keys.
    pub(super) fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Claims the key `key` for one entry; `false` when this session queues with it already.
    pub(super) fn claim(&self, key: &[u8]) -> bool {
        self.state.book().claimed.insert(key.to_vec())
    }

    /// Claims the first free key `make(0)`, `make(1)`, …: a lock taken again and again by one
    /// locker reuses one key, so etcd's index does not grow with every acquisition (it keeps
    /// a deleted key's history until compaction, and every look at the queue walks it).
    pub(super) fn claim_first(&self, make: impl Fn(u64) -> Vec<u8>) -> Vec<u8> {
        let mut book = self.state.book();
        (0..)
            .map(make)
            .find(|key| book.claimed.insert(key.clone()))
            .expect("a free key")
    }

    /// Gives a key's claim back, once the key is deleted.
    pub(super) fn unclaim(&self, key: &[u8]) {
        self.state.book().claimed.remove(key);
    }

    /// Watches a held key on renewals; `lost` is told when it, or the lease, is lost. Told at
    /// once when the lease was lost already.
    pub(super) fn hold(&self, id: u64, entry: Entry, lost: LostSender) {
        let mut book = self.state.book();
        match &book.dead {
            Some(reason) => lost.mark_lost(session_lost(reason)),
            None => {
                book.held.insert(id, Watched { entry, lost });
            }
        }
    }

    /// Stops watching the key `id` (its guard is releasing it).
    pub(super) fn unhold(&self, id: u64) {
        self.state.book().held.remove(&id);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.fan_out.abort();
        let (client, lease) = (self.state.client.clone(), self.lease);
        let failed = "revoking a session lease failed; it expires";
        release_in_background(&self.runtime, failed, async move {
            revoke(&client, lease).await
        });
    }
}
