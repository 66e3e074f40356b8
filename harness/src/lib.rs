//! clawsim harness: the `clawsim` command line around the simulated world and the live system.
//!
//! Code map:
//! - [`properties`]: PROTOCOL §9 judged from a run's independent evidence (ledger, trace, the
//!   DBs read after the quiet period), online and at the end.
//! - [`case`]: one run as plain data (seed, profile, workload, faults, tape), and its config.
//! - [`generators`]: proptest strategies for workloads, fault plans, tapes and cases.
//! - [`seeds`]: seed plans, shards, and the pool that runs one world per seed.
//! - [`workers`]: the worker processes `clawsim run --jobs J` spreads its worlds over.
//! - [`landing`]: which core step kind each crash or I/O error hit.
//! - [`summary`]: the run's table and JSON, read back and combined.
//! - [`merge`]: `clawsim merge`: shards' summaries checked and combined into one verdict.
//! - [`junit`]: the JUnit XML report of a summary.
//! - [`shrink`]: a failing case made small within a time budget.
//! - [`artifact`]: the folder a failing seed leaves behind.
//! - [`timeline`]: a run drawn as SVG/HTML.
//! - [`scenarios`]: the named scenarios of `fixtures/scenarios/` and their golden traces.
//! - [`run_command`], [`replay_command`]: `clawsim run` and `clawsim replay`.
//! - [`cli`]: what those commands share at the process's edge: logging, a stdout that may close
//!   early, output paths checked before a run, replay commands that work from any folder.
//! - [`chat`]: the live host on a terminal (`clawsim chat`).
//!
//! **Architecture invariants.** The harness judges the core only from outside: from what the
//! world recorded and what the files hold, never from the core's own bookkeeping. It never
//! reaches into a world while it runs, and worlds on different threads or
//! processes share nothing.

pub mod artifact;
pub mod case;
pub mod chat;
pub mod cli;
pub mod compare;
pub mod generators;
pub mod junit;
pub mod landing;
pub mod merge;
pub use clawsim_oracle::properties;
pub mod coverage;
pub mod replay_command;
pub mod run_command;
pub mod scenarios;
pub mod seeds;
pub mod shrink;
pub mod summary;
pub mod swarm;
pub mod timeline;
pub mod workers;

use std::time::Duration;

/// The build: crate version and the git commit it was built from (or `unknown`).
pub fn build_id() -> String {
    format!(
        "clawsim {} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("CLAWSIM_GIT_COMMIT")
    )
}

/// `500ms`, `60s`, `5m`, `1h`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("duration {text:?}: expected e.g. 60s, 5m, 1h"))?;
    let ms = match unit {
        "ms" => number,
        "" | "s" => number * 1_000,
        "m" | "min" => number * 60_000,
        "h" => number * 3_600_000,
        _ => return Err(format!("duration {text:?}: unknown unit {unit:?}")),
    };
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn the_build_id_names_version_and_commit() {
        assert!(build_id().starts_with("clawsim 0."));
    }
}
