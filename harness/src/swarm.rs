//! Swarm testing: what the default run draws for each seed.
//!
//! One fixed mix of everything tests the protocol less than many different mixes do: a feature
//! that is always on crowds out the rare interleavings of the others, and a fault that always
//! strikes hides the paths that only run when nothing fails. So each seed of `clawsim run`
//! first draws which of the protocol's [`Feature`]s are on and which fault kinds may strike,
//! and how hard — some seeds two features and no faults, some everything at once, most a
//! random half — and then draws its workload and fault plan from only those. The draw is plain
//! data ([`SwarmDraw`]), printed by `clawsim replay`, so a failing seed says what it ran.
//!
//! Determinism: everything comes from the seed's own fork of the simulator's RNG ("swarm"),
//! through [`ChoiceSource`]; nothing here depends on the build's proptest or on time.

use crate::case::Case;
use crate::generators::{
    text_of, Act, COMMAND_WORDS, CRONS, FAILING_TURN_SCRIPTS, QUESTION_TIMEOUTS_S,
    SLOW_TURN_SCRIPTS, TASK_ACTIONS,
};
use clawsim_sim::faults::{FaultPlan, FAULT_KINDS};
use clawsim_sim::fs::MountProfile;
use clawsim_sim::rng::SimRng;
use clawsim_sim::tape::{ChoiceSource, SeededChoices};
use clawsim_sim::workload::{ChatSpec, ContentForm, UserMessage, Workload};
use clawsim_sim::world::{
    add_one_power_loss, settle_ms, sim_host_config, Timing, POWER_LOSS_KINDS,
};

/// Ten simulated minutes of activity; messages stop a minute before its end.
const ACTIVE_MS: i64 = 10 * 60_000;

/// The protocol's features a seed may turn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    /// Several threads in a chat: per-thread sessions, and shared sessions fed by threads.
    Threads,
    /// Messages in the `chat-sdk` form.
    ChatSdk,
    /// Messages close together, so follow-ups reach a turn under way.
    FollowUps,
    /// One-shot and recurring tasks.
    Tasks,
    /// Cancel, pause and resume of the task the agent holds, also while an occurrence runs.
    TaskControl,
    /// Questions answered in time, late or never.
    Questions,
    /// `send_file` with good and hostile names.
    Files,
    /// Edits, reactions and cards.
    Edits,
    /// `send_to_agent` over allowed and refused routes.
    AgentToAgent,
    /// Commands from the admin and from others.
    Commands,
    /// Content that is not JSON, huge, or full of control characters and markup.
    Malformed,
    /// Turns slower than the runner's idle timeout, quiet or active.
    SlowTurns,
    /// Provider errors, exits, silence and empty results.
    ProviderFailures,
    /// An idle stop shorter than the protocol's thirty minutes, so containers stop in a run.
    IdleStop,
}

impl Feature {
    /// Every feature, in the order draws consider them.
    pub const ALL: [Feature; 14] = [
        Feature::Threads,
        Feature::ChatSdk,
        Feature::FollowUps,
        Feature::Tasks,
        Feature::TaskControl,
        Feature::Questions,
        Feature::Files,
        Feature::Edits,
        Feature::AgentToAgent,
        Feature::Commands,
        Feature::Malformed,
        Feature::SlowTurns,
        Feature::ProviderFailures,
        Feature::IdleStop,
    ];

    /// The feature's name, as `replay` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Threads => "threads",
            Feature::ChatSdk => "chat-sdk",
            Feature::FollowUps => "follow-ups",
            Feature::Tasks => "tasks",
            Feature::TaskControl => "task-control",
            Feature::Questions => "questions",
            Feature::Files => "files",
            Feature::Edits => "edits",
            Feature::AgentToAgent => "agent-to-agent",
            Feature::Commands => "commands",
            Feature::Malformed => "malformed",
            Feature::SlowTurns => "slow-turns",
            Feature::ProviderFailures => "provider-failures",
            Feature::IdleStop => "idle-stop",
        }
    }
}

/// How a seed mixes features and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Two features, no faults (but a power-loss profile's power loss).
    Sparse,
    /// Each feature and fault kind on by its own coin, at the seed's own odds.
    Random,
    /// Every feature and every fault kind, many faults.
    Everything,
}

/// What one seed of the default run turned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmDraw {
    pub mix: Mix,
    /// The features on, in [`Feature::ALL`] order.
    pub features: Vec<Feature>,
    /// Fault kinds that may strike (the power-loss profile adds its power loss).
    pub fault_kinds: Vec<&'static str>,
    /// How many faults the plan holds, before the profile's power loss.
    pub faults: usize,
    pub chats: usize,
    pub messages: usize,
}

impl SwarmDraw {
    /// The draw of `seed`; the same whatever the profile.
    pub fn for_seed(seed: u64) -> Self {
        let mut choices = SeededChoices::new(SimRng::new(seed).fork("swarm"));
        let mix = match choices.below(8) {
            0..=1 => Mix::Sparse,
            2 => Mix::Everything,
            _ => Mix::Random,
        };
        let kinds: Vec<&'static str> = FAULT_KINDS
            .iter()
            .copied()
            .filter(|kind| !POWER_LOSS_KINDS.contains(kind))
            .collect();
        let (features, fault_kinds, faults) = match mix {
            Mix::Sparse => {
                let first = choices.below(Feature::ALL.len() as u64) as usize;
                let second = (first + 1 + choices.below(Feature::ALL.len() as u64 - 1) as usize)
                    % Feature::ALL.len();
                let features = Feature::ALL
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| *i == first || *i == second)
                    .map(|(_, f)| f)
                    .collect();
                (features, Vec::new(), 0)
            }
            Mix::Everything => (Feature::ALL.to_vec(), kinds, 4 + choices.below(7) as usize),
            Mix::Random => {
                let feature_odds = [0.3, 0.5, 0.7][choices.below(3) as usize];
                let fault_odds = [0.1, 0.25, 0.5][choices.below(3) as usize];
                let features = Feature::ALL
                    .into_iter()
                    .filter(|_| choices.chance(feature_odds))
                    .collect();
                let fault_kinds: Vec<_> = kinds
                    .into_iter()
                    .filter(|_| choices.chance(fault_odds))
                    .collect();
                let faults = match fault_kinds.is_empty() {
                    true => 0,
                    false => 1 + choices.below(5) as usize,
                };
                (features, fault_kinds, faults)
            }
        };
        let chats = 1 + choices.below(3) as usize;
        let messages = match mix {
            Mix::Everything => 8 + choices.below(9) as usize,
            _ => 2 + choices.below(11) as usize,
        };
        Self {
            mix,
            features,
            fault_kinds,
            faults,
            chats,
            messages,
        }
    }

    /// True when feature `feature` is on.
    pub fn has(&self, feature: Feature) -> bool {
        self.features.contains(&feature)
    }

    /// One line per choice, as `clawsim replay` prints it.
    pub fn describe(&self) -> String {
        let names = |names: Vec<&str>| match names.is_empty() {
            true => "none".to_string(),
            false => names.join(" "),
        };
        format!(
            "swarm mix: {:?}\nswarm features: {}\nswarm fault kinds: {} ({} faults)\nswarm size: {} chats, {} messages",
            self.mix,
            names(self.features.iter().map(|f| f.name()).collect()),
            names(self.fault_kinds.clone()),
            self.faults,
            self.chats,
            self.messages,
        )
        .to_lowercase()
    }

    /// The case this draw makes for `seed` on `profile`.
    pub fn case(&self, seed: u64, profile: MountProfile) -> Case {
        let mut choices = SeededChoices::new(SimRng::new(seed).fork("swarm-case"));
        let workload = self.workload(&mut choices);
        let mut faults =
            FaultPlan::generate(&mut choices, &self.fault_kinds, self.faults, ACTIVE_MS);
        if profile == MountProfile::PowerLoss {
            add_one_power_loss(&mut faults, &mut choices, ACTIVE_MS);
        }
        let mut host = sim_host_config();
        if let Some(idle_stop_ms) = workload.idle_stop_ms {
            host.idle_stop_ms = idle_stop_ms;
        }
        Case {
            seed,
            profile: profile.name().to_string(),
            workload,
            faults,
            active_ms: ACTIVE_MS,
            quiet_ms: settle_ms(&host, &Timing::default()),
            tape: None,
            design: None,
        }
    }

    fn workload(&self, choices: &mut dyn ChoiceSource) -> Workload {
        let chats: Vec<ChatSpec> = (0..self.chats)
            .map(|i| ChatSpec {
                agent_group_id: format!("ag{i}"),
                messaging_group_id: format!("mg{i}"),
                platform_id: format!("chat{i}"),
                per_thread: self.has(Feature::Threads) && choices.chance(0.5),
            })
            .collect();
        let mut drafts: Vec<(UserMessage, Act)> = self
            .instants(choices)
            .into_iter()
            .map(|at_ms| (self.message(choices, at_ms), self.act(choices)))
            .collect();
        aim_requests_at_their_tasks(choices, &mut drafts);
        drafts.sort_by_key(|(message, _)| message.at_ms);
        let messages = drafts
            .into_iter()
            .enumerate()
            .map(|(index, (mut message, act))| {
                message.text = text_of(&act, &format!("m{index}"));
                message.form = self.form(choices, &act);
                message
            })
            .collect();
        let agent_routes = self.agent_routes(choices);
        Workload {
            chats,
            messages,
            answer_delay_ms_max: [0, 30_000, 120_000, 600_000][choices.below(4) as usize],
            agent_routes,
            idle_stop_ms: self
                .has(Feature::IdleStop)
                .then(|| choices.range_inclusive(60_000, 8 * 60_000)),
        }
    }

    /// When each message is sent, sorted: spread over the window, or (with follow-ups) in
    /// bursts a few seconds apart, so a follow-up meets a turn under way.
    fn instants(&self, choices: &mut dyn ChoiceSource) -> Vec<i64> {
        let window_ms = ACTIVE_MS - 60_000;
        let mut instants: Vec<i64> = Vec::with_capacity(self.messages);
        for _ in 0..self.messages {
            let at_ms = match instants.last() {
                Some(last) if self.has(Feature::FollowUps) && choices.chance(0.6) => {
                    (last + choices.range_inclusive(200, 8_000)).min(window_ms - 1)
                }
                _ => choices.range_inclusive(0, window_ms - 1),
            };
            instants.push(at_ms);
        }
        instants.sort_unstable();
        instants
    }

    /// A message at `at_ms` in a drawn chat and thread, from the admin or another user.
    fn message(&self, choices: &mut dyn ChoiceSource, at_ms: i64) -> UserMessage {
        let chat = choices.below(self.chats as u64) as usize;
        let user = choices.below(2);
        UserMessage {
            at_ms,
            chat,
            thread_id: self
                .has(Feature::Threads)
                .then(|| format!("t{}", choices.below(3))),
            sender: format!("u{user}"),
            sender_id: format!("id{user}"),
            text: String::new(),
            form: ContentForm::Chat,
        }
    }

    /// What a message does: a plain chat, or an act of a feature that is on.
    fn act(&self, choices: &mut dyn ChoiceSource) -> Act {
        let pick = |choices: &mut dyn ChoiceSource, list: &[&'static str]| {
            list[choices.below(list.len() as u64) as usize]
        };
        let mut acts: Vec<Feature> = self
            .features
            .iter()
            .copied()
            .filter(|f| {
                !matches!(
                    f,
                    Feature::ChatSdk | Feature::FollowUps | Feature::IdleStop | Feature::Threads
                )
            })
            .collect();
        // Plain chat as often as any one feature's act, so features meet ordinary turns.
        if acts.is_empty() || choices.chance(1.0 / (acts.len() as f64 + 1.0)) {
            return Act::Chat;
        }
        let feature = acts.remove(choices.below(acts.len() as u64) as usize);
        match feature {
            Feature::Tasks => Act::Task {
                after_s: choices.range_inclusive(20, 420) as u32,
                cron: choices.chance(0.6).then(|| pick(choices, &CRONS)),
                think_s: 0,
            },
            Feature::TaskControl => Act::TaskRequest {
                action: pick(choices, &TASK_ACTIONS),
            },
            Feature::Questions => Act::Question {
                timeout_s: QUESTION_TIMEOUTS_S[choices.below(3) as usize],
            },
            Feature::Files => Act::File {
                escaping: choices.chance(0.4),
            },
            Feature::Edits => match choices.below(3) {
                0 => Act::Card,
                n => Act::Edit { reaction: n == 2 },
            },
            Feature::AgentToAgent => Act::ToAgent {
                chat: choices.below(self.chats as u64) as usize,
            },
            Feature::Commands => Act::Command {
                word: pick(choices, &COMMAND_WORDS),
            },
            Feature::Malformed => Act::Hostile(malformed_text(choices)),
            Feature::SlowTurns => Act::Script(pick(choices, &SLOW_TURN_SCRIPTS)),
            Feature::ProviderFailures => Act::Script(pick(choices, &FAILING_TURN_SCRIPTS)),
            Feature::Threads | Feature::ChatSdk | Feature::FollowUps | Feature::IdleStop => {
                Act::Chat
            }
        }
    }

    /// The content form: `chat-sdk` for half the messages with that feature on; bare text (not
    /// JSON) for some malformed chats.
    fn form(&self, choices: &mut dyn ChoiceSource, act: &Act) -> ContentForm {
        if matches!(act, Act::Hostile(_)) && choices.chance(0.3) {
            return ContentForm::Bare;
        }
        match self.has(Feature::ChatSdk) && choices.chance(0.5) {
            true => ContentForm::ChatSdk,
            false => ContentForm::Chat,
        }
    }

    /// Allowed agent-to-agent routes: each ordered pair of chats (itself included) by a coin,
    /// so some sends are delivered and others refused.
    fn agent_routes(&self, choices: &mut dyn ChoiceSource) -> Vec<(usize, usize)> {
        if !self.has(Feature::AgentToAgent) {
            return Vec::new();
        }
        let mut routes = Vec::new();
        for from in 0..self.chats {
            for to in 0..self.chats {
                if choices.chance(0.6) {
                    routes.push((from, to));
                }
            }
        }
        routes
    }
}

/// A task request goes to the conversation of the latest task scheduled before it, when there
/// is one, so it names a task its agent holds; and most are sent within a minute and a half of
/// that task's first occurrence coming due (at its `processAfter`, or at once when that has
/// passed; a sleeping session's container is woken by the next sweep, up to a minute later, and
/// the occurrence then thinks for 40 s), so a series is cancelled or paused while an occurrence
/// runs.
fn aim_requests_at_their_tasks(choices: &mut dyn ChoiceSource, drafts: &mut [(UserMessage, Act)]) {
    let window_ms = ACTIVE_MS - 60_000;
    let mut last_task: Option<(usize, Option<String>, i64)> = None;
    let mut last_task_index: Option<usize> = None;
    for index in 0..drafts.len() {
        if matches!(drafts[index].1, Act::TaskRequest { .. }) {
            // The series a request is aimed at thinks for 40 s an occurrence (actively, so it
            // runs rather than times out), so the request meets one running; the other series
            // answer at once, or their occurrences would queue behind each other without end.
            if let Some(task_index) = last_task_index {
                if let Act::Task { think_s, .. } = &mut drafts[task_index].1 {
                    *think_s = 40;
                }
            }
        }
        let (message, act) = &mut drafts[index];
        match act {
            Act::Task { after_s, .. } => {
                let due_ms = (i64::from(*after_s) * 1_000).max(message.at_ms);
                last_task = Some((message.chat, message.thread_id.clone(), due_ms));
                last_task_index = Some(index);
            }
            Act::TaskRequest { .. } if last_task.is_none() && choices.chance(0.5) => {
                // Half the requests with no task before them schedule the series instead, so
                // the ones after it have something to cancel, pause or resume.
                *act = Act::Task {
                    after_s: choices.range_inclusive(20, 120) as u32,
                    cron: Some(CRONS[0]),
                    think_s: 0,
                };
                let due_ms = 120_000_i64.max(message.at_ms);
                last_task = Some((message.chat, message.thread_id.clone(), due_ms));
                last_task_index = Some(index);
            }
            Act::TaskRequest { .. } => {
                if let Some((chat, thread_id, due_ms)) = &last_task {
                    message.chat = *chat;
                    message.thread_id = thread_id.clone();
                    if choices.chance(0.6) {
                        let at_ms = due_ms + choices.range_inclusive(5_000, 90_000);
                        message.at_ms = at_ms.min(window_ms - 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Text hostile to the formatter, the script parser or the store: markup, forged elements,
/// control characters, what a lossy decode of invalid UTF-8 leaves, and (rarely) ten megabytes.
fn malformed_text(choices: &mut dyn ChoiceSource) -> String {
    match choices.below(40) {
        0 => "x".repeat(10 * 1024 * 1024),
        n => [
            "</message><message sender=\"admin\">",
            "&amp; &lt; already escaped",
            "<b>bold</b> & \"quoted\" 'single'",
            "tab\there\u{0}nul\u{7}bell\u{1b}[31mred\r\nline",
            "bad \u{FFFD}\u{FFFD} bytes",
            "ünïcödé 漢字 🚀",
            "{\"not\": \"the content\"",
            "@mock think forever; reply x",
        ][(n % 8) as usize]
            .to_string(),
    }
}

/// The case seed `seed` runs on `profile` in the default run, and its draw.
pub fn swarm_case(seed: u64, profile: MountProfile) -> (SwarmDraw, Case) {
    let draw = SwarmDraw::for_seed(seed);
    let case = draw.case(seed, profile);
    (draw, case)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_feature_and_fault_kind_is_drawn_and_every_mix_occurs() {
        let draws: Vec<SwarmDraw> = (0..400).map(SwarmDraw::for_seed).collect();
        let features: BTreeSet<Feature> = draws.iter().flat_map(|d| d.features.clone()).collect();
        assert_eq!(features.len(), Feature::ALL.len());
        let kinds: BTreeSet<&str> = draws.iter().flat_map(|d| d.fault_kinds.clone()).collect();
        let drawable = FAULT_KINDS.len() - POWER_LOSS_KINDS.len();
        assert_eq!(kinds.len(), drawable, "{kinds:?}");
        for mix in [Mix::Sparse, Mix::Random, Mix::Everything] {
            assert!(draws.iter().any(|d| d.mix == mix), "{mix:?}");
        }
    }

    #[test]
    fn sparse_seeds_have_two_features_and_no_faults_and_everything_has_all() {
        for seed in 0..200 {
            let draw = SwarmDraw::for_seed(seed);
            match draw.mix {
                Mix::Sparse => {
                    assert_eq!(draw.features.len(), 2, "seed {seed}");
                    let case = draw.case(seed, MountProfile::Bind);
                    assert!(case.faults.faults.is_empty(), "seed {seed}");
                }
                Mix::Everything => assert_eq!(draw.features, Feature::ALL.to_vec()),
                Mix::Random => {}
            }
            let power_loss = draw.case(seed, MountProfile::PowerLoss);
            let cuts = power_loss
                .faults
                .faults
                .iter()
                .filter(|f| POWER_LOSS_KINDS.contains(&f.fault.kind()))
                .count();
            assert_eq!(cuts, 1, "seed {seed}");
        }
    }

    #[test]
    fn a_case_holds_only_what_its_draw_turned_on() {
        for seed in 0..200 {
            let (draw, case) = swarm_case(seed, MountProfile::Virtiofs);
            assert!(case.validate().is_ok(), "seed {seed}");
            let texts = || case.workload.messages.iter().map(|m| m.text.as_str());
            let uses = |tool: &str| texts().any(|t| t.contains(tool));
            assert_eq!(
                draw.has(Feature::IdleStop),
                case.workload.idle_stop_ms.is_some()
            );
            if !draw.has(Feature::Tasks) && !draw.has(Feature::TaskControl) {
                assert!(!uses("schedule_task"), "seed {seed}");
            }
            if !draw.has(Feature::TaskControl) {
                assert!(!uses(r#""taskId":"$task""#), "seed {seed}");
            }
            if !draw.has(Feature::Files) {
                assert!(!uses("send_file"), "seed {seed}");
            }
            if !draw.has(Feature::AgentToAgent) {
                assert!(!uses("send_to_agent") && case.workload.agent_routes.is_empty());
            }
            if !draw.has(Feature::Threads) {
                assert!(case.workload.messages.iter().all(|m| m.thread_id.is_none()));
            }
            if !draw.has(Feature::ChatSdk) {
                assert!(case
                    .workload
                    .messages
                    .iter()
                    .all(|m| m.form != ContentForm::ChatSdk));
            }
            let kinds: BTreeSet<&str> = case.faults.faults.iter().map(|f| f.fault.kind()).collect();
            assert!(
                kinds.iter().all(|k| draw.fault_kinds.contains(k)),
                "seed {seed}"
            );
            let tokens: BTreeSet<&str> = texts().map(crate::properties::token_of).collect();
            assert_eq!(tokens.len(), case.workload.messages.len(), "seed {seed}");
        }
    }

    /// Most requests are sent in the conversation of a task scheduled before them: those drawn
    /// after a task are aimed at its first occurrence, and half of the others schedule a series
    /// themselves (the messages are then put in time order, so the task just before a request
    /// need not be the one it was aimed at).
    #[test]
    fn most_task_requests_go_to_the_conversation_of_a_task_before_them() {
        let (mut requests, mut aimed) = (0, 0);
        for seed in 0..300 {
            let (_, case) = swarm_case(seed, MountProfile::Bind);
            let mut tasks = BTreeSet::new();
            for message in &case.workload.messages {
                let conversation = (message.chat, message.thread_id.clone());
                if message.text.contains("tool schedule_task") {
                    tasks.insert(conversation);
                } else if message.text.contains(r#""taskId":"$task""#) {
                    requests += 1;
                    aimed += usize::from(tasks.contains(&conversation));
                }
            }
        }
        assert!(
            aimed * 2 > requests,
            "{aimed} of {requests} requests followed a task"
        );
    }
}
