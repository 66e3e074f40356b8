//! Where faults landed: for each crash or I/O error of a run, the kind of core step it hit.
//!
//! A fault model that never hits a step tests nothing there, so the summary counts, per step
//! kind, how many runs had a crash or an I/O error inside it. The trace is the evidence, read
//! after the run:
//!
//! - a host crash (or a machine crash, for the host) hits a delivery send when one was in flight
//!   (started, its latency not yet over), else the host between steps;
//! - a container kill (or a machine crash, for each running container) hits the agent-runner in
//!   a turn when its last poll asked for the active interval, between idle polls otherwise, or
//!   the container start when it was still coming up; the killed container is found the way the
//!   world picks it (the `pick`-th running one, in session order);
//! - a power cut in the middle of a disk operation hits the step whose operation it interrupted
//!   (the last step recorded at the instant it fired);
//! - an I/O error (fsync error, disk full, SQLITE_BUSY) is armed and fires at the next
//!   operation that meets it; it is attributed to the first step of its side after it was armed
//!   (the world does not record the step an armed storage fault fired in, so this is the
//!   nearest evidence, not proof).

use crate::properties::RunningContainers;
use clawsim_sim::inject::POWER_CUT_FIRED;
use clawsim_sim::ledger::FaultRecord;
use clawsim_sim::trace::TraceEvent;
use clawsim_sim::world::RunOutcome;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
            fault: fault.kind.clone(),
            step,
        };
        match fault.kind.as_str() {
            "host-crash" => {
                landings.push(landed("crash", host_step(&events[..before], fault.at_ms)))
            }
            "container-killed" => {
                let victim = killed_session(&events[..before], fault);
                let step = victim.map_or("none".to_string(), |s| {
                    container_step(&events[..before], &s)
                });
                landings.push(landed("crash", step));
            }
            "machine-crash" => {
                landings.push(landed("crash", host_step(&events[..before], fault.at_ms)));
                for session in running_sessions(&events[..before]) {
                    landings.push(landed("crash", container_step(&events[..before], &session)));
                }
            }
            "power-cut" => {
                if let Some(step) = power_cut_step(&events[before..]) {
                    landings.push(landed("crash", step));
                }
            }
            "fsync-error" | "disk-full" | "sqlite-busy" => {
                let side = side_of(fault);
                let step = events[before..]
                    .iter()
                    .find(|e| actor_side(&e.actor) == Some(side))
                    .map_or("none".to_string(), step_kind);
                landings.push(landed("io-error", step));
            }
            _ => {}
        }
    }
    landings
}

/// The step an armed power cut fell in: the world records the cut right after the step whose
/// disk operation it interrupted, so that step's last line, at the same instant, names it.
/// `None` when the cut never fired (the quiet period disarmed it).
fn power_cut_step(events: &[TraceEvent]) -> Option<String> {
    let fired = events
        .iter()
        .position(|e| e.actor == "faults" && e.what == POWER_CUT_FIRED)?;
    let at_ms = events[fired].at_ms;
    let interrupted = events[..fired]
        .iter()
        .rev()
        .take_while(|e| e.at_ms == at_ms)
        .find(|e| actor_side(&e.actor).is_some());
    Some(interrupted.map_or("host-between-steps".to_string(), step_kind))
}

/// `delivery-send` when a send was in flight at `at_ms`, else `host-between-steps`.
fn host_step(events: &[TraceEvent], at_ms: i64) -> String {
    let in_flight = events.iter().any(|e| {
        e.actor.starts_with("delivery")
            && send_latency_ms(&e.what).is_some_and(|latency| e.at_ms + latency > at_ms)
    });
    if in_flight {
        "delivery-send".into()
    } else {
        "host-between-steps".into()
    }
}

/// The latency of a trace line `send <id> seq <seq> (<ms> ms)`.
fn send_latency_ms(what: &str) -> Option<i64> {
    let rest = what.strip_prefix("send ")?;
    let inside = rest.rsplit_once('(')?.1.strip_suffix(" ms)")?;
    inside.parse().ok()
}

/// What the session's container was doing: starting, in a turn, or between idle polls.
fn container_step(events: &[TraceEvent], session: &str) -> String {
    let last = events.iter().rev().find(|e| {
        e.session.as_deref() == Some(session) && (e.actor == "runner" || e.actor == "runtime")
    });
    match last {
        Some(e) if e.actor == "runtime" && e.what.starts_with("start requested") => {
            "container-start".into()
        }
        Some(e) if e.actor == "runner" => runner_step(&e.what).into(),
        _ => "container-start".into(),
    }
}

/// Sessions whose container was up just before the fault, in id order.
fn running_sessions(events: &[TraceEvent]) -> Vec<String> {
    running_before(events).sessions()
}

/// The containers up after `events`, replayed the way the evidence does.
fn running_before(events: &[TraceEvent]) -> RunningContainers {
    let mut running = RunningContainers::default();
    for event in events {
        match event.actor.as_str() {
            "runtime" => {
                running.runtime(event.session.as_deref().unwrap_or(""), &event.what);
            }
            "faults" => {
                running.fault(&event.what);
            }
            _ => {}
        }
    }
    running
}

/// The container a kill picked: the `pick`-th running one, modulo their number.
fn killed_session(events: &[TraceEvent], fault: &FaultRecord) -> Option<String> {
    let detail: Value = serde_json::from_str(&fault.detail).ok()?;
    let pick = detail.get("pick")?.as_u64()?;
    running_before(events).pick(pick)
}

fn side_of(fault: &FaultRecord) -> &'static str {
    let detail: Value = serde_json::from_str(&fault.detail).unwrap_or_default();
    match detail.get("side").and_then(Value::as_str) {
        Some("container") => "container",
        _ => "host",
    }
}

fn actor_side(actor: &str) -> Option<&'static str> {
    match actor {
        "router" | "delivery-fast" | "delivery-slow" | "delivery" | "sweep" | "user" => {
            Some("host")
        }
        "runner" => Some("container"),
        _ => None,
    }
}

/// The step kind of one trace event.
fn step_kind(event: &TraceEvent) -> String {
    match event.actor.as_str() {
        "runner" => runner_step(&event.what).into(),
        "delivery-fast" | "delivery-slow" | "delivery" => "delivery".into(),
        "user" => "router".into(),
        other => other.to_string(),
    }
}

/// `runner-turn` for a poll inside a turn, `runner-idle` otherwise.
fn runner_step(what: &str) -> &'static str {
    let next_ms = what
        .split("next in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<i64>().ok());
    match next_ms {
        Some(ms) if ms <= TURN_POLL_MS_MAX => "runner-turn",
        _ => "runner-idle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_lines_give_their_latency() {
        assert_eq!(send_latency_ms("send out-1 seq Some(3) (82 ms)"), Some(82));
        assert_eq!(send_latency_ms("sent out-1"), None);
    }

    fn event(at_ms: i64, actor: &str, what: &str) -> TraceEvent {
        TraceEvent {
            step: 0,
            at_ms,
            actor: actor.into(),
            session: None,
            what: what.into(),
        }
    }

    #[test]
    fn a_power_cut_lands_in_the_step_it_interrupted() {
        let events = [
            event(10, "sweep", "SweepReport { .. }"),
            event(20, "channel", "sent out-1"),
            event(20, "delivery", "record of out-1 failed: disk I/O error"),
            event(20, "faults", POWER_CUT_FIRED),
        ];
        assert_eq!(power_cut_step(&events).as_deref(), Some("delivery"));
        assert_eq!(power_cut_step(&events[..3]), None, "never fired");
        let between = [
            event(10, "sweep", "x"),
            event(20, "faults", POWER_CUT_FIRED),
        ];
        assert_eq!(
            power_cut_step(&between).as_deref(),
            Some("host-between-steps")
        );
    }

    #[test]
    fn short_poll_intervals_are_turns() {
        assert_eq!(runner_step("poll, next in 500 ms"), "runner-turn");
        assert_eq!(
            runner_step("duplicate wake: poll, next in 480 ms"),
            "runner-turn"
        );
        assert_eq!(runner_step("poll, next in 1000 ms"), "runner-idle");
        assert_eq!(runner_step("agent-runner started"), "runner-idle");
    }
}
