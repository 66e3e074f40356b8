//! Open files: which process holds which inode, through which name, for reading or writing,
//! in which lock domain, and whether its process has died.
//!
//! A handle of a dead process stays in the table until SQLite closes it, so that every call on
//! it can fail cleanly (a dead process touches nothing) while the memory SQLite still points
//! into (its shm mapping) stays alive.

use super::error::FsError;
use super::inode::InodeId;
use super::locks::LockDomain;
use super::path::NormalPathBuf;
use super::process::ProcId;
use super::shm::ShmMemory;
use super::Side;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) type HandleId = u64;

/// How SQLite (or the plain API) opens a file.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenMode {
    pub create: bool,
    pub exclusive: bool,
    pub writable: bool,
    /// A temp file with no name (or deleted on close): never in the namespace.
    pub anonymous: bool,
}

pub(crate) struct Handle {
    pub(crate) proc: ProcId,
    pub(crate) side: Side,
    pub(crate) inode: InodeId,
    pub(crate) path: Option<NormalPathBuf>,
    pub(crate) writable: bool,
    pub(crate) domain: LockDomain,
    pub(crate) shm: Option<Arc<ShmMemory>>,
    pub(crate) dead: bool,
}

#[derive(Default)]
pub(crate) struct Handles {
    map: BTreeMap<HandleId, Handle>,
}

impl Handles {
    pub(crate) fn insert(&mut self, id: HandleId, handle: Handle) {
        self.map.insert(id, handle);
    }

    pub(crate) fn remove(&mut self, id: HandleId) -> Option<Handle> {
        self.map.remove(&id)
    }

    pub(crate) fn get_mut(&mut self, id: HandleId) -> Option<&mut Handle> {
        self.map.get_mut(&id)
    }

    /// A live handle; a dead one is an error. (One lookup for all the fields a call needs:
    /// the hot VFS calls come here.)
    pub(crate) fn live(&self, id: HandleId) -> Result<&Handle, FsError> {
        match self.map.get(&id) {
            Some(h) if !h.dead => Ok(h),
            _ => Err(FsError::ProcessDead),
        }
    }

    /// A live handle opened for writing.
    pub(crate) fn live_writable(&self, id: HandleId) -> Result<&Handle, FsError> {
        let h = self.live(id)?;
        if !h.writable {
            return Err(FsError::ReadOnly);
        }
        Ok(h)
    }

    /// Marks handle `id` dead; returns the inode and lock domain it held, if it exists.
    pub(crate) fn mark_dead(&mut self, id: HandleId) -> Option<(InodeId, LockDomain)> {
        let handle = self.map.get_mut(&id)?;
        handle.dead = true;
        Some((handle.inode, handle.domain))
    }

    /// The live handles of `procs`, in id order.
    pub(crate) fn live_of(&self, procs: &[ProcId]) -> Vec<HandleId> {
        self.map
            .iter()
            .filter(|(_, h)| !h.dead && procs.contains(&h.proc))
            .map(|(id, _)| *id)
            .collect()
    }
}
