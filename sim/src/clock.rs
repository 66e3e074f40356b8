//! Simulated time: one true time for the world, and each side's clock reading of it.
//!
//! The scheduler owns true time and only ever moves it forward: to the next event when every
//! actor waits, or by a sleep or an I/O delay that an actor's step cost (SQLite's busy handler
//! sleeping through the VFS, a slow disk). The host and the containers each read their own clock,
//! which may be offset from true time, may drift (parts per million) and may be stepped — the
//! skew between a host and a VM that the protocol must tolerate (PROTOCOL §7, stale detection).
//!
//! The clock is shared with SimFs's time hooks, which SQLite may call from whatever thread the
//! world runs on, so its state sits behind a mutex (uncontended: one world, one thread).

use crate::fs::Side;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// 2026-01-01T00:00:00Z, where every world's true time starts (plus a seed offset).
pub const EPOCH_MS: i64 = 1_767_225_600_000;

const US_PER_MS: i64 = 1_000;
const PPM: i128 = 1_000_000;

/// How one side's clock reads true time: `offset + drift since base`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideClock {
    /// Constant offset from true time, microseconds.
    pub offset_us: i64,
    /// Drift in parts per million (positive: this clock runs fast).
    pub drift_ppm: i64,
    /// True time at which the current drift started to accumulate, microseconds.
    pub drift_base_us: i64,
}

impl SideClock {
    fn read_us(&self, true_us: i64) -> i64 {
        let drifted = i128::from(true_us - self.drift_base_us) * i128::from(self.drift_ppm) / PPM;
        true_us + self.offset_us + drifted as i64
    }

    /// Folds the drift accumulated so far into the offset, so a new drift starts from `true_us`.
    fn rebase(&mut self, true_us: i64) {
        self.offset_us = self.read_us(true_us) - true_us;
        self.drift_base_us = true_us;
    }
}

#[derive(Debug)]
struct ClockState {
    true_us: i64,
    sides: [SideClock; 2],
}

/// The world's clock, cheap to clone (all clones share one time).
#[derive(Debug, Clone)]
pub struct SimClock {
    state: Arc<Mutex<ClockState>>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Host => 0,
        Side::Container => 1,
    }
}

impl SimClock {
    /// A clock at `start_ms` true time, both sides exact.
    pub fn new(start_ms: i64) -> Self {
        let true_us = start_ms * US_PER_MS;
        let exact = SideClock {
            drift_base_us: true_us,
            ..SideClock::default()
        };
        Self {
            state: Arc::new(Mutex::new(ClockState {
                true_us,
                sides: [exact; 2],
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ClockState) -> T) -> T {
        // A poisoned clock means a panic inside the world already; keep reading its time.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    /// True time, microseconds since the Unix epoch.
    pub fn now_us(&self) -> i64 {
        self.with(|s| s.true_us)
    }

    /// True time, milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_us().div_euclid(US_PER_MS)
    }

    /// `side`'s clock, microseconds.
    pub fn side_now_us(&self, side: Side) -> i64 {
        self.with(|s| s.sides[side_index(side)].read_us(s.true_us))
    }

    /// `side`'s clock, milliseconds.
    pub fn side_now_ms(&self, side: Side) -> i64 {
        self.side_now_us(side).div_euclid(US_PER_MS)
    }

    /// Moves true time forward to `true_us`; never backwards.
    pub fn advance_to_us(&self, true_us: i64) {
        self.with(|s| s.true_us = s.true_us.max(true_us));
    }

    /// Moves true time forward by `delta_us` (a sleep or an I/O delay inside a step).
    pub fn advance_by_us(&self, delta_us: i64) {
        self.with(|s| s.true_us += delta_us.max(0));
    }

    /// Sets `side`'s drift from now on, keeping its current reading continuous.
    pub fn set_drift_ppm(&self, side: Side, drift_ppm: i64) {
        self.with(|s| {
            let now = s.true_us;
            let clock = &mut s.sides[side_index(side)];
            clock.rebase(now);
            clock.drift_ppm = drift_ppm;
        });
    }

    /// Steps `side`'s clock by `delta_ms` (an NTP correction, a VM resumed from sleep).
    pub fn step_ms(&self, side: Side, delta_ms: i64) {
        self.with(|s| s.sides[side_index(side)].offset_us += delta_ms * US_PER_MS);
    }

    /// How `side`'s clock currently reads true time.
    pub fn side_clock(&self, side: Side) -> SideClock {
        self.with(|s| s.sides[side_index(side)])
    }

    /// The true time (ms) at which `side`'s clock will read `side_ms`, assuming no further
    /// steps; never earlier than now. Used to schedule a wake-up an actor asked for on its own
    /// clock.
    pub fn true_ms_when(&self, side: Side, side_ms: i64) -> i64 {
        self.with(|s| {
            let clock = s.sides[side_index(side)];
            let wait_side_us = side_ms * US_PER_MS - clock.read_us(s.true_us);
            let now_ms = s.true_us.div_euclid(US_PER_MS);
            if wait_side_us <= 0 {
                return now_ms;
            }
            // Round up, so that at the returned time the side's clock has reached `side_ms`,
            // and never answer the current millisecond for a wait that is still ahead (a
            // wake-up rounded back to now would run again and again at the same instant).
            let rate = PPM + i128::from(clock.drift_ppm);
            let wait_true_us = (i128::from(wait_side_us) * PPM + rate - 1) / rate;
            let at_ms = (s.true_us + wait_true_us as i64 + US_PER_MS - 1).div_euclid(US_PER_MS);
            at_ms.max(now_ms + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_read_true_time_until_skewed() {
        let clock = SimClock::new(EPOCH_MS);
        clock.advance_by_us(1_500);
        assert_eq!(clock.now_ms(), EPOCH_MS + 1);
        assert_eq!(clock.side_now_ms(Side::Host), EPOCH_MS + 1);
        assert_eq!(clock.side_now_ms(Side::Container), EPOCH_MS + 1);
    }

    #[test]
    fn time_never_goes_backwards() {
        let clock = SimClock::new(EPOCH_MS);
        clock.advance_to_us((EPOCH_MS + 10) * 1_000);
        clock.advance_to_us((EPOCH_MS + 5) * 1_000);
        assert_eq!(clock.now_ms(), EPOCH_MS + 10);
    }

    #[test]
    fn step_moves_one_side_only() {
        let clock = SimClock::new(EPOCH_MS);
        clock.step_ms(Side::Container, -90_000);
        assert_eq!(clock.side_now_ms(Side::Container), EPOCH_MS - 90_000);
        assert_eq!(clock.side_now_ms(Side::Host), EPOCH_MS);
    }

    #[test]
    fn drift_accumulates_and_stays_continuous_when_changed() {
        let clock = SimClock::new(EPOCH_MS);
        clock.set_drift_ppm(Side::Container, 1_000); // 1 ms per second fast
        clock.advance_by_us(10_000_000);
        assert_eq!(clock.side_now_ms(Side::Container), EPOCH_MS + 10_010);
        clock.set_drift_ppm(Side::Container, 0);
        assert_eq!(clock.side_now_ms(Side::Container), EPOCH_MS + 10_010);
        clock.advance_by_us(10_000_000);
        assert_eq!(clock.side_now_ms(Side::Container), EPOCH_MS + 20_010);
    }

    #[test]
    fn wake_time_on_a_side_maps_back_to_true_time() {
        let clock = SimClock::new(EPOCH_MS);
        clock.step_ms(Side::Container, 5_000);
        clock.set_drift_ppm(Side::Container, 100_000); // 10 % fast
        let side_target = clock.side_now_ms(Side::Container) + 1_100;
        let at = clock.true_ms_when(Side::Container, side_target);
        assert_eq!(at, EPOCH_MS + 1_000);
        clock.advance_to_us(at * 1_000);
        assert!(clock.side_now_ms(Side::Container) >= side_target);
        // A wake-up already due maps to now.
        assert_eq!(clock.true_ms_when(Side::Container, 0), clock.now_ms());
    }

    #[test]
    fn a_wake_up_a_fraction_of_a_millisecond_ahead_is_never_now() {
        let clock = SimClock::new(EPOCH_MS);
        clock.set_drift_ppm(Side::Container, 300);
        // Reach a true millisecond at which the fast clock reads just short of its next ms.
        let stuck = (0..10_000_000i64).step_by(1_000).find(|us| {
            clock.advance_to_us(EPOCH_MS * 1_000 + us);
            clock.side_now_us(Side::Container).rem_euclid(1_000) > 900
        });
        assert!(stuck.is_some());
        let target = clock.side_now_ms(Side::Container) + 1;
        let at = clock.true_ms_when(Side::Container, target);
        assert!(at > clock.now_ms());
        clock.advance_to_us(at * 1_000);
        assert!(clock.side_now_ms(Side::Container) >= target);
    }
}
