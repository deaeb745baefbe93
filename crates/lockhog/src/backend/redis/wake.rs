//! Waking waiters through Redis pub/sub.
//!
//! The release script publishes on the lock's channel. A waiter subscribes to that channel
//! *before* each attempt and arms its notification before sending the attempt, so a release
//! that lands between a failed attempt and the wait is never missed.
//!
//! One pub/sub connection per backend serves every waiter: a table counts the waiters of each
//! channel, the first one subscribes and the last one unsubscribes, and a dispatcher task
//! routes each message to the waiters of its channel. The connection is opened on the first
//! wait, not at connect time, so lockers that never wait cost the server nothing.
//!
//! Pub/sub is only a hint. Messages are not stored, the connection can drop, and a lease that
//! runs out is released without any message; waiters therefore also poll (see
//! [`Subscription::live`]). When the connection drops, every waiter is woken to try at once,
//! and the next subscription reconnects.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::CONNECT_TIMEOUT;

/// Waiters per channel, and the notification they wait on.
type Table = HashMap<Vec<u8>, (Arc<Notify>, usize)>;

/// The wake-up service of one Redis node.
#[derive(Clone)]
pub(crate) struct Wakeups(Arc<Inner>);

struct Inner {
    client: redis::Client,
    /// False with `?wake=poll`: never subscribe, waiters poll.
    enabled: bool,
    table: Mutex<Table>,
    /// The connection, serialising subscribe and unsubscribe.
    conn: tokio::sync::Mutex<Option<Conn>>,
}

struct Conn {
    sink: PubSubSink,
    dispatcher: JoinHandle<()>,
    subscribed: HashSet<Vec<u8>>,
}

/// One waiter's interest in one channel. Dropping it withdraws the interest.
pub(crate) struct Subscription {
    wakeups: Arc<Inner>,
    channel: Vec<u8>,
    notify: Arc<Notify>,
    live: bool,
}

impl Wakeups {
    pub(crate) fn new(client: redis::Client, enabled: bool) -> Self {
        Wakeups(Arc::new(Inner {
            client,
            enabled,
            table: Mutex::new(HashMap::new()),
            conn: tokio::sync::Mutex::new(None),
        }))
    }

    /// Registers interest in `channel` and makes sure the connection is subscribed to it.
    /// Never fails: when pub/sub cannot be used the subscription is not [`live`] and the
    /// waiter polls. The empty channel (a foreign resource's: nobody publishes its releases)
    /// is never subscribed.
    ///
    /// [`live`]: Subscription::live
    pub(crate) async fn subscribe(&self, channel: &[u8]) -> Subscription {
        let notify = {
            let mut table = self.0.table();
            let entry = table
                .entry(channel.to_vec())
                .or_insert_with(|| (Arc::new(Notify::new()), 0));
            entry.1 += 1;
            entry.0.clone()
        };
        let mut sub = Subscription {
            wakeups: self.0.clone(),
            channel: channel.to_vec(),
            notify,
            live: false,
        };
        if !self.0.enabled || channel.is_empty() {
            return sub;
        }
        match self.0.ensure_subscribed(channel).await {
            Ok(()) => sub.live = true,
            Err(e) => tracing::debug!(error = %e, "redis pub/sub unavailable; waiters poll"),
        }
        sub
    }
}

impl Inner {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ensure_subscribed(self: &Arc<Self>, channel: &[u8]) -> redis::RedisResult<()> {
        let mut conn = self.conn.lock().await;
        if conn.as_ref().is_some_and(|c| c.dispatcher.is_finished()) {
            *conn = None;
        }
        if conn.is_none() {
            *conn = Some(self.open().await?);
        }
        let c = conn.as_mut().expect("just opened");
        if !c.subscribed.contains(channel) {
            if let Err(e) = c.sink.subscribe(channel).await {
                *conn = None;
                return Err(e);
            }
            c.subscribed.insert(channel.to_vec());
        }
        Ok(())
    }

    async fn open(self: &Arc<Self>) -> redis::RedisResult<Conn> {
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting for pub/sub timed out",
                ))
            })??;
        let (sink, mut stream) = pubsub.split();
        let weak = Arc::downgrade(self);
        let dispatcher = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let Some(inner) = weak.upgrade() else { return };
                let channel: Vec<u8> = match msg.get_channel() {
                    Ok(c) => c,
                    Err(_) => continue,
                };
                let notify = inner.table().get(&channel).map(|(n, _)| n.clone());
                if let Some(notify) = notify {
                    notify.notify_waiters();
                }
            }
            // The connection is gone: wake everyone to try (and poll) at once.
            if let Some(inner) = weak.upgrade() {
                let all: Vec<Arc<Notify>> =
                    inner.table().values().map(|(n, _)| n.clone()).collect();
                for notify in all {
                    notify.notify_waiters();
                }
            }
        });
        Ok(Conn {
            sink,
            dispatcher,
            subscribed: HashSet::new(),
        })
    }

    /// Unsubscribes from `channel` if nobody waits on it any more.
    async fn release(self: Arc<Self>, channel: Vec<u8>) {
        let mut conn = self.conn.lock().await;
        if self.table().contains_key(&channel) {
            return; // a new waiter came meanwhile
        }
        if let Some(c) = conn.as_mut() {
            if c.subscribed.remove(&channel) && c.sink.unsubscribe(&channel).await.is_err() {
                *conn = None;
            }
        }
    }
}

impl Subscription {
    /// A notification that completes on the next message for this channel (or when the
    /// pub/sub connection drops). Enable it before the attempt it must not miss.
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }

    /// True when the channel is subscribed: a release wakes the waiter. False when pub/sub
    /// could not be used and only polling wakes it.
    pub(crate) fn live(&self) -> bool {
        self.live
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let last = {
            let mut table = self.wakeups.table();
            match table.get_mut(&self.channel) {
                Some(entry) if entry.1 > 1 => {
                    entry.1 -= 1;
                    false
                }
                Some(_) => {
                    table.remove(&self.channel);
                    true
                }
                None => false,
            }
        };
        if last {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(
                    self.wakeups
                        .clone()
                        .release(std::mem::take(&mut self.channel)),
                );
            }
        }
    }
}
