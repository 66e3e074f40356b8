//! The fault injector's armed state: faults that struck and now wait for something to meet
//! them — container start faults for the next start requests, mock scripts for the next
//! workload message, a power cut and storage faults armed in SimFs — and how SimFs's counters
//! tell that one of the latter fired.
//!
//! Targeted faults wait in two stages. First for the moment they aim at, which the world sees
//! at its seams: the platform accepting a send, an agent asking for a system action, a message
//! about to be routed, the provider boundary seeing an answer stored. Then, armed as a SimFs
//! trap, for the one disk operation that is the step boundary itself: the first write of the
//! send's record, the first page of the action's commit, the new session's first mkdir, the
//! runner's next write after its answer. The core is never asked whether it is simulated.

use crate::fs::{FsFault, FsTrap, SimFs, TrapId};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// SimFs's counter of power cuts that fired.
const POWER_CUTS_FIRED: &str = "fault.power_loss.fired";

/// A container start the next start request meets.
#[derive(Debug, Clone, Copy)]
pub(super) enum StartFault {
    Slow {
        extra_ms: i64,
    },
    Fails,
    /// Killed `at_permille` thousandths into the start.
    Killed {
        at_permille: u32,
    },
}

/// A storage fault armed in SimFs: its kind, the SimFs counter of its firings, and that
/// counter's value when it was armed.
#[derive(Debug, Clone)]
struct ArmedStorageFault {
    kind: &'static str,
    fired_counter: &'static str,
    fired_before: u64,
}

/// What the world does when a trap it armed springs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TrapThen {
    /// An I/O error the process lives through: recorded the first time, counted once.
    Count,
    /// The host process died at the operation: it is restarted after `down_ms`.
    CrashHost { down_ms: i64 },
    /// The container process of `session_id` died at the operation.
    KillContainer { session_id: String },
}

/// A trap armed in SimFs on behalf of fault `kind`.
struct ArmedTrap {
    kind: &'static str,
    then: TrapThen,
    /// Sprung at least once (a failing trap may spring again; it is recorded once).
    sprung: bool,
}

/// Crashes between an answer and its ack: how many wait for the next stored answer, and the
/// traps armed for the runners that stored one. Shared with the provider boundary's hook,
/// which arms them in the middle of a runner step.
#[derive(Default)]
pub(super) struct AnswerCrashes {
    pub(super) pending: u32,
    pub(super) armed: Vec<(TrapId, String)>,
}

#[derive(Default)]
pub(super) struct ArmedFaults {
    start_faults: Vec<StartFault>,
    /// Mock scripts armed by provider faults (with their kind), for the next workload message.
    scripts: Vec<(&'static str, String)>,
    /// The downtime of a power cut armed in SimFs and not fired yet.
    power_cut: Option<i64>,
    /// Storage faults armed in SimFs and not yet seen firing, in the order armed.
    storage: Vec<ArmedStorageFault>,
    /// Power cuts SimFs has reported firing so far.
    power_cuts_seen: u64,
    /// Traps armed in SimFs for targeted faults, by id.
    traps: BTreeMap<TrapId, ArmedTrap>,
    /// Host crashes (their downtimes) waiting for a send to start.
    pub(super) mid_send_crashes: Vec<i64>,
    /// Host crashes (their downtimes) waiting for the platform to accept a send.
    pub(super) send_crashes: Vec<i64>,
    /// Host crashes waiting for an agent to ask for a system action.
    pub(super) action_crashes: Vec<i64>,
    /// Host crashes aimed at the next delivery step of a session whose agent asked for one.
    pub(super) action_sessions: BTreeMap<String, Vec<i64>>,
    /// Host crashes waiting for a new session to be created.
    pub(super) folder_crashes: Vec<i64>,
    pub(super) answer_crashes: Rc<RefCell<AnswerCrashes>>,
    /// Workload messages carrying a silence past the idle timeout, until routed.
    pub(super) silent_messages: BTreeSet<usize>,
    /// Sessions a message silent past the idle timeout went to, with how many such turns wait
    /// for the runner to end them.
    pub(super) silent_sessions: BTreeMap<String, u32>,
}

/// The SimFs counter that counts firings of a storage fault.
fn fired_counter(fault: &FsFault) -> &'static str {
    match fault {
        FsFault::FsyncError { .. } => "fault.fsync_error.fired",
        FsFault::DiskFull { .. } => "fault.disk_full.fired",
        FsFault::Busy { .. } => "fault.busy.fired",
        FsFault::SlowDisk { .. } => "fault.slow_disk.fired",
        FsFault::PowerLossAfter { .. } => POWER_CUTS_FIRED,
    }
}

impl ArmedFaults {
    /// Arms a fault for the next container start request.
    pub(super) fn arm_start(&mut self, fault: StartFault) {
        self.start_faults.push(fault);
    }

    /// The fault the start requested now meets, in the order armed.
    pub(super) fn next_start_fault(&mut self) -> Option<StartFault> {
        if self.start_faults.is_empty() {
            return None;
        }
        Some(self.start_faults.remove(0))
    }

    /// Arms a mock script of fault `kind` for the next workload message.
    pub(super) fn arm_script(&mut self, kind: &'static str, script: String) {
        self.scripts.push((kind, script));
    }

    /// The armed scripts, with their kinds, for the message offered now; none stay armed.
    pub(super) fn take_scripts(&mut self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut self.scripts)
    }

    /// Arms a power cut in SimFs after `ops` operations (on `side`, or either); the machine is
    /// down for `down_ms` when it fires. A later one replaces an armed one.
    pub(super) fn arm_power_cut(
        &mut self,
        fs: &SimFs,
        ops: u32,
        side: Option<crate::fs::Side>,
        down_ms: i64,
    ) {
        fs.inject(FsFault::PowerLossAfter { ops, side });
        self.power_cut = Some(down_ms);
    }

    /// Arms a storage fault of `kind` in SimFs; it is counted when it meets a disk operation.
    pub(super) fn arm_storage(&mut self, fs: &SimFs, kind: &'static str, fs_fault: FsFault) {
        let fired_counter = fired_counter(&fs_fault);
        let fired_before = fs.counters().get(fired_counter).copied().unwrap_or(0);
        fs.inject(fs_fault);
        self.storage.push(ArmedStorageFault {
            kind,
            fired_counter,
            fired_before,
        });
    }

    /// Kinds of the storage faults that met a disk operation since the last call, one firing
    /// per armed fault of a kind, in the order they were armed. (Reads SimFs's counters only
    /// while one is armed: that is not free.)
    pub(super) fn storage_fired(&mut self, fs: &SimFs) -> Vec<&'static str> {
        if self.storage.is_empty() {
            return Vec::new();
        }
        let counters = fs.counters();
        let mut fired_seen: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut still_armed = Vec::new();
        let mut fired = Vec::new();
        for armed in std::mem::take(&mut self.storage) {
            let now = counters.get(armed.fired_counter).copied().unwrap_or(0);
            let seen = fired_seen
                .entry(armed.fired_counter)
                .or_insert(armed.fired_before);
            if now > *seen {
                *seen += 1;
                fired.push(armed.kind);
            } else {
                still_armed.push(armed);
            }
        }
        self.storage = still_armed;
        fired
    }

    /// The downtime of the armed power cut if it fired since the last call; it is disarmed.
    /// (Reads SimFs's counters only while one is armed: that is not free.)
    pub(super) fn power_cut_fired(&mut self, fs: &SimFs) -> Option<i64> {
        let down_ms = self.power_cut?;
        let fired = fs.counters().get(POWER_CUTS_FIRED).copied().unwrap_or(0);
        if fired <= self.power_cuts_seen {
            return None;
        }
        self.power_cuts_seen = fired;
        self.power_cut = None;
        Some(down_ms)
    }

    /// Arms `trap` in SimFs for fault `kind`; `then` is what the world does when it springs.
    pub(super) fn arm_trap(
        &mut self,
        fs: &SimFs,
        kind: &'static str,
        trap: FsTrap,
        then: TrapThen,
    ) -> TrapId {
        let id = fs.arm_trap(trap);
        let armed = ArmedTrap {
            kind,
            then,
            sprung: false,
        };
        self.traps.insert(id, armed);
        id
    }

    /// Disarms trap `id` if it has not sprung; true when it had not (it is forgotten then).
    pub(super) fn disarm_unsprung(&mut self, fs: &SimFs, id: TrapId) -> bool {
        let unsprung = fs.disarm_trap(id) && !self.traps.get(&id).is_some_and(|t| t.sprung);
        if unsprung {
            self.traps.remove(&id);
        }
        unsprung
    }

    /// Whether any trap is armed (reading SimFs is not free).
    pub(super) fn has_traps(&self) -> bool {
        !self.traps.is_empty() || !self.answer_crashes.borrow().armed.is_empty()
    }

    /// The traps that sprang since the last call, each with its fault kind and what the world
    /// does now; a failing trap that springs again is not reported again.
    pub(super) fn traps_sprung(&mut self, fs: &SimFs) -> Vec<(&'static str, TrapThen)> {
        let mut sprung = Vec::new();
        for id in fs.take_sprung_traps() {
            let mut answers = self.answer_crashes.borrow_mut();
            if let Some(index) = answers.armed.iter().position(|(armed, _)| *armed == id) {
                let (_, session_id) = answers.armed.remove(index);
                let then = TrapThen::KillContainer { session_id };
                sprung.push(("crash-between-answer-and-ack", then));
                continue;
            }
            let Some(trap) = self.traps.get_mut(&id) else {
                continue;
            };
            if trap.then != TrapThen::Count {
                let trap = self.traps.remove(&id).expect("found above");
                sprung.push((trap.kind, trap.then));
            } else if !std::mem::replace(&mut trap.sprung, true) {
                sprung.push((trap.kind, TrapThen::Count));
            }
        }
        sprung
    }

    /// The quiet period begins: no more container start faults or scripted provider faults,
    /// and an armed power cut is pushed out of reach; targeted faults that have not struck
    /// never will. (Storage faults are one-shot or bounded by an operation count, so an armed
    /// one fires at most a few more times.)
    pub(super) fn disarm(&mut self, fs: &SimFs) {
        self.start_faults.clear();
        self.scripts.clear();
        for id in std::mem::take(&mut self.traps).into_keys() {
            fs.disarm_trap(id);
        }
        let mut answers = self.answer_crashes.borrow_mut();
        answers.pending = 0;
        for (id, _) in std::mem::take(&mut answers.armed) {
            fs.disarm_trap(id);
        }
        self.send_crashes.clear();
        self.action_crashes.clear();
        self.action_sessions.clear();
        self.folder_crashes.clear();
        if self.power_cut.take().is_some() {
            // SimFs cannot disarm; a later power cut replaces an armed one, so push it out of
            // reach.
            fs.inject(FsFault::PowerLossAfter {
                ops: u32::MAX,
                side: None,
            });
        }
    }
}
