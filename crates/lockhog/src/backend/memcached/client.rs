//! A small memcached client: the text protocol's `add`, `incr`, `version`,
//! `lru_crawler metadump`, and the meta commands `ms` (an add or a compare-and-set that
//! answers the CAS unique), `mg` (get with CAS and ttl) and `md` (delete with a CAS check),
//! over a few tokio TCP connections.
//!
//! Each command holds one of [`POOL`] slots for its whole exchange, and puts the slot's
//! connection back only after reading the full answer: a command dropped half-way (a
//! cancelled future) drops its connection instead of leaving an unread answer for the next
//! command. When every slot is busy a command waits for one, so a burst (thousands of leases
//! renewed together) never opens more than [`POOL`] connections.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::timeout;

/// How long connecting, or one command's exchange, may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per client, at most.
pub(crate) const POOL: usize = 4;

type Conn = BufReader<TcpStream>;

/// A client of one memcached server.
pub(crate) struct Client {
    addr: String,
    slots: Vec<Mutex<Option<Conn>>>,
    next: AtomicUsize,
    /// Connections opened so far. A CAS unique is only worth anything to the server process
    /// that issued it (a restarted memcached counts again from 1): while this count has not
    /// moved, every connection in use was open when the unique was learnt, so it still talks
    /// to that process — or is dead, and the request fails.
    connects: AtomicU64,
}

/// An item read by [`Client::get`].
#[derive(Debug)]
pub(crate) struct Item {
    pub value: Vec<u8>,
    pub cas: u64,
    /// Remaining seconds, -1 for none.
    pub ttl: i64,
}

/// What a conditional write found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cas {
    Done,
    /// The item changed since it was read.
    Changed,
    NotFound,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Client {
    pub(crate) fn new(addr: String) -> Self {
        Client {
            addr,
            slots: (0..POOL).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            connects: AtomicU64::new(0),
        }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs one exchange on a pooled connection (a new one when the slot is empty).
    async fn exchange(&self, request: &[u8], expect: Expect) -> io::Result<Reply> {
        let (mut replies, _) = self
            .exchange_all(request, &[expect], SendIf::Always)
            .await?
            .expect("sent: nothing can call it off");
        Ok(replies.remove(0))
    }

    /// Sends `request` (one command or several pipelined) and reads one reply per `expects`,
    /// with the count of connections opened as it was sent. `send_if` is checked once the
    /// connection is ready, with no await before the write: `Ok(None)` when it said no (the
    /// connection goes back to its slot unused).
    async fn exchange_all(
        &self,
        request: &[u8],
        expects: &[Expect],
        send_if: SendIf<'_>,
    ) -> io::Result<Option<(Vec<Reply>, u64)>> {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let free = (0..POOL).find_map(|i| self.slots[(first + i) % POOL].try_lock().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => self.slots[first % POOL].lock().await,
        };
        let taken = slot.take();
        let work = async {
            let mut conn = match taken {
                Some(c) => c,
                None => {
                    let stream = TcpStream::connect(&self.addr).await?;
                    stream.set_nodelay(true)?;
                    self.connects.fetch_add(1, Ordering::SeqCst);
                    BufReader::new(stream)
                }
            };
            let connects = self.connects.load(Ordering::SeqCst);
            let send = match send_if {
                SendIf::Always => true,
                SendIf::NotCalledOff(off) => !off.load(Ordering::SeqCst),
                SendIf::NoNewConnection(then) => connects == then,
            };
            if !send {
                return Ok::<_, io::Error>((conn, None));
            }
            conn.get_mut().write_all(request).await?;
            let mut out = Vec::with_capacity(expects.len());
            for &expect in expects {
                out.push(read_reply(&mut conn, expect).await?);
            }
            Ok((conn, Some((out, connects))))
        };
        let (conn, out) = timeout(IO_TIMEOUT, work)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))??;
        *slot = Some(conn);
        Ok(out)
    }

    async fn line(&self, request: &[u8]) -> io::Result<String> {
        match self.exchange(request, Expect::Line).await? {
            Reply::Line(l) => Ok(l),
            Reply::Lines(_) | Reply::Value(..) => unreachable!("asked for one line"),
        }
    }

    /// `version`: checks that the server answers.
    pub(crate) async fn version(&self) -> io::Result<String> {
        let line = self.line(b"version\r\n").await?;
        line.strip_prefix("VERSION ")
            .map(str::to_string)
            .ok_or_else(|| bad(format!("unexpected answer to version: {line:?}")))
    }

    /// `add`: stores `value` under `key` for `exptime` seconds unless the key exists.
    pub(crate) async fn add(&self, key: &str, value: &[u8], exptime: u64) -> io::Result<bool> {
        let mut req = format!("add {key} 0 {exptime} {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        match self.line(&req).await?.as_str() {
            "STORED" => Ok(true),
            "NOT_STORED" => Ok(false),
            other => Err(bad(format!("unexpected answer to add: {other:?}"))),
        }
    }

    /// `incr`: adds 1 to the decimal counter `key`; `None` when it does not exist.
    pub(crate) async fn incr(&self, key: &str) -> io::Result<Option<u64>> {
        let line = self.line(format!("incr {key} 1\r\n").as_bytes()).await?;
        incr_answer(&line)
    }

    /// An add that answers the stored item's CAS unique (`ms key <len> T<exptime> ME c`) —
    /// or, with `over`, a compare-and-set that replaces only the item whose unique is still
    /// `over` (`ms key <len> T<exptime> C<over> c`: a steal) — pipelined with `incr counter 1` in the same write when there is a counter: one round
    /// trip for a lock and its fencing token (a token drawn for an add that found the key
    /// taken is skipped, which only leaves a gap). A foreign resource's add has no counter.
    /// Sent only while `called_off` is false (see [`Client::exchange_all`]); `Ok(None)` when
    /// it was not sent.
    pub(crate) async fn add_and_incr(
        &self,
        key: &str,
        value: &[u8],
        exptime: u64,
        over: Option<u64>,
        counter: Option<&str>,
        called_off: &AtomicBool,
    ) -> io::Result<Option<Added>> {
        let mode = over.map_or_else(|| "ME".to_string(), |cas| format!("C{cas}"));
        let mut req = format!("ms {key} {} T{exptime} {mode} c\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        let mut expect = vec![Expect::Line];
        if let Some(counter) = counter {
            req.extend_from_slice(format!("incr {counter} 1\r\n").as_bytes());
            expect.push(Expect::Line);
        }
        let Some((replies, connects)) = self
            .exchange_all(&req, &expect, SendIf::NotCalledOff(called_off))
            .await?
        else {
            return Ok(None);
        };
        let line = |i: usize| match &replies[i] {
            Reply::Line(l) => Ok(l.as_str()),
            other => Err(bad(format!("unexpected answer: {other:?}"))),
        };
        let stored = line(0)?;
        let cas = match stored.split_once(' ').unwrap_or((stored, "")) {
            ("HD", flags) => Some(Unique {
                cas: cas_flag(flags, "ms")?,
                connects,
            }),
            // Not stored: the key exists (an add), or changed or went (a compare-and-set).
            ("NS" | "EX" | "NF", _) => None,
            _ => return Err(bad(format!("unexpected answer to ms: {stored:?}"))),
        };
        let token = match counter {
            Some(_) => incr_answer(line(1)?)?,
            None => None,
        };
        Ok(Some(Added { cas, token }))
    }

    /// Rewrites `key` with `value` and a new `exptime` if its CAS unique is still `cas`
    /// (`ms key <len> T<exptime> C<cas> c`), answering the new unique. `Ok(None)` when `send_if`
    /// said no.
    pub(crate) async fn set_if(
        &self,
        key: &str,
        value: &[u8],
        exptime: u64,
        cas: u64,
        send_if: SendIf<'_>,
    ) -> io::Result<Option<Result<Unique, Cas>>> {
        let mut req = format!("ms {key} {} T{exptime} C{cas} c\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        let Some((line, connects)) = self.meta_line(&req, send_if).await? else {
            return Ok(None);
        };
        Ok(Some(
            match line.split_once(' ').unwrap_or((line.as_str(), "")) {
                ("HD", flags) => Ok(Unique {
                    cas: cas_flag(flags, "ms")?,
                    connects,
                }),
                ("EX", _) => Err(Cas::Changed),
                ("NF", _) => Err(Cas::NotFound),
                _ => return Err(bad(format!("unexpected answer to ms: {line:?}"))),
            },
        ))
    }

    async fn meta_line(
        &self,
        request: &[u8],
        send_if: SendIf<'_>,
    ) -> io::Result<Option<(String, u64)>> {
        Ok(self
            .exchange_all(request, &[Expect::Line], send_if)
            .await?
            .map(|(mut replies, connects)| match replies.remove(0) {
                Reply::Line(l) => (l, connects),
                Reply::Lines(_) | Reply::Value(..) => unreachable!("asked for one line"),
            }))
    }

    /// `mg key v c t`: the value, CAS unique and remaining ttl, or `None`.
    pub(crate) async fn get(&self, key: &str) -> io::Result<Option<Item>> {
        let req = format!("mg {key} v c t\r\n");
        let (line, value) = match self.exchange(req.as_bytes(), Expect::MetaValue).await? {
            Reply::Line(l) if l == "EN" => return Ok(None),
            Reply::Value(l, v) => (l, v),
            other => return Err(bad(format!("unexpected answer to mg: {other:?}"))),
        };
        let (mut cas, mut ttl) = (0, -1);
        for w in line.split(' ').skip(2) {
            if let Some(v) = w.strip_prefix('c') {
                cas = v.parse().map_err(|_| bad("mg: bad cas"))?;
            } else if let Some(v) = w.strip_prefix('t') {
                ttl = v.parse().map_err(|_| bad("mg: bad ttl"))?;
            }
        }
        Ok(Some(Item { value, cas, ttl }))
    }

    /// `md key C<cas>`: deletes `key` if its CAS unique is still `cas` (memcached 1.6+).
    /// `Ok(None)` when `send_if` said no.
    pub(crate) async fn delete_if(
        &self,
        key: &str,
        cas: u64,
        send_if: SendIf<'_>,
    ) -> io::Result<Option<Cas>> {
        let Some((line, _)) = self
            .meta_line(format!("md {key} C{cas}\r\n").as_bytes(), send_if)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(match line.as_str() {
            "HD" => Cas::Done,
            "EX" => Cas::Changed,
            "NF" => Cas::NotFound,
            other => return Err(bad(format!("unexpected answer to md: {other:?}"))),
        }))
    }

    /// Every key on the server (`lru_crawler metadump all`), decoded.
    pub(crate) async fn keys(&self) -> io::Result<Vec<String>> {
        let lines = match self
            .exchange(b"lru_crawler metadump all\r\n", Expect::UntilEnd)
            .await?
        {
            Reply::Lines(l) => l,
            other => return Err(bad(format!("unexpected answer to metadump: {other:?}"))),
        };
        Ok(lines
            .iter()
            .filter_map(|line| {
                line.strip_prefix("key=")
                    .and_then(|r| r.split(' ').next())
                    .and_then(crate::name::percent_decode)
            })
            .collect())
    }
}

/// When [`Client::exchange_all`] may send.
#[derive(Clone, Copy)]
pub(crate) enum SendIf<'a> {
    Always,
    /// Unless the flag says the caller went away.
    NotCalledOff(&'a AtomicBool),
    /// Only while the count of connections opened is still this one (see `Client::connects`):
    /// for a request that names a CAS unique learnt then.
    NoNewConnection(u64),
}

/// A CAS unique and the count of connections opened when it was learnt.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unique {
    pub cas: u64,
    pub connects: u64,
}

/// What [`Client::add_and_incr`] found.
#[derive(Debug)]
pub(crate) struct Added {
    /// The stored item's CAS unique; `None` when the key existed (nothing stored).
    pub cas: Option<Unique>,
    /// The counter after the increment; `None` when the counter does not exist (or there was
    /// none to increment).
    pub token: Option<u64>,
}

fn incr_answer(line: &str) -> io::Result<Option<u64>> {
    if line == "NOT_FOUND" {
        return Ok(None);
    }
    line.parse()
        .map(Some)
        .map_err(|_| bad(format!("unexpected answer to incr: {line:?}")))
}

/// The `c<cas>` flag among a meta answer's flags.
fn cas_flag(flags: &str, command: &str) -> io::Result<u64> {
    flags
        .split(' ')
        .find_map(|f| f.strip_prefix('c'))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("{command}: no CAS unique in {flags:?}")))
}

/// What an answer looks like.
#[derive(Clone, Copy)]
enum Expect {
    /// One line.
    Line,
    /// `VA <len> <flags>` then `len` bytes and `\r\n`; or one other line (`EN`).
    MetaValue,
    /// Lines up to `END`.
    UntilEnd,
}

#[derive(Debug)]
enum Reply {
    Line(String),
    Value(String, Vec<u8>),
    Lines(Vec<String>),
}

async fn read_reply(c: &mut Conn, expect: Expect) -> io::Result<Reply> {
    match expect {
        Expect::Line => Ok(Reply::Line(read_line(c).await?)),
        Expect::MetaValue => {
            let line = read_line(c).await?;
            let Some(rest) = line.strip_prefix("VA ") else {
                return Ok(Reply::Line(line));
            };
            let len: usize = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad("mg: no length"))?;
            let mut value = vec![0; len + 2];
            c.read_exact(&mut value).await?;
            value.truncate(len);
            Ok(Reply::Value(line, value))
        }
        Expect::UntilEnd => {
            let mut lines = Vec::new();
            loop {
                let line = read_line(c).await?;
                if line == "END" {
                    return Ok(Reply::Lines(lines));
                }
                if line.starts_with("BUSY") {
                    return Err(bad(format!("metadump: {line}")));
                }
                lines.push(line);
            }
        }
    }
}

/// One `\r\n`-terminated line, without its terminator.
async fn read_line(c: &mut Conn) -> io::Result<String> {
    let mut line = String::new();
    if c.read_line(&mut line).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.starts_with("SERVER_ERROR") || line.starts_with("CLIENT_ERROR") || line == "ERROR" {
        return Err(io::Error::other(line));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Client, POOL};

    /// A burst of commands at once (every lease renewed together) opens at most [`POOL`]
    /// connections: the rest wait for a slot.
    #[tokio::test]
    async fn a_burst_opens_at_most_the_pools_connections() {
        let Ok(url) = std::env::var("LOCKHOG_TEST_MEMCACHED_URL") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "LOCKHOG_TEST_MEMCACHED_URL is not set (start the servers with scripts/test)"
            );
            return;
        };
        let addr = url.trim_start_matches("memcached://").trim_end_matches('/');
        let client = Arc::new(Client::new(addr.to_string()));
        let burst: Vec<_> = (0..64)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.version().await })
            })
            .collect();
        for call in burst {
            call.await.unwrap().unwrap();
        }
        let opened = client.connects.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            opened <= POOL as u64,
            "{opened} connections for a burst of 64"
        );
    }
}
