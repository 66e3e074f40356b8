//! Files as the disk holds them, apart from their names: two versions of the contents
//! (visible and durable), the mtime, SQLite's locks and shared memory, the virtiofs caches,
//! and the counts that decide when a file is gone.
//!
//! A file outlives its last name while it is open, and a name the durable namespace still has
//! keeps it too (a power cut may bring that name back), so an inode is freed only when no
//! version of the namespace names it and no handle holds it.

use super::cache::FileCaches;
use super::locks::{LockDomain, LockTable};
use super::pages::{tear, Pages, TearTally};
use super::shm::{ShmMemory, ShmState};
use super::Side;
use crate::rng::SimRng;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) type InodeId = u64;

/// Which version of the namespace (and of the link counts) a change applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layer {
    /// What processes see now.
    Visible,
    /// What reached stable storage.
    Durable,
}

#[derive(Default)]
pub(crate) struct Inode {
    pub(crate) visible: Pages,
    pub(crate) durable: Pages,
    pub(crate) mtime_ms: i64,
    pub(crate) locks: LockTable,
    pub(crate) shm: BTreeMap<LockDomain, ShmState>,
    pub(crate) caches: FileCaches,
    links_visible: u32,
    links_durable: u32,
    pub(crate) open_handles: u32,
}

impl Inode {
    pub(crate) fn links_mut(&mut self, layer: Layer) -> &mut u32 {
        match layer {
            Layer::Visible => &mut self.links_visible,
            Layer::Durable => &mut self.links_durable,
        }
    }

    /// Reads the visible contents, through `side`'s cache for `slot` when given (virtiofs);
    /// returns the bytes read and the stale pages served.
    pub(crate) fn read(
        &mut self,
        side: Side,
        slot: Option<i64>,
        offset: u64,
        buf: &mut [u8],
    ) -> (usize, u64) {
        match slot {
            None => (self.visible.read(offset, buf), 0),
            Some(slot) => self
                .caches
                .read_through(side, slot, &self.visible, offset, buf),
        }
    }

    pub(crate) fn write(&mut self, side: Side, offset: u64, data: &[u8], mtime_ms: i64) {
        self.visible.write(offset, data);
        self.mtime_ms = mtime_ms;
        self.caches.forget_written(side, offset, data.len() as u64);
    }

    pub(crate) fn truncate(&mut self, side: Side, len: u64, mtime_ms: i64) {
        self.visible.resize(len);
        self.mtime_ms = mtime_ms;
        self.caches.forget_truncated(side, len);
    }

    /// A sync that completed: the durable contents are the visible ones.
    pub(crate) fn sync(&mut self) {
        self.durable = self.visible.clone();
    }

    /// What would be on the disk if its unsynced sectors were kept, dropped or torn now, by
    /// the seed.
    pub(crate) fn tear_unsynced(
        &self,
        sector_size: usize,
        rng: &mut SimRng,
        tally: &mut TearTally,
    ) -> Pages {
        tear(&self.durable, &self.visible, sector_size, rng, tally)
    }

    /// Drops what `handle` holds: its file locks and its shm locks in `domain`.
    pub(crate) fn release(&mut self, handle: u64, domain: LockDomain) {
        self.locks.release(handle);
        if let Some(shm) = self.shm.get_mut(&domain) {
            shm.release(handle);
        }
    }

    /// The shm of `domain` (created when missing).
    pub(crate) fn shm(&mut self, domain: LockDomain) -> &mut ShmState {
        self.shm.entry(domain).or_default()
    }

    /// `handle` unmaps `memory` from `domain`'s shm (`release`: dropping its shm locks too);
    /// `delete` discards the regions when no other handle maps them.
    pub(crate) fn unmap_shm(
        &mut self,
        handle: u64,
        domain: LockDomain,
        memory: Arc<ShmMemory>,
        release: bool,
        delete: bool,
    ) {
        let Some(shm) = self.shm.get_mut(&domain) else {
            return;
        };
        if release {
            shm.release(handle);
        }
        // The caller's clone, the state's, and nobody else's: the last mapping is gone.
        let last = Arc::ptr_eq(&shm.memory, &memory) && Arc::strong_count(&memory) == 2;
        if delete && last {
            self.shm.remove(&domain);
        }
    }

    /// The power came back: the disk holds `after`, and nothing of memory survived.
    fn restart_from(&mut self, after: Pages) {
        self.visible = after.clone();
        self.durable = after;
        self.links_visible = self.links_durable;
        self.locks.clear();
        self.shm.clear();
        self.caches.clear();
    }
}

/// Every file alive in memory: named, durably named, or open.
#[derive(Default)]
pub(crate) struct Inodes {
    map: BTreeMap<InodeId, Inode>,
}

impl std::ops::Index<InodeId> for Inodes {
    type Output = Inode;

    /// File `id`, which must be alive (a visible name always has its inode).
    fn index(&self, id: InodeId) -> &Inode {
        &self.map[&id]
    }
}

impl Inodes {
    /// A new empty file `id` with no name yet.
    pub(crate) fn create(&mut self, id: InodeId, mtime_ms: i64) {
        self.map.insert(
            id,
            Inode {
                mtime_ms,
                ..Inode::default()
            },
        );
    }

    pub(crate) fn get(&self, id: InodeId) -> Option<&Inode> {
        self.map.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: InodeId) -> Option<&mut Inode> {
        self.map.get_mut(&id)
    }

    /// Frees file `id` when nothing names or holds it any more.
    pub(crate) fn free_if_unused(&mut self, id: InodeId) {
        let unused = self.map.get(&id).is_some_and(|inode| {
            inode.links_visible == 0 && inode.links_durable == 0 && inode.open_handles == 0
        });
        if unused {
            self.map.remove(&id);
        }
    }

    /// Power loss, after the namespace settled: a file with no durable name is gone; every
    /// other keeps, drops or tears its unsynced sectors by the seed, in file order.
    pub(crate) fn crash(&mut self, sector_size: usize, rng: &mut SimRng) -> TearTally {
        let mut tally = TearTally::default();
        self.map.retain(|_, inode| {
            if inode.links_durable == 0 {
                return false;
            }
            let after = inode.tear_unsynced(sector_size, rng, &mut tally);
            inode.restart_from(after);
            true
        });
        tally
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
