//! `redis://` and `rediss://` — a lease on one Redis server; `redlock://` — a quorum of
//! independent Redis servers (see [`redlock`]).
//!
//! # URLs
//!
//! `redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS (the system's roots, or
//! the PEM file given by `?ca=/path/to/ca.pem`). AUTH and ACL users come from the URL's user
//! and password; the password never appears in an error or a log line. Common options:
//! `namespace=` and `ttl=` (the lease, 30 s by default). `wake=poll` makes waiters poll
//! instead of subscribing to release messages (for servers where pub/sub is not allowed).
//!
//! # Keys
//!
//! With `NS` the namespace (`lockhog` by default) with `%` and `:` percent-encoded, a lock
//! named `NAME` is the Redis key `NS:lock:NAME`, `NAME` taken byte for byte (Redis keys are
//! binary safe: spaces, quotes, NUL all stay as they are). That key is the RESOURCE that
//! `lockhog hold` and `status` print, so `redis-cli GET 'lockhog:lock:nightly-report'` finds
//! it. Its value is the owner: `<128 random bits in hex>/<pid>/<host>`. Waiters are woken on
//! the channel `NS:released:NAME`; fencing tokens come from the counter `NS:fence`. Beside
//! the key live `NS:since:NAME` (when the holder acquired, for `steal_after`),
//! `NS:readers:NAME` (the shared holders) and `NS:waiting:NAME` (writers waiting behind
//! them), each only while it has something to say (see `scripts.rs` and `shared.rs`).
//!
//! # Foreign resources
//!
//! [`Locker::lock_resource`](crate::Locker::lock_resource) takes any key of 1 to 1024 bytes,
//! verbatim: `report` for redis-py's `Lock("report")`, `lock:report` for python-redis-lock's.
//! It is held as those clients hold it (`SET key <owner> NX PX <ttl>`, renewed and released
//! only while it holds our owner, as below), on a majority of nodes under `redlock://`.
//! Nothing else is written: no fencing counter (the guard has no token) and no release
//! message (waiters poll with the retry policy). A blocking python-redis-lock waiter sees
//! lockhog's release at its next try, after its `expire` or `timeout` (give it one).
//!
//! # How it works
//!
//! - **Acquire** is one Lua script: `SET key owner NX PX ttl`, and when that succeeds, `INCR`
//!   of the namespace's fencing counter, so a holder always gets its token. Keys and owners are
//!   script arguments, never spliced into the source; scripts are sent by SHA-1 (`EVALSHA`),
//!   loaded again when the server answers `NOSCRIPT`.
//! - **Release** is a compare-and-delete script: the key is deleted only when it still holds
//!   our owner, and the release is published on the lock's channel. Releasing a lock that
//!   expired and was taken by someone else returns `false` and leaves their key alone.
//! - **Lease**: the key expires after the ttl unless renewed. While the guard lives, a task
//!   renews it every ttl/3 with a compare-and-`PEXPIRE` script (which never creates a key and
//!   never extends someone else's); it stops when the guard is released or dropped. When a
//!   renewal finds the key gone or another owner's, or no renewal succeeds before the lease
//!   runs out, [`LockGuard::lost`](crate::LockGuard::lost) completes.
//! - **Waiting**: a waiter subscribes to the lock's channel before each attempt, then waits for
//!   a release message or until the holder's lease would have run out (the attempt returns its
//!   `PTTL`), whichever is first, and at most one second; without pub/sub it polls with the
//!   retry policy.
//! - **Fencing tokens** come from `INCR` on one counter per namespace (not one per name: a
//!   counter per name would leave a key behind for every name ever locked). Tokens therefore
//!   increase across all the namespace's locks, which is more than the contract asks. The
//!   counter is created with the server's clock in microseconds, so when a server without
//!   persistence restarts and loses it, tokens still do not go back (unless the server's clock
//!   went back, or more than a million tokens a second were handed out on average). With
//!   persistence (AOF `appendfsync always`) the counter survives as written.
//! - **steal_after**: the acquire script writes `NS:since:NAME` = `<server ms> <owner>` with
//!   the key's lease (renewals extend it, the release deletes it), and takes over, in the same
//!   script, a key whose holder that names acquired longer ago than the request's
//!   `steal_after` by the server's clock. The old holder's next renewal finds another owner
//!   and reports the lock lost. A foreign key has no acquisition time: refused there.
//! - **Shared locks**: see `shared.rs` (readers in a sorted set scored by their leases; a
//!   waiting writer keeps new readers out).
//! - **Semaphores**: a semaphore's N permits are the slot locks `NAME#permit-0` … (each an
//!   ordinary lease above), and its count is the key `NS:permits:NAME` (see `semaphore.rs`).
//! - **Cancel safety**: an acquire dropped after its script was sent may have taken the lock;
//!   a compare-and-delete with its owner token is then sent on the same connection, after it.
//!
//! # What it does not guarantee
//!
//! A lease is time-based: a holder paused longer than its ttl (GC, swap, SIGSTOP) may still
//! believe it holds a lock that has expired and been taken. Pass the fencing token to the
//! resource you protect. A failover to a replica that had not received the `SET` loses the
//! lock (Redis replication is asynchronous); use `redlock://` over independent servers, or
//! fencing, when that matters.

mod call;
mod conn;
mod direct;
mod keys;
mod lease_key;
pub(crate) use self::conn::Conn;
pub(crate) use self::keys::{
    fence_of, given_name, lock_key, name_of, namespace_part, release_channel, resource,
    scan_pattern, since_key,
};
use self::setup::client_url;
pub(crate) use self::setup::{backend_err, client, conn_config, connect_checked, take_wake};
pub mod redlock;
pub(crate) mod scripts;
mod semaphore;
mod setup;
mod shared;
mod status;
mod wake;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use self::keys::readers_key;
use self::lease_key::{Hold, HoldKeys, KeyLease, Undo};
use self::scripts::Ask;
use self::shared::Announcement;
use self::wake::{Subscription, Wakeups};
use super::lease::{release_in_background, steal_after_of, Renewal, RELEASE_ON_DROP_FAILED};
use super::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockStatus};
use crate::backend::owner::new_owner;
use crate::error::{Error, Result};
use crate::name::LockKey;
use crate::url::BackendUrl;

/// The row of this backend in the backend registry.
pub(crate) const ROW: super::row::BackendRow =
    super::row::BackendRow::of::<RedisBackend>(&["redis", "rediss"], Some("redis"), |url| {
        Ok(super::row::connecting(RedisBackend::connect(url)?))
    })
    .port(6379);

/// The lease when neither the URL (`?ttl=`) nor the request says.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// How long connecting to a server may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may wait for its answer.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between attempts while pub/sub works (a lost message, or a holder whose
/// key has no expiry, costs at most this).
pub(crate) const MAX_PUBSUB_WAIT: Duration = Duration::from_secs(1);

const SCHEME: &str = "redis";

/// What both Redis backends guarantee: Redlock runs the single-node backend's keys, scripts
/// and leases on each of its nodes.
fn capabilities() -> Capabilities {
    Capabilities {
        lease: true,
        native_fencing: true,
        lost_notice: true,
        crash_release: true,
        native_wait: true,
        cross_process: true,
        steal_after: true,
        ..Capabilities::default()
    }
}

pub(crate) fn ttl_of(ctx: &AcquireContext) -> Duration {
    ctx.options.ttl.unwrap_or(DEFAULT_TTL)
}

pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

// ---------------------------------------------------------------------------------------------
// The backend

/// The `redis://` / `rediss://` backend. See the [module docs](self).
pub struct RedisBackend {
    conn: Conn,
    wakeups: Wakeups,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend").finish_non_exhaustive()
    }
}

/// A held Redis lock: where it lives (the lock key, or our member of its readers), the
/// connection and the renewal task.
pub struct RedisHeld {
    conn: Conn,
    hold: Hold,
    renewal: Renewal,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for RedisHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHeld")
            .field("key", &String::from_utf8_lossy(&self.hold.key))
            .field("shared", &self.hold.shared)
            .finish_non_exhaustive()
    }
}

enum Attempt {
    Acquired(Acquired<RedisHeld>),
    /// Held by someone else; how long until it may be free, in ms (-1: unknown).
    Busy(i64),
}

impl RedisBackend {
    /// Connects to the `redis://` or `rediss://` URL (namespace and ttl already taken off).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a malformed URL or unknown option;
    /// [`Error::Backend`] when the server cannot be reached or refuses
    /// the credentials.
    ///
    /// Takes its options off `url` and returns the future that connects; the caller refuses the
    /// options left on `url` ([`BackendUrl::finish`]) before awaiting it.
    pub fn connect(
        url: &mut BackendUrl,
    ) -> Result<impl Future<Output = Result<Self>> + Send + 'static> {
        let shown = url.redacted().to_string();
        let pubsub = take_wake(url)?;
        let (target, ca) = client_url(url)?;
        Ok(async move {
            let client = client(&target, ca.as_deref(), &shown)?;
            let conn = connect_checked(&client, &shown).await?;
            Ok(RedisBackend {
                conn,
                wakeups: Wakeups::new(client, pubsub),
            })
        })
    }

    /// One attempt, shared or exclusive as `ctx` asks; an exclusive one by a waiting writer
    /// announces `waiter` while the lock is busy (see `shared.rs`).
    async fn attempt(&self, key: &LockKey, ctx: &AcquireContext, waiter: &[u8]) -> Result<Attempt> {
        let ttl = ttl_of(ctx);
        let shared = ctx.options.shared;
        let steal_after = steal_after_of(&ctx.options, ttl, key.foreign_resource().is_some())?;
        if shared && steal_after.is_some() {
            return Err(Error::InvalidOption {
                reason: "steal_after takes a lock over from an exclusive holder; a shared \
                         request cannot ask for it on redis"
                    .into(),
            });
        }
        if shared && key.foreign_resource().is_some() {
            return Err(Error::InvalidOption {
                reason: "another program's Redis key (a foreign resource) has no shared holders"
                    .into(),
            });
        }
        let hold = Hold::new(HoldKeys {
            key: if shared {
                readers_key(key)
            } else {
                lock_key(key)
            },
            since: if shared { None } else { since_key(key) },
            owner: new_owner(),
            channel: release_channel(key),
            shared,
        });
        let call = if shared {
            shared::acquire(key, &hold.owner, ttl, ctx.options.fencing)
        } else {
            scripts::acquire(
                key,
                &Ask {
                    owner: &hold.owner,
                    ttl,
                    steal_after,
                    waiter,
                    fenced: ctx.options.fencing,
                },
            )
        };
        let mut conn = self.conn.clone();
        let undo = Undo {
            conn: Some(conn.clone()),
            hold: hold.clone(),
        };
        let started = Instant::now();
        let (acquired, value): (i64, i64) = call
            .invoke(&mut conn)
            .await
            .map_err(|e| backend_err("acquiring a lock", e))?;
        undo.disarm();
        if acquired != 1 {
            return Ok(Attempt::Busy(value));
        }
        let renewal = Renewal::spawn(
            KeyLease {
                conn: conn.clone(),
                hold: hold.clone(),
                ttl,
            },
            ttl,
            started + ttl,
            ctx.lost.clone(),
        );
        Ok(Attempt::Acquired(Acquired {
            held: RedisHeld {
                conn,
                hold,
                renewal,
                runtime: tokio::runtime::Handle::current(),
            },
            // No token for a foreign key, nor for a request that opted out of fencing.
            token: (fence_of(key).is_some() && ctx.options.fencing).then_some(value as u64),
        }))
    }
}

/// How long a waiter sleeps before its next attempt when no message wakes it.
fn next_poll(pttl: i64, sub: &Subscription, ctx: &AcquireContext, attempt: u32) -> Duration {
    let cap = if sub.live() {
        MAX_PUBSUB_WAIT
    } else {
        ctx.options.retry.delay(attempt)
    };
    match pttl {
        -2 => Duration::ZERO,
        // One millisecond past the holder's expiry.
        p if p >= 0 => cap.min(Duration::from_millis(p as u64 + 1)),
        _ => cap,
    }
}

impl Backend for RedisBackend {
    type Held = RedisHeld;

    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            semaphore: true,
            shared: true,
            shared_writer_priority: true,
            ..capabilities()
        }
    }

    fn resource(&self, key: &LockKey) -> String {
        resource(key)
    }

    fn parse_resource(res: &str) -> Result<String> {
        keys::parse_resource(res)
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<RedisHeld>>> {
        match self.attempt(key, ctx, &[]).await? {
            Attempt::Acquired(a) => Ok(Some(a)),
            Attempt::Busy(_) => Ok(None),
        }
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<RedisHeld>>> {
        // Subscribe before the first attempt, so that a release after it is not missed.
        let channel = release_channel(key);
        let sub = self.wakeups.subscribe(&channel).await;
        // A writer waiting for a named lock keeps new readers out while it waits.
        let announced = (!ctx.options.shared && key.foreign_resource().is_none())
            .then(|| Announcement::new(self.conn.clone(), key, &channel));
        let waiter = announced.as_ref().map_or(&[][..], |a| &a.waiter[..]);
        let mut attempt = 0u32;
        loop {
            let notified = sub.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            ctx.note_attempt();
            attempt = attempt.saturating_add(1);
            let pttl = match self.attempt(key, ctx, waiter).await? {
                Attempt::Acquired(a) => {
                    if let Some(a) = announced {
                        a.disarm();
                    }
                    return Ok(Some(a));
                }
                Attempt::Busy(pttl) => pttl,
            };
            let now = Instant::now();
            let mut pause = next_poll(pttl, &sub, ctx, attempt);
            if announced.is_some() {
                // Re-announce before the announcement runs out.
                pause = pause.min(scripts::waiter_lease(ttl_of(ctx)) / 3);
            }
            let mut wake = now + pause;
            if let Some(deadline) = deadline {
                if now >= deadline {
                    if let Some(a) = announced {
                        a.withdraw().await;
                    }
                    return Ok(None);
                }
                wake = wake.min(deadline);
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn record_permits(&self, key: &LockKey, permits: u32) -> Result<()> {
        semaphore::check(&mut self.conn.clone(), key, permits).await
    }

    async fn release(&self, mut held: RedisHeld) -> Result<bool> {
        held.renewal.stop();
        held.hold
            .release(&mut held.conn)
            .await
            .map_err(|e| backend_err("releasing a lock", e))
    }

    fn release_on_drop(&self, mut held: RedisHeld) {
        held.renewal.stop();
        let runtime = held.runtime.clone();
        release_in_background(&runtime, RELEASE_ON_DROP_FAILED, async move {
            held.hold.release(&mut held.conn).await
        });
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        status::status(&mut self.conn.clone(), namespace, keys).await
    }

    async fn cleanup(&self, namespace: &str) -> Result<CleanupReport> {
        // Lock keys expire by themselves and the fencing counter must stay: nothing is stale.
        let held = self.status(namespace, &[]).await?.len() as u64;
        Ok(CleanupReport::new(0, held))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_rs_gets_the_password_lockhog_parsed() {
        use redis::IntoConnectionInfo;
        for pw in crate::url::ODD_PASSWORDS {
            let url = format!("redis://app:{pw}@h:6380/2");
            let (client_url, _) = super::client_url(&mut BackendUrl::parse(&url).unwrap()).unwrap();
            let info = client_url.as_str().into_connection_info().unwrap();
            let want = String::from_utf8(crate::secret::decode_lossy(pw)).unwrap();
            assert_eq!(
                info.redis_settings().password(),
                Some(want.as_str()),
                "{url}"
            );
            assert_eq!(info.redis_settings().username(), Some("app"), "{url}");
        }
    }

    use super::*;

    #[test]
    fn owners_are_unique_and_describe_their_holder() {
        use crate::backend::owner::describe_owner;
        let (a, b) = (new_owner(), new_owner());
        assert_ne!(a, b);
        let d = describe_owner(&a);
        assert!(d.contains(&format!("pid {}", std::process::id())), "{d}");
    }
}
