//! §9.11 Answered: what every message that reached the agent got back, in its own conversation.
//!
//! A message is judged once it has an outcome (`completed` or `failed`; one still open is §9.1's
//! business). What it should have got depends on how PROTOCOL §5 treats it, which this module
//! decides with its own reading of the command rules, never with the core's:
//!
//! - a message the provider sees (chat, a passthrough command, an admin command from the
//!   admin other than `/clear`): `completed` with at least one reply in its conversation whose
//!   text is what the provider answered to an input carrying it, and no more default answers
//!   than the input's script asks for; or `completed` with none when that input's script chose
//!   silence (`reply 0`); or `failed` with an `Error: …` reply in its conversation. The answer's
//!   text is known without the core: the mock answers `Mock response to: ` and the first 100
//!   characters of its input (or the script's `say` text), and the provider boundary recorded
//!   every input. A world that did not record that boundary attributes answers by the token
//!   they quote instead.
//! - `/clear` from the admin: `completed`, and its conversation holds one `Session cleared.`
//!   per such command; an admin command from anyone else: `completed`, one `Permission denied:
//!   <command> requires admin access.` each; a filtered command: `completed` and nothing quoting
//!   it. None of the three is answered by the provider.

use super::evidence::{
    contains_word, conversation_name, token_of, Evidence, ProviderInput, ANSWER_PREFIX,
};
use super::{Found, Property, Verdict};
use crate::ledger::SentMessage;
use clawsim_core::model::{status, Route};
use clawsim_core::runner::mock::{Directive, MockScript};
use std::collections::BTreeMap;

/// Admin commands (PROTOCOL §5): only the configured admin may run them. The checker keeps its
/// own copy of §5's lists, as it keeps its own time code: a core that misclassifies a command
/// must not take the checker with it.
pub const ADMIN_COMMANDS: [&str; 6] = [
    "/remote-control",
    "/clear",
    "/compact",
    "/context",
    "/cost",
    "/files",
];

/// Filtered commands: platform chatter, acked and never answered.
pub const FILTERED_COMMANDS: [&str; 5] = ["/help", "/login", "/logout", "/doctor", "/config"];

/// The reply to an admin `/clear`.
pub const SESSION_CLEARED: &str = "Session cleared.";

/// How a failed turn tells its conversation.
pub const ERROR_PREFIX: &str = "Error:";

/// Tools whose call writes no `messages_out` row; every other tool writes one, which the
/// output-sent protection (PROTOCOL §5) counts as the turn having produced output.
const TOOLS_WITHOUT_OUTPUT: [&str; 1] = ["list_tasks"];

/// The host setting naming the admin's sender id.
const ADMIN_VAR: &str = "CLAWSIM_ADMIN_USER_ID";

/// The reply to an admin command from a sender who is not the admin.
pub fn denied_text(command: &str) -> String {
    format!("Permission denied: {command} requires admin access.")
}

/// How PROTOCOL §5 treats a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Treatment {
    /// The provider sees it.
    Prompt,
    /// `/clear` from the admin: the provider session is reset and `Session cleared.` replied.
    Clear,
    /// An admin command from someone else: refused with a reply naming the command.
    Denied(String),
    /// Platform chatter: acked, nothing sent.
    Filtered,
}

/// The command word of a text (first word, lower-cased), if it is a command.
pub fn command_word(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    word.starts_with('/').then(|| word.to_lowercase())
}

/// How a workload message is treated, given the admin's sender id; `None` when the record does
/// not say who sent a command.
pub fn treatment(sent: &SentMessage, admin: Option<&str>) -> Option<Treatment> {
    let Some(word) = command_word(&sent.text) else {
        return Some(Treatment::Prompt);
    };
    if FILTERED_COMMANDS.contains(&word.as_str()) {
        return Some(Treatment::Filtered);
    }
    if !ADMIN_COMMANDS.contains(&word.as_str()) {
        return Some(Treatment::Prompt);
    }
    let from_admin = admin.is_some() && sent.sender_id.as_deref()? == admin.unwrap_or_default();
    Some(match (from_admin, word.as_str()) {
        (false, _) => Treatment::Denied(word),
        (true, "/clear") => Treatment::Clear,
        (true, _) => Treatment::Prompt,
    })
}

/// The admin's sender id as the host's settings name it.
pub fn admin_of(evidence: &Evidence<'_>) -> Option<String> {
    evidence.host.agent_env.get(ADMIN_VAR).cloned()
}

/// What the provider does with one input, from the script it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Response {
    /// Answers with this text, at most this many times.
    Answer(String, u32),
    /// Returns an empty result: the agent chose silence.
    Silence,
    /// Exits, fails or goes quiet: the turn fails.
    Fails,
}

/// How many replies the other messages of `conversation` may send with the words one of
/// `responses` answers with. Where the provider boundary was recorded, what a message may be
/// answered with is what the input carrying it asks for (a batch's scripts make one script: a
/// `reply 2` beside a `say done` answers `done` twice), and an input carrying several of them
/// counts once (found by the swarm run: seed 1277, power-loss; scenario `batched-same-words`).
fn same_words_elsewhere(
    evidence: &Evidence<'_>,
    sent: &SentMessage,
    conversation: &Route,
    responses: &[Response],
) -> usize {
    let words: Vec<&String> = responses
        .iter()
        .filter_map(|r| match r {
            Response::Answer(text, _) => Some(text),
            _ => None,
        })
        .collect();
    let same_words = |input: &str| match response_to(input) {
        Response::Answer(text, times) if words.contains(&&text) => times as usize,
        _ => 0,
    };
    let own_token = token_of(&sent.text);
    let mut inputs_counted = std::collections::BTreeSet::new();
    let mut allowed = 0;
    for other in evidence.ledger.sent.iter().filter(|other| {
        other.index != sent.index && other.conversation.as_ref() == Some(conversation)
    }) {
        let session = other.session_id.as_deref().unwrap_or("");
        let best = evidence
            .inputs_with(session, token_of(&other.text))
            .filter(|input| !contains_word(&input.text, own_token))
            .max_by_key(|input| same_words(&input.text));
        allowed += match best {
            Some(input) if inputs_counted.insert(input.step) => same_words(&input.text),
            Some(_) => 0,
            // Never seen by the provider, unless the record kept its input only in part.
            None if evidence.inputs_cut_short(session) => same_words(&other.text),
            None => 0,
        };
    }
    allowed
}

/// The mock provider's response to `input`, read from its script.
fn response_to(input: &str) -> Response {
    let script = MockScript::from_input(input).unwrap_or_default();
    let mut text = None;
    let mut times = 1;
    for directive in &script.directives {
        match directive {
            Directive::Exit(_) | Directive::Error { .. } | Directive::Silent => {
                return Response::Fails
            }
            Directive::Say(said) => text = Some(said.clone()),
            Directive::Reply(n) => times = *n,
            _ => {}
        }
    }
    if times == 0 {
        return Response::Silence;
    }
    let quoted: String = input.chars().take(100).collect();
    Response::Answer(
        text.unwrap_or_else(|| format!("{ANSWER_PREFIX}{quoted}")),
        times,
    )
}

/// §9.11.
pub fn answered(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let admin = admin_of(evidence);
    // (conversation, documented reply) → how many messages it is owed to, and a session of
    // theirs.
    let mut owed: BTreeMap<(RouteKey, String), Owed> = BTreeMap::new();
    for sent in &evidence.ledger.sent {
        let Some((session, outcome)) = outcome_of(evidence, sent) else {
            continue;
        };
        let Some(conversation) = sent.conversation.clone() else {
            verdict.skip(
                Property::Answered,
                "a message whose conversation the world did not note",
            );
            continue;
        };
        let Some(treatment) = treatment(sent, admin.as_deref()) else {
            verdict.skip(
                Property::Answered,
                "a command whose sender the world did not note",
            );
            continue;
        };
        let token = token_of(&sent.text);
        let documented = match &treatment {
            Treatment::Prompt => {
                prompted(evidence, verdict, sent, session, outcome, &conversation);
                continue;
            }
            Treatment::Clear => Some(SESSION_CLEARED.to_string()),
            Treatment::Denied(command) => Some(denied_text(command)),
            Treatment::Filtered => None,
        };
        verdict.check(Property::Answered, outcome == status::COMPLETED, || {
            Found::new(format!(
                "{token} is a command the runner answers itself, yet it ended {outcome}"
            ))
            .in_session(session)
        });
        let quoted = evidence.answers_quoting(token).count();
        verdict.check(Property::Answered, quoted == 0, || {
            Found::new(format!(
                "{token} ({treatment:?}) must not reach the provider, yet {quoted} answers quote it"
            ))
            .in_session(session)
        });
        if let Some(text) = documented {
            let key = (route_key(&conversation), text.clone());
            let entry = owed.entry(key).or_insert_with(|| Owed {
                conversation,
                text,
                count: 0,
                session: session.to_string(),
            });
            entry.count += 1;
        }
    }
    documented_replies(evidence, verdict, owed);
}

/// The session and outcome of a routed message, once it has one.
fn outcome_of<'a>(evidence: &Evidence<'a>, sent: &'a SentMessage) -> Option<(&'a str, &'a str)> {
    let session = sent.session_id.as_deref()?;
    let id = sent.message_id.as_deref()?;
    let snapshot = evidence.snapshots.get(session)?;
    Some((session, snapshot.outcome_of(id)?))
}

/// A route as an ordered key: channel, platform id, thread.
type RouteKey = (Option<String>, Option<String>, Option<String>);

fn route_key(route: &Route) -> RouteKey {
    (
        route.channel_type.clone(),
        route.platform_id.clone(),
        route.thread_id.clone(),
    )
}

/// A documented reply a conversation is owed, and how many times.
struct Owed {
    conversation: Route,
    text: String,
    count: usize,
    session: String,
}

/// Each conversation holds exactly as many of a documented reply as it was owed.
fn documented_replies(
    evidence: &Evidence<'_>,
    verdict: &mut Verdict,
    owed: BTreeMap<(RouteKey, String), Owed>,
) {
    for Owed {
        conversation,
        text,
        count,
        session,
    } in owed.into_values()
    {
        let found = evidence
            .replies_to(&conversation)
            .filter(|r| r.text == text)
            .count();
        let lost = evidence.maybe_durable(&session, "outbound.db", None);
        verdict.check(Property::Answered, found == count || lost, || {
            Found::new(format!(
                "{count} commands of conversation {} are owed {text:?}, which it got \
                 {found} times",
                conversation_name(&conversation)
            ))
            .in_session(&session)
        });
    }
}

/// A message the provider sees: answered, silent by choice, or failed and told.
fn prompted(
    evidence: &Evidence<'_>,
    verdict: &mut Verdict,
    sent: &SentMessage,
    session: &str,
    outcome: &str,
    conversation: &Route,
) {
    let token = token_of(&sent.text);
    let found = |detail: String| Found::new(detail).in_session(session);
    if outcome == status::FAILED {
        if failed_by_the_host(evidence, sent, session) {
            verdict.skip(
                Property::Answered,
                "a message the host failed at its try limit: the host never writes outbound.db, \
                 so nothing can reply `Error: …` for it (a gap between §9.11 and §7/§8)",
            );
            return;
        }
        let told = evidence
            .replies_to(conversation)
            .any(|r| r.text.starts_with(ERROR_PREFIX));
        verdict.check(Property::Answered, told, || {
            found(format!(
                "{token} ended failed without an `Error: …` reply in its conversation"
            ))
        });
        return;
    }
    if !evidence.ledger.observed.provider_boundary {
        answered_by_quote(evidence, verdict, sent, session, conversation);
        return;
    }
    let inputs: Vec<&ProviderInput> = evidence.inputs_with(session, token).collect();
    if inputs
        .iter()
        .any(|input| input.tools.iter().any(|tool| tool_writes_output(tool)))
    {
        // Its turn already wrote output (a question card, a note, a file, a relay, a task
        // request) and may have died before its answer: PROTOCOL §5's output-sent protection
        // acks it completed rather than answering it twice.
        verdict.passed(Property::Answered);
        return;
    }
    let responses: Vec<Response> = inputs.iter().map(|i| response_to(&i.text)).collect();
    if responses.is_empty() {
        if evidence.inputs_cut_short(session) {
            verdict.skip(
                Property::Answered,
                "a message whose prompt the record kept only in part",
            );
            return;
        }
        verdict.check(Property::Answered, false, || {
            found(format!(
                "{token} ended completed but never reached the provider"
            ))
        });
        return;
    }
    if responses.contains(&Response::Silence) {
        // The agent chose not to answer.
        verdict.passed(Property::Answered);
        return;
    }
    let mut answers = 0;
    let mut allowed = 0;
    for response in &responses {
        if let Response::Answer(text, times) = response {
            allowed = allowed.max(*times as usize);
            answers = answers.max(
                evidence
                    .replies_to(conversation)
                    .filter(|r| r.text == *text)
                    .count(),
            );
        }
    }
    // Replies carry no reference to the message they answer: another message of the same
    // conversation scripted to say the same words owns some of the matching replies.
    allowed += same_words_elsewhere(evidence, sent, conversation, &responses);
    let lost = evidence.maybe_durable(session, "outbound.db", None);
    // A turn that failed and told its conversation, then lost its `failed` ack with its
    // container: the next container finds the `Error: …` reply and acks it completed (the
    // output-sent protection).
    let told_of_failure = responses.contains(&Response::Fails)
        && evidence
            .replies_to(conversation)
            .any(|r| r.text.starts_with(ERROR_PREFIX));
    let queued = inputs.iter().any(|input| input.started.is_none());
    if answers == 0 && !lost && !told_of_failure && queued && script_writes_output(&sent.text) {
        // The mock runs queued follow-ups one after another, while the record gives a tool
        // call to the input pushed last: this message's own tool may have written output and
        // its turn died before the answer, which the output-sent protection rightly acks
        // completed (found by the swarm run: seed 6056, power-loss).
        verdict.skip(
            Property::Answered,
            "a queued follow-up whose script writes output: the record cannot tell which \
             queued input a tool call served",
        );
        return;
    }
    verdict.check(
        Property::Answered,
        answers >= 1 || lost || told_of_failure,
        || {
            found(format!(
                "{token} ended completed but no answer to it reached its conversation {}",
                conversation_name(conversation)
            ))
        },
    );
    verdict.check(Property::Answered, answers <= allowed, || {
        found(format!(
            "{token} was answered {answers} times in its conversation; its turn allows {allowed}"
        ))
    });
}

/// True when the sweep failed the message at its try limit (its last container died with it).
fn failed_by_the_host(evidence: &Evidence<'_>, sent: &SentMessage, session: &str) -> bool {
    let row = sent.message_id.as_deref().and_then(|id| {
        let snapshot = evidence.snapshots.get(session)?;
        snapshot.inbound.iter().find(|r| r.id == id)
    });
    row.is_some_and(|r| r.tries >= evidence.host.max_tries)
}

/// Without the provider boundary: a completed message is answered by a default answer quoting
/// its token in its conversation, unless its own script allows none.
fn answered_by_quote(
    evidence: &Evidence<'_>,
    verdict: &mut Verdict,
    sent: &SentMessage,
    session: &str,
    conversation: &Route,
) {
    let token = token_of(&sent.text);
    if evidence.answers_allowed(sent.index) == 0 {
        verdict.skip(
            Property::Answered,
            "a scripted message answered without the default answer, when the provider \
             boundary is not recorded",
        );
        return;
    }
    if script_writes_output(&sent.text) {
        // As with a recorded provider boundary: a turn that already wrote output may be acked
        // completed by PROTOCOL §5's output-sent protection when its container dies before it
        // answers. Without that boundary the record cannot say whether the turn got that far.
        verdict.skip(
            Property::Answered,
            "a message whose script writes output before its answer, when the provider \
             boundary is not recorded",
        );
        return;
    }
    let answers = evidence
        .replies_to(conversation)
        .filter(|r| {
            r.text
                .strip_prefix(ANSWER_PREFIX)
                .is_some_and(|quoted| contains_word(quoted, token))
        })
        .count();
    verdict.check(Property::Answered, answers >= 1, || {
        Found::new(format!(
            "{token} ended completed but no answer quoting it reached its conversation"
        ))
        .in_session(session)
    });
}

/// Whether a call of tool `name` writes output (a card, a note, a file, a relay, a request).
fn tool_writes_output(name: &str) -> bool {
    !TOOLS_WITHOUT_OUTPUT.contains(&name)
}

/// Whether the script `text` carries calls a tool that writes output.
fn script_writes_output(text: &str) -> bool {
    MockScript::from_input(text).is_some_and(|script| {
        script.directives.iter().any(|directive| {
            matches!(directive, Directive::Tool { name, .. } if tool_writes_output(name))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_writes_output_when_it_calls_a_tool_other_than_list_tasks() {
        assert!(script_writes_output(
            r#"m1 @mock tool schedule_task {"prompt":"k1"}"#
        ));
        assert!(!script_writes_output("m0 hello"));
        assert!(!script_writes_output("m2 @mock tool list_tasks {}"));
        assert!(!script_writes_output("m3 @mock say done"));
    }

    fn sent(text: &str, sender: &str) -> SentMessage {
        SentMessage {
            index: 0,
            chat: 0,
            thread_id: None,
            text: text.into(),
            sent_at_ms: 0,
            offers: 1,
            routed_at_ms: None,
            session_id: None,
            message_id: None,
            seq: None,
            sender_id: Some(sender.into()),
            conversation: None,
        }
    }

    #[test]
    fn commands_are_treated_as_protocol_section_5_says() {
        let admin = Some("boss");
        let of = |text: &str, sender: &str| treatment(&sent(text, sender), admin).unwrap();
        assert_eq!(of("m1 hello", "x"), Treatment::Prompt);
        assert_eq!(of("/CLEAR m1", "boss"), Treatment::Clear);
        assert_eq!(of("/clear m1", "x"), Treatment::Denied("/clear".into()));
        assert_eq!(of("/cost m1", "boss"), Treatment::Prompt);
        assert_eq!(of("/help m1", "boss"), Treatment::Filtered);
        assert_eq!(of("/frobnicate m1", "x"), Treatment::Prompt);
        let nobody = treatment(&sent("/cost m1", "boss"), None).unwrap();
        assert_eq!(nobody, Treatment::Denied("/cost".into()));
    }

    #[test]
    fn the_response_follows_the_script_of_the_input() {
        assert_eq!(
            response_to("m1 hi"),
            Response::Answer("Mock response to: m1 hi".into(), 1)
        );
        assert_eq!(response_to("m1 @mock reply 0"), Response::Silence);
        assert_eq!(response_to("m1 @mock silent"), Response::Fails);
        assert_eq!(response_to("m1 @mock think 1s; exit 1"), Response::Fails);
        assert_eq!(
            response_to("m1 @mock say done; reply 2"),
            Response::Answer("done".into(), 2)
        );
        let long = "x".repeat(300);
        let Response::Answer(text, _) = response_to(&long) else {
            panic!("answers");
        };
        assert_eq!(text.chars().count(), ANSWER_PREFIX.len() + 100);
    }
}
