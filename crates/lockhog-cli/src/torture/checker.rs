//! The checker: turns a journal into critical sections and counts what went wrong.
//!
//! - **violations**: sections of a lock into which another section of the same lock entered
//!   (overlapping in time), each counted once however many entered: a holder paused past its
//!   lease while a hundred sections ran is one violation, not a hundred. A section runs from
//!   its `enter` to its `exit`; a section whose worker was killed ends at the kill, one whose
//!   worker vanished ends when its connection did, one still open when the journal ends ends
//!   there.
//! - **token_regressions**: grants (sections, in the order they entered) whose token is not
//!   greater than the token of every earlier grant of the same lock.
//! - **fenced_rejections**: writes the fence refused.
//!
//! Each violation (A, entered first, and the sections B that entered during it) is
//! classified further:
//! - **lost**: A's release reported the lock no longer its own (or could not reach the store):
//!   A's lease ran out or its connection died under it, and B was granted the lock rightly.
//!   This is the paused client of Martin Kleppmann's article "How to do distributed
//!   locking"; fencing is the defence.
//! - **held**: A never reported a loss (its release said the lock was still its own, or A
//!   was killed before releasing): the store granted B a lock that A held. No fault excuses
//!   that.
//! - **unfenced**: a *stale write* was accepted during it: a write of A accepted after a write
//!   of some B (a newer holder) had been accepted. The fence exists to refuse exactly that; it
//!   can be accepted only when B's token is not above A's.

use std::collections::{BTreeMap, HashMap};

use super::journal::{Event, Release, Stamp};

/// How a section ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The worker sent `exit`.
    Exit,
    /// The harness killed the worker.
    Killed,
    /// The worker's connection ended without `exit`.
    Gone,
    /// Still open when the journal ended.
    Open,
}

/// One critical section, rebuilt from the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub worker: u32,
    pub pid: u32,
    pub lock: u32,
    pub token: u64,
    pub enter: Stamp,
    pub exit: Stamp,
    pub end: End,
    /// (when, accepted) of each write.
    pub writes: Vec<(Stamp, bool)>,
    pub release: Option<Release>,
}

/// What the checker found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub sections: u64,
    pub violations: u64,
    pub token_regressions: u64,
    pub fenced_rejections: u64,
    /// Violations whose intruded holder had lost the lock (see the module docs).
    pub lost_overlaps: u64,
    /// Violations whose intruded holder never reported a loss.
    pub held_overlaps: u64,
    /// Violations during which a stale write was accepted.
    pub unfenced_overlaps: u64,
    /// Sections ended by a kill.
    pub killed_sections: u64,
    /// Sections whose worker vanished without being killed.
    pub gone_sections: u64,
}

/// Rebuilds the sections of `events`, sorted by lock then enter; sections still open end at
/// `end`.
pub fn sections(events: &[Event], end: Stamp) -> Vec<Section> {
    let mut done: Vec<Section> = Vec::new();
    let mut open: HashMap<u32, Section> = HashMap::new();
    // The index in `done` of each worker's last closed section, for its `released` report.
    let mut last: HashMap<u32, usize> = HashMap::new();
    for event in events {
        match *event {
            Event::Enter {
                worker,
                pid,
                lock,
                token,
                at,
            } => {
                // A worker enters again only after leaving; should it not have, its section
                // ends where the next begins.
                close(&mut open, &mut done, &mut last, worker, at, End::Exit);
                let section = Section {
                    worker,
                    pid,
                    lock,
                    token,
                    enter: at,
                    exit: at,
                    end: End::Open,
                    writes: Vec::new(),
                    release: None,
                };
                open.insert(worker, section);
            }
            Event::Write {
                worker,
                at,
                accepted,
                ..
            } => {
                if let Some(s) = open.get_mut(&worker) {
                    s.writes.push((at, accepted));
                }
            }
            Event::Exit { worker, at } => {
                close(&mut open, &mut done, &mut last, worker, at, End::Exit)
            }
            Event::Killed { worker, at } => {
                close(&mut open, &mut done, &mut last, worker, at, End::Killed)
            }
            Event::Gone { worker, at } => {
                close(&mut open, &mut done, &mut last, worker, at, End::Gone)
            }
            Event::Released { worker, outcome } => {
                if let Some(&i) = last.get(&worker) {
                    done[i].release.get_or_insert(outcome);
                }
            }
        }
    }
    for (_, mut s) in open {
        s.exit = end.max(s.enter);
        done.push(s);
    }
    done.sort_by_key(|s| (s.lock, s.enter));
    done
}

fn close(
    open: &mut HashMap<u32, Section>,
    done: &mut Vec<Section>,
    last: &mut HashMap<u32, usize>,
    worker: u32,
    at: Stamp,
    how: End,
) {
    if let Some(mut s) = open.remove(&worker) {
        s.exit = at;
        s.end = how;
        last.insert(worker, done.len());
        done.push(s);
    }
}

/// Checks the journal `events`; sections still open end at `end`.
pub fn check(events: &[Event], end: Stamp) -> Report {
    let all = sections(events, end);
    let mut report = Report {
        sections: all.len() as u64,
        ..Report::default()
    };
    let mut by_lock: BTreeMap<u32, Vec<&Section>> = BTreeMap::new();
    for s in &all {
        by_lock.entry(s.lock).or_default().push(s);
        report.fenced_rejections += s.writes.iter().filter(|(_, ok)| !ok).count() as u64;
        match s.end {
            End::Killed => report.killed_sections += 1,
            End::Gone => report.gone_sections += 1,
            End::Exit | End::Open => {}
        }
    }
    for list in by_lock.values_mut() {
        list.sort_by_key(|s| s.enter);
        let mut max_token: Option<u64> = None;
        // Sections still running, by index in `list`, and what was found inside each.
        let mut active: Vec<usize> = Vec::new();
        let mut intruded = vec![false; list.len()];
        let mut unfenced = vec![false; list.len()];
        for (i, &s) in list.iter().enumerate() {
            if max_token.is_some_and(|m| s.token <= m) {
                report.token_regressions += 1;
            }
            max_token = Some(max_token.map_or(s.token, |m| m.max(s.token)));
            active.retain(|&a| list[a].exit > s.enter);
            for &a in &active {
                intruded[a] = true;
                unfenced[a] |= stale_write_accepted(list[a], s);
            }
            active.push(i);
        }
        for (i, &a) in list.iter().enumerate() {
            if !intruded[i] {
                continue;
            }
            report.violations += 1;
            // A holder that never reported a loss (it was killed, or its release said the
            // lock was still its own) held the lock while another entered.
            match a.release {
                Some(Release::Lost | Release::Failed) => report.lost_overlaps += 1,
                Some(Release::Ours) | None => report.held_overlaps += 1,
            }
            report.unfenced_overlaps += u64::from(unfenced[i]);
        }
    }
    report
}

/// Whether `older` (entered first) had a write accepted after a write of `newer` was accepted.
fn stale_write_accepted(older: &Section, newer: &Section) -> bool {
    let Some(first_new) = newer
        .writes
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(at, _)| *at)
        .min()
    else {
        return false;
    };
    older.writes.iter().any(|&(at, ok)| ok && at > first_new)
}

/// What the run is held to.
#[derive(Clone, Copy, Debug)]
pub struct Promise {
    /// The lock dies with its holder's connection or file descriptor (file, postgres, mysql):
    /// no lease to run out under a paused holder.
    pub connection_bound: bool,
    /// The faults take connections away from living holders (`cut`, `restart`).
    pub connection_faults: bool,
}

/// Why the report breaks the promise; empty when it keeps it.
///
/// - every backend: no token regression; no unfenced overlap (a stale write accepted); no
///   overlap whose earlier holder still held the lock by its own release; no worker that died
///   unasked; at least one section;
/// - connection-bound backends, under faults that leave connections alone (`kill`, `pause`):
///   no overlap at all. Under `cut` and `restart` a living holder can lose its connection,
///   and with it the lock, inside its section: such overlaps are judged as on lease backends.
pub fn judge(r: &Report, p: Promise) -> Vec<String> {
    let mut why = Vec::new();
    if r.sections == 0 {
        why.push("no critical section ran".to_string());
    }
    if r.token_regressions > 0 {
        why.push(format!(
            "{} grants had a token not above an earlier grant's",
            r.token_regressions
        ));
    }
    if r.unfenced_overlaps > 0 {
        why.push(format!(
            "{} overlaps let a stale write through the fence",
            r.unfenced_overlaps
        ));
    }
    if r.held_overlaps > 0 {
        why.push(format!(
            "{} overlaps began while the earlier holder still held the lock",
            r.held_overlaps
        ));
    }
    if p.connection_bound && !p.connection_faults && r.violations > 0 {
        why.push(format!(
            "{} overlapping sections on a backend whose lock dies only with its holder",
            r.violations
        ));
    }
    if r.gone_sections > 0 {
        why.push(format!(
            "{} workers died inside a section without being killed",
            r.gone_sections
        ));
    }
    why
}
