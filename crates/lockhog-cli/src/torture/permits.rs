//! `torture --permits N`: the count of holders of each semaphore at once.
//!
//! Each worker takes a permit of the semaphore `torture-<run>-S` and journals its section under
//! the lock id `S * N + slot` (the slot is the permit it got), so the checker's usual analysis
//! holds each permit to the exclusion, token order and fencing of a lock. This adds the
//! semaphore's own promise: at most N sections of one semaphore at once. A section that
//! enters while N others of its semaphore are inside is an **over-admission**; it is **held**
//! when none of those N had lost its permit by its own release (a paused holder whose lease
//! ran out makes room rightly, as on a lock).

use std::collections::BTreeMap;

use super::checker::Section;
use super::journal::Release;

/// What the count found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PermitReport {
    /// The most sections of one semaphore inside at once.
    pub max_holders: u64,
    /// Sections that entered while N of their semaphore were inside.
    pub over_admissions: u64,
    /// Over-admissions while every one of the N inside still held its permit.
    pub held_over_admissions: u64,
}

/// Counts the holders of each semaphore in `sections` (lock ids `semaphore * permits + slot`).
pub fn count(sections: &[Section], permits: u32) -> PermitReport {
    let permits = permits.max(1);
    let mut by_semaphore: BTreeMap<u32, Vec<&Section>> = BTreeMap::new();
    for s in sections {
        by_semaphore.entry(s.lock / permits).or_default().push(s);
    }
    let mut report = PermitReport::default();
    for list in by_semaphore.values_mut() {
        list.sort_by_key(|s| s.enter);
        let mut active: Vec<&Section> = Vec::new();
        for &s in list.iter() {
            active.retain(|a| a.exit > s.enter);
            if active.len() >= permits as usize {
                report.over_admissions += 1;
                let none_lost = active
                    .iter()
                    .all(|a| matches!(a.release, Some(Release::Ours) | None));
                report.held_over_admissions += u64::from(none_lost);
            }
            active.push(s);
            report.max_holders = report.max_holders.max(active.len() as u64);
        }
    }
    report
}

/// Why the count breaks the promise; empty when it keeps it. `strict` for backends whose
/// permits die only with their holder, under faults that leave connections alone.
pub fn judge(r: &PermitReport, permits: u32, strict: bool) -> Vec<String> {
    let mut why = Vec::new();
    if r.held_over_admissions > 0 {
        why.push(format!(
            "{} sections entered a {permits}-permit semaphore while {permits} holders still held \
             their permits",
            r.held_over_admissions
        ));
    }
    if strict && r.over_admissions > 0 {
        why.push(format!(
            "{} sections entered a {permits}-permit semaphore already full, on a backend whose \
             permits die only with their holder",
            r.over_admissions
        ));
    }
    why
}
