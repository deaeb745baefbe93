//! `etcd://` and `etcds://` — a key per holder or waiter on one session lease per locker,
//! queued by create revision, like etcd's own `concurrency.Mutex` (and `RWMutex` for shared
//! locks).
//!
//! # URLs
//!
//! `etcd://[user:password@]host[:port][,host[:port]…]`: every member's client endpoint (port
//! 2379 when omitted), in plaintext. Requests are balanced over the members and tried again on
//! another when one fails or does not answer, so a list whose first member is down works, and
//! so does a cluster with a minority of members stopped. With `user:password` the client
//! authenticates (etcd's auth); the password never appears in an error or a log line. Common
//! options: `namespace=` and `ttl=` (the lease, 30 s by default).
//!
//! `etcds://[user:password@]host[:port][,host[:port]…][?ca=PATH][&cert=PATH&key=PATH]` is the
//! same over TLS (`https://` endpoints):
//! - `ca=` a PEM file of the CA certificate(s) that verify the members' certificates (which
//!   must name the host as written in the URL); without it, the system's roots;
//! - `cert=` and `key=` (always together) a PEM client certificate and its private key, for
//!   members started with `--client-cert-auth`.
//!
//! A file that cannot be read is an [`Error::InvalidUrl`](crate::Error::InvalidUrl) naming the
//! option and the path, and so are these options on a plaintext `etcd://` URL. A member whose
//! certificate does not verify, or that refuses ours, is an
//! [`Error::Backend`](crate::Error::Backend) at connect.
//!
//! # Keys
//!
//! A lock named `NAME` in namespace `NS` is the RESOURCE `lockhog/NS/NAME` (what `lockhog hold`
//! and `status` print), `NS` and `NAME` taken byte for byte (etcd keys are binary safe: spaces,
//! quotes, NUL stay as they are) except `%` and `/`, which are percent-encoded so that the
//! lock `a` never sees the queue of the lock `a/b`. Each holder or waiter has the key
//! `RESOURCE/<lease id in 16 hex digits>-<n in hex>` (a reader:
//! `RESOURCE/read/<lease id>-<n>`), attached to its locker's session lease (`n` tells apart
//! the entries of one session), with the value `<128 random bits in hex>/<pid>/<host>`, to
//! which a holder adds `/<since when it holds, unix ms>`. So
//! `etcdctl get --prefix 'lockhog/NS/NAME/'` lists the holder (first by create revision) and
//! the waiters in order.
//!
//! # Foreign resources
//!
//! [`Locker::lock_resource`](crate::Locker::lock_resource) takes the prefix that
//! `etcdctl lock <prefix>` and etcd's Go `concurrency.NewMutex(session, prefix)` lock: each
//! holder or waiter has the key `<prefix>/<lease id in hex>` (no leading zeros, as those
//! write it), and the key with the lowest create revision holds the lock. lockhog queues
//! there exactly as below, so it and those clients exclude each other, in FIFO order. That
//! layout allows one key per lease: a locker that queues twice on one prefix at once takes a
//! lease of its own for the second. The fencing token is our key's create revision, as for a
//! named lock ([`Capabilities::resource_fencing`] is true). A prefix is 1 to 1024 bytes.
//! Shared locks and `steal_after` are refused there (etcd's mutex has no shared mode, keeps no
//! time of acquisition, and is not told when its key is deleted).
//!
//! # How it works
//!
//! - **Session lease**: as etcd's own `concurrency.Session`, a locker keeps one lease per
//!   ttl (the ttl rounded up to whole seconds; etcd raises it to its minimum, 2 s by default)
//!   for all its locks: granted by the first acquire that needs it, kept alive every ttl/3
//!   while the locker lives (idle or not), over one keepalive stream that is reopened (on any
//!   member) after an error, with the schedule of the other lease backends
//!   ([`crate::backend::lease`]), and revoked once the locker and its guards are gone. A lock
//!   therefore costs one transaction to take and one to give back, with no grant or revoke.
//! - **Acquire**: in one transaction, create our key on the session lease if it does not
//!   exist (a retried request cannot create it twice) and read the queue's first key. If that
//!   is ours, we hold the lock. An acquire dropped while the transaction is in flight hands
//!   it to a background task, which deletes our key only after the transaction was answered. A join that
//!   had to be sent more than once, or that failed after it was sent, may still reach etcd
//!   late: before its key is deleted (by the release, or by the failed or dropped acquire)
//!   a marker is written on the session lease that makes every later copy of that join
//!   create nothing, and the key is never used again (see `undo.rs`).
//! - **Waiting** (FIFO): otherwise we read the key just before ours (largest create revision
//!   below ours, checking in the same transaction that ours still exists) and watch only that
//!   key, from the revision of that read, for its deletion; then look again. A release or an
//!   expiry therefore wakes exactly one waiter (no thundering herd), and waiters acquire in the
//!   order they joined: [`Capabilities::fair`] is true, and every acquire is fair. A `try`
//!   that is not first deletes its key and returns. When the key we waited on was the queue's
//!   head, its deletion leaves ours first (no older key can appear), and we hold without
//!   another write once we know ours is still there: from the same watch when it covered
//!   both keys, else from one read (see `handoff.rs`).
//! - **Shared locks** (etcd's `RWMutex` recipe, see `shared.rs`): a reader holds once no
//!   writer's key is older than its own and waits for the youngest older writer; a writer
//!   waits for every older key, readers' included. A reader that comes after a waiting writer
//!   waits behind it: [`Capabilities::shared_writer_priority`] is true.
//! - **Fencing token**: our key's create revision. etcd's revision counts every change of the
//!   whole cluster's store, so it never goes back (not across restarts, leader changes or
//!   compaction), and a later holder's key was always created after an earlier holder's:
//!   tokens increase strictly per lock, and across all locks of the cluster.
//! - **Lost notice**: when the session lease is lost (a keepalive finds it gone, or no
//!   renewal was answered before it ran out), every guard on it is told at once, and the
//!   next acquire grants a new lease. Each renewal also checks, in one transaction per 128
//!   keys, that the session's held keys are still there with their create revision, so a
//!   guard whose key was deleted behind its back (`etcdctl del`, a `steal_after`) is told
//!   within ttl/3.
//! - **Release** deletes our key, by key alone: no one else makes a key with our lease id in
//!   it, our session makes it again only once the delete is answered, and a key whose delete
//!   had to be sent twice (one of them may still arrive late) is never used again; the session
//!   lease stays. `Ok(false)` when our key was already gone. Release on drop, and a release whose
//!   future is dropped, make the same delete from a task on the runtime captured at acquire.
//!   [`LockRequest::max_hold`](crate::LockRequest::max_hold) releases so too: one key, never
//!   the lease.
//! - **steal_after** (see `steal.rs`): a waiter with
//!   [`LockRequest::steal_after`](crate::LockRequest::steal_after) deletes a holder's key
//!   whose time says it has held longer, in a transaction guarded by that key's mod revision
//!   (of two stealers one wins); the holder is told at its session's next renewal, and the
//!   queue moves on. The time is the holder's wall clock: machines' clocks must agree to well
//!   within `steal_after`.
//! - **Crash**: a locker that dies stops renewing; etcd deletes its session's keys when the
//!   lease expires (after the ttl), which wakes the next waiters.

//! # Semaphores
//!
//! A semaphore's N permits are the slot locks `NAME#permit-0` … (each an ordinary lock
//! above, taken one attempt at a time; permits are not FIFO), and its count is the key
//! `lockhog/NS/NAME#permit-count` (see `semaphore.rs`).
//!
//! # What it does not guarantee
//!
//! A lease is time-based: a holder paused longer than its ttl may still believe it holds a
//! lock that has expired and been taken. Pass the fencing token to the resource you protect.
//! A waiter whose own lease expires while etcd is out of reach for longer than the ttl loses
//! its place and its acquire fails with [`Error::Backend`](crate::Error::Backend). Since a
//! locker's locks share one lease, losing it (etcd out of reach for a ttl, a paused process)
//! loses all of them at once; a lock whose key someone else deleted is noticed only at the
//! next renewal (ttl/3), not at the moment of the delete.

mod connect;
mod handoff;
mod held;
mod keys;
mod lease;
mod queue;
mod semaphore;
mod session;
mod shared;
mod status;
mod steal;
mod undo;

use std::future::Future;
use std::time::Duration;

use etcd_client::Client;
use tokio::time::Instant;

pub use self::connect::DEFAULT_PORT;
pub use self::held::EtcdHeld;
use self::queue::{turn, wait_deleted, Entry, Place, Turn, Woken};
use self::session::Sessions;
use self::undo::Undo;
use super::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockStatus};
use crate::backend::owner::new_owner;
use crate::error::Result;
use crate::name::LockKey;
use crate::url::BackendUrl;

/// The row of this backend in the backend registry.
pub(crate) const ROW: super::row::BackendRow =
    super::row::BackendRow::of::<EtcdBackend>(&["etcd", "etcds"], Some("etcd"), |url| {
        Ok(super::row::connecting(EtcdBackend::connect(url)?))
    })
    .port(connect::DEFAULT_PORT);

/// The lease when neither the URL (`?ttl=`) nor the request says.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// The `etcd://` / `etcds://` backend. See the [module docs](self).
pub struct EtcdBackend {
    client: Client,
    sessions: Sessions,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend").finish_non_exhaustive()
    }
}

impl EtcdBackend {
    /// Connects to the `etcd://` or `etcds://` URL (namespace and ttl already taken off),
    /// checked by one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl) for a malformed URL, an unknown option
    /// or an unreadable TLS file; [`Error::Backend`](crate::Error::Backend) when no member
    /// answers within a few seconds, TLS fails (a certificate that does not verify, a client
    /// certificate missing or refused) or the credentials are refused.
    ///
    /// Takes its options off `url` and returns the future that connects; the caller refuses the
    /// options left on `url` ([`BackendUrl::finish`]) before awaiting it.
    pub fn connect(
        url: &mut BackendUrl,
    ) -> Result<impl Future<Output = Result<Self>> + Send + 'static> {
        let target = connect::parse(url)?;
        let shown = url.redacted().to_string();
        Ok(async move {
            let client = connect::connect(&target, &shown).await?;
            Ok(EtcdBackend {
                sessions: Sessions::new(client.clone()),
                client,
            })
        })
    }

    /// Our place in `key`'s queue on the session of `ttl`: the session's first key there not
    /// in use (so two guards of one name in one locker have two keys, and exclude each
    /// other); for a foreign resource, the session's one key there, or a private session's
    /// when this locker queues there already.
    async fn place(&self, key: &LockKey, ttl: Duration, shared: bool) -> Result<Place> {
        let session = self.sessions.get(ttl).await?;
        let id = session.next_id();
        if key.foreign_resource().is_none() {
            let lease = session.lease;
            let mine = session.claim_first(|n| match shared {
                true => keys::reader_key(key, lease, n),
                false => keys::entry_key(key, lease, n),
            });
            return Ok(Place::new(session, mine, id));
        }
        let mut session = session;
        let mut mine = keys::entry_key(key, session.lease, 0);
        if !session.claim(&mine) {
            session = self.sessions.private(ttl).await?;
            mine = keys::entry_key(key, session.lease, 0);
            session.claim(&mine);
        }
        Ok(Place::new(session, mine, id))
    }

    /// Joins the queue on a live session: when the put finds the session's lease gone (etcd
    /// was out of reach for longer than the ttl, and the renewal has not told yet), the
    /// session is marked lost and the join is made once more on a new one.
    async fn join(
        &self,
        key: &LockKey,
        ttl: Duration,
        owner: &[u8],
        shared: bool,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(Undo, Entry, bool)> {
        let prefix = keys::queue_prefix(key);
        let mut again = true;
        loop {
            let place = self.place(key, ttl, shared).await?;
            let mut undo = Undo::new(self.client.clone(), place, runtime.clone());
            match undo.join(&prefix, owner.to_vec(), shared).await {
                Ok((entry, first)) => return Ok((undo, entry, first)),
                Err(e) if again && e.to_string().contains("lease not found") => {
                    undo.place()
                        .session
                        .kill("etcd no longer knew it when a lock was queued with it");
                    again = false;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Joins the queue and, unless `wait` is `None` (one try), waits for our turn until the
    /// deadline (`Some(None)`: forever).
    async fn acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        wait: Option<Option<Instant>>,
    ) -> Result<Option<Acquired<EtcdHeld>>> {
        let runtime = tokio::runtime::Handle::current();
        let ttl = ctx.options.ttl.unwrap_or(DEFAULT_TTL);
        let (steal_after, shared) = (ctx.options.steal_after, ctx.options.shared);
        refuse(key, ctx)?;
        let prefix = keys::queue_prefix(key);
        let owner = new_owner();
        let (undo, entry, first) = self.join(key, ttl, &owner, shared, &runtime).await?;
        if !first {
            // A try that may not steal has nothing to look at.
            if wait.is_none() && steal_after.is_none() {
                undo.delete_now().await?;
                return Ok(None);
            }
            // The key we waited on was the queue's head, and it is gone.
            let mut head_gone = false;
            loop {
                if wait.is_some() {
                    ctx.note_attempt();
                }
                if std::mem::take(&mut head_gone)
                    && handoff::first_is_ours(&self.client, &prefix, &entry).await
                {
                    handoff::say_holding(&self.client, &entry, &owner, &runtime);
                    break;
                }
                let turn = match shared {
                    true => shared::turn(&self.client, &prefix, &entry).await?,
                    false => turn(&self.client, &prefix, &entry, &owner).await?,
                };
                let (pred, revision, head, alone) = match turn {
                    Turn::Ours => break,
                    Turn::After {
                        key,
                        revision,
                        head,
                        alone,
                    } => (key, revision, head, alone),
                };
                // A reader's look names no head: only a writer's wait may end in a handoff.
                let pred_is_head = head.as_ref().is_some_and(|h| h.key() == pred);
                // With no other key in the queue, one watch over both keys sees whether ours
                // outlived the head (see `wait_deleted`); a few other keys between them in key
                // order would only cost passed-over events, but a long queue many.
                let ours = (pred_is_head && alone).then_some(entry.key.as_slice());
                // With steal_after, a head held too long is taken over (then look again), and
                // the wait ends when it will be, or, while the head carries no time yet (a
                // waiter about to hold), after steal_after, to look again.
                let mut wake = wait.flatten();
                if let (Some(limit), Some(head)) = (steal_after, head) {
                    let at = head.stealable_at(limit);
                    if at.is_some_and(|at| at <= Instant::now()) {
                        head.steal(&self.client).await?;
                        continue;
                    }
                    let at = at.unwrap_or_else(|| Instant::now() + limit);
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                }
                let Some(deadline) = wait else {
                    undo.delete_now().await?;
                    return Ok(None);
                };
                match wait_deleted(&self.client, &pred, revision, wake, ours).await? {
                    Woken::Deleted { ours_kept: true } => {
                        // The watch was this look at the queue: counted as the read would be.
                        ctx.note_attempt();
                        handoff::say_holding(&self.client, &entry, &owner, &runtime);
                        break;
                    }
                    Woken::Deleted { ours_kept: false } => head_gone = pred_is_head,
                    Woken::Look => {}
                    Woken::Deadline => {
                        if deadline.is_some_and(|d| d <= Instant::now()) {
                            undo.delete_now().await?;
                            return Ok(None);
                        }
                    }
                }
            }
        }
        let place = undo.disarm();
        place
            .session
            .hold(place.id, entry.clone(), ctx.lost.clone());
        let token = entry.rev as u64;
        Ok(Some(Acquired {
            held: EtcdHeld {
                client: self.client.clone(),
                entry,
                place,
                runtime,
            },
            token: Some(token),
        }))
    }
}

/// The combinations of options etcd refuses.
fn refuse(key: &LockKey, ctx: &AcquireContext) -> Result<()> {
    let invalid = |reason: &str| {
        Err(crate::Error::InvalidOption {
            reason: format!("etcd: {reason}"),
        })
    };
    let foreign = key.foreign_resource().is_some();
    if ctx.options.steal_after.is_some() && foreign {
        return Err(steal::refuse_foreign());
    }
    if ctx.options.shared && foreign {
        return invalid(
            "no shared lock on a foreign prefix: etcd's own mutex (etcdctl lock) has no \
             shared mode",
        );
    }
    if ctx.options.shared && ctx.options.steal_after.is_some() {
        return invalid(
            "a shared lock cannot steal_after: readers keep no time of acquisition, and a \
             reader waits only for writers",
        );
    }
    Ok(())
}

impl Backend for EtcdBackend {
    type Held = EtcdHeld;

    fn scheme(&self) -> &'static str {
        connect::SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lease: true,
            native_fencing: true,
            lost_notice: true,
            fair: true,
            // etcd's RWMutex recipe, FIFO with the writers (see `shared.rs`).
            shared: true,
            shared_writer_priority: true,
            crash_release: true,
            native_wait: true,
            cross_process: true,
            // A holder's key says since when it holds (see `steal.rs`).
            steal_after: true,
            semaphore: true,
            // A foreign prefix's holder key has a create revision like ours.
            resource_fencing: true,
            // The token is the revision of the waiter's own key: no counter to skip.
            free_fencing: true,
        }
    }

    fn resource(&self, key: &LockKey) -> String {
        keys::resource(key)
    }

    fn parse_resource(res: &str) -> Result<String> {
        keys::parse_resource(res)
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<EtcdHeld>>> {
        self.acquire(key, ctx, None).await
    }

    async fn wait_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired<EtcdHeld>>> {
        ctx.note_attempt();
        self.acquire(key, ctx, Some(deadline)).await
    }

    async fn record_permits(&self, key: &LockKey, permits: u32) -> Result<()> {
        semaphore::record(&self.client, key, permits).await
    }

    async fn release(&self, held: EtcdHeld) -> Result<bool> {
        held.release().await
    }

    fn release_on_drop(&self, held: EtcdHeld) {
        held.release_on_drop();
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        status::status(&self.client, namespace, keys).await
    }

    async fn cleanup(&self, namespace: &str) -> Result<CleanupReport> {
        status::cleanup(&self.client, namespace).await
    }
}
