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

use redis::{Script, ScriptInvocation};

/// Seeds (if missing) and increments the fencing counter `KEYS[2]`.
const NEXT_TOKEN: &str = r"
local function next_token(counter)
  if redis.call('EXISTS', counter) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', counter, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return redis.call('INCR', counter)
end
";

/// `KEYS[1]` lock key, `KEYS[2]` fencing counter; `ARGV[1]` owner, `ARGV[2]` ttl in ms.
/// Returns `{1, token}` when acquired, `{0, pttl}` (the holder's remaining ttl, -1 without
/// expiry, -2 when it vanished meanwhile) when not.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{NEXT_TOKEN}
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {{1, next_token(KEYS[2])}}
end
return {{0, redis.call('PTTL', KEYS[1])}}
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

/// The acquire of `lock` with `owner` for `ttl_ms`: [`ACQUIRE`] with the fencing counter
/// `fence` for a named lock, [`ACQUIRE_FOREIGN`] without one for a foreign resource.
pub(crate) fn acquire(
    lock: &[u8],
    fence: Option<&[u8]>,
    owner: &[u8],
    ttl_ms: u64,
) -> ScriptInvocation<'static> {
    let mut call = match fence {
        Some(fence) => {
            let mut call = ACQUIRE.key(lock);
            call.key(fence);
            call
        }
        None => ACQUIRE_FOREIGN.key(lock),
    };
    call.arg(owner).arg(ttl_ms);
    call
}

/// `KEYS[1]` lock key; `ARGV[1]` owner, `ARGV[2]` release channel. Deletes the key only when
/// it holds our owner token, and then publishes on the channel to wake waiters (unless the
/// channel is empty: a foreign resource's waiters poll). Returns 1 when deleted, 0 when the
/// key was not ours (gone, or another owner's).
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] ~= '' then
    redis.call('PUBLISH', ARGV[2], '')
  end
  return 1
end
return 0
",
    )
});

/// `KEYS[1]` lock key; `ARGV[1]` owner, `ARGV[2]` ttl in ms. Extends the key only when it holds
/// our owner token; never creates it. Returns 1 when extended, 0 otherwise.
pub(crate) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

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
