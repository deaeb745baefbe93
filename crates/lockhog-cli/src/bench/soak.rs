//! `lockhog bench --soak`: hold many locks for a long time, with their renewals, and check that
//! nothing leaks and nothing is lost — this process's resident memory, open descriptors and
//! sockets (its server connections) sampled from `/proc/self` at the start, at every
//! `--soak-sample` and at the end; every held lock still ours at the end, both by its lost
//! notice and by `status` asked over a fresh connection.
//!
//! `scripts/soak` runs it on each lease backend beside another process that takes and
//! releases other locks.

use std::time::{Duration, Instant};

use lockhog::{LockState, Locker};
use serde_json::{json, Value};

use super::plan::{scheme_of, BenchArgs};
use super::scale::{acquire_many, release_many};
use crate::exit::{Failure, UNAVAILABLE};

/// Growth allowed from the first sample to the last: resident memory may grow by
/// [`RSS_GROWTH`] of itself plus [`RSS_SLACK_KIB`] (allocator pools settle after the fill),
/// descriptors and sockets by [`FD_SLACK`] (a connection replaced by a reconnect).
pub const RSS_GROWTH: f64 = 0.25;
pub const RSS_SLACK_KIB: u64 = 16 * 1024;
pub const FD_SLACK: usize = 8;

/// The names of the held locks, before their number: apart from the bench's own, so that a
/// soak and a bench can run on one backend at once.
const HELD_PREFIX: &str = "lockhog-soak/held-";

/// Names asked in one `status` call at the end.
const STATUS_CHUNK: usize = 500;

/// What the process uses at one moment.
#[derive(Debug, Clone)]
pub struct Usage {
    /// Since the held set was complete.
    pub at: Duration,
    pub rss_kib: u64,
    pub fds: usize,
    pub sockets: usize,
    /// Held locks reported lost so far.
    pub lost: usize,
}

/// The results of a soak.
#[derive(Debug)]
pub struct SoakReport {
    pub backend: String,
    pub scheme: String,
    pub held: usize,
    pub duration: Duration,
    pub fill: Duration,
    pub samples: Vec<Usage>,
    /// Held locks that `status`, over a fresh connection, did not report held at the end.
    pub not_held: usize,
    /// Why the `status` check could not be made, if it could not.
    pub status_error: Option<String>,
}

/// Reads this process's resident memory, descriptors and sockets.
fn usage(at: Duration, lost: usize) -> Usage {
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let (mut fds, mut sockets) = (0, 0);
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            fds += 1;
            if std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
            {
                sockets += 1;
            }
        }
    }
    Usage {
        at,
        rss_kib,
        fds,
        sockets,
        lost,
    }
}

/// Holds `--soak-held` locks for `--duration`, sampling as it goes.
pub async fn run(url: &str, args: &BenchArgs) -> Result<SoakReport, Failure> {
    let locker = crate::lock::connect(&crate::args::BackendArgs {
        url: Some(url.to_string()),
    })
    .await?;
    let n = args.soak_held as usize;
    let started = Instant::now();
    let mut held = Vec::with_capacity(n);
    if let Err(why) =
        acquire_many(&locker, &mut held, HELD_PREFIX, 0..n, args.scale_fill_limit).await
    {
        let count = held.len();
        release_many(held).await;
        return Err(Failure::new(
            UNAVAILABLE,
            format!("soak: held {count} of {n}: {why}"),
        ));
    }
    let fill = started.elapsed();
    let holding = Instant::now();
    let lost = |held: &[lockhog::LockGuard]| held.iter().filter(|g| g.is_lost()).count();
    let mut samples = vec![usage(Duration::ZERO, lost(&held))];
    say(n, &samples[0]);
    let end = holding + args.duration;
    loop {
        let next = (holding + args.soak_sample * samples.len() as u32).min(end);
        // Pacing of the samples, not a wait for a state: the locks are held meanwhile.
        tokio::time::sleep_until(next.into()).await;
        let sample = usage(holding.elapsed(), lost(&held));
        say(n, &sample);
        samples.push(sample);
        if next >= end {
            break;
        }
    }
    let names: Vec<String> = (0..n).map(|i| format!("{HELD_PREFIX}{i}")).collect();
    let (not_held, status_error) = match still_held(url, &names).await {
        Ok(missing) => (missing, None),
        Err(e) => (0, Some(e)),
    };
    release_many(held).await;
    Ok(SoakReport {
        backend: locker.url().to_string(),
        scheme: scheme_of(url),
        held: n,
        duration: args.duration,
        fill,
        samples,
        not_held,
        status_error,
    })
}

/// A sample's line on stderr, for the person who runs a half-hour soak.
fn say(held: usize, u: &Usage) {
    eprintln!(
        "soak: {:>6.0} s: {held} held, {} lost, VmRSS {} KiB, {} descriptors, {} sockets",
        u.at.as_secs_f64(),
        u.lost,
        u.rss_kib,
        u.fds,
        u.sockets
    );
}

/// How many of `names` a fresh connection's `status` does not see held.
async fn still_held(url: &str, names: &[String]) -> Result<usize, String> {
    let fresh = Locker::connect(url).await.map_err(|e| e.to_string())?;
    let mut missing = 0;
    for chunk in names.chunks(STATUS_CHUNK) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let states = fresh.status(&chunk).await.map_err(|e| e.to_string())?;
        missing += chunk.len().saturating_sub(states.len());
        missing += states.iter().filter(|s| s.state != LockState::Held).count();
    }
    Ok(missing)
}

impl SoakReport {
    /// Everything that makes the soak fail: a lost lock, a lock `status` does not see held,
    /// growth beyond the thresholds.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) else {
            return vec!["no samples".into()];
        };
        if last.lost > 0 {
            out.push(format!("{} held locks were reported lost", last.lost));
        }
        if self.not_held > 0 {
            out.push(format!(
                "status over a fresh connection did not see {} held locks held",
                self.not_held
            ));
        }
        if let Some(e) = &self.status_error {
            out.push(format!("the status check failed: {e}"));
        }
        let rss_bound = (first.rss_kib as f64 * (1.0 + RSS_GROWTH)) as u64 + RSS_SLACK_KIB;
        if last.rss_kib > rss_bound {
            out.push(format!(
                "resident memory grew from {} to {} KiB (bound {rss_bound})",
                first.rss_kib, last.rss_kib
            ));
        }
        for (what, a, b) in [
            ("descriptors", first.fds, last.fds),
            ("sockets", first.sockets, last.sockets),
        ] {
            if b > a + FD_SLACK {
                out.push(format!(
                    "{what} grew from {a} to {b} (bound {})",
                    a + FD_SLACK
                ));
            }
        }
        out
    }

    /// `{mode: "soak", backend, scheme, held, duration_s, fill_s, samples: [{at_s, rss_kib,
    /// fds, sockets, lost}], not_held, status_error, problems, ok}`.
    pub fn to_json(&self) -> Value {
        let samples: Vec<Value> = self
            .samples
            .iter()
            .map(|u| {
                json!({"at_s": super::report::round(u.at.as_secs_f64(), 1), "rss_kib": u.rss_kib, "fds": u.fds,
                       "sockets": u.sockets, "lost": u.lost})
            })
            .collect();
        let problems = self.problems();
        json!({
            "mode": "soak",
            "backend": self.backend,
            "scheme": self.scheme,
            "version": env!("CARGO_PKG_VERSION"),
            "held": self.held,
            "duration_s": self.duration.as_secs_f64(),
            "fill_s": self.fill.as_secs_f64(),
            "samples": samples,
            "not_held": self.not_held,
            "status_error": self.status_error,
            "ok": problems.is_empty(),
            "problems": problems,
        })
    }

    /// The first and last samples, and the verdict.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "soak of {}: {} locks held for {:.0} s (acquired in {:.1} s)\n",
            self.backend,
            self.held,
            self.duration.as_secs_f64(),
            self.fill.as_secs_f64()
        );
        for (label, u) in [
            ("start", self.samples.first()),
            ("end", self.samples.last()),
        ] {
            if let Some(u) = u {
                out += &format!(
                    "  {label:<5} VmRSS {} KiB, {} descriptors, {} sockets, {} lost\n",
                    u.rss_kib, u.fds, u.sockets, u.lost
                );
            }
        }
        out += &format!("  status at the end: {} not held\n", self.not_held);
        let problems = self.problems();
        if problems.is_empty() {
            out += "  ok\n";
        }
        for p in problems {
            out += &format!("  FAILED: {p}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(first: (u64, usize), last: (u64, usize, usize)) -> SoakReport {
        let at = |rss_kib, fds, lost| Usage {
            at: Duration::ZERO,
            rss_kib,
            fds,
            sockets: 2,
            lost,
        };
        SoakReport {
            backend: "redis://x".into(),
            scheme: "redis".into(),
            held: 10,
            duration: Duration::from_secs(1),
            fill: Duration::ZERO,
            samples: vec![at(first.0, first.1, 0), at(last.0, last.1, last.2)],
            not_held: 0,
            status_error: None,
        }
    }

    #[test]
    fn growth_and_losses_fail_the_soak() {
        assert!(report((100_000, 20), (110_000, 22, 0))
            .problems()
            .is_empty());
        let grown = report((100_000, 20), (200_000, 22, 0)).problems();
        assert!(grown[0].contains("resident memory"), "{grown:?}");
        let leaked = report((100_000, 20), (100_000, 40, 0)).problems();
        assert!(leaked[0].contains("descriptors"), "{leaked:?}");
        let lost = report((100_000, 20), (100_000, 20, 3)).problems();
        assert!(lost[0].contains("3 held locks"), "{lost:?}");
    }
}
