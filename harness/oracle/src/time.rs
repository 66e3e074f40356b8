//! Instants as the checkers read them: the oracle's own parser and due test, written apart from
//! the core's `time` module so that a bug there (a wrong comparison, a form it misreads) is
//! caught by the checks rather than mirrored in them.
//!
//! Every form a row may hold is normalised to RFC 3339 first (`T` between date and time,
//! seconds present, `Z` when no offset is given), then read by chrono's RFC 3339 parser.

use chrono::DateTime;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// The instant `text` names, or `None` when it names none.
pub fn parse_instant(text: &str) -> Option<Millis> {
    let normal = normalise(text.trim())?;
    DateTime::parse_from_rfc3339(&normal)
        .ok()
        .map(|at| at.timestamp_millis())
}

/// `at_ms` as an RFC 3339 instant with milliseconds, for violation texts.
pub fn instant_name(at_ms: Millis) -> String {
    DateTime::from_timestamp_millis(at_ms).map_or_else(
        || format!("{at_ms} ms"),
        |at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// True when an optional `process_after` / `deliver_after` is due at `now_ms`. Text that names
/// no instant counts as due: the protocol must not hold such a row back forever.
pub fn is_due(after: Option<&str>, now_ms: Millis) -> bool {
    match after.map(parse_instant) {
        Some(Some(at_ms)) => at_ms <= now_ms,
        _ => true,
    }
}

/// `date [T| ] HH:MM[:SS[.fff]] [Z|±HH:MM]` as RFC 3339, or `None` when it has no such shape.
fn normalise(text: &str) -> Option<String> {
    if text.len() < 16 || !text.is_char_boundary(10) || !text.is_char_boundary(11) {
        return None;
    }
    let (date, rest) = (&text[..10], &text[11..]);
    if !matches!(text.as_bytes()[10], b'T' | b't' | b' ') {
        return None;
    }
    let zone_at = rest
        .char_indices()
        .skip(5)
        .find(|(_, c)| matches!(c, 'Z' | 'z' | '+' | '-'))
        .map_or(rest.len(), |(at, _)| at);
    let (clock, zone) = rest.split_at(zone_at);
    let clock = if clock.len() == 5 {
        format!("{clock}:00")
    } else {
        clock.to_string()
    };
    let zone = if zone.is_empty() { "Z" } else { zone };
    Some(format!("{date}T{clock}{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Millis = 1_780_000_000_000; // 2026-05-28T20:26:40Z

    #[test]
    fn every_stored_form_names_the_same_instant() {
        for text in [
            "2026-05-28T20:26:40.000Z",
            "2026-05-28T20:26:40Z",
            "2026-05-28 20:26:40",
            "2026-05-28 20:26:40.000",
            "2026-05-28T20:26:40",
            "2026-05-28T22:26:40+02:00",
            " 2026-05-28 20:26:40 ",
        ] {
            assert_eq!(parse_instant(text), Some(MS), "{text}");
        }
        assert_eq!(parse_instant("2026-05-28 20:26"), Some(MS - 40_000));
    }

    #[test]
    fn text_that_is_no_instant_is_none_and_counts_as_due() {
        for text in [
            "",
            "soon",
            "2026-05-28",
            "2026-13-01 00:00:00",
            "2026-05-28x20:26:40",
        ] {
            assert_eq!(parse_instant(text), None, "{text}");
            assert!(is_due(Some(text), 0));
        }
    }

    #[test]
    fn due_compares_instants_not_text() {
        // As text, "2026-05-28 20:26:41" < "2026-05-28T20:26:40Z" (space sorts before T).
        assert!(!is_due(Some("2026-05-28 20:26:41"), MS));
        assert!(is_due(Some("2026-05-28T20:26:40Z"), MS));
        assert!(is_due(None, MS));
    }
}
