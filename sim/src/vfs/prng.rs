//! Keeping SQLite's process-global PRNG out of a world's determinism.
//!
//! SQLite draws from one PRNG per OS process. In a rollback-journal database the only draw is
//! the checksum nonce of each journal header (`writeJournalHdr`), which ends up in the journal's
//! bytes and so in crash images. Worlds running in parallel threads would interleave their draws
//! and each see bytes that depend on the other. `SQLITE_TESTCTRL_PRNG_SEED` reseeds that PRNG,
//! but process-wide, so a world reseeds it only inside a window where the next draw is its own,
//! and holds a process-wide lock for that window:
//!
//! - the window opens when SQLite opens a main journal (the header, and its draw, come next) or
//!   syncs one (a new header may follow, in a transaction that spills its cache);
//! - it closes at the next VFS call of that thread, whatever it is, except xDeviceCharacteristics
//!   and xSectorSize (which `writeJournalHdr` calls just before drawing) and xRandomness. In
//!   SQLite 3.50 every path from an opening call reaches another VFS call within the same API
//!   call, so a window never outlives the statement that opened it; dropping a SimFs closes a
//!   window its thread still holds, as a last resort.
//!
//! On opening, the PRNG is reseeded from the world's own stream; on closing, it is returned to
//! SQLite's default (seeded from the OS). Windows are re-entrant on one thread. A thread that
//! waits absurdly long for another's window panics rather than hang the test run.
//!
//! **What is and is not deterministic.** Journal nonces of every world are, whatever runs beside
//! it, as long as no thread draws outside a window: such a draw takes no lock, so it can land
//! inside another thread's window and shift that world's nonce. Draws outside windows are SQL
//! `random()` / `randomblob()`, WAL salts, random rowids after the largest rowid, VACUUM's temp
//! names (the core uses none of them; a WAL database in the simulation is consistent but its
//! WAL header salts are not reproducible), and FTS5's setup of every new connection. The last
//! one happens on every open, so the workspace builds SQLite without FTS5
//! (`LIBSQLITE3_FLAGS` in `.cargo/config.toml`) and [`require_no_open_time_draws`] refuses a
//! build that has it.

use rusqlite::ffi;
use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard, TryLockError};

static SQLITE_PRNG: Mutex<()> = Mutex::new(());

thread_local! {
    static HELD: RefCell<Option<MutexGuard<'static, ()>>> = const { RefCell::new(None) };
}

fn reseed(seed: u32) {
    // SAFETY: PRNG_SEED takes an int and a (null) connection; it only sets the seed and resets
    // the PRNG under SQLite's own PRNG mutex.
    unsafe {
        ffi::sqlite3_test_control(
            ffi::SQLITE_TESTCTRL_PRNG_SEED,
            seed as std::os::raw::c_int,
            std::ptr::null_mut::<ffi::sqlite3>(),
        );
    }
}

/// Panics when this SQLite was compiled with FTS5, whose setup of every new connection draws
/// from the PRNG outside any window (a connection opening in one thread would shift the journal
/// nonces of a world in another). Checked once per process, before the first VFS is registered.
pub(crate) fn require_no_open_time_draws() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        // SAFETY: takes a NUL-terminated option name and only reads the compile-time list.
        let fts5 = unsafe { ffi::sqlite3_compileoption_used(c"ENABLE_FTS5".as_ptr()) };
        assert_eq!(
            fts5, 0,
            "SQLite was built with FTS5, which breaks the determinism of worlds running in \
             parallel threads; build from the clawsim workspace, whose .cargo/config.toml sets \
             LIBSQLITE3_FLAGS=-USQLITE_ENABLE_FTS5"
        );
    });
}

/// Opens (or re-opens) this thread's window: takes the lock unless held, and reseeds SQLite's
/// PRNG with `seed` (non-zero) so the next draw is the world's own.
pub(crate) fn open_window(seed: u32) {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.is_none() {
            *held = Some(acquire());
        }
        reseed(seed);
    });
}

/// The process-wide window lock. Windows last microseconds; one held for millions of attempts
/// means a window outlived its statement, a bug worth a loud failure rather than a hang.
fn acquire() -> MutexGuard<'static, ()> {
    const ATTEMPTS_MAX: u64 = 50_000_000;
    for _ in 0..ATTEMPTS_MAX {
        match SQLITE_PRNG.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
    panic!(
        "SQLite PRNG window held by another thread far too long (a window outlived its statement)"
    );
}

/// Closes this thread's window if open: SQLite's PRNG goes back to its default, the lock is
/// released.
pub(crate) fn close_window() {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.is_some() {
            reseed(0);
            *held = None;
        }
    });
}

/// True when this thread holds a window.
#[cfg(test)]
pub(crate) fn window_held() -> bool {
    HELD.with(|held| held.borrow().is_some())
}
