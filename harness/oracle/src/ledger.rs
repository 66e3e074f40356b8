//! The ledger: what happened at the edges of the world, recorded independently of the core.
//!
//! The checkers judge the protocol from this record, never from the core's own
//! bookkeeping: what the users sent and when the host accepted it, every send the channel saw
//! (and whether it got through), the answers users gave, every fault with its time, the
//! integrity of every DB after each crash, and at the end both DBs of every session read
//! through a read-only connection. All of it is plain serde data.

use crate::fault::Fault;
use crate::observed::Observed;
use clawsim_core::inspect::SessionSnapshot;
use clawsim_core::model::Route;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One workload message and what became of it at the router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Index in the workload.
    pub index: usize,
    /// Index of the chat it was sent in.
    pub chat: usize,
    pub thread_id: Option<String>,
    pub text: String,
    /// When the user sent it (true time, ms).
    pub sent_at_ms: i64,
    /// How many times the channel offered it to the host (it retries while the host is down or
    /// refuses it).
    pub offers: u32,
    /// When the host accepted it, and where it landed.
    pub routed_at_ms: Option<i64>,
    pub session_id: Option<String>,
    pub message_id: Option<String>,
    pub seq: Option<i64>,
    /// Who sent it (its `senderId`), as the user's client stamped it: who may run an admin
    /// command (§9.13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    /// The conversation it was sent in (channel, platform id, thread), as the platform knows
    /// it: where its replies belong (§9.11, §9.12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Route>,
}

/// How one channel send ended, as the channel saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendOutcome {
    /// The platform got the message.
    Received,
    /// The platform refused it for now.
    Transient,
    /// The platform refused it for good.
    Permanent,
}

/// One send the channel adapter saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSend {
    /// When the send completed (true time, ms).
    pub at_ms: i64,
    pub outcome: SendOutcome,
    pub message_out_id: String,
    pub seq: Option<i64>,
    pub session_id: String,
    pub route: Route,
    pub kind: String,
    pub content: Value,
    /// Names of the attached files.
    pub files: Vec<String>,
    /// Which host incarnation sent it (a host crash starts a new one).
    pub host_incarnation: u64,
}

/// A user's answer to a question card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerRecord {
    pub at_ms: i64,
    pub question_id: String,
    pub option: String,
    /// The system message the answer became, once the host accepted it.
    pub message_id: Option<String>,
}

/// A fault as its time came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub at_ms: i64,
    pub fault: Fault,
    /// False when it found nothing to act on (and was not counted).
    pub applied: bool,
}

impl FaultRecord {
    /// The fault's kind (`host-crash`, ...).
    pub fn kind(&self) -> &'static str {
        self.fault.kind()
    }
}

/// `PRAGMA integrity_check` of one file at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityRecord {
    pub at_ms: i64,
    pub file: String,
    /// The pragma's rows (`["ok"]`), or the error that prevented reading them.
    pub result: Vec<String>,
}

impl IntegrityRecord {
    /// True when the file was read and found sound.
    pub fn is_ok(&self) -> bool {
        self.result == ["ok"]
    }
}

/// One session at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalSession {
    pub session_id: String,
    pub agent_group_id: String,
    pub dir: String,
    /// Both DBs, or `None` with `error` when they could not be read.
    pub snapshot: Option<SessionSnapshot>,
    pub error: Option<String>,
}

/// The DBs at the end of the run, read after the quiet period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalState {
    pub at_ms: i64,
    /// Host-clock time at the end, as the core would compare `process_after` against it.
    pub host_now_ms: i64,
    pub sessions: Vec<FinalSession>,
    /// Integrity of every DB file in the data folder.
    pub integrity: Vec<IntegrityRecord>,
    /// Single-writer violations SimFs recorded during the run.
    pub single_writer_violations: Vec<String>,
    /// Databases whose last transaction is in doubt: after a failed sync a checker must not
    /// count a row written then as a committed row lost; a lost commit is a durability
    /// violation in itself.
    pub maybe_durable: Vec<MaybeDurableRecord>,
}

/// A database whose last transaction is in doubt, as SimFs logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaybeDurableRecord {
    /// `host` or `container`: who wrote (or deleted) `file`.
    pub side: String,
    /// The database in doubt.
    pub path: String,
    /// The file the event struck (its journal, the DB itself, ...).
    pub file: String,
    /// When it happened, on that side's clock.
    pub at_ms: Option<i64>,
    /// Why: `FsyncError { nth: 1 }` (a failed sync, which the core saw as an error) or
    /// `CommitNotDurable` (a power loss undid a commit that had returned: a lost commit).
    pub cause: String,
}

impl MaybeDurableRecord {
    /// True when a transaction whose COMMIT returned was undone by a power loss.
    pub fn is_lost_commit(&self) -> bool {
        self.cause == "CommitNotDurable"
    }
}

/// Everything the checkers need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub sent: Vec<SentMessage>,
    pub channel: Vec<ChannelSend>,
    pub answers: Vec<AnswerRecord>,
    pub faults: Vec<FaultRecord>,
    /// Integrity of every DB right after each crash and restart.
    pub crash_checks: Vec<IntegrityRecord>,
    pub final_state: FinalState,
    /// What the world that kept this ledger could observe; everything unless it says otherwise
    /// (a real-Docker run sees no VFS, no sweep, no poll).
    #[serde(default, skip_serializing_if = "Observed::is_everything")]
    pub observed: Observed,
    /// Both sides write one shared session file (a design with the single layout, as before
    /// v2): the single-writer rule (§9.5) does not apply by design, and its consequences
    /// (lost or duplicated rows, corruption, stuck messages) are judged by the other
    /// properties.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared_session_file: bool,
}

impl Ledger {
    /// Sends the platform received, in order.
    pub fn received(&self) -> impl Iterator<Item = &ChannelSend> {
        self.channel
            .iter()
            .filter(|s| s.outcome == SendOutcome::Received)
    }
}
