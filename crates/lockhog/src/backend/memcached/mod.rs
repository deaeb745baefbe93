//! `memcached://host:port` — a weak lock: good enough to avoid
//! doing work twice, not to protect anything that must never run twice.
//!
//! # Why weak
//!
//! memcached is a cache. It may **evict** a lock item under memory pressure (the LRU does not
//! know it is a lock), and a **restart** forgets every lock: in both cases a second holder can
//! take a lock whose first holder is still working, and no renewal can prevent it (the first
//! holder's next renewal finds the item gone and reports the lock lost, after the fact). Use it
//! where a rare overlap costs only duplicated work; use `redis://`, `postgres://` or `etcd://`
//! otherwise, and always pass the fencing token to what you protect.
//!
//! # Keys
//!
//! memcached keys are at most 250 bytes without spaces or control characters, so a lock is the
//! key `NS:lock:<SHA-256 of the name, hex>`, with `NS` the namespace with every byte outside
//! printable ASCII, and `%` and `:`, percent-encoded (or `sha256-<hex>` of it when that is
//! over 100 bytes). That key is the RESOURCE `hold` and `status` print (`mg <key> v` shows
//! it). The item's value is the owner (`<128 random bits>/<pid>/<host>`), a space, the time
//! of the acquire (ms since the epoch, by the acquirer's clock), a newline and the name, so
//! `status` can list names and `steal_after` can judge a holder's age. The fencing counter is
//! `NS:fence`.
//!
//! # Foreign resources
//!
//! [`Locker::lock_resource`](crate::Locker::lock_resource) takes a memcached key as another
//! client `add`s it (1 to 250 bytes, no spaces or control characters: anything else is
//! refused before a byte is sent). lockhog adds that very item, renews and releases it by
//! CAS as below (never touching another client's item), writes no fencing counter, and the
//! guard has no fencing token. The same weakness applies: an evicted item frees the lock.
//!
//! # How it works
//!
//! - **Acquire**: one round trip: `ms key <len> T<exptime> ME c` (an add: stored only when
//!   the key does not exist, answering the item's CAS unique) pipelined with `incr NS:fence 1`
//!   for the fencing token. A token drawn for an add that found the key taken is skipped: the
//!   tokens of later grants are still greater, with gaps.
//! - **Owner checks** use CAS uniques, so no step can act on another owner's item: **release**
//!   is `md key C<cas>` with the unique our last write got, which deletes only that very
//!   write (memcached 1.6 or later); **renewal** rewrites the item with a new expiry by
//!   `ms key … C<cas> c` and keeps the new unique (a plain `touch` would extend whoever holds
//!   the key by then). When the unique is unknown or stale, or a connection was opened since it
//!   was learnt (a restarted memcached counts uniques from 1 again, so an old unique could name
//!   another owner's item), they read the item first (`mg … v c`), compare the value with ours
//!   and use the unique read.
//! - **Expiry** has whole-second granularity in memcached: the item is stored with
//!   `ceil(ttl) + 1` seconds, so a lease lasts at least its ttl and at most about two seconds
//!   more; a holder that dies frees the lock within that.
//! - **steal_after**: an acquire that finds the item taken reads it (`mg … v c`) and, when
//!   its value says it was acquired longer ago than the request's `steal_after`, replaces it
//!   by compare-and-set with the unique it read (`ms … C<cas>`, pipelined with the fencing
//!   `incr`): of two stealers only one matches. The old holder's next renewal finds the item
//!   changed and reports the lock lost. The age is judged across the clients' clocks. A
//!   foreign item has no acquisition time: refused there. No shared locks.
//! - **Waiting** polls with the caller's retry policy (memcached cannot notify), except that a
//!   release made by this process wakes a waiter of this process on that lock at once
//!   (see `wake.rs`): waiters in other processes wait for their next poll.
//! - **Fencing tokens**: `incr NS:fence 1`; a missing counter is created (with `add`, so two
//!   clients cannot both create it) at the current time in microseconds, so that one lost to
//!   eviction or a restart starts again above the tokens handed out before (unless the client's
//!   clock went back, or more than a million tokens a second were handed out on average).
//! - **Status** lists keys with `lru_crawler metadump all` and reads each.

mod client;
mod item;
mod steal;
mod wake;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use self::client::Client;
use self::item::{release_item, ItemLease, KnownCas, PendingAdd};
use self::steal::split_value;
use super::lease::{release_in_background, steal_after_of, Renewal, RELEASE_ON_DROP_FAILED};
use super::{
    AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockState, LockStatus,
};
use crate::error::{Error, Result};
use crate::name::{hex, percent_encode, LockKey};
use crate::url::BackendUrl;

/// The row of this backend in the backend registry.
pub(crate) const ROW: super::row::BackendRow =
    super::row::BackendRow::of::<MemcachedBackend>(&["memcached"], Some("memcached"), |url| {
        Ok(super::row::connecting(MemcachedBackend::connect(url)?))
    })
    .port(DEFAULT_PORT);

const SCHEME: &str = "memcached";

/// The port a `memcached://` URL without one connects to.
const DEFAULT_PORT: u16 = 11211;

/// The lease when neither the URL (`?ttl=`) nor the request says.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// The `memcached://` backend. See the [module docs](self).
pub struct MemcachedBackend {
    client: Arc<Client>,
}

impl std::fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("addr", &self.client.addr())
            .finish()
    }
}

/// A held memcached lock.
pub struct MemcachedHeld {
    client: Arc<Client>,
    key: String,
    value: Vec<u8>,
    known: Arc<KnownCas>,
    renewal: Renewal,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for MemcachedHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedHeld")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn io_err(doing: &str, e: std::io::Error) -> Error {
    Error::backend_io(SCHEME, doing, e)
}

fn namespace_part(namespace: &str) -> String {
    let enc = percent_encode(namespace, |b| {
        b.is_ascii_graphic() && b != b'%' && b != b':'
    });
    if enc.len() <= 100 {
        enc
    } else {
        format!("sha256-{}", hex(&Sha256::digest(namespace.as_bytes())))
    }
}

/// The memcached key of a lock.
pub fn lock_key(key: &LockKey) -> String {
    if let Some(item) = key.foreign_resource() {
        return item.to_string();
    }
    format!(
        "{}:lock:{}",
        namespace_part(key.namespace()),
        hex(&Sha256::digest(key.name().as_str().as_bytes()))
    )
}

fn fence_key(namespace: &str) -> String {
    format!("{}:fence", namespace_part(namespace))
}

/// The longest memcached key, in bytes.
pub const MAX_KEY_BYTES: usize = 250;

/// A foreign resource on memcached: the key another client `add`s, as it is: 1 to
/// [`MAX_KEY_BYTES`] bytes without spaces or control characters (what memcached accepts).
fn parse_resource(resource: &str) -> Result<String> {
    let fits = (1..=MAX_KEY_BYTES).contains(&resource.len())
        && resource.bytes().all(|b| b > b' ' && b != 0x7f);
    if !fits {
        return Err(super::bad_resource(
            resource,
            &format!(
                "a memcached key of 1 to {MAX_KEY_BYTES} bytes without spaces or control \
                 characters"
            ),
        ));
    }
    Ok(resource.to_string())
}

/// Whole seconds that cover `ttl` whatever the server's clock tick.
fn exptime(ttl: Duration) -> u64 {
    ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0) + 1
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl MemcachedBackend {
    /// Connects to `memcached://host:port` (namespace and ttl already taken off).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a malformed URL or unknown option; [`Error::Backend`] when the
    /// server does not answer.
    ///
    /// Takes its options off `url` and returns the future that connects; the caller refuses the
    /// options left on `url` ([`BackendUrl::finish`]) before awaiting it.
    pub fn connect(
        url: &mut BackendUrl,
    ) -> Result<impl Future<Output = Result<Self>> + Send + 'static> {
        let addr = url
            .body()
            .strip_prefix("//")
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains(['/', '@', ',']))
            .ok_or_else(|| url.invalid("expected memcached://host:port"))?;
        let addr = if addr.contains(':') {
            addr.to_string()
        } else {
            format!("{addr}:{DEFAULT_PORT}")
        };
        Ok(async move {
            let client = Client::new(addr.clone());
            client
                .version()
                .await
                .map_err(|e| io_err(&format!("cannot reach {addr}"), e))?;
            Ok(MemcachedBackend {
                client: Arc::new(client),
            })
        })
    }

    async fn next_token(&self, namespace: &str) -> std::io::Result<u64> {
        let fence = fence_key(namespace);
        loop {
            if let Some(t) = self.client.incr(&fence).await? {
                return Ok(t);
            }
            // Missing (never made, evicted, or lost in a restart): start at the clock. Only one
            // `add` wins; the others see it stored and increment it.
            self.client
                .add(&fence, now_micros().to_string().as_bytes(), 0)
                .await?;
        }
    }
}

impl Backend for MemcachedBackend {
    type Held = MemcachedHeld;

    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lease: true,
            native_fencing: true,
            lost_notice: true,
            crash_release: true,
            cross_process: true,
            steal_after: true,
            ..Capabilities::default()
        }
    }

    fn resource(&self, key: &LockKey) -> String {
        lock_key(key)
    }

    fn parse_resource(res: &str) -> Result<String> {
        parse_resource(res)
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<MemcachedHeld>>> {
        let ttl = ctx.options.ttl.unwrap_or(DEFAULT_TTL);
        let item = lock_key(key);
        // The name lets `status` list lockhog's locks, and the time of the acquire lets a
        // later `steal_after` judge the holder's age; a foreign key's value is only the owner,
        // and it has no fencing counter (nothing is written beside the other client's key).
        let named = key.foreign_resource().is_none();
        let steal_after = steal_after_of(&ctx.options, ttl, !named)?;
        let mut value = super::owner::new_owner();
        if named {
            value.extend_from_slice(format!(" {}\n", now_micros() / 1000).as_bytes());
            value.extend_from_slice(key.name().as_str().as_bytes());
        }
        let started = Instant::now();
        // No counter for a foreign key, nor for a request that opted out of fencing.
        let fenced = named && ctx.options.fencing;
        let fence = fenced.then(|| fence_key(key.namespace()));
        let start = |over| {
            PendingAdd::start(
                &self.client,
                &item,
                &value,
                exptime(ttl),
                over,
                fence.clone(),
            )
        };
        let mut add = start(None);
        let mut answer = add
            .answer()
            .await
            .map_err(|e| io_err("acquiring a lock", e))?;
        if answer.is_none() {
            add.disarm();
            // Held: taken over by compare-and-set when its holder acquired longer ago than
            // steal_after, so that of two stealers only one replaces the item it read.
            let Some(over) = self.stale(&item, steal_after).await? else {
                return Ok(None);
            };
            add = start(Some(over));
            answer = add
                .answer()
                .await
                .map_err(|e| io_err("taking over a lock", e))?;
        }
        let Some((unique, token)) = answer else {
            add.disarm();
            return Ok(None);
        };
        let token = match token {
            Some(token) => Some(token),
            None if fenced => Some(
                self.next_token(key.namespace())
                    .await
                    .map_err(|e| io_err("taking a fencing token", e))?,
            ),
            None => None,
        };
        add.disarm();
        let known = KnownCas::new(unique);
        let renewal = Renewal::spawn(
            ItemLease {
                client: self.client.clone(),
                key: item.clone(),
                value: value.clone(),
                ttl,
                known: known.clone(),
            },
            ttl,
            started + ttl,
            ctx.lost.clone(),
        );
        Ok(Some(Acquired {
            held: MemcachedHeld {
                client: self.client.clone(),
                key: item,
                value,
                known,
                renewal,
                runtime: tokio::runtime::Handle::current(),
            },
            token,
        }))
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<MemcachedHeld>>> {
        let interest = wake::Interest::new(self.client.addr(), &lock_key(key));
        super::poll_or_woken(ctx, deadline, Some(interest.notify()), || {
            self.try_acquire(key, ctx)
        })
        .await
    }

    async fn release(&self, mut held: MemcachedHeld) -> Result<bool> {
        held.renewal.stop();
        let released = release_item(&held.client, &held.key, &held.value, &held.known)
            .await
            .map_err(|e| io_err("releasing a lock", e));
        wake::released(held.client.addr(), &held.key);
        released
    }

    fn release_on_drop(&self, mut held: MemcachedHeld) {
        held.renewal.stop();
        let runtime = held.runtime.clone();
        release_in_background(&runtime, RELEASE_ON_DROP_FAILED, async move {
            let released = release_item(&held.client, &held.key, &held.value, &held.known).await;
            wake::released(held.client.addr(), &held.key);
            released
        });
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        let items: Vec<String> = if keys.is_empty() {
            let prefix = format!("{}:lock:", namespace_part(namespace));
            let mut all: Vec<String> = self
                .client
                .keys()
                .await
                .map_err(|e| io_err("listing locks", e))?
                .into_iter()
                .filter(|k| k.starts_with(&prefix))
                .collect();
            all.sort();
            all
        } else {
            keys.iter().map(lock_key).collect()
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let got = self
                .client
                .get(item)
                .await
                .map_err(|e| io_err("reading a lock", e))?;
            let given = keys.get(i).map(|k| k.name().to_string());
            match got {
                Some(it) => {
                    let (owner, _, name) = split_value(&it.value);
                    let name =
                        given.or_else(|| name.and_then(|n| String::from_utf8(n.to_vec()).ok()));
                    let mut holder = super::owner::describe_owner(owner);
                    if it.ttl >= 0 {
                        holder.push_str(&format!(" ttl {}s", it.ttl));
                    }
                    out.push(LockStatus::new(
                        name,
                        item.clone(),
                        LockState::Held,
                        Some(holder),
                    ));
                }
                None if keys.is_empty() => {}
                None => out.push(LockStatus::new(given, item.clone(), LockState::Free, None)),
            }
        }
        Ok(out)
    }

    async fn cleanup(&self, namespace: &str) -> Result<CleanupReport> {
        let held = self.status(namespace, &[]).await?.len() as u64;
        Ok(CleanupReport::new(0, held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::LockName;

    #[test]
    fn keys_fit_memcached() {
        let long_ns = "n s\0:".repeat(30);
        for ns in ["lockhog", "a b", long_ns.as_str()] {
            let k = lock_key(&LockKey::new(ns, LockName::new("x".repeat(1024)).unwrap()));
            assert!(k.len() <= 250, "{k}");
            assert!(k.bytes().all(|b| b.is_ascii_graphic()), "{k}");
        }
        assert_eq!(exptime(Duration::from_secs(1)), 2);
        assert_eq!(exptime(Duration::from_millis(1500)), 3);
    }

    #[test]
    fn a_foreign_key_is_the_item_itself() {
        let k = LockKey::for_resource("app", parse_resource("report:7").unwrap()).unwrap();
        assert_eq!(lock_key(&k), "report:7");
        assert!(parse_resource(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        for bad in [
            String::new(),
            "k".repeat(MAX_KEY_BYTES + 1),
            "a b".into(),
            "a\tb".into(),
            "a\r\nset x".into(),
            "a\u{7f}".into(),
        ] {
            let err = parse_resource(&bad).unwrap_err().to_string();
            assert!(
                err.contains("a memcached key of 1 to 250 bytes"),
                "{bad:?}: {err}"
            );
        }
    }
}
