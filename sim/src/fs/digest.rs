//! Hashes over what a SimFs holds and does: the write digest (every write and truncate, in
//! order) and the content hash (every visible path and file).
//!
//! Determinism tests compare these between runs of one seed; they must depend on nothing but
//! the seed, so they hash in operation order and path order, never in map order. One FNV-1a
//! also places the virtiofs cache slots (see [`super::cache`]).

/// The FNV-1a offset basis: the hash of nothing.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds `bytes` into `hash` (FNV-1a, 64 bits).
pub(crate) fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A hash of every write and truncate (file, offset or length, bytes), once enabled.
#[derive(Default)]
pub(crate) struct WriteDigest {
    hash: Option<u64>,
}

impl WriteDigest {
    /// Starts hashing; a digest already running goes on.
    pub(crate) fn enable(&mut self) {
        self.hash.get_or_insert(FNV_OFFSET);
    }

    /// The hash so far, `None` when never enabled.
    pub(crate) fn value(&self) -> Option<u64> {
        self.hash
    }

    pub(crate) fn record_write(&mut self, file_id: u64, offset: u64, data: &[u8]) {
        if let Some(hash) = &mut self.hash {
            *hash = fnv(
                fnv(fnv(*hash, &file_id.to_le_bytes()), &offset.to_le_bytes()),
                data,
            );
        }
    }

    pub(crate) fn record_truncate(&mut self, file_id: u64, len: u64) {
        if let Some(hash) = &mut self.hash {
            *hash = fnv(fnv(*hash, &file_id.to_le_bytes()), &len.to_le_bytes());
        }
    }
}

/// A hash of `entries` (path, and contents for a file), which must come in path order.
pub(crate) fn content_hash<'a>(entries: impl Iterator<Item = (&'a str, Option<Vec<u8>>)>) -> u64 {
    let mut hash = FNV_OFFSET;
    for (path, contents) in entries {
        hash = fnv(hash, path.as_bytes());
        if let Some(contents) = contents {
            hash = fnv(hash, &contents);
        }
    }
    hash
}
