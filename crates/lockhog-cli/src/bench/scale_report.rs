//! What `lockhog bench --scale` prints: two tables for people, or one JSON object with
//! `--json` whose `contended` and `held` arrays have one entry per point.

use std::time::Duration;

use serde_json::{json, Value};

use super::report::{ms, round, us};
use super::stats::{micros, millis};
use super::workloads::{Contended, Uncontended};

/// One point of the clients × locks grid: its figures, or why it could not be measured.
#[derive(Debug)]
pub struct ContendedPoint {
    pub clients: usize,
    pub locks: usize,
    pub outcome: Result<Contended, String>,
}

/// One held-set size: one more acquire + release while this process holds `held` locks.
#[derive(Debug)]
pub struct HeldPoint {
    pub held: usize,
    /// How long the set took to acquire, from the previous size up.
    pub fill: Duration,
    /// Held locks reported lost by the end of the measurement.
    pub lost: usize,
    pub outcome: Result<Uncontended, String>,
}

impl HeldPoint {
    /// A size that was not measured, and why.
    pub fn failed(held: usize, why: String) -> Self {
        HeldPoint {
            held,
            fill: Duration::ZERO,
            lost: 0,
            outcome: Err(why),
        }
    }
}

/// The results of a `--scale` run.
#[derive(Debug)]
pub struct ScaleReport {
    /// The backend URL, password redacted.
    pub backend: String,
    pub scheme: String,
    /// Per point.
    pub duration: Duration,
    /// The descriptor limit (soft, hard) after raising it, where held locks need descriptors.
    pub nofile: Option<(u64, u64)>,
    pub contended: Vec<ContendedPoint>,
    pub held: Vec<HeldPoint>,
}

impl ScaleReport {
    /// `{mode: "scale", backend, scheme, version, duration_s, nofile_soft, nofile_hard,
    /// contended: [{clients, locks, cycles, cycles_per_s, p50_wait_ms, p99_wait_ms,
    /// max_wait_ms, error}], held: [{held, fill_s, lost, cycles, p50_us, p99_us, error}]}`;
    /// a point that failed has its figures `null` and its `error` set.
    pub fn to_json(&self) -> Value {
        let contended: Vec<Value> = self
            .contended
            .iter()
            .map(|p| {
                let c = p.outcome.as_ref().ok();
                json!({
                    "clients": p.clients,
                    "locks": p.locks,
                    "cycles": c.map(|c| c.cycles),
                    "cycles_per_s": c.map(|c| round(c.rate(), 1)),
                    "p50_wait_ms": ms(c.and_then(|c| c.waits.p50())),
                    "p99_wait_ms": ms(c.and_then(|c| c.waits.p99())),
                    "max_wait_ms": ms(c.and_then(|c| c.waits.max())),
                    "error": p.outcome.as_ref().err(),
                })
            })
            .collect();
        let held: Vec<Value> = self
            .held
            .iter()
            .map(|p| {
                let u = p.outcome.as_ref().ok();
                json!({
                    "held": p.held,
                    "fill_s": u.map(|_| round(p.fill.as_secs_f64(), 3)),
                    "lost": u.map(|_| p.lost),
                    "cycles": u.map(|u| u.cycles),
                    "p50_us": us(u.and_then(|u| u.cycle.p50())),
                    "p99_us": us(u.and_then(|u| u.cycle.p99())),
                    "error": p.outcome.as_ref().err(),
                })
            })
            .collect();
        json!({
            "mode": "scale",
            "backend": self.backend,
            "scheme": self.scheme,
            "version": env!("CARGO_PKG_VERSION"),
            "duration_s": self.duration.as_secs_f64(),
            "nofile_soft": self.nofile.map(|n| n.0),
            "nofile_hard": self.nofile.map(|n| n.1),
            "contended": contended,
            "held": held,
        })
    }

    /// Two aligned tables; a point that failed prints its error instead of figures.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "scale bench of {} ({:.1} s per point)\n\n  clients   locks    cycles/s  p50 wait ms  p99 wait ms\n",
            self.backend,
            self.duration.as_secs_f64()
        );
        for p in &self.contended {
            out += &format!("  {:>7} {:>7}  ", p.clients, p.locks);
            out += &match &p.outcome {
                Ok(c) => format!(
                    "{:>10.0}  {:>11.3}  {:>11.3}\n",
                    c.rate(),
                    c.waits.p50().map_or(f64::NAN, millis),
                    c.waits.p99().map_or(f64::NAN, millis)
                ),
                Err(e) => format!("not measured: {e}\n"),
            };
        }
        out += "\n     held  acquire p50 us  acquire p99 us  fill s  lost\n";
        for p in &self.held {
            out += &format!("  {:>7}  ", p.held);
            out += &match &p.outcome {
                Ok(u) => format!(
                    "{:>14.1}  {:>14.1}  {:>6.1}  {:>4}\n",
                    u.cycle.p50().map_or(f64::NAN, micros),
                    u.cycle.p99().map_or(f64::NAN, micros),
                    p.fill.as_secs_f64(),
                    p.lost
                ),
                Err(e) => format!("not measured: {e}\n"),
            };
        }
        if let Some((soft, hard)) = self.nofile {
            out += &format!("\n  RLIMIT_NOFILE {soft} (hard {hard})\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Sample;

    /// A point that failed keeps its place, with `null` figures and its error.
    #[test]
    fn failed_points_carry_their_error() {
        let r = ScaleReport {
            backend: "mem:".into(),
            scheme: "mem".into(),
            duration: Duration::from_secs(1),
            nofile: None,
            contended: vec![ContendedPoint {
                clients: 256,
                locks: 1,
                outcome: Err("too many clients".into()),
            }],
            held: vec![
                HeldPoint {
                    held: 10,
                    fill: Duration::from_millis(5),
                    lost: 0,
                    outcome: Ok(Uncontended {
                        cycles: 2,
                        elapsed: Duration::from_secs(1),
                        cycle: Sample::new(vec![Duration::from_micros(3); 2]),
                    }),
                },
                HeldPoint::failed(100, "out of shared memory".into()),
            ],
        };
        let j = r.to_json();
        assert_eq!(j["contended"][0]["error"], "too many clients");
        assert_eq!(j["contended"][0]["cycles_per_s"], Value::Null);
        assert_eq!(j["held"][0]["p50_us"], json!(3.0));
        assert_eq!(j["held"][0]["error"], Value::Null);
        assert_eq!(j["held"][1]["p99_us"], Value::Null);
        let text = r.to_text();
        assert!(text.contains("not measured: too many clients"), "{text}");
        assert!(
            text.contains("not measured: out of shared memory"),
            "{text}"
        );
    }
}
