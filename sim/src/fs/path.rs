//! Path normalisation: SimFs keys every entry by an absolute, `.`- and `..`-free path, so that
//! `/a/./b`, `/a/c/../b` and `a/b` (relative to `/`, the only working directory) are one file.

use std::path::{Component, Path, PathBuf};

/// The absolute normal form of `path`.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
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

/// The parent directory of a normalised path (`/` for `/` itself).
pub(crate) fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_spellings_normalize_to_one_path() {
        for spelling in ["/a/b", "a/b", "/a/./b", "/a/c/../b", "//a//b/"] {
            assert_eq!(
                normalize(Path::new(spelling)),
                PathBuf::from("/a/b"),
                "{spelling}"
            );
        }
        assert_eq!(normalize(Path::new("/..")), PathBuf::from("/"));
    }
}
