//! What lockhog does to its own lock items: the acquire's add (which finishes even when the
//! acquire is dropped), and the release and renewal that act only on an item that is still
//! ours — in one round trip with the CAS unique our last write got, else by reading the item
//! and comparing its value first.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::client::{Added, Cas, Client, SendIf, Unique};
use super::{exptime, io_err};
use crate::backend::lease::Lease;
use crate::error::Result;

/// The CAS unique of our item as our last write left it, if known: with it a release or a
/// renewal is one round trip. Shared by the guard and its renewal.
#[derive(Default)]
pub(super) struct KnownCas(Mutex<Option<Unique>>);

impl KnownCas {
    pub(super) fn new(unique: Unique) -> Arc<Self> {
        Arc::new(KnownCas(Mutex::new(Some(unique))))
    }

    fn get(&self) -> Option<Unique> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, unique: Option<Unique>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = unique;
    }
}

/// What to do to an item that is still ours.
#[derive(Clone, Copy)]
enum Op {
    /// Delete it.
    Delete,
    /// Rewrite it unchanged with this expiry.
    Extend(u64),
}

/// Applies `op` to `key` only while its value is `ours`: first by the CAS unique we know (a
/// unique matches only the very write that made it), else — unknown, or changed since — by
/// reading the item, comparing its value, and writing with the unique read, again as long as
/// writes come in between. `Ok(false)` when the item is gone or someone else's.
async fn if_ours(
    client: &Client,
    key: &str,
    ours: &[u8],
    op: Op,
    known: &KnownCas,
) -> std::io::Result<bool> {
    // A known unique is sent only while no connection was opened since it was learnt: a
    // restarted memcached hands out the same uniques again, to other owners' items.
    let mut attempt = known
        .get()
        .map(|u| (u.cas, SendIf::NoNewConnection(u.connects)));
    loop {
        if let Some((cas, send_if)) = attempt.take() {
            let done = match op {
                Op::Delete => client.delete_if(key, cas, send_if).await?,
                Op::Extend(exp) => client.set_if(key, ours, exp, cas, send_if).await?.map(
                    |written| match written {
                        Ok(unique) => {
                            known.set(Some(unique));
                            Cas::Done
                        }
                        Err(other) => other,
                    },
                ),
            };
            match done {
                Some(Cas::Done) => return Ok(true),
                Some(Cas::NotFound) => return Ok(false),
                Some(Cas::Changed) | None => known.set(None),
            }
        }
        let Some(item) = client.get(key).await? else {
            return Ok(false);
        };
        if item.value != ours {
            return Ok(false);
        }
        attempt = Some((item.cas, SendIf::Always));
    }
}

/// Deletes our item if it is still ours.
pub(super) async fn release_item(
    client: &Client,
    key: &str,
    value: &[u8],
    known: &KnownCas,
) -> std::io::Result<bool> {
    if_ours(client, key, value, Op::Delete, known).await
}

/// A guard's lease: the item rewritten with a new expiry while it is still ours.
pub(super) struct ItemLease {
    pub client: Arc<Client>,
    pub key: String,
    pub value: Vec<u8>,
    pub ttl: Duration,
    pub known: Arc<KnownCas>,
}

impl Lease for ItemLease {
    async fn renew(&self) -> Result<Option<Instant>> {
        let started = Instant::now();
        let exp = exptime(self.ttl);
        let renewed = if_ours(
            &self.client,
            &self.key,
            &self.value,
            Op::Extend(exp),
            &self.known,
        )
        .await
        .map_err(|e| io_err("renewing a lease", e))?;
        Ok(renewed.then(|| started + self.ttl))
    }
}

/// The add of an acquire (or the compare-and-set of a steal, replacing the item whose CAS
/// unique is `over`), pipelined with its fencing token's increment for a named lock, run in a task of its
/// own so that it completes even when the acquire is dropped: the answer of a dropped
/// exchange is never read, and the request could land after any cleanup sent on another
/// connection. An add not yet sent when the acquire goes is never sent. Whoever drops this
/// before [`Self::disarm`] leaves the undo to a background task that waits for the answer
/// and, if the item was stored, deletes it (only while it is still ours).
pub(super) struct PendingAdd {
    client: Arc<Client>,
    key: String,
    value: Vec<u8>,
    called_off: Arc<AtomicBool>,
    /// The add still running, until its answer was taken.
    task: Option<JoinHandle<std::io::Result<Option<Added>>>>,
    /// The add stored our item, or may have, and no guard owns it yet; with its unique when
    /// known.
    stored: Option<Option<Unique>>,
}

impl PendingAdd {
    pub(super) fn start(
        client: &Arc<Client>,
        key: &str,
        value: &[u8],
        exptime: u64,
        over: Option<u64>,
        counter: Option<String>,
    ) -> Self {
        let called_off = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (client, key, value) = (client.clone(), key.to_string(), value.to_vec());
            let called_off = called_off.clone();
            async move {
                client
                    .add_and_incr(&key, &value, exptime, over, counter.as_deref(), &called_off)
                    .await
            }
        });
        PendingAdd {
            client: client.clone(),
            key: key.to_string(),
            value: value.to_vec(),
            called_off,
            task: Some(task),
            stored: None,
        }
    }

    /// The add's answer: what it stored, `None` when the key was taken.
    pub(super) async fn answer(&mut self) -> std::io::Result<Option<(Unique, Option<u64>)>> {
        let task = self.task.as_mut().expect("answered once");
        let answer = task.await;
        // Taken in the same poll that saw the answer, so a drop from here on knows it.
        self.task = None;
        match answer {
            Ok(Ok(Some(Added {
                cas: Some(unique),
                token,
            }))) => {
                self.stored = Some(Some(unique));
                Ok(Some((unique, token)))
            }
            Ok(Ok(Some(Added { cas: None, .. }))) => Ok(None),
            Ok(Ok(None)) => unreachable!("only a drop calls the add off"),
            // Without an answer (no reply in time, a broken connection) the item may have
            // been stored: the undo on drop deletes it if it is there and ours.
            Ok(Err(e)) => {
                self.stored = Some(None);
                Err(e)
            }
            Err(e) => {
                self.stored = Some(None);
                Err(std::io::Error::other(e))
            }
        }
    }

    /// The item now belongs to a guard (or was never stored): nothing to undo.
    pub(super) fn disarm(mut self) {
        self.task = None;
        self.stored = None;
    }
}

impl Drop for PendingAdd {
    fn drop(&mut self) {
        self.called_off
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let (task, stored) = (self.task.take(), self.stored.take());
        if task.is_none() && stored.is_none() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, key, value) = (
            self.client.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.value),
        );
        rt.spawn(async move {
            let stored = match task {
                Some(task) => match task.await {
                    Ok(Ok(Some(Added { cas: Some(u), .. }))) => Some(Some(u)),
                    Ok(Ok(Some(Added { cas: None, .. }) | None)) => None,
                    Ok(Err(_)) | Err(_) => Some(None),
                },
                None => stored,
            };
            if let Some(unique) = stored {
                let known = KnownCas(Mutex::new(unique));
                if let Err(e) = release_item(&client, &key, &value, &known).await {
                    tracing::debug!(error = %e, "undoing a dropped acquire failed; the lease will expire");
                }
            }
        });
    }
}
