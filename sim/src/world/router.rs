//! The users and the router: a user's message reaches the host's router (or waits while the
//! host is down, or is offered again after a refusal), carrying the mock scripts of provider
//! faults armed for it; a user answers a question card the channel showed them.

use super::event::Event;
use super::state::World;
use crate::fs::{FsOp, PathMatch};
use crate::ledger::AnswerRecord;
use crate::workload::{UserMessage, SIM_CHANNEL};
use clawsim_core::host::InboundEvent;
use clawsim_oracle::event::{Actor, Event as TypedEvent};

/// How many times a user tries to answer a question before giving up.
const ANSWER_ATTEMPTS_MAX: u32 = 20;

impl World {
    /// A user's message reaches the host (or waits for it while it is down).
    pub(super) fn arrival(&mut self, index: usize) {
        let now = self.now_ms();
        if self.record.ledger.sent[index].offers == 0 {
            self.attach_armed_scripts(index);
        }
        let sent = &mut self.record.ledger.sent[index];
        sent.offers += 1;
        // The text as sent: the workload's, plus any provider-fault script it carries.
        let message = UserMessage {
            text: sent.text.clone(),
            ..self.config.workload.messages[index].clone()
        };
        let event = InboundEvent {
            channel_type: SIM_CHANNEL.into(),
            platform_id: self.config.workload.chats[message.chat].platform_id.clone(),
            thread_id: message.thread_id.clone(),
            kind: message.kind().into(),
            content: message.content(),
        };
        let folder_crash = self.arm_folder_crash();
        let routed = self.host_step(|world| {
            let host = world.host.running.as_mut()?;
            Some(host.route(&event))
        });
        if let Some((down_ms, trap)) = folder_crash {
            if self.armed.disarm_unsprung(&self.fs, trap) {
                self.armed.folder_crashes.insert(0, down_ms);
            }
        }
        let Some(routed) = routed else {
            self.host.backlog.push(index);
            self.record(Actor::Router, None, TypedEvent::MessageWaits { index });
            return;
        };
        match routed {
            Ok(routed) => {
                if self.armed.silent_messages.remove(&index) {
                    let session = routed.session_id.clone();
                    *self.armed.silent_sessions.entry(session).or_default() += 1;
                }
                let sent = &mut self.record.ledger.sent[index];
                sent.routed_at_ms = Some(now);
                sent.session_id = Some(routed.session_id.clone());
                sent.message_id = Some(routed.message_id.clone());
                sent.seq = Some(routed.seq);
                let routed_event = TypedEvent::MessageRouted {
                    index,
                    message_id: routed.message_id.clone(),
                    seq: routed.seq,
                };
                self.record(Actor::Router, Some(&routed.session_id), routed_event);
            }
            Err(error) => {
                let delay_ms = self.redelivery_delay_ms();
                self.schedule_in(delay_ms, Event::Arrival { index });
                let error = error.to_string();
                self.record(
                    Actor::Router,
                    None,
                    TypedEvent::MessageRefused { index, error },
                );
            }
        }
    }

    /// A crash aimed between a new session's central row and its folder: armed for this
    /// routing, the host dies at the first directory it creates under `sessions/` (an
    /// existing session's folder creates none). Returns the downtime and the trap.
    fn arm_folder_crash(&mut self) -> Option<(i64, crate::fs::TrapId)> {
        let down_ms = *self.armed.folder_crashes.first()?;
        self.host.running.as_ref()?;
        self.armed.folder_crashes.remove(0);
        let sessions = self.host.config.data_dir.join("sessions");
        let path = PathMatch::Contains(format!("{}/", sessions.display()));
        let kind = "crash-between-central-row-and-folder";
        let trap = self.arm_host_crash(kind, Some(FsOp::CreateDir), path, down_ms);
        Some((down_ms, trap))
    }

    /// How long the platform waits before offering something the host refused again.
    fn redelivery_delay_ms(&mut self) -> i64 {
        1 + self
            .choices
            .below(self.config.timing.redelivery_ms_max as u64) as i64
    }

    /// Provider faults take effect here: their mock scripts ride on this message's text, and
    /// each is counted now that it will meet the provider.
    fn attach_armed_scripts(&mut self, index: usize) {
        let armed = self.armed.take_scripts();
        if armed.is_empty() {
            return;
        }
        let scripts: Vec<&str> = armed.iter().map(|(_, script)| script.as_str()).collect();
        let sent = &mut self.record.ledger.sent[index];
        sent.text = format!("{} @mock {}", sent.text, scripts.join("; "));
        for (kind, _) in &armed {
            self.record.count_fault(kind);
            if *kind == "provider-silent-past-idle" {
                self.armed.silent_messages.insert(index);
            }
        }
        let scripts = scripts.into_iter().map(str::to_string).collect();
        self.record(
            Actor::Faults,
            None,
            TypedEvent::ScriptsAttached { index, scripts },
        );
    }

    /// A user answers a question card.
    pub(super) fn answer(&mut self, question_id: String, option: String, attempt: u32) {
        let retry = Event::Answer {
            question_id: question_id.clone(),
            option: option.clone(),
            attempt: attempt + 1,
        };
        let result = self.host_step(|world| match world.host.running.as_mut() {
            Some(host) => host
                .answer_question(&question_id, &option)
                .map_err(|e| e.to_string()),
            None => Err("host down".to_string()),
        });
        let now = self.now_ms();
        match result {
            Ok(routed) => {
                self.record.ledger.answers.push(AnswerRecord {
                    at_ms: now,
                    question_id: question_id.clone(),
                    option,
                    message_id: Some(routed.message_id.clone()),
                });
                let answered = TypedEvent::QuestionAnswered {
                    question_id,
                    message_id: routed.message_id,
                };
                self.record(Actor::User, Some(&routed.session_id), answered);
            }
            Err(error) => {
                if attempt + 1 < ANSWER_ATTEMPTS_MAX {
                    let delay_ms = self.redelivery_delay_ms();
                    self.schedule_in(delay_ms, retry);
                }
                let refused = TypedEvent::AnswerRefused { question_id, error };
                self.record(Actor::User, None, refused);
            }
        }
    }
}
