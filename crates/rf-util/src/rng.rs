//! SplitMix64: a tiny, fast, deterministic generator (Steele, Lea and Flood,
//! "Fast splittable pseudorandom number generators", 2014). Not for
//! cryptography; for jitter, fault decisions and test data that must be
//! replayable from one seed.

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser: a well-mixed 64-bit hash of `x` (a stateless
/// draw: `mix(seed ^ n)` is the `n`-th number of `seed`).
///
/// ```
/// assert_ne!(rf_util::rng::mix(1), rf_util::rng::mix(2));
/// assert_eq!(rf_util::rng::mix(7), rf_util::rng::mix(7));
/// ```
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform float in `[0, 1)` from the top 53 bits of `x`.
pub fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The seeded generator.
///
/// ```
/// use rf_util::SplitMix64;
/// let (mut a, mut b) = (SplitMix64::new(42), SplitMix64::new(42));
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let x = self.0;
        self.0 = self.0.wrapping_add(GAMMA);
        mix(x)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// A number below `n` (0 when `n` is 0; the tiny modulo bias does not
    /// matter for what this is used for).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference sequence of SplitMix64 for seed 1234567 (from the
    /// authors' C code), so the generator is the published one.
    #[test]
    fn matches_the_reference_sequence() {
        let mut g = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..3).map(|_| g.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }

    #[test]
    fn floats_are_in_range_and_replayable() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        for _ in 0..1000 {
            let x = a.next_f64();
            assert_eq!(x, b.next_f64());
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn fill_covers_a_ragged_tail() {
        let mut buf = [0u8; 13];
        SplitMix64::new(3).fill(&mut buf);
        assert!(buf[8..].iter().any(|&b| b != 0));
    }
}
