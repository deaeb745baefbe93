//! How to acquire: try once, wait up to a bound, or wait forever; the lease ttl; the retry
//! policy for backends that have to poll.

use std::time::Duration;

use crate::error::{Error, Result};

/// How long an acquire may wait for a lock held by someone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// One attempt; [`Error::Contended`] when the lock is held.
    No,
    /// Wait at most this long; [`Error::TimedOut`] when it runs out.
    For(Duration),
    /// Wait until the lock is acquired.
    Forever,
}

/// The backoff between attempts on backends that cannot be woken by a release and must poll.
///
/// Waits grow from `initial` by `multiplier` up to `max`, each shortened by a random share of at
/// most `jitter` (0.0 to 1.0) so that many waiters do not poll in step. Backends that are woken
/// by the release itself (`mem:`, `file:`) ignore it, unless the attempts are capped
/// ([`RetryPolicy::max_attempts`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lockhog::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .initial(Duration::from_millis(2))
///     .max(Duration::from_millis(50));
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
    max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(100),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    /// The first wait.
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }
    /// The longest wait.
    pub fn max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }
    /// The factor by which each wait grows (at least 1.0).
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = m;
        self
    }
    /// The largest share (0.0 to 1.0) by which a wait is randomly shortened.
    pub fn jitter(mut self, j: f64) -> Self {
        self.jitter = j;
        self
    }

    /// Gives up after `n` tries with [`Error::TimedOut`], whose `attempts` is then `n`, even
    /// when the wait bound has not run out (or there is none). A capped wait is a spin on
    /// every backend: `n` single tries spaced by this policy's backoff, instead of the
    /// backend's own wait (a blocking call, a wake-up on release), so the cap means the same
    /// everywhere. A capped request cannot also be
    /// [`fair`](crate::LockRequest::fair) ([`Error::InvalidOption`]). No cap by default.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use lockhog::{Error, RetryPolicy};
    ///
    /// let locker = lockhog::Locker::connect("mem:").await?;
    /// let _held = locker.lock("report").try_acquire().await?;
    /// let three = RetryPolicy::default().max_attempts(3);
    /// match locker.lock("report").retry(three).wait().await {
    ///     Err(Error::TimedOut { attempts, .. }) => assert_eq!(attempts, 3),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// The cap set by [`RetryPolicy::max_attempts`], if any.
    pub fn attempt_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    /// Checks the policy's numbers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] when `initial` is zero or above `max`, the multiplier is below
    /// 1.0, the jitter is outside 0.0 to 1.0, or the attempt cap is zero.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidOption {
                reason: format!("retry policy: {reason}"),
            })
        };
        if self.initial.is_zero() {
            return bad("the initial wait must be above zero");
        }
        if self.initial > self.max {
            return bad("the initial wait must not exceed the longest wait");
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return bad("the multiplier must be a finite number of at least 1.0");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad("the jitter must be between 0.0 and 1.0");
        }
        if self.max_attempts == Some(0) {
            return bad("at most 0 attempts would never acquire: the cap is at least 1");
        }
        Ok(())
    }

    /// The wait before attempt number `attempt + 1` (the first retry is `attempt == 1`).
    pub fn delay(&self, attempt: u32) -> Duration {
        let grown =
            self.initial.as_secs_f64() * self.multiplier.powi(attempt.saturating_sub(1) as i32);
        let capped = grown.min(self.max.as_secs_f64());
        let shortened = capped * (1.0 - self.jitter * random_unit());
        Duration::from_secs_f64(shortened.max(0.0))
    }
}

/// A number in [0, 1) that differs between calls and threads; jitter needs no better.
fn random_unit() -> f64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
    }
    STATE.with(|s| {
        // xorshift64
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// What a backend is asked for on each acquire.
#[derive(Clone, Debug)]
pub struct AcquireOptions {
    /// The lease's time to live, for backends with leases; `None` means the backend's default.
    pub ttl: Option<Duration>,
    /// The backoff for backends that poll.
    pub retry: RetryPolicy,
    /// A shared (reader) lock: many shared holders at once, none while an exclusive one
    /// holds. Only asked of backends whose [`Capabilities::shared`](crate::Capabilities::shared)
    /// is true.
    pub shared: bool,
    /// Waiters must acquire in the order they asked. Only asked of backends whose
    /// [`Capabilities::fair`](crate::Capabilities::fair) is true.
    pub fair: bool,
    /// A lock acquired longer ago than this counts as free to this request, even while its
    /// holder lives. Only asked of backends whose
    /// [`Capabilities::steal_after`](crate::Capabilities::steal_after) is true.
    pub steal_after: Option<Duration>,
    /// Draw a fencing token (true unless the caller opted out with
    /// [`LockRequest::no_fencing`](crate::LockRequest::no_fencing) or `?fencing=off`). When
    /// false the backend skips its counter and returns no token, unless the token comes free
    /// with the lock ([`Capabilities::free_fencing`](crate::Capabilities::free_fencing)).
    pub fencing: bool,
}

/// `ttl`, refused when zero: a lease must outlive its own renewal.
pub(crate) fn validate_ttl(ttl: Duration) -> Result<Duration> {
    if ttl.is_zero() {
        return Err(Error::InvalidOption {
            reason: "a lease ttl must be above zero".into(),
        });
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::parse_duration;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default()
            .initial(Duration::from_millis(10))
            .max(Duration::from_millis(40))
            .jitter(0.0);
        assert_eq!(p.delay(1), Duration::from_millis(10));
        assert_eq!(p.delay(2), Duration::from_millis(20));
        assert_eq!(p.delay(9), Duration::from_millis(40));
        let j = p.jitter(0.5);
        for _ in 0..100 {
            let d = j.delay(3);
            assert!(d <= Duration::from_millis(40) && d >= Duration::from_millis(20));
        }
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(RetryPolicy::default()
            .initial(Duration::ZERO)
            .validate()
            .is_err());
        assert!(RetryPolicy::default().multiplier(0.5).validate().is_err());
        assert!(RetryPolicy::default().jitter(2.0).validate().is_err());
        assert!(RetryPolicy::default()
            .initial(Duration::from_secs(2))
            .max(Duration::from_secs(1))
            .validate()
            .is_err());
        assert!(RetryPolicy::default().max_attempts(0).validate().is_err());
        assert!(RetryPolicy::default().max_attempts(1).validate().is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "x", "nan", "inf", "-0.5", "1e99"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
