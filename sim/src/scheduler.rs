//! The discrete-event queue: what runs next, and when.
//!
//! Events are kept in a `BTreeMap` keyed by `(time, tie, seq)`: time first; among events due at
//! the same millisecond, a tie-breaker drawn from the run's [`ChoiceSource`] decides the order
//! (so the seed explores interleavings of simultaneous wake-ups, and a zero tape keeps them in
//! the order they were scheduled); `seq` makes every key unique. Popping the first key is how
//! the world jumps to the next timer when every actor waits: nothing runs between events, so an
//! idle hour of protocol time is one pop.

use crate::tape::ChoiceSource;
use std::collections::BTreeMap;

/// How many distinct tie-breakers a draw chooses from; small, so that shrinking has little to
/// do and equal draws fall back to scheduling order.
const TIE_CHOICES: u64 = 16;

/// A queue of events of type `E`.
#[derive(Debug)]
pub struct Scheduler<E> {
    /// Boxed: B-tree nodes shift their values on every insert and removal, and an event (a
    /// send with its delivery, a container start with its spec) is hundreds of bytes.
    queue: BTreeMap<(i64, u64, u64), Box<E>>,
    next_seq: u64,
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Self {
            queue: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<E> Scheduler<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `event` at true time `at_ms`, its place among simultaneous events drawn from
    /// `choices`.
    pub fn schedule(&mut self, at_ms: i64, event: E, choices: &mut dyn ChoiceSource) {
        let tie = choices.below(TIE_CHOICES);
        self.queue
            .insert((at_ms, tie, self.next_seq), Box::new(event));
        self.next_seq += 1;
    }

    /// The earliest event and its time, removed from the queue.
    pub fn pop(&mut self) -> Option<(i64, E)> {
        self.queue
            .pop_first()
            .map(|((at_ms, _, _), event)| (at_ms, *event))
    }

    /// The time of the earliest event.
    pub fn next_time_ms(&self) -> Option<i64> {
        self.queue.keys().next().map(|(at_ms, _, _)| *at_ms)
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;
    use crate::tape::{ChoiceTape, SeededChoices};

    #[test]
    fn pops_in_time_order() {
        let mut choices = SeededChoices::new(SimRng::new(1));
        let mut scheduler = Scheduler::new();
        for (at, name) in [(30, "c"), (10, "a"), (20, "b")] {
            scheduler.schedule(at, name, &mut choices);
        }
        let order: Vec<_> = std::iter::from_fn(|| scheduler.pop()).collect();
        assert_eq!(order, vec![(10, "a"), (20, "b"), (30, "c")]);
    }

    #[test]
    fn zero_tape_keeps_simultaneous_events_in_scheduling_order() {
        let mut tape = ChoiceTape::new(vec![]);
        let mut scheduler = Scheduler::new();
        for name in ["first", "second", "third"] {
            scheduler.schedule(5, name, &mut tape);
        }
        let order: Vec<_> = std::iter::from_fn(|| scheduler.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!["first", "second", "third"]);
    }

    #[test]
    fn tape_reorders_simultaneous_events() {
        let mut tape = ChoiceTape::new(vec![3, 1, 2]);
        let mut scheduler = Scheduler::new();
        for name in ["first", "second", "third"] {
            scheduler.schedule(5, name, &mut tape);
        }
        let order: Vec<_> = std::iter::from_fn(|| scheduler.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!["second", "third", "first"]);
    }

    #[test]
    fn seeds_explore_different_interleavings() {
        let orders: std::collections::BTreeSet<Vec<u32>> = (0..20)
            .map(|seed| {
                let mut choices = SeededChoices::new(SimRng::new(seed));
                let mut scheduler = Scheduler::new();
                for name in 0..4u32 {
                    scheduler.schedule(0, name, &mut choices);
                }
                std::iter::from_fn(|| scheduler.pop().map(|(_, e)| e)).collect()
            })
            .collect();
        assert!(orders.len() > 1);
    }
}
