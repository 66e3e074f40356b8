//! §9.12 Routing: each reply reaches the conversation of what it answers.
//!
//! - A default answer (`Mock response to: …`) quotes its input, so it names the messages it
//!   answers by their tokens; it must have been sent to the conversation (channel, platform id,
//!   thread) each of them was sent in, as the platform noted it.
//! - A scheduled task's output quotes the task's prompt; the task belongs to the conversation
//!   of the turn that called `schedule_task` (the provider boundary shows the call and the
//!   turn's prompt, whose tokens name that conversation).
//! - An agent-to-agent reply: when a session's agent called `send_to_agent`, the answer quoting
//!   that text must land in the asking session's `inbound.db`, and in no other session (an
//!   answer to that answer, quoting it one level deeper, is the asker's own reply).

use super::evidence::{
    contains_word, conversation_name, text_of_content, token_of, Evidence, ANSWER_PREFIX,
};
use super::{Found, Property, Verdict};
use crate::event::Event;
use clawsim_core::model::{kind, Route};
use serde_json::Value;
use std::collections::BTreeMap;

/// §9.12.
pub fn routing(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let calls = tool_calls(evidence);
    replies_reach_their_conversation(evidence, verdict, &calls.tasks);
    agent_replies_return(evidence, verdict, &calls.relays);
}

/// What the agents asked for through tools, as the provider boundary saw it.
#[derive(Default)]
struct ToolCalls {
    /// The token of each scheduled task's prompt → the conversation that scheduled it.
    tasks: BTreeMap<String, Route>,
    /// The token of each `send_to_agent` text → the session that sent it.
    relays: BTreeMap<String, String>,
}

/// The conversation a turn serves, from the first token of its prompt that names one.
fn conversation_of_input(
    evidence: &Evidence<'_>,
    tasks: &BTreeMap<String, Route>,
    input: &str,
) -> Option<Route> {
    let of_message = evidence.ledger.sent.iter().find_map(|sent| {
        let token = token_of(&sent.text);
        contains_word(input, token)
            .then(|| sent.conversation.clone())
            .flatten()
    });
    of_message.or_else(|| {
        tasks
            .iter()
            .find(|(token, _)| contains_word(input, token))
            .map(|(_, route)| route.clone())
    })
}

fn tool_calls(evidence: &Evidence<'_>) -> ToolCalls {
    let mut calls = ToolCalls::default();
    let mut turn_of: BTreeMap<String, Option<Route>> = BTreeMap::new();
    for recorded in evidence.outcome.events {
        let session = recorded.session.clone().unwrap_or_default();
        match &recorded.event {
            Event::TurnStarted { prompt, .. } => {
                let conversation = conversation_of_input(evidence, &calls.tasks, prompt);
                turn_of.insert(session, conversation);
            }
            Event::ToolCalled { name, args } => {
                let text = |field: &str| args.get(field).and_then(Value::as_str).unwrap_or("");
                match name.as_str() {
                    "schedule_task" => {
                        let token = token_of(text("prompt")).to_string();
                        if let Some(Some(route)) = turn_of.get(&session) {
                            calls.tasks.entry(token).or_insert_with(|| route.clone());
                        }
                    }
                    "send_to_agent" => {
                        let token = token_of(text("text")).to_string();
                        calls.relays.entry(token).or_insert(session);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    calls
}

/// Every default answer went to the conversation of each message or task it quotes.
fn replies_reach_their_conversation(
    evidence: &Evidence<'_>,
    verdict: &mut Verdict,
    tasks: &BTreeMap<String, Route>,
) {
    let mut owners: Vec<(String, Route)> = Vec::new();
    for sent in &evidence.ledger.sent {
        match &sent.conversation {
            Some(route) => owners.push((token_of(&sent.text).to_string(), route.clone())),
            None => verdict.skip(
                Property::Routing,
                "a message whose conversation the world did not note",
            ),
        }
    }
    owners.extend(tasks.iter().map(|(t, r)| (t.clone(), r.clone())));
    for reply in evidence.replies.values() {
        let Some(quoted) = reply.text.strip_prefix(ANSWER_PREFIX) else {
            continue;
        };
        for (token, route) in owners.iter().filter(|(t, _)| contains_word(quoted, t)) {
            verdict.check(Property::Routing, reply.route == *route, || {
                Found::new(format!(
                    "{} answers {token} of conversation {} but went to {}",
                    reply.message_out_id,
                    conversation_name(route),
                    conversation_name(&reply.route)
                ))
                .in_session(&reply.session_id)
                .at(reply.received_at_ms.unwrap_or_default())
            });
        }
    }
}

/// An answer to a `send_to_agent` text lands in the session that sent it.
fn agent_replies_return(
    evidence: &Evidence<'_>,
    verdict: &mut Verdict,
    relays: &BTreeMap<String, String>,
) {
    if !evidence.ledger.observed.provider_boundary {
        verdict.not_judged(
            Property::Routing,
            "agent-to-agent replies: which session called send_to_agent is seen only at the \
             provider boundary",
        );
        return;
    }
    for (session, snapshot) in &evidence.snapshots {
        for row in snapshot.inbound.iter().filter(|r| r.kind == kind::CHAT) {
            let text = text_of_content(&row.content_json());
            // An answer to an answer (the asker's agent replying in turn) quotes the relay
            // too, one level deeper; only the first answer is the target's reply.
            let Some(quoted) = text
                .strip_prefix(ANSWER_PREFIX)
                .filter(|quoted| !quoted.contains(ANSWER_PREFIX))
            else {
                continue;
            };
            for (token, asker) in relays.iter().filter(|(t, _)| contains_word(quoted, t)) {
                verdict.check(Property::Routing, asker == session, || {
                    Found::new(format!(
                        "the answer to {token}, which session {asker} sent to another agent, \
                         landed in session {session} as {}",
                        row.id
                    ))
                    .in_session(session)
                });
            }
        }
    }
}
