//! `SimEnv`: core's [`Env`] seam, answered by the simulated world for one side.
//!
//! The host and every container each get their own `SimEnv`: time is that side's reading of the
//! world's [`SimClock`], files are SimFs as that side sees them (its cache, its locks, its clock
//! for mtimes), SQLite connections open on that process's own VFS (so a crash can kill exactly
//! that process's handles), and ids come from a random stream
//! forked from the run's seed for this process alone, so adding a process never shifts another
//! process's ids.

use crate::clock::SimClock;
use crate::fs::{FileAccess, Side, SimFs};
use crate::rng::SimRng;
use clawsim_core::{Env, Millis};
use std::cell::RefCell;
use std::io;
use std::path::Path;

/// One side's view of the simulated world.
pub struct SimEnv {
    side: Side,
    /// The process name SimFs knows this process by (its own VFS), `None` for the side's main
    /// process.
    process: Option<String>,
    fs: SimFs,
    clock: SimClock,
    rng: RefCell<SimRng>,
}

impl SimEnv {
    /// An Env for the main process of `side`, its randomness drawn from `rng`.
    pub fn new(side: Side, fs: SimFs, clock: SimClock, rng: SimRng) -> Self {
        Self {
            side,
            process: None,
            fs,
            clock,
            rng: RefCell::new(rng),
        }
    }

    /// An Env for the process named `process` on `side` (one container among several), with
    /// a VFS of its own so that it can crash alone.
    pub fn for_process(side: Side, process: &str, fs: SimFs, clock: SimClock, rng: SimRng) -> Self {
        Self {
            process: Some(process.to_string()),
            ..Self::new(side, fs, clock, rng)
        }
    }

    /// The side this Env belongs to.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Tells SimFs this process read or wrote the plain file `path` (§9.13 is judged from it).
    fn note(&self, path: &Path, written: bool) {
        self.fs.note_file_access(FileAccess {
            side: self.side,
            process: self.process.clone(),
            path: path.display().to_string(),
            written,
        });
    }
}

impl Env for SimEnv {
    fn now_ms(&self) -> Millis {
        self.clock.side_now_ms(self.side)
    }

    fn random_u64(&self) -> u64 {
        self.rng.borrow_mut().next_u64()
    }

    fn vfs_name(&self) -> Option<String> {
        Some(match &self.process {
            Some(process) => self.fs.process_vfs_name(self.side, process),
            None => self.fs.vfs_name(self.side),
        })
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.fs.create_dir_all(self.side, path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.fs.remove_dir_all(self.side, path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.fs.list_dir(self.side, path)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let data = self.fs.read_file(self.side, path)?;
        self.note(path, false);
        Ok(data)
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.fs.write_file(self.side, path, data)?;
        self.note(path, true);
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        self.fs.exists(self.side, path)
    }

    fn mtime_ms(&self, path: &Path) -> io::Result<Option<Millis>> {
        self.fs.mtime_ms(self.side, path)
    }

    fn touch(&self, path: &Path) -> io::Result<()> {
        self.fs.touch(self.side, path)
    }
}
