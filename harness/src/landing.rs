//! Where faults landed: for each crash or I/O error of a run, the kind of core step it hit.
//!
//! A fault model that never hits a step tests nothing there, so the summary counts, per step
//! kind, how many runs had a crash or an I/O error inside it. The typed events are the
//! evidence, read after the run:
//!
//! - a host crash (or a machine crash, for the host) hits a delivery send when one was in flight
//!   (started, its latency not yet over), else the host between steps;
//! - a container kill (or a machine crash, for each running container) hits the agent-runner in
//!   a turn when its last poll asked for the active interval, between idle polls otherwise, or
//!   the container start when it was still coming up; the killed container is found the way the
//!   world picks it (the `pick`-th running one, in session order);
//! - a power cut in the middle of a disk operation, and an armed I/O error (fsync error, disk
//!   full, SQLITE_BUSY) when it meets its operation, hit the step the world names in its
//!   `struck_in` (the step whose disk operation it struck), or the host between steps when no
//!   step of either side ran one;
//! - a targeted crash (between send and record, answer and ack, action and record, central
//!   row and folder) and a targeted I/O error (a failed outbox removal or heartbeat touch) hit
//!   the step its `FaultFired` names, like an armed I/O error.

use crate::properties::RunningContainers;
use clawsim_oracle::event::{Actor, Event};
use clawsim_oracle::fault::Fault;
use clawsim_oracle::trace::TraceEvent;
use clawsim_sim::world::RunOutcome;
use serde::{Deserialize, Serialize};

/// A fault and the kind of step it hit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Landing {
    /// `crash` or `io-error`.
    pub class: String,
    /// The fault kind (`host-crash`, `fsync-error`, ...).
    pub fault: String,
    /// The step kind it hit (`delivery-send`, `runner-turn`, `sweep`, ...).
    pub step: String,
}

/// A poll that asks to run again within this long is inside a turn (the runner polls every
/// 0.5 s while a query is active, every 1 s when idle).
const TURN_POLL_MS_MAX: i64 = 750;

/// Every crash and I/O error of the run, with the step kind it landed in.
pub fn fault_landings(outcome: &RunOutcome) -> Vec<Landing> {
    let events = outcome.trace.events();
    let mut landings = Vec::new();
    for fault in outcome.ledger.faults.iter().filter(|f| f.applied) {
        let before = events.partition_point(|e| e.at_ms < fault.at_ms);
        let landed = |class: &str, step: String| Landing {
            class: class.into(),
            fault: fault.kind().to_string(),
            step,
        };
        match fault.fault {
            Fault::HostCrash { .. } => {
                landings.push(landed("crash", host_step(&events[..before], fault.at_ms)))
            }
            Fault::ContainerKilled { pick } => {
                let victim = running_before(&events[..before]).pick(pick);
                let step = victim.map_or("none".to_string(), |s| {
                    container_step(&events[..before], &s)
                });
                landings.push(landed("crash", step));
            }
            Fault::MachineCrash { .. } => {
                landings.push(landed("crash", host_step(&events[..before], fault.at_ms)));
                for session in running_before(&events[..before]).sessions() {
                    landings.push(landed("crash", container_step(&events[..before], &session)));
                }
            }
            Fault::HostCrashMidSend { .. } => {
                let fired = events[before..].iter().find(
                    |e| matches!(&e.event, Event::FaultFired { kind, .. } if kind == fault.kind()),
                );
                if let Some(fired) = fired {
                    let before_fired = events.partition_point(|e| e.at_ms < fired.at_ms);
                    landings.push(landed(
                        "crash",
                        host_step(&events[..before_fired], fired.at_ms),
                    ));
                }
            }
            Fault::ContainerKilledStarting { .. } => {
                let fired = events[before..].iter().position(
                    |e| matches!(&e.event, Event::FaultFired { kind, .. } if kind == fault.kind()),
                );
                if let Some(at) = fired.map(|offset| before + offset) {
                    let session = events[at].session.clone().unwrap_or_default();
                    landings.push(landed("crash", container_step(&events[..at], &session)));
                }
            }
            Fault::PowerCut { .. } => {
                let fired = events[before..].iter().find_map(|e| match e.event {
                    Event::PowerCutFired { struck_in } => Some(struck_in),
                    _ => None,
                });
                if let Some(struck_in) = fired {
                    landings.push(landed("crash", struck_step(events, struck_in)));
                }
            }
            Fault::FsyncError { .. }
            | Fault::DiskFull { .. }
            | Fault::SqliteBusy { .. }
            | Fault::OutboxRemovalFails { .. }
            | Fault::HeartbeatTouchFails { .. } => {
                let step = fired_step(&events[before..], events, fault.kind());
                landings.push(landed("io-error", step));
            }
            Fault::CrashBetweenSendAndRecord { .. }
            | Fault::CrashBetweenAnswerAndAck
            | Fault::CrashBetweenActionAndRecord { .. }
            | Fault::CrashBetweenCentralRowAndFolder { .. } => {
                let step = fired_step(&events[before..], events, fault.kind());
                landings.push(landed("crash", step));
            }
            _ => {}
        }
    }
    landings
}

/// The step kind the first `FaultFired` of `kind` in `after` names, or `none` when it never
/// fired.
fn fired_step(after: &[TraceEvent], events: &[TraceEvent], kind: &str) -> String {
    let fired = after.iter().find_map(|e| match &e.event {
        Event::FaultFired { kind: k, struck_in } if k == kind => Some(*struck_in),
        _ => None,
    });
    fired.map_or("none".to_string(), |s| struck_step(events, s))
}

/// The kind of the step a fault struck in, or the host between steps when none ran.
fn struck_step(events: &[TraceEvent], struck_in: Option<u64>) -> String {
    struck_in
        .and_then(|step| events.get(step as usize))
        .map_or("host-between-steps".to_string(), step_kind)
}

/// `delivery-send` when a send was in flight at `at_ms`, else `host-between-steps`.
fn host_step(events: &[TraceEvent], at_ms: i64) -> String {
    let in_flight = events.iter().any(|e| match e.event {
        Event::SendStarted { latency_ms, .. } => e.at_ms + latency_ms > at_ms,
        _ => false,
    });
    if in_flight {
        "delivery-send".into()
    } else {
        "host-between-steps".into()
    }
}

/// What the session's container was doing: starting, in a turn, or between idle polls.
fn container_step(events: &[TraceEvent], session: &str) -> String {
    let last = events
        .iter()
        .rev()
        .find(|e| e.in_session(session) && matches!(e.actor, Actor::Runner | Actor::Runtime));
    match last {
        Some(e) if e.actor == Actor::Runner => runner_step(&e.event).into(),
        _ => "container-start".into(),
    }
}

/// The containers up after `events`, replayed the way the evidence does.
fn running_before(events: &[TraceEvent]) -> RunningContainers {
    let mut running = RunningContainers::default();
    for event in events {
        running.observe(event.session.as_deref().unwrap_or(""), &event.event);
    }
    running
}

/// The step kind of one recorded event.
fn step_kind(event: &TraceEvent) -> String {
    match event.actor {
        Actor::Runner | Actor::Provider => runner_step(&event.event).into(),
        Actor::DeliveryFast | Actor::DeliverySlow | Actor::Delivery => "delivery".into(),
        Actor::User => "router".into(),
        other => other.name().to_string(),
    }
}

/// `runner-turn` for a poll inside a turn, `runner-idle` otherwise.
fn runner_step(event: &Event) -> &'static str {
    match event {
        Event::Polled { next_in_ms, .. } if *next_in_ms <= TURN_POLL_MS_MAX => "runner-turn",
        Event::TurnStarted { .. }
        | Event::TurnPushed { .. }
        | Event::ProviderResult { .. }
        | Event::ProviderError { .. }
        | Event::ToolCalled { .. } => "runner-turn",
        _ => "runner-idle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(step: u64, at_ms: i64, actor: Actor, event: Event) -> TraceEvent {
        TraceEvent {
            step,
            at_ms,
            actor,
            session: None,
            event,
        }
    }

    #[test]
    fn a_power_cut_lands_in_the_step_it_names() {
        let events = [
            event(0, 10, Actor::Sweep, Event::PassDone),
            event(1, 20, Actor::Delivery, Event::PassDone),
        ];
        assert_eq!(struck_step(&events, Some(1)), "delivery");
        assert_eq!(struck_step(&events, Some(0)), "sweep");
        assert_eq!(struck_step(&events, None), "host-between-steps");
    }

    #[test]
    fn short_poll_intervals_are_turns() {
        let polled = |next_in_ms, duplicate| Event::Polled {
            next_in_ms,
            duplicate,
        };
        assert_eq!(runner_step(&polled(500, false)), "runner-turn");
        assert_eq!(runner_step(&polled(480, true)), "runner-turn");
        assert_eq!(runner_step(&polled(1_000, false)), "runner-idle");
        assert_eq!(runner_step(&Event::RunnerStarted), "runner-idle");
    }
}
