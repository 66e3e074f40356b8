//! The world's only source of randomness: a small seeded PRNG (splitmix64).
//!
//! Every random choice inside a world (scheduling, faults, torn sectors, stale reads, SQLite's
//! xRandomness) comes from a `SimRng` derived from the run's seed, so the same seed replays the
//! same world bit for bit. Sub-systems take their own stream with [`SimRng::fork`] so that adding
//! a draw in one place does not shift every later draw elsewhere.

/// A deterministic pseudo-random generator (splitmix64): fast, 64 bits of state, good enough
/// statistics for simulation choices. Never seeded from the wall clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over a tag, so `fork("faults")` and `fork("fs")` give unrelated streams.
fn hash_tag(tag: &str) -> u64 {
    tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl SimRng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng {
            state: mix64(seed ^ 0x5EED_C1A5_0000_0001),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A uniform value in `0..n` (0 when `n` is 0). Uses Lemire's multiply-shift; the tiny bias
    /// for huge `n` does not matter for simulation choices.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform value in `lo..=hi` (returns `lo` when `hi < lo`).
    pub fn range_inclusive(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        lo + self.below(span) as i64
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits -> uniform f64 in [0, 1).
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    /// Fills `buf` with random bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// An independent stream named by `tag`, derived from this generator's current state
    /// without advancing it (forking twice with the same tag gives the same stream).
    pub fn fork(&self, tag: &str) -> SimRng {
        SimRng {
            state: mix64(self.state ^ hash_tag(tag)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_stream() {
        let mut a = SimRng::new(7);
        let mut b = SimRng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn different_seeds_give_different_streams() {
        assert_ne!(SimRng::new(1).next_u64(), SimRng::new(2).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SimRng::new(3);
        let mut seen = [false; 5];
        for _ in 0..200 {
            let v = rng.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn chance_extremes_are_certain() {
        let mut rng = SimRng::new(4);
        assert!((0..50).all(|_| rng.chance(1.0)));
        assert!((0..50).all(|_| !rng.chance(0.0)));
    }

    #[test]
    fn forks_are_independent_of_tag_and_do_not_advance_parent() {
        let parent = SimRng::new(9);
        let mut f1 = parent.fork("fs");
        let mut f2 = parent.fork("faults");
        let mut f1_again = parent.fork("fs");
        let x = f1.next_u64();
        assert_eq!(x, f1_again.next_u64());
        assert_ne!(x, f2.next_u64());
        assert_eq!(parent, SimRng::new(9));
    }
}
