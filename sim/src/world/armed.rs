//! The fault injector's armed state: faults that struck and now wait for something to meet
//! them — container start faults for the next start requests, mock scripts for the next
//! workload message, a power cut and storage faults armed in SimFs — and how SimFs's counters
//! tell that one of the latter fired.

use crate::fs::{FsFault, SimFs};
use std::collections::BTreeMap;

/// SimFs's counter of power cuts that fired.
const POWER_CUTS_FIRED: &str = "fault.power_loss.fired";

/// A container start the next start request meets.
#[derive(Debug, Clone, Copy)]
pub(super) enum StartFault {
    Slow { extra_ms: i64 },
    Fails,
}

/// A storage fault armed in SimFs: its kind, the SimFs counter of its firings, and that
/// counter's value when it was armed.
#[derive(Debug, Clone)]
struct ArmedStorageFault {
    kind: &'static str,
    fired_counter: &'static str,
    fired_before: u64,
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

    /// The quiet period begins: no more container start faults or scripted provider faults,
    /// and an armed power cut is pushed out of reach. (Storage faults are one-shot or bounded
    /// by an operation count, so an armed one fires at most a few more times.)
    pub(super) fn disarm(&mut self, fs: &SimFs) {
        self.start_faults.clear();
        self.scripts.clear();
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
