//! The names on the disk: which path is a directory, which a file (and which inode), in two
//! versions, what processes see and what reached stable storage, and the ordered journal of
//! changes between them.
//!
//! As on ext4 with `data=ordered`, namespace changes (create, delete, mkdir, rmdir) become
//! durable together and in order, at the next sync of any file or at a directory sync; a power
//! cut keeps a seeded prefix of them. Each change keeps the inodes' link counts, so a file is
//! freed the moment neither version names it (and no handle holds it).

use super::error::FsError;
use super::inode::{InodeId, Inodes, Layer};
use super::path::{NormalPath, NormalPathBuf};
use super::Side;
use crate::rng::SimRng;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    File(InodeId),
    Dir { mtime_ms: i64 },
}

/// A namespace change not yet known to be durable.
pub(crate) enum NsOp {
    Set(NormalPathBuf, Entry),
    /// A removal, and the side that did it.
    Remove(NormalPathBuf, Side),
}

type Names = BTreeMap<NormalPathBuf, Entry>;

/// The visible names again, hashed: SQLite asks whether a journal exists at the start of every
/// read transaction, and a hash lookup of a long path is several times cheaper than a walk
/// down the ordered map comparing it with a dozen keys that share its prefix. Only looked up,
/// never iterated (its order is not the paths' order); the hasher is fixed, not seeded.
type NameIndex = HashMap<NormalPathBuf, Entry, foldhash::fast::FixedState>;

/// Both versions of the namespace and the changes pending between them.
pub(crate) struct Namespace {
    visible: Names,
    /// Exactly `visible`'s entries: changed wherever `visible` is.
    visible_index: NameIndex,
    durable: Names,
    pub(crate) pending: Vec<NsOp>,
}

impl Namespace {
    /// Only `/`, durably.
    pub(crate) fn new() -> Namespace {
        let root_dir = Entry::Dir { mtime_ms: 0 };
        let root = NormalPath::ROOT.to_owned();
        Namespace {
            visible: BTreeMap::from([(root.clone(), root_dir)]),
            visible_index: index_of(&BTreeMap::from([(root.clone(), root_dir)])),
            durable: BTreeMap::from([(root, root_dir)]),
            pending: Vec::new(),
        }
    }

    pub(crate) fn entry(&self, path: &NormalPath) -> Option<Entry> {
        self.visible_index.get(path).copied()
    }

    pub(crate) fn durable_entry(&self, path: &NormalPath) -> Option<Entry> {
        self.durable.get(path).copied()
    }

    pub(crate) fn require_dir(&self, path: &NormalPath) -> Result<(), FsError> {
        match self.entry(path) {
            Some(Entry::Dir { .. }) => Ok(()),
            Some(Entry::File(_)) => Err(FsError::NotADirectory),
            None => Err(FsError::NotFound),
        }
    }

    pub(crate) fn file_inode(&self, path: &NormalPath) -> Result<InodeId, FsError> {
        match self.entry(path) {
            Some(Entry::File(id)) => Ok(id),
            Some(Entry::Dir { .. }) => Err(FsError::IsADirectory),
            None => Err(FsError::NotFound),
        }
    }

    /// Every visible entry, in path order.
    pub(crate) fn visible(&self) -> impl Iterator<Item = (&NormalPathBuf, &Entry)> {
        self.visible.iter()
    }

    /// `dir` and every visible entry inside it, in path order (a directory's descendants
    /// directly follow it: see [`super::path`]).
    fn visible_within<'a>(
        &'a self,
        dir: &'a NormalPath,
    ) -> impl Iterator<Item = (&'a NormalPathBuf, &'a Entry)> + 'a {
        self.visible
            .range::<NormalPath, _>((Bound::Included(dir), Bound::Unbounded))
            .take_while(move |(p, _)| dir.contains(p))
    }

    pub(crate) fn list_dir(&self, path: &NormalPath) -> Result<Vec<String>, FsError> {
        self.require_dir(path)?;
        Ok(self
            .visible_within(path)
            .skip(1)
            .filter(|(p, _)| p.parent() == path)
            .filter_map(|(p, _)| p.file_name().map(str::to_string))
            .collect())
    }

    /// Creates `path` and its missing parents as directories.
    pub(crate) fn create_dir_all(
        &mut self,
        path: &NormalPath,
        mtime_ms: i64,
        inodes: &mut Inodes,
    ) -> Result<(), FsError> {
        let mut missing = Vec::new();
        for dir in path.ancestors() {
            match self.entry(dir) {
                Some(Entry::Dir { .. }) => break,
                Some(Entry::File(_)) => return Err(FsError::NotADirectory),
                None => missing.push(dir.to_owned()),
            }
        }
        for dir in missing.into_iter().rev() {
            self.change(NsOp::Set(dir, Entry::Dir { mtime_ms }), inodes);
        }
        Ok(())
    }

    /// Removes directory `path` and everything in it, children before their parents (in
    /// reverse path order: what a power cut keeps of it is a prefix of that order).
    pub(crate) fn remove_dir_all(
        &mut self,
        side: Side,
        path: &NormalPath,
        inodes: &mut Inodes,
    ) -> Result<(), FsError> {
        match self.entry(path) {
            None => return Ok(()),
            Some(Entry::File(_)) => return Err(FsError::NotADirectory),
            Some(Entry::Dir { .. }) => {}
        }
        let doomed: Vec<NormalPathBuf> =
            self.visible_within(path).map(|(p, _)| p.clone()).collect();
        for victim in doomed.into_iter().rev() {
            self.change(NsOp::Remove(victim, side), inodes);
        }
        Ok(())
    }

    /// Makes `op` visible now and durable at the next commit.
    pub(crate) fn change(&mut self, op: NsOp, inodes: &mut Inodes) {
        apply(&mut self.visible, inodes, &op, Layer::Visible);
        match &op {
            NsOp::Set(path, entry) => {
                self.visible_index.insert(path.clone(), *entry);
            }
            NsOp::Remove(path, _) => {
                self.visible_index.remove(path);
            }
        }
        debug_assert_eq!(self.visible.len(), self.visible_index.len());
        self.pending.push(op);
    }

    /// Makes every pending change durable, in order (a journal commit of the filesystem: any
    /// fsync or directory sync does this, as on ext4 with data=ordered).
    pub(crate) fn commit_pending(&mut self, inodes: &mut Inodes) {
        let ops = std::mem::take(&mut self.pending);
        self.commit(&ops, inodes);
    }

    fn commit(&mut self, ops: &[NsOp], inodes: &mut Inodes) {
        for op in ops {
            apply(&mut self.durable, inodes, op, Layer::Durable);
        }
    }

    /// Power loss: a seeded prefix of the pending changes reached the disk, and what
    /// processes see is what the disk has. Returns the changes lost.
    pub(crate) fn crash(&mut self, rng: &mut SimRng, inodes: &mut Inodes) -> Vec<NsOp> {
        let mut pending = std::mem::take(&mut self.pending);
        let committed = rng.below(pending.len() as u64 + 1) as usize;
        self.commit(&pending[..committed], inodes);
        self.visible = self.durable.clone();
        self.visible_index = index_of(&self.visible);
        pending.split_off(committed)
    }

    /// The files among `lost` changes whose removal was lost: they are on the disk again,
    /// with the side that had removed them.
    pub(crate) fn removals_undone<'a>(
        &'a self,
        lost: &'a [NsOp],
    ) -> impl Iterator<Item = (&'a NormalPathBuf, Side)> + 'a {
        lost.iter().filter_map(|op| match op {
            NsOp::Remove(file, side) => {
                matches!(self.durable.get(file), Some(Entry::File(_))).then_some((file, *side))
            }
            NsOp::Set(..) => None,
        })
    }
}

fn index_of(names: &Names) -> NameIndex {
    names
        .iter()
        .map(|(path, entry)| (path.clone(), *entry))
        .collect()
}

/// Applies one change to `names`, keeping the inodes' link counts of `layer`; an inode that
/// lost a link is freed if nothing names or holds it any more.
fn apply(names: &mut Names, inodes: &mut Inodes, op: &NsOp, layer: Layer) {
    let (old, new) = match op {
        NsOp::Set(path, entry) => (names.insert(path.clone(), *entry), Some(*entry)),
        NsOp::Remove(path, _) => (names.remove(path), None),
    };
    if let Some(Entry::File(id)) = new {
        if let Some(inode) = inodes.get_mut(id) {
            *inode.links_mut(layer) += 1;
        }
    }
    if let Some(Entry::File(id)) = old {
        if let Some(inode) = inodes.get_mut(id) {
            *inode.links_mut(layer) -= 1;
        }
        inodes.free_if_unused(id);
    }
}
