//! What `lockhog bench` prints: a few lines for people, or one JSON object with `--json`.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::stats::{micros, millis};
use super::workloads::{Contended, Handoff, Uncontended, SEMAPHORE_CLIENTS, SEMAPHORE_PERMITS};

/// The results of one run; phases that did not run (a floor without a blocking wait) are
/// `None` and print as `null`.
#[derive(Debug)]
pub struct Report {
    /// `lockhog`, or `floor` for the backend's own commands without lockhog.
    pub mode: &'static str,
    /// The backend URL, password redacted.
    pub backend: String,
    pub scheme: String,
    pub duration: Duration,
    pub clients: usize,
    pub locks: usize,
    /// What the floor ran, in the backend's own terms.
    pub commands: Option<String>,
    pub uncontended: Option<Uncontended>,
    pub handoff: Option<Handoff>,
    pub contended: Option<Contended>,
    /// The semaphore phase, on backends with semaphores.
    pub semaphore: Option<Contended>,
    /// A second floor with what it ran: for `file`, the named-lock floor (open by name, lock,
    /// unlock, close), beside the open-descriptor one.
    pub named_floor: Option<(&'static str, Uncontended)>,
}

/// Microseconds with one decimal, `null` for none.
pub(super) fn us(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round(micros(d), 1)))
}

/// Milliseconds with three decimals, `null` for none.
pub(super) fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round(millis(d), 3)))
}

/// `v` rounded to `digits` decimals.
pub(super) fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

impl Report {
    /// One flat JSON object: `uncontended_cycles_per_s`, `uncontended_p50_us`,
    /// `uncontended_p99_us`, `handoff_p50_us`, `handoff_p99_us`, `contended_cycles_per_s`,
    /// `median_wait_ms`, `max_wait_ms` and the run's parameters.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("mode".into(), json!(self.mode));
        o.insert("backend".into(), json!(self.backend));
        o.insert("scheme".into(), json!(self.scheme));
        o.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        o.insert("duration_s".into(), json!(self.duration.as_secs_f64()));
        o.insert("clients".into(), json!(self.clients));
        o.insert("locks".into(), json!(self.locks));
        o.insert("commands".into(), json!(self.commands));
        let u = self.uncontended.as_ref();
        o.insert("uncontended_cycles".into(), json!(u.map(|u| u.cycles)));
        o.insert(
            "uncontended_cycles_per_s".into(),
            json!(u.map(|u| round(u.rate(), 1))),
        );
        o.insert(
            "uncontended_p50_us".into(),
            us(u.and_then(|u| u.cycle.p50())),
        );
        o.insert(
            "uncontended_p99_us".into(),
            us(u.and_then(|u| u.cycle.p99())),
        );
        let h = self.handoff.as_ref();
        o.insert("handoff_rounds".into(), json!(h.map(|h| h.latency.len())));
        o.insert("handoff_p50_us".into(), us(h.and_then(|h| h.latency.p50())));
        o.insert("handoff_p99_us".into(), us(h.and_then(|h| h.latency.p99())));
        o.insert("handoff_max_us".into(), us(h.and_then(|h| h.latency.max())));
        o.insert("handoff_park_ms".into(), ms(h.map(|h| h.park)));
        let c = self.contended.as_ref();
        o.insert("contended_cycles".into(), json!(c.map(|c| c.cycles)));
        o.insert(
            "contended_cycles_per_s".into(),
            json!(c.map(|c| round(c.rate(), 1))),
        );
        o.insert("median_wait_ms".into(), ms(c.and_then(|c| c.waits.p50())));
        o.insert("p99_wait_ms".into(), ms(c.and_then(|c| c.waits.p99())));
        o.insert("max_wait_ms".into(), ms(c.and_then(|c| c.waits.max())));
        o.insert(
            "client_cycles_min".into(),
            json!(c.and_then(|c| c.per_client.iter().min())),
        );
        o.insert(
            "client_cycles_max".into(),
            json!(c.and_then(|c| c.per_client.iter().max())),
        );
        let s = self.semaphore.as_ref();
        o.insert(
            "semaphore_clients".into(),
            json!(s.map(|_| SEMAPHORE_CLIENTS)),
        );
        o.insert(
            "semaphore_permits".into(),
            json!(s.map(|_| SEMAPHORE_PERMITS)),
        );
        o.insert("semaphore_cycles".into(), json!(s.map(|s| s.cycles)));
        o.insert(
            "semaphore_cycles_per_s".into(),
            json!(s.map(|s| round(s.rate(), 1))),
        );
        o.insert(
            "semaphore_median_wait_ms".into(),
            ms(s.and_then(|s| s.waits.p50())),
        );
        o.insert(
            "semaphore_max_wait_ms".into(),
            ms(s.and_then(|s| s.waits.max())),
        );
        let n = self.named_floor.as_ref();
        o.insert("named_floor_commands".into(), json!(n.map(|n| n.0)));
        o.insert(
            "named_floor_cycles_per_s".into(),
            json!(n.map(|n| round(n.1.rate(), 1))),
        );
        o.insert(
            "named_floor_p50_us".into(),
            us(n.and_then(|n| n.1.cycle.p50())),
        );
        Value::Object(o)
    }

    /// A few aligned lines for a person.
    pub fn to_text(&self) -> String {
        let fmt_us = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.1} us", micros(d)));
        let fmt_ms = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} ms", millis(d)));
        let mut out = format!(
            "{} bench of {} ({:.1} s, {} clients on {} locks)\n",
            self.mode,
            self.backend,
            self.duration.as_secs_f64(),
            self.clients,
            self.locks
        );
        if let Some(commands) = &self.commands {
            out += &format!("  commands:     {commands}\n");
        }
        if let Some(u) = &self.uncontended {
            out += &format!(
                "  uncontended:  {:.0} cycles/s ({} cycles), cycle p50 {}, p99 {}\n",
                u.rate(),
                u.cycles,
                fmt_us(u.cycle.p50()),
                fmt_us(u.cycle.p99())
            );
        }
        if let Some((commands, n)) = &self.named_floor {
            out += &format!(
                "  named floor:  {:.0} cycles/s, cycle p50 {} ({commands})\n",
                n.rate(),
                fmt_us(n.cycle.p50()),
            );
        }
        if let Some(h) = &self.handoff {
            out += &format!(
                "  handoff:      p50 {}, p99 {}, max {} ({} rounds, waiter parked {})\n",
                fmt_us(h.latency.p50()),
                fmt_us(h.latency.p99()),
                fmt_us(h.latency.max()),
                h.latency.len(),
                fmt_ms(Some(h.park))
            );
        }
        if let Some(c) = &self.contended {
            out += &format!(
                "  contended:    {:.0} cycles/s ({} cycles)\n  fairness:     median wait {}, p99 {}, longest {}; cycles per client {}..{}\n",
                c.rate(),
                c.cycles,
                fmt_ms(c.waits.p50()),
                fmt_ms(c.waits.p99()),
                fmt_ms(c.waits.max()),
                c.per_client.iter().min().unwrap_or(&0),
                c.per_client.iter().max().unwrap_or(&0),
            );
        }
        if let Some(s) = &self.semaphore {
            out += &format!(
                "  semaphore:    {:.0} cycles/s ({} cycles, {} clients on {} permits), median wait {}, longest {}\n",
                s.rate(),
                s.cycles,
                SEMAPHORE_CLIENTS,
                SEMAPHORE_PERMITS,
                fmt_ms(s.waits.p50()),
                fmt_ms(s.waits.max()),
            );
        }
        out
    }
}

/// An empty sample's figures print as `null`, never as zero.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Sample;

    #[test]
    fn missing_phases_are_null() {
        let r = Report {
            mode: "floor",
            backend: "mem:".into(),
            scheme: "mem".into(),
            duration: Duration::from_secs(1),
            clients: 1,
            locks: 1,
            commands: None,
            uncontended: Some(Uncontended {
                cycles: 0,
                elapsed: Duration::from_secs(1),
                cycle: Sample::new(vec![]),
            }),
            handoff: None,
            contended: None,
            semaphore: None,
            named_floor: None,
        };
        let j = r.to_json();
        assert_eq!(j["uncontended_p50_us"], Value::Null);
        assert_eq!(j["handoff_p50_us"], Value::Null);
        assert_eq!(j["semaphore_cycles_per_s"], Value::Null);
        assert_eq!(j["named_floor_cycles_per_s"], Value::Null);
        assert_eq!(j["uncontended_cycles_per_s"], json!(0.0));
        assert!(r.to_text().contains("uncontended"));
    }
}
