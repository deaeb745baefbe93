//! Compute a value once across processes: the first caller computes it while holding a lock
//! and stores it; everyone else, at the same time or later within its ttl, gets the stored
//! value without computing (py-dspinlock's `cached_if_computed`, with the waiting done by the
//! lock rather than by spinning).
//!
//! Values are bytes in and bytes out, so no serialisation library is forced on you: encode with
//! whatever you use (serde_json, bincode, a plain string). The lock comes from any
//! [`Locker`]; the values live in a [`ResultStore`] — [`RedisStore`] in this crate (feature
//! `redis`), or your own.
//!
//! # How it goes
//!
//! 1. Read the stored value: if there is one, return it.
//! 2. Take the lock `compute-once:<key>` (waiting while another caller computes).
//! 3. Read again: a caller that held the lock before us may have stored it. If so, return it.
//! 4. Otherwise run `f`. On success store its value for `ttl`, release the lock, return it. On
//!    failure store nothing, release the lock, and return the error to this caller only: the
//!    next waiter takes the lock and computes itself (a failure is never cached).
//!
//! With a lease backend, a computation that outlives the lock's lease (and so may run twice)
//! is only duplicated work: both store a value, the later overwrites the earlier.
//!
//! # Examples
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use lockhog::compute_once::{ComputeOnce, RedisStore};
//!
//! let url = "redis://127.0.0.1:6379";
//! let once = ComputeOnce::new(lockhog::Locker::connect(url).await?, RedisStore::connect(url).await?);
//! let report = once
//!     .get_or_compute("report:2024-06", Duration::from_secs(600), || async {
//!         Ok::<_, std::io::Error>(b"expensive result".to_vec())
//!     })
//!     .await?;
//! # let _ = report;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use crate::error::Error;
use crate::name::LockName;
use crate::Locker;

/// Where computed values are kept: a key-value store with expiry.
pub trait ResultStore: Send + Sync {
    /// The value stored under `key` in `namespace`, if any and not expired.
    fn get(
        &self,
        namespace: &str,
        key: &LockName,
    ) -> impl Future<Output = crate::Result<Option<Vec<u8>>>> + Send;

    /// Stores `value` under `key` in `namespace` for `ttl`, replacing any earlier value.
    fn put(
        &self,
        namespace: &str,
        key: &LockName,
        value: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = crate::Result<()>> + Send;
}

/// Why [`ComputeOnce::get_or_compute`] returned no value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComputeError<E> {
    /// The computation ran in this call and failed; nothing was stored.
    #[error("the computation failed: {0}")]
    Failed(E),
    /// The lock or the store could not be used (or the key is not a valid lock name).
    #[error(transparent)]
    Lock(#[from] Error),
}

/// Computes values once per key across every process using the same store. See the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct ComputeOnce<S> {
    locker: Locker,
    store: S,
}

impl<S: ResultStore> ComputeOnce<S> {
    /// Values in `store`, computations serialised by locks of `locker` (in its namespace).
    pub fn new(locker: Locker, store: S) -> Self {
        ComputeOnce { locker, store }
    }

    /// The value of `key`: the stored one when there is one, else the one `f` computes (once,
    /// whoever else asks at the same time), stored for `ttl`.
    ///
    /// # Errors
    ///
    /// [`ComputeError::Failed`] with `f`'s error when it ran in this call and failed;
    /// [`ComputeError::Lock`] when the key is not a valid lock name (empty, over 1024 bytes),
    /// `ttl` is zero, or the lock or store failed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future releases the lock (through the guard's drop); a computation cut
    /// short stores nothing.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &str,
        ttl: Duration,
        f: F,
    ) -> Result<Vec<u8>, ComputeError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let name = LockName::new(key)?;
        if ttl.is_zero() {
            return Err(Error::InvalidOption {
                reason: "compute_once: the ttl must be above zero".into(),
            }
            .into());
        }
        let ns = self.locker.namespace();
        if let Some(v) = self.store.get(ns, &name).await? {
            return Ok(v);
        }
        let guard = self
            .locker
            .lock(format!("compute-once:{key}"))
            .wait()
            .await?;
        if let Some(v) = self.store.get(ns, &name).await? {
            guard.release().await?;
            return Ok(v);
        }
        match f().await {
            Ok(v) => {
                let stored = self.store.put(ns, &name, &v, ttl).await;
                guard.release().await?;
                stored?;
                Ok(v)
            }
            Err(e) => {
                guard.release().await?;
                Err(ComputeError::Failed(e))
            }
        }
    }
}

/// [`ComputeOnce::get_or_compute`] in one call.
///
/// # Errors
///
/// As [`ComputeOnce::get_or_compute`].
pub async fn compute_once<S, F, Fut, E>(
    locker: &Locker,
    store: &S,
    key: &str,
    ttl: Duration,
    f: F,
) -> Result<Vec<u8>, ComputeError<E>>
where
    S: ResultStore + Clone,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Vec<u8>, E>>,
{
    ComputeOnce::new(locker.clone(), store.clone())
        .get_or_compute(key, ttl, f)
        .await
}

#[cfg(feature = "redis")]
pub use self::redis_store::RedisStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::Duration;

    use super::ResultStore;
    use crate::backend::redis::{backend_err, client, connect_checked, namespace_part, Conn};
    use crate::name::LockName;
    use crate::url::BackendUrl;

    /// Values in Redis under `NS:result:KEY` (`NS` as for the lock keys), with `SET … PX`.
    #[derive(Clone)]
    pub struct RedisStore {
        conn: Conn,
    }

    impl std::fmt::Debug for RedisStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisStore").finish_non_exhaustive()
        }
    }

    impl RedisStore {
        /// Connects to a `redis://` or `rediss://` URL (query options other than `ca` are
        /// ignored, so the locker's URL can be reused).
        ///
        /// # Errors
        ///
        /// [`crate::Error::InvalidUrl`], [`crate::Error::Backend`].
        pub async fn connect(url: &str) -> crate::Result<Self> {
            let mut parsed = BackendUrl::parse(url)?;
            let shown = parsed.redacted().to_string();
            if !matches!(parsed.scheme(), "redis" | "rediss") {
                return Err(parsed.invalid("the result store needs a redis:// URL"));
            }
            let ca = parsed.take_option("ca");
            let target = match parsed.authority_rest() {
                Some(rest) => parsed.client_form(parsed.scheme(), rest),
                None => format!("{}:{}", parsed.scheme(), parsed.body()),
            };
            let c = client(&target, ca.as_deref(), &shown)?;
            Ok(RedisStore {
                conn: connect_checked(&c, &shown).await?,
            })
        }

        fn key(namespace: &str, key: &LockName) -> Vec<u8> {
            let mut k = format!("{}:result:", namespace_part(namespace)).into_bytes();
            k.extend_from_slice(key.as_str().as_bytes());
            k
        }
    }

    impl ResultStore for RedisStore {
        async fn get(&self, namespace: &str, key: &LockName) -> crate::Result<Option<Vec<u8>>> {
            let mut conn = self.conn.clone();
            redis::cmd("GET")
                .arg(Self::key(namespace, key))
                .query_async(&mut conn)
                .await
                .map_err(|e| backend_err("reading a computed value", e))
        }

        async fn put(
            &self,
            namespace: &str,
            key: &LockName,
            value: &[u8],
            ttl: Duration,
        ) -> crate::Result<()> {
            let mut conn = self.conn.clone();
            redis::cmd("SET")
                .arg(Self::key(namespace, key))
                .arg(value)
                .arg("PX")
                .arg((ttl.as_millis() as u64).max(1))
                .query_async(&mut conn)
                .await
                .map_err(|e| backend_err("storing a computed value", e))
        }
    }
}
