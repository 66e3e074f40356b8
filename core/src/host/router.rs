//! Routing (PROTOCOL §7 "Routing"): an inbound event, an answer to a question, or a message from
//! another agent, into the right session's `inbound.db`.
//!
//! `(channel_type, platform_id)` names a messaging group; its highest-priority wired agent group
//! takes the message; the session is the group's one session for that messaging group (mode
//! `shared`) or for that thread (`per-thread`). A missing session is created, and its folder
//! ensured on every route, so a creation cut short by a crash is finished by the next message.
//! An event for an unknown messaging group is refused with an error naming it, and nothing is
//! written.

use super::central::SessionRow;
use super::{Host, InboundEvent, Routed, SessionMode};
use crate::db::Schema;
use crate::env::SessionPaths;
use crate::model::{kind, status, text_of, InboundRow, OutboundRow, Route, AGENT_CHANNEL};
use crate::{Error, Result};
use rusqlite::OptionalExtension;
use serde_json::json;

/// A message about to be written into a session's `inbound.db`.
struct NewMessage<'a> {
    id: &'a str,
    kind: &'a str,
    route: Route,
    content: &'a str,
    /// The id is derived from what caused the message, so finding it already written means
    /// this is a repeat (after a crash) and nothing more is written.
    once: bool,
}

/// What became of a message for another agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AgentDelivery {
    Written {
        session_id: String,
    },
    /// Never deliverable, for this reason.
    Refused(String),
}

impl Host {
    /// Routes one inbound event into its session and wakes the session's container.
    pub fn route(&mut self, event: &InboundEvent) -> Result<Routed> {
        let messaging_group_id = self
            .central
            .messaging_group_by_route(&event.channel_type, &event.platform_id)?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown messaging group: channel_type {:?}, platform_id {:?}",
                    event.channel_type, event.platform_id
                ))
            })?;
        let (agent_group_id, mode) =
            self.central
                .top_wiring(&messaging_group_id)?
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "messaging group {messaging_group_id:?} has no agent group wired"
                    ))
                })?;
        let thread_key = match mode {
            SessionMode::Shared => "",
            SessionMode::PerThread => event.thread_id.as_deref().unwrap_or(""),
        };
        let session = self.session_for(&agent_group_id, &messaging_group_id, thread_key)?;
        let route = Route {
            platform_id: Some(event.platform_id.clone()),
            channel_type: Some(event.channel_type.clone()),
            thread_id: event.thread_id.clone(),
        };
        let message_id = self.env.new_id("msg");
        let message = NewMessage {
            id: &message_id,
            kind: &event.kind,
            route,
            content: &event.content,
            once: false,
        };
        let seq = self.write_message(&session, message)?;
        self.after_write(&session.id);
        Ok(Routed {
            session_id: session.id,
            message_id,
            seq,
        })
    }

    /// Writes the user's answer to a pending question into the asking session as a `system`
    /// row `{questionId, selectedOption}`, then forgets the question. The row's id derives
    /// from the question, so an answer repeated after a crash is written once.
    pub fn answer_question(&mut self, question_id: &str, selected_option: &str) -> Result<Routed> {
        let question = self
            .central
            .pending_question(question_id)?
            .ok_or_else(|| Error::Invalid(format!("no pending question {question_id:?}")))?;
        let session = self.central.require_session(&question.session_id)?;
        let content = json!({ "questionId": question_id, "selectedOption": selected_option });
        let message_id = format!("answer-{question_id}");
        let message = NewMessage {
            id: &message_id,
            kind: kind::SYSTEM,
            route: question.route,
            content: &content.to_string(),
            once: true,
        };
        let seq = self.write_message(&session, message)?;
        self.central.remove_question(question_id)?;
        self.after_write(&session.id);
        Ok(Routed {
            session_id: session.id,
            message_id,
            seq,
        })
    }

    /// Writes an agent's `channel_type='agent'` row into the target agent group's session:
    /// the session named by `thread_id` if it belongs to the target group, else the target's
    /// session for messages from the sender's group (created on demand).
    pub(super) fn deliver_to_agent(
        &mut self,
        sender_session_id: &str,
        sender_group_id: &str,
        row: &OutboundRow,
    ) -> Result<AgentDelivery> {
        let Some(target_group_id) = row.route.platform_id.as_deref() else {
            return Ok(AgentDelivery::Refused(
                "agent message without a target agent group".into(),
            ));
        };
        let Some(sender_name) = self.central.agent_group_name(sender_group_id)? else {
            return Ok(AgentDelivery::Refused(format!(
                "unknown sender agent group {sender_group_id}"
            )));
        };
        if self.central.agent_group_name(target_group_id)?.is_none() {
            return Ok(AgentDelivery::Refused(format!(
                "unknown agent group {target_group_id}"
            )));
        }
        if !self
            .central
            .agent_route_allowed(sender_group_id, target_group_id)?
        {
            return Ok(AgentDelivery::Refused(format!(
                "agent group {sender_group_id} may not send to agent group {target_group_id}"
            )));
        }
        let target = self.agent_target_session(sender_group_id, target_group_id, row)?;
        let content = json!({
            "sender": sender_name,
            "senderId": format!("agent:{sender_group_id}"),
            "text": text_of(&row.content_json()),
        });
        let route = Route {
            platform_id: Some(sender_group_id.to_string()),
            channel_type: Some(AGENT_CHANNEL.to_string()),
            thread_id: Some(sender_session_id.to_string()),
        };
        let message_id = format!("agent-{sender_session_id}-{}", row.id);
        let message = NewMessage {
            id: &message_id,
            kind: kind::CHAT,
            route,
            content: &content.to_string(),
            once: true,
        };
        self.write_message(&target, message)?;
        self.after_write(&target.id);
        Ok(AgentDelivery::Written {
            session_id: target.id,
        })
    }

    fn agent_target_session(
        &mut self,
        sender_group_id: &str,
        target_group_id: &str,
        row: &OutboundRow,
    ) -> Result<SessionRow> {
        if let Some(thread_id) = row.route.thread_id.as_deref() {
            match self.central.session(thread_id)? {
                Some(session) if session.agent_group_id == target_group_id => return Ok(session),
                _ => tracing::info!(row = %row.id, thread_id,
                    "target session not of the target group; using the group's agent session"),
            }
        }
        let now = self.now_text();
        let messaging_group_id = self.central.ensure_messaging_group(
            &format!("agent:{sender_group_id}"),
            AGENT_CHANNEL,
            sender_group_id,
            &now,
        )?;
        self.session_for(target_group_id, &messaging_group_id, "")
    }

    /// The session of `(agent group, messaging group, thread key)`, created if missing, with
    /// its folder ensured.
    fn session_for(
        &mut self,
        agent_group_id: &str,
        messaging_group_id: &str,
        thread_key: &str,
    ) -> Result<SessionRow> {
        let now = self.now_text();
        let new_id = self.env.new_id("sess");
        let session = self.central.ensure_session(
            &new_id,
            agent_group_id,
            messaging_group_id,
            thread_key,
            &now,
        )?;
        self.ensure_session_folder(&session.id, &self.paths(&session))?;
        Ok(session)
    }

    /// Inserts one pending message with the next even seq and returns the seq.
    fn write_message(&mut self, session: &SessionRow, message: NewMessage) -> Result<i64> {
        let row = InboundRow {
            id: message.id.to_string(),
            seq: None,
            kind: message.kind.to_string(),
            timestamp: self.now_text(),
            status: status::PENDING.into(),
            process_after: None,
            recurrence: None,
            tries: 0,
            route: message.route,
            content: message.content.to_string(),
            series_id: None,
        };
        let message_id = message.id;
        let paths = self.paths(session);
        let mut inbound = self.check_out(&session.id, &paths, Schema::Inbound)?;
        let seq = inbound.write(|tx| {
            // Only a message whose id derives from its cause can be here already; a user
            // message's id is new.
            if message.once {
                let existing: Option<Option<i64>> = tx
                    .prepare_cached("SELECT seq FROM messages_in WHERE id = ?1")?
                    .query_row([message_id], |r| r.get(0))
                    .optional()?;
                if let Some(seq) = existing {
                    return Ok(seq.unwrap_or(0));
                }
            }
            crate::seq::insert_inbound(tx, &row)
        })?;
        self.check_in(&session.id, Some(inbound), None);
        Ok(seq)
    }

    /// After a message lands in a session: note the activity and wake the container. A failed
    /// wake is logged; the message is safe and the sweep wakes the session again.
    fn after_write(&mut self, session_id: &str) {
        // `last_active` reaches the central DB at the next sweep: a commit per message would
        // double the cost of routing one.
        self.note_activity(session_id);
        if let Err(error) = self.wake(session_id) {
            tracing::warn!(session = session_id, %error, "wake failed");
        }
    }

    pub(super) fn paths(&self, session: &SessionRow) -> SessionPaths {
        self.config
            .session_paths(&session.agent_group_id, &session.id)
    }
}
