//! Instants as they are stored and shown.
//!
//! **Decision (PROTOCOL §2):** every instant is UTC and every comparison compares instants, never
//! text. Rows may hold ISO-8601 with `T`/`Z`, with an offset, or SQLite's space-separated form;
//! [`parse_instant`] reads them all, and core compares the resulting milliseconds in Rust. SQL
//! never reads the clock: "now" always comes from the [`crate::Env`].

use crate::env::Millis;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The canonical stored form: `2026-11-24T21:17:53.123Z`.
pub fn format_instant(ms: Millis) -> String {
    to_utc(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Reads any of the forms rows may hold; `None` for text that is no instant.
pub fn parse_instant(text: &str) -> Option<Millis> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.timestamp_millis());
    }
    const NAIVE_FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    let without_z = text.strip_suffix('Z').unwrap_or(text);
    NAIVE_FORMATS.iter().find_map(|format| {
        NaiveDateTime::parse_from_str(without_z, format)
            .ok()
            .map(|naive| naive.and_utc().timestamp_millis())
    })
}

/// True when an optional `process_after`/`deliver_after` is due at `now_ms`. A value that cannot
/// be read as an instant is treated as due: holding a row back forever would lose it.
pub fn is_due(after: Option<&str>, now_ms: Millis) -> bool {
    match after.map(parse_instant) {
        None | Some(None) => true,
        Some(Some(at)) => at <= now_ms,
    }
}

/// `HH:MM` in the configured time zone, as the formatter shows times to the agent.
pub fn format_hhmm(ms: Millis, tz: Tz) -> String {
    tz.from_utc_datetime(&to_utc(ms).naive_utc())
        .format("%H:%M")
        .to_string()
}

/// Parses a time zone name (`UTC`, `Europe/Berlin`), with an error naming it.
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone {name:?}"))
}

pub(crate) fn to_utc(ms: Millis) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_forms_compare_as_instants() {
        let iso = parse_instant("2026-01-02T03:04:05.000Z").unwrap();
        let space = parse_instant("2026-01-02 03:04:05").unwrap();
        let offset = parse_instant("2026-01-02T04:04:05+01:00").unwrap();
        let no_frac_z = parse_instant("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(iso, space);
        assert_eq!(iso, offset);
        assert_eq!(iso, no_frac_z);
        // As text, "2026-01-02 03:04:06" < "2026-01-02T03:04:05Z" (space sorts before T), which is
        // the reference's bug; as instants the later one is later.
        let later_space = parse_instant("2026-01-02 03:04:06").unwrap();
        assert!(later_space > iso);
        assert!(is_due(Some("2026-01-02 03:04:05"), iso));
        assert!(!is_due(Some("2026-01-02 03:04:06"), iso));
    }

    #[test]
    fn round_trip_and_garbage() {
        let ms = 1_764_000_000_123;
        assert_eq!(parse_instant(&format_instant(ms)), Some(ms));
        assert_eq!(parse_instant("tomorrow"), None);
        assert!(is_due(Some("tomorrow"), 0));
        assert!(is_due(None, 0));
    }

    #[test]
    fn hhmm_uses_configured_zone() {
        let ms = parse_instant("2026-07-01T12:30:00Z").unwrap();
        assert_eq!(format_hhmm(ms, Tz::UTC), "12:30");
        assert_eq!(
            format_hhmm(ms, parse_time_zone("Europe/Berlin").unwrap()),
            "14:30"
        );
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }
}
