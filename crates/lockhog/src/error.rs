//! The one error type of the library.
//!
//! A lock that was not acquired (`Contended`, `TimedOut`) is an ordinary outcome and is kept
//! apart from mistakes by the caller (`InvalidName`, `InvalidUrl`, `InvalidOption`) and from
//! failures talking to the backend (`Backend`). [`Error::is_not_acquired`] tells the first group
//! from the rest.

use std::time::Duration;

/// A boxed error from a backend's own client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when using lockhog.
///
/// # Examples
///
/// ```
/// use lockhog::Error;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let locker = lockhog::Locker::connect("mem:").await?;
/// let _held = locker.lock("payroll").try_acquire().await?;
/// match locker.lock("payroll").try_acquire().await {
///     Err(Error::Contended { name }) => assert_eq!(name, "payroll"),
///     other => panic!("expected Contended, got {other:?}"),
/// }
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lock is held by someone else and the caller asked not to wait.
    #[error("lock {name:?} is held by someone else")]
    Contended {
        /// The lock's name.
        name: String,
    },
    /// The lock was still held by someone else when the wait ran out.
    #[error("lock {name:?} was not acquired within {waited:?} ({})", attempts_text(.attempts))]
    TimedOut {
        /// The lock's name.
        name: String,
        /// How long the caller waited.
        waited: Duration,
        /// How many attempts were made on the store (see
        /// [`AcquireStats::attempts`](crate::AcquireStats::attempts)); a wait that ran out
        /// because [`RetryPolicy::max_attempts`](crate::RetryPolicy::max_attempts) was reached
        /// made exactly that many.
        attempts: u32,
    },
    /// The lock name cannot be used (empty or longer than [`crate::MAX_NAME_BYTES`]).
    #[error("invalid lock name: {reason}")]
    InvalidName {
        /// Why the name was refused.
        reason: String,
    },
    /// The backend URL cannot be used. The URL is given with its password redacted.
    #[error("invalid backend URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// An option (ttl, wait bound, retry policy, backend query parameter) is out of range or
    /// not supported by the backend.
    #[error("invalid option: {reason}")]
    InvalidOption {
        /// What is wrong with it.
        reason: String,
    },
    /// The body of [`Locker::with_lock`](crate::Locker::with_lock) or
    /// [`LockRequest::run`](crate::LockRequest::run) ran to its end, but not under the lock
    /// throughout: the lock was lost while it ran (a lease that ran out or was taken over, a
    /// session that died), or its release failed, so it is not known to have been held up to
    /// the end. What the body returned is in `value` ([`BodyValue::take`]).
    #[error("lock {name:?} was lost while the body ran: {reason}")]
    LostWhileHeld {
        /// The lock's name.
        name: String,
        /// What happened, password redacted.
        reason: String,
        /// What the body returned.
        value: BodyValue,
        /// The release's own error, when the release failed.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend could not be reached or refused the request (I/O error, connection refused,
    /// authentication, server error). Messages never contain a password.
    #[error("{backend} backend: {message}")]
    Backend {
        /// The backend's scheme, e.g. `file`.
        backend: &'static str,
        /// What happened, password redacted.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// True for the outcomes that mean "someone else holds the lock": [`Error::Contended`] and
    /// [`Error::TimedOut`]. False for every kind of failure.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = lockhog::Error::Contended { name: "x".into() };
    /// assert!(e.is_not_acquired());
    /// ```
    pub fn is_not_acquired(&self) -> bool {
        matches!(self, Error::Contended { .. } | Error::TimedOut { .. })
    }

    /// A [`Error::Backend`] error from an I/O error, with a message saying what was being done.
    pub fn backend_io(
        backend: &'static str,
        doing: impl Into<String>,
        err: std::io::Error,
    ) -> Self {
        Error::Backend {
            backend,
            message: format!("{}: {err}", doing.into()),
            source: Some(Box::new(err)),
        }
    }

    /// A [`Error::Backend`] error with only a message.
    pub fn backend(backend: &'static str, message: impl Into<String>) -> Self {
        Error::Backend {
            backend,
            message: message.into(),
            source: None,
        }
    }
}

/// What the body of a [`Locker::with_lock`](crate::Locker::with_lock) returned, kept in an
/// [`Error::LostWhileHeld`] so the caller can still use (or undo) it.
///
/// # Examples
///
/// ```
/// let e = lockhog::Error::LostWhileHeld {
///     name: "ledger".into(),
///     reason: "the lease ran out".into(),
///     value: lockhog::BodyValue::new(42u32),
///     source: None,
/// };
/// if let lockhog::Error::LostWhileHeld { value, .. } = e {
///     assert_eq!(value.take::<u32>(), Some(42));
/// }
/// ```
pub struct BodyValue(std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>);

impl BodyValue {
    /// Keeps `value`.
    pub fn new<T: Send + 'static>(value: T) -> Self {
        BodyValue(std::sync::Mutex::new(Some(Box::new(value))))
    }

    /// The value, when it is a `T` and was not taken before.
    pub fn take<T: 'static>(&self) -> Option<T> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take()?.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                *slot = Some(other);
                None
            }
        }
    }
}

impl std::fmt::Debug for BodyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyValue(..)")
    }
}

/// "1 attempt", "3 attempts".
fn attempts_text(n: &u32) -> String {
    if *n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

/// `Result` with lockhog's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
