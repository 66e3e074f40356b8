//! Helpers shared by core's integration tests.
//!
//! [`TestEnv`] is a small [`Env`] over a temporary directory: real files (so real SQLite runs
//! on them), a manual clock that moves only when a test says so (so file mtimes, ack times and
//! provider think times are exact), and randomness from a seeded counter (so ids repeat from run
//! to run). Each test binary uses only part of this module.
#![allow(dead_code)]

pub mod runner;

use clawsim_core::live::ManualEnv;
use clawsim_core::{Env, Millis};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// 2026-01-01T00:00:00Z: where every test clock starts unless told otherwise.
pub const START_MS: Millis = 1_767_225_600_000;

/// A [`ManualEnv`] (real files, manual clock, seeded ids) that owns the tempdir its files live
/// in, so the directory lives exactly as long as the test's Env.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    env: ManualEnv,
}

impl TestEnv {
    /// A fresh tempdir, the clock at [`START_MS`], randomness seeded with 1.
    pub fn new() -> Rc<TestEnv> {
        Self::starting_at(START_MS, 1)
    }

    pub fn with_seed(seed: u64) -> Rc<TestEnv> {
        Self::starting_at(START_MS, seed)
    }

    pub fn starting_at(start_ms: Millis, seed: u64) -> Rc<TestEnv> {
        Rc::new(TestEnv {
            dir: tempfile::tempdir().expect("create tempdir"),
            env: ManualEnv::new(start_ms, seed),
        })
    }

    /// The tempdir every path of the test lives under.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path under the tempdir.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub fn set_now_ms(&self, now_ms: Millis) {
        self.env.set_now_ms(now_ms);
    }

    pub fn advance(&self, ms: Millis) {
        self.env.advance_ms(ms);
    }

    pub fn advance_ms(&self, ms: Millis) {
        self.env.advance_ms(ms);
    }

    /// Sets the clock to an instant written as text.
    pub fn set_now(&self, text: &str) {
        self.env
            .set_now_ms(clawsim_core::time::parse_instant(text).expect("an instant"));
    }

    /// Stamps a file as a writer with its own (maybe skewed) clock would.
    pub fn set_mtime(&self, path: &Path, ms: Millis) {
        self.env.set_mtime(path, ms).expect("set mtime");
    }
}

impl Env for TestEnv {
    fn now_ms(&self) -> Millis {
        self.env.now_ms()
    }
    fn random_u64(&self) -> u64 {
        self.env.random_u64()
    }
    fn vfs_name(&self) -> Option<String> {
        self.env.vfs_name()
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.env.create_dir_all(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.env.remove_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.env.list_dir(path)
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.env.read_file(path)
    }
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.env.write_file(path, data)
    }
    fn exists(&self, path: &Path) -> bool {
        self.env.exists(path)
    }
    fn mtime_ms(&self, path: &Path) -> io::Result<Option<Millis>> {
        self.env.mtime_ms(path)
    }
    fn touch(&self, path: &Path) -> io::Result<()> {
        self.env.touch(path)
    }
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("root", &self.root())
            .field("now_ms", &self.env.now_ms())
            .finish()
    }
}
