//! Why a SimFs operation failed, as one small enum every part of the state shares.
//!
//! Kept apart so the parts that decide a failure (namespace, handles, faults) and the two
//! front ends that report it (the plain API as an `io::Error`, the VFS as a SQLite code) name
//! the same thing without depending on each other.

/// Why an operation failed; the plain API turns it into an `io::Error`, the VFS into a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsError {
    NotFound,
    NotADirectory,
    IsADirectory,
    AlreadyExists,
    ReadOnly,
    /// The process that opened the handle (or owns the VFS) has crashed.
    ProcessDead,
    DiskFull,
    FsyncFailed,
    Busy,
    /// An armed trap ([`super::FsTrap`]) failed the operation.
    Injected,
}
