//! Paths in SimFs's namespace: every entry is keyed by an absolute, `.`- and `..`-free path, so
//! that `/a/./b`, `/a/c/../b` and `a/b` (relative to `/`, the only working directory) are one
//! file.
//!
//! The namespace is looked up on every SQLite call that names a file (xAccess runs twice per
//! read transaction), so a key is plain text: [`NormalPathBuf`] owns it (behind an `Arc`, since
//! the same key sits in both namespaces, in pending changes and in open handles), [`NormalPath`]
//! borrows it. [`normalize`] borrows its input when it is already in normal form, the common
//! case, and only otherwise walks its components.
//!
//! **Order.** Keys sort as `std::path::Path` sorts them, component by component, which for
//! normal paths is byte order with `/` ranked below every other byte: `/a/b`, `/a/b/c`,
//! `/a/b-x`, `/a/bc`. So a directory's descendants directly follow it, and every walk of the
//! namespace (the content hash, `list_dir`, the order `remove_dir_all` removes in, which decides
//! what a power cut keeps of it) is in path order. Plain byte order is not: it puts `/a/b-x`
//! between `/a/b` and `/a/b/c`.
//!
//! Names are text: a path that is not valid UTF-8 is read lossily, as the VFS always did.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// A path in normal form, borrowed: `/`, or `/` followed by names joined by `/`, none of them
/// empty, `.` or `..`.
#[derive(PartialEq, Eq, Hash)]
#[repr(transparent)]
pub(crate) struct NormalPath(str);

/// A path in normal form, owned; clones share the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct NormalPathBuf(Arc<str>);

/// The normal form of `text`, borrowed from it when it already is one.
pub(crate) fn normalize(text: &str) -> Cow<'_, NormalPath> {
    if is_normal(text) {
        Cow::Borrowed(NormalPath::from_normal(text))
    } else {
        Cow::Owned(normalize_components(text))
    }
}

/// [`normalize`] for a name in bytes (a C string from SQLite, a path's OS string), read
/// lossily if it is not UTF-8.
pub(crate) fn normalize_bytes(bytes: &[u8]) -> Cow<'_, NormalPath> {
    match std::str::from_utf8(bytes) {
        Ok(text) => normalize(text),
        Err(_) => Cow::Owned(normalize(&String::from_utf8_lossy(bytes)).into_owned()),
    }
}

/// The normal form of a path from the plain file API.
pub(crate) fn normalize_path(path: &Path) -> Cow<'_, NormalPath> {
    normalize_bytes(path.as_os_str().as_encoded_bytes())
}

/// True when `text` is already in normal form. This runs on every SQLite call that names a
/// file, so one branch-free pass looks for what an empty, `.` or `..` name shows as (`//`,
/// `/./`, `/..`), and the names are read one by one only when it finds some (`/a/..b`).
/// The database a journal or WAL belongs to (any other path is its own database).
pub(crate) fn database_of(file: &str) -> &str {
    file.strip_suffix("-journal")
        .or_else(|| file.strip_suffix("-wal"))
        .unwrap_or(file)
}

fn is_normal(text: &str) -> bool {
    match text.as_bytes() {
        b"/" => true,
        [b'/', .., last] if *last != b'/' => {
            !text.ends_with("/.")
                && !text.ends_with("/..")
                && (!may_hold_odd_name(text) || names_are_normal(text))
        }
        _ => false,
    }
}

/// True when some `/` is followed by `/`, `./` or `..` (no early exit, so it vectorises).
fn may_hold_odd_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    let triples = bytes.iter().zip(&bytes[1..]).zip(&bytes[2..]);
    triples.fold(false, |found, ((first, second), third)| {
        let dot_name = (*second == b'.') & ((*third == b'/') | (*third == b'.'));
        found | ((*first == b'/') & ((*second == b'/') | dot_name))
    })
}

/// True when no name of the absolute `text` is empty, `.` or `..`.
fn names_are_normal(text: &str) -> bool {
    text[1..]
        .split('/')
        .all(|name| !matches!(name, "" | "." | ".."))
}

/// The slow path: resolves every `.`, `..` and empty name, as `Path::components` would.
fn normalize_components(text: &str) -> NormalPathBuf {
    let mut names: Vec<&str> = Vec::new();
    for name in text.split('/') {
        match name {
            "" | "." => {}
            ".." => {
                names.pop();
            }
            name => names.push(name),
        }
    }
    NormalPathBuf(format!("/{}", names.join("/")).into())
}

impl NormalPath {
    /// The root directory.
    pub(crate) const ROOT: &'static NormalPath = NormalPath::from_normal("/");

    /// `text`, which must already be in normal form.
    const fn from_normal(text: &str) -> &NormalPath {
        // SAFETY: `NormalPath` is a `repr(transparent)` wrapper of `str`.
        unsafe { &*(text as *const str as *const NormalPath) }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    fn is_root(&self) -> bool {
        &self.0 == "/"
    }

    /// The parent directory (`/` for `/` itself).
    pub(crate) fn parent(&self) -> &NormalPath {
        match self.0.rfind('/') {
            Some(0) | None => NormalPath::ROOT,
            Some(slash) => NormalPath::from_normal(&self.0[..slash]),
        }
    }

    /// The last name, `None` for `/`.
    pub(crate) fn file_name(&self) -> Option<&str> {
        let slash = self.0.rfind('/')?;
        Some(&self.0[slash + 1..]).filter(|name| !name.is_empty())
    }

    /// The path itself, then each of its ancestors up to `/`.
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = &NormalPath> {
        std::iter::successors(Some(self), |path| (!path.is_root()).then(|| path.parent()))
    }

    /// True when `other` is this path or lies inside it: `/a/b/c` is in `/a/b`, `/a/bc` and
    /// `/a/b-x` are not.
    pub(crate) fn contains(&self, other: &NormalPath) -> bool {
        if self.is_root() {
            return true;
        }
        match other.0.strip_prefix(&self.0) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl Ord for NormalPath {
    /// Byte order with `/` below every other byte: component order (see the module doc).
    fn cmp(&self, other: &NormalPath) -> Ordering {
        let (left, right) = (self.0.as_bytes(), other.0.as_bytes());
        let common = common_prefix_len(left, right);
        match (left.get(common), right.get(common)) {
            (Some(&l), Some(&r)) => (l != b'/', l).cmp(&(r != b'/', r)),
            _ => left.len().cmp(&right.len()),
        }
    }
}

/// The length of the longest common prefix of `left` and `right`, eight bytes at a time: the
/// keys of one world share long prefixes (`/data/sessions/ag0/sess-17...`), and a lookup
/// compares a dozen of them.
fn common_prefix_len(left: &[u8], right: &[u8]) -> usize {
    let word = |chunk: &[u8]| u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
    let words = left.chunks_exact(8).zip(right.chunks_exact(8));
    for (index, (l, r)) in words.enumerate() {
        let difference = word(l) ^ word(r);
        if difference != 0 {
            // Little-endian: the lowest differing byte is the first one.
            return index * 8 + (difference.trailing_zeros() / 8) as usize;
        }
    }
    let start = left.len().min(right.len()) / 8 * 8;
    let equal_tail = left[start..]
        .iter()
        .zip(&right[start..])
        .take_while(|(l, r)| l == r)
        .count();
    start + equal_tail
}

impl PartialOrd for NormalPath {
    fn partial_cmp(&self, other: &NormalPath) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl ToOwned for NormalPath {
    type Owned = NormalPathBuf;

    fn to_owned(&self) -> NormalPathBuf {
        NormalPathBuf(Arc::from(&self.0))
    }
}

impl fmt::Display for NormalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NormalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Deref for NormalPathBuf {
    type Target = NormalPath;

    fn deref(&self) -> &NormalPath {
        NormalPath::from_normal(&self.0)
    }
}

impl Borrow<NormalPath> for NormalPathBuf {
    fn borrow(&self) -> &NormalPath {
        self
    }
}

impl Ord for NormalPathBuf {
    fn cmp(&self, other: &NormalPathBuf) -> Ordering {
        NormalPath::cmp(self, other)
    }
}

impl PartialOrd for NormalPathBuf {
    fn partial_cmp(&self, other: &NormalPathBuf) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for NormalPathBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn owned(text: &str) -> NormalPathBuf {
        normalize(text).into_owned()
    }

    #[test]
    fn equivalent_spellings_normalize_to_one_path() {
        for spelling in [
            "/a/b",
            "a/b",
            "/a/./b",
            "/a/c/../b",
            "//a//b/",
            "./a/b/.",
            "/a/b/",
        ] {
            assert_eq!(normalize(spelling).as_str(), "/a/b", "{spelling}");
        }
        for spelling in ["/..", "", ".", "/", "a/..", "//"] {
            assert_eq!(normalize(spelling).as_str(), "/", "{spelling:?}");
        }
        assert_eq!(normalize("/a/.b/..c/...").as_str(), "/a/.b/..c/...");
        assert_eq!(normalize_bytes(b"/a/\xffb/../c").as_str(), "/a/c");
        assert_eq!(normalize_bytes(b"/a/\xffb").as_str(), "/a/\u{fffd}b");
    }

    #[test]
    fn a_normal_path_is_borrowed() {
        let normal = [
            "/",
            "/a",
            "/s/inbound.db-journal",
            "/s/.heartbeat",
            "/a/..b/...",
            "/a./b",
            "/.b",
        ];
        for text in normal {
            assert!(matches!(normalize(text), Cow::Borrowed(_)), "{text}");
        }
        let odd = [
            "a", "", "//", "/a/", "/a//b", "/a/./b", "/a/../b", "/a/.", "/a/..", "/.h/./x", "/.",
            "/..", "/../a",
        ];
        for text in odd {
            assert!(matches!(normalize(text), Cow::Owned(_)), "{text}");
        }
    }

    #[test]
    fn parents_names_and_ancestors() {
        let path = owned("/a/b/c");
        assert_eq!(path.parent().as_str(), "/a/b");
        assert_eq!(owned("/a").parent().as_str(), "/");
        assert_eq!(NormalPath::ROOT.parent().as_str(), "/");
        assert_eq!(path.file_name(), Some("c"));
        assert_eq!(NormalPath::ROOT.file_name(), None);
        let ancestors: Vec<&str> = path.ancestors().map(NormalPath::as_str).collect();
        assert_eq!(ancestors, ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(NormalPath::ROOT.ancestors().count(), 1);
    }

    #[test]
    fn a_directory_contains_its_descendants_only() {
        let dir = owned("/a/b");
        for inside in ["/a/b", "/a/b/c", "/a/b/c/d"] {
            assert!(dir.contains(&owned(inside)), "{inside}");
        }
        for outside in ["/a", "/a/bc", "/a/b-x", "/a/b.x", "/b", "/"] {
            assert!(!dir.contains(&owned(outside)), "{outside}");
        }
        assert!(NormalPath::ROOT.contains(&dir));
    }

    #[test]
    fn common_prefixes_are_measured_across_words() {
        let text = "/data/sessions/ag0/sess-1/inbound.db";
        for len in 0..=text.len() {
            let (left, right) = (&text[..len], format!("{}#", &text[..len]));
            assert_eq!(common_prefix_len(left.as_bytes(), right.as_bytes()), len);
            assert_eq!(common_prefix_len(text.as_bytes(), left.as_bytes()), len);
            let mut changed = text.as_bytes().to_vec();
            if len < text.len() {
                changed[len] ^= 0x40;
                assert_eq!(common_prefix_len(text.as_bytes(), &changed), len);
            }
        }
    }

    #[test]
    fn order_is_path_order() {
        let names = [
            "/", "/a", "/a/b", "/a/b/c", "/a/b/c-d", "/a/b-x", "/a/b.x", "/a/b0", "/a/bc",
            "/a/b-x/y", "/a-b", "/a.b/c", "/a/b/c/d", "/a b", "/b", "/a/B",
        ];
        assert_eq!(sorted_as_ours(&names), sorted_as_std_paths(&names));
    }

    fn sorted_as_ours(names: &[&str]) -> Vec<String> {
        names
            .iter()
            .map(|name| owned(name))
            .collect::<BTreeSet<_>>()
            .iter()
            .map(|path| path.as_str().to_string())
            .collect()
    }

    fn sorted_as_std_paths(names: &[&str]) -> Vec<String> {
        let paths: BTreeSet<PathBuf> = names.iter().map(PathBuf::from).collect();
        paths
            .iter()
            .map(|p| p.to_str().unwrap().to_string())
            .collect()
    }

    /// What `normalize` was before it had a fast path: one component at a time.
    fn normalize_by_components(text: &str) -> PathBuf {
        use std::path::Component;
        let mut out = PathBuf::from("/");
        for component in Path::new(text).components() {
            match component {
                Component::Normal(name) => out.push(name),
                Component::ParentDir => {
                    out.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn normal_form_and_order_match_std_paths(
            prefix in "[ab/]{0,20}",
            suffixes in proptest::collection::vec("[ab0./-]{0,12}", 1..8)
        ) {
            // A shared prefix, so comparisons run past the first eight-byte words.
            let texts: Vec<String> = suffixes.iter().map(|s| format!("{prefix}{s}")).collect();
            for text in &texts {
                let ours = normalize(text);
                proptest::prop_assert_eq!(ours.as_path(), normalize_by_components(text));
            }
            let names: Vec<String> = texts.iter().map(|t| normalize(t).as_str().to_string()).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            proptest::prop_assert_eq!(sorted_as_ours(&names), sorted_as_std_paths(&names));
        }
    }
}
