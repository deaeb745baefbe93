//! Percentiles of measured durations.

use std::time::Duration;

/// A sorted sample of durations.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    sorted: Vec<Duration>,
}

impl Sample {
    /// Sorts `values` once; every query after that is a lookup.
    pub fn new(mut values: Vec<Duration>) -> Self {
        values.sort_unstable();
        Sample { sorted: values }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `p`-th quantile (0.0 to 1.0) by the nearest rank, `None` for an empty sample.
    pub fn quantile(&self, p: f64) -> Option<Duration> {
        let n = self.sorted.len();
        if n == 0 {
            return None;
        }
        // Nearest rank: the smallest value with at least p of the sample at or below it.
        let rank = (p.clamp(0.0, 1.0) * n as f64).ceil() as usize;
        Some(self.sorted[rank.clamp(1, n) - 1])
    }

    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.5)
    }

    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }

    pub fn max(&self) -> Option<Duration> {
        self.sorted.last().copied()
    }
}

/// Microseconds with a fraction.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Milliseconds with a fraction.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn nearest_rank_quantiles() {
        let s = Sample::new((1..=100).rev().map(us).collect());
        assert_eq!(s.p50(), Some(us(50)));
        assert_eq!(s.p99(), Some(us(99)));
        assert_eq!(s.quantile(1.0), Some(us(100)));
        assert_eq!(s.quantile(0.0), Some(us(1)));
        assert_eq!(s.max(), Some(us(100)));
    }

    #[test]
    fn small_and_empty_samples() {
        assert_eq!(Sample::new(vec![]).p50(), None);
        let one = Sample::new(vec![us(7)]);
        assert_eq!((one.p50(), one.p99()), (Some(us(7)), Some(us(7))));
        let two = Sample::new(vec![us(9), us(3)]);
        assert_eq!((two.p50(), two.p99()), (Some(us(3)), Some(us(9))));
    }
}
