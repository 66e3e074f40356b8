//! Shrinking: a failing case made small, within a time budget.
//!
//! Greedy reduction over the case as data, the way delta debugging does it: try a smaller case,
//! keep it if the same property still fails, start over from the smaller one; stop when no
//! candidate helps or the budget is spent. Candidates, cheapest to read first: no faults at all,
//! each fault removed, halves then single messages removed, unused chats removed, per-thread
//! chats made shared, the choice tape truncated and zeroed. A removed message keeps the tokens
//! of the others, so the shrunk case's trace still names the messages of the original.
//!
//! Every candidate is a full run, so the budget bounds the number of attempts; the shrunk case
//! is valid whatever point the budget stops at.

use crate::case::Case;
use crate::properties::Property;
use crate::seeds::run_case;
use std::time::{Duration, Instant};

/// What shrinking did.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest failing case found.
    pub case: Case,
    /// Runs tried, and how many of them still failed (and were kept).
    pub attempts: u32,
    pub kept: u32,
    /// True when the budget ran out before no candidate helped.
    pub timed_out: bool,
    pub elapsed: Duration,
}

/// Shrinks `case`, which fails `target`, for at most `budget`.
pub fn shrink(case: &Case, target: Property, budget: Duration) -> Shrunk {
    shrink_by(case, budget, |candidate| fails(candidate, target))
}

/// Shrinks `case` while `still_fails` says a candidate keeps the failure, for at most `budget`.
pub fn shrink_by(
    case: &Case,
    budget: Duration,
    mut still_fails: impl FnMut(&Case) -> bool,
) -> Shrunk {
    let started = Instant::now();
    let mut shrunk = Shrunk {
        case: case.clone(),
        attempts: 0,
        kept: 0,
        timed_out: false,
        elapsed: Duration::ZERO,
    };
    'outer: loop {
        for candidate in candidates(&shrunk.case) {
            if started.elapsed() >= budget {
                shrunk.timed_out = true;
                break 'outer;
            }
            shrunk.attempts += 1;
            if still_fails(&candidate) {
                shrunk.kept += 1;
                shrunk.case = candidate;
                continue 'outer;
            }
        }
        break;
    }
    shrunk.elapsed = started.elapsed();
    shrunk
}

/// True when `case` still fails `target`.
pub fn fails(case: &Case, target: Property) -> bool {
    run_case(case).is_ok_and(|(_, verdict)| !verdict.property_held(target))
}

/// Smaller variants of `case`, most promising first; each strictly smaller by [`Case::size`]
/// or simpler in shape.
fn candidates(case: &Case) -> Vec<Case> {
    let mut out = Vec::new();
    let faults = case.faults.faults.len();
    if faults > 1 {
        out.push(with(case, |c| c.faults.faults.clear()));
    }
    for i in (0..faults).rev() {
        out.push(with(case, |c| {
            c.faults.faults.remove(i);
        }));
    }
    out.extend(message_removals(case));
    out.extend(chat_removals(case));
    for (i, chat) in case.workload.chats.iter().enumerate() {
        if chat.per_thread {
            out.push(with(case, |c| shared_chat(c, i)));
        }
    }
    out.extend(tape_reductions(case));
    out
}

fn with(case: &Case, change: impl FnOnce(&mut Case)) -> Case {
    let mut candidate = case.clone();
    change(&mut candidate);
    candidate
}

/// Chunks of messages removed: halves, quarters, ..., single messages.
fn message_removals(case: &Case) -> Vec<Case> {
    let count = case.workload.messages.len();
    let mut out = Vec::new();
    let mut chunk = count / 2;
    while chunk >= 1 {
        for start in (0..count).step_by(chunk) {
            let end = (start + chunk).min(count);
            out.push(with(case, |c| {
                c.workload.messages.drain(start..end);
            }));
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    out
}

/// Chats no message uses, removed (later chats' indices move down).
fn chat_removals(case: &Case) -> Vec<Case> {
    let used = |i: usize| case.workload.messages.iter().any(|m| m.chat == i);
    (0..case.workload.chats.len())
        .rev()
        .filter(|i| !used(*i) && case.workload.chats.len() > 1)
        .map(|i| {
            with(case, |c| {
                c.workload.chats.remove(i);
                for message in &mut c.workload.messages {
                    if message.chat > i {
                        message.chat -= 1;
                    }
                }
            })
        })
        .collect()
}

fn shared_chat(case: &mut Case, chat: usize) {
    case.workload.chats[chat].per_thread = false;
    for message in &mut case.workload.messages {
        if message.chat == chat {
            message.thread_id = None;
        }
    }
}

/// The tape cut in half, and zeroed from the middle on.
fn tape_reductions(case: &Case) -> Vec<Case> {
    let Some(tape) = &case.tape else {
        return Vec::new();
    };
    if tape.iter().all(|v| *v == 0) {
        return Vec::new();
    }
    let half = tape.len() / 2;
    vec![
        with(case, |c| c.tape = Some(tape[..half].to_vec())),
        with(case, |c| {
            let mut zeroed = tape.clone();
            zeroed[half..].iter_mut().for_each(|v| *v = 0);
            c.tape = Some(zeroed);
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawsim_sim::fs::MountProfile;

    #[test]
    fn every_candidate_is_smaller_or_simpler() {
        let mut case = Case::default_scenario(3, MountProfile::Bind);
        case.tape = Some(vec![5; 8]);
        for candidate in candidates(&case) {
            let simpler = candidate
                .workload
                .chats
                .iter()
                .filter(|c| c.per_thread)
                .count()
                < case.workload.chats.iter().filter(|c| c.per_thread).count();
            assert!(candidate.size() < case.size() || simpler, "{candidate:?}");
        }
    }

    #[test]
    fn removing_a_chat_keeps_messages_pointing_at_their_chat() {
        let mut case = Case::default_scenario(3, MountProfile::Bind);
        case.workload.chats.push(case.workload.chats[0].clone());
        case.workload.chats.rotate_right(1);
        for message in &mut case.workload.messages {
            message.chat += 1;
        }
        let removed = chat_removals(&case);
        assert!(!removed.is_empty());
        let platform = |c: &Case, i: usize| {
            c.workload.chats[c.workload.messages[i].chat]
                .platform_id
                .clone()
        };
        for candidate in removed {
            for i in 0..case.workload.messages.len() {
                assert_eq!(platform(&candidate, i), platform(&case, i));
            }
        }
    }
}
