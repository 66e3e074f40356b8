//! The simulated chat platform behind the host's channel adapter: how long a send takes and
//! whether it gets through.
//!
//! The host's delivery pass stops at each send ([`clawsim_core::host::DeliveryStep::Send`]); the
//! world asks this model for the send's latency and outcome, lets other actors run for that
//! long, then records what the platform saw in the ledger and reports the outcome to the host.
//! Faults queue up here: the next few sends are slow, or fail transiently, or are refused for
//! good; or one row, the k-th distinct one the channel is handed, is refused for good every
//! time it comes while every other row passes.

use crate::tape::ChoiceSource;
use clawsim_core::channel::SendError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Latency of a healthy send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTiming {
    pub latency_ms_min: i64,
    pub latency_ms_max: i64,
}

impl Default for ChannelTiming {
    fn default() -> Self {
        Self {
            latency_ms_min: 20,
            latency_ms_max: 400,
        }
    }
}

/// How one send will go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSend {
    pub latency_ms: i64,
    pub outcome: Result<(), SendError>,
    /// This send is the first meeting of a row the platform refuses for good from now on.
    pub row_doomed_now: bool,
}

/// The platform: timing plus the faults waiting for the next sends.
#[derive(Debug, Clone, Default)]
pub struct SimChannel {
    timing: ChannelTiming,
    /// `(extra latency, sends left)` of each slow-down still in force.
    slow: Vec<(i64, u32)>,
    transient_left: u32,
    permanent_left: u32,
    /// Per armed row refusal: distinct rows still to let pass before the doomed one, and the
    /// rows let pass so far.
    doom_pending: Vec<(u32, BTreeSet<String>)>,
    /// Rows the platform refuses for good, every time (a property of the row: healing the
    /// channel does not change it).
    doomed: BTreeSet<String>,
}

impl SimChannel {
    /// A healthy platform with the given timing.
    pub fn new(timing: ChannelTiming) -> Self {
        Self {
            timing,
            ..Self::default()
        }
    }

    /// The next `sends` sends take `extra_ms` longer.
    pub fn slow_down(&mut self, extra_ms: i64, sends: u32) {
        self.slow.push((extra_ms, sends));
    }

    /// The next `sends` sends fail transiently.
    pub fn fail_transiently(&mut self, sends: u32) {
        self.transient_left += sends;
    }

    /// The next `sends` sends are refused for good.
    pub fn refuse(&mut self, sends: u32) {
        self.permanent_left += sends;
    }

    /// The `skip + 1`-th distinct row handed to the channel from now on is refused for good,
    /// at that send and every later one; other rows pass.
    pub fn refuse_row(&mut self, skip: u32) {
        self.doom_pending.push((skip, BTreeSet::new()));
    }

    /// Back to healthy (the quiet period). A row already refused for good stays refused.
    pub fn heal(&mut self) {
        self.slow.clear();
        self.transient_left = 0;
        self.permanent_left = 0;
        self.doom_pending.clear();
    }

    /// Whether `row` is refused for good, and whether an armed row refusal counted down to it
    /// just now.
    fn meet_row(&mut self, row: &str) -> (bool, bool) {
        if self.doomed.contains(row) {
            return (true, false);
        }
        let mut dooming = None;
        for (index, (skip, passed)) in self.doom_pending.iter_mut().enumerate() {
            if passed.contains(row) {
                continue;
            }
            if *skip == 0 {
                dooming = Some(index);
                break;
            }
            *skip -= 1;
            passed.insert(row.to_string());
        }
        let Some(index) = dooming else {
            return (false, false);
        };
        self.doom_pending.remove(index);
        self.doomed.insert(row.to_string());
        (true, true)
    }

    /// Decides how the next send, of row `row`, goes, consuming the faults it meets.
    pub fn plan_send(&mut self, row: &str, choices: &mut dyn ChoiceSource) -> PlannedSend {
        let mut latency_ms =
            choices.range_inclusive(self.timing.latency_ms_min, self.timing.latency_ms_max);
        for (extra_ms, left) in &mut self.slow {
            latency_ms += *extra_ms;
            *left -= 1;
        }
        self.slow.retain(|(_, left)| *left > 0);
        let (doomed, row_doomed_now) = self.meet_row(row);
        let outcome = if doomed {
            Err(SendError::Permanent("platform refuses this message".into()))
        } else if self.permanent_left > 0 {
            self.permanent_left -= 1;
            Err(SendError::Permanent("platform refused the message".into()))
        } else if self.transient_left > 0 {
            self.transient_left -= 1;
            Err(SendError::Transient("platform unavailable".into()))
        } else {
            Ok(())
        };
        PlannedSend {
            latency_ms,
            outcome,
            row_doomed_now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::ChoiceTape;

    #[test]
    fn faults_apply_to_the_next_sends_only() {
        let mut channel = SimChannel::new(ChannelTiming::default());
        let mut tape = ChoiceTape::new(vec![]);
        channel.slow_down(5_000, 1);
        channel.fail_transiently(1);
        channel.refuse(1);
        let first = channel.plan_send("r", &mut tape);
        assert_eq!(first.latency_ms, 5_020);
        assert!(matches!(first.outcome, Err(SendError::Permanent(_))));
        let second = channel.plan_send("r", &mut tape);
        assert_eq!(second.latency_ms, 20);
        assert!(matches!(second.outcome, Err(SendError::Transient(_))));
        assert_eq!(channel.plan_send("r", &mut tape).outcome, Ok(()));
    }

    #[test]
    fn a_refused_row_is_refused_every_time_while_other_rows_pass() {
        let mut channel = SimChannel::new(ChannelTiming::default());
        let mut tape = ChoiceTape::new(vec![]);
        channel.refuse_row(1);
        assert_eq!(channel.plan_send("a", &mut tape).outcome, Ok(()));
        assert_eq!(channel.plan_send("a", &mut tape).outcome, Ok(()));
        let first = channel.plan_send("b", &mut tape);
        assert!(first.row_doomed_now);
        assert!(matches!(first.outcome, Err(SendError::Permanent(_))));
        assert_eq!(channel.plan_send("c", &mut tape).outcome, Ok(()));
        channel.heal();
        let again = channel.plan_send("b", &mut tape);
        assert!(!again.row_doomed_now);
        assert!(matches!(again.outcome, Err(SendError::Permanent(_))));
    }

    #[test]
    fn heal_clears_every_fault() {
        let mut channel = SimChannel::new(ChannelTiming::default());
        channel.fail_transiently(3);
        channel.slow_down(1_000, 3);
        channel.heal();
        let send = channel.plan_send("r", &mut ChoiceTape::new(vec![]));
        assert_eq!(send.outcome, Ok(()));
        assert_eq!(send.latency_ms, 20);
    }
}
