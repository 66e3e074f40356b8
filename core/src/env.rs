//! The Env seam: the only way core reaches time, files, randomness and SQLite's VFS.
//!
//! Core never calls the wall clock, `std::fs` or a random source directly. The live world
//! implements [`Env`] with the real clock, real files and SQLite's default VFS
//! ([`crate::live::LiveEnv`]); the simulation implements it over its own clock, SimFs and a
//! VFS registered under [`Env::vfs_name`]. Each side of the protocol (host, one agent-runner)
//! has its own Env, so each side may have its own clock offset and its own view of a mount.

use crate::config::SessionLayout;
use std::io;
use std::path::{Path, PathBuf};

/// Milliseconds since the Unix epoch, UTC, as read from one side's clock.
pub type Millis = i64;

/// Everything core needs from the world outside the process.
pub trait Env {
    /// Now, on this side's clock.
    fn now_ms(&self) -> Millis;

    /// 64 random bits from this side's random source (seeded in the simulation).
    fn random_u64(&self) -> u64;

    /// The SQLite VFS every connection of this side is opened on; `None` means SQLite's default.
    fn vfs_name(&self) -> Option<String>;

    /// Creates a directory and its parents; an existing directory is not an error.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything in it; a missing directory is not an error.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Names of the entries of a directory, sorted, so callers never depend on listing order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Reads a whole file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Writes a whole file, replacing what was there.
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()>;

    /// True when a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;

    /// The file's modification time as recorded by the filesystem (which, on some mounts, is
    /// the writer's clock), or `None` when there is no such file.
    fn mtime_ms(&self, path: &Path) -> io::Result<Option<Millis>>;

    /// Creates the file if missing and sets its modification time to now.
    fn touch(&self, path: &Path) -> io::Result<()>;

    /// A fresh identifier with a readable prefix, e.g. `msg-1732400000000-3f9a2c`.
    fn new_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}-{}-{:08x}",
            self.now_ms(),
            self.random_u64() as u32
        )
    }

    /// Copies a file (through [`Env::read_file`] and [`Env::write_file`]).
    fn copy_file(&self, from: &Path, to: &Path) -> io::Result<()> {
        let data = self.read_file(from)?;
        self.write_file(to, &data)
    }
}

/// The one file of a session under [`SessionLayout::Single`].
pub const SESSION_DB: &str = "session.db";

/// Paths of one session folder, as one side sees it. The DB and heartbeat paths may be
/// overridden one by one (the agent binary's `CLAWSIM_INBOUND_DB` etc.).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionPaths {
    pub root: PathBuf,
    pub inbound_override: Option<PathBuf>,
    pub outbound_override: Option<PathBuf>,
    pub heartbeat_override: Option<PathBuf>,
    /// Split (`inbound.db`, `outbound.db`) or one `session.db` holding both.
    pub layout: SessionLayout,
}

impl SessionPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            ..Self::default()
        }
    }
    /// The file holding `messages_in` and `delivered`: `inbound.db`, or `session.db`.
    pub fn inbound_db(&self) -> PathBuf {
        self.inbound_override
            .clone()
            .unwrap_or_else(|| self.root.join(self.db_name("inbound.db")))
    }
    /// The file holding `messages_out` and `processing_ack`: `outbound.db`, or `session.db`.
    pub fn outbound_db(&self) -> PathBuf {
        self.outbound_override
            .clone()
            .unwrap_or_else(|| self.root.join(self.db_name("outbound.db")))
    }
    fn db_name<'a>(&self, split_name: &'a str) -> &'a str {
        match self.layout {
            SessionLayout::Split => split_name,
            SessionLayout::Single => SESSION_DB,
        }
    }
    pub fn heartbeat(&self) -> PathBuf {
        self.heartbeat_override
            .clone()
            .unwrap_or_else(|| self.root.join(".heartbeat"))
    }
    pub fn outbox(&self) -> PathBuf {
        self.root.join("outbox")
    }
    pub fn outbox_for(&self, message_out_id: &str) -> PathBuf {
        self.outbox().join(message_out_id)
    }
}
