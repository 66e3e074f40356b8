//! A case: everything that determines one simulated run, as plain data.
//!
//! `clawsim run` draws a case from a seed (the world's default scenario); generators draw one
//! from proptest; the shrinker makes one smaller; an artifact saves one and `clawsim replay`
//! runs it again. A case turns into the sim's `WorldConfig`, and the same case always gives the
//! same run.
//!
//! Workload texts may name instants relative to the world's start (which the seed decides), as
//! `${start+90s}` or `${start+2m}`: a scheduled task needs an absolute `processAfter`, and a
//! generator cannot know the start before the seed is fixed. They are expanded when the case
//! becomes a config.

use clawsim_core::config::Design;
use clawsim_core::time::format_instant;
use clawsim_sim::faults::FaultPlan;
use clawsim_sim::fs::MountProfile;
use clawsim_sim::trace::TraceMode;
use clawsim_sim::workload::Workload;
use clawsim_sim::world::WorldConfig;
use serde::{Deserialize, Serialize};

/// Which workload a seed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// Swarm testing (the default): each seed draws which of the protocol's features and
    /// which fault kinds are on, and how hard, then a workload and faults from those (see
    /// [`crate::swarm`]; `clawsim replay` prints the draw).
    Swarm,
    /// Chat bursts over one to three chats, up to four faults: the world's own scenario, the
    /// same for every design (what `clawsim compare` runs).
    #[serde(alias = "default")]
    Bursts,
}

impl WorkloadKind {
    /// The name `--workload` takes (`swarm`, `bursts`).
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Swarm => "swarm",
            WorkloadKind::Bursts => "bursts",
        }
    }
}

/// One run, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub seed: u64,
    /// `bind`, `virtiofs` or `power-loss`.
    pub profile: String,
    pub workload: Workload,
    pub faults: FaultPlan,
    /// Length of the part of the run in which faults strike, ms.
    pub active_ms: i64,
    /// Length of the quiet period after it, ms.
    pub quiet_ms: i64,
    /// Scheduling choices; `None` draws them from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tape: Option<Vec<u64>>,
    /// Storage design of the session files by name (`clawsim compare` lists them); `None` is
    /// today's protocol, `v2`, so older case files load unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub design: Option<String>,
}

impl Case {
    /// The world's default scenario for `seed` (what `clawsim run` runs).
    pub fn default_scenario(seed: u64, profile: MountProfile) -> Self {
        Self::from_config(&WorldConfig::default_scenario(seed, profile))
    }

    /// The case seed `seed` runs on `profile` with workload `kind`.
    pub fn for_seed(seed: u64, profile: MountProfile, kind: WorkloadKind) -> Self {
        match kind {
            WorkloadKind::Swarm => crate::swarm::swarm_case(seed, profile).1,
            WorkloadKind::Bursts => Self::default_scenario(seed, profile),
        }
    }

    /// The case a world config runs.
    pub fn from_config(config: &WorldConfig) -> Self {
        Self {
            seed: config.seed,
            profile: config.profile.name().to_string(),
            workload: config.workload.clone(),
            faults: config.faults.clone(),
            active_ms: config.active_ms,
            quiet_ms: config.quiet_ms,
            tape: config.tape.clone(),
            design: (!config.design.is_v2()).then(|| config.design.name.to_string()),
        }
    }

    /// The storage design, parsed (v2 when none is named).
    pub fn design(&self) -> Result<Design, String> {
        self.design
            .as_deref()
            .map_or(Ok(Design::V2), Design::by_name)
    }

    /// The mount profile, parsed.
    pub fn mount_profile(&self) -> Result<MountProfile, String> {
        self.profile.parse()
    }

    /// Checks what the world takes for granted, so a hand-written or edited case (a scenario,
    /// an artifact's `shrunk.json`) is refused with a reason instead of crashing a world: a
    /// known profile, at least one chat, and every message naming a chat that exists.
    pub fn validate(&self) -> Result<(), String> {
        self.mount_profile()?;
        self.design()?;
        let chats = self.workload.chats.len();
        if let Some((from, to)) = self
            .workload
            .agent_routes
            .iter()
            .find(|(from, to)| *from >= chats || *to >= chats)
        {
            return Err(format!(
                "agent route {from} -> {to} names a chat the workload does not have (0..{chats})"
            ));
        }
        if chats == 0 {
            return Err(format!(
                "the workload has no chats; {} need at least one",
                plural(self.workload.messages.len(), "message")
            ));
        }
        for (index, message) in self.workload.messages.iter().enumerate() {
            if message.chat >= chats {
                return Err(format!(
                    "message {index} ({:?}) names chat {}, but the workload has {} (0..{chats})",
                    message.token(),
                    message.chat,
                    plural(chats, "chat"),
                ));
            }
        }
        Ok(())
    }

    /// The world config that runs this case, with its relative instants expanded; an invalid
    /// case (see [`Case::validate`]) is refused.
    pub fn to_config(&self, trace_mode: TraceMode) -> Result<WorldConfig, String> {
        self.validate()?;
        let start_ms = clawsim_sim::world::start_ms(self.seed);
        let mut workload = self.workload.clone();
        for message in &mut workload.messages {
            message.text = expand_instants(&message.text, start_ms)?;
        }
        let mut config = WorldConfig::new(
            self.seed,
            self.mount_profile()?,
            workload,
            self.faults.clone(),
            self.active_ms,
        );
        config.quiet_ms = self.quiet_ms;
        config.tape = self.tape.clone();
        config.trace_mode = trace_mode;
        config.design = self.design()?;
        Ok(config)
    }

    /// A measure of size the shrinker makes smaller: messages, faults, chats, tape entries.
    pub fn size(&self) -> usize {
        let tape = self
            .tape
            .as_ref()
            .map_or(0, |t| t.iter().filter(|v| **v != 0).count());
        self.workload.messages.len() * 4
            + self.faults.faults.len() * 4
            + self.workload.chats.len()
            + tape
    }
}

fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// Replaces each `${start+N<unit>}` (unit `ms`, `s`, `m`, `h`) with the ISO-8601 instant.
pub fn expand_instants(text: &str, start_ms: i64) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${start") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated instant in {text:?}"))?;
        let offset_ms = parse_offset_ms(&after["start".len()..end])
            .ok_or_else(|| format!("bad instant ${{{}}} in {text:?}", &after[..end]))?;
        out.push_str(&format_instant(start_ms + offset_ms));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `+90s`, `-5m`, `+250ms`, `` (zero).
fn parse_offset_ms(text: &str) -> Option<i64> {
    if text.is_empty() {
        return Some(0);
    }
    let (sign, body) = match text.as_bytes()[0] {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits_end = body.find(|c: char| !c.is_ascii_digit())?;
    let number: i64 = body[..digits_end].parse().ok()?;
    let scale = match &body[digits_end..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(sign * number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_s_name_is_the_one_the_command_line_takes() {
        use clap::ValueEnum;
        for kind in WorkloadKind::value_variants() {
            let value = kind.to_possible_value().unwrap();
            assert_eq!(kind.name(), value.get_name());
        }
    }

    #[test]
    fn a_seed_draws_the_same_swarm_case_every_time() {
        let first = Case::for_seed(11, MountProfile::Virtiofs, WorkloadKind::Swarm);
        let again = Case::for_seed(11, MountProfile::Virtiofs, WorkloadKind::Swarm);
        assert_eq!(first, again);
        let next = Case::for_seed(12, MountProfile::Virtiofs, WorkloadKind::Swarm);
        assert_ne!(first.workload, next.workload);
        assert_eq!((first.seed, first.profile.as_str()), (11, "virtiofs"));
    }

    #[test]
    fn an_agent_route_to_a_missing_chat_is_refused() {
        let mut case = Case::default_scenario(3, MountProfile::Bind);
        case.workload.agent_routes = vec![(0, case.workload.chats.len())];
        let error = case.validate().unwrap_err();
        assert!(error.contains("agent route"), "{error}");
    }

    /// A case file naming a chat that does not exist used to crash the world (an index out of
    /// bounds inside the simulator); it must be refused, with the message and chat named,
    /// before any world runs.
    #[test]
    fn a_case_with_no_chats_or_a_missing_chat_is_refused_with_a_reason() {
        let mut case = Case::default_scenario(3, MountProfile::Bind);
        assert_eq!(case.validate(), Ok(()));
        case.workload.messages[0].chat = case.workload.chats.len();
        let error = case.to_config(TraceMode::HashOnly).unwrap_err();
        assert!(
            error.contains("message 0") && error.contains("names chat"),
            "{error}"
        );
        case.workload.chats.clear();
        let error = case.validate().unwrap_err();
        assert!(error.contains("no chats"), "{error}");
        case.profile = "nfs".into();
        assert!(case.validate().is_err());
    }

    #[test]
    fn instants_expand_relative_to_the_start() {
        let start = 1_767_225_600_000;
        let text = r#"{"processAfter":"${start+90s}","b":"${start-1m}","c":"${start}"}"#;
        let expanded = expand_instants(text, start).unwrap();
        assert_eq!(
            expanded,
            r#"{"processAfter":"2026-01-01T00:01:30.000Z","b":"2025-12-31T23:59:00.000Z","c":"2026-01-01T00:00:00.000Z"}"#
        );
        assert!(expand_instants("${start+9x}", start).is_err());
        assert!(expand_instants("${start+9s", start).is_err());
        assert_eq!(
            expand_instants("no instants", start).unwrap(),
            "no instants"
        );
    }
}
