//! SimFs: the disk of one simulated machine, as the host and the containers see it.
//!
//! The protocol's safety rests on what a filesystem promises and what it does not: that a synced
//! row survives power loss, that an unsynced one may not, that a bind mount shares one page cache
//! and one lock table while a VM mount (virtiofs) shares neither. SimFs models exactly those
//! promises, so that the core's real SQLite (through [`crate::vfs`]) and its plain files (heartbeat,
//! outbox) meet them and nothing kinder.
//!
//! # Durability model
//!
//! - Each file has **visible** contents (what readers get through the page cache) and **durable**
//!   contents (what reached stable storage). A write changes the visible contents only.
//! - A **sync** (SQLite's xSync) makes the file's durable contents equal its visible contents.
//! - The **namespace** (create, delete, mkdir, rmdir) is journaled in order, as on ext4 with
//!   `data=ordered`: pending changes become durable together at the next sync of any file or at
//!   a directory sync (SQLite's xDelete with `syncDir`).
//! - A **process crash** ([`SimFs::crash_process`]) loses nothing: the page cache belongs to the
//!   machine. The process's open handles die (every further operation fails) and its locks are
//!   released.
//! - A **machine crash** ([`SimFs::crash_machine`], power loss) kills every process, keeps a
//!   seeded prefix of the pending namespace changes, and for every file whose visible contents
//!   differ from its durable ones picks, per sector (512 or 4096 bytes, by the seed), one of:
//!   kept (the new bytes reached the disk), dropped (the old bytes remain) or torn (a prefix of
//!   the new bytes, then garbage), as SQLite's own crash tests do. A changed length survives as
//!   the old or the new one. Afterwards visible = durable.
//! - An **fsync error** ([`FsFault::FsyncError`]) fails the sync with `SQLITE_IOERR_FSYNC` (or an
//!   `io::Error`); some unsynced sectors may have reached the disk anyway (torn by the seed). The
//!   file is logged in [`SimFs::maybe_durable`]: what that transaction wrote is neither known
//!   durable nor known lost. So is every rollback journal a power loss brought back (its unlink,
//!   the commit of a `synchronous=FULL` transaction, had not reached the disk).
//! - **Disk full** fails writes that grow a file (`SQLITE_FULL`); overwrites in place succeed.
//!
//! # Mount profiles
//!
//! - `bind`: one page cache and one lock table for the whole machine; mtimes from the host's clock
//!   (one kernel). Machine crashes follow the model above if the world injects them.
//! - `virtiofs`: each side reads through its own page cache; a page it fetched stays as it was
//!   until the end of the current validity slot (slots of `stale_ms_max + 1` ms, phase by the
//!   seed per file and side), however the other side changed the file: at most `stale_ms_max`
//!   of staleness. A side's own writes are seen at once. Locks (file and shm) are not shared between
//!   host and container. mtimes come from the writer's clock.
//! - `power-loss`: as `bind`; the profile under which the world injects machine crashes.
//!
//! # Processes and SQLite VFSes
//!
//! Each process that opens SQLite files gets its own VFS name ([`SimFs::vfs_name`] for a side's
//! main process, [`SimFs::process_vfs_name`] for a named one, e.g. one container per session), so
//! a crash can kill exactly that process's handles. After a crash the next call returns a fresh
//! name (the next incarnation); connections of the dead one fail every operation, so dropping
//! them cannot touch the disk (a dead process runs no cleanup).
//!
//! A power cut can also fall in the middle of an operation ([`FsFault::PowerLossAfter`]), e.g.
//! between the journal sync and the DB write of a commit: the same crash, at a finer point.
//!
//! **Invariants.** No wall clock (time comes from the hooks), no threads, no unordered iteration:
//! every choice comes from the seed, so one seed gives the same bytes every run. Reads change
//! nothing a run's outcome depends on (no random draw, no latency charged, counted apart in
//! [`SimFs::read_counters`]): SQLite's page cache is shared by every connection of the OS
//! process, so how many reads reach SimFs can depend on other worlds running beside this one.

mod cache;
mod counters;
mod digest;
mod doubt;
mod error;
mod faults;
mod handles;
mod inode;
mod locks;
mod namespace;
mod pages;
mod path;
mod process;
mod shm;
pub(crate) mod state;
mod writers;

pub use locks::LockLevel;

use crate::vfs::VfsReg;
use path::normalize_path;
use state::{FsError, FsState, ProcId};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use path::{normalize_bytes, NormalPath};

/// Who does an operation: the host process or a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Host,
    Container,
}

impl Side {
    /// Both sides, host first.
    pub const ALL: [Side; 2] = [Side::Host, Side::Container];

    /// `"host"` or `"container"`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Host => "host",
            Side::Container => "container",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the session folder is mounted into containers (one per run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MountProfile {
    /// A Linux bind mount: one page cache, shared locks.
    Bind,
    /// A VM mount: per-side caches that may serve stale pages, locks not shared, mtimes from the
    /// writer's clock.
    Virtiofs,
    /// A bind mount on a machine that loses power (the world injects machine crashes).
    PowerLoss,
}

impl MountProfile {
    /// Every profile, in the order runs cycle through them.
    pub const ALL: [MountProfile; 3] = [
        MountProfile::Bind,
        MountProfile::Virtiofs,
        MountProfile::PowerLoss,
    ];

    /// `"bind"`, `"virtiofs"` or `"power-loss"`.
    pub fn name(self) -> &'static str {
        match self {
            MountProfile::Bind => "bind",
            MountProfile::Virtiofs => "virtiofs",
            MountProfile::PowerLoss => "power-loss",
        }
    }

    /// Whose clock stamps a file written by `writer`.
    fn mtime_clock(self, writer: Side) -> Side {
        match self {
            MountProfile::Virtiofs => writer,
            MountProfile::Bind | MountProfile::PowerLoss => Side::Host,
        }
    }
}

impl std::fmt::Display for MountProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MountProfile {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MountProfile::ALL
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| format!("unknown mount profile {text:?} (bind, virtiofs, power-loss)"))
    }
}

/// A storage fault; each is counted when injected and when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsFault {
    /// The side's next sync fails (`SQLITE_IOERR_FSYNC`); what it was syncing is maybe durable.
    FsyncError { side: Side },
    /// The side's next `ops` writes that grow a file fail (`SQLITE_FULL`, `StorageFull`).
    DiskFull { side: Side, ops: u32 },
    /// The side's next lock acquisition fails with `SQLITE_BUSY` (its busy handler retries).
    Busy { side: Side },
    /// The side's next `ops` writes, truncates and syncs (never reads, whose number is not
    /// deterministic: see [`SimFs::read_counters`]) each cost `latency_ms` of simulated time,
    /// collected by [`SimFs::take_io_delay_ms`]. Replaces an earlier slow-disk fault of that side.
    SlowDisk {
        side: Side,
        latency_ms: i64,
        ops: u32,
    },
    /// The machine loses power just before the `ops`-th next mutating disk operation (write,
    /// truncate, sync, delete, mkdir, ...) of either side, in the middle of whatever SQLite call
    /// or file operation does it; that operation fails. Crashes at every point of a commit.
    /// A later `PowerLossAfter` replaces an armed one. With `side`, only that side's operations
    /// count, so the cut lands inside that side's work (the host's sweep, say, rather than the
    /// agent-runner's far more frequent polls).
    PowerLossAfter { ops: u32, side: Option<Side> },
}

/// The kind of mutating operation a [`FsTrap`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsOp {
    /// Creating a directory that does not exist yet (`create_dir_all` of an existing one is
    /// not met).
    CreateDir,
    /// Removing a file or a directory that exists (`remove_dir_all`, SQLite's xDelete).
    Remove,
    /// Writing, truncating or syncing a file.
    Write,
    /// Setting a file's mtime (`touch`).
    Touch,
}

/// What a sprung [`FsTrap`] does to the operation that met it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapEffect {
    /// The next `ops` operations it meets fail with an I/O error; the process goes on.
    Fail { ops: u32 },
    /// The process doing the operation dies just before it (every process of the side, for
    /// a plain-file operation, which names no process): the operation fails, and so does
    /// every later one of that process. The page cache survives, as in
    /// [`SimFs::crash_process`].
    Crash,
}

/// Which paths a [`FsTrap`] aims at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// Paths holding this text (`/outbox/`).
    Contains(String),
    /// Paths ending with this text (`<session>/inbound.db`, not its journal).
    EndsWith(String),
}

impl PathMatch {
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Contains(text) => path.contains(text.as_str()),
            PathMatch::EndsWith(text) => path.ends_with(text.as_str()),
        }
    }
}

/// A fault aimed at one kind of operation of one side on the paths `path` matches:
/// "the host's next removal under `/outbox/` fails", "the container dies at its next write to
/// `<session>/outbound.db`". Armed with [`SimFs::arm_trap`]; [`SimFs::take_sprung_traps`]
/// tells which sprang.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsTrap {
    pub side: Side,
    /// `None`: any mutating operation.
    pub op: Option<FsOp>,
    pub path: PathMatch,
    pub effect: TrapEffect,
}

/// An armed [`FsTrap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrapId(pub(crate) u64);

/// Writes whose fate a crash or a fault left in doubt: checkers must not count their rows as
/// lost, nor as surely kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaybeDurable {
    /// The side that wrote (or deleted) `file`.
    pub side: Side,
    /// The database whose last transaction is in doubt: `file` without `-journal` / `-wal`
    /// (a plain file is its own "database").
    pub path: PathBuf,
    /// The file the event struck (a journal, a WAL, a DB, a plain file; empty for a temp file).
    pub file: PathBuf,
    /// When it happened, on the side's clock.
    pub at_ms: Option<i64>,
    pub cause: DoubtCause,
}

/// Why a [`MaybeDurable`] entry is in doubt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoubtCause {
    /// The `nth` fsync error fired (1 for the first of the world): some unsynced sectors of
    /// `file` may have reached the disk, some not.
    FsyncError { nth: u64 },
    /// A power loss undid the unlink that committed a rollback-journal transaction (SQLite does
    /// not sync the directory after it unless `synchronous=EXTRA`): the journal is back, and the
    /// next writer rolls back that transaction although its COMMIT returned.
    CommitNotDurable,
}

/// The current time of a side, in ms since the epoch on that side's clock.
pub type NowHook = Arc<dyn Fn(Side) -> i64 + Send + Sync>;
/// Sleeps a side for the given microseconds of simulated time.
pub type SleepHook = Arc<dyn Fn(Side, i64) + Send + Sync>;

struct Hooks {
    now: NowHook,
    sleep: SleepHook,
}

/// Start of the default clock: 2026-01-01T00:00:00Z.
const DEFAULT_START_MS: i64 = 1_767_225_600_000;

impl Hooks {
    /// A clock of its own that only sleeping advances, until the world installs its hooks.
    fn standalone() -> Hooks {
        let slept_us = Arc::new(AtomicI64::new(0));
        let read = slept_us.clone();
        Hooks {
            now: Arc::new(move |_| DEFAULT_START_MS + read.load(Ordering::Relaxed) / 1000),
            sleep: Arc::new(move |_, us| {
                slept_us.fetch_add(us, Ordering::Relaxed);
            }),
        }
    }
}

/// Unique across the process, so VFS names of parallel worlds never collide. Not part of any
/// world's deterministic state: never put a VFS name in a trace.
static NEXT_WORLD_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Shared {
    pub(crate) state: Mutex<FsState>,
    pub(crate) profile: MountProfile,
    pub(crate) sector_size: usize,
    world_id: u64,
    /// Behind one `Arc`, so that reading the clock (every SQLite write) copies one pointer out
    /// of the lock, not two.
    hooks: Mutex<Arc<Hooks>>,
    vfs: Mutex<BTreeMap<ProcId, Arc<VfsReg>>>,
    /// Plain files read or written through an Env since the world last took them.
    file_log: Mutex<Vec<FileAccess>>,
}

/// One plain file (not a database: those go through the VFS) read or written through an Env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAccess {
    pub side: Side,
    /// The process, when it is not its side's main one (`agent-<session>`).
    pub process: Option<String>,
    pub path: String,
    pub written: bool,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, FsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hooks(&self) -> Arc<Hooks> {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Now on `side`'s clock.
    pub(crate) fn now_ms(&self, side: Side) -> i64 {
        (self.hooks().now)(side)
    }

    /// The mtime a write by `writer` stamps.
    pub(crate) fn mtime_now(&self, writer: Side) -> i64 {
        self.now_ms(self.profile.mtime_clock(writer))
    }

    /// Now on `reader`'s clock when reads go through per-side caches (virtiofs).
    pub(crate) fn cache_now(&self, reader: Side) -> Option<i64> {
        (self.profile == MountProfile::Virtiofs).then(|| self.now_ms(reader))
    }

    pub(crate) fn sleep(&self, side: Side, us: i64) {
        {
            let mut state = self.state();
            state.counters.sleeps += 1;
            state.counters.slept_us += us.max(0) as u64;
        }
        (self.hooks().sleep)(side, us);
    }

    /// Stamps the maybe-durable entries not yet stamped with their side's clock (outside the
    /// state lock, since the hook may call back into the world).
    pub(crate) fn stamp_maybe_durable(&self) {
        let unstamped = self.state().unstamped_maybe_durable();
        if unstamped.is_empty() {
            return;
        }
        let stamps: Vec<(usize, i64)> = unstamped
            .into_iter()
            .map(|(index, side)| (index, self.now_ms(side)))
            .collect();
        let mut state = self.state();
        for (index, at_ms) in stamps {
            state.stamp_maybe_durable(index, at_ms);
        }
    }

    /// Unregisters the VFS of every process that died (in a crash or a power cut).
    fn unregister_dead(&self) {
        let dead: Vec<ProcId> = {
            let state = self.state();
            let vfs = self.vfs.lock().unwrap_or_else(|e| e.into_inner());
            vfs.keys()
                .copied()
                .filter(|proc| !state.process_alive(*proc))
                .collect()
        };
        self.unregister(&dead);
    }

    fn unregister(&self, procs: &[ProcId]) {
        let mut vfs = self.vfs.lock().unwrap_or_else(|e| e.into_inner());
        for proc in procs {
            if let Some(reg) = vfs.remove(proc) {
                reg.unregister();
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        crate::vfs::close_prng_window();
        let vfs = self.vfs.get_mut().unwrap_or_else(|e| e.into_inner());
        for reg in std::mem::take(vfs).into_values() {
            reg.unregister();
        }
    }
}

/// A cheap handle to one world's disk. Clones share it; the SQLite VFSes it registered are
/// unregistered when the last handle drops.
#[derive(Clone)]
pub struct SimFs {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFs")
            .field("profile", &self.shared.profile)
            .field("world_id", &self.shared.world_id)
            .finish()
    }
}

fn io_error(error: FsError, side: Side, what: &str, path: &NormalPath) -> io::Error {
    let kind = match error {
        FsError::NotFound => io::ErrorKind::NotFound,
        FsError::NotADirectory => io::ErrorKind::NotADirectory,
        FsError::IsADirectory => io::ErrorKind::IsADirectory,
        FsError::AlreadyExists => io::ErrorKind::AlreadyExists,
        FsError::ReadOnly => io::ErrorKind::PermissionDenied,
        FsError::DiskFull => io::ErrorKind::StorageFull,
        FsError::Busy => io::ErrorKind::WouldBlock,
        FsError::ProcessDead | FsError::FsyncFailed | FsError::Injected => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("simfs: {side} {what} {path}: {error:?}"))
}

impl SimFs {
    /// An empty disk (only `/`) mounted with `profile`; every random choice derives from `seed`.
    pub fn new(profile: MountProfile, seed: u64) -> SimFs {
        let state = FsState::new(profile, seed);
        let sector_size = state.sector_size;
        SimFs {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                profile,
                sector_size,
                world_id: NEXT_WORLD_ID.fetch_add(1, Ordering::Relaxed),
                hooks: Mutex::new(Arc::new(Hooks::standalone())),
                vfs: Mutex::new(BTreeMap::new()),
                file_log: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The mount profile of this disk.
    pub fn profile(&self) -> MountProfile {
        self.shared.profile
    }

    /// The sector size (512 or 4096, chosen by the seed): SQLite's xSectorSize and the grain
    /// of torn writes.
    pub fn sector_size(&self) -> usize {
        self.shared.sector_size
    }

    /// Longest time a virtiofs side may keep serving a page it fetched (default 1000 ms).
    pub fn set_stale_ms_max(&self, stale_ms_max: i64) {
        self.shared.state().set_stale_ms_max(stale_ms_max.max(0));
    }

    /// Installs the world's clocks: `now(side)` (ms since the epoch on that side's clock) stamps
    /// mtimes, bounds stale reads and answers SQLite's xCurrentTime; `sleep(side, us)` is
    /// SQLite's xSleep, so a busy timeout costs simulated time. Until called, a private clock
    /// starting at 2026-01-01 advances only by sleeping.
    pub fn set_time_hooks(&self, now: NowHook, sleep: SleepHook) {
        *self.shared.hooks.lock().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Hooks { now, sleep });
    }

    /// The SQLite VFS of `side`'s main process (registered on first use; a new one after that
    /// process crashed). Unique in this OS process, e.g. `clawsim-w17-host-main-1`.
    pub fn vfs_name(&self, side: Side) -> String {
        self.process_vfs_name(side, "main")
    }

    /// The SQLite VFS of the process `process` on `side` (e.g. the container of one session),
    /// so that [`SimFs::crash_named_process`] can kill that process alone.
    pub fn process_vfs_name(&self, side: Side, process: &str) -> String {
        self.shared.unregister_dead();
        let (proc, incarnation, _) = self.shared.state().process(side, process);
        let mut vfs = self.shared.vfs.lock().unwrap_or_else(|e| e.into_inner());
        let reg = vfs.entry(proc).or_insert_with(|| {
            let name = format!(
                "clawsim-w{}-{}-{}-{}",
                self.shared.world_id,
                side.name(),
                process,
                incarnation
            );
            crate::vfs::register(Arc::downgrade(&self.shared), proc, side, name)
        });
        reg.name().to_string()
    }

    /// An operation failed: a power cut or fsync error may have logged doubts to stamp.
    fn fail(&self, error: FsError, side: Side, what: &str, path: &NormalPath) -> io::Error {
        self.shared.stamp_maybe_durable();
        io_error(error, side, what, path)
    }

    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut FsState) -> T) -> T {
        f(&mut self.shared.state())
    }

    /// Creates a directory and its parents; an existing directory is not an error.
    pub fn create_dir_all(&self, side: Side, path: &Path) -> io::Result<()> {
        let path = normalize_path(path);
        let now = self.shared.mtime_now(side);
        self.with_state(|s| s.create_dir_all(side, &path, now))
            .map_err(|e| self.fail(e, side, "create_dir_all", &path))
    }

    /// Removes a directory and everything in it; a missing directory is not an error.
    pub fn remove_dir_all(&self, side: Side, path: &Path) -> io::Result<()> {
        let path = normalize_path(path);
        self.with_state(|s| s.remove_dir_all(side, &path))
            .map_err(|e| self.fail(e, side, "remove_dir_all", &path))
    }

    /// Names of a directory's entries, sorted.
    pub fn list_dir(&self, side: Side, path: &Path) -> io::Result<Vec<String>> {
        let path = normalize_path(path);
        self.with_state(|s| s.list_dir(&path))
            .map_err(|e| self.fail(e, side, "list_dir", &path))
    }

    /// Reads a whole file as `side` sees it (possibly stale pages under virtiofs).
    pub fn read_file(&self, side: Side, path: &Path) -> io::Result<Vec<u8>> {
        let path = normalize_path(path);
        let now = self.shared.cache_now(side);
        self.with_state(|s| s.read_file(side, &path, now))
            .map_err(|e| self.fail(e, side, "read_file", &path))
    }

    /// Replaces a file's contents (truncate, then write; not synced: a machine crash may tear it).
    /// The parent directory must exist.
    pub fn write_file(&self, side: Side, path: &Path, data: &[u8]) -> io::Result<()> {
        let path = normalize_path(path);
        let now = self.shared.mtime_now(side);
        self.with_state(|s| s.write_file(side, &path, data, now))
            .map_err(|e| self.fail(e, side, "write_file", &path))
    }

    /// fsync of a plain file: its contents and every pending namespace change become durable.
    /// (Core's Env has no fsync; for tests and checkers.)
    pub fn sync_file(&self, side: Side, path: &Path) -> io::Result<()> {
        let path = normalize_path(path);
        self.with_state(|s| s.sync_file(side, &path))
            .map_err(|e| self.fail(e, side, "sync", &path))
    }

    /// True when a file or directory exists at `path`.
    pub fn exists(&self, _side: Side, path: &Path) -> bool {
        let path = normalize_path(path);
        self.with_state(|s| s.exists(&path))
    }

    /// The modification time of a file or directory (see [`MountProfile`] for whose clock),
    /// `None` when there is none.
    pub fn mtime_ms(&self, _side: Side, path: &Path) -> io::Result<Option<i64>> {
        let path = normalize_path(path);
        Ok(self.with_state(|s| s.mtime_ms(&path)))
    }

    /// Creates the file if missing and sets its mtime to now.
    pub fn touch(&self, side: Side, path: &Path) -> io::Result<()> {
        let path = normalize_path(path);
        let now = self.shared.mtime_now(side);
        self.with_state(|s| s.touch(side, &path, now))
            .map_err(|e| self.fail(e, side, "touch", &path))
    }

    /// Every process of `side` dies: their handles fail from now on and their locks are
    /// released; the page cache survives. The next `vfs_name` is a new incarnation.
    pub fn crash_process(&self, side: Side) {
        self.with_state(|s| s.kill_processes(|s, _| s == side));
        self.shared.unregister_dead();
    }

    /// Only the process `process` of `side` dies (see [`SimFs::crash_process`]).
    pub fn crash_named_process(&self, side: Side, process: &str) {
        self.with_state(|s| s.kill_processes(|s, p| s == side && p == process));
        self.shared.unregister_dead();
    }

    /// Power loss: every process dies and unsynced data is kept, dropped or torn by the seed
    /// (see the durability model above).
    pub fn crash_machine(&self) {
        self.with_state(|s| s.crash_machine());
        self.shared.stamp_maybe_durable();
        self.shared.unregister_dead();
    }

    /// Arms a fault (counted as injected now, as fired when an operation meets it).
    pub fn inject(&self, fault: FsFault) {
        self.with_state(|s| s.inject(fault));
    }

    /// Arms a trap; it springs when an operation it aims at comes.
    pub fn arm_trap(&self, trap: FsTrap) -> TrapId {
        self.with_state(|s| s.traps.arm(trap))
    }

    /// Disarms a trap; true when it was still armed (a crash trap that sprang is not).
    pub fn disarm_trap(&self, id: TrapId) -> bool {
        self.with_state(|s| s.traps.disarm(id))
    }

    /// The traps that sprang since the last call, in the order they first did. The processes
    /// a crash trap killed are dead already; their VFSes are unregistered at the next crash or
    /// VFS lookup, as after [`SimFs::crash_process`].
    pub fn take_sprung_traps(&self) -> Vec<TrapId> {
        self.with_state(|s| s.traps.take_sprung())
    }

    /// Simulated latency `side` accrued on a slow disk since the last call (the world charges it
    /// to the actor that did the IO).
    pub fn take_io_delay_ms(&self, side: Side) -> i64 {
        self.with_state(|s| s.take_io_delay_ms(side))
    }

    /// Notes that a process read or wrote a plain file through its Env.
    pub fn note_file_access(&self, access: FileAccess) {
        let mut log = self
            .shared
            .file_log
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        log.push(access);
    }

    /// The plain-file accesses noted since the last call, oldest first.
    pub fn take_file_accesses(&self) -> Vec<FileAccess> {
        let mut log = self
            .shared
            .file_log
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *log)
    }

    /// Every counter by name: operations, bytes written, crash outcomes, faults injected and
    /// fired. Deterministic for a seed, whatever runs beside the world.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.with_state(|s| s.counters.to_map())
    }

    /// Bytes read and stale pages served. Not deterministic when other worlds run in the same
    /// OS process (SQLite's page cache is process-wide, so another world can make this one
    /// re-read pages): report them, never hash them into a trace.
    pub fn read_counters(&self) -> BTreeMap<String, u64> {
        self.with_state(|s| s.read_counters.to_map())
    }

    /// Single-writer violations, e.g. `container opened /s/inbound.db for writing`.
    pub fn violations(&self) -> Vec<String> {
        self.with_state(|s| s.violations().to_vec())
    }

    /// Writes left in doubt by fsync errors and power losses (see [`MaybeDurable`]).
    pub fn maybe_durable(&self) -> Vec<MaybeDurable> {
        self.with_state(|s| s.maybe_durable().to_vec())
    }

    /// Declares `side` the only writer of files whose path ends with `path_suffix` (and of their
    /// `-journal` / `-wal`): a write-open by the other side is recorded as a violation.
    pub fn set_writer(&self, path_suffix: &str, side: Side) {
        self.with_state(|s| s.set_writer(path_suffix, side));
    }

    /// The durable contents of the file the durable namespace has at `path`.
    pub fn durable_image(&self, path: &Path) -> Option<Vec<u8>> {
        let path = normalize_path(path);
        self.with_state(|s| s.durable_image(&path))
    }

    /// What `side` would read from `path` now (stale pages included), without reading it.
    pub fn visible_image(&self, side: Side, path: &Path) -> Option<Vec<u8>> {
        let path = normalize_path(path);
        let now = self.shared.cache_now(side);
        self.with_state(|s| s.visible_image(side, &path, now))
    }

    /// Starts hashing every write and truncate (file, offset, bytes), for determinism checks.
    pub fn enable_write_digest(&self) {
        self.with_state(|s| s.enable_write_digest());
    }

    /// The hash of every write since [`SimFs::enable_write_digest`], or `None` if not enabled.
    pub fn write_digest(&self) -> Option<u64> {
        self.with_state(|s| s.write_digest())
    }

    /// A hash of every visible path and file's contents.
    pub fn content_hash(&self) -> u64 {
        self.with_state(|s| s.content_hash())
    }
}
