//! Helpers of the etcd tests: the cluster's URL and members from the environment (set by
//! scripts/test), a raw etcd client to look behind the library's back, waits driven by etcd
//! watches (never by sleeping), unique names and a hang guard.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

// Each test file uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use common::{
    assert_free, bounded, cycle, in_fresh_namespace, lockers, percentile, spawn_timed_wait,
    taken_after_foreign, unique, with_option, BOUND,
};

use std::path::PathBuf;

use etcd_client::{Client, EventType, GetOptions, KeyValue, SortOrder, SortTarget, WatchOptions};

/// `LOCKHOG_TEST_ETCD_URL`, or `None` (with the skip reason printed; a failure under CI=true).
pub fn etcd_url() -> Option<String> {
    common::env_url("LOCKHOG_TEST_ETCD_URL", "etcd")
}

/// Returns from the test when the cluster is missing (outside CI).
#[macro_export]
macro_rules! etcd_url {
    () => {
        match etcd_support::etcd_url() {
            Some(url) => url,
            None => return,
        }
    };
}

/// The `host:port` endpoints of an `etcd://` URL.
pub fn endpoints(url: &str) -> Vec<String> {
    let body = url.strip_prefix("etcd://").expect("an etcd:// URL");
    let body = body.split('?').next().unwrap();
    body.split(',').map(str::to_string).collect()
}

/// A raw client on every endpoint of `url`.
pub async fn raw(url: &str) -> Client {
    Client::connect(endpoints(url), None)
        .await
        .expect("raw etcd client")
}

/// The queue prefix of a lock of the default namespace: `<RESOURCE>/`.
pub fn queue_prefix(resource: &str) -> Vec<u8> {
    format!("{resource}/").into_bytes()
}

/// The keys of a lock's queue, holder first.
pub async fn queue(client: &Client, resource: &str) -> Vec<KeyValue> {
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend);
    client
        .clone()
        .get(queue_prefix(resource), Some(options))
        .await
        .expect("read the queue")
        .take_kvs()
}

/// Waits until the lock's queue has exactly `n` keys, woken by a watch on the queue (never by
/// sleeping): read the count, and when it is not `n` yet, watch from just after that read for
/// the next change, then read again.
pub async fn wait_queue_len(client: &Client, resource: &str, n: usize) {
    bounded(
        &format!("the queue of {resource} reaching {n} keys"),
        async {
            loop {
                let options = GetOptions::new().with_prefix().with_count_only();
                let resp = client
                    .clone()
                    .get(queue_prefix(resource), Some(options))
                    .await
                    .expect("count the queue");
                if resp.count() as usize == n {
                    return;
                }
                let rev = resp.header().unwrap().revision();
                let mut watch = client
                    .clone()
                    .watch(
                        queue_prefix(resource),
                        Some(
                            WatchOptions::new()
                                .with_prefix()
                                .with_start_revision(rev + 1),
                        ),
                    )
                    .await
                    .expect("watch the queue");
                // Any event (put or delete) changes the count: read it again.
                while let Some(resp) = watch.message().await.expect("watch") {
                    if !resp.events().is_empty() {
                        break;
                    }
                }
            }
        },
    )
    .await;
}

/// Waits until `key` is deleted (a watch from `after + 1`).
pub async fn wait_deleted(client: &Client, key: &[u8], after: i64) {
    bounded("a key's deletion", async {
        let mut watch = client
            .clone()
            .watch(
                key,
                Some(WatchOptions::new().with_start_revision(after + 1)),
            )
            .await
            .expect("watch");
        while let Some(resp) = watch.message().await.expect("watch") {
            if resp
                .events()
                .iter()
                .any(|e| e.event_type() == EventType::Delete)
            {
                return;
            }
        }
        panic!("the watch ended");
    })
    .await;
}

/// One member of the test cluster: see `LOCKHOG_TEST_ETCD_MEMBERS` in scripts/lib/services.sh.
#[derive(Debug, Clone)]
pub struct Member {
    pub dir: PathBuf,
    pub endpoint: String,
}

impl Member {
    /// The pid of the running server.
    pub fn pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.join("pid"))
            .expect("member pid file")
            .trim()
            .parse()
            .expect("a pid")
    }

    /// Kills the member with SIGKILL and waits (without sleeping: a pidfd) until it is gone.
    pub fn kill(&self) {
        let pid = self.pid();
        // SAFETY: plain syscalls on integers; the fd is closed below.
        unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
            assert!(
                fd >= 0,
                "pidfd_open({pid}) failed: the member is not running"
            );
            assert_eq!(libc::kill(pid, libc::SIGKILL), 0, "kill {pid}");
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ready = libc::poll(&mut pfd, 1, BOUND.as_millis() as i32);
            libc::close(fd);
            assert_eq!(ready, 1, "member {pid} did not exit within {BOUND:?}");
        }
    }

    /// Starts the member again on its data dir; returns once it reports itself healthy.
    pub fn start(&self) {
        let status = std::process::Command::new(self.dir.join("start"))
            .stdin(std::process::Stdio::null())
            .status()
            .expect("run the member's start script");
        assert!(status.success(), "restarting {} failed", self.endpoint);
    }
}

/// The members, in the order of the URL's endpoints, or `None` (skip, or fail under CI=true)
/// when `LOCKHOG_TEST_ETCD_MEMBERS` is unset.
pub fn members() -> Option<Vec<Member>> {
    let Some(dir) = std::env::var_os("LOCKHOG_TEST_ETCD_MEMBERS") else {
        return common::skip_or_fail(
            "no cluster members",
            "LOCKHOG_TEST_ETCD_MEMBERS is not set: run through scripts/test",
        );
    };
    let dir = PathBuf::from(dir);
    let members = (0..3)
        .map(|i| {
            let dir = dir.join(format!("m{i}"));
            let endpoint = std::fs::read_to_string(dir.join("endpoint"))
                .expect("member endpoint file")
                .trim()
                .to_string();
            Member { dir, endpoint }
        })
        .collect();
    Some(members)
}

/// The index (in `members`) of the current leader.
pub async fn leader(members: &[Member]) -> usize {
    for (i, m) in members.iter().enumerate() {
        let Ok(mut c) = Client::connect([m.endpoint.as_str()], None).await else {
            continue;
        };
        let Ok(status) = c.status().await else {
            continue;
        };
        if status.header().map(|h| h.member_id()) == Some(status.leader()) {
            return i;
        }
    }
    panic!("no member says it is the leader");
}
