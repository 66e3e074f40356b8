//! The names a person reads instead of internal ids: workload messages are `m0`, `m1`, … (their
//! index in the workload), the rows that answer them `m3 reply`, other rows `out1`, other inbound
//! messages `in1`, sessions by their conversation (`chat0`, `chat1 thread t2`).
//!
//! The checkers' texts name ids and sometimes carry `Debug` forms (`seq Some(2)`); [`Names::text`]
//! rewrites a text into these names and plain values, so the violation a picture shows uses the
//! same words as the picture.

use clawsim_oracle::event::Event;
use clawsim_oracle::properties::{token_of, Evidence};
use clawsim_oracle::trace::TraceEvent;
use std::collections::BTreeMap;

/// Internal ids and the names shown for them.
#[derive(Debug, Default)]
pub struct Names {
    /// Any id (message, row, session) → its name.
    ids: BTreeMap<String, String>,
    /// Session id → the conversation it serves.
    sessions: BTreeMap<String, String>,
    /// Row id → the workload message it answers.
    pub row_answers: BTreeMap<String, usize>,
    /// Workload tokens (`m7`, as the checkers find it in the text), by index.
    pub tokens: Vec<String>,
    /// The run's first instant and its length, for epoch times in texts.
    start_ms: i64,
    end_ms: i64,
}

impl Names {
    /// Names every id of the run; `texts` (the violations) may name ids nothing else does.
    pub fn new<'t>(evidence: &Evidence<'_>, texts: impl Iterator<Item = &'t str>) -> Self {
        let ledger = evidence.ledger;
        let events = evidence.outcome.events;
        let mut names = Names {
            start_ms: events.first().map_or(0, |e| e.at_ms),
            end_ms: events.last().map_or(0, |e| e.at_ms),
            ..Names::default()
        };
        for sent in &ledger.sent {
            names.tokens.push(token_of(&sent.text).to_string());
            let name = format!("m{}", sent.index);
            if let Some(id) = &sent.message_id {
                names.ids.insert(id.clone(), name);
            }
            if let Some(session) = &sent.session_id {
                let conversation = match &sent.thread_id {
                    Some(thread) => format!("chat{} thread {thread}", sent.chat),
                    None => format!("chat{}", sent.chat),
                };
                names
                    .sessions
                    .entry(session.clone())
                    .or_insert(conversation);
            }
        }
        // Rows in the order the run first touched them, then any the DBs alone hold.
        let mut rows: Vec<&str> = Vec::new();
        for event in events {
            if let Some(row) = row_of(&event.event) {
                if !rows.contains(&row) {
                    rows.push(row);
                }
            }
        }
        for send in &ledger.channel {
            if !rows.contains(&send.message_out_id.as_str()) {
                rows.push(&send.message_out_id);
            }
        }
        for id in evidence.answers.keys() {
            if !rows.contains(&id.as_str()) {
                rows.push(id);
            }
        }
        let mut replies: BTreeMap<usize, usize> = BTreeMap::new();
        let mut others = 0;
        for row in rows {
            let answers = evidence
                .answers
                .get(row)
                .and_then(|answer| names.first_token_quoted(&answer.quoted));
            let name = match answers {
                Some(index) => {
                    names.row_answers.insert(row.to_string(), index);
                    let count = replies.entry(index).or_default();
                    *count += 1;
                    match *count {
                        1 => format!("m{index} reply"),
                        n => format!("m{index} reply {n}"),
                    }
                }
                None => {
                    others += 1;
                    format!("out{others}")
                }
            };
            names.ids.entry(row.to_string()).or_insert(name);
        }
        // Sessions no workload message reached, in the order they appear.
        let mut unnamed = 0;
        for event in events {
            if let Some(session) = &event.session {
                if !names.sessions.contains_key(session) {
                    unnamed += 1;
                    names
                        .sessions
                        .insert(session.clone(), format!("session {unnamed}"));
                }
            }
        }
        for (id, name) in &names.sessions {
            names.ids.insert(id.clone(), name.clone());
        }
        // Ids only other texts name: inbound messages (question answers, tasks) and rows.
        let mut inbound = 0;
        let answered = events.iter().filter_map(|e| match &e.event {
            Event::QuestionAnswered { message_id, .. } => Some(message_id.as_str()),
            _ => None,
        });
        let mentioned: Vec<String> = texts
            .flat_map(|text| words(text).map(str::to_string).collect::<Vec<_>>())
            .collect();
        for id in answered
            .map(str::to_string)
            .chain(mentioned.into_iter().filter(|w| looks_like_id(w)))
        {
            if names.ids.contains_key(&id) {
                continue;
            }
            let name = if id.starts_with("out-") {
                others += 1;
                format!("out{others}")
            } else {
                inbound += 1;
                format!("in{inbound}")
            };
            names.ids.insert(id, name);
        }
        names
    }

    /// The workload message whose token `quoted` names first.
    fn first_token_quoted(&self, quoted: &str) -> Option<usize> {
        self.tokens
            .iter()
            .enumerate()
            .filter_map(|(index, token)| Some((word_at(quoted, token)?, index)))
            .min()
            .map(|(_, index)| index)
    }

    /// The name of an id, or the id itself when it has none.
    pub fn of<'a>(&'a self, id: &'a str) -> &'a str {
        self.ids.get(id).map_or(id, String::as_str)
    }

    /// The conversation a session serves.
    pub fn session(&self, session: &str) -> String {
        self.sessions
            .get(session)
            .cloned()
            .unwrap_or_else(|| session.to_string())
    }

    /// `text` with ids replaced by names, `Some(x)` by `x`, `None` by `-`, epoch times by
    /// seconds into the run, and `Debug` quotes in lists dropped.
    pub fn text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(is_word_char) {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let end = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
            let word = &rest[..end];
            match self.ids.get(word) {
                Some(name) => out.push_str(name),
                None => out.push_str(&self.epoch(word).unwrap_or_else(|| word.to_string())),
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        plain_values(&out)
    }

    /// An epoch time inside the run (a 13-digit number), as seconds into it.
    fn epoch(&self, word: &str) -> Option<String> {
        if word.len() != 13 || !word.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ms: i64 = word.parse().ok()?;
        let window = self.start_ms - 86_400_000..=self.end_ms + 86_400_000;
        window
            .contains(&ms)
            .then(|| seconds(ms - self.start_ms) + " s")
    }
}

/// Milliseconds as seconds with as many decimals as they need (`21.102`, `4`).
pub fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let (whole, frac) = (ms / 1_000, ms % 1_000);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:03}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

/// The row an event concerns.
pub fn row_of(event: &Event) -> Option<&str> {
    match event {
        Event::SendStarted { row, .. }
        | Event::SendFinished { row, .. }
        | Event::RecordFailed { row, .. } => Some(row),
        _ => None,
    }
}

/// The message ids an event names.
pub fn message_of(event: &TraceEvent) -> Option<&str> {
    match &event.event {
        Event::MessageRouted { message_id, .. } | Event::QuestionAnswered { message_id, .. } => {
            Some(message_id)
        }
        _ => None,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
}

/// `msg-…`, `out-…`, `q-…`: an id the core made (prefix, then digits and hex).
fn looks_like_id(word: &str) -> bool {
    let Some((prefix, rest)) = word.split_once('-') else {
        return false;
    };
    prefix.len() <= 8
        && prefix.bytes().all(|b| b.is_ascii_lowercase())
        && rest.len() >= 8
        && rest.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Where `word` first occurs in `text` not glued to a letter, digit, `-` or `_`.
pub fn word_at(text: &str, word: &str) -> Option<usize> {
    if word.is_empty() {
        return None;
    }
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
    text.match_indices(word)
        .find(|(at, _)| {
            !glued(text[..*at].chars().next_back())
                && !glued(text[at + word.len()..].chars().next())
        })
        .map(|(at, _)| at)
}

/// `Some(x)` → `x`, `None` → `-`, `["a", "b"]` → `[a, b]`.
fn plain_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let some = rest.find("Some(");
        let none = rest.find("None");
        match (some, none) {
            (Some(s), n) if n.is_none_or(|n| s < n) => {
                out.push_str(&rest[..s]);
                let inner = &rest[s + 5..];
                let mut depth = 1;
                let close = inner.char_indices().find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                });
                match close {
                    Some((at, _)) => {
                        out.push_str(&plain_values(&inner[..at]));
                        rest = &inner[at + 1..];
                    }
                    None => {
                        out.push_str("Some(");
                        rest = inner;
                    }
                }
            }
            (_, Some(n)) => {
                let glued = rest[..n]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric())
                    || rest[n + 4..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphanumeric());
                out.push_str(&rest[..n]);
                out.push_str(if glued { "None" } else { "-" });
                rest = &rest[n + 4..];
            }
            _ => break,
        }
    }
    out.push_str(rest);
    out.replace("[\"", "[")
        .replace("\", \"", ", ")
        .replace("\"]", "]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_values_read_as_plain_values() {
        assert_eq!(plain_values("seq Some(2) of None"), "seq 2 of -");
        assert_eq!(plain_values("Some(Some(3))"), "3");
        assert_eq!(plain_values("Nonesuch [\"a\", \"b\"]"), "Nonesuch [a, b]");
    }

    #[test]
    fn seconds_keep_only_the_decimals_they_need() {
        assert_eq!(seconds(21_102), "21.102");
        assert_eq!(seconds(4_000), "4");
        assert_eq!(seconds(1_500), "1.5");
    }

    #[test]
    fn core_ids_are_recognised() {
        assert!(looks_like_id("msg-1789512547000-5b90c0fd"));
        assert!(looks_like_id("out-1789512548510-2d906de7"));
        assert!(!looks_like_id("no-loss"));
        assert!(!looks_like_id("delivery-fast"));
    }
}
