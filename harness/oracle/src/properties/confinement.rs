//! §9.13 Confinement and authority.
//!
//! Confinement, from the files as the VFS saw them: every plain file written through the Env
//! (by a tool: `send_file`) lies in `outbox/<id>/` of the session whose step wrote it, one plain
//! name deep; every plain file the host read (for delivery) lies in `outbox/<id>/` of the session
//! the pass delivered; every file the channel was sent has a plain name and was read from the
//! sending row's own `outbox/<id>/` before the send finished.
//!
//! Authority, from the provider boundary: an admin command from a sender who is not the admin
//! never reaches the provider (no input carries its token), and never resets the provider
//! session: within one agent-runner's life, once a turn has started and heard from the provider
//! (so it had a session to resume), the next turn resumes it unless an admin's `/clear` came
//! into that session.

use super::answered::{admin_of, treatment, Treatment};
use super::evidence::{token_of, Evidence, FileAccess};
use super::{Found, Property, Verdict};
use crate::event::Event;
use crate::fault::FaultSide;
use std::collections::BTreeMap;

/// §9.13.
pub fn confinement(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    if evidence.ledger.observed.file_accesses {
        accesses_stay_in_the_outbox(evidence, verdict);
    } else {
        verdict.not_judged(
            Property::Confinement,
            "which files each side read and wrote is known only to a VFS that records them (the \
             simulation's); sent file names are judged",
        );
    }
    sent_files_come_from_the_outbox(evidence, verdict);
    if evidence.ledger.observed.provider_boundary {
        denied_commands_take_no_effect(evidence, verdict);
    } else {
        verdict.not_judged(
            Property::Confinement,
            "a non-admin's command reaching the provider or resetting its session is seen only \
             at the provider boundary; the absence of an answer quoting it is judged (§9.11)",
        );
    }
}

/// The folder of each session, by id.
fn session_dirs<'a>(evidence: &Evidence<'a>) -> BTreeMap<&'a str, &'a str> {
    evidence
        .ledger
        .final_state
        .sessions
        .iter()
        .map(|s| (s.session_id.as_str(), s.dir.as_str()))
        .collect()
}

/// `(row id, file name)` when `path` is `<dir>/outbox/<id>/<name>`, each one plain component.
fn in_outbox<'p>(dir: &str, path: &'p str) -> Option<(&'p str, &'p str)> {
    let rest = path.strip_prefix(dir)?.strip_prefix("/outbox/")?;
    let (id, name) = rest.split_once('/')?;
    (is_plain_name(id) && is_plain_name(name)).then_some((id, name))
}

/// One ordinary path component: not empty, no separator, not `.` or `..`.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn accesses_stay_in_the_outbox(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let dirs = session_dirs(evidence);
    for access in &evidence.file_accesses {
        // A tool reads what it sends from anywhere in its session folder (§5 `send_file`);
        // only what it writes, and what the host reads, must stay in the outbox.
        let confined = access.written || access.side == FaultSide::Host;
        if !confined {
            continue;
        }
        let Some(dir) = dirs.get(access.session.as_str()) else {
            verdict.skip(
                Property::Confinement,
                "a file access by a session whose folder the final state does not list",
            );
            continue;
        };
        verdict.check(
            Property::Confinement,
            in_outbox(dir, &access.path).is_some(),
            || escaped(access),
        );
    }
}

fn escaped(access: &FileAccess) -> Found {
    let what = if access.written { "wrote" } else { "read" };
    Found::new(format!(
        "the {} side {what} {} outside the session's outbox/<id>/",
        access.side.name(),
        access.path
    ))
    .in_session(&access.session)
    .at(access.at_ms)
}

fn sent_files_come_from_the_outbox(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let dirs = session_dirs(evidence);
    let observed = evidence.ledger.observed.file_accesses;
    for send in evidence
        .ledger
        .channel
        .iter()
        .filter(|s| !s.files.is_empty())
    {
        for name in &send.files {
            let read_from_its_outbox = || {
                let Some(dir) = dirs.get(send.session_id.as_str()) else {
                    return false;
                };
                evidence.file_accesses.iter().any(|access| {
                    access.side == FaultSide::Host
                        && !access.written
                        && access.session == send.session_id
                        && access.at_ms <= send.at_ms
                        && in_outbox(dir, &access.path) == Some((&send.message_out_id, name))
                })
            };
            let held = is_plain_name(name) && (!observed || read_from_its_outbox());
            verdict.check(Property::Confinement, held, || {
                Found::new(format!(
                    "{} was sent with file {name:?}, which is not a file of its own \
                     outbox/{}/ read for its delivery",
                    send.message_out_id, send.message_out_id
                ))
                .in_session(&send.session_id)
                .at(send.at_ms)
            });
        }
    }
}

/// A non-admin's admin command neither reaches the provider nor resets its session.
fn denied_commands_take_no_effect(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let admin = admin_of(evidence);
    // The workload index of each admin `/clear`, and of each denied command.
    let mut clears: Vec<usize> = Vec::new();
    for sent in &evidence.ledger.sent {
        let Some(session) = sent.session_id.as_deref() else {
            continue;
        };
        match treatment(sent, admin.as_deref()) {
            Some(Treatment::Clear) => clears.push(sent.index),
            Some(Treatment::Denied(command)) => {
                let token = token_of(&sent.text);
                let reached = evidence.inputs_with(session, token).count();
                verdict.check(Property::Confinement, reached == 0, || {
                    Found::new(format!(
                        "{token} ({command} from {:?}, not the admin) reached the provider \
                         {reached} times",
                        sent.sender_id
                    ))
                    .in_session(session)
                })
            }
            _ => {}
        }
    }
    sessions_reset_only_by_the_admin(evidence, verdict, &clears);
}

/// Walks each session's turns: a turn that could resume and does not is a reset, which only
/// an admin `/clear` routed into the session may cause.
fn sessions_reset_only_by_the_admin(
    evidence: &Evidence<'_>,
    verdict: &mut Verdict,
    clears: &[usize],
) {
    #[derive(Default)]
    struct Runner {
        /// A turn of this runner heard from the provider: it holds a session to resume.
        resumable: bool,
        /// Admin `/clear`s routed into the session not yet spent on a reset.
        clears: usize,
    }
    let mut runners: BTreeMap<String, Runner> = BTreeMap::new();
    for recorded in evidence.outcome.events {
        let session = recorded.session.clone().unwrap_or_default();
        let runner = runners.entry(session.clone()).or_default();
        match &recorded.event {
            Event::MessageRouted { index, .. } if clears.contains(index) => runner.clears += 1,
            Event::RunnerStarted => runner.resumable = false,
            Event::ProviderResult { .. }
            | Event::ProviderError { .. }
            | Event::ToolCalled { .. } => runner.resumable = true,
            Event::TurnStarted { resumed, .. } => {
                let reset = runner.resumable && !resumed;
                let excused = reset && runner.clears > 0;
                if excused {
                    runner.clears -= 1;
                }
                if runner.resumable {
                    verdict.check(Property::Confinement, !reset || excused, || {
                        Found::new(
                            "a turn started a new provider session although the last turn of \
                             the same agent-runner had one and no admin /clear came in"
                                .to_string(),
                        )
                        .in_session(&session)
                        .at(recorded.at_ms)
                    });
                }
                runner.resumable = false;
            }
            _ => {}
        }
    }
}
