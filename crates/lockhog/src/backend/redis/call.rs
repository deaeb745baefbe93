//! One call of a Lua script (`EVALSHA` with its keys and arguments), built straight into one
//! command, and run on a [`Conn`] with the script loaded again when the server lost it.
//!
//! redis-rs's `ScriptInvocation` keeps every key and argument in a vector of its own and copies
//! them all into a command at each call; an uncontended lock cycle is two script calls, and
//! those copies were a measurable part of its client time. A key made of parts (namespace,
//! kind, name) is written here as one argument, without being built first.

use std::io::Write;

use redis::{Cmd, FromRedisValue, RedisResult, Script, ToRedisArgs};

use super::Conn;

/// An `EVALSHA` of one script with its keys and arguments. Keys come first: exactly as many
/// as [`Call::new`] was told, then the arguments.
pub(crate) struct Call {
    script: &'static Script,
    cmd: Cmd,
    keys_left: usize,
}

impl Call {
    /// A call of `script` with `keys` keys.
    pub(crate) fn new(script: &'static Script, keys: usize) -> Call {
        let mut cmd = Cmd::with_capacity(3 + keys + 6, 128 + 48 * keys);
        cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
        Call {
            script,
            cmd,
            keys_left: keys,
        }
    }

    /// Adds the next key.
    pub(crate) fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        self.next_key();
        self.cmd.arg(key);
        self
    }

    /// Adds the next key, written by `write` (for a key made of parts).
    pub(crate) fn key_with(&mut self, write: impl FnOnce(&mut dyn Write)) -> &mut Self {
        self.next_key();
        write(&mut redis::RedisWrite::writer_for_next_arg(&mut self.cmd));
        self
    }

    /// Adds the next argument (after every key).
    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        debug_assert_eq!(self.keys_left, 0, "an argument before the last key");
        self.cmd.arg(arg);
        self
    }

    fn next_key(&mut self) {
        self.keys_left = self
            .keys_left
            .checked_sub(1)
            .expect("more keys than the call was made for");
    }

    /// Runs the call on `conn`; when the server does not know the script (a restart, `SCRIPT
    /// FLUSH`), loads it and runs the call again, as redis-rs's `invoke_async` does.
    pub(crate) async fn invoke<T: FromRedisValue>(&self, conn: &mut Conn) -> RedisResult<T> {
        debug_assert_eq!(self.keys_left, 0, "fewer keys than the call was made for");
        match self.cmd.query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.script.load_async(conn).await?;
                self.cmd.query_async(conn).await
            }
            out => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static ECHO: LazyLock<Script> = LazyLock::new(|| Script::new("return {KEYS[2], ARGV[1]}"));

    /// A call packs as redis-rs packs the same `EVALSHA`, parts of a key joined into one.
    #[test]
    fn a_call_is_the_evalsha_redis_rs_would_send() {
        let mut call = Call::new(&ECHO, 2);
        call.key(&b"k1"[..])
            .key_with(|w| {
                w.write_all(b"ns:").unwrap();
                w.write_all(b"lock:x").unwrap();
            })
            .arg(30_000u64);
        let want = redis::cmd("EVALSHA")
            .arg(ECHO.get_hash())
            .arg(2)
            .arg("k1")
            .arg("ns:lock:x")
            .arg(30_000u64)
            .get_packed_command();
        assert_eq!(call.cmd.get_packed_command(), want);
    }

    /// A script the server has never seen (as after a restart or `SCRIPT FLUSH`) is loaded
    /// and the call answered, on the direct wire as on the multiplexed connection.
    #[tokio::test]
    async fn a_script_the_server_does_not_know_is_loaded_and_run() {
        let url = std::env::var("LOCKHOG_TEST_REDIS_URL").ok();
        assert!(
            url.is_some() || std::env::var("CI").as_deref() != Ok("true"),
            "LOCKHOG_TEST_REDIS_URL is not set (start the servers with scripts/test)"
        );
        let Some(url) = url else { return };
        let client = redis::Client::open(url).unwrap();
        let conn = Conn::lazy(client, redis::AsyncConnectionConfig::new());
        // A body no server has loaded: its SHA-1 is new.
        let fresh = format!(
            "-- {:?}\nreturn {{KEYS[1], ARGV[1]}}",
            std::time::SystemTime::now()
        );
        let script: &'static Script = Box::leak(Box::new(Script::new(&fresh)));
        let mut call = Call::new(script, 1);
        call.key("k").arg("v");
        // Two at once: one on the direct wire, the other on the multiplexed connection.
        let (mut c1, mut c2) = (conn.clone(), conn.clone());
        let (a, b) = tokio::join!(call.invoke(&mut c1), call.invoke(&mut c2));
        for got in [a, b] {
            let got: (String, String) = got.unwrap();
            assert_eq!(got, ("k".to_string(), "v".to_string()));
        }
    }
}
