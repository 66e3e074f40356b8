//! The real world behind the Env seam: the system clock, real files, the OS random source and
//! SQLite's default VFS. The only place in core that touches them.

use crate::env::{Env, Millis};
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Env of a live process.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveEnv;

impl LiveEnv {
    pub fn new() -> Self {
        LiveEnv
    }
}

fn system_time_ms(time: SystemTime) -> Millis {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_millis() as Millis,
        Err(before) => -(before.duration().as_millis() as Millis),
    }
}

impl Env for LiveEnv {
    fn now_ms(&self) -> Millis {
        system_time_ms(SystemTime::now())
    }

    fn random_u64(&self) -> u64 {
        let mut bytes = [0u8; 8];
        // The OS source does not fail on Linux; a zero id suffix would still be unique by time.
        let _ = getrandom::fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn vfs_name(&self) -> Option<String> {
        None
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        match fs::remove_dir_all(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        fs::write(path, data)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn mtime_ms(&self, path: &Path) -> io::Result<Option<Millis>> {
        match fs::metadata(path) {
            Ok(meta) => Ok(Some(system_time_ms(meta.modified()?))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn touch(&self, path: &Path) -> io::Result<()> {
        set_mtime(path, SystemTime::now())
    }
}

/// Creates the file if missing and sets its modification time.
fn set_mtime(path: &Path, time: SystemTime) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.set_modified(time)
}

fn system_time_of(ms: Millis) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

/// Real files and SQLite's default VFS, with a clock that moves only when told and seeded
/// randomness: for tests and benches that need exact, repeatable times and ids on real SQLite.
/// `touch` stamps files with the manual clock, so heartbeat times are exact too.
#[derive(Debug)]
pub struct ManualEnv {
    now_ms: std::cell::Cell<Millis>,
    random_state: std::cell::Cell<u64>,
}

impl ManualEnv {
    pub fn new(start_ms: Millis, seed: u64) -> Self {
        Self {
            now_ms: start_ms.into(),
            random_state: seed.into(),
        }
    }

    pub fn set_now_ms(&self, now_ms: Millis) {
        self.now_ms.set(now_ms);
    }

    pub fn advance_ms(&self, ms: Millis) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// Stamps a file as a writer with its own (maybe skewed) clock would; creates it if missing.
    pub fn set_mtime(&self, path: &Path, ms: Millis) -> io::Result<()> {
        set_mtime(path, system_time_of(ms))
    }
}

impl Env for ManualEnv {
    fn now_ms(&self) -> Millis {
        self.now_ms.get()
    }

    /// splitmix64 over a counter: deterministic, and different for every call.
    fn random_u64(&self) -> u64 {
        let state = self.random_state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.random_state.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn vfs_name(&self) -> Option<String> {
        None
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        LiveEnv.create_dir_all(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        LiveEnv.remove_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        LiveEnv.list_dir(path)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        LiveEnv.read_file(path)
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        LiveEnv.write_file(path, data)
    }

    fn exists(&self, path: &Path) -> bool {
        LiveEnv.exists(path)
    }

    fn mtime_ms(&self, path: &Path) -> io::Result<Option<Millis>> {
        LiveEnv.mtime_ms(path)
    }

    fn touch(&self, path: &Path) -> io::Result<()> {
        self.set_mtime(path, self.now_ms())
    }
}

/// Sleeps the calling thread until `wake_ms` on the real clock (the agent-runner's driver).
pub fn sleep_until_ms(wake_ms: Millis) {
    let now = LiveEnv.now_ms();
    if wake_ms > now {
        std::thread::sleep(std::time::Duration::from_millis((wake_ms - now) as u64));
    }
}
