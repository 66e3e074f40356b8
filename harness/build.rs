//! Build id: the crate version plus the git commit the build came from, read from `.git/HEAD`
//! without running git, so a build outside a checkout (a tarball, CI without history) still
//! works and says "unknown".

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let commit = git_commit(&root.join(".git")).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CLAWSIM_GIT_COMMIT={commit}");
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
}

/// The commit HEAD names: a detached hash, or the hash its ref points to (loose or packed).
fn git_commit(git_dir: &Path) -> Option<String> {
    let head = fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return Some(short(head));
    };
    let loose: PathBuf = git_dir.join(reference);
    if let Ok(hash) = fs::read_to_string(loose) {
        return Some(short(hash.trim()));
    }
    let packed = fs::read_to_string(git_dir.join("packed-refs")).ok()?;
    packed
        .lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(_, name)| *name == reference)
        .map(|(hash, _)| short(hash))
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}
