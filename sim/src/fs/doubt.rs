//! The maybe-durable log: writes whose fate a fault or a crash left in doubt.
//!
//! Checkers must count a row neither as lost nor as surely kept when the transaction that wrote
//! it met an fsync error (some unsynced sectors may have reached the disk) or when a power cut
//! brought back the rollback journal whose unlink had committed it. Entries are logged without
//! a time (the state has no clock) and stamped later by [`super::Shared`].

use super::path::{database_of, NormalPath};
use super::{DoubtCause, MaybeDurable, Side};
use std::path::PathBuf;

#[derive(Default)]
pub(crate) struct DoubtLog {
    pub(crate) entries: Vec<MaybeDurable>,
}

impl DoubtLog {
    /// `side`'s sync of `file` failed (the `nth` fsync error of the world); `None` for a temp
    /// file.
    pub(crate) fn fsync_error(&mut self, side: Side, file: Option<&NormalPath>, nth: u64) {
        let file = file.map_or("", NormalPath::as_str);
        self.log(side, file, DoubtCause::FsyncError { nth });
    }

    /// A power loss undid `side`'s removal of `file`. A journal whose deletion (the commit of
    /// a rollback-journal transaction) did not reach the disk is back: its transaction will be
    /// rolled back although its COMMIT returned (SQLite documents it for synchronous=FULL;
    /// EXTRA syncs the directory and never leaves one). Other files are no doubt.
    pub(crate) fn removal_undone(&mut self, side: Side, file: &NormalPath) {
        if file.as_str().ends_with("-journal") {
            self.log(side, file.as_str(), DoubtCause::CommitNotDurable);
        }
    }

    fn log(&mut self, side: Side, file: &str, cause: DoubtCause) {
        self.entries.push(MaybeDurable {
            side,
            path: PathBuf::from(database_of(file)),
            file: PathBuf::from(file),
            at_ms: None,
            cause,
        });
    }

    /// Indexes and sides of the entries not yet stamped with a time.
    pub(crate) fn unstamped(&self) -> Vec<(usize, Side)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, m)| m.at_ms.is_none())
            .map(|(i, m)| (i, m.side))
            .collect()
    }
}
