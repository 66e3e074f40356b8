//! The shared memory SQLite's WAL mode keeps its index in (xShmMap and friends).
//!
//! One shared region set and one set of eight shm locks per DB file and lock domain: under
//! virtiofs each side gets its own, which is exactly why WAL is unsafe across such a mount.
//! SQLite keeps raw pointers into the regions until it unmaps them, so the memory lives behind
//! an `Arc` that every mapping handle holds: a crash can replace the regions without freeing
//! memory a dead connection may still touch while it closes.

use std::sync::{Arc, Mutex};

/// Number of shm lock slots SQLite uses (`SQLITE_SHM_NLOCK`).
pub(crate) const SHM_LOCK_SLOTS: usize = 8;

/// Zeroed regions, allocated on demand, freed when the last holder drops.
#[derive(Default)]
pub(crate) struct ShmMemory {
    regions: Mutex<Vec<(*mut u8, usize)>>,
}

// The raw pointers are owned allocations, only handed to SQLite; access is serialised by
// SQLite's shm locks, as with a real mmap.
unsafe impl Send for ShmMemory {}
unsafe impl Sync for ShmMemory {}

impl ShmMemory {
    /// The address of region `index` (`size` bytes), allocating zeroed regions up to it when
    /// `extend` is true; null when the region does not exist and `extend` is false.
    pub(crate) fn map(&self, index: usize, size: usize, extend: bool) -> *mut u8 {
        let mut regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        if index >= regions.len() {
            if !extend {
                return std::ptr::null_mut();
            }
            while regions.len() <= index {
                let region: Box<[u8]> = vec![0u8; size].into_boxed_slice();
                regions.push((Box::into_raw(region) as *mut u8, size));
            }
        }
        regions[index].0
    }
}

impl Drop for ShmMemory {
    fn drop(&mut self) {
        let regions = self.regions.get_mut().unwrap_or_else(|e| e.into_inner());
        for (ptr, size) in regions.drain(..) {
            // SAFETY: allocated in `map` as a boxed slice of exactly `size` bytes.
            unsafe { drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, size))) };
        }
    }
}

/// The shm of one DB file in one lock domain.
#[derive(Default)]
pub(crate) struct ShmState {
    pub(crate) memory: Arc<ShmMemory>,
    exclusive: [Option<u64>; SHM_LOCK_SLOTS],
    shared: [Vec<u64>; SHM_LOCK_SLOTS],
}

impl ShmState {
    /// Takes or releases slots `offset..offset + n` for `handle`; false when busy.
    pub(crate) fn lock(
        &mut self,
        handle: u64,
        slots: std::ops::Range<usize>,
        lock: bool,
        exclusive: bool,
    ) -> bool {
        if slots.end > SHM_LOCK_SLOTS {
            return false;
        }
        if !lock {
            for slot in slots {
                if self.exclusive[slot] == Some(handle) {
                    self.exclusive[slot] = None;
                }
                self.shared[slot].retain(|h| *h != handle);
            }
            return true;
        }
        let conflict = slots.clone().any(|slot| {
            let other_exclusive = self.exclusive[slot].is_some_and(|h| h != handle);
            let other_shared = self.shared[slot].iter().any(|h| *h != handle);
            other_exclusive || (exclusive && other_shared)
        });
        if conflict {
            return false;
        }
        for slot in slots {
            if exclusive {
                self.exclusive[slot] = Some(handle);
            } else if !self.shared[slot].contains(&handle) {
                self.shared[slot].push(handle);
            }
        }
        true
    }

    /// Drops every shm lock `handle` holds.
    pub(crate) fn release(&mut self, handle: u64) {
        self.lock(handle, 0..SHM_LOCK_SLOTS, false, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_shared_and_exclusive() {
        let mut shm = ShmState::default();
        assert!(shm.lock(1, 3..4, true, false));
        assert!(shm.lock(2, 3..4, true, false));
        assert!(!shm.lock(3, 3..4, true, true));
        shm.release(1);
        shm.release(2);
        assert!(shm.lock(3, 0..8, true, true));
        assert!(!shm.lock(1, 5..6, true, false));
    }

    #[test]
    fn regions_are_zeroed_and_stable() {
        let memory = ShmMemory::default();
        assert!(memory.map(0, 32768, false).is_null());
        let first = memory.map(1, 32768, true);
        // SAFETY: region 1 has 32768 bytes.
        unsafe { assert_eq!(*first.add(100), 0) };
        memory.map(5, 32768, true);
        assert_eq!(memory.map(1, 32768, false), first);
    }
}
