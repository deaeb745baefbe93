//! The Lua scripts of the Redis and Redlock backends.
//!
//! Keys, owner tokens and channel names are always passed as `KEYS`/`ARGV`, never spliced into
//! the source, so a lock name can hold anything. Each [`Script`] is created once per process;
//! redis-rs sends `EVALSHA` with its SHA-1 and falls back to `SCRIPT LOAD` + `EVALSHA` when the
//! server answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`).
//!
//! The fencing counter is seeded, when it does not exist yet, with the server's clock in
//! microseconds (`TIME`), so that a counter lost with a restart without persistence starts
//! again above the tokens it handed out before (as long as the server's clock did not go back
//! and fewer than a million tokens per second were handed out on average). Redis 5 and later
//! replicate scripts by their effects, which allows `TIME` before a write.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::call::Call;
use super::keys::{write_fence_key, write_key, write_lock_key};
use super::ttl_ms;
use crate::name::LockKey;

/// Increments the fencing counter `KEYS[2]`, seeding it first when it was missing. `INCR`
/// comes first because the counter almost always exists: an answer of 1 means `INCR` just
/// created it (a live counter never comes back to 1: it starts at the clock), and it is then
/// set to the clock and incremented again, in the same script, so no token of 1 is handed out.
pub(super) const NEXT_TOKEN: &str = r"
local function next_token(counter)
  local n = redis.call('INCR', counter)
  if n == 1 then
    local t = redis.call('TIME')
    redis.call('SET', counter, t[1] .. string.format('%06d', tonumber(t[2])))
    n = redis.call('INCR', counter)
  end
  return n
end
";

/// The server's clock in milliseconds, and the expiry of a sorted set scored by expiries
/// (leases, announcements) set to that of its last member, so the set goes when all of them
/// ran out.
pub(super) const CLOCK: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function expire_with_last(key, now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[1] then
    redis.call('PEXPIRE', key, math.max(1, tonumber(last[2]) - now))
  end
end
";

/// `KEYS[1]` lock key, `KEYS[2]` fencing counter, `KEYS[3]` the lock's acquisition time
/// (`since`), `KEYS[4]` its shared holders, `KEYS[5]` its waiting writers; `ARGV[1]` owner,
/// `ARGV[2]` ttl in ms, `ARGV[3]` steal_after in ms (0: never), `ARGV[4]` the waiter id to
/// announce while the lock is busy ('': none), `ARGV[5]` that announcement's lease in ms,
/// `ARGV[6]` '1' to draw a fencing token ('0': the request opted out, and the token is 0).
///
/// The lock is free when no shared holder's lease is live and the key is missing, or held
/// longer than steal_after by the holder that `since` names. Returns `{1, token}` when
/// acquired, `{0, ms}` when not, `ms` being how long until the lock may be free (the earliest
/// shared lease, the key's `PTTL`, or the time until its holder can be stolen from; -1 when
/// unknown).
///
/// The common case goes first and costs the fewest commands, as the server runs them while
/// the caller waits: no shared holder (their set exists only while a lease in it may be live)
/// and a `SET NX` that takes the key. Only when either fails does the script read the shared
/// holders, the holder and its acquisition time (and define the functions that needs).
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{NEXT_TOKEN}
if redis.call('EXISTS', KEYS[4]) == 1
    or not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
{CLOCK}
  local now = now_ms()
  local wait = nil
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  local reader = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if reader[1] then
    wait = tonumber(reader[2]) - now
  else
    local holder = redis.call('GET', KEYS[1])
    if holder then
      wait = redis.call('PTTL', KEYS[1])
      local steal = tonumber(ARGV[3])
      local since = redis.call('GET', KEYS[3])
      if steal > 0 and since then
        local at, of = string.match(since, '^(%d+) (.*)$')
        if of == holder then
          local stale_in = tonumber(at) + steal - now
          if stale_in <= 0 then
            wait = nil
          elseif wait < 0 or stale_in < wait then
            wait = stale_in
          end
        end
      end
    end
  end
  if wait then
    if ARGV[4] ~= '' then
      redis.call('ZADD', KEYS[5], now + tonumber(ARGV[5]), ARGV[4])
      expire_with_last(KEYS[5], now)
    end
    return {{0, wait}}
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
local t = redis.call('TIME')
local ms = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[3], ms .. ' ' .. ARGV[1], 'PX', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[5], ARGV[4])
end
if ARGV[6] == '0' then
  return {{1, 0}}
end
return {{1, next_token(KEYS[2])}}
"
    ))
});

/// [`ACQUIRE`] for a foreign resource: the same `SET NX PX`, without a fencing counter (the
/// key is another program's; nothing is written beside it). `KEYS[1]` the key; `ARGV[1]`
/// owner, `ARGV[2]` ttl in ms. Returns `{1, 0}` when acquired, `{0, pttl}` when not.
static ACQUIRE_FOREIGN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}
",
    )
});

/// What an exclusive acquire asks besides the key: the owner to write, the lease, the
/// `steal_after` limit, and the id under which a waiting writer announces itself (empty: it
/// does not).
pub(crate) struct Ask<'a> {
    pub owner: &'a [u8],
    pub ttl: Duration,
    pub steal_after: Option<Duration>,
    pub waiter: &'a [u8],
    /// Draw a fencing token (false: the request opted out of fencing).
    pub fenced: bool,
}

/// The acquire of `key` as `ask` says: [`ACQUIRE`] for a named lock, [`ACQUIRE_FOREIGN`]
/// (which has no acquisition time, shared holders or waiters) for a foreign resource. The
/// keys are written into the call as they are derived, not built one by one.
pub(crate) fn acquire(key: &LockKey, ask: &Ask<'_>) -> Call {
    if key.foreign_resource().is_some() {
        let mut call = Call::new(&ACQUIRE_FOREIGN, 1);
        call.key_with(|w| write_lock_key(w, key))
            .arg(ask.owner)
            .arg(ttl_ms(ask.ttl));
        return call;
    }
    let mut call = Call::new(&ACQUIRE, 5);
    call.key_with(|w| write_lock_key(w, key))
        .key_with(|w| write_fence_key(w, key.namespace()))
        .key_with(|w| write_key(w, key, "since"))
        .key_with(|w| write_key(w, key, "readers"))
        .key_with(|w| write_key(w, key, "waiting"))
        .arg(ask.owner)
        .arg(ttl_ms(ask.ttl))
        .arg(ask.steal_after.map_or(0, ttl_ms))
        .arg(ask.waiter)
        .arg(ttl_ms(waiter_lease(ask.ttl)))
        .arg(if ask.fenced { "1" } else { "0" });
    call
}

/// How long a waiting writer's announcement keeps new shared holders out unless renewed: a
/// waiter that died stops blocking them after this. Its wait re-announces within a third.
pub(crate) fn waiter_lease(ttl: Duration) -> Duration {
    ttl.min(Duration::from_secs(3))
}

/// `KEYS[1]` lock key, `KEYS[2]` (for a named lock) its acquisition time; `ARGV[1]` owner,
/// `ARGV[2]` release channel. Deletes the key (and its acquisition time) only when it holds
/// our owner token, and then publishes on the channel to wake waiters (unless the channel is
/// empty: a foreign resource's waiters poll). Returns 1 when deleted, 0 when the key was not
/// ours (gone, or another owner's).
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', unpack(KEYS))
  if ARGV[2] ~= '' then
    redis.call('PUBLISH', ARGV[2], '')
  end
  return 1
end
return 0
",
    )
});

/// The release of `lock` (with its acquisition time `since`, for a named lock) held by
/// `owner`, publishing on `channel`: [`RELEASE`].
pub(crate) fn release(lock: &[u8], since: Option<&[u8]>, owner: &[u8], channel: &[u8]) -> Call {
    let mut call = Call::new(&RELEASE, 1 + usize::from(since.is_some()));
    call.key(lock);
    if let Some(since) = since {
        call.key(since);
    }
    call.arg(owner).arg(channel);
    call
}

/// `KEYS[1]` lock key, `KEYS[2]` (for a named lock) its acquisition time; `ARGV[1]` owner,
/// `ARGV[2]` ttl in ms. Extends the key, and the acquisition time with it, only when the key
/// holds our owner token; never creates either. Returns 1 when extended, 0 otherwise.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if KEYS[2] then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// The renewal of `lock` (with its acquisition time `since`, for a named lock) held by
/// `owner`, for `ttl` more: [`EXTEND`].
pub(crate) fn extend(lock: &[u8], since: Option<&[u8]>, owner: &[u8], ttl: Duration) -> Call {
    let mut call = Call::new(&EXTEND, 1 + usize::from(since.is_some()));
    call.key(lock);
    if let Some(since) = since {
        call.key(since);
    }
    call.arg(owner).arg(ttl_ms(ttl));
    call
}

/// Redlock's second phase on one node (the first is [`ACQUIRE`] on every node): `KEYS[1]` lock key, `KEYS[2]` fencing counter;
/// `ARGV[1]` owner, `ARGV[2]` the token chosen (the largest of the majority). While the node
/// still holds our lock, raises its counter to at least the token, so that every later
/// majority, which shares a node with ours, hands out a larger one. Returns 1 when the lock
/// was still ours on the node, 0 otherwise.
pub(crate) static QUORUM_RAISE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2])
end
return 1
",
    )
});
