//! Where a bench keeps its files. BASELINE.md measured on disk (a directory under `/tmp` on the
//! machine's disk) and on tmpfs (`/dev/shm`); the benches use the same two places so the figures
//! compare. `CLAWSIM_BENCH_DISK_DIR` points the disk figures elsewhere (a machine whose `/tmp` is
//! itself a tmpfs).

use std::io;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A filesystem the benches write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// The machine's disk: every `synchronous=FULL` commit pays its fsyncs.
    Disk,
    /// Memory (`/dev/shm`): fsync is nearly free, so SQLite's own cost shows.
    Tmpfs,
}

impl Place {
    /// Both places, disk first.
    pub const ALL: [Place; 2] = [Place::Disk, Place::Tmpfs];

    /// The label used in bench ids and tables.
    pub fn label(self) -> &'static str {
        match self {
            Place::Disk => "disk",
            Place::Tmpfs => "tmpfs",
        }
    }

    /// The directory scratch directories are made in.
    pub fn root(self) -> PathBuf {
        match self {
            Place::Disk => std::env::var_os("CLAWSIM_BENCH_DISK_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp")),
            Place::Tmpfs => PathBuf::from("/dev/shm"),
        }
    }

    /// False when the place's root is missing (no `/dev/shm` on this machine).
    pub fn is_available(self) -> bool {
        self.root().is_dir()
    }

    /// The places this machine has; a missing one is announced once, not silently dropped.
    pub fn available() -> Vec<Place> {
        Place::ALL
            .into_iter()
            .filter(|place| {
                let available = place.is_available();
                if !available {
                    eprintln!(
                        "note: {} is not available ({} missing); its figures are skipped",
                        place.label(),
                        place.root().display()
                    );
                }
                available
            })
            .collect()
    }

    /// A fresh directory under this place, removed when dropped.
    pub fn scratch_dir(self, prefix: &str) -> TempDir {
        tempfile::Builder::new()
            .prefix(&format!("clawsim-bench-{prefix}-"))
            .tempdir_in(self.root())
            .unwrap_or_else(|e| {
                panic!(
                    "cannot make a scratch dir in {}: {e}",
                    self.root().display()
                )
            })
    }
}

/// Copies a directory tree (a history template into a bench's working directory).
pub fn copy_dir_all(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir_all(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
