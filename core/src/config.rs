//! Protocol constants (PROTOCOL defaults); every one is configuration.

use crate::env::SessionPaths;
use chrono_tz::Tz;
use std::path::PathBuf;

/// The host's settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `<data>`: the central DB is `<data>/central.db`, sessions live in `<data>/sessions/`.
    pub data_dir: PathBuf,
    /// Delivery pass for sessions whose container runs.
    pub delivery_fast_interval_ms: i64,
    /// Delivery pass for every active session.
    pub delivery_slow_interval_ms: i64,
    pub sweep_interval_ms: i64,
    /// A container whose heartbeat has not changed this long (host clock) is presumed dead.
    pub stale_after_ms: i64,
    /// A message is tried at most this many times.
    pub max_tries: i64,
    /// Backoff after a stale claim: `backoff_base_ms · 2^tries`.
    pub backoff_base_ms: i64,
    /// A container with no delivered output for this long is stopped.
    pub idle_stop_ms: i64,
    pub max_concurrent_containers: usize,
    /// Attempts of a transiently failing channel send before the row is undeliverable.
    pub send_attempts_max: u32,
    /// Backoff between channel send attempts: `send_backoff_base_ms · 2^attempt`.
    pub send_backoff_base_ms: i64,
    /// Environment passed to every agent-runner the host starts (admin id, time zone, …).
    pub agent_env: std::collections::BTreeMap<String, String>,
    /// Zone cron expressions of recurring tasks are evaluated in.
    pub time_zone: Tz,
    /// Storage choices of every session (PROTOCOL §2 unless configured otherwise); the host
    /// hands it to every agent-runner it starts (`CLAWSIM_DESIGN`).
    pub design: Design,
}

impl HostConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            delivery_fast_interval_ms: 1_000,
            delivery_slow_interval_ms: 60_000,
            sweep_interval_ms: 60_000,
            stale_after_ms: 10 * 60_000,
            max_tries: 5,
            backoff_base_ms: 5_000,
            idle_stop_ms: 30 * 60_000,
            max_concurrent_containers: 8,
            send_attempts_max: 5,
            send_backoff_base_ms: 1_000,
            agent_env: Default::default(),
            time_zone: Tz::UTC,
            design: Design::V2,
        }
    }

    pub fn central_db(&self) -> PathBuf {
        self.data_dir.join("central.db")
    }

    pub fn session_paths(&self, agent_group_id: &str, session_id: &str) -> SessionPaths {
        let mut paths = SessionPaths::new(
            self.data_dir
                .join("sessions")
                .join(agent_group_id)
                .join(session_id),
        );
        paths.layout = self.design.layout;
        paths
    }
}

/// The agent-runner's settings.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub paths: SessionPaths,
    pub poll_interval_idle_ms: i64,
    pub poll_interval_active_ms: i64,
    /// A query with no provider event and no new message for this long is ended.
    pub query_idle_timeout_ms: i64,
    /// Sender id allowed to run admin commands; `None` = nobody.
    pub admin_user_id: Option<String>,
    /// Zone of times shown to the agent.
    pub time_zone: Tz,
    /// Default `ask_user_question` timeout.
    pub question_timeout_ms: i64,
    /// Storage choices; set with [`RunnerConfig::set_design`], which also lays out `paths`.
    pub design: Design,
}

impl RunnerConfig {
    pub fn new(paths: SessionPaths) -> Self {
        Self {
            paths,
            poll_interval_idle_ms: 1_000,
            poll_interval_active_ms: 500,
            query_idle_timeout_ms: 20_000,
            admin_user_id: None,
            time_zone: Tz::UTC,
            question_timeout_ms: 300_000,
            design: Design::V2,
        }
    }

    /// Uses `design`, and the session files of its layout.
    pub fn set_design(&mut self, design: Design) {
        self.design = design;
        self.paths.layout = design.layout;
    }
}

/// The environment variable that names an agent-runner's [`Design`].
pub const DESIGN_VAR: &str = "CLAWSIM_DESIGN";

/// The rollback journal SQLite keeps for a session DB (`PRAGMA journal_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JournalMode {
    /// A rollback journal beside the file, deleted at commit: every reader reads the file.
    Delete,
    /// A write-ahead log plus a shared-memory index (`-shm`) every reader must share.
    Wal,
}

/// How hard a commit syncs (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Synchronous {
    Normal,
    Full,
    /// FULL plus a directory sync after the journal's unlink.
    Extra,
}

/// How the agent-runner shows it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Heartbeat {
    /// Touches `.heartbeat`; the host reads its mtime.
    FileTouch,
    /// Writes the time into a `heartbeat` row of the file it writes; the host reads the row.
    DbUpdate,
}

/// Which files a session keeps its four tables in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SessionLayout {
    /// `inbound.db` (host writes) and `outbound.db` (agent-runner writes): one writer per file.
    #[default]
    Split,
    /// One `session.db` both sides open read-write, as before v2.
    Single,
}

/// The storage choices of the session protocol, as one value: every variant is configuration
/// of the same core, never a different code path for a simulated world. [`Design::V2`] is
/// PROTOCOL §2; the others are the alternatives its decisions were taken against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Design {
    pub name: &'static str,
    pub journal_mode: JournalMode,
    pub synchronous: Synchronous,
    pub heartbeat: Heartbeat,
    pub layout: SessionLayout,
}

impl Design {
    /// Today's protocol: split files, DELETE journal, synchronous=EXTRA, heartbeat file.
    pub const V2: Design = Design {
        name: "v2",
        journal_mode: JournalMode::Delete,
        synchronous: Synchronous::Extra,
        heartbeat: Heartbeat::FileTouch,
        layout: SessionLayout::Split,
    };

    /// Every named design with what it is, v2 first.
    pub const NAMED: &'static [(Design, &'static str)] = &[
        (
            Design::V2,
            "today's protocol: split files, DELETE journal, synchronous=EXTRA, heartbeat file",
        ),
        (
            Design {
                name: "split-wal",
                journal_mode: JournalMode::Wal,
                ..Design::V2
            },
            "v2 with the WAL journal (shared-memory index in -shm)",
        ),
        (
            Design {
                name: "full-sync",
                synchronous: Synchronous::Full,
                ..Design::V2
            },
            "v2 with synchronous=FULL (PROTOCOL §2 as written): no directory sync after a commit",
        ),
        (
            Design {
                name: "normal-sync",
                synchronous: Synchronous::Normal,
                ..Design::V2
            },
            "v2 with synchronous=NORMAL: the journal is not synced before the file is written",
        ),
        (
            Design {
                name: "db-heartbeat",
                heartbeat: Heartbeat::DbUpdate,
                ..Design::V2
            },
            "v2 with the heartbeat written into outbound.db instead of a file's mtime",
        ),
        (
            Design {
                name: "single-delete",
                layout: SessionLayout::Single,
                ..Design::V2
            },
            "one session.db both sides write, DELETE journal, synchronous=EXTRA",
        ),
        (
            Design {
                name: "v1-single-wal",
                journal_mode: JournalMode::Wal,
                synchronous: Synchronous::Normal,
                heartbeat: Heartbeat::DbUpdate,
                layout: SessionLayout::Single,
            },
            "before v2: one session.db both sides write, WAL, synchronous=NORMAL, heartbeat row",
        ),
    ];

    /// The named design `name`; the error lists the names.
    pub fn by_name(name: &str) -> std::result::Result<Design, String> {
        Design::NAMED
            .iter()
            .map(|(design, _)| *design)
            .find(|design| design.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Design::NAMED.iter().map(|(d, _)| d.name).collect();
                format!("unknown design {name:?} (known: {})", names.join(", "))
            })
    }

    /// True for today's protocol.
    pub fn is_v2(&self) -> bool {
        *self == Design::V2
    }
}

impl Default for Design {
    fn default() -> Self {
        Design::V2
    }
}

impl std::fmt::Display for Design {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}
