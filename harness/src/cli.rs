//! What the `run`, `replay` and `scenarios` commands share at the edge of the process: logging
//! set up for a world, stdout that may be closed early, output paths checked before a run
//! starts, and commands a person can paste into any shell in any folder.
//!
//! Exit statuses of every command: 0 every property held (or every scenario met its
//! expectation), 1 a violation, 2 an error (bad input, IO).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit statuses, as `--help` and the README state them.
pub const EXIT_STATUS_HELP: &str = "Exit status: 0 every property held, 1 a violation, \
     2 an error (bad input, IO).";

/// Logs to stderr, filtered by `RUST_LOG` (else `default_filter`), coloured only when stderr is
/// a terminal and `NO_COLOR` is unset or empty. `wall_clock` is false while worlds run: their
/// log lines carry the simulated time as a field, and a wall-clock stamp beside it would only
/// mislead (and differ between two runs of one seed).
pub fn init_logging(default_filter: &str, wall_clock: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color);
    let _ = if wall_clock {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}

/// Set once stdout's reader has gone away.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout. A reader that went away (`clawsim replay 5 --trace | head`) is not
/// an error and no panic: from then on stdout is skipped, and the command ends with the status
/// its verdict gives (0 when every property held).
pub fn print_stdout(text: &str) -> Result<(), String> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(error) => Err(format!("writing to stdout: {error}")),
    }
}

/// `-` as an output path: stdout.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Checks, before anything runs, that a file can be written at `path` (its folder exists, it
/// is not a folder, it may be written), so a long run does not end in an IO error. Touches
/// nothing: an existing file keeps its contents, and no file is left behind.
pub fn check_writable_file(what: &str, path: &Path) -> Result<(), String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("{what} {shown}: is a folder, not a file"));
    }
    let folder = parent_folder(path);
    if !folder.is_dir() {
        return Err(format!(
            "{what} {shown}: folder {} does not exist",
            folder.display()
        ));
    }
    let probe = if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
    } else {
        tempfile::tempfile_in(&folder).map(drop)
    };
    probe.map_err(|e| format!("{what} {shown}: cannot write: {e}"))
}

/// Checks, before anything runs, that a folder exists or can be made at `path`, and that files
/// can be written in it. Makes nothing.
pub fn check_writable_folder(what: &str, path: &Path) -> Result<(), String> {
    let shown = path.display();
    if path.exists() && !path.is_dir() {
        return Err(format!("{what} {shown}: is a file, not a folder"));
    }
    let absolute = absolute(path)?;
    let existing = absolute
        .ancestors()
        .find(|a| a.exists())
        .ok_or_else(|| format!("{what} {shown}: no part of it exists"))?;
    if !existing.is_dir() {
        return Err(format!(
            "{what} {shown}: {} is a file, not a folder",
            existing.display()
        ));
    }
    tempfile::tempfile_in(existing).map(drop).map_err(|e| {
        format!(
            "{what} {shown}: cannot write in {}: {e}",
            existing.display()
        )
    })
}

/// Writes `text` to `path` through a temporary file in the same folder renamed over it, so a
/// reader (or a job killed mid-write) finds either the old file whole or the new one whole.
pub fn write_file_atomically(path: &Path, text: &str) -> Result<(), String> {
    let shown = path.display();
    let mut temporary = tempfile::NamedTempFile::new_in(parent_folder(path))
        .map_err(|e| format!("{shown}: cannot write beside it: {e}"))?;
    temporary
        .write_all(text.as_bytes())
        .and_then(|()| temporary.as_file().sync_all())
        .map_err(|e| format!("{shown}: {e}"))?;
    // A temporary file is private to its owner; the summary is for CI and colleagues to read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(temporary.path(), readable)
            .map_err(|e| format!("{shown}: {e}"))?;
    }
    temporary
        .persist(path)
        .map_err(|e| format!("{shown}: {}", e.error))?;
    Ok(())
}

/// `path` made absolute against the current folder (without resolving links), so a command
/// printed with it works from any folder.
pub fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The folder a file path lives in (`.` for a bare name).
fn parent_folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// This executable's absolute path, for commands printed to be pasted elsewhere (`clawsim` when
/// the system cannot say).
pub fn this_exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "clawsim".to_string())
}

/// `words` as one POSIX shell command line, each word quoted only when it needs it.
pub fn shell_command<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_command(&["/bin/clawsim", "replay", "/tmp/a b/seed-1-bind"]),
            "/bin/clawsim replay '/tmp/a b/seed-1-bind'"
        );
        assert_eq!(shell_command(&["it's"]), r"'it'\''s'");
        assert_eq!(shell_command(&[""]), "''");
    }

    #[test]
    fn output_paths_are_checked_without_touching_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("summary.json");
        assert!(check_writable_file("summary", &file).is_ok());
        assert!(!file.exists(), "the check left a file behind");
        std::fs::write(&file, "kept").unwrap();
        assert!(check_writable_file("summary", &file).is_ok());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept");
        let missing = dir.path().join("no/such/summary.json");
        let error = check_writable_file("summary", &missing).unwrap_err();
        assert!(error.contains("does not exist"), "{error}");
        assert!(check_writable_file("summary", dir.path()).is_err());
        assert!(check_writable_folder("artifacts", &dir.path().join("a/b")).is_ok());
        assert!(!dir.path().join("a").exists(), "the check made a folder");
        assert!(check_writable_folder("artifacts", &file).is_err());
    }
}
