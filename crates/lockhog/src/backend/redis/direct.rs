//! A plain-TCP Redis connection that the calling task drives itself: the command is written
//! and its reply read in the caller's own future, with no connection task in between.
//!
//! redis-rs's multiplexed connection hands every command to a driver task over a channel and
//! the reply back over another; on a single uncontended lock cycle those two hops cost about a
//! quarter of the time (measured on these machines: ~40 k SET+DEL pairs/s multiplexed against
//! ~52 k driven directly and ~57 k on a blocking socket). [`super::Conn`] uses this wire when
//! it is free and the multiplexed connection when another task is using it, so concurrent
//! commands still pipeline.
//!
//! Only `redis://` over TCP with RESP2 goes direct; TLS, Unix sockets and RESP3 keep the
//! multiplexed connection alone.

use std::io;
use std::time::Duration;

use redis::{Client, Cmd, ConnectionAddr, ProtocolVersion, RedisError, RedisResult, Value};
use std::pin::Pin;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Where and how a direct wire connects: taken from the client's own parsed URL.
#[derive(Clone)]
pub(crate) struct Target {
    host: String,
    port: u16,
    db: i64,
    username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Target {
    // The password stays out of every Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The direct target of `client`, or `None` when its connections need what only redis-rs
    /// does (TLS, a Unix socket, RESP3).
    pub(crate) fn of(client: &Client) -> Option<Target> {
        let info = client.get_connection_info();
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return None;
        };
        let settings = info.redis_settings();
        if settings.protocol() != ProtocolVersion::RESP2 {
            return None;
        }
        Some(Target {
            host: host.clone(),
            port: *port,
            db: settings.db(),
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
        })
    }
}

/// One connection, and the timer that bounds the wait for a reply.
#[derive(Debug)]
pub(crate) struct Wire {
    io: Io,
    /// Armed for the command in flight, and left armed in between: moving a timer is a trip
    /// through the runtime's timer wheel, which a command close to the last one's deadline
    /// does not need (see [`Wire::request_within`]).
    timer: Pin<Box<Sleep>>,
}

/// One connection, with the reply bytes read so far.
#[derive(Debug)]
struct Io {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The command being sent, packed here so that no command allocates its own bytes.
    out: Vec<u8>,
    /// Set while a command's reply is outstanding: a future dropped in between leaves it set,
    /// and a wire whose replies are out of step is never used again.
    in_flight: bool,
}

impl Wire {
    /// Connects, logs in and selects the database, within `timeout`.
    pub(crate) async fn connect(target: &Target, timeout: Duration) -> RedisResult<Wire> {
        let connect = async {
            let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
            stream.set_nodelay(true)?;
            let mut wire = Io {
                stream,
                buf: Vec::with_capacity(512),
                out: Vec::with_capacity(512),
                in_flight: false,
            };
            if let Some(password) = &target.password {
                let mut auth = redis::cmd("AUTH");
                if let Some(user) = &target.username {
                    auth.arg(user);
                }
                auth.arg(password);
                wire.request(&auth.get_packed_command())
                    .await?
                    .extract_error()?;
            }
            if target.db != 0 {
                let select = redis::cmd("SELECT").arg(target.db).get_packed_command();
                wire.request(&select).await?.extract_error()?;
            }
            Ok::<_, RedisError>(Wire {
                io: wire,
                timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            })
        };
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| timed_out("connecting"))?
    }

    /// Whether the wire can carry another command.
    pub(crate) fn usable(&self) -> bool {
        !self.io.in_flight
    }

    /// Sends `cmd` and reads its reply, as [`Io::request`] does, failing with a timeout when
    /// no reply came within `timeout`, or up to a tenth of it less: the timer armed for an
    /// earlier command is kept when its deadline falls in that tenth, so that back-to-back
    /// commands do not each move it.
    pub(crate) async fn request_within(
        &mut self,
        cmd: &Cmd,
        timeout: Duration,
    ) -> RedisResult<Value> {
        let want = Instant::now() + timeout;
        let armed = self.timer.deadline();
        if armed > want || armed + timeout / 10 < want {
            self.timer.as_mut().reset(want);
        }
        tokio::select! {
            biased;
            out = self.io.request_cmd(cmd) => out,
            () = self.timer.as_mut() => Err(timed_out("a Redis command")),
        }
    }
}

impl Io {
    /// Sends `cmd` and reads its reply, as [`Io::request`] does.
    pub(crate) async fn request_cmd(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        cmd.write_packed_command(&mut out);
        let reply = self.request(&out).await;
        self.out = out;
        reply
    }

    /// Sends one packed command and reads its reply. A server error comes back as
    /// `Ok(Value::ServerError)`, as from redis-rs's own connections.
    pub(crate) async fn request(&mut self, packed: &[u8]) -> RedisResult<Value> {
        self.in_flight = true;
        self.stream.write_all(packed).await?;
        self.buf.clear();
        let end = loop {
            if let Some(end) = frame_end(&self.buf, 0)? {
                break end;
            }
            if self.buf.capacity() - self.buf.len() < 256 {
                self.buf.reserve(self.buf.len().max(512));
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        };
        if end != self.buf.len() {
            // One command, one reply: anything after it means the stream is out of step.
            return Err(
                io::Error::new(io::ErrorKind::InvalidData, "unexpected extra reply").into(),
            );
        }
        let value = match simple_value(&self.buf, 0, 0) {
            Some((value, _)) => value,
            None => redis::parse_redis_value(&self.buf)?,
        };
        self.in_flight = false;
        Ok(value)
    }
}

/// A timeout as redis-rs reports one: an I/O error, which drops the connection.
pub(crate) fn timed_out(doing: &str) -> RedisError {
    io::Error::new(io::ErrorKind::TimedOut, format!("{doing} timed out")).into()
}

/// Where the RESP2 reply starting at `at` in `buf` ends, or `None` if `buf` does not hold all
/// of it yet.
fn frame_end(buf: &[u8], at: usize) -> RedisResult<Option<usize>> {
    let Some(kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some(line_len) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let after_line = at + line_len + 2;
    let number = || -> RedisResult<i64> {
        std::str::from_utf8(&buf[at + 1..at + line_len])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad RESP length").into())
    };
    match kind {
        b'+' | b'-' | b':' => Ok(Some(after_line)),
        b'$' => match number()? {
            n if n < 0 => Ok(Some(after_line)),
            n => {
                let end = after_line + n as usize + 2;
                Ok((buf.len() >= end).then_some(end))
            }
        },
        b'*' => {
            let mut next = after_line;
            for _ in 0..number()?.max(0) {
                match frame_end(buf, next)? {
                    Some(end) => next = end,
                    None => return Ok(None),
                }
            }
            Ok(Some(next))
        }
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "not a RESP2 reply").into()),
    }
}

/// The reply starting at `at` in `buf` (a whole frame, as [`frame_end`] found it) and where
/// it ends, when it is made of integers, bulk strings, nils, simple strings and arrays of
/// those: what lock commands answer. `None` for anything else (errors included), which then
/// goes through redis-rs's own parser; this one only spares the common replies its cost.
/// The values are those redis-rs's parser gives.
fn simple_value(buf: &[u8], at: usize, depth: usize) -> Option<(Value, usize)> {
    let kind = *buf.get(at)?;
    let line_len = buf[at..].windows(2).position(|w| w == b"\r\n")?;
    let line = &buf[at + 1..at + line_len];
    let after_line = at + line_len + 2;
    let number = || -> Option<i64> { std::str::from_utf8(line).ok()?.parse().ok() };
    match kind {
        b':' => Some((Value::Int(number()?), after_line)),
        b'+' => {
            let text = std::str::from_utf8(line).ok()?;
            let value = match text {
                "OK" => Value::Okay,
                _ => Value::SimpleString(text.to_owned()),
            };
            Some((value, after_line))
        }
        b'$' => match number()? {
            n if n < 0 => Some((Value::Nil, after_line)),
            n => {
                let end = after_line.checked_add(n as usize)?;
                (buf.get(end..end + 2)? == b"\r\n")
                    .then(|| (Value::BulkString(buf[after_line..end].to_vec()), end + 2))
            }
        },
        b'*' if depth < 8 => match number()? {
            n if n < 0 => Some((Value::Nil, after_line)),
            n => {
                let mut items = Vec::with_capacity((n as usize).min(64));
                let mut next = after_line;
                for _ in 0..n {
                    let (item, end) = simple_value(buf, next, depth + 1)?;
                    items.push(item);
                    next = end;
                }
                Some((Value::Array(items), next))
            }
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{frame_end, simple_value};

    /// The replies the short parser takes come out as redis-rs's parser gives them, and it
    /// leaves the others (errors, RESP3 types, garbage) to that parser.
    #[test]
    fn simple_replies_parse_as_redis_rs_parses_them() {
        let taken: &[&[u8]] = &[
            b":0\r\n",
            b":-12\r\n",
            b":9223372036854775807\r\n",
            b"+OK\r\n",
            b"+QUEUED\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"$5\r\na\r\nb\0\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n:1\r\n:1733400000000001\r\n",
            b"*3\r\n$3\r\nabc\r\n$-1\r\n*1\r\n+OK\r\n",
        ];
        for bytes in taken {
            let (value, end) = simple_value(bytes, 0, 0).expect("taken");
            assert_eq!(end, bytes.len(), "{bytes:?}");
            assert_eq!(value, redis::parse_redis_value(bytes).unwrap(), "{bytes:?}");
        }
        let left: &[&[u8]] = &[
            b"-NOSCRIPT No matching script\r\n",
            b"*2\r\n:1\r\n-ERR x\r\n",
            b":12a\r\n",
            b"$3\r\nabcd\r\n",
            b",1.5\r\n",
            b"+\xff\r\n",
        ];
        for bytes in left {
            assert!(simple_value(bytes, 0, 0).is_none(), "{bytes:?}");
        }
        let deep = format!("{}:1\r\n", "*1\r\n".repeat(9));
        assert!(simple_value(deep.as_bytes(), 0, 0).is_none());
    }

    #[test]
    fn frames_end_where_the_reply_does() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"", None),
            (b"+OK\r", None),
            (b"+OK\r\n", Some(5)),
            (b"-ERR x\r\n", Some(8)),
            (b":12\r\n", Some(5)),
            (b"$-1\r\n", Some(5)),
            (b"$3\r\nab", None),
            (b"$3\r\nabc\r\n", Some(9)),
            (b"*-1\r\n", Some(5)),
            (b"*2\r\n:1\r\n", None),
            (b"*2\r\n:1\r\n$2\r\nok\r\n", Some(16)),
            (b"*1\r\n*1\r\n:7\r\n", Some(12)),
        ];
        for (bytes, want) in cases {
            assert_eq!(frame_end(bytes, 0).unwrap(), *want, "{bytes:?}");
        }
        assert!(frame_end(b"?\r\n", 0).is_err());
        assert!(frame_end(b"$x\r\n", 0).is_err());
    }
}
