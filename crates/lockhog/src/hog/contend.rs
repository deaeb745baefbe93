//! The deterministic race: [`contend`] runs n attempts at once and lets the first to acquire
//! hold until every other attempt has returned, so "n requests at once" has exactly one winner
//! every time, without sleeps.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::error::panic_message;
use super::ContendError;

/// The timeout of [`contend`] unless [`ContendOptions::timeout`] says otherwise.
pub const DEFAULT_CONTEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of a race: [`ContendOptions::contend`] and [`ContendOptions::contend_async`] run one
/// with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContendOptions {
    pub(crate) timeout: Duration,
}

impl Default for ContendOptions {
    fn default() -> Self {
        ContendOptions {
            timeout: DEFAULT_CONTEND_TIMEOUT,
        }
    }
}

impl ContendOptions {
    /// The defaults: a 10 s timeout.
    pub fn new() -> Self {
        Self::default()
    }
    /// How long every attempt together may take; past it, [`ContendError::TimedOut`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[derive(Debug, Default)]
struct State {
    /// Attempts that are past the start line.
    arrived: usize,
    /// Abandon the start (a thread could not be started).
    abort: bool,
    /// Attempts that have returned or are holding (each counted once).
    settled: usize,
    /// Which attempts have returned.
    returned: Vec<bool>,
    /// The attempts still running when a holder gave up at the deadline.
    gave_up: Option<Vec<usize>>,
}

#[derive(Debug)]
struct Shared {
    n: usize,
    deadline: Instant,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn settle(&self, index: usize, held: bool) {
        let mut state = self.state();
        if !held {
            state.settled += 1;
        }
        state.returned[index] = true;
        drop(state);
        self.changed.notify_all();
    }
}

/// What each attempt of [`contend`] gets: its index, and the means for the winner to hold.
#[derive(Debug)]
pub struct Contender {
    index: usize,
    shared: Arc<Shared>,
    held: AtomicBool,
}

impl Contender {
    /// This attempt's index, 0 to n − 1: its place in the returned `Vec`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many attempts run.
    pub fn n(&self) -> usize {
        self.shared.n
    }

    /// Called by the attempt that acquired: blocks until every other attempt has returned (or
    /// is holding too, which means the lock let two in: both then go on, and the outcomes
    /// show it). Returns `false` when the timeout ran out first; [`contend`] then fails with
    /// [`ContendError::TimedOut`].
    pub fn hold_until_others_done(&self) -> bool {
        if self.held.swap(true, Ordering::SeqCst) {
            return true;
        }
        let mut state = self.shared.state();
        state.settled += 1;
        self.shared.changed.notify_all();
        while state.settled < self.shared.n {
            let left = self
                .shared
                .deadline
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(index = self.index, "contend: holder gave up at the timeout");
                let pending = (0..self.shared.n)
                    .filter(|i| *i != self.index && !state.returned[*i])
                    .collect();
                state.gave_up.get_or_insert(pending);
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// Runs `attempt` n times at once, on n threads that start together, and returns every
/// outcome, in index order.
///
/// Each attempt tries the lock once (or waits with a bound), through its own connection or
/// transaction if it likes (it runs on its own thread). The attempt that acquires calls
/// [`Contender::hold_until_others_done`] before releasing: every other attempt then finds
/// the lock held, so the race has one winner every time.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// static PAY_LOCK: Mutex<()> = Mutex::new(());
///
/// let outcomes = lockhog::hog::contend(8, |ctx| match PAY_LOCK.try_lock() {
///     Ok(_guard) => {
///         ctx.hold_until_others_done();
///         "paid"
///     }
///     Err(_) => "already paying",
/// })?;
/// assert_eq!(outcomes.iter().filter(|o| **o == "paid").count(), 1);
/// assert_eq!(outcomes.iter().filter(|o| **o == "already paying").count(), 7);
/// # Ok::<(), lockhog::hog::ContendError>(())
/// ```
///
/// # Errors
///
/// [`ContendError::TimedOut`] when not every attempt returned within 10 s (see
/// [`ContendOptions::contend`]); [`ContendError::AttemptPanicked`]; [`ContendError::NoAttempts`] for
/// `n == 0`; [`ContendError::Spawn`].
pub fn contend<T, F>(n: usize, attempt: F) -> Result<Vec<T>, ContendError>
where
    F: Fn(&Contender) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    ContendOptions::default().contend(n, attempt)
}

impl ContendOptions {
    /// [`contend`] with this timeout.
    ///
    /// # Errors
    ///
    /// As [`contend`].
    pub fn contend<T, F>(self, n: usize, attempt: F) -> Result<Vec<T>, ContendError>
    where
        F: Fn(&Contender) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        if n == 0 {
            return Err(ContendError::NoAttempts);
        }
        let shared = Arc::new(Shared {
            n,
            deadline: Instant::now() + self.timeout,
            state: Mutex::new(State {
                returned: vec![false; n],
                ..State::default()
            }),
            changed: Condvar::new(),
        });
        let attempt = Arc::new(attempt);
        let (tx, rx) = mpsc::channel();
        for index in 0..n {
            let (s, attempt, tx) = (shared.clone(), attempt.clone(), tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("lockhog-contend-{index}"))
                .spawn(move || {
                    let shared = s;
                    {
                        // The start line: everyone arrives, then everyone goes.
                        let mut state = shared.state();
                        state.arrived += 1;
                        shared.changed.notify_all();
                        while state.arrived < shared.n && !state.abort {
                            state = shared
                                .changed
                                .wait(state)
                                .unwrap_or_else(|p| p.into_inner());
                        }
                        if state.abort {
                            return;
                        }
                    }
                    let ctx = Contender {
                        index,
                        shared: shared.clone(),
                        held: AtomicBool::new(false),
                    };
                    let outcome = catch_unwind(AssertUnwindSafe(|| attempt(&ctx)));
                    shared.settle(index, ctx.held.load(Ordering::SeqCst));
                    let _ = tx.send((index, outcome));
                });
            if let Err(e) = spawned {
                shared.state().abort = true;
                shared.changed.notify_all();
                return Err(ContendError::Spawn(e));
            }
        }
        drop(tx);
        let mut outcomes: Vec<Option<T>> = (0..n).map(|_| None).collect();
        for _ in 0..n {
            let left = shared.deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((index, Ok(value))) => outcomes[index] = Some(value),
                Ok((index, Err(payload))) => {
                    return Err(ContendError::AttemptPanicked {
                        index,
                        message: panic_message(&*payload),
                    })
                }
                Err(_) => {
                    return Err(ContendError::TimedOut {
                        timeout: self.timeout,
                        n,
                        pending: (0..n).filter(|i| outcomes[*i].is_none()).collect(),
                    })
                }
            }
        }
        if let Some(pending) = shared.state().gave_up.take() {
            return Err(ContendError::TimedOut {
                timeout: self.timeout,
                n,
                pending,
            });
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every outcome"))
            .collect())
    }
}
