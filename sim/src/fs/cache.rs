//! The per-side page caches of a virtiofs mount: what each side reads of a file the other side
//! changed.
//!
//! Under virtiofs the host and the container each read through a cache of their own, which may
//! serve a page as it was when fetched for up to `stale_ms_max`. Pages fetched during the
//! current validity slot are served as they were, however the file changed since. Slots are
//! fixed in time (length `stale_ms_max + 1`, a seeded phase per file and side), not started by
//! reads, so what a side reads never depends on how often SQLite's own cache sent it to the
//! disk. A side's own writes drop its cached copies of the pages they touch, so it sees them
//! at once.

use super::digest::fnv;
use super::pages::{Page, Pages, PAGE_SIZE};
use super::Side;
use std::sync::Arc;

/// Where the validity slots of every file and side fall.
pub(crate) struct CacheClock {
    /// Seeds each file's and side's phase.
    salt: u64,
    /// Longest time a cached page may be served after it was fetched.
    pub(crate) stale_ms_max: i64,
}

impl CacheClock {
    pub(crate) fn new(salt: u64) -> CacheClock {
        CacheClock {
            salt,
            stale_ms_max: 1_000,
        }
    }

    /// The slot of `side` for file `file_id` at `now_ms`.
    pub(crate) fn slot(&self, file_id: u64, side: Side, now_ms: i64) -> i64 {
        let slot_ms = self.stale_ms_max + 1;
        let phase = fnv(
            self.salt,
            &[file_id.to_le_bytes(), (side as u64).to_le_bytes()].concat(),
        );
        (now_ms + (phase % slot_ms as u64) as i64).div_euclid(slot_ms)
    }
}

/// What one side holds of one file during one slot.
struct SideCache {
    slot: i64,
    pages: Vec<Option<Arc<Page>>>,
}

/// The caches of one file, one per side (empty until the side reads in a slot).
#[derive(Default)]
pub(crate) struct FileCaches {
    sides: [Option<SideCache>; 2],
}

impl FileCaches {
    /// Reads `visible` through `side`'s cache for `slot` (emptied first when the slot is
    /// over); returns the bytes read and how many pages served differ from the visible ones.
    pub(crate) fn read_through(
        &mut self,
        side: Side,
        slot: i64,
        visible: &Pages,
        offset: u64,
        buf: &mut [u8],
    ) -> (usize, u64) {
        let cache = &mut self.sides[side.index()];
        if cache.as_ref().is_none_or(|c| c.slot != slot) {
            *cache = Some(SideCache {
                slot,
                pages: Vec::new(),
            });
        }
        let cache = cache.as_mut().expect("set above");
        let mut stale_pages = 0;
        let read = visible.read_with(offset, buf, |index, current| {
            if cache.pages.len() <= index {
                cache.pages.resize(index + 1, None);
            }
            let entry = &mut cache.pages[index];
            match entry {
                Some(cached) => {
                    if !Arc::ptr_eq(cached, current) {
                        stale_pages += 1;
                    }
                    cached.clone()
                }
                None => entry.insert(current.clone()).clone(),
            }
        });
        (read, stale_pages)
    }

    /// What `side` would read of `visible` in `slot` (`None`: no cache), without filling
    /// the cache.
    pub(crate) fn peek(&self, side: Side, slot: Option<i64>, visible: &Pages) -> Vec<u8> {
        let cache =
            slot.and_then(|slot| self.sides[side.index()].as_ref().filter(|c| c.slot == slot));
        let mut out = vec![0; visible.len() as usize];
        visible.read_with(0, &mut out, |index, current| {
            cache
                .and_then(|c| c.pages.get(index).cloned().flatten())
                .unwrap_or_else(|| current.clone())
        });
        out
    }

    /// `side` wrote `len` bytes at `offset`: it forgets its copies of the pages touched.
    pub(crate) fn forget_written(&mut self, side: Side, offset: u64, len: u64) {
        if let Some(cache) = &mut self.sides[side.index()] {
            let first = (offset / PAGE_SIZE as u64) as usize;
            let last = ((offset + len) / PAGE_SIZE as u64) as usize;
            for page in cache.pages.iter_mut().take(last + 1).skip(first) {
                *page = None;
            }
        }
    }

    /// `side` cut the file to `len` bytes: it forgets its copies of the whole pages past it.
    pub(crate) fn forget_truncated(&mut self, side: Side, len: u64) {
        if let Some(cache) = &mut self.sides[side.index()] {
            cache.pages.truncate((len / PAGE_SIZE as u64) as usize);
        }
    }

    /// Forgets everything (the machine lost power).
    pub(crate) fn clear(&mut self) {
        self.sides = [None, None];
    }
}
