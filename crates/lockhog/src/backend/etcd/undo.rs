//! Undoing a join whose acquire is dropped, failed or was sent more than once: our key is
//! deleted, and a copy of the join that reaches etcd late creates nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use etcd_client::Client;

use super::connect::{call, SCHEME};
use super::held::leave;
use super::queue::{cancel_marker, join, mark_cancelled, Entry, Place, Sends};
use crate::error::{Error, Result};

/// A join's future: our entry, and whether we are first.
type JoinFuture = Pin<Box<dyn Future<Output = Result<(Entry, bool)>> + Send>>;

/// A join being sent, and its gate.
struct Joining {
    /// The join, run in the acquire's own task (a task of its own would cost a wake-up of
    /// another thread on every acquire); a dropped acquire's undo finishes it in the
    /// background.
    join: JoinFuture,
    /// How many times the join was sent, and whether it was answered.
    sends: Arc<Sends>,
    /// [`IDLE`] until the join starts sending ([`SENDING`]) or a dropped acquire stops it from
    /// ever sending ([`CANCELLED`]): whichever comes first wins.
    gate: Arc<AtomicU8>,
}

const IDLE: u8 = 0;
const SENDING: u8 = 1;
const CANCELLED: u8 = 2;

/// Deletes our key if the acquire that made it is dropped before it hands it to a guard (a
/// cancelled wait, a failed look), in a task on the runtime captured when the acquire started.
/// A join that has not sent yet is stopped for good, and the delete awaits the answer of one
/// in flight, which could otherwise be applied after the delete, leaving a key on a lease
/// that lives on. The delete is by key alone: no one else writes a key with our lease id in
/// it (a named key is claimed in its session until the delete is done).
pub(super) struct Undo {
    armed: Option<Place>,
    joining: Option<Joining>,
    client: Client,
    runtime: tokio::runtime::Handle,
}

impl Undo {
    pub(super) fn new(client: Client, place: Place, runtime: tokio::runtime::Handle) -> Self {
        Undo {
            armed: Some(place),
            joining: None,
            client,
            runtime,
        }
    }

    /// The place being joined.
    pub(super) fn place(&self) -> &Place {
        self.armed
            .as_ref()
            .expect("armed until disarmed or deleted")
    }

    /// Joins the queue at our place (see [`join`]); if the acquire is dropped meanwhile, the
    /// join is finished in the background (see [`Undo`]).
    /// A `shared` place joins as a reader (see [`shared`](super::shared)).
    pub(super) async fn join(
        &mut self,
        prefix: &[u8],
        owner: Vec<u8>,
        shared: bool,
    ) -> Result<(Entry, bool)> {
        let place = self.place();
        let (client, prefix, key) = (self.client.clone(), prefix.to_vec(), place.key.clone());
        let lease = place.session.lease;
        let gate = Arc::new(AtomicU8::new(IDLE));
        let opened = gate.clone();
        let sends = Arc::new(Sends::default());
        let counted = sends.clone();
        let join = Box::pin(async move {
            if opened
                .compare_exchange(IDLE, SENDING, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                return Err(Error::backend(SCHEME, "joining the queue: cancelled"));
            }
            if shared {
                super::shared::join(&client, &prefix, &key, &owner, lease, &counted).await
            } else {
                join(&client, &prefix, &key, &owner, lease, &counted).await
            }
        });
        let joining = self.joining.insert(Joining { join, sends, gate });
        let joined = (&mut joining.join).await;
        let uncertain = joining.sends.uncertain();
        self.joining = None;
        if uncertain {
            self.armed
                .as_mut()
                .expect("armed until disarmed or deleted")
                .join_uncertain = true;
        }
        joined
    }

    /// Deletes now and waits for it. Stays armed until the delete is answered, so a delete
    /// that fails, or whose caller is dropped meanwhile, is tried again in the background.
    pub(super) async fn delete_now(mut self) -> Result<()> {
        if let Some(place) = &mut self.armed {
            leave(&self.client, place).await?;
        }
        self.armed = None;
        Ok(())
    }

    /// The acquire succeeded: the guard owns the place now.
    pub(super) fn disarm(mut self) -> Place {
        self.armed.take().expect("armed until disarmed or deleted")
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(mut place) = self.armed.take() {
            let (client, joining) = (self.client.clone(), self.joining.take());
            if let Some(j) = &joining {
                let never_sent = j
                    .gate
                    .compare_exchange(IDLE, CANCELLED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if never_sent {
                    // Nothing was written, nor will be.
                    return;
                }
            }
            self.runtime.spawn(async move {
                // A join in flight may reach etcd after our delete (from another member, or
                // sent late): the marker makes it create nothing; one applied already is
                // deleted once its answer is in.
                if let Some(joining) = joining {
                    let mark = mark_cancelled(&client, &place);
                    // Both at once: the key goes as soon as the join's answer is in.
                    let (marked, _) = tokio::join!(mark, joining.join);
                    place.join_uncertain |= joining.sends.uncertain();
                    if marked.is_ok() {
                        drop(leave(&client, &mut place).await);
                        // A marker left would void every later join with this key; one whose
                        // join may still arrive stays (`leave` keeps the key's claim then).
                        if !place.join_uncertain {
                            let marker = cancel_marker(&place.key);
                            if delete(&client, &marker).await.is_err() {
                                place.keep_claim_for_good();
                            }
                        }
                        drop(place);
                        return;
                    }
                }
                if let Err(e) = leave(&client, &mut place).await {
                    tracing::debug!(error = %e, "deleting the key of a dropped acquire failed; \
                                                 it goes with the session lease");
                }
                drop(place);
            });
        }
    }
}

async fn delete(client: &Client, key: &[u8]) -> Result<()> {
    call("leaving the lock's queue", || {
        let mut c = client.clone();
        let key = key.to_vec();
        async move { c.delete(key, None).await }
    })
    .await
    .map(drop)
}
