//! The journal of a torture run: every grant, write, section end, kill and fault, stamped by
//! the harness on one clock.
//!
//! # The clock
//!
//! Workers are separate processes, so their own clocks are never read: each event is stamped
//! by the harness (nanoseconds of `std::time::Instant`, CLOCK_MONOTONIC, since the run
//! started) when the harness handles the worker's message. A worker sends `enter` after its
//! acquire returned and waits for the answer before its critical section starts; it sends
//! `exit` and waits for the answer before it releases. So every stamped section lies inside
//! the time its worker really held the lock: an overlap of two stamped sections is an overlap
//! of two real holds, never an artefact of message delays.

/// Nanoseconds since the run started, on the harness's clock.
pub type Stamp = u64;

/// What a worker's release reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// `release()` returned `Ok(true)`: the lock was still ours up to the release.
    Ours,
    /// `release()` returned `Ok(false)`: the lock had been lost (lease ran out, connection died).
    Lost,
    /// `release()` failed: the store could not be told (a cut connection, a restarting server).
    Failed,
}

impl Release {
    /// The word a worker sends for it.
    pub fn word(self) -> &'static str {
        match self {
            Release::Ours => "ours",
            Release::Lost => "lost",
            Release::Failed => "failed",
        }
    }

    /// The inverse of [`Release::word`].
    pub fn from_word(word: &str) -> Option<Release> {
        match word {
            "ours" => Some(Release::Ours),
            "lost" => Some(Release::Lost),
            "failed" => Some(Release::Failed),
            _ => None,
        }
    }
}

/// One journaled event. `worker` is the harness's id of one worker process (a respawned
/// worker gets a new id), `lock` the index of the lock (`torture-<lock>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A grant: the worker holds `lock` with `token` and enters its critical section.
    Enter {
        worker: u32,
        pid: u32,
        lock: u32,
        token: u64,
        at: Stamp,
    },
    /// A write to the fenced resource, and the fence's verdict.
    Write {
        worker: u32,
        lock: u32,
        token: u64,
        at: Stamp,
        accepted: bool,
    },
    /// The worker left its critical section (it releases after this).
    Exit { worker: u32, at: Stamp },
    /// What the worker's release of its last section reported.
    Released { worker: u32, outcome: Release },
    /// The harness SIGKILLed the worker: a section it was in ended here.
    Killed { worker: u32, at: Stamp },
    /// The worker's connection to the harness ended with no `exit` for its open section (a
    /// crash nobody asked for): the section is taken to end here.
    Gone { worker: u32, at: Stamp },
}

/// The faults the injector knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum FaultKind {
    /// SIGKILL a worker that holds a lock, and start another.
    Kill,
    /// SIGSTOP a holder past its lease, then SIGCONT it.
    Pause,
    /// Restart the server.
    Restart,
    /// Close both sides of every proxied connection.
    Cut,
    /// Sections run as commands of `lockhog run`; SIGKILL the `run` of one inside its section.
    KillRun,
}

impl FaultKind {
    /// The name used on the command line and in output.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
            FaultKind::Cut => "cut",
            FaultKind::KillRun => "kill-run",
        }
    }
}

/// The events of a run, in the order the harness stamped them.
#[derive(Debug)]
pub struct Journal {
    start: std::time::Instant,
    events: Vec<Event>,
}

impl Journal {
    /// An empty journal whose clock starts now.
    pub fn new() -> Journal {
        Journal {
            start: std::time::Instant::now(),
            events: Vec::new(),
        }
    }

    /// The harness's clock.
    pub fn now(&self) -> Stamp {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Appends `event`.
    pub fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    /// The events so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}
