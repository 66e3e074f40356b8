//! File contents as copy-on-write pages, and the tearing of unsynced sectors at a crash.
//!
//! A file keeps two versions of its bytes: what readers see and what reached stable storage.
//! Both are lists of shared 4 KiB pages, so a sync is a list copy (reference counts, no bytes)
//! and a write after a sync copies only the pages it touches.

use crate::rng::SimRng;
use std::sync::{Arc, OnceLock};

/// Bytes per storage page (SQLite's default page size, so a DB page is one storage page).
pub(crate) const PAGE_SIZE: usize = 4096;

/// One page of file data.
pub(crate) type Page = [u8; PAGE_SIZE];

fn zero_page() -> Arc<Page> {
    static ZERO: OnceLock<Arc<Page>> = OnceLock::new();
    ZERO.get_or_init(|| Arc::new([0; PAGE_SIZE])).clone()
}

fn page_count(len: u64) -> usize {
    len.div_ceil(PAGE_SIZE as u64) as usize
}

/// The bytes of one version of a file. Invariant: `pages.len() == ceil(len / PAGE_SIZE)` and
/// every byte past `len` in the last page is zero.
#[derive(Clone, Default)]
pub(crate) struct Pages {
    len: u64,
    pages: Vec<Arc<Page>>,
}

impl Pages {
    /// Contents holding exactly `data`.
    #[cfg(test)]
    pub(crate) fn from_bytes(data: &[u8]) -> Pages {
        let mut pages = Pages::default();
        pages.write(0, data);
        pages
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Page `index`, if the file reaches it.
    pub(crate) fn page(&self, index: usize) -> Option<&Arc<Page>> {
        self.pages.get(index)
    }

    /// Copies bytes from `offset` into `buf`, zero-filling past the end; returns how many bytes
    /// came from the file. `page_at` supplies each page (a side's cache may substitute one).
    pub(crate) fn read_with(
        &self,
        offset: u64,
        buf: &mut [u8],
        mut page_at: impl FnMut(usize, &Arc<Page>) -> Arc<Page>,
    ) -> usize {
        let available = self.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < available {
            let pos = offset + done as u64;
            let index = (pos / PAGE_SIZE as u64) as usize;
            let in_page = (pos % PAGE_SIZE as u64) as usize;
            let take = (PAGE_SIZE - in_page).min(available - done);
            let page = page_at(index, &self.pages[index]);
            buf[done..done + take].copy_from_slice(&page[in_page..in_page + take]);
            done += take;
        }
        buf[available..].fill(0);
        available
    }

    /// Copies bytes from `offset` into `buf`; see [`Pages::read_with`].
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        self.read_with(offset, buf, |_, page| page.clone())
    }

    /// Writes `data` at `offset`, growing the file (zero-filled) as needed.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        if end > self.len {
            self.resize(end);
        }
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let index = (pos / PAGE_SIZE as u64) as usize;
            let in_page = (pos % PAGE_SIZE as u64) as usize;
            let take = (PAGE_SIZE - in_page).min(data.len() - done);
            let page = Arc::make_mut(&mut self.pages[index]);
            page[in_page..in_page + take].copy_from_slice(&data[done..done + take]);
            done += take;
        }
    }

    /// Sets the length: shrinking drops bytes, growing adds zeros.
    pub(crate) fn resize(&mut self, len: u64) {
        if len < self.len {
            self.pages.truncate(page_count(len));
            let tail = (len % PAGE_SIZE as u64) as usize;
            if tail != 0 {
                if let Some(last) = self.pages.last_mut() {
                    if last[tail..].iter().any(|b| *b != 0) {
                        Arc::make_mut(last)[tail..].fill(0);
                    }
                }
            }
        } else {
            self.pages.resize_with(page_count(len), zero_page);
        }
        self.len = len;
    }

    /// The whole contents as one buffer.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len as usize];
        self.read(0, &mut out);
        out
    }
}

/// What happened to the unsynced sectors of the files torn at one crash.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TearTally {
    pub kept: u64,
    pub dropped: u64,
    pub torn: u64,
}

/// The contents a crash leaves behind: the durable bytes, with every sector where the visible
/// bytes differ independently kept (the new bytes reached the disk), dropped (the old bytes
/// remain) or torn (a prefix of the new bytes, then garbage), chosen by `rng`. If the length
/// changed since the last sync, the old or the new length survives, also by `rng`.
pub(crate) fn tear(
    durable: &Pages,
    visible: &Pages,
    sector_size: usize,
    rng: &mut SimRng,
    tally: &mut TearTally,
) -> Pages {
    let len = if durable.len == visible.len || rng.chance(0.5) {
        visible.len
    } else {
        durable.len
    };
    let mut out = Pages {
        len,
        pages: Vec::with_capacity(page_count(len)),
    };
    for index in 0..page_count(len) {
        let old = durable.page(index);
        let new = visible.page(index);
        let page = match (old, new) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => a.clone(),
            _ => Arc::new(tear_page(old, new, sector_size, rng, tally)),
        };
        out.pages.push(page);
    }
    // Restore the invariant: nothing past `len` in the last page.
    out.len = out.pages.len() as u64 * PAGE_SIZE as u64;
    out.resize(len);
    out
}

fn tear_page(
    old: Option<&Arc<Page>>,
    new: Option<&Arc<Page>>,
    sector_size: usize,
    rng: &mut SimRng,
    tally: &mut TearTally,
) -> Page {
    let zero = [0u8; PAGE_SIZE];
    let old: &Page = old.map(|p| &**p).unwrap_or(&zero);
    let new: &Page = new.map(|p| &**p).unwrap_or(&zero);
    let mut out = *old;
    for start in (0..PAGE_SIZE).step_by(sector_size) {
        let range = start..start + sector_size;
        if old[range.clone()] == new[range.clone()] {
            continue;
        }
        match rng.below(3) {
            0 => {
                out[range.clone()].copy_from_slice(&new[range]);
                tally.kept += 1;
            }
            1 => tally.dropped += 1,
            _ => {
                let cut = 1 + rng.below(sector_size as u64 - 1) as usize;
                out[start..start + cut].copy_from_slice(&new[start..start + cut]);
                rng.fill_bytes(&mut out[start + cut..start + sector_size]);
                tally.torn += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips_across_page_boundaries() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut pages = Pages::default();
        pages.write(100, &data);
        assert_eq!(pages.len(), 10_100);
        let mut buf = vec![0xAA; 10_200];
        let got = pages.read(0, &mut buf);
        assert_eq!(got, 10_100);
        assert!(buf[..100].iter().all(|b| *b == 0));
        assert_eq!(&buf[100..10_100], &data[..]);
        assert!(buf[10_100..].iter().all(|b| *b == 0));
    }

    #[test]
    fn shrinking_zeroes_the_tail_so_regrowing_reads_zeros() {
        let mut pages = Pages::from_bytes(&[7u8; 5000]);
        pages.resize(4100);
        pages.resize(5000);
        let bytes = pages.to_vec();
        assert!(bytes[..4100].iter().all(|b| *b == 7));
        assert!(bytes[4100..].iter().all(|b| *b == 0));
    }

    #[test]
    fn a_clone_is_not_changed_by_later_writes() {
        let mut visible = Pages::from_bytes(&[1u8; 8192]);
        let durable = visible.clone();
        visible.write(10, &[2u8; 10]);
        assert_eq!(durable.to_vec(), vec![1u8; 8192]);
        assert_eq!(visible.to_vec()[10..20], [2u8; 10]);
    }

    #[test]
    fn tear_leaves_each_changed_sector_old_new_or_torn() {
        let durable = Pages::from_bytes(&[1u8; 8192]);
        let visible = Pages::from_bytes(&[2u8; 8192]);
        let mut tally = TearTally::default();
        let out = tear(&durable, &visible, 512, &mut SimRng::new(5), &mut tally).to_vec();
        assert_eq!(tally.kept + tally.dropped + tally.torn, 16);
        for sector in out.chunks(512) {
            let all_old = sector.iter().all(|b| *b == 1);
            let all_new = sector.iter().all(|b| *b == 2);
            let torn = sector[0] == 2 && !all_new;
            assert!(
                all_old || all_new || torn,
                "sector neither old, new nor torn"
            );
        }
    }

    #[test]
    fn tear_of_synced_contents_changes_nothing() {
        let visible = Pages::from_bytes(&[3u8; 9000]);
        let mut tally = TearTally::default();
        let out = tear(&visible, &visible, 512, &mut SimRng::new(1), &mut tally);
        assert_eq!(out.to_vec(), visible.to_vec());
        assert_eq!(tally, TearTally::default());
    }
}
