//! The state behind one SimFs: the parts of the disk composed, and the operations that touch
//! more than one of them, with the rules of the durability model.
//!
//! Each part keeps its own rules (the namespace, the inodes, processes, handles, armed faults,
//! the single-writer rule, the maybe-durable log); this file decides which parts an operation
//! touches and in which order, since the order is what a seed's trace depends on: which
//! operation a power cut lands before, which draws of the crash RNG come first.
//!
//! Pure data and rules: no locking, no clock (callers pass "now" in), no FFI. [`super::SimFs`]
//! wraps it in a mutex for the plain file API, and [`crate::vfs`] drives it from SQLite.

use super::cache::CacheClock;
use super::counters::{Counters, ReadCounters};
use super::digest::{content_hash, WriteDigest};
use super::doubt::DoubtLog;
use super::faults::{ArmedFaults, Sprung, Traps};
use super::handles::{Handle, Handles};
use super::inode::{InodeId, Inodes};
use super::locks::{lock_domain, Busy, LockLevel};
use super::namespace::{Entry, Namespace, NsOp};
use super::pages::TearTally;
use super::path::NormalPath;
use super::process::Processes;
use super::writers::SingleWriter;
use super::{FsFault, FsOp, MaybeDurable, MountProfile, Side};
use crate::rng::SimRng;

pub(crate) use super::error::FsError;
pub(crate) use super::handles::{HandleId, OpenMode};
pub(crate) use super::process::ProcId;

/// Everything one SimFs knows.
pub(crate) struct FsState {
    pub(crate) profile: MountProfile,
    pub(crate) sector_size: usize,
    /// Draws the crash outcomes (and the sector size).
    rng: SimRng,
    /// Feeds SQLite's PRNG.
    prng: SimRng,
    /// One counter for inodes, processes and handles: ids follow the order of operations.
    next_id: u64,
    namespace: Namespace,
    inodes: Inodes,
    processes: Processes,
    handles: Handles,
    cache_clock: CacheClock,
    faults: ArmedFaults,
    pub(crate) traps: Traps,
    single_writer: SingleWriter,
    doubts: DoubtLog,
    write_digest: WriteDigest,
    pub(crate) counters: Counters,
    /// Kept apart: how many reads reach the disk depends on SQLite's process-wide page cache.
    pub(crate) read_counters: ReadCounters,
}

impl FsState {
    pub(crate) fn new(profile: MountProfile, seed: u64) -> FsState {
        let root = SimRng::new(seed).fork("fs");
        let mut rng = root.fork("crash-and-cache");
        let sector_size = if rng.chance(0.5) { 512 } else { 4096 };
        FsState {
            profile,
            sector_size,
            rng,
            prng: root.fork("sqlite-prng"),
            next_id: 1,
            namespace: Namespace::new(),
            inodes: Inodes::default(),
            processes: Processes::default(),
            handles: Handles::default(),
            cache_clock: CacheClock::new(root.fork("virtiofs-cache").next_u64()),
            faults: ArmedFaults::default(),
            traps: Traps::default(),
            single_writer: SingleWriter::default(),
            doubts: DoubtLog::default(),
            write_digest: WriteDigest::default(),
            counters: Counters::default(),
            read_counters: ReadCounters::default(),
        }
    }

    /// Longest time a virtiofs side may keep serving a page it fetched.
    pub(crate) fn set_stale_ms_max(&mut self, stale_ms_max: i64) {
        self.cache_clock.stale_ms_max = stale_ms_max;
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn new_inode(&mut self, mtime_ms: i64) -> InodeId {
        let id = self.fresh_id();
        self.inodes.create(id, mtime_ms);
        id
    }

    /// The file at `path`, created empty (in a directory that must exist) when missing.
    fn file_or_create(&mut self, path: &NormalPath, mtime_ms: i64) -> Result<InodeId, FsError> {
        match self.namespace.file_inode(path) {
            Err(FsError::NotFound) => {
                self.namespace.require_dir(path.parent())?;
                let id = self.new_inode(mtime_ms);
                let op = NsOp::Set(path.to_owned(), Entry::File(id));
                self.namespace.change(op, &mut self.inodes);
                Ok(id)
            }
            other => other,
        }
    }

    // ---- plain file operations -------------------------------------------------------------

    pub(crate) fn create_dir_all(
        &mut self,
        side: Side,
        path: &NormalPath,
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        self.power_cut(side)?;
        self.trap(side, None, FsOp::CreateDir, path)?;
        self.namespace
            .create_dir_all(path, mtime_ms, &mut self.inodes)
    }

    pub(crate) fn remove_dir_all(&mut self, side: Side, path: &NormalPath) -> Result<(), FsError> {
        self.power_cut(side)?;
        self.trap(side, None, FsOp::Remove, path)?;
        self.namespace.remove_dir_all(side, path, &mut self.inodes)
    }

    pub(crate) fn list_dir(&self, path: &NormalPath) -> Result<Vec<String>, FsError> {
        self.namespace.list_dir(path)
    }

    pub(crate) fn read_file(
        &mut self,
        side: Side,
        path: &NormalPath,
        cache_now_ms: Option<i64>,
    ) -> Result<Vec<u8>, FsError> {
        let id = self.namespace.file_inode(path)?;
        let len = self.inodes[id].visible.len();
        let mut data = vec![0; len as usize];
        self.read_inode(side, id, 0, &mut data, cache_now_ms);
        Ok(data)
    }

    pub(crate) fn write_file(
        &mut self,
        side: Side,
        path: &NormalPath,
        data: &[u8],
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        self.power_cut(side)?;
        self.trap(side, None, FsOp::Write, path)?;
        let id = self.file_or_create(path, mtime_ms)?;
        self.single_writer.check(side, path, &mut self.counters);
        self.faults.charge_slow_disk(side, &mut self.counters);
        self.truncate_inode(side, id, 0, mtime_ms)?;
        self.write_inode(side, id, 0, data, mtime_ms)
    }

    /// fsync of a plain file: its contents and every pending namespace change become durable.
    pub(crate) fn sync_file(&mut self, side: Side, path: &NormalPath) -> Result<(), FsError> {
        let id = self.namespace.file_inode(path)?;
        self.power_cut(side)?;
        self.trap(side, None, FsOp::Write, path)?;
        self.sync_inode(side, id, Some(path))
    }

    pub(crate) fn exists(&self, path: &NormalPath) -> bool {
        self.namespace.entry(path).is_some()
    }

    pub(crate) fn is_file(&self, path: &NormalPath) -> bool {
        matches!(self.namespace.entry(path), Some(Entry::File(_)))
    }

    pub(crate) fn mtime_ms(&self, path: &NormalPath) -> Option<i64> {
        match self.namespace.entry(path)? {
            Entry::File(id) => Some(self.inodes[id].mtime_ms),
            Entry::Dir { mtime_ms } => Some(mtime_ms),
        }
    }

    pub(crate) fn touch(
        &mut self,
        side: Side,
        path: &NormalPath,
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        self.power_cut(side)?;
        self.trap(side, None, FsOp::Touch, path)?;
        let id = self.file_or_create(path, mtime_ms)?;
        self.faults.charge_slow_disk(side, &mut self.counters);
        if let Some(inode) = self.inodes.get_mut(id) {
            inode.mtime_ms = mtime_ms;
        }
        Ok(())
    }

    // ---- file contents ---------------------------------------------------------------------

    /// Reads through `side`'s page cache when `cache_now_ms` is given (virtiofs), straight from
    /// the visible contents otherwise; returns the bytes that came from the file.
    fn read_inode(
        &mut self,
        side: Side,
        id: InodeId,
        offset: u64,
        buf: &mut [u8],
        cache_now_ms: Option<i64>,
    ) -> usize {
        let slot = cache_now_ms.map(|now_ms| self.cache_clock.slot(id, side, now_ms));
        let Some(inode) = self.inodes.get_mut(id) else {
            buf.fill(0);
            return 0;
        };
        let (read, stale_pages) = inode.read(side, slot, offset, buf);
        self.read_counters.stale_page_reads += stale_pages;
        self.read_counters.bytes_read += read as u64;
        read
    }

    /// Fails with a full disk when the file would grow to `end` and a disk-full fault of
    /// `side` is armed (overwrites in place always succeed).
    fn charge_growth(&mut self, side: Side, id: InodeId, end: u64) -> Result<(), FsError> {
        let grows = self
            .inodes
            .get(id)
            .is_some_and(|inode| end > inode.visible.len());
        if grows && self.faults.take_disk_full(side, &mut self.counters) {
            return Err(FsError::DiskFull);
        }
        Ok(())
    }

    fn write_inode(
        &mut self,
        side: Side,
        id: InodeId,
        offset: u64,
        data: &[u8],
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        self.charge_growth(side, id, offset + data.len() as u64)?;
        let inode = self.inodes.get_mut(id).ok_or(FsError::NotFound)?;
        inode.write(side, offset, data, mtime_ms);
        self.counters.bytes_written += data.len() as u64;
        self.write_digest.record_write(id, offset, data);
        Ok(())
    }

    fn truncate_inode(
        &mut self,
        side: Side,
        id: InodeId,
        len: u64,
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        self.charge_growth(side, id, len)?;
        let inode = self.inodes.get_mut(id).ok_or(FsError::NotFound)?;
        inode.truncate(side, len, mtime_ms);
        self.write_digest.record_truncate(id, len);
        Ok(())
    }

    /// Makes the file's contents and every pending namespace change durable, unless an fsync
    /// error is pending for `side`: then some unsynced sectors may have reached the disk and
    /// some not (torn by the seed), and the failure is logged as "maybe durable".
    fn sync_inode(
        &mut self,
        side: Side,
        id: InodeId,
        path: Option<&NormalPath>,
    ) -> Result<(), FsError> {
        self.faults.charge_slow_disk(side, &mut self.counters);
        if self.faults.take_fsync_error(side, &mut self.counters) {
            if let Some(inode) = self.inodes.get_mut(id) {
                let mut tally = TearTally::default();
                inode.durable = inode.tear_unsynced(self.sector_size, &mut self.rng, &mut tally);
            }
            let nth = self.counters.fsync_error_fired;
            self.doubts.fsync_error(side, path, nth);
            return Err(FsError::FsyncFailed);
        }
        if let Some(inode) = self.inodes.get_mut(id) {
            inode.sync();
        }
        self.namespace.commit_pending(&mut self.inodes);
        self.counters.syncs += 1;
        Ok(())
    }

    // ---- processes and handles -------------------------------------------------------------

    /// The live process `label` on `side`, started (next incarnation) if it has none;
    /// returns its id, its incarnation and whether it was just started.
    pub(crate) fn process(&mut self, side: Side, label: &str) -> (ProcId, u32, bool) {
        if let Some((id, incarnation)) = self.processes.current(side, label) {
            return (id, incarnation, false);
        }
        let id = self.fresh_id();
        (id, self.processes.start(id, side, label), true)
    }

    pub(crate) fn process_alive(&self, proc: ProcId) -> bool {
        self.processes.alive(proc)
    }

    /// Kills the live processes `matches` selects: their handles die and drop their locks;
    /// the page cache (visible contents) survives. Returns the killed processes.
    pub(crate) fn kill_processes(&mut self, matches: impl Fn(Side, &str) -> bool) -> Vec<ProcId> {
        let killed = self.processes.kill(matches);
        for id in self.handles.live_of(&killed) {
            self.kill_handle(id);
        }
        self.counters.process_crashes += killed.len() as u64;
        killed
    }

    fn kill_handle(&mut self, id: HandleId) {
        let Some((inode, domain)) = self.handles.mark_dead(id) else {
            return;
        };
        if let Some(inode) = self.inodes.get_mut(inode) {
            inode.release(id, domain);
        }
    }

    /// Opens a file for process `proc`; a write-open of the other side's DB is recorded.
    pub(crate) fn open(
        &mut self,
        proc: ProcId,
        path: Option<&NormalPath>,
        mode: OpenMode,
        mtime_ms: i64,
    ) -> Result<HandleId, FsError> {
        let side = self.processes.live_side(proc)?;
        let inode = self.open_inode(path.filter(|_| !mode.anonymous), mode, mtime_ms)?;
        if let Some(path) = path.filter(|_| mode.writable) {
            self.single_writer.check(side, path, &mut self.counters);
        }
        let id = self.fresh_id();
        let handle = Handle {
            proc,
            side,
            inode,
            path: path.map(NormalPath::to_owned),
            writable: mode.writable,
            domain: lock_domain(self.profile, side),
            shm: None,
            dead: false,
        };
        self.handles.insert(id, handle);
        self.inodes.get_mut(inode).expect("just found").open_handles += 1;
        self.counters.opens += 1;
        Ok(id)
    }

    /// The inode an open of `path` gets (a new one without a name for `None`).
    fn open_inode(
        &mut self,
        path: Option<&NormalPath>,
        mode: OpenMode,
        mtime_ms: i64,
    ) -> Result<InodeId, FsError> {
        let Some(path) = path else {
            return Ok(self.new_inode(mtime_ms));
        };
        match self.namespace.file_inode(path) {
            Ok(_) if mode.create && mode.exclusive => Err(FsError::AlreadyExists),
            Err(FsError::NotFound) if mode.create => self.file_or_create(path, mtime_ms),
            other => other,
        }
    }

    pub(crate) fn close(&mut self, handle: HandleId) {
        self.kill_handle(handle);
        if let Some(h) = self.handles.remove(handle) {
            if let Some(inode) = self.inodes.get_mut(h.inode) {
                inode.open_handles -= 1;
            }
            self.inodes.free_if_unused(h.inode);
        }
    }

    pub(crate) fn read(
        &mut self,
        handle: HandleId,
        offset: u64,
        buf: &mut [u8],
        cache_now_ms: Option<i64>,
    ) -> Result<usize, FsError> {
        let &Handle { side, inode, .. } = self.handles.live(handle)?;
        Ok(self.read_inode(side, inode, offset, buf, cache_now_ms))
    }

    pub(crate) fn write(
        &mut self,
        handle: HandleId,
        offset: u64,
        data: &[u8],
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        let &Handle { side, inode, .. } = self.handles.live_writable(handle)?;
        self.power_cut(side)?;
        self.handle_trap(handle, FsOp::Write)?;
        self.faults.charge_slow_disk(side, &mut self.counters);
        self.write_inode(side, inode, offset, data, mtime_ms)
    }

    pub(crate) fn truncate(
        &mut self,
        handle: HandleId,
        len: u64,
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        let &Handle { side, inode, .. } = self.handles.live_writable(handle)?;
        self.power_cut(side)?;
        self.handle_trap(handle, FsOp::Write)?;
        self.truncate_inode(side, inode, len, mtime_ms)
    }

    pub(crate) fn sync(&mut self, handle: HandleId) -> Result<(), FsError> {
        let h = self.handles.live(handle)?;
        let (side, inode, path) = (h.side, h.inode, h.path.clone());
        self.power_cut(side)?;
        self.handle_trap(handle, FsOp::Write)?;
        self.sync_inode(side, inode, path.as_deref())
    }

    pub(crate) fn file_size(&self, handle: HandleId) -> Result<u64, FsError> {
        let &Handle { inode, .. } = self.handles.live(handle)?;
        Ok(self.inodes.get(inode).map_or(0, |i| i.visible.len()))
    }

    /// Removes a file's name (its inode lives on while open); `dir_sync` makes every pending
    /// namespace change durable.
    pub(crate) fn delete(
        &mut self,
        proc: ProcId,
        path: &NormalPath,
        dir_sync: bool,
    ) -> Result<(), FsError> {
        let side = self.processes.live_side(proc)?;
        self.namespace.file_inode(path)?;
        self.power_cut(side)?;
        self.trap(side, Some(proc), FsOp::Remove, path)?;
        let op = NsOp::Remove(path.to_owned(), side);
        self.namespace.change(op, &mut self.inodes);
        if dir_sync {
            self.namespace.commit_pending(&mut self.inodes);
            self.counters.dir_syncs += 1;
        }
        Ok(())
    }

    // ---- locks and shared memory (WAL index) -----------------------------------------------

    pub(crate) fn lock(&mut self, handle: HandleId, want: LockLevel) -> Result<(), FsError> {
        let &Handle {
            side,
            inode,
            domain,
            ..
        } = self.handles.live(handle)?;
        let inode = self.inodes.get_mut(inode).ok_or(FsError::NotFound)?;
        if want > inode.locks.level(handle) && self.faults.take_busy(side, &mut self.counters) {
            return Err(FsError::Busy);
        }
        inode.locks.lock(handle, domain, want).map_err(|Busy| {
            self.counters.lock_busy += 1;
            FsError::Busy
        })
    }

    /// Lowers a lock; on a dead handle there is nothing left to lower.
    pub(crate) fn unlock(&mut self, handle: HandleId, to: LockLevel) {
        if let Ok(&Handle { inode, domain, .. }) = self.handles.live(handle) {
            if let Some(inode) = self.inodes.get_mut(inode) {
                inode.locks.unlock(handle, domain, to);
            }
        }
    }

    pub(crate) fn reserved_lock_held(&self, handle: HandleId) -> Result<bool, FsError> {
        let &Handle { inode, domain, .. } = self.handles.live(handle)?;
        Ok(self
            .inodes
            .get(inode)
            .is_some_and(|i| i.locks.reserved(domain)))
    }

    pub(crate) fn shm_map(
        &mut self,
        handle: HandleId,
        region: usize,
        size: usize,
        extend: bool,
    ) -> Result<*mut u8, FsError> {
        let &Handle { inode, domain, .. } = self.handles.live(handle)?;
        let inode = self.inodes.get_mut(inode).ok_or(FsError::NotFound)?;
        let memory = inode.shm(domain).memory.clone();
        let ptr = memory.map(region, size, extend);
        self.handles.get_mut(handle).expect("live").shm = Some(memory);
        Ok(ptr)
    }

    pub(crate) fn shm_lock(
        &mut self,
        handle: HandleId,
        slots: std::ops::Range<usize>,
        lock: bool,
        exclusive: bool,
    ) -> Result<(), FsError> {
        let &Handle { inode, domain, .. } = self.handles.live(handle)?;
        let inode = self.inodes.get_mut(inode).ok_or(FsError::NotFound)?;
        if inode.shm(domain).lock(handle, slots, lock, exclusive) {
            Ok(())
        } else {
            self.counters.lock_busy += 1;
            Err(FsError::Busy)
        }
    }

    /// Unmaps the handle's shm; `delete` discards the regions when no other handle maps them.
    pub(crate) fn shm_unmap(&mut self, handle: HandleId, delete: bool) {
        let Some(h) = self.handles.get_mut(handle) else {
            return;
        };
        let (inode, domain, alive) = (h.inode, h.domain, !h.dead);
        let Some(memory) = h.shm.take() else {
            return;
        };
        if let Some(inode) = self.inodes.get_mut(inode) {
            inode.unmap_shm(handle, domain, memory, alive, delete);
        }
    }

    // ---- machine crash and faults ----------------------------------------------------------

    /// Power loss: every process dies; a seeded prefix of the pending namespace changes made it
    /// to the disk; every file's unsynced sectors are kept, dropped or torn by the seed.
    pub(crate) fn crash_machine(&mut self) {
        self.kill_processes(|_, _| true);
        let lost = self.namespace.crash(&mut self.rng, &mut self.inodes);
        self.counters.namespace_ops_lost += lost.len() as u64;
        for (file, side) in self.namespace.removals_undone(&lost) {
            self.doubts.removal_undone(side, file);
        }
        let tally = self.inodes.crash(self.sector_size, &mut self.rng);
        self.counters.sectors_kept += tally.kept;
        self.counters.sectors_dropped += tally.dropped;
        self.counters.sectors_torn += tally.torn;
        self.counters.machine_crashes += 1;
    }

    pub(crate) fn inject(&mut self, fault: FsFault) {
        self.faults.arm(fault, &mut self.counters);
    }

    /// Counts one mutating operation of `side` against an armed power cut; when it is due, the
    /// machine crashes before the operation happens, and the operation fails.
    fn power_cut(&mut self, side: Side) -> Result<(), FsError> {
        if self.faults.power_cut_due(side, &mut self.counters) {
            self.crash_machine();
            return Err(FsError::ProcessDead);
        }
        Ok(())
    }

    /// Meets the armed traps with `side`'s operation `op` on `path`, done by `proc` (a VFS
    /// call) or by the side's process that a plain-file call does not name: a failing trap
    /// fails it; a crash trap kills the process (every process of the side, when unnamed)
    /// before it happens, and it fails.
    fn trap(
        &mut self,
        side: Side,
        proc: Option<ProcId>,
        op: FsOp,
        path: &NormalPath,
    ) -> Result<(), FsError> {
        let exists = self.namespace.entry(path).is_some();
        match self.traps.meet(side, op, path.as_str(), exists) {
            Sprung::No => Ok(()),
            Sprung::Fail => Err(FsError::Injected),
            Sprung::Crash => {
                match proc {
                    Some(proc) => self.kill_processes_by_id(proc),
                    None => {
                        self.kill_processes(|s, _| s == side);
                    }
                }
                Err(FsError::ProcessDead)
            }
        }
    }

    /// [`FsState::trap`] for an operation on an open handle (an anonymous temp file meets
    /// no trap).
    fn handle_trap(&mut self, handle: HandleId, op: FsOp) -> Result<(), FsError> {
        let h = self.handles.live(handle)?;
        let (side, proc) = (h.side, h.proc);
        let Some(path) = h.path.clone() else {
            return Ok(());
        };
        self.trap(side, Some(proc), op, &path)
    }

    /// Kills the one process `proc` (see [`FsState::kill_processes`]).
    fn kill_processes_by_id(&mut self, proc: ProcId) {
        let label = self.processes.label(proc).map(str::to_string);
        let side = self.processes.side(proc);
        if let (Some(label), Some(side)) = (label, side) {
            self.kill_processes(|s, l| s == side && l == label);
        }
    }

    pub(crate) fn take_io_delay_ms(&mut self, side: Side) -> i64 {
        self.faults.take_io_delay_ms(side)
    }

    // ---- the maybe-durable log -------------------------------------------------------------

    pub(crate) fn maybe_durable(&self) -> &[MaybeDurable] {
        &self.doubts.entries
    }

    /// Sides of the log entries not yet stamped with a time, by index.
    pub(crate) fn unstamped_maybe_durable(&self) -> Vec<(usize, Side)> {
        self.doubts.unstamped()
    }

    pub(crate) fn stamp_maybe_durable(&mut self, index: usize, at_ms: i64) {
        self.doubts.entries[index].at_ms = Some(at_ms);
    }

    // ---- single writer ---------------------------------------------------------------------

    pub(crate) fn set_writer(&mut self, path_suffix: &str, side: Side) {
        self.single_writer.set(path_suffix, side);
    }

    pub(crate) fn violations(&self) -> &[String] {
        self.single_writer.violations()
    }

    // ---- randomness, digests and images ----------------------------------------------------

    /// The next seed for SQLite's PRNG (never 0, which would mean "unseeded").
    pub(crate) fn next_prng_seed(&mut self) -> u32 {
        self.counters.prng_reseeds += 1;
        (self.prng.next_u64() as u32) | 1
    }

    pub(crate) fn fill_random(&mut self, buf: &mut [u8]) {
        self.prng.fill_bytes(buf);
    }

    pub(crate) fn enable_write_digest(&mut self) {
        self.write_digest.enable();
    }

    pub(crate) fn write_digest(&self) -> Option<u64> {
        self.write_digest.value()
    }

    pub(crate) fn durable_image(&self, path: &NormalPath) -> Option<Vec<u8>> {
        match self.namespace.durable_entry(path)? {
            Entry::File(id) => Some(self.inodes.get(id)?.durable.to_vec()),
            Entry::Dir { .. } => None,
        }
    }

    /// What `side` would read now (its unexpired cached pages over the visible contents),
    /// without touching the cache.
    pub(crate) fn visible_image(
        &self,
        side: Side,
        path: &NormalPath,
        cache_now_ms: Option<i64>,
    ) -> Option<Vec<u8>> {
        let Entry::File(id) = self.namespace.entry(path)? else {
            return None;
        };
        let inode = self.inodes.get(id)?;
        let slot = cache_now_ms.map(|now_ms| self.cache_clock.slot(id, side, now_ms));
        Some(inode.caches.peek(side, slot, &inode.visible))
    }

    /// Files alive in memory: named, durably named, or open.
    #[cfg(test)]
    pub(crate) fn file_count(&self) -> usize {
        self.inodes.len()
    }

    /// A hash of every visible file's path and contents, in path order.
    pub(crate) fn content_hash(&self) -> u64 {
        content_hash(self.namespace.visible().map(|(path, entry)| {
            let contents = match entry {
                Entry::File(id) => Some(self.inodes[*id].visible.to_vec()),
                Entry::Dir { .. } => None,
            };
            (path.as_str(), contents)
        }))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::path::{normalize, NormalPathBuf};

    fn path(text: &str) -> NormalPathBuf {
        normalize(text).into_owned()
    }

    /// `/a` holds `b` (with `c/g` and `f` inside) and siblings whose names extend `b`, some of
    /// which sort between `b` and `b/c` in plain byte order.
    fn look_alike_siblings() -> FsState {
        let mut state = FsState::new(MountProfile::Bind, 1);
        for dir in ["/a/b/c", "/a/b-x"] {
            state.create_dir_all(Side::Host, &path(dir), 0).unwrap();
        }
        for file in ["/a/b/c/g", "/a/b/f", "/a/b-x/y", "/a/b.x", "/a/b0", "/a/bc"] {
            state.touch(Side::Host, &path(file), 0).unwrap();
        }
        state
    }

    #[test]
    fn a_directory_lists_its_own_children_sorted_by_name() {
        let state = look_alike_siblings();
        let list = |dir: &str| state.list_dir(&path(dir)).unwrap();
        assert_eq!(list("/a"), ["b", "b-x", "b.x", "b0", "bc"]);
        assert_eq!(list("/a/b"), ["c", "f"]);
        assert_eq!(list("/a/b/c"), ["g"]);
        assert_eq!(list("/a/b-x"), ["y"]);
        assert_eq!(list("/"), ["a"]);
        assert_eq!(state.list_dir(&path("/a/bc")), Err(FsError::NotADirectory));
    }

    #[test]
    fn removing_a_directory_spares_its_look_alike_siblings() {
        let mut state = look_alike_siblings();
        let pending_before = state.namespace.pending.len();
        state.remove_dir_all(Side::Host, &path("/a/b")).unwrap();
        assert_eq!(
            state.list_dir(&path("/a")).unwrap(),
            ["b-x", "b.x", "b0", "bc"]
        );
        assert!(state.exists(&path("/a/b-x/y")));
        // Children before their parents, in reverse path order (what a power cut keeps of
        // them is a prefix of this order).
        let removed: Vec<&str> = state.namespace.pending[pending_before..]
            .iter()
            .map(|op| match op {
                NsOp::Remove(path, _) => path.as_str(),
                NsOp::Set(path, _) => panic!("set {path:?}"),
            })
            .collect();
        assert_eq!(removed, ["/a/b/f", "/a/b/c/g", "/a/b/c", "/a/b"]);
    }
}
