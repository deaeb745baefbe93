//! etcd keys as documented, `status` (holder, lease, waiters) and `cleanup` of keys that can
//! never expire.

#![cfg(all(feature = "etcd", feature = "testkit"))]

mod etcd_support;

use etcd_client::PutOptions;
use etcd_support::{bounded, cycle, queue, raw, unique, wait_queue_len, BOUND};
use lockhog::{LockState, Locker};

/// The RESOURCE is `lockhog/<namespace>/<name>` with the name's bytes as they are (but `%` and
/// `/` percent-encoded), and the holder's key is `RESOURCE/<lease id in 16 hex digits>-<n in
/// hex>` (the locker's session lease, and the session's number for the entry) with
/// `<random>/<pid>/<host>/<since when it holds, unix ms>` as its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_as_documented() {
    let url = etcd_url!();
    let locker = Locker::connect(&format!("{url}?namespace=app"))
        .await
        .unwrap();
    let raw = raw(&url).await;
    let name = format!("{} a/b%c \"q\" \0 é", unique("layout"));
    let guard = locker.lock(&name).try_acquire().await.unwrap();
    let encoded = name.replace('%', "%25").replace('/', "%2F");
    assert_eq!(guard.resource(), format!("lockhog/app/{encoded}"));
    assert_eq!(locker.resource(&name).unwrap(), guard.resource());
    let keys = queue(&raw, guard.resource()).await;
    assert_eq!(keys.len(), 1);
    let key = keys[0].key();
    let entry = std::str::from_utf8(&key[guard.resource().len() + 1..]).unwrap();
    let (lease, n) = entry.split_once('-').expect("<lease>-<n>");
    assert_eq!(lease, format!("{:016x}", keys[0].lease()));
    assert!(u64::from_str_radix(n, 16).is_ok(), "{entry}");
    let value = String::from_utf8(keys[0].value().to_vec()).unwrap();
    let parts: Vec<&str> = value.split('/').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[1], std::process::id().to_string(), "{value}");
    let since = std::time::UNIX_EPOCH + std::time::Duration::from_millis(parts[3].parse().unwrap());
    let age = std::time::SystemTime::now().duration_since(since).unwrap();
    assert!(age < std::time::Duration::from_secs(600), "{value}");
    guard.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_holder_lease_and_waiters() {
    let url = etcd_url!();
    let ns = unique("status-ns");
    let a = Locker::connect(&format!("{url}?namespace={ns}"))
        .await
        .unwrap();
    let raw = raw(&url).await;
    let name = "reports";
    let free = a.status(&[name]).await.unwrap();
    assert_eq!(free[0].state, LockState::Free);
    let guard = a.lock(name).try_acquire().await.unwrap();
    let resource = guard.resource().to_string();
    let w1 = tokio::spawn(a.lock(name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 2).await;
    let w2 = tokio::spawn(a.lock(name).wait_for(BOUND));
    wait_queue_len(&raw, &resource, 3).await;
    let seen = a.status(&[name]).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].state, LockState::Held);
    assert_eq!(seen[0].resource, resource);
    let holder = seen[0].holder.clone().unwrap();
    let pid = format!("pid {}", std::process::id());
    assert!(holder.contains(&pid), "{holder}");
    assert!(
        holder.contains(&format!("token {}", guard.fencing_token().unwrap())),
        "{holder}"
    );
    assert!(holder.contains("s left"), "{holder}");
    assert!(holder.contains(", held "), "{holder}");
    assert!(holder.contains("2 waiting"), "{holder}");
    let all = a.status(&[]).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].name.as_deref(), Some(name));
    assert_eq!(all[0], seen[0]);

    guard.release().await.unwrap();
    for w in [w1, w2] {
        bounded("a waiter", w)
            .await
            .unwrap()
            .unwrap()
            .release()
            .await
            .unwrap();
    }
    assert_eq!(a.status(&[name]).await.unwrap()[0].state, LockState::Free);
    assert!(a.status(&[]).await.unwrap().is_empty());
}

/// A queue key without a lease (written by hand) would block its lock forever: cleanup deletes
/// it, and keeps the keys of live leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_keys_that_never_expire() {
    let url = etcd_url!();
    let ns = unique("cleanup-ns");
    let a = Locker::connect(&format!("{url}?namespace={ns}"))
        .await
        .unwrap();
    let raw = raw(&url).await;
    let held = a.lock("live").try_acquire().await.unwrap();
    let stuck = a.resource("stuck").unwrap();
    let stuck_key = format!("{stuck}/{:016x}", 42);
    raw.clone()
        .put(stuck_key.as_str(), "by hand", None::<PutOptions>)
        .await
        .unwrap();
    assert!(a.lock("stuck").try_acquire().await.is_err());
    let status = a.status(&["stuck"]).await.unwrap();
    assert!(
        status[0].holder.as_deref().unwrap().contains("no lease"),
        "{status:?}"
    );
    let report = a.cleanup().await.unwrap();
    assert_eq!((report.removed, report.kept), (1, 1));
    cycle(&a, "stuck").await;
    held.release().await.unwrap();
    let report = a.cleanup().await.unwrap();
    assert_eq!((report.removed, report.kept), (0, 0));
}
