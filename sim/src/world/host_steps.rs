//! The host process's own steps: its three timers — the fast delivery pass (sessions whose
//! container runs), the slow one (every active session) and the sweep — and its restart after
//! a crash. A delivery pass stops at each channel send and resumes when the send completes, so
//! other actors run in between; the platform records what it received, and a user answers a
//! question card it showed.

use super::event::{Event, Timer};
use super::host::ActivePass;
use super::state::World;
use crate::fs::{FsOp, PathMatch};
use crate::ledger::{ChannelSend, SendOutcome};
use clawsim_core::channel::{OutboundDelivery, SendError};
use clawsim_core::host::{DeliveryStep, SweepReport};
use clawsim_core::SessionPaths;
use clawsim_oracle::event::{Actor, Event as TypedEvent, SendResult, SweepFacts};
use serde_json::Value;

impl World {
    /// Starts the host's timers, as a freshly started host process does.
    pub(super) fn schedule_timers(&mut self) {
        for timer in [Timer::DeliveryFast, Timer::DeliverySlow, Timer::Sweep] {
            let event = Event::Tick {
                timer,
                incarnation: self.host.incarnation,
                once: false,
            };
            self.schedule_in(self.host.interval_ms(timer), event);
        }
    }

    /// One of the host's timers fires (and re-arms, unless it is a one-off or its host died).
    pub(super) fn tick(&mut self, timer: Timer, incarnation: u64, once: bool) {
        if !self.host.is_current(incarnation) {
            return;
        }
        if !once {
            let event = Event::Tick {
                timer,
                incarnation,
                once,
            };
            self.schedule_in(self.host.interval_ms(timer), event);
        }
        match timer {
            Timer::DeliveryFast => self.deliver_sessions(true),
            Timer::DeliverySlow => self.deliver_sessions(false),
            Timer::Sweep => self.sweep_sessions(),
        }
    }

    /// Ids of the active sessions (only those whose container runs, for the fast pass).
    fn session_ids(&mut self, running_only: bool, actor: Actor) -> Vec<String> {
        let Some(host) = self.host.running.as_mut() else {
            return Vec::new();
        };
        match host.sessions_to_deliver(running_only) {
            Ok(ids) => ids,
            Err(error) => {
                let error = error.to_string();
                self.record(actor, None, TypedEvent::SessionsUnlisted { error });
                Vec::new()
            }
        }
    }

    fn deliver_sessions(&mut self, fast: bool) {
        let actor = pass_actor(fast);
        for session_id in self.session_ids(fast, actor) {
            let Some(host) = self.host.running.as_mut() else {
                return;
            };
            match host.begin_delivery(&session_id) {
                Ok(Some(pass)) => {
                    let active = ActivePass {
                        session_id,
                        pass,
                        fast,
                    };
                    let pass_id = self.host.add_pass(active);
                    self.continue_pass(pass_id);
                }
                Ok(None) => self.record(actor, Some(&session_id), TypedEvent::PassBusy),
                Err(error) => {
                    let error = error.to_string();
                    let failed = TypedEvent::PassBeginFailed { error };
                    self.record(actor, Some(&session_id), failed)
                }
            }
        }
    }

    /// Runs a delivery pass until it needs the channel or is over. When the pass's agent has
    /// asked for a system action and a crash is aimed at it, the host dies at the first page
    /// this step writes into the session's inbound file: the middle of the commit holding the
    /// action's effect and its `delivered` row.
    fn continue_pass(&mut self, pass_id: u64) {
        let Some(session_id) = self.host.passes.get(&pass_id).map(|p| p.session_id.clone()) else {
            return;
        };
        let down_ms = self
            .armed
            .action_sessions
            .get(&session_id)
            .and_then(|crashes| crashes.first().copied());
        let Some(down_ms) = down_ms else {
            return self.continue_pass_unarmed(pass_id);
        };
        let inbound = SessionPaths {
            layout: self.config.design.layout,
            ..SessionPaths::new(format!("/{session_id}"))
        }
        .inbound_db();
        let path = PathMatch::EndsWith(inbound.display().to_string());
        let kind = "crash-between-action-and-record";
        let trap = self.arm_host_crash(kind, Some(FsOp::Write), path, down_ms);
        self.continue_pass_unarmed(pass_id);
        if !self.armed.disarm_unsprung(&self.fs, trap) {
            if let Some(crashes) = self.armed.action_sessions.get_mut(&session_id) {
                crashes.remove(0);
            }
        }
    }

    fn continue_pass_unarmed(&mut self, pass_id: u64) {
        let (Some(host), Some(active)) = (
            self.host.running.as_mut(),
            self.host.passes.get_mut(&pass_id),
        ) else {
            return;
        };
        let actor = pass_actor(active.fast);
        let session_id = active.session_id.clone();
        match host.delivery_step(&mut active.pass) {
            Ok(DeliveryStep::Send(delivery)) => {
                let row = &delivery.message_out_id;
                let planned = self.channel.plan_send(row, self.choices.as_mut());
                let started = TypedEvent::SendStarted {
                    row: row.clone(),
                    seq: delivery.seq,
                    latency_ms: planned.latency_ms,
                };
                let event = Event::SendDone {
                    pass_id,
                    incarnation: self.host.incarnation,
                    delivery,
                    outcome: planned.outcome,
                };
                self.schedule_in(planned.latency_ms, event);
                self.record(actor, Some(&session_id), started);
                if !self.armed.mid_send_crashes.is_empty() {
                    let down_ms = self.armed.mid_send_crashes.remove(0);
                    let crash = Event::CrashMidSend {
                        incarnation: self.host.incarnation,
                        session_id: session_id.clone(),
                        down_ms,
                    };
                    self.schedule_in(planned.latency_ms / 2, crash);
                }
                if planned.row_doomed_now {
                    self.fault_fired("channel-refuses-row", Some(&session_id));
                }
            }
            Ok(DeliveryStep::Done) => {
                self.host.end_pass(pass_id);
                self.record(actor, Some(&session_id), TypedEvent::PassDone);
            }
            Err(error) => {
                self.host.end_pass(pass_id);
                let error = error.to_string();
                self.record(actor, Some(&session_id), TypedEvent::PassFailed { error });
            }
        }
    }

    /// A channel send completes: the platform records what it got, then the host hears how it
    /// went — unless the host died meanwhile, in which case the request may or may not have
    /// left the process before it did.
    pub(super) fn send_done(
        &mut self,
        pass_id: u64,
        incarnation: u64,
        delivery: OutboundDelivery,
        outcome: Result<(), SendError>,
    ) {
        let host_alive = self.host.is_current(incarnation);
        let reached = host_alive || self.choices.chance(0.5);
        let session_id = delivery.session_id.clone();
        if reached {
            self.platform_receives(&delivery, &outcome, incarnation);
        }
        let finished = TypedEvent::SendFinished {
            row: delivery.message_out_id.clone(),
            result: send_result(&outcome),
            host_alive,
            reached,
        };
        self.record(Actor::Channel, Some(&session_id), finished);
        if !host_alive || !self.host.passes.contains_key(&pass_id) {
            return;
        }
        // A crash aimed between a send and its record: the platform has accepted, so the
        // host dies at the first write of the record.
        let crash = match (&outcome, self.armed.send_crashes.first().copied()) {
            (Ok(()), Some(down_ms)) => {
                self.armed.send_crashes.remove(0);
                let kind = "crash-between-send-and-record";
                let any = PathMatch::Contains(String::new());
                Some((down_ms, self.arm_host_crash(kind, None, any, down_ms)))
            }
            _ => None,
        };
        let (Some(host), Some(active)) = (
            self.host.running.as_mut(),
            self.host.passes.get_mut(&pass_id),
        ) else {
            return;
        };
        let recorded = host.delivery_sent(&mut active.pass, outcome);
        if let Some((down_ms, trap)) = crash {
            if self.armed.disarm_unsprung(&self.fs, trap) {
                self.armed.send_crashes.insert(0, down_ms);
            }
        }
        match recorded {
            Ok(()) => self.continue_pass(pass_id),
            Err(error) => {
                self.host.end_pass(pass_id);
                let failed = TypedEvent::RecordFailed {
                    row: delivery.message_out_id.clone(),
                    error: error.to_string(),
                };
                self.record(Actor::Delivery, Some(&session_id), failed);
            }
        }
    }

    /// The ledger's record of a send, and the user's answer if it was a question card.
    fn platform_receives(
        &mut self,
        delivery: &OutboundDelivery,
        outcome: &Result<(), SendError>,
        incarnation: u64,
    ) {
        let outcome = match outcome {
            Ok(()) => SendOutcome::Received,
            Err(SendError::Transient(_)) => SendOutcome::Transient,
            Err(SendError::Permanent(_)) => SendOutcome::Permanent,
        };
        self.record.ledger.channel.push(ChannelSend {
            at_ms: self.now_ms(),
            outcome,
            message_out_id: delivery.message_out_id.clone(),
            seq: delivery.seq,
            session_id: delivery.session_id.clone(),
            route: delivery.route.clone(),
            kind: delivery.kind.clone(),
            content: delivery.content.clone(),
            files: delivery
                .files
                .iter()
                .map(|(name, _)| name.clone())
                .collect(),
            host_incarnation: incarnation,
        });
        if outcome != SendOutcome::Received {
            return;
        }
        if let Some((question_id, option)) = question_of(&delivery.content) {
            let max = self.config.workload.answer_delay_ms_max.max(0) as u64;
            let delay = self.choices.below(max + 1) as i64;
            let event = Event::Answer {
                question_id,
                option,
                attempt: 0,
            };
            self.schedule_in(delay, event);
        }
    }

    /// The sweep, as the live host runs it: every active session, one report each.
    fn sweep_sessions(&mut self) {
        let Some(host) = self.host.running.as_mut() else {
            return;
        };
        match host.sweep_all() {
            Ok(reports) => {
                for (session_id, report) in reports {
                    let swept = match report {
                        Ok(report) => TypedEvent::Swept {
                            facts: sweep_facts(&report),
                        },
                        Err(error) => TypedEvent::SweepFailed {
                            error: error.to_string(),
                        },
                    };
                    self.record(Actor::Sweep, Some(&session_id), swept);
                }
            }
            Err(error) => {
                let error = error.to_string();
                self.record(Actor::Sweep, None, TypedEvent::SessionsUnlisted { error })
            }
        }
    }

    /// The host process starts again.
    pub(super) fn host_restart(&mut self) {
        if self.host.running.is_some() {
            return;
        }
        let opened = self.host.open(self.containers.runtime_handle());
        match opened {
            Ok(host) => {
                self.host.running = Some(host);
                self.host.incarnation += 1;
                let incarnation = self.host.incarnation;
                self.record(Actor::World, None, TypedEvent::HostStarted { incarnation });
                if std::mem::take(&mut self.host.crashed_since_restart) {
                    let checks = self.integrity_of_all();
                    self.record.ledger.crash_checks.extend(checks);
                }
                self.schedule_timers();
                for index in std::mem::take(&mut self.host.backlog) {
                    self.schedule_in(0, Event::Arrival { index });
                }
            }
            Err(error) => {
                let error = error.to_string();
                self.record(Actor::World, None, TypedEvent::HostStartFailed { error });
                let retry_ms = self.config.timing.host_restart_retry_ms;
                self.schedule_in(retry_ms, Event::HostRestart);
            }
        }
    }
}

/// The actor of a delivery pass.
fn pass_actor(fast: bool) -> Actor {
    if fast {
        Actor::DeliveryFast
    } else {
        Actor::DeliverySlow
    }
}

/// A send's outcome as the platform saw it.
fn send_result(outcome: &Result<(), SendError>) -> SendResult {
    match outcome {
        Ok(()) => SendResult::Received,
        Err(SendError::Transient(error)) => SendResult::Transient {
            error: error.clone(),
        },
        Err(SendError::Permanent(error)) => SendResult::Permanent {
            error: error.clone(),
        },
    }
}

/// What a sweep returned, as the record keeps it.
fn sweep_facts(report: &SweepReport) -> SweepFacts {
    SweepFacts {
        acks_synced: report.acks_synced,
        woke: report.woke,
        presumed_dead: report.presumed_dead,
        retried: report.retried,
        failed: report.failed,
        output_sent: report.output_sent,
        recurrences: report.recurrences,
        stopped_idle: report.stopped_idle,
        outbound_unreadable: report.outbound_unreadable,
    }
}

/// `(question id, first option)` of an `ask_question` card.
fn question_of(content: &Value) -> Option<(String, String)> {
    if content.get("type").and_then(Value::as_str) != Some("ask_question") {
        return None;
    }
    let question_id = content.get("questionId")?.as_str()?.to_string();
    let option = match content.get("options").and_then(|o| o.get(0)) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other
            .get("value")
            .or_else(|| other.get("label"))
            .and_then(Value::as_str)
            .map_or_else(|| other.to_string(), str::to_string),
        None => String::new(),
    };
    Some((question_id, option))
}
