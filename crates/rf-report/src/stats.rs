//! Bounded statistics of the values of one field: exact count, min, max and
//! mean, and a uniform sample of at most [`NUMERIC_SAMPLE`] values (Algorithm
//! R, seeded) that draws the histogram when there are more.

use rf_util::SplitMix64;
use serde::Serialize;

/// Most values a numeric field keeps for its histogram.
pub(crate) const NUMERIC_SAMPLE: usize = 4096;
/// Bars of a histogram.
pub(crate) const BINS: usize = 20;

/// What a numeric field held.
#[derive(Debug, Clone)]
pub(crate) struct Numeric {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
    sample: Vec<f64>,
    rng: SplitMix64,
}

impl Numeric {
    /// Empty, sampling with a generator seeded by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Numeric {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            sample: Vec::new(),
            rng: SplitMix64::new(seed),
        }
    }

    /// Counts one value (non-finite ones are ignored).
    pub(crate) fn push(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        if self.sample.len() < NUMERIC_SAMPLE {
            self.sample.push(v);
        } else {
            let j = self.rng.below(self.count) as usize;
            if j < NUMERIC_SAMPLE {
                self.sample[j] = v;
            }
        }
    }

    /// The summary and histogram to draw.
    pub(crate) fn view(&self, name: &str) -> NumericView {
        let (lo, hi) = (self.min, self.max);
        let mut bins = [0u64; BINS];
        let width = (hi - lo) / BINS as f64;
        for v in &self.sample {
            let i = if width > 0.0 {
                (((v - lo) / width) as usize).min(BINS - 1)
            } else {
                0
            };
            bins[i] += 1;
        }
        let scale = if self.sample.is_empty() {
            0.0
        } else {
            self.count as f64 / self.sample.len() as f64
        };
        let counts: Vec<u64> = bins
            .iter()
            .map(|b| (*b as f64 * scale).round() as u64)
            .collect();
        NumericView {
            name: name.to_string(),
            count: self.count,
            min: fmt_num(lo),
            max: fmt_num(hi),
            mean: fmt_num(self.sum / self.count.max(1) as f64),
            sampled: self.count > self.sample.len() as u64,
            bars: Bar::from_counts(&counts),
        }
    }
}

/// One bar of a histogram, its height in percent of the tallest.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bar {
    pub(crate) count: u64,
    pub(crate) pct: f64,
}

impl Bar {
    /// Bars for `counts`, scaled to the tallest.
    pub(crate) fn from_counts(counts: &[u64]) -> Vec<Bar> {
        let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
        counts
            .iter()
            .map(|&count| Bar {
                count,
                pct: (count as f64 * 1000.0 / top).round() / 10.0,
            })
            .collect()
    }
}

/// A numeric field as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NumericView {
    pub(crate) name: String,
    pub(crate) count: u64,
    pub(crate) min: String,
    pub(crate) max: String,
    pub(crate) mean: String,
    /// Whether the bars come from a sample of the values.
    pub(crate) sampled: bool,
    pub(crate) bars: Vec<Bar>,
}

/// A number for people: integers plain, others to four significant places.
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_summary_sampled_histogram() {
        let mut n = Numeric::new(1);
        for i in 0..10_000 {
            n.push(f64::from(i));
        }
        n.push(f64::NAN);
        let v = n.view("x");
        assert_eq!(v.count, 10_000);
        assert_eq!(v.min, "0");
        assert_eq!(v.max, "9999");
        assert!(v.sampled);
        assert_eq!(v.bars.len(), BINS);
        let total: u64 = v.bars.iter().map(|b| b.count).sum();
        assert!((9_900..=10_100).contains(&total), "{total}");
        // uniform input: every bar near 500
        assert!(v.bars.iter().all(|b| (300..=700).contains(&b.count)));
    }

    #[test]
    fn one_value_one_bar() {
        let mut n = Numeric::new(1);
        n.push(2.5);
        n.push(2.5);
        let v = n.view("x");
        assert_eq!(v.bars[0].count, 2);
        assert_eq!(v.bars[0].pct, 100.0);
        assert!(!v.sampled);
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(12.25), "12.25");
    }
}
