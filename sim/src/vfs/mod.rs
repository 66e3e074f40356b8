//! A SQLite VFS whose files live in a [`SimFs`](crate::fs::SimFs), written against
//! `rusqlite::ffi` (no bindgen, no system package).
//!
//! One VFS is registered per simulated process, so every handle knows its side and process:
//! that is how a crash kills exactly one process's handles and how a write-open of the other
//! side's DB is caught. Besides files, the VFS answers SQLite's questions about the world from
//! the simulation: the current time (the side's clock), randomness (the seed) and sleeping (the
//! world's sleep hook, so a busy timeout costs simulated time, never wall time).
//!
//! Device characteristics are 0 (no atomic or safe-append writes, no powersafe overwrite), so
//! SQLite performs every journal sync it would on a plain disk. Shared memory is implemented, so
//! WAL mode works (with virtiofs' unshared shm under that profile).
//!
//! The first registration in the OS process also turns SQLite's memory statistics off, before
//! SQLite initialises, so that worlds on parallel threads do not share one mutex per malloc.
//!
//! **Invariant.** No callback holds the SimFs lock while calling a world hook (clock, sleep).

mod prng;

use crate::fs::state::{FsError, HandleId, OpenMode, ProcId};
use crate::fs::{normalize_bytes, LockLevel, NormalPath, Shared, Side};
use rusqlite::ffi;
use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

pub(crate) use prng::close_window as close_prng_window;

/// Longest path SQLite may hand us.
const MAX_PATHNAME: c_int = 1024;

/// Milliseconds between the Julian day epoch and the Unix epoch.
const UNIX_EPOCH_JULIAN_MS: i64 = 210_866_760_000_000;

/// One registered VFS: the `sqlite3_vfs` SQLite links into its list, owned here so its address
/// is stable. `pAppData` points back at this struct. Open files hold a strong count, so the
/// struct outlives every connection that may still call through it.
pub(crate) struct VfsReg {
    raw: *mut ffi::sqlite3_vfs,
    name: CString,
    fs: Weak<Shared>,
    proc: ProcId,
    side: Side,
    registered: AtomicBool,
}

// SAFETY: `raw` is owned by this struct and only read by SQLite (which serialises its own list);
// everything else is Send + Sync.
unsafe impl Send for VfsReg {}
unsafe impl Sync for VfsReg {}

impl VfsReg {
    pub(crate) fn name(&self) -> &str {
        self.name.to_str().expect("built from a String")
    }

    /// Removes the VFS from SQLite's list (idempotent); existing connections keep working
    /// through their handles until closed.
    pub(crate) fn unregister(&self) {
        if self.registered.swap(false, Ordering::SeqCst) {
            // SAFETY: `raw` was registered by `register` and is still alive.
            unsafe { ffi::sqlite3_vfs_unregister(self.raw) };
        }
    }
}

impl Drop for VfsReg {
    fn drop(&mut self) {
        self.unregister();
        // SAFETY: allocated by Box::into_raw in `register`, unregistered above.
        unsafe { drop(Box::from_raw(self.raw)) };
    }
}

/// What `sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0)` returned, once per OS process.
static MEMSTATUS_CONFIG: OnceLock<c_int> = OnceLock::new();

/// Turns off SQLite's memory statistics before SQLite initialises, once per OS process: with
/// them on, every allocation SQLite makes takes one process-wide mutex, which the worlds running
/// on parallel threads would contend for. Nothing in the workspace reads them (nor sets a soft
/// heap limit, which needs them), so no behaviour changes. Registering a VFS initialises SQLite,
/// so the first registration is early enough unless something else in the process used SQLite
/// first (a plain connection, in a test): SQLite then answers `SQLITE_MISUSE`, changes nothing,
/// and the statistics simply stay on. Returns that answer.
fn disable_memory_statistics() -> c_int {
    *MEMSTATUS_CONFIG.get_or_init(|| {
        // SAFETY: MEMSTATUS takes one int. `sqlite3_config` must not run beside other SQLite
        // calls: other threads registering a VFS wait on this cell, and the sim makes no SQLite
        // call before registering one. SQLite checks for itself that it is not initialised.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        debug_assert!(
            rc == ffi::SQLITE_OK || rc == ffi::SQLITE_MISUSE,
            "sqlite3_config(MEMSTATUS) returned {rc}"
        );
        rc
    })
}

/// Registers a VFS named `name` for process `proc` of `side`.
pub(crate) fn register(fs: Weak<Shared>, proc: ProcId, side: Side, name: String) -> Arc<VfsReg> {
    disable_memory_statistics();
    prng::require_no_open_time_draws();
    let name = CString::new(name).expect("VFS names have no NUL");
    let raw = Box::into_raw(Box::new(ffi::sqlite3_vfs {
        iVersion: 2,
        szOsFile: std::mem::size_of::<SimFile>() as c_int,
        mxPathname: MAX_PATHNAME,
        pNext: std::ptr::null_mut(),
        zName: name.as_ptr(),
        pAppData: std::ptr::null_mut(),
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: Some(x_dl_open),
        xDlError: Some(x_dl_error),
        xDlSym: Some(x_dl_sym),
        xDlClose: Some(x_dl_close),
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    }));
    let reg = Arc::new(VfsReg {
        raw,
        name,
        fs,
        proc,
        side,
        registered: AtomicBool::new(true),
    });
    // SAFETY: `raw` is ours and not yet registered; the Arc's address is stable.
    unsafe {
        (*raw).pAppData = Arc::as_ptr(&reg) as *mut c_void;
        let rc = ffi::sqlite3_vfs_register(raw, 0);
        assert_eq!(rc, ffi::SQLITE_OK, "sqlite3_vfs_register failed: {rc}");
    }
    reg
}

/// An open file as SQLite allocates it (`szOsFile` bytes); the base must come first.
#[repr(C)]
struct SimFile {
    base: ffi::sqlite3_file,
    /// A strong count on the VFS, released on close.
    reg: *const VfsReg,
    handle: HandleId,
    main_journal: bool,
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// The VFS registration behind a `sqlite3_vfs` pointer.
unsafe fn reg_of<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a VfsReg {
    &*((*vfs).pAppData as *const VfsReg)
}

unsafe fn file_of<'a>(file: *mut ffi::sqlite3_file) -> &'a SimFile {
    &*(file as *const SimFile)
}

/// The file's VFS, side and handle, with its SimFs if that still exists.
unsafe fn open_file<'a>(
    file: *mut ffi::sqlite3_file,
) -> (&'a SimFile, &'a VfsReg, Option<Arc<Shared>>) {
    let file = file_of(file);
    let reg = &*file.reg;
    (file, reg, reg.fs.upgrade())
}

/// The normal form of a file name SQLite passed in, borrowed from it when it already is one
/// (SQLite hands back the full pathname `x_full_pathname` made, so nearly always).
unsafe fn path_of<'a>(name: *const c_char) -> Option<Cow<'a, NormalPath>> {
    if name.is_null() {
        return None;
    }
    Some(normalize_bytes(CStr::from_ptr(name).to_bytes()))
}

fn code(error: FsError, io_code: c_int) -> c_int {
    match error {
        FsError::DiskFull => ffi::SQLITE_FULL,
        FsError::Busy => ffi::SQLITE_BUSY,
        FsError::FsyncFailed => ffi::SQLITE_IOERR_FSYNC,
        _ => io_code,
    }
}

fn result(outcome: Result<(), FsError>, io_code: c_int) -> c_int {
    match outcome {
        Ok(()) => ffi::SQLITE_OK,
        Err(error) => code(error, io_code),
    }
}

fn open_mode(flags: c_int, anonymous: bool) -> OpenMode {
    OpenMode {
        create: flags & ffi::SQLITE_OPEN_CREATE != 0,
        exclusive: flags & ffi::SQLITE_OPEN_EXCLUSIVE != 0,
        writable: flags & ffi::SQLITE_OPEN_READWRITE != 0,
        anonymous: anonymous || flags & ffi::SQLITE_OPEN_DELETEONCLOSE != 0,
    }
}

// ---- VFS methods ---------------------------------------------------------------------------

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    prng::close_window();
    (*file).pMethods = std::ptr::null();
    let reg = reg_of(vfs);
    let Some(fs) = reg.fs.upgrade() else {
        return ffi::SQLITE_CANTOPEN;
    };
    let path = path_of(name);
    let mode = open_mode(flags, path.is_none());
    let mtime_ms = fs.mtime_now(reg.side);
    let main_journal = flags & ffi::SQLITE_OPEN_MAIN_JOURNAL != 0;
    let opened = {
        let mut state = fs.state();
        state
            .open(reg.proc, path.as_deref(), mode, mtime_ms)
            .map(|handle| (handle, main_journal.then(|| state.next_prng_seed())))
    };
    let Ok((handle, prng_seed)) = opened else {
        return ffi::SQLITE_CANTOPEN;
    };
    Arc::increment_strong_count(reg as *const VfsReg);
    std::ptr::write(
        file as *mut SimFile,
        SimFile {
            base: ffi::sqlite3_file {
                pMethods: &IO_METHODS,
            },
            reg: reg as *const VfsReg,
            handle,
            main_journal,
        },
    );
    if !out_flags.is_null() {
        *out_flags = flags;
    }
    if let Some(seed) = prng_seed {
        prng::open_window(seed);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    prng::close_window();
    let reg = reg_of(vfs);
    let (Some(fs), Some(path)) = (reg.fs.upgrade(), path_of(name)) else {
        return ffi::SQLITE_IOERR_DELETE;
    };
    let outcome = fs.state().delete(reg.proc, &path, sync_dir != 0);
    if outcome.is_err() {
        fs.stamp_maybe_durable();
    }
    match outcome {
        Ok(()) => ffi::SQLITE_OK,
        Err(FsError::NotFound) => ffi::SQLITE_IOERR_DELETE_NOENT,
        Err(_) => ffi::SQLITE_IOERR_DELETE,
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    _flags: c_int,
    res_out: *mut c_int,
) -> c_int {
    prng::close_window();
    let reg = reg_of(vfs);
    let (Some(fs), Some(path)) = (reg.fs.upgrade(), path_of(name)) else {
        return ffi::SQLITE_IOERR_ACCESS;
    };
    let state = fs.state();
    if !state.process_alive(reg.proc) {
        return ffi::SQLITE_IOERR_ACCESS;
    }
    *res_out = c_int::from(state.is_file(&path));
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    prng::close_window();
    let Some(path) = path_of(name) else {
        return ffi::SQLITE_CANTOPEN;
    };
    let bytes = path.as_str().as_bytes();
    if bytes.len() + 1 > n_out as usize {
        return ffi::SQLITE_CANTOPEN;
    }
    std::ptr::copy_nonoverlapping(bytes.as_ptr() as *const c_char, out, bytes.len());
    *out.add(bytes.len()) = 0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_dl_open(_: *mut ffi::sqlite3_vfs, _: *const c_char) -> *mut c_void {
    std::ptr::null_mut()
}

unsafe extern "C" fn x_dl_error(_: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let message = b"simfs: no dynamic loading\0";
    if n > 0 {
        let len = message.len().min(n as usize);
        std::ptr::copy_nonoverlapping(message.as_ptr() as *const c_char, out, len);
        *out.add(len - 1) = 0;
    }
}

unsafe extern "C" fn x_dl_sym(
    _: *mut ffi::sqlite3_vfs,
    _: *mut c_void,
    _: *const c_char,
) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)> {
    None
}

unsafe extern "C" fn x_dl_close(_: *mut ffi::sqlite3_vfs, _: *mut c_void) {}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let reg = reg_of(vfs);
    let buf = std::slice::from_raw_parts_mut(out as *mut u8, n.max(0) as usize);
    match reg.fs.upgrade() {
        Some(fs) => fs.state().fill_random(buf),
        None => buf.fill(0),
    }
    n
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, microseconds: c_int) -> c_int {
    prng::close_window();
    let reg = reg_of(vfs);
    if let Some(fs) = reg.fs.upgrade() {
        fs.sleep(reg.side, i64::from(microseconds));
    }
    microseconds
}

unsafe fn now_ms(vfs: *mut ffi::sqlite3_vfs) -> i64 {
    let reg = reg_of(vfs);
    reg.fs.upgrade().map_or(0, |fs| fs.now_ms(reg.side))
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    prng::close_window();
    *out = (UNIX_EPOCH_JULIAN_MS + now_ms(vfs)) as f64 / 86_400_000.0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_current_time_int64(
    vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    prng::close_window();
    *out = UNIX_EPOCH_JULIAN_MS + now_ms(vfs);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_get_last_error(_: *mut ffi::sqlite3_vfs, _: c_int, _: *mut c_char) -> c_int {
    0
}

// ---- file methods --------------------------------------------------------------------------

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    prng::close_window();
    let (sim, reg, fs) = open_file(file);
    if let Some(fs) = fs {
        fs.state().close(sim.handle);
        drop(fs);
    }
    let reg = reg as *const VfsReg;
    (*file).pMethods = std::ptr::null();
    // Last: this may free the VFS itself.
    Arc::decrement_strong_count(reg);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    prng::close_window();
    let (sim, reg, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_READ;
    };
    let buf = std::slice::from_raw_parts_mut(buf as *mut u8, amount as usize);
    let now = fs.cache_now(reg.side);
    let outcome = fs.state().read(sim.handle, offset as u64, buf, now);
    match outcome {
        Ok(read) if read == buf.len() => ffi::SQLITE_OK,
        Ok(_) => ffi::SQLITE_IOERR_SHORT_READ,
        Err(_) => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    prng::close_window();
    let (sim, reg, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let data = std::slice::from_raw_parts(data as *const u8, amount as usize);
    let mtime_ms = fs.mtime_now(reg.side);
    let outcome = fs.state().write(sim.handle, offset as u64, data, mtime_ms);
    if outcome.is_err() {
        fs.stamp_maybe_durable();
    }
    result(outcome, ffi::SQLITE_IOERR_WRITE)
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    prng::close_window();
    let (sim, reg, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_TRUNCATE;
    };
    let mtime_ms = fs.mtime_now(reg.side);
    let outcome = fs.state().truncate(sim.handle, size as u64, mtime_ms);
    if outcome.is_err() {
        fs.stamp_maybe_durable();
    }
    result(outcome, ffi::SQLITE_IOERR_TRUNCATE)
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    prng::close_window();
    let (sim, _, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_FSYNC;
    };
    let (outcome, prng_seed) = {
        let mut state = fs.state();
        let outcome = state.sync(sim.handle);
        let seed = (sim.main_journal && outcome.is_ok()).then(|| state.next_prng_seed());
        (outcome, seed)
    };
    if outcome.is_err() {
        fs.stamp_maybe_durable();
    }
    if let Some(seed) = prng_seed {
        prng::open_window(seed);
    }
    result(outcome, ffi::SQLITE_IOERR_FSYNC)
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    prng::close_window();
    let (sim, _, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_FSTAT;
    };
    let outcome = fs.state().file_size(sim.handle);
    match outcome {
        Ok(len) => {
            *size = len as ffi::sqlite3_int64;
            ffi::SQLITE_OK
        }
        Err(_) => ffi::SQLITE_IOERR_FSTAT,
    }
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    prng::close_window();
    let (sim, _, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_LOCK;
    };
    let outcome = fs.state().lock(sim.handle, LockLevel::from_sqlite(level));
    result(outcome, ffi::SQLITE_IOERR_LOCK)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    prng::close_window();
    let (sim, _, fs) = open_file(file);
    if let Some(fs) = fs {
        fs.state().unlock(sim.handle, LockLevel::from_sqlite(level));
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_check_reserved_lock(
    file: *mut ffi::sqlite3_file,
    res_out: *mut c_int,
) -> c_int {
    prng::close_window();
    let (sim, _, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_CHECKRESERVEDLOCK;
    };
    let outcome = fs.state().reserved_lock_held(sim.handle);
    match outcome {
        Ok(held) => {
            *res_out = c_int::from(held);
            ffi::SQLITE_OK
        }
        Err(_) => ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
    }
}

unsafe extern "C" fn x_file_control(
    _: *mut ffi::sqlite3_file,
    _op: c_int,
    _arg: *mut c_void,
) -> c_int {
    prng::close_window();
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (_, _, fs) = open_file(file);
    fs.map_or(512, |fs| fs.sector_size as c_int)
}

unsafe extern "C" fn x_device_characteristics(_: *mut ffi::sqlite3_file) -> c_int {
    0
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    prng::close_window();
    *out = std::ptr::null_mut();
    let (sim, _, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_SHMMAP;
    };
    let outcome = fs
        .state()
        .shm_map(sim.handle, region as usize, size as usize, extend != 0);
    match outcome {
        Ok(ptr) => {
            *out = ptr as *mut c_void;
            ffi::SQLITE_OK
        }
        Err(_) => ffi::SQLITE_IOERR_SHMMAP,
    }
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    prng::close_window();
    let (sim, _, fs) = open_file(file);
    let Some(fs) = fs else {
        return ffi::SQLITE_IOERR_SHMLOCK;
    };
    let lock = flags & ffi::SQLITE_SHM_LOCK != 0;
    let exclusive = flags & ffi::SQLITE_SHM_EXCLUSIVE != 0;
    let slots = offset as usize..(offset + n) as usize;
    let outcome = fs.state().shm_lock(sim.handle, slots, lock, exclusive);
    match outcome {
        Ok(()) => ffi::SQLITE_OK,
        Err(FsError::Busy) => ffi::SQLITE_BUSY,
        Err(_) if !lock => ffi::SQLITE_OK,
        Err(_) => ffi::SQLITE_IOERR_SHMLOCK,
    }
}

unsafe extern "C" fn x_shm_barrier(_: *mut ffi::sqlite3_file) {
    std::sync::atomic::fence(Ordering::SeqCst);
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let (sim, _, fs) = open_file(file);
    if let Some(fs) = fs {
        fs.state().shm_unmap(sim.handle, delete != 0);
    }
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use crate::fs::{MountProfile, Side, SimFs};
    use rusqlite::{ffi, Connection, OpenFlags};
    use std::path::Path;

    /// A read-write connection to `path` (under `/s`) on the host side of `fs`.
    fn open_on(fs: &SimFs, path: &str) -> Connection {
        fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
        Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            fs.vfs_name(Side::Host).as_str(),
        )
        .unwrap()
    }

    /// Every statement, including a transaction that spills its cache (a second journal header,
    /// a second draw) and one that fails, returns with no PRNG window held.
    #[test]
    fn no_prng_window_outlives_a_statement() {
        let fs = SimFs::new(MountProfile::PowerLoss, 3);
        let conn = open_on(&fs, "/s/a.db");
        let statements = [
            "PRAGMA journal_mode=DELETE",
            "PRAGMA synchronous=FULL",
            "PRAGMA cache_size=5",
            "CREATE TABLE t(x)",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) \
             INSERT INTO t SELECT randomblob(3000) FROM n",
            "BEGIN",
            "UPDATE t SET x = randomblob(3100)",
            "INSERT INTO t VALUES (1)",
            "COMMIT",
            "DELETE FROM t WHERE rowid % 2 = 0",
        ];
        for sql in statements {
            conn.execute_batch(sql).unwrap();
            assert!(!super::prng::window_held(), "after {sql}");
        }
        let counters = fs.counters();
        assert!(counters["fs.sqlite_prng_reseeds"] > 5, "{counters:?}");
        fs.inject(crate::FsFault::FsyncError { side: Side::Host });
        assert!(conn.execute_batch("UPDATE t SET x = 2").is_err());
        assert!(!super::prng::window_held(), "after a failed commit");
    }

    /// SQLite's memory statistics are off when the configuration call came early enough (it
    /// does in the `clawsim` binary, whose first SQLite call registers a VFS), and untouched
    /// otherwise.
    #[test]
    fn memory_statistics_are_off_when_configured_in_time() {
        let fs = SimFs::new(MountProfile::Bind, 5);
        let conn = open_on(&fs, "/s/m.db");
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(5000))")
            .unwrap();
        let (mut used, mut highwater) = (0i64, 0i64);
        // SAFETY: two valid out-pointers; MEMORY_USED is a process-wide counter.
        let rc = unsafe {
            ffi::sqlite3_status64(ffi::SQLITE_STATUS_MEMORY_USED, &mut used, &mut highwater, 0)
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        match super::disable_memory_statistics() {
            ffi::SQLITE_OK => assert_eq!((used, highwater), (0, 0)),
            rc => {
                assert_eq!(rc, ffi::SQLITE_MISUSE);
                assert!(used > 0, "statistics still on");
            }
        }
    }

    /// Each transaction creates and deletes a journal; none of them may pile up in memory.
    #[test]
    fn deleted_journals_are_freed() {
        let fs = SimFs::new(MountProfile::Bind, 4);
        fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
        let conn = Connection::open_with_flags_and_vfs(
            "/s/a.db",
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            fs.vfs_name(Side::Host).as_str(),
        )
        .unwrap();
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        for i in 0..100 {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        // The DB, and the last journal whose deletion is not yet durable.
        assert!(fs.with_state(|s| s.file_count()) <= 2);
        drop(conn);
        fs.crash_machine();
        assert!(fs.with_state(|s| s.file_count()) <= 2);
    }
}
