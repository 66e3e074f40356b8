//! Where the world's scheduling choices come from: a seeded PRNG or a recorded tape.
//!
//! Every choice the world makes (which of two simultaneous events runs first, how long a
//! container takes to start, how long a channel send takes) is one draw from a
//! [`ChoiceSource`]. A normal run draws from [`SeededChoices`]; a property test can instead hand
//! the world a [`ChoiceTape`], a plain `Vec<u64>` that proptest shrinks towards zeros. The
//! helpers on the trait are written so that a draw of 0 is always the simplest choice (the
//! first candidate, the shortest latency, "no"), and an exhausted tape answers 0: shrinking a
//! tape therefore shrinks the schedule towards the plainest one.

use crate::rng::SimRng;

/// A stream of choices. Implementors supply raw draws; the provided methods map them.
pub trait ChoiceSource {
    /// The next raw choice.
    fn next_u64(&mut self) -> u64;

    /// A value in `0..n` (0 when `n` is 0); a raw 0 gives 0.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.next_u64() % n
    }

    /// A value in `lo..=hi`; a raw 0 gives `lo`.
    fn range_inclusive(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `p`; a raw 0 gives `false` unless `p >= 1`.
    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit >= 1.0 - p
    }
}

/// Choices drawn from the run's seed.
#[derive(Debug, Clone)]
pub struct SeededChoices {
    rng: SimRng,
}

impl SeededChoices {
    /// Choices determined entirely by `rng`'s state.
    pub fn new(rng: SimRng) -> Self {
        Self { rng }
    }
}

impl ChoiceSource for SeededChoices {
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// Choices read from a fixed tape; past its end every draw is 0 (the simplest choice).
#[derive(Debug, Clone, Default)]
pub struct ChoiceTape {
    tape: Vec<u64>,
    position: usize,
}

impl ChoiceTape {
    /// A source that replays `tape`.
    pub fn new(tape: Vec<u64>) -> Self {
        Self { tape, position: 0 }
    }

    /// How many draws have been made (including draws past the end).
    pub fn draws(&self) -> usize {
        self.position
    }
}

impl ChoiceSource for ChoiceTape {
    fn next_u64(&mut self) -> u64 {
        let value = self.tape.get(self.position).copied().unwrap_or(0);
        self.position += 1;
        value
    }
}

/// Records every draw of an inner source, so a seeded run can be turned into a tape.
#[derive(Debug, Clone)]
pub struct RecordingChoices<S> {
    inner: S,
    recorded: Vec<u64>,
}

impl<S: ChoiceSource> RecordingChoices<S> {
    /// Wraps `inner`, recording what it answers.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            recorded: Vec::new(),
        }
    }

    /// The draws made so far, replayable with [`ChoiceTape::new`].
    pub fn into_tape(self) -> Vec<u64> {
        self.recorded
    }
}

impl<S: ChoiceSource> ChoiceSource for RecordingChoices<S> {
    fn next_u64(&mut self) -> u64 {
        let value = self.inner.next_u64();
        self.recorded.push(value);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_tape_gives_simplest_choices() {
        let mut tape = ChoiceTape::new(vec![]);
        assert_eq!(tape.below(7), 0);
        assert_eq!(tape.range_inclusive(10, 20), 10);
        assert!(!tape.chance(0.9));
        assert!(tape.chance(1.0));
        assert_eq!(tape.draws(), 4 - 1, "chance(1.0) draws nothing");
    }

    #[test]
    fn tape_replays_in_order() {
        let mut tape = ChoiceTape::new(vec![3, 5]);
        assert_eq!(tape.below(10), 3);
        assert_eq!(tape.below(4), 1);
        assert_eq!(tape.below(4), 0);
    }

    #[test]
    fn recorded_seeded_draws_replay_from_a_tape() {
        let mut recording = RecordingChoices::new(SeededChoices::new(SimRng::new(11)));
        let seeded: Vec<u64> = (0..20).map(|i| recording.below(i + 1)).collect();
        let mut tape = ChoiceTape::new(recording.into_tape());
        let replayed: Vec<u64> = (0..20).map(|i| tape.below(i + 1)).collect();
        assert_eq!(seeded, replayed);
    }

    #[test]
    fn chance_is_roughly_fair() {
        let mut choices = SeededChoices::new(SimRng::new(5));
        let hits = (0..10_000).filter(|_| choices.chance(0.25)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
    }
}
