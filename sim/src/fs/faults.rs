//! Disk faults armed and waiting for the operation that meets them: fsync errors, disk full,
//! SQLITE_BUSY, slow disk, a power cut after N operations, and traps aimed at one kind of
//! operation on one path (a failing unlink of an outbox folder, a process crash at a chosen
//! write).
//!
//! A fault is counted once when armed and once when it fires, so a report can tell a fault
//! that never met its operation from one that did. Only the arming and the firing live here;
//! what a fired fault does to the files (a torn sync, a crash) is the state's business.

use super::counters::Counters;
use super::{FsFault, FsOp, FsTrap, Side, TrapEffect, TrapId};

/// Faults armed and not yet fired, per side, and the latency a slow disk charged.
#[derive(Default)]
pub(crate) struct ArmedFaults {
    fsync_errors: [u32; 2],
    disk_full_ops: [u32; 2],
    busy: [u32; 2],
    /// Latency per operation, and operations left.
    slow_disk: [(i64, u32); 2],
    /// An armed power cut: disk operations left until it fires (`1`: the next one), and the
    /// side whose operations count (`None`: both).
    power_loss_after: Option<(u32, Option<Side>)>,
    /// Latency charged and not yet collected, per side.
    io_delay_ms: [i64; 2],
}

impl ArmedFaults {
    pub(crate) fn arm(&mut self, fault: FsFault, counters: &mut Counters) {
        match fault {
            FsFault::FsyncError { side } => {
                self.fsync_errors[side.index()] += 1;
                counters.fsync_error_injected += 1;
            }
            FsFault::DiskFull { side, ops } => {
                self.disk_full_ops[side.index()] += ops;
                counters.disk_full_injected += 1;
            }
            FsFault::Busy { side } => {
                self.busy[side.index()] += 1;
                counters.busy_injected += 1;
            }
            FsFault::SlowDisk {
                side,
                latency_ms,
                ops,
            } => {
                self.slow_disk[side.index()] = (latency_ms, ops);
                counters.slow_disk_injected += 1;
            }
            FsFault::PowerLossAfter { ops, side } => {
                self.power_loss_after = Some((ops.max(1), side));
                counters.power_loss_injected += 1;
            }
        }
    }

    /// Counts one mutating operation of `side` against an armed power cut; true when the
    /// power fails now, before the operation.
    pub(crate) fn power_cut_due(&mut self, side: Side, counters: &mut Counters) -> bool {
        let Some((left, counted)) = &mut self.power_loss_after else {
            return false;
        };
        if counted.is_some_and(|counted| counted != side) {
            return false;
        }
        *left -= 1;
        if *left > 0 {
            return false;
        }
        self.power_loss_after = None;
        counters.power_loss_fired += 1;
        true
    }

    /// True when `side`'s next write that grows a file fails for a full disk.
    pub(crate) fn take_disk_full(&mut self, side: Side, counters: &mut Counters) -> bool {
        take_one(
            &mut self.disk_full_ops[side.index()],
            &mut counters.disk_full_fired,
        )
    }

    /// True when `side`'s sync fails.
    pub(crate) fn take_fsync_error(&mut self, side: Side, counters: &mut Counters) -> bool {
        take_one(
            &mut self.fsync_errors[side.index()],
            &mut counters.fsync_error_fired,
        )
    }

    /// True when `side`'s lock acquisition fails with SQLITE_BUSY.
    pub(crate) fn take_busy(&mut self, side: Side, counters: &mut Counters) -> bool {
        take_one(&mut self.busy[side.index()], &mut counters.busy_fired)
    }

    /// Charges one operation of `side` to a slow disk, if one is armed.
    pub(crate) fn charge_slow_disk(&mut self, side: Side, counters: &mut Counters) {
        let (latency_ms, ops) = &mut self.slow_disk[side.index()];
        if *ops > 0 {
            *ops -= 1;
            self.io_delay_ms[side.index()] += *latency_ms;
            counters.slow_disk_fired += 1;
        }
    }

    /// The latency `side` accrued since the last call.
    pub(crate) fn take_io_delay_ms(&mut self, side: Side) -> i64 {
        std::mem::take(&mut self.io_delay_ms[side.index()])
    }
}

/// Fires one of the faults `left` counts down, if any is left.
fn take_one(left: &mut u32, fired: &mut u64) -> bool {
    if *left == 0 {
        return false;
    }
    *left -= 1;
    *fired += 1;
    true
}

/// Traps armed and not yet sprung (or, for a failing one, with failures left), and the ids of
/// those that sprang since the world last asked.
#[derive(Default)]
pub(crate) struct Traps {
    next_id: u64,
    armed: Vec<(TrapId, FsTrap)>,
    sprung: Vec<TrapId>,
}

/// What a mutating operation meets among the armed traps.
pub(crate) enum Sprung {
    /// Nothing: it goes on.
    No,
    /// It fails with an injected error.
    Fail,
    /// The process doing it dies just before it.
    Crash,
}

impl Traps {
    pub(crate) fn arm(&mut self, trap: FsTrap) -> TrapId {
        self.next_id += 1;
        let id = TrapId(self.next_id);
        self.armed.push((id, trap));
        id
    }

    /// Disarms `id`; true when it was still armed.
    pub(crate) fn disarm(&mut self, id: TrapId) -> bool {
        let before = self.armed.len();
        self.armed.retain(|(armed, _)| *armed != id);
        self.armed.len() < before
    }

    /// The first armed trap that `side`'s operation `op` on `path` meets (`exists`: whether
    /// something is at `path` already), counted as sprung.
    pub(crate) fn meet(&mut self, side: Side, op: FsOp, path: &str, exists: bool) -> Sprung {
        if self.armed.is_empty() {
            return Sprung::No;
        }
        let found = self.armed.iter().position(|(_, trap)| {
            trap.side == side
                && trap.op.is_none_or(|wanted| wanted == op)
                && trap.path.matches(path)
                && match op {
                    // Creating what exists, or removing what does not, does nothing to trap.
                    FsOp::CreateDir => !exists,
                    FsOp::Remove => exists,
                    FsOp::Write | FsOp::Touch => true,
                }
        });
        let Some(index) = found else {
            return Sprung::No;
        };
        let (id, trap) = &mut self.armed[index];
        let id = *id;
        if !self.sprung.contains(&id) {
            self.sprung.push(id);
        }
        match &mut trap.effect {
            TrapEffect::Crash => {
                self.armed.remove(index);
                Sprung::Crash
            }
            TrapEffect::Fail { ops } => {
                *ops = ops.saturating_sub(1);
                if *ops == 0 {
                    self.armed.remove(index);
                }
                Sprung::Fail
            }
        }
    }

    /// Traps that sprang (at least once) since the last call, in the order they first did.
    pub(crate) fn take_sprung(&mut self) -> Vec<TrapId> {
        std::mem::take(&mut self.sprung)
    }
}
