//! The gallery's sample: a reservoir per class (Algorithm R, seeded with
//! rf-util's `SplitMix64`, so a report is the same every time), merged
//! round-robin so that rare classes are shown as well as common ones.
//!
//! Memory is bounded by the sample size times the classes tracked
//! ([`MAX_CLASSES`]; images of further classes share one more reservoir),
//! never by the number of results. An image with several classes is one
//! shared allocation in each of its reservoirs.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::rc::Rc;

use rf_util::SplitMix64;

use crate::extract::Prediction;

/// Classes with a reservoir of their own.
pub(crate) const MAX_CLASSES: usize = 64;
/// Predictions kept per sampled image (the most confident).
pub(crate) const MAX_DRAWN: usize = 100;

/// An image of the sample.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sampled {
    pub(crate) name: String,
    pub(crate) image: Option<(f64, f64)>,
    /// Most confident first, at most [`MAX_DRAWN`].
    pub(crate) predictions: Vec<Prediction>,
    /// Predictions left out past [`MAX_DRAWN`].
    pub(crate) more: usize,
    /// The highest confidence (the gallery's order).
    pub(crate) top: f64,
}

impl Sampled {
    /// The sample entry of image `name` (sorts and trims its predictions).
    pub(crate) fn new(
        name: String,
        image: Option<(f64, f64)>,
        mut predictions: Vec<Prediction>,
    ) -> Self {
        let conf = |p: &Prediction| p.confidence.unwrap_or(0.0);
        predictions.sort_by(|a, b| conf(b).total_cmp(&conf(a)));
        let more = predictions.len().saturating_sub(MAX_DRAWN);
        predictions.truncate(MAX_DRAWN);
        let top = predictions.first().map_or(0.0, conf);
        Sampled {
            name,
            image,
            predictions,
            more,
            top,
        }
    }
}

#[derive(Debug, Default)]
struct Reservoir {
    seen: u64,
    items: Vec<Rc<Sampled>>,
}

impl Reservoir {
    fn offer(&mut self, item: &Rc<Sampled>, k: usize, rng: &mut SplitMix64) {
        self.seen += 1;
        if self.items.len() < k {
            self.items.push(Rc::clone(item));
        } else {
            let j = rng.below(self.seen) as usize;
            if j < k {
                self.items[j] = Rc::clone(item);
            }
        }
    }
}

/// Draws the sample while the results stream by.
#[derive(Debug)]
pub(crate) struct Sampler {
    k: usize,
    classes: BTreeMap<String, Reservoir>,
    other: Reservoir,
    rng: SplitMix64,
}

impl Sampler {
    /// A sampler of `k` images, seeded with `seed`.
    pub(crate) fn new(k: usize, seed: u64) -> Self {
        Sampler {
            k,
            classes: BTreeMap::new(),
            other: Reservoir::default(),
            rng: SplitMix64::new(seed),
        }
    }

    /// Offers an image with at least one prediction to the reservoir of
    /// each of its classes.
    pub(crate) fn offer(&mut self, item: Sampled) {
        let classes: BTreeSet<String> = item.predictions.iter().map(|p| p.class.clone()).collect();
        let item = Rc::new(item);
        let mut to_other = false;
        for class in classes {
            if !self.classes.contains_key(&class) && self.classes.len() >= MAX_CLASSES {
                to_other = true;
                continue;
            }
            let r = self.classes.entry(class).or_default();
            r.offer(&item, self.k, &mut self.rng);
        }
        if to_other {
            self.other.offer(&item, self.k, &mut self.rng);
        }
    }

    /// The sample: round-robin over the reservoirs (most frequent class
    /// first), each image once, at most `k`, most confident first.
    pub(crate) fn finish(self) -> Vec<Sampled> {
        let mut reservoirs: Vec<Reservoir> = self.classes.into_values().collect();
        reservoirs.sort_by_key(|r| std::cmp::Reverse(r.seen));
        reservoirs.push(self.other);
        let mut chosen: Vec<Rc<Sampled>> = Vec::new();
        let mut names = HashSet::new();
        'rounds: for i in 0..self.k {
            for r in &reservoirs {
                if chosen.len() >= self.k {
                    break 'rounds;
                }
                if let Some(item) = r.items.get(i)
                    && names.insert(item.name.clone())
                {
                    chosen.push(Rc::clone(item));
                }
            }
        }
        drop(reservoirs);
        let mut out: Vec<Sampled> = chosen
            .into_iter()
            .map(|rc| Rc::try_unwrap(rc).unwrap_or_else(|rc| (*rc).clone()))
            .collect();
        out.sort_by(|a, b| b.top.total_cmp(&a.top).then_with(|| a.name.cmp(&b.name)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(class: &str, c: f64) -> Prediction {
        Prediction {
            class: class.into(),
            confidence: Some(c),
            bbox: None,
            points: Vec::new(),
        }
    }

    fn run(seed: u64) -> Vec<String> {
        let mut s = Sampler::new(10, seed);
        for i in 0..10_000 {
            let class = if i % 1000 == 0 { "rare" } else { "common" };
            s.offer(Sampled::new(format!("{i}"), None, vec![pred(class, 0.5)]));
        }
        s.finish().into_iter().map(|x| x.name).collect()
    }

    #[test]
    fn bounded_deterministic_and_fair_to_rare_classes() {
        let a = run(3);
        assert_eq!(a.len(), 10);
        assert_eq!(a, run(3));
        assert_ne!(a, run(4));
        let rare = a
            .iter()
            .filter(|n| n.parse::<u32>().unwrap() % 1000 == 0)
            .count();
        assert_eq!(rare, 5, "{a:?}");
    }

    #[test]
    fn sorted_by_confidence_and_trimmed() {
        let mut s = Sampler::new(5, 1);
        s.offer(Sampled::new("lo".into(), None, vec![pred("a", 0.1)]));
        let many: Vec<Prediction> = (0..150).map(|i| pred("b", f64::from(i) / 150.0)).collect();
        s.offer(Sampled::new("hi".into(), None, many));
        let out = s.finish();
        assert_eq!(out[0].name, "hi");
        assert_eq!(out[0].predictions.len(), MAX_DRAWN);
        assert_eq!(out[0].more, 50);
        assert!(out[0].predictions[0].confidence > out[0].predictions[1].confidence);
    }

    #[test]
    fn classes_past_the_limit_share_a_reservoir() {
        let mut s = Sampler::new(2, 1);
        for i in 0..(MAX_CLASSES + 10) {
            s.offer(Sampled::new(
                format!("{i}"),
                None,
                vec![pred(&format!("c{i}"), 0.5)],
            ));
        }
        assert_eq!(s.classes.len(), MAX_CLASSES);
        assert_eq!(s.other.seen, 10);
        assert_eq!(s.finish().len(), 2);
    }
}
