//! A memcached that restarts counts CAS uniques from 1 again, so the unique a guard learnt
//! before the restart can name another owner's item after it. The release must then not
//! trust it: it reads the item and leaves it alone. The test runs a memcached of its own (it
//! restarts it) and makes the other owner's item carry exactly the guard's old unique.

#![cfg(feature = "memcached")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{bounded, skip_or_fail, unique};
use lockhog::Locker;

/// A memcached of this test's own on `port`, killed when dropped.
struct Memcached(Child);

impl Memcached {
    fn start(port: u16) -> Option<Memcached> {
        let mut cmd = Command::new("memcached");
        cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"]);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "nobody"]);
        }
        match cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => Some(Memcached(child)),
            Err(e) => skip_or_fail(
                "no memcached",
                &format!("cannot run memcached ({e}); Debian: apt-get install memcached"),
            ),
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the server on `port` answers `version` (it has no other readiness signal).
async fn ready(port: u16) {
    bounded("memcached to answer", async {
        while !matches!(raw(port, "version\r\n"), Some(l) if l.starts_with("VERSION")) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// One raw exchange: the first answer line, `None` when the server cannot be reached.
fn raw(port: u16, request: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    Some(line.trim_end().to_string())
}

/// The CAS unique and value of `key` (`mg key c v`).
fn item(port: u16, key: &str) -> Option<(u64, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("mg {key} c v\r\n").as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut words = line.split_whitespace();
    if words.next()? != "VA" {
        return None;
    }
    let len: usize = words.next()?.parse().ok()?;
    let cas = words.find_map(|w| w.strip_prefix('c'))?.parse().ok()?;
    let mut value = vec![0; len + 2];
    r.read_exact(&mut value).unwrap();
    value.truncate(len);
    Some((cas, value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_from_before_a_restart_is_not_trusted() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(server) = Memcached::start(port) else {
        return;
    };
    ready(port).await;
    let url = format!("memcached://127.0.0.1:{port}");
    let locker = Locker::connect(&url).await.unwrap();
    let guard = locker
        .lock(unique("mc-restart"))
        .ttl(Duration::from_secs(60))
        .try_acquire()
        .await
        .unwrap();
    let key = guard.resource().to_string();
    let (ours, _) = item(port, &key).expect("our item");

    drop(server);
    let Some(_server) = Memcached::start(port) else {
        return;
    };
    ready(port).await;
    // Another owner's item under our key, written until its unique is our old one.
    let theirs = b"someone-else";
    let other = loop {
        let stored = raw(
            port,
            &format!(
                "set {key} 0 60 {}\r\n{}\r\n",
                theirs.len(),
                String::from_utf8_lossy(theirs)
            ),
        );
        assert_eq!(stored.as_deref(), Some("STORED"));
        let (cas, _) = item(port, &key).expect("their item");
        assert!(cas <= ours, "the restarted server is past our unique");
        if cas == ours {
            break cas;
        }
    };
    // The locker's connections died with the old server: a command on one fails and drops
    // it, and the next on that slot opens a new one. Enough cycles in a row succeed once every
    // pooled connection is new.
    bounded("the locker to reconnect", async {
        let mut in_a_row = 0;
        while in_a_row < 16 {
            let cycle = async {
                let g = locker.lock(unique("mc-other")).try_acquire().await?;
                g.release().await
            };
            in_a_row = if cycle.await.is_ok() { in_a_row + 1 } else { 0 };
        }
    })
    .await;

    let ours_still = guard.release().await.unwrap();
    assert!(
        !ours_still,
        "the release said the other owner's item was ours"
    );
    assert_eq!(
        item(port, &key),
        Some((other, theirs.to_vec())),
        "the release deleted another owner's item that carried our old unique"
    );
}
