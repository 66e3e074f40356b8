//! Errors that name the file, session or message involved.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", file.display())]
    Sqlite {
        file: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The file or path the error happened on, if it names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Sqlite { file, .. } => Some(file),
            Error::Io { path, .. } => Some(path),
            Error::Invalid(_) => None,
        }
    }

    /// True for errors that a later attempt may not see: a locked or busy database, or a
    /// read-only reader that found a hot journal the writer has not rolled back yet.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Sqlite {
                source: rusqlite::Error::SqliteFailure(failure, _),
                ..
            } => matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::ReadOnly
            ),
            _ => false,
        }
    }
}

/// Attaches the file a SQLite error happened on.
pub trait SqliteResultExt<T> {
    fn at(self, file: &Path) -> Result<T>;
}

impl<T> SqliteResultExt<T> for rusqlite::Result<T> {
    fn at(self, file: &Path) -> Result<T> {
        self.map_err(|source| Error::Sqlite {
            file: file.to_path_buf(),
            source,
        })
    }
}

/// Attaches the path an I/O error happened on.
pub trait IoResultExt<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
