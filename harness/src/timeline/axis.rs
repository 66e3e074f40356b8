//! The time axis: simulated time to pixels, with long quiet stretches cut short.
//!
//! A run is mostly waiting: 120 s of faults and 300 s of quiet period where a sweep runs once a
//! minute, and what a person needs to see happens in a few seconds of it. A linear axis would
//! squeeze those seconds into a few pixels, so every stretch longer than [`Axis::new`]'s
//! threshold in which nothing is drawn is cut to a fixed width and marked as a break on the axis
//! (with its length); the rest shares the width linearly. Ticks are in simulated seconds from
//! the start of the run.

/// One piece of the axis: linear, or a cut stretch.
#[derive(Debug, Clone, Copy)]
struct Piece {
    from_ms: i64,
    to_ms: i64,
    x0: f64,
    x1: f64,
    cut: bool,
}

/// Simulated time to x.
#[derive(Debug, Clone)]
pub struct Axis {
    pieces: Vec<Piece>,
    start_ms: i64,
    left: f64,
}

/// Width of a cut stretch, px.
pub const CUT_PX: f64 = 26.0;

impl Axis {
    /// An axis from `start_ms` to `end_ms` over `left..right`, cutting every stretch without a
    /// moment of `moments` that is longer than both `min_gap_ms` and a 150th of the run.
    pub fn new(
        start_ms: i64,
        end_ms: i64,
        moments: &[i64],
        min_gap_ms: i64,
        left: f64,
        right: f64,
    ) -> Self {
        let end_ms = end_ms.max(start_ms + 1);
        let threshold = min_gap_ms.max((end_ms - start_ms) / 150);
        let mut times: Vec<i64> = moments
            .iter()
            .copied()
            .filter(|t| (start_ms..=end_ms).contains(t))
            .chain([start_ms, end_ms])
            .collect();
        times.sort_unstable();
        times.dedup();
        // Stretches to cut keep a margin on each side so marks near them are not on the break.
        let margin = threshold / 4;
        let mut spans: Vec<(i64, i64, bool)> = Vec::new();
        let mut at = start_ms;
        for pair in times.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b - a > threshold {
                spans.push((at, a + margin, false));
                spans.push((a + margin, b - margin, true));
                at = b - margin;
            }
        }
        spans.push((at, end_ms, false));
        spans.retain(|(a, b, _)| b > a);
        let cuts = spans.iter().filter(|s| s.2).count() as f64;
        let linear_ms: i64 = spans.iter().filter(|s| !s.2).map(|s| s.1 - s.0).sum();
        let per_ms = (right - left - cuts * CUT_PX).max(1.0) / linear_ms.max(1) as f64;
        let mut x = left;
        let pieces = spans
            .into_iter()
            .map(|(from_ms, to_ms, cut)| {
                let width = if cut {
                    CUT_PX
                } else {
                    (to_ms - from_ms) as f64 * per_ms
                };
                let piece = Piece {
                    from_ms,
                    to_ms,
                    x0: x,
                    x1: x + width,
                    cut,
                };
                x += width;
                piece
            })
            .collect();
        Axis {
            pieces,
            start_ms,
            left,
        }
    }

    /// The x of an instant.
    pub fn x(&self, at_ms: i64) -> f64 {
        let piece = self
            .pieces
            .iter()
            .find(|p| at_ms <= p.to_ms)
            .or(self.pieces.last());
        match piece {
            Some(p) => {
                let t = (at_ms.clamp(p.from_ms, p.to_ms) - p.from_ms) as f64
                    / (p.to_ms - p.from_ms).max(1) as f64;
                p.x0 + t * (p.x1 - p.x0)
            }
            None => self.left,
        }
    }

    /// The cut stretches: x from, x to, and how long they are, ms.
    pub fn cuts(&self) -> Vec<(f64, f64, i64)> {
        self.pieces
            .iter()
            .filter(|p| p.cut)
            .map(|p| (p.x0, p.x1, p.to_ms - p.from_ms))
            .collect()
    }

    /// Tick instants (ms since the start) with a label each, about one per `spacing_px`: a round
    /// step (1, 2, 5 × 10ⁿ ms) chosen for the linear pieces, ticks only inside them.
    pub fn ticks(&self, spacing_px: f64) -> Vec<i64> {
        let (px, ms) = self
            .pieces
            .iter()
            .filter(|p| !p.cut)
            .fold((0.0, 0i64), |(px, ms), p| {
                (px + p.x1 - p.x0, ms + p.to_ms - p.from_ms)
            });
        let wanted_ms = (spacing_px * ms as f64 / px.max(1.0)).max(1.0);
        let step = nice_step(wanted_ms);
        let mut ticks = Vec::new();
        for piece in self.pieces.iter().filter(|p| !p.cut) {
            let first = (piece.from_ms - self.start_ms + step - 1).div_euclid(step) * step;
            let mut t = first;
            while self.start_ms + t <= piece.to_ms {
                ticks.push(t);
                t += step;
            }
        }
        ticks.dedup();
        ticks
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ ms at least `wanted_ms`.
fn nice_step(wanted_ms: f64) -> i64 {
    let mut unit = 1i64;
    loop {
        for m in [1, 2, 5] {
            if (unit * m) as f64 >= wanted_ms {
                return unit * m;
            }
        }
        unit *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_empty_stretch_is_cut_and_the_rest_is_linear() {
        let axis = Axis::new(0, 100_000, &[0, 1_000, 2_000, 100_000], 5_000, 0.0, 1_000.0);
        assert_eq!(axis.cuts().len(), 1);
        assert!(axis.x(2_000) > 300.0, "the busy start gets room");
        assert!(axis.x(0) < axis.x(1_000) && axis.x(1_000) < axis.x(2_000));
        assert!((axis.x(100_000) - 1_000.0).abs() < 0.01);
    }

    #[test]
    fn ticks_are_round_seconds() {
        let axis = Axis::new(0, 10_000, &[], 60_000, 0.0, 1_000.0);
        assert_eq!(
            axis.ticks(100.0),
            (0..=10).map(|s| s * 1_000).collect::<Vec<_>>()
        );
        assert_eq!(nice_step(1_300.0), 2_000);
    }
}
