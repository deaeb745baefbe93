//! A backend written outside lockhog, through the public [`Backend`] trait only, used by a
//! [`Locker::with_backend`] and passing the whole conformance suite through a
//! [`Target::from_factory`]: what a third party's backend crate does.

#![cfg(feature = "testkit")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use lockhog::backend::{
    AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockKey, LockState, LockStatus,
};
use lockhog::testkit::Target;
use lockhog::{Locker, Result};

/// The store: who holds each (namespace, name), by fencing token, and the last token issued.
#[derive(Debug, Default)]
struct Store {
    held: HashMap<(String, String), u64>,
    last_token: u64,
    acquires: u64,
}

/// One handle on a shared [`Store`]: two handles exclude each other as two connections to a
/// server would.
#[derive(Clone, Debug, Default)]
struct MapBackend(Arc<Mutex<Store>>);

impl MapBackend {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A held lock; dropping it gives the lock back (so the default `release_on_drop` is right).
#[derive(Debug)]
struct MapHeld {
    backend: MapBackend,
    key: (String, String),
    token: u64,
}

impl Drop for MapHeld {
    fn drop(&mut self) {
        let mut store = self.backend.store();
        if store.held.get(&self.key) == Some(&self.token) {
            store.held.remove(&self.key);
        }
    }
}

fn key_of(key: &LockKey) -> (String, String) {
    (key.namespace().to_string(), key.name().as_str().to_string())
}

fn resource_of((namespace, name): &(String, String)) -> String {
    format!("map:{namespace}/{name:?}")
}

impl Backend for MapBackend {
    type Held = MapHeld;

    fn scheme(&self) -> &'static str {
        "map"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn resource(&self, key: &LockKey) -> String {
        resource_of(&key_of(key))
    }

    async fn try_acquire(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Result<Option<Acquired<MapHeld>>> {
        let key = key_of(key);
        let mut store = self.store();
        if store.held.contains_key(&key) {
            return Ok(None);
        }
        store.last_token += 1;
        store.acquires += 1;
        let token = store.last_token;
        store.held.insert(key.clone(), token);
        Ok(Some(Acquired {
            held: MapHeld {
                backend: self.clone(),
                key,
                token,
            },
            // The number is also this map's owner check; a request that opted out of fencing
            // gets no token.
            token: ctx.options.fencing.then_some(token),
        }))
    }

    async fn release(&self, held: MapHeld) -> Result<bool> {
        let ours = self.store().held.get(&held.key) == Some(&held.token);
        drop(held);
        Ok(ours)
    }

    async fn status(&self, namespace: &str, keys: &[LockKey]) -> Result<Vec<LockStatus>> {
        let store = self.store();
        let status = |key: (String, String), state| {
            LockStatus::new(Some(key.1.clone()), resource_of(&key), state, None)
        };
        if keys.is_empty() {
            return Ok(store
                .held
                .keys()
                .filter(|(ns, _)| ns == namespace)
                .map(|k| status(k.clone(), LockState::Held))
                .collect());
        }
        Ok(keys
            .iter()
            .map(|k| {
                let k = key_of(k);
                let state = if store.held.contains_key(&k) {
                    LockState::Held
                } else {
                    LockState::Free
                };
                status(k, state)
            })
            .collect())
    }

    async fn cleanup(&self, namespace: &str) -> Result<CleanupReport> {
        // Nothing stale is ever left: a lock exists only while it is held.
        let kept = self
            .store()
            .held
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .count();
        Ok(CleanupReport::new(0, kept as u64))
    }
}

/// A target over one fresh store; every locker it makes is a new handle on that store.
fn map_target(backend: MapBackend) -> Target {
    Target::from_factory(move || {
        let handle = MapBackend(backend.0.clone());
        async move { Ok(Locker::with_backend(handle)) }
    })
}

lockhog::conformance_suite!(map_backend, map_target(MapBackend::default()));

/// The suite's lockers really are this backend, on one store: two of them exclude each other,
/// and the store saw the acquires.
#[tokio::test]
async fn factory_lockers_share_the_backend() {
    let backend = MapBackend::default();
    let target = map_target(backend.clone());
    assert!(target.is_available());
    assert!(target.url().is_none());
    let (a, b) = (target.locker().await, target.locker().await);
    assert_eq!(a.url(), "map:");
    let held = a.lock("shared").try_acquire().await.unwrap();
    assert!(b.lock("shared").try_acquire().await.is_err());
    assert_eq!(backend.store().acquires, 1);
    assert!(held.release().await.unwrap());
    b.lock("shared").try_acquire().await.unwrap();
    assert_eq!(backend.store().acquires, 2);
}
