//! How long a hog may take to acquire and to release.

use std::time::Duration;

/// The acquire timeout used unless [`HogOptions::with_acquire_timeout`] says otherwise.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The release timeout used unless [`HogOptions::with_release_timeout`] says otherwise.
pub const DEFAULT_RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// Time limits of a hog: a builder whose hog methods ([`HogOptions::hog_lock`],
/// [`HogOptions::async_hog_lock`], [`HogOptions::hogged`], …) start a hog with them, as the
/// free functions of the same names do with the defaults; [`NamedLock::options`](super::NamedLock::options)
/// takes them too.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lockhog::hog::HogOptions;
///
/// let opts = HogOptions::new()
///     .with_acquire_timeout(Duration::from_secs(30))
///     .with_release_timeout(Duration::from_secs(2));
/// assert_eq!(opts.acquire_timeout(), Duration::from_secs(30));
/// assert_eq!(HogOptions::default().release_timeout(), Duration::from_secs(1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HogOptions {
    acquire_timeout: Duration,
    release_timeout: Duration,
}

impl Default for HogOptions {
    fn default() -> Self {
        HogOptions {
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            release_timeout: DEFAULT_RELEASE_TIMEOUT,
        }
    }
}

impl HogOptions {
    /// The defaults: 10 s to acquire, 1 s to release.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long to wait for the hogger to acquire before reporting
    /// [`HogError::AcquireTimedOut`](super::HogError::AcquireTimedOut).
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long to wait for the hogger to release before reporting
    /// [`HogError::StillHolding`](super::HogError::StillHolding).
    pub fn with_release_timeout(mut self, timeout: Duration) -> Self {
        self.release_timeout = timeout;
        self
    }

    /// The acquire timeout.
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// The release timeout.
    pub fn release_timeout(&self) -> Duration {
        self.release_timeout
    }
}
