//! The processes that use the disk: the host's, and each container's, by side and label,
//! with the incarnation a crash moves on.
//!
//! A crash kills a process, not the page cache: the process's handles die with it (every
//! further call on them fails, as a dead process runs no cleanup), and the next use of its
//! label starts a new incarnation with a fresh id and a fresh SQLite VFS.

use super::error::FsError;
use super::Side;
use std::collections::BTreeMap;

pub(crate) type ProcId = u64;

struct Proc {
    side: Side,
    label: String,
    alive: bool,
}

#[derive(Default)]
pub(crate) struct Processes {
    procs: BTreeMap<ProcId, Proc>,
    current: BTreeMap<(Side, String), ProcId>,
    incarnations: BTreeMap<(Side, String), u32>,
}

impl Processes {
    /// The live process `label` on `side`, if there is one, and its incarnation.
    pub(crate) fn current(&self, side: Side, label: &str) -> Option<(ProcId, u32)> {
        let key = (side, label.to_string());
        let id = *self.current.get(&key)?;
        Some((id, self.incarnations[&key]))
    }

    /// Starts the next incarnation of `label` on `side` as process `id`; returns the
    /// incarnation.
    pub(crate) fn start(&mut self, id: ProcId, side: Side, label: &str) -> u32 {
        let key = (side, label.to_string());
        let incarnation = self.incarnations.entry(key.clone()).or_insert(0);
        *incarnation += 1;
        let incarnation = *incarnation;
        self.procs.insert(
            id,
            Proc {
                side,
                label: label.to_string(),
                alive: true,
            },
        );
        self.current.insert(key, id);
        incarnation
    }

    pub(crate) fn alive(&self, proc: ProcId) -> bool {
        self.procs.get(&proc).is_some_and(|p| p.alive)
    }

    /// The label of a process, dead or alive.
    pub(crate) fn label(&self, proc: ProcId) -> Option<&str> {
        self.procs.get(&proc).map(|p| p.label.as_str())
    }

    /// The side of a process, dead or alive.
    pub(crate) fn side(&self, proc: ProcId) -> Option<Side> {
        self.procs.get(&proc).map(|p| p.side)
    }

    /// The side of a live process; a dead one is an error.
    pub(crate) fn live_side(&self, proc: ProcId) -> Result<Side, FsError> {
        match self.procs.get(&proc) {
            Some(p) if p.alive => Ok(p.side),
            _ => Err(FsError::ProcessDead),
        }
    }

    /// Kills the live processes `matches` selects, in id order; returns them.
    pub(crate) fn kill(&mut self, matches: impl Fn(Side, &str) -> bool) -> Vec<ProcId> {
        let killed: Vec<ProcId> = self
            .procs
            .iter()
            .filter(|(_, p)| p.alive && matches(p.side, &p.label))
            .map(|(id, _)| *id)
            .collect();
        for id in &killed {
            let proc = self.procs.get_mut(id).expect("listed above");
            proc.alive = false;
            self.current.remove(&(proc.side, proc.label.clone()));
        }
        killed
    }
}
