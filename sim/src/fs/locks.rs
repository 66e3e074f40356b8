//! SQLite's file locks (SHARED, RESERVED, PENDING, EXCLUSIVE) as a table per file.
//!
//! Locks are held per open handle, as POSIX advisory locks are per process: two connections
//! conflict as two processes would. Every holder belongs to a lock domain: one domain for the
//! whole machine on a bind mount, one per side under virtiofs, where a lock taken by the host
//! is invisible to the container (the failure mode the single-writer rule exists for).

use super::{MountProfile, Side};

/// A lock level, ordered as SQLite orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockLevel {
    None = 0,
    Shared = 1,
    Reserved = 2,
    Pending = 3,
    Exclusive = 4,
}

impl LockLevel {
    /// The level for SQLite's `SQLITE_LOCK_*` value (unknown values are `None`).
    pub fn from_sqlite(level: i32) -> LockLevel {
        match level {
            1 => LockLevel::Shared,
            2 => LockLevel::Reserved,
            3 => LockLevel::Pending,
            4 => LockLevel::Exclusive,
            _ => LockLevel::None,
        }
    }
}

/// Which holders can see each other's locks.
pub(crate) type LockDomain = u8;

/// The lock domain of `side`: one per side under virtiofs, one for the machine otherwise.
pub(crate) fn lock_domain(profile: MountProfile, side: Side) -> LockDomain {
    match profile {
        MountProfile::Virtiofs => 1 + side.index() as LockDomain,
        MountProfile::Bind | MountProfile::PowerLoss => 0,
    }
}

/// A lock request that conflicts with another holder.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Busy;

/// The locks on one file. A handful of holders at most, so a vector.
#[derive(Default)]
pub(crate) struct LockTable {
    holders: Vec<(u64, LockDomain, LockLevel)>,
}

impl LockTable {
    /// The level `handle` holds.
    pub(crate) fn level(&self, handle: u64) -> LockLevel {
        self.holders
            .iter()
            .find(|(h, _, _)| *h == handle)
            .map_or(LockLevel::None, |(_, _, level)| *level)
    }

    fn others_at_least(&self, handle: u64, domain: LockDomain, level: LockLevel) -> bool {
        self.holders
            .iter()
            .any(|(h, d, l)| *h != handle && *d == domain && *l >= level)
    }

    fn set(&mut self, handle: u64, domain: LockDomain, level: LockLevel) {
        self.holders.retain(|(h, _, _)| *h != handle);
        if level != LockLevel::None {
            self.holders.push((handle, domain, level));
        }
    }

    /// Raises `handle`'s lock to `want`, as unixLock does: SHARED waits for no PENDING or
    /// EXCLUSIVE; RESERVED for no other RESERVED; EXCLUSIVE first takes PENDING (kept even when
    /// it then returns busy, so new readers are held off) and then needs no other SHARED.
    pub(crate) fn lock(
        &mut self,
        handle: u64,
        domain: LockDomain,
        want: LockLevel,
    ) -> Result<(), Busy> {
        let have = self.level(handle);
        if have >= want {
            return Ok(());
        }
        match want {
            LockLevel::None => Ok(()),
            LockLevel::Shared => {
                if self.others_at_least(handle, domain, LockLevel::Pending) {
                    return Err(Busy);
                }
                self.set(handle, domain, LockLevel::Shared);
                Ok(())
            }
            LockLevel::Reserved => {
                if have < LockLevel::Shared
                    || self.others_at_least(handle, domain, LockLevel::Reserved)
                {
                    return Err(Busy);
                }
                self.set(handle, domain, LockLevel::Reserved);
                Ok(())
            }
            LockLevel::Pending | LockLevel::Exclusive => {
                if have < LockLevel::Shared {
                    return Err(Busy);
                }
                if have < LockLevel::Pending {
                    if self.others_at_least(handle, domain, LockLevel::Pending) {
                        return Err(Busy);
                    }
                    self.set(handle, domain, LockLevel::Pending);
                }
                if want == LockLevel::Pending {
                    return Ok(());
                }
                if self.others_at_least(handle, domain, LockLevel::Shared) {
                    return Err(Busy);
                }
                self.set(handle, domain, LockLevel::Exclusive);
                Ok(())
            }
        }
    }

    /// Lowers `handle`'s lock to at most `to` (SHARED or NONE).
    pub(crate) fn unlock(&mut self, handle: u64, domain: LockDomain, to: LockLevel) {
        if self.level(handle) > to {
            self.set(handle, domain, to);
        }
    }

    /// True when any holder in `domain` (this handle included) holds RESERVED or more.
    pub(crate) fn reserved(&self, domain: LockDomain) -> bool {
        self.holders
            .iter()
            .any(|(_, d, l)| *d == domain && *l >= LockLevel::Reserved)
    }

    /// Drops every lock of `handle` (closed, or its process died).
    pub(crate) fn release(&mut self, handle: u64) {
        self.holders.retain(|(h, _, _)| *h != handle);
    }

    /// Drops every lock (the machine went down).
    pub(crate) fn clear(&mut self) {
        self.holders.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockLevel::*;

    #[test]
    fn readers_share_and_a_writer_waits_for_them() {
        let mut t = LockTable::default();
        t.lock(1, 0, Shared).unwrap();
        t.lock(2, 0, Shared).unwrap();
        t.lock(1, 0, Reserved).unwrap();
        assert_eq!(t.lock(2, 0, Reserved), Err(Busy));
        assert_eq!(t.lock(1, 0, Exclusive), Err(Busy));
        assert_eq!(t.level(1), Pending);
        // Pending holds off new readers.
        assert_eq!(t.lock(3, 0, Shared), Err(Busy));
        t.unlock(2, 0, None);
        t.lock(1, 0, Exclusive).unwrap();
        assert!(t.reserved(0));
        t.unlock(1, 0, Shared);
        assert!(!t.reserved(0));
        t.lock(3, 0, Shared).unwrap();
    }

    #[test]
    fn separate_domains_do_not_see_each_other() {
        let mut t = LockTable::default();
        t.lock(1, 1, Shared).unwrap();
        t.lock(1, 1, Exclusive).unwrap();
        t.lock(2, 2, Shared).unwrap();
        t.lock(2, 2, Exclusive).unwrap();
        assert_eq!(t.level(1), Exclusive);
        assert_eq!(t.level(2), Exclusive);
        assert!(!t.reserved(3));
    }

    #[test]
    fn release_frees_a_dead_holder() {
        let mut t = LockTable::default();
        t.lock(1, 0, Shared).unwrap();
        t.lock(1, 0, Exclusive).unwrap();
        t.release(1);
        t.lock(2, 0, Shared).unwrap();
        t.lock(2, 0, Exclusive).unwrap();
    }
}
