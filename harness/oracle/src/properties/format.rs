//! §9.10: the prompt the agent saw was well-formed and escaped.
//!
//! The mock's default answer quotes the first 100 characters of its prompt, which is the
//! evidence: a quote that starts with markup must read as a prefix of the formatter's grammar
//! (`<messages>`, `<message id="N" sender="…" time="HH:MM">text</message>`), with no raw `<`,
//! `>` or `"` in text or attribute values and every `&` starting one of the four entities. The
//! first message of the quote must show the user's text escaped (checked against an escape
//! written here, not the core's), and routing fields (the chat's platform id) never appear in
//! it. The grammar is this checker's own, deliberately independent of the formatter it judges.

use super::evidence::{contains_word, Answer, Evidence};
use super::{Found, Property, Verdict};

/// The entities the protocol escapes to.
const ENTITIES: [&str; 4] = ["&amp;", "&lt;", "&gt;", "&quot;"];

/// §9.10 over every default answer whose quote starts with markup.
pub fn formatting(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    for answer in evidence.answers.values() {
        if !answer.quoted.starts_with('<') {
            continue;
        }
        let problem = markup_problem(&answer.quoted);
        verdict.check(Property::Formatting, problem.is_none(), || {
            found(answer, problem.unwrap_or_default())
        });
        if let Some(index) = first_quoted_message(evidence, &answer.quoted) {
            text_escaped(evidence, answer, index, verdict);
        }
    }
}

fn found(answer: &Answer, problem: String) -> Found {
    Found::new(format!(
        "the prompt quoted by {} is malformed: {problem} in {:?}",
        answer.message_out_id, answer.quoted
    ))
    .in_session(&answer.session_id)
}

/// The workload message whose token is the first word of the quote's first element text.
fn first_quoted_message(evidence: &Evidence<'_>, quoted: &str) -> Option<usize> {
    let after_tag = quoted.strip_prefix("<messages>\n").unwrap_or(quoted);
    let text = after_tag.strip_prefix("<message")?.split_once('>')?.1;
    (0..evidence.ledger.sent.len()).find(|&i| {
        let token = evidence.token(i);
        text.split_whitespace().next() == Some(token.as_str())
    })
}

/// The first element's text is the user's text, escaped (up to where the quote ends).
fn text_escaped(evidence: &Evidence<'_>, answer: &Answer, index: usize, verdict: &mut Verdict) {
    let sent = &evidence.ledger.sent[index];
    let expected = escape(&sent.text);
    let after_tag = answer
        .quoted
        .strip_prefix("<messages>\n")
        .unwrap_or(&answer.quoted);
    let text = after_tag.split_once('>').map_or("", |(_, rest)| rest);
    // Text holds no raw `<`: the next one ends it, and without one the quote ended inside it.
    let (shown, complete) = match text.find('<') {
        Some(end) => (&text[..end], true),
        None => (text, false),
    };
    let matches = if complete {
        shown == expected
    } else {
        expected.starts_with(shown)
    };
    verdict.check(Property::Formatting, matches, || {
        found(
            answer,
            format!("m{index}'s text shows as {shown:?}, expected {expected:?}"),
        )
    });
    let chat = &evidence.outcome.ledger.sent[index].chat;
    let platform_id = format!("chat{chat}");
    let leaked = contains_word(&answer.quoted, &platform_id) && !sent.text.contains(&platform_id);
    verdict.check(Property::Formatting, !leaked, || {
        found(
            answer,
            format!("the routing field {platform_id} reached the agent"),
        )
    });
}

/// `& < > "` escaped, as PROTOCOL §6 asks.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Why `quoted` is not a prefix of a well-formed chat prompt, if it is not.
pub fn markup_problem(quoted: &str) -> Option<String> {
    let mut rest = quoted;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let Some((tag, tail)) = after.split_once('>') else {
                return tag_prefix_problem(after);
            };
            if let Some(problem) = tag_problem(tag) {
                return Some(problem);
            }
            rest = tail;
            continue;
        }
        let end = rest.find('<').unwrap_or(rest.len());
        if let Some(problem) = text_problem(&rest[..end], end == rest.len()) {
            return Some(problem);
        }
        rest = &rest[end..];
    }
    None
}

/// A complete tag must be one the formatter writes.
fn tag_problem(tag: &str) -> Option<String> {
    if matches!(tag, "messages" | "/messages" | "/message") {
        return None;
    }
    let Some(attributes) = tag.strip_prefix("message ") else {
        return Some(format!("unexpected tag <{tag}>"));
    };
    attributes_problem(attributes, true)
}

/// A tag cut off by the quote's end must be the start of one the formatter writes.
fn tag_prefix_problem(partial: &str) -> Option<String> {
    let known = ["messages", "/messages", "/message", "message "];
    if known.iter().any(|k| k.starts_with(partial)) {
        return None;
    }
    match partial.strip_prefix("message ") {
        Some(attributes) => attributes_problem(attributes, false),
        None => Some(format!("unexpected tag start <{partial}")),
    }
}

/// `id="N" sender="…" time="HH:MM"` (id optional), values free of raw markup.
fn attributes_problem(attributes: &str, complete: bool) -> Option<String> {
    let mut rest = attributes;
    let mut names = Vec::new();
    while !rest.is_empty() {
        let Some((name, tail)) = rest.split_once("=\"") else {
            let cut_name = !complete && !rest.contains(['<', '>', '"']);
            return (!cut_name).then(|| format!("bad attributes {attributes:?}"));
        };
        names.push(name.trim().to_string());
        let Some((value, tail)) = tail.split_once('"') else {
            return if complete {
                Some(format!("unterminated attribute {name}"))
            } else {
                text_problem(tail, true)
            };
        };
        if let Some(problem) = text_problem(value, false) {
            return Some(format!("attribute {name}: {problem}"));
        }
        rest = tail.trim_start();
    }
    let expected = ["id", "sender", "time"];
    let known = names.iter().all(|n| expected.contains(&n.as_str()));
    (!known || (complete && !names.iter().any(|n| n == "sender")))
        .then(|| format!("attributes {names:?} are not the formatter's"))
}

/// Text must hold no raw markup and only the protocol's entities.
fn text_problem(text: &str, may_be_cut: bool) -> Option<String> {
    if let Some(c) = text.chars().find(|c| matches!(c, '<' | '>' | '"')) {
        return Some(format!("raw {c:?} in text {text:?}"));
    }
    for (at, _) in text.match_indices('&') {
        let tail = &text[at..];
        let entity = ENTITIES.iter().any(|e| tail.starts_with(e));
        let cut = may_be_cut && ENTITIES.iter().any(|e| e.starts_with(tail));
        if !entity && !cut {
            return Some(format!("unescaped '&' in text {text:?}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formatters_output_and_its_prefixes_are_well_formed() {
        let prompt = "<messages>\n<message id=\"2\" sender=\"u0\" time=\"12:00\">m1 a &amp; \
                      b &lt;i&gt;</message>\n<message sender=\"&quot;x&quot;\" time=\"12:01\">m2</message>\n</messages>";
        for end in 0..=prompt.len() {
            if prompt.is_char_boundary(end) {
                assert_eq!(markup_problem(&prompt[..end]), None, "{:?}", &prompt[..end]);
            }
        }
    }

    #[test]
    fn raw_markup_or_a_bare_ampersand_is_malformed() {
        let bad = [
            "<message sender=\"u0\" time=\"12:00\">m1 <b>bold</b></message>",
            "<message sender=\"u\"0\" time=\"12:00\">m1</message>",
            "<message sender=\"u0\" time=\"12:00\">m1 a & b</message>",
            "<script>",
            "<message sender=\"u0\" time=\"12:00\" platform=\"chat0\">m1</message>",
        ];
        for quoted in bad {
            assert!(markup_problem(quoted).is_some(), "{quoted}");
        }
    }
}
