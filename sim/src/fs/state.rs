//! The state behind one SimFs: namespace (visible and durable), inodes, open handles,
//! processes, pending faults and counters, with the rules of the durability model.
//!
//! Pure data and rules: no locking, no clock (callers pass "now" in), no FFI. [`super::SimFs`]
//! wraps it in a mutex for the plain file API, and [`crate::vfs`] drives it from SQLite.

use super::counters::{Counters, ReadCounters};
use super::locks::{Busy, LockDomain, LockLevel, LockTable};
use super::pages::{tear, Page, Pages, TearTally, PAGE_SIZE};
use super::path::{NormalPath, NormalPathBuf};
use super::shm::{ShmMemory, ShmState};
use super::{DoubtCause, MaybeDurable, MountProfile, Side};
use crate::rng::SimRng;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) type InodeId = u64;
pub(crate) type HandleId = u64;
pub(crate) type ProcId = u64;

/// Why an operation failed; the plain API turns it into an `io::Error`, the VFS into a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsError {
    NotFound,
    NotADirectory,
    IsADirectory,
    AlreadyExists,
    ReadOnly,
    /// The process that opened the handle (or owns the VFS) has crashed.
    ProcessDead,
    DiskFull,
    FsyncFailed,
    Busy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    File(InodeId),
    Dir { mtime_ms: i64 },
}

/// A namespace change not yet known to be durable.
enum NsOp {
    Set(NormalPathBuf, Entry),
    /// A removal, and the side that did it.
    Remove(NormalPathBuf, Side),
}

/// What one side's page cache holds of a file under virtiofs: pages fetched during the current
/// validity slot are served as they were, however the file changed since. Slots are fixed in
/// time (length `stale_ms_max + 1`, a seeded phase per file and side), not started by reads,
/// so what a side reads never depends on how often SQLite's own cache sent it to the disk.
struct SideCache {
    slot: i64,
    pages: Vec<Option<Arc<Page>>>,
}

#[derive(Default)]
struct Inode {
    visible: Pages,
    durable: Pages,
    mtime_ms: i64,
    locks: LockTable,
    shm: BTreeMap<LockDomain, ShmState>,
    caches: [Option<SideCache>; 2],
    links_visible: u32,
    links_durable: u32,
    open_handles: u32,
}

/// How SQLite (or the plain API) opens a file.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenMode {
    pub create: bool,
    pub exclusive: bool,
    pub writable: bool,
    /// A temp file with no name (or deleted on close): never in the namespace.
    pub anonymous: bool,
}

struct Handle {
    proc: ProcId,
    side: Side,
    inode: InodeId,
    path: Option<NormalPathBuf>,
    writable: bool,
    domain: LockDomain,
    shm: Option<Arc<ShmMemory>>,
    dead: bool,
}

struct Proc {
    side: Side,
    label: String,
    alive: bool,
}

#[derive(Default)]
struct PendingFaults {
    fsync_errors: [u32; 2],
    disk_full_ops: [u32; 2],
    busy: [u32; 2],
    slow_disk: [(i64, u32); 2],
    /// Mutating operations left before the power fails (`Some(1)`: the next one).
    /// An armed power cut: disk operations left until it fires, and the side whose operations
    /// count (`None`: both).
    power_loss_after: Option<(u32, Option<Side>)>,
}

/// Everything one SimFs knows.
pub(crate) struct FsState {
    pub(crate) profile: MountProfile,
    pub(crate) sector_size: usize,
    pub(crate) stale_ms_max: i64,
    rng: SimRng,
    prng: SimRng,
    visible: BTreeMap<NormalPathBuf, Entry>,
    durable: BTreeMap<NormalPathBuf, Entry>,
    pending: Vec<NsOp>,
    inodes: BTreeMap<InodeId, Inode>,
    handles: BTreeMap<HandleId, Handle>,
    procs: BTreeMap<ProcId, Proc>,
    current_procs: BTreeMap<(Side, String), ProcId>,
    incarnations: BTreeMap<(Side, String), u32>,
    next_id: u64,
    writers: Vec<(String, Side)>,
    faults: PendingFaults,
    pub(crate) counters: Counters,
    /// Kept apart: how many reads reach the disk depends on SQLite's process-wide page cache.
    pub(crate) read_counters: ReadCounters,
    cache_salt: u64,
    pub(crate) violations: Vec<String>,
    pub(crate) maybe_durable: Vec<MaybeDurable>,
    io_delay_ms: [i64; 2],
    write_digest: Option<u64>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The database a journal or WAL belongs to (any other path is its own database).
fn database_of(file: &str) -> &str {
    file.strip_suffix("-journal")
        .or_else(|| file.strip_suffix("-wal"))
        .unwrap_or(file)
}

/// Applies one namespace change to `ns`, keeping the inodes' link counts; returns the inode
/// that lost a link, if any (it may now be free).
fn apply_op(
    ns: &mut BTreeMap<NormalPathBuf, Entry>,
    inodes: &mut BTreeMap<InodeId, Inode>,
    op: &NsOp,
    durable: bool,
) -> Option<InodeId> {
    let (old, new) = match op {
        NsOp::Set(path, entry) => (ns.insert(path.clone(), *entry), Some(*entry)),
        NsOp::Remove(path, _) => (ns.remove(path), None),
    };
    fn links(inode: &mut Inode, durable: bool) -> &mut u32 {
        if durable {
            &mut inode.links_durable
        } else {
            &mut inode.links_visible
        }
    }
    if let Some(Entry::File(id)) = new {
        if let Some(inode) = inodes.get_mut(&id) {
            *links(inode, durable) += 1;
        }
    }
    match old {
        Some(Entry::File(id)) => {
            if let Some(inode) = inodes.get_mut(&id) {
                *links(inode, durable) -= 1;
            }
            Some(id)
        }
        _ => None,
    }
}

impl FsState {
    pub(crate) fn new(profile: MountProfile, seed: u64) -> FsState {
        let root = SimRng::new(seed).fork("fs");
        let mut rng = root.fork("crash-and-cache");
        let sector_size = if rng.chance(0.5) { 512 } else { 4096 };
        let mut state = FsState {
            profile,
            sector_size,
            stale_ms_max: 1_000,
            rng,
            prng: root.fork("sqlite-prng"),
            visible: BTreeMap::new(),
            durable: BTreeMap::new(),
            pending: Vec::new(),
            inodes: BTreeMap::new(),
            handles: BTreeMap::new(),
            procs: BTreeMap::new(),
            current_procs: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            next_id: 1,
            writers: Vec::new(),
            faults: PendingFaults::default(),
            counters: Counters::default(),
            read_counters: ReadCounters::default(),
            cache_salt: root.fork("virtiofs-cache").next_u64(),
            violations: Vec::new(),
            maybe_durable: Vec::new(),
            io_delay_ms: [0; 2],
            write_digest: None,
        };
        let root_dir = Entry::Dir { mtime_ms: 0 };
        let root = NormalPath::ROOT.to_owned();
        state.visible.insert(root.clone(), root_dir);
        state.durable.insert(root, root_dir);
        state
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The lock domain of `side`: one per side under virtiofs, one for the machine otherwise.
    fn lock_domain(&self, side: Side) -> LockDomain {
        match self.profile {
            MountProfile::Virtiofs => 1 + side.index() as LockDomain,
            MountProfile::Bind | MountProfile::PowerLoss => 0,
        }
    }

    // ---- namespace ------------------------------------------------------------------------

    fn entry(&self, path: &NormalPath) -> Option<Entry> {
        self.visible.get(path).copied()
    }

    fn require_dir(&self, path: &NormalPath) -> Result<(), FsError> {
        match self.entry(path) {
            Some(Entry::Dir { .. }) => Ok(()),
            Some(Entry::File(_)) => Err(FsError::NotADirectory),
            None => Err(FsError::NotFound),
        }
    }

    /// `dir` and every visible entry inside it, in path order (a directory's descendants
    /// directly follow it: see [`super::path`]).
    fn visible_within<'a>(
        &'a self,
        dir: &'a NormalPath,
    ) -> impl Iterator<Item = (&'a NormalPathBuf, &'a Entry)> + 'a {
        self.visible
            .range::<NormalPath, _>((Bound::Included(dir), Bound::Unbounded))
            .take_while(move |(p, _)| dir.contains(p))
    }

    fn change_namespace(&mut self, op: NsOp) {
        if let Some(id) = apply_op(&mut self.visible, &mut self.inodes, &op, false) {
            self.free_if_unused(id);
        }
        self.pending.push(op);
    }

    /// Makes every pending namespace change durable, in order (a journal commit of the
    /// filesystem: any fsync or directory sync does this, as on ext4 with data=ordered).
    fn commit_namespace(&mut self) {
        let ops = std::mem::take(&mut self.pending);
        self.commit_ops(&ops);
    }

    fn commit_ops(&mut self, ops: &[NsOp]) {
        for op in ops {
            if let Some(id) = apply_op(&mut self.durable, &mut self.inodes, op, true) {
                self.free_if_unused(id);
            }
        }
    }

    fn free_if_unused(&mut self, id: InodeId) {
        let unused = self.inodes.get(&id).is_some_and(|inode| {
            inode.links_visible == 0 && inode.links_durable == 0 && inode.open_handles == 0
        });
        if unused {
            self.inodes.remove(&id);
        }
    }

    fn new_inode(&mut self, mtime_ms: i64) -> InodeId {
        let id = self.fresh_id();
        self.inodes.insert(
            id,
            Inode {
                mtime_ms,
                ..Inode::default()
            },
        );
        id
    }

    fn file_inode(&self, path: &NormalPath) -> Result<InodeId, FsError> {
        match self.entry(path) {
            Some(Entry::File(id)) => Ok(id),
            Some(Entry::Dir { .. }) => Err(FsError::IsADirectory),
            None => Err(FsError::NotFound),
        }
    }

    /// The file at `path`, created empty (in a directory that must exist) when missing.
    fn file_or_create(&mut self, path: &NormalPath, mtime_ms: i64) -> Result<InodeId, FsError> {
        match self.file_inode(path) {
            Err(FsError::NotFound) => {
                self.require_dir(path.parent())?;
                let id = self.new_inode(mtime_ms);
                self.change_namespace(NsOp::Set(path.to_owned(), Entry::File(id)));
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
        let mut missing = Vec::new();
        for dir in path.ancestors() {
            match self.entry(dir) {
                Some(Entry::Dir { .. }) => break,
                Some(Entry::File(_)) => return Err(FsError::NotADirectory),
                None => missing.push(dir.to_owned()),
            }
        }
        for dir in missing.into_iter().rev() {
            self.change_namespace(NsOp::Set(dir, Entry::Dir { mtime_ms }));
        }
        Ok(())
    }

    pub(crate) fn remove_dir_all(&mut self, side: Side, path: &NormalPath) -> Result<(), FsError> {
        self.power_cut(side)?;
        match self.entry(path) {
            None => return Ok(()),
            Some(Entry::File(_)) => return Err(FsError::NotADirectory),
            Some(Entry::Dir { .. }) => {}
        }
        let doomed: Vec<NormalPathBuf> =
            self.visible_within(path).map(|(p, _)| p.clone()).collect();
        for victim in doomed.into_iter().rev() {
            self.change_namespace(NsOp::Remove(victim, side));
        }
        Ok(())
    }

    pub(crate) fn list_dir(&self, path: &NormalPath) -> Result<Vec<String>, FsError> {
        self.require_dir(path)?;
        Ok(self
            .visible_within(path)
            .skip(1)
            .filter(|(p, _)| p.parent() == path)
            .filter_map(|(p, _)| p.file_name().map(str::to_string))
            .collect())
    }

    pub(crate) fn read_file(
        &mut self,
        side: Side,
        path: &NormalPath,
        cache_now_ms: Option<i64>,
    ) -> Result<Vec<u8>, FsError> {
        let id = self.file_inode(path)?;
        let len = self.inodes[&id].visible.len() as usize;
        let mut data = vec![0; len];
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
        let id = self.file_or_create(path, mtime_ms)?;
        self.check_writer(side, path);
        self.charge_slow_disk(side);
        self.truncate_inode(side, id, 0, mtime_ms)?;
        self.write_inode(side, id, 0, data, mtime_ms)
    }

    /// fsync of a plain file: its contents and every pending namespace change become durable.
    pub(crate) fn sync_file(&mut self, side: Side, path: &NormalPath) -> Result<(), FsError> {
        let id = self.file_inode(path)?;
        self.power_cut(side)?;
        self.sync_inode(side, id, Some(path.to_owned()))
    }

    pub(crate) fn exists(&self, path: &NormalPath) -> bool {
        self.visible.contains_key(path)
    }

    pub(crate) fn mtime_ms(&self, path: &NormalPath) -> Option<i64> {
        match self.entry(path)? {
            Entry::File(id) => Some(self.inodes[&id].mtime_ms),
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
        let id = self.file_or_create(path, mtime_ms)?;
        self.charge_slow_disk(side);
        if let Some(inode) = self.inodes.get_mut(&id) {
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
        let slot = cache_now_ms.map(|now_ms| self.cache_slot(id, side, now_ms));
        let FsState {
            inodes,
            read_counters,
            ..
        } = self;
        let Some(inode) = inodes.get_mut(&id) else {
            buf.fill(0);
            return 0;
        };
        let read = match slot {
            None => inode.visible.read(offset, buf),
            Some(slot) => {
                let Inode {
                    visible, caches, ..
                } = inode;
                let cache = &mut caches[side.index()];
                if cache.as_ref().is_none_or(|c| c.slot != slot) {
                    *cache = Some(SideCache {
                        slot,
                        pages: Vec::new(),
                    });
                }
                let cache = cache.as_mut().expect("set above");
                let mut stale = 0;
                let read = visible.read_with(offset, buf, |index, current| {
                    if cache.pages.len() <= index {
                        cache.pages.resize(index + 1, None);
                    }
                    let entry = &mut cache.pages[index];
                    match entry {
                        Some(cached) => {
                            if !Arc::ptr_eq(cached, current) {
                                stale += 1;
                            }
                            cached.clone()
                        }
                        None => entry.insert(current.clone()).clone(),
                    }
                });
                read_counters.stale_page_reads += stale;
                read
            }
        };
        read_counters.bytes_read += read as u64;
        read
    }

    /// The cache slot of `side` for file `id` at `now_ms` (see [`SideCache`]).
    fn cache_slot(&self, id: InodeId, side: Side, now_ms: i64) -> i64 {
        let slot_ms = self.stale_ms_max + 1;
        let phase = fnv(
            self.cache_salt,
            &[id.to_le_bytes(), (side as u64).to_le_bytes()].concat(),
        );
        (now_ms + (phase % slot_ms as u64) as i64).div_euclid(slot_ms)
    }

    fn write_inode(
        &mut self,
        side: Side,
        id: InodeId,
        offset: u64,
        data: &[u8],
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        let grows = self
            .inodes
            .get(&id)
            .is_some_and(|inode| offset + data.len() as u64 > inode.visible.len());
        if grows && self.take_disk_full(side) {
            return Err(FsError::DiskFull);
        }
        let Some(inode) = self.inodes.get_mut(&id) else {
            return Err(FsError::NotFound);
        };
        inode.visible.write(offset, data);
        inode.mtime_ms = mtime_ms;
        if let Some(cache) = &mut inode.caches[side.index()] {
            let first = (offset / PAGE_SIZE as u64) as usize;
            let last = ((offset + data.len() as u64) / PAGE_SIZE as u64) as usize;
            for slot in cache.pages.iter_mut().take(last + 1).skip(first) {
                *slot = None;
            }
        }
        self.counters.bytes_written += data.len() as u64;
        if let Some(digest) = &mut self.write_digest {
            *digest = fnv(
                fnv(fnv(*digest, &id.to_le_bytes()), &offset.to_le_bytes()),
                data,
            );
        }
        Ok(())
    }

    fn truncate_inode(
        &mut self,
        side: Side,
        id: InodeId,
        len: u64,
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        let grows = self
            .inodes
            .get(&id)
            .is_some_and(|inode| len > inode.visible.len());
        if grows && self.take_disk_full(side) {
            return Err(FsError::DiskFull);
        }
        let Some(inode) = self.inodes.get_mut(&id) else {
            return Err(FsError::NotFound);
        };
        inode.visible.resize(len);
        inode.mtime_ms = mtime_ms;
        if let Some(cache) = &mut inode.caches[side.index()] {
            cache.pages.truncate((len / PAGE_SIZE as u64) as usize);
        }
        if let Some(digest) = &mut self.write_digest {
            *digest = fnv(fnv(*digest, &id.to_le_bytes()), &len.to_le_bytes());
        }
        Ok(())
    }

    /// Makes the file's contents and every pending namespace change durable, unless an fsync
    /// error is pending for `side`: then some unsynced sectors may have reached the disk and
    /// some not (torn by the seed), and the failure is logged as "maybe durable".
    fn sync_inode(
        &mut self,
        side: Side,
        id: InodeId,
        path: Option<NormalPathBuf>,
    ) -> Result<(), FsError> {
        self.charge_slow_disk(side);
        if self.faults.fsync_errors[side.index()] > 0 {
            self.faults.fsync_errors[side.index()] -= 1;
            self.counters.fsync_error_fired += 1;
            if let Some(inode) = self.inodes.get_mut(&id) {
                let mut tally = TearTally::default();
                inode.durable = tear(
                    &inode.durable,
                    &inode.visible,
                    self.sector_size,
                    &mut self.rng,
                    &mut tally,
                );
            }
            let file = path.as_deref().map_or("", NormalPath::as_str);
            self.maybe_durable.push(MaybeDurable {
                side,
                path: PathBuf::from(database_of(file)),
                file: PathBuf::from(file),
                at_ms: None,
                cause: DoubtCause::FsyncError {
                    nth: self.counters.fsync_error_fired,
                },
            });
            return Err(FsError::FsyncFailed);
        }
        if let Some(inode) = self.inodes.get_mut(&id) {
            inode.durable = inode.visible.clone();
        }
        self.commit_namespace();
        self.counters.syncs += 1;
        Ok(())
    }

    // ---- processes and handles -------------------------------------------------------------

    /// The live process `label` on `side`, started (next incarnation) if it has none;
    /// returns its id, its incarnation and whether it was just started.
    pub(crate) fn process(&mut self, side: Side, label: &str) -> (ProcId, u32, bool) {
        let key = (side, label.to_string());
        if let Some(id) = self.current_procs.get(&key) {
            return (*id, self.incarnations[&key], false);
        }
        let id = self.fresh_id();
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
        self.current_procs.insert(key, id);
        (id, incarnation, true)
    }

    pub(crate) fn process_alive(&self, proc: ProcId) -> bool {
        self.procs.get(&proc).is_some_and(|p| p.alive)
    }

    /// Kills the live processes `matches` selects: their handles die and drop their locks;
    /// the page cache (visible contents) survives. Returns the killed processes.
    pub(crate) fn kill_processes(&mut self, matches: impl Fn(Side, &str) -> bool) -> Vec<ProcId> {
        let killed: Vec<ProcId> = self
            .procs
            .iter()
            .filter(|(_, p)| p.alive && matches(p.side, &p.label))
            .map(|(id, _)| *id)
            .collect();
        for id in &killed {
            let proc = self.procs.get_mut(id).expect("listed above");
            proc.alive = false;
            self.current_procs.remove(&(proc.side, proc.label.clone()));
        }
        let dying: Vec<HandleId> = self
            .handles
            .iter()
            .filter(|(_, h)| !h.dead && killed.contains(&h.proc))
            .map(|(id, _)| *id)
            .collect();
        for id in dying {
            self.kill_handle(id);
        }
        self.counters.process_crashes += killed.len() as u64;
        killed
    }

    fn kill_handle(&mut self, id: HandleId) {
        let Some(handle) = self.handles.get_mut(&id) else {
            return;
        };
        handle.dead = true;
        let (inode, domain) = (handle.inode, handle.domain);
        if let Some(inode) = self.inodes.get_mut(&inode) {
            inode.locks.release(id);
            if let Some(shm) = inode.shm.get_mut(&domain) {
                shm.release(id);
            }
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
        let side = match self.procs.get(&proc) {
            Some(p) if p.alive => p.side,
            _ => return Err(FsError::ProcessDead),
        };
        let inode = match path.filter(|_| !mode.anonymous) {
            None => self.new_inode(mtime_ms),
            Some(path) => match self.file_inode(path) {
                Ok(_) if mode.create && mode.exclusive => return Err(FsError::AlreadyExists),
                Ok(id) => id,
                Err(FsError::NotFound) if mode.create => self.file_or_create(path, mtime_ms)?,
                Err(e) => return Err(e),
            },
        };
        if mode.writable {
            if let Some(path) = path {
                self.check_writer(side, path);
            }
        }
        let id = self.fresh_id();
        let domain = self.lock_domain(side);
        self.handles.insert(
            id,
            Handle {
                proc,
                side,
                inode,
                path: path.map(NormalPath::to_owned),
                writable: mode.writable,
                domain,
                shm: None,
                dead: false,
            },
        );
        self.inodes
            .get_mut(&inode)
            .expect("just found")
            .open_handles += 1;
        self.counters.opens += 1;
        Ok(id)
    }

    /// A live handle; a dead one is an error. (One lookup for all the fields a call needs:
    /// the hot VFS calls come here.)
    fn live_handle(&self, handle: HandleId) -> Result<&Handle, FsError> {
        match self.handles.get(&handle) {
            Some(h) if !h.dead => Ok(h),
            _ => Err(FsError::ProcessDead),
        }
    }

    /// A live handle's side and inode; a dead one is an error.
    fn live(&self, handle: HandleId) -> Result<(Side, InodeId), FsError> {
        self.live_handle(handle).map(|h| (h.side, h.inode))
    }

    /// A live handle opened for writing.
    fn live_writable(&self, handle: HandleId) -> Result<(Side, InodeId), FsError> {
        let h = self.live_handle(handle)?;
        if !h.writable {
            return Err(FsError::ReadOnly);
        }
        Ok((h.side, h.inode))
    }

    pub(crate) fn close(&mut self, handle: HandleId) {
        self.kill_handle(handle);
        if let Some(h) = self.handles.remove(&handle) {
            if let Some(inode) = self.inodes.get_mut(&h.inode) {
                inode.open_handles -= 1;
            }
            self.free_if_unused(h.inode);
        }
    }

    pub(crate) fn read(
        &mut self,
        handle: HandleId,
        offset: u64,
        buf: &mut [u8],
        cache_now_ms: Option<i64>,
    ) -> Result<usize, FsError> {
        let (side, inode) = self.live(handle)?;
        Ok(self.read_inode(side, inode, offset, buf, cache_now_ms))
    }

    pub(crate) fn write(
        &mut self,
        handle: HandleId,
        offset: u64,
        data: &[u8],
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        let (side, inode) = self.live_writable(handle)?;
        self.power_cut(side)?;
        self.charge_slow_disk(side);
        self.write_inode(side, inode, offset, data, mtime_ms)
    }

    pub(crate) fn truncate(
        &mut self,
        handle: HandleId,
        len: u64,
        mtime_ms: i64,
    ) -> Result<(), FsError> {
        let (side, inode) = self.live_writable(handle)?;
        self.power_cut(side)?;
        self.truncate_inode(side, inode, len, mtime_ms)
    }

    pub(crate) fn sync(&mut self, handle: HandleId) -> Result<(), FsError> {
        let h = self.live_handle(handle)?;
        let (side, inode, path) = (h.side, h.inode, h.path.clone());
        self.power_cut(side)?;
        self.sync_inode(side, inode, path)
    }

    pub(crate) fn file_size(&self, handle: HandleId) -> Result<u64, FsError> {
        let (_, inode) = self.live(handle)?;
        Ok(self.inodes.get(&inode).map_or(0, |i| i.visible.len()))
    }

    pub(crate) fn lock(&mut self, handle: HandleId, want: LockLevel) -> Result<(), FsError> {
        let &Handle {
            side,
            inode,
            domain,
            ..
        } = self.live_handle(handle)?;
        let Some(inode) = self.inodes.get_mut(&inode) else {
            return Err(FsError::NotFound);
        };
        if want > inode.locks.level(handle) && self.faults.busy[side.index()] > 0 {
            self.faults.busy[side.index()] -= 1;
            self.counters.busy_fired += 1;
            return Err(FsError::Busy);
        }
        inode.locks.lock(handle, domain, want).map_err(|Busy| {
            self.counters.lock_busy += 1;
            FsError::Busy
        })
    }

    /// Lowers a lock; on a dead handle there is nothing left to lower.
    pub(crate) fn unlock(&mut self, handle: HandleId, to: LockLevel) {
        if let Some(h) = self.handles.get(&handle).filter(|h| !h.dead) {
            let domain = h.domain;
            if let Some(inode) = self.inodes.get_mut(&h.inode) {
                inode.locks.unlock(handle, domain, to);
            }
        }
    }

    pub(crate) fn reserved_lock_held(&self, handle: HandleId) -> Result<bool, FsError> {
        let &Handle { inode, domain, .. } = self.live_handle(handle)?;
        Ok(self
            .inodes
            .get(&inode)
            .is_some_and(|i| i.locks.reserved(domain)))
    }

    /// Removes a file's name (its inode lives on while open); `dir_sync` makes every pending
    /// namespace change durable.
    pub(crate) fn delete(
        &mut self,
        proc: ProcId,
        path: &NormalPath,
        dir_sync: bool,
    ) -> Result<(), FsError> {
        let side = match self.procs.get(&proc) {
            Some(p) if p.alive => p.side,
            _ => return Err(FsError::ProcessDead),
        };
        self.file_inode(path)?;
        self.power_cut(side)?;
        self.change_namespace(NsOp::Remove(path.to_owned(), side));
        if dir_sync {
            self.commit_namespace();
            self.counters.dir_syncs += 1;
        }
        Ok(())
    }

    pub(crate) fn is_file(&self, path: &NormalPath) -> bool {
        matches!(self.entry(path), Some(Entry::File(_)))
    }

    // ---- shared memory (WAL index) ---------------------------------------------------------

    pub(crate) fn shm_map(
        &mut self,
        handle: HandleId,
        region: usize,
        size: usize,
        extend: bool,
    ) -> Result<*mut u8, FsError> {
        let &Handle { inode, domain, .. } = self.live_handle(handle)?;
        let inode = self.inodes.get_mut(&inode).ok_or(FsError::NotFound)?;
        let memory = inode.shm.entry(domain).or_default().memory.clone();
        let ptr = memory.map(region, size, extend);
        self.handles.get_mut(&handle).expect("live").shm = Some(memory);
        Ok(ptr)
    }

    pub(crate) fn shm_lock(
        &mut self,
        handle: HandleId,
        slots: std::ops::Range<usize>,
        lock: bool,
        exclusive: bool,
    ) -> Result<(), FsError> {
        let &Handle { inode, domain, .. } = self.live_handle(handle)?;
        let inode = self.inodes.get_mut(&inode).ok_or(FsError::NotFound)?;
        let shm = inode.shm.entry(domain).or_default();
        if shm.lock(handle, slots, lock, exclusive) {
            Ok(())
        } else {
            self.counters.lock_busy += 1;
            Err(FsError::Busy)
        }
    }

    /// Unmaps the handle's shm; `delete` discards the regions when no other handle maps them.
    pub(crate) fn shm_unmap(&mut self, handle: HandleId, delete: bool) {
        let Some(h) = self.handles.get_mut(&handle) else {
            return;
        };
        let (inode, domain, dead) = (h.inode, h.domain, h.dead);
        let Some(memory) = h.shm.take() else {
            return;
        };
        let Some(inode) = self.inodes.get_mut(&inode) else {
            return;
        };
        if let Some(shm) = inode.shm.get_mut(&domain) {
            if !dead {
                shm.release(handle);
            }
            // Our clone, the state's, and nobody else's: the last mapping is gone.
            let last = Arc::ptr_eq(&shm.memory, &memory) && Arc::strong_count(&memory) == 2;
            if delete && last {
                inode.shm.remove(&domain);
            }
        }
    }

    // ---- machine crash ---------------------------------------------------------------------

    /// Power loss: every process dies; a seeded prefix of the pending namespace changes made it
    /// to the disk; every file's unsynced sectors are kept, dropped or torn by the seed.
    pub(crate) fn crash_machine(&mut self) {
        self.kill_processes(|_, _| true);
        let pending = std::mem::take(&mut self.pending);
        let committed = self.rng.below(pending.len() as u64 + 1) as usize;
        self.commit_ops(&pending[..committed]);
        self.counters.namespace_ops_lost += (pending.len() - committed) as u64;
        self.log_resurrected_journals(&pending[committed..]);
        self.visible = self.durable.clone();
        let mut tally = TearTally::default();
        let ids: Vec<InodeId> = self.inodes.keys().copied().collect();
        for id in ids {
            let inode = self.inodes.get_mut(&id).expect("listed above");
            if inode.links_durable == 0 {
                self.inodes.remove(&id);
                continue;
            }
            let after = tear(
                &inode.durable,
                &inode.visible,
                self.sector_size,
                &mut self.rng,
                &mut tally,
            );
            inode.visible = after.clone();
            inode.durable = after;
            inode.links_visible = inode.links_durable;
            inode.locks.clear();
            inode.shm.clear();
            inode.caches = [None, None];
        }
        self.counters.sectors_kept += tally.kept;
        self.counters.sectors_dropped += tally.dropped;
        self.counters.sectors_torn += tally.torn;
        self.counters.machine_crashes += 1;
    }

    /// A journal whose deletion (the commit of a rollback-journal transaction) did not reach
    /// the disk is back after the crash: its transaction will be rolled back although its
    /// COMMIT returned. Logged so checkers can tell this from a lost row (SQLite documents it
    /// for synchronous=FULL; EXTRA syncs the directory and never leaves one).
    fn log_resurrected_journals(&mut self, lost: &[NsOp]) {
        for op in lost {
            let NsOp::Remove(file, side) = op else {
                continue;
            };
            let back = matches!(self.durable.get(file), Some(Entry::File(_)));
            if back && file.as_str().ends_with("-journal") {
                self.maybe_durable.push(MaybeDurable {
                    side: *side,
                    path: PathBuf::from(database_of(file.as_str())),
                    file: file.as_path().to_path_buf(),
                    at_ms: None,
                    cause: DoubtCause::CommitNotDurable,
                });
            }
        }
    }

    /// Sides of the log entries not yet stamped with a time.
    pub(crate) fn unstamped_maybe_durable(&self) -> Vec<(usize, Side)> {
        self.maybe_durable
            .iter()
            .enumerate()
            .filter(|(_, m)| m.at_ms.is_none())
            .map(|(i, m)| (i, m.side))
            .collect()
    }

    // ---- single writer ---------------------------------------------------------------------

    pub(crate) fn set_writer(&mut self, path_suffix: &str, side: Side) {
        self.writers.retain(|(suffix, _)| suffix != path_suffix);
        self.writers.push((path_suffix.to_string(), side));
    }

    /// Records a violation when `side` opens for writing a DB (or its journal) whose writer is
    /// the other side.
    fn check_writer(&mut self, side: Side, path: &NormalPath) {
        let db = database_of(path.as_str());
        let foreign = self
            .writers
            .iter()
            .any(|(suffix, writer)| db.ends_with(suffix.as_str()) && *writer != side);
        if foreign {
            self.violations
                .push(format!("{} opened {} for writing", side.name(), path));
            self.counters.violations += 1;
        }
    }

    // ---- faults ----------------------------------------------------------------------------

    pub(crate) fn inject(&mut self, fault: super::FsFault) {
        use super::FsFault;
        match fault {
            FsFault::FsyncError { side } => {
                self.faults.fsync_errors[side.index()] += 1;
                self.counters.fsync_error_injected += 1;
            }
            FsFault::DiskFull { side, ops } => {
                self.faults.disk_full_ops[side.index()] += ops;
                self.counters.disk_full_injected += 1;
            }
            FsFault::Busy { side } => {
                self.faults.busy[side.index()] += 1;
                self.counters.busy_injected += 1;
            }
            FsFault::SlowDisk {
                side,
                latency_ms,
                ops,
            } => {
                self.faults.slow_disk[side.index()] = (latency_ms, ops);
                self.counters.slow_disk_injected += 1;
            }
            FsFault::PowerLossAfter { ops, side } => {
                self.faults.power_loss_after = Some((ops.max(1), side));
                self.counters.power_loss_injected += 1;
            }
        }
    }

    /// Counts one mutating operation of `side` against an armed power cut; when it is due, the machine
    /// crashes before the operation happens, and the operation fails.
    fn power_cut(&mut self, side: Side) -> Result<(), FsError> {
        let Some((left, counted)) = &mut self.faults.power_loss_after else {
            return Ok(());
        };
        if counted.is_some_and(|counted| counted != side) {
            return Ok(());
        }
        *left -= 1;
        if *left > 0 {
            return Ok(());
        }
        self.faults.power_loss_after = None;
        self.counters.power_loss_fired += 1;
        self.crash_machine();
        Err(FsError::ProcessDead)
    }

    fn take_disk_full(&mut self, side: Side) -> bool {
        let left = &mut self.faults.disk_full_ops[side.index()];
        if *left == 0 {
            return false;
        }
        *left -= 1;
        self.counters.disk_full_fired += 1;
        true
    }

    fn charge_slow_disk(&mut self, side: Side) {
        let (latency_ms, ops) = &mut self.faults.slow_disk[side.index()];
        if *ops > 0 {
            *ops -= 1;
            self.io_delay_ms[side.index()] += *latency_ms;
            self.counters.slow_disk_fired += 1;
        }
    }

    pub(crate) fn take_io_delay_ms(&mut self, side: Side) -> i64 {
        std::mem::take(&mut self.io_delay_ms[side.index()])
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
        self.write_digest.get_or_insert(FNV_OFFSET);
    }

    pub(crate) fn write_digest(&self) -> Option<u64> {
        self.write_digest
    }

    pub(crate) fn durable_image(&self, path: &NormalPath) -> Option<Vec<u8>> {
        match self.durable.get(path)? {
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
        let Entry::File(id) = self.entry(path)? else {
            return None;
        };
        let inode = self.inodes.get(&id)?;
        let mut out = vec![0; inode.visible.len() as usize];
        let cache = cache_now_ms.and_then(|now_ms| {
            let slot = self.cache_slot(id, side, now_ms);
            inode.caches[side.index()]
                .as_ref()
                .filter(|c| c.slot == slot)
        });
        inode.visible.read_with(0, &mut out, |index, current| {
            cache
                .and_then(|c| c.pages.get(index).cloned().flatten())
                .unwrap_or_else(|| current.clone())
        });
        Some(out)
    }

    /// Files alive in memory: named, durably named, or open.
    #[cfg(test)]
    pub(crate) fn file_count(&self) -> usize {
        self.inodes.len()
    }

    /// A hash of every visible file's path and contents, in path order.
    pub(crate) fn content_hash(&self) -> u64 {
        let mut hash = FNV_OFFSET;
        for (path, entry) in &self.visible {
            hash = fnv(hash, path.as_str().as_bytes());
            if let Entry::File(id) = entry {
                hash = fnv(hash, &self.inodes[id].visible.to_vec());
            }
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::path::normalize;

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
        let pending_before = state.pending.len();
        state.remove_dir_all(Side::Host, &path("/a/b")).unwrap();
        assert_eq!(
            state.list_dir(&path("/a")).unwrap(),
            ["b-x", "b.x", "b0", "bc"]
        );
        assert!(state.exists(&path("/a/b-x/y")));
        // Children before their parents, in reverse path order (what a power cut keeps of
        // them is a prefix of this order).
        let removed: Vec<&str> = state.pending[pending_before..]
            .iter()
            .map(|op| match op {
                NsOp::Remove(path, _) => path.as_str(),
                NsOp::Set(path, _) => panic!("set {path:?}"),
            })
            .collect();
        assert_eq!(removed, ["/a/b/f", "/a/b/c/g", "/a/b/c", "/a/b"]);
    }
}
