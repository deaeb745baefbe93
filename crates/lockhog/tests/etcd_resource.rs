//! `etcdctl lock <prefix>` interop: lockhog's `lock_resource` on an etcd prefix queues the way
//! etcd's own concurrency mutex does, so etcdctl blocks lockhog and lockhog blocks etcdctl; the
//! fencing token is the holder key's create revision, and bad prefixes are refused.

#![cfg(feature = "etcd")]

mod etcd_support;

use std::process::Stdio;

use etcd_client::{Client, KeyValue};
use etcd_support::{
    assert_free, bounded, endpoints, queue, raw, taken_after_foreign, unique, wait_queue_len,
};
use lockhog::{Error, Locker};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// `etcdctl lock <prefix>`: prints its key once it holds the lock, and holds it until SIGTERM,
/// then unlocks and exits. (etcdctl 3.4 gives a command run under the lock no stdin to wait
/// on, so the signal is the way to let go.)
struct Etcdctl {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Etcdctl {
    fn lock(url: &str, prefix: &str) -> Etcdctl {
        let mut child = Command::new("etcdctl")
            .arg(format!("--endpoints={}", endpoints(url).join(",")))
            .args(["lock", prefix])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("etcdctl (Debian's etcd-client; scripts/test installs it)");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Etcdctl { child, lines }
    }

    /// Waits until etcdctl holds the lock: its key, as etcd stores it.
    async fn held(&mut self, client: &Client) -> KeyValue {
        let key = bounded("etcdctl holding the lock", self.lines.next_line())
            .await
            .unwrap()
            .expect("etcdctl exited before holding the lock");
        let mut got = client.clone().get(key.as_str(), None).await.unwrap();
        got.take_kvs().pop().expect("etcdctl's key")
    }

    /// Lets etcdctl unlock, and waits for it to exit.
    async fn release(mut self) {
        let pid = self.child.id().expect("etcdctl is running") as libc::pid_t;
        // SAFETY: signalling our own child, which has not been reaped (we wait for it below).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = bounded("etcdctl unlocking", self.child.wait())
            .await
            .unwrap();
        assert!(status.success(), "etcdctl lock: {status}");
    }
}

/// `kv` is `<prefix>/<its lease id in hex, no leading zeros>`, as etcd's concurrency mutex
/// names its key (Go's `%x`).
fn assert_mutex_key(kv: &KeyValue, prefix: &str) {
    let want = format!("{prefix}/{:x}", kv.lease());
    assert_eq!(
        kv.key(),
        want.as_bytes(),
        "{}",
        String::from_utf8_lossy(kv.key())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lock_blocks_lockhog() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let client = raw(&url).await;
    let prefix = unique("jobs/etcdctl-first");
    let mut etcdctl = Etcdctl::lock(&url, &prefix);
    let theirs = etcdctl.held(&client).await;
    assert_mutex_key(&theirs, &prefix);
    let rev = theirs.create_revision();

    let guard = taken_after_foreign(&locker, &prefix, async {
        // lockhog queued behind etcdctl's key, under the same prefix.
        wait_queue_len(&client, &prefix, 2).await;
        etcdctl.release().await;
    })
    .await;
    let token = guard.fencing_token().expect("etcd numbers holders itself");
    assert!(token > rev as u64, "{token} after etcdctl's {rev}");
    let mine = queue(&client, &prefix).await;
    assert_eq!(mine.len(), 1);
    assert_mutex_key(&mine[0], &prefix);
    assert_eq!(mine[0].create_revision() as u64, token);
    assert!(guard.release().await.unwrap());
    assert!(queue(&client, &prefix).await.is_empty());
    assert_free(&locker, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockhog_blocks_etcdctl_lock() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let client = raw(&url).await;
    let prefix = unique("jobs/lockhog-first");
    let guard = locker.lock_resource(&prefix).try_acquire().await.unwrap();
    let token = guard.fencing_token().expect("etcd numbers holders itself");

    let mut etcdctl = Etcdctl::lock(&url, &prefix);
    // etcdctl queued behind lockhog's key, which is first by create revision.
    wait_queue_len(&client, &prefix, 2).await;
    let waiting = queue(&client, &prefix).await;
    assert_eq!(waiting[0].create_revision() as u64, token);
    assert_mutex_key(&waiting[0], &prefix);
    assert_mutex_key(&waiting[1], &prefix);
    assert!(guard.release().await.unwrap());
    let theirs = etcdctl.held(&client).await;
    assert_eq!(theirs.key(), waiting[1].key());
    assert!(theirs.create_revision() as u64 > token);
    etcdctl.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_prefixes_are_refused_before_anything_is_written() {
    let url = etcd_url!();
    let locker = Locker::connect(&url).await.unwrap();
    let client = raw(&url).await;
    let long = "p".repeat(lockhog::MAX_NAME_BYTES + 1);
    for bad in ["", long.as_str()] {
        match locker.lock_resource(bad).try_acquire().await {
            Err(Error::InvalidOption { reason }) => {
                assert!(reason.contains("etcdctl lock <prefix>"), "{reason}");
            }
            other => panic!("{bad:?}: expected InvalidOption, got {other:?}"),
        }
        assert!(queue(&client, bad).await.is_empty(), "{bad:?}");
    }
}
