//! Shared (reader) locks on one Redis server, and the writer priority that keeps a stream of
//! readers from starving a waiting writer.
//!
//! A lock's shared holders are the members of the sorted set `NS:readers:NAME`, each an owner
//! value scored by the expiry of its lease in the server's milliseconds; an exclusive holder
//! is the lock key, as always. Every script prunes the members whose lease ran out, so a
//! reader that crashed stops counting when its lease does; the set itself expires with its
//! last lease.
//!
//! - A **reader enters** (one script) only when the lock key is missing and no writer waits;
//!   it then adds itself and takes a fencing token from the namespace's counter.
//! - A **writer enters** (the exclusive acquire script) only when no reader's lease is live.
//!   A writer that waits announces itself at every attempt in `NS:waiting:NAME` (a sorted set
//!   of waiter ids scored by a short lease, re-announced within a third of it while the wait
//!   goes on); while that set has a live member no new reader enters, so readers drain and
//!   the writer gets in. A writer that stops waiting withdraws; one that died is forgotten
//!   when its announcement runs out.
//! - **Renewal** moves our score forward while we are still a member with a live lease;
//!   **release** removes us and, when we were the last reader, publishes on the lock's
//!   release channel to wake a waiting writer. A writer's release (and a waiting writer's
//!   withdrawal) publishes on the same channel, waking waiting readers.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::call::Call;
use super::keys::{waiting_key, write_fence_key, write_key, write_lock_key};
use super::scripts::{CLOCK, NEXT_TOKEN};
use super::{ttl_ms, Conn};
use crate::name::LockKey;

/// `KEYS[1]` lock key, `KEYS[2]` fencing counter, `KEYS[3]` readers, `KEYS[4]` waiting
/// writers; `ARGV[1]` owner, `ARGV[2]` ttl in ms, `ARGV[3]` '1' to draw a fencing token ('0':
/// opted out, token 0). Returns `{1, token}` when we joined the
/// readers, `{0, ms}` when not (`ms`: the writer's `PTTL`, or how long until the first
/// waiting writer's announcement runs out).
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{NEXT_TOKEN}{CLOCK}
local now = now_ms()
local left = redis.call('PTTL', KEYS[1])
if left ~= -2 then
  return {{0, left}}
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local writer = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if writer[1] then
  return {{0, tonumber(writer[2]) - now}}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[1])
expire_with_last(KEYS[3], now)
if ARGV[3] == '0' then
  return {{1, 0}}
end
return {{1, next_token(KEYS[2])}}
"
    ))
});

/// `KEYS[1]` readers; `ARGV[1]` owner, `ARGV[2]` ttl in ms. Extends our lease while we are a
/// member whose lease is live. Returns 1 when extended, 0 otherwise.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{CLOCK}
local now = now_ms()
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
expire_with_last(KEYS[1], now)
return 1
"
    ))
});

/// `KEYS[1]` readers; `ARGV[1]` owner, `ARGV[2]` release channel. Removes us; when no live
/// reader is left, publishes on the channel (a waiting writer may enter). Returns 1 when our
/// lease was live, 0 when we were gone or our lease had run out.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{CLOCK}
local now = now_ms()
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('PUBLISH', ARGV[2], '')
end
if tonumber(score) <= now then
  return 0
end
return 1
"
    ))
});

/// `KEYS[1]` waiting writers; `ARGV[1]` waiter id, `ARGV[2]` release channel. Withdraws a
/// waiting writer's announcement and, when there was one, wakes the readers it held back.
static WITHDRAW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], '')
end
return 0
",
    )
});

/// A reader's attempt at the named lock `key` with `owner` for `ttl`: [`ACQUIRE`].
pub(super) fn acquire(key: &LockKey, owner: &[u8], ttl: Duration, fenced: bool) -> Call {
    let mut call = Call::new(&ACQUIRE, 4);
    call.key_with(|w| write_lock_key(w, key))
        .key_with(|w| write_fence_key(w, key.namespace()))
        .key_with(|w| write_key(w, key, "readers"))
        .key_with(|w| write_key(w, key, "waiting"))
        .arg(owner)
        .arg(ttl_ms(ttl))
        .arg(if fenced { "1" } else { "0" });
    call
}

/// The renewal of our lease in `readers` for `ttl` more: [`EXTEND`].
pub(super) fn extend(readers: &[u8], owner: &[u8], ttl: Duration) -> Call {
    let mut call = Call::new(&EXTEND, 1);
    call.key(readers).arg(owner).arg(ttl_ms(ttl));
    call
}

/// Our release from `readers`, waking waiters on `channel` when we were the last: [`RELEASE`].
pub(super) fn release(readers: &[u8], owner: &[u8], channel: &[u8]) -> Call {
    let mut call = Call::new(&RELEASE, 1);
    call.key(readers).arg(owner).arg(channel);
    call
}

/// A waiting writer's announcement (see the module docs), withdrawn when the wait ends
/// without the lock (the acquire script removes it when the writer gets in); dropped
/// unwithdrawn, it is withdrawn in the background.
pub(super) struct Announcement {
    conn: Option<Conn>,
    waiting: Vec<u8>,
    /// The waiter id the attempts announce.
    pub(super) waiter: Vec<u8>,
    channel: Vec<u8>,
}

impl Announcement {
    pub(super) fn new(conn: Conn, key: &LockKey, channel: &[u8]) -> Self {
        Announcement {
            conn: Some(conn),
            waiting: waiting_key(key),
            waiter: crate::backend::owner::new_owner(),
            channel: channel.to_vec(),
        }
    }

    fn call(&self) -> Call {
        let mut call = Call::new(&WITHDRAW, 1);
        call.key(&self.waiting).arg(&self.waiter).arg(&self.channel);
        call
    }

    /// Withdraws the announcement now (it runs out by itself if this fails).
    pub(super) async fn withdraw(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = self.call().invoke::<i64>(&mut conn).await;
        }
    }

    /// The writer got in: the acquire script already removed the announcement.
    pub(super) fn disarm(mut self) {
        self.conn = None;
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return; // the announcement runs out
        };
        let call = self.call();
        rt.spawn(async move {
            let _ = call.invoke::<i64>(&mut conn).await;
        });
    }
}
