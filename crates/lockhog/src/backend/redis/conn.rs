//! A connection that reconnects on the next command after it broke: a direct wire for the
//! commands it can take (see [`super::direct`]), and a multiplexed connection for the rest.
//!
//! redis-rs's `ConnectionManager` does the same but costs about twice the time per command on
//! these machines (measured: ~8.5 k PINGs/s against 10–20 k for a bare multiplexed
//! connection); an uncontended acquire and release are one command each, so that overhead is
//! most of the lock's. This keeps a bare `MultiplexedConnection` and replaces it, at most one
//! connect at a time, when a command fails with an error that needs a new connection.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::direct::{Target, Wire};
use super::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

/// A cheap-to-clone handle on one reconnecting connection.
#[derive(Clone)]
pub(crate) struct Conn(Arc<Inner>);

struct Inner {
    client: Client,
    config: AsyncConnectionConfig,
    /// The connection in use and its generation.
    current: Mutex<(u64, Option<MultiplexedConnection>)>,
    connecting: tokio::sync::Mutex<()>,
    /// The direct wire, for a client whose URL allows one; `None` inside until first used and
    /// after it broke.
    direct: Option<(Target, tokio::sync::Mutex<Option<Wire>>)>,
}

impl Conn {
    /// A handle that connects on its first command.
    pub(crate) fn lazy(client: Client, config: AsyncConnectionConfig) -> Self {
        let direct = Target::of(&client).map(|t| (t, tokio::sync::Mutex::new(None)));
        Conn(Arc::new(Inner {
            client,
            config,
            current: Mutex::new((0, None)),
            connecting: tokio::sync::Mutex::new(()),
            direct,
        }))
    }

    fn slot(&self) -> MutexGuard<'_, (u64, Option<MultiplexedConnection>)> {
        self.0.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn current(&self) -> redis::RedisResult<(u64, MultiplexedConnection)> {
        if let (generation, Some(c)) = &*self.slot() {
            return Ok((*generation, c.clone()));
        }
        let _one = self.0.connecting.lock().await;
        if let (generation, Some(c)) = &*self.slot() {
            return Ok((*generation, c.clone()));
        }
        let c = self
            .0
            .client
            .get_multiplexed_async_connection_with_config(&self.0.config)
            .await?;
        let mut slot = self.slot();
        slot.0 += 1;
        slot.1 = Some(c.clone());
        Ok((slot.0, c))
    }

    /// Drops the connection of `generation` when `e` says it cannot be used any more.
    fn failed(&self, generation: u64, e: &RedisError) {
        if e.is_unrecoverable_error() {
            let mut slot = self.slot();
            if slot.0 == generation {
                slot.1 = None;
            }
        }
    }
}

/// Runs `cmd` on the direct wire if there is one and no other task is using it; `None` sends
/// the caller to the multiplexed connection.
async fn on_direct_wire(inner: &Inner, cmd: &Cmd) -> Option<redis::RedisResult<Value>> {
    let (target, wire) = inner.direct.as_ref()?;
    let mut wire = wire.try_lock().ok()?;
    Some(direct_request(target, &mut wire, cmd, RESPONSE_TIMEOUT).await)
}

async fn direct_request(
    target: &Target,
    slot: &mut Option<Wire>,
    cmd: &Cmd,
    timeout: Duration,
) -> redis::RedisResult<Value> {
    if !slot.as_ref().is_some_and(Wire::usable) {
        *slot = None;
        *slot = Some(Wire::connect(target, CONNECT_TIMEOUT).await?);
    }
    let Some(wire) = slot.as_mut() else {
        unreachable!("connected just above");
    };
    let out = wire.request_within(cmd, timeout).await;
    if out.is_err() {
        // I/O errors and timeouts leave the wire's replies out of step: never reuse it.
        *slot = None;
    }
    out
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            if let Some(out) = on_direct_wire(&self.0, cmd).await {
                return out;
            }
            let (generation, mut c) = self.current().await?;
            let out = c.req_packed_command(cmd).await;
            if let Err(e) = &out {
                self.failed(generation, e);
            }
            out
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (generation, mut c) = self.current().await?;
            let out = c.req_packed_commands(pipeline, offset, count).await;
            if let Err(e) = &out {
                self.failed(generation, e);
            }
            out
        })
    }

    fn get_db(&self) -> i64 {
        self.slot().1.as_ref().map_or(0, |c| c.get_db())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_url() -> Option<String> {
        let url = std::env::var("LOCKHOG_TEST_REDIS_URL").ok();
        assert!(
            url.is_some() || std::env::var("CI").as_deref() != Ok("true"),
            "LOCKHOG_TEST_REDIS_URL is not set (start the servers with scripts/test)"
        );
        url
    }

    /// The direct wire logs in to the URL's database, as redis-rs's connections do.
    #[tokio::test]
    async fn the_direct_wire_uses_the_urls_database() {
        let Some(url) = redis_url() else { return };
        let client = Client::open(format!("{}/7", url.trim_end_matches('/'))).unwrap();
        let mut conn = Conn::lazy(client, AsyncConnectionConfig::new());
        let text: String = redis::cmd("CLIENT")
            .arg("INFO")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(text.contains(" db=7 "), "{text}");
    }

    /// The direct wire's reply timer, kept armed between commands: a command after the armed
    /// deadline passed (the wire idle) is not cut off by it, and a command the server does not
    /// answer fails with a timeout while the timer of the one before is still armed.
    #[tokio::test]
    async fn the_kept_reply_timer_neither_cuts_off_nor_misses_a_command() {
        let Some(url) = redis_url() else { return };
        let client = Client::open(url).unwrap();
        let target = Target::of(&client).expect("a plain redis:// URL goes direct");
        let limit = Duration::from_millis(300);
        let mut slot = None;
        let echo = redis::cmd("ECHO").arg("mine").clone();
        let mine = Value::BulkString(b"mine".to_vec());
        let got = direct_request(&target, &mut slot, &echo, limit)
            .await
            .unwrap();
        assert_eq!(got, mine);
        // Let the armed deadline pass with the wire idle.
        tokio::time::sleep(limit * 2).await;
        let got = direct_request(&target, &mut slot, &echo, limit)
            .await
            .unwrap();
        assert_eq!(got, mine, "the stale timer cut a command off");
        // Back to back: the timer of the ECHO is kept, and still bounds the BLPOP.
        let blpop = redis::cmd("BLPOP")
            .arg("lockhog-test:conn:never-pushed-either")
            .arg(5)
            .clone();
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            direct_request(&target, &mut slot, &blpop, limit),
        )
        .await
        .expect("no answer and no timeout within 30 s");
        let err = out.expect_err("BLPOP answered");
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(slot.is_none(), "a wire that timed out was kept");
    }

    /// A command whose future is dropped while its reply is outstanding (here a `BLPOP` that
    /// blocks for two seconds, dropped after 20 ms) must not leave that reply to the next
    /// command: the next one gets its own.
    #[tokio::test]
    async fn a_dropped_command_does_not_hand_its_reply_to_the_next() {
        let Some(url) = redis_url() else { return };
        let client = Client::open(url).unwrap();
        let mut conn = Conn::lazy(client, AsyncConnectionConfig::new());
        assert!(conn.0.direct.is_some(), "a plain redis:// URL goes direct");
        let blpop = redis::cmd("BLPOP")
            .arg("lockhog-test:conn:never-pushed")
            .arg(2)
            .clone();
        let dropped =
            tokio::time::timeout(Duration::from_millis(20), conn.req_packed_command(&blpop)).await;
        assert!(dropped.is_err(), "BLPOP answered before it was dropped");
        let echo = redis::cmd("ECHO").arg("mine").clone();
        let got = tokio::time::timeout(Duration::from_secs(30), conn.req_packed_command(&echo))
            .await
            .expect("ECHO did not answer within 30 s")
            .unwrap();
        assert_eq!(got, Value::BulkString(b"mine".to_vec()));
    }
}
