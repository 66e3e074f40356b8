//! A live world's files as its record reads them: every session folder found on disk (not from
//! the central DB), both DBs opened read-only through the core's `inspect`, and `PRAGMA
//! integrity_check` of any DB file. Reading only: what the rows mean is the oracle's business.

use clawsim_core::config::SessionLayout;
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::env::SessionPaths;
use clawsim_core::inspect::{snapshot_session, SessionSnapshot};
use clawsim_core::live::LiveEnv;
use std::path::{Path, PathBuf};

/// One session folder `<data_dir>/sessions/<agent group>/<session>/` and both its DBs.
#[derive(Debug, Clone, Default)]
pub struct SessionFiles {
    pub session_id: String,
    pub agent_group_id: String,
    pub dir: PathBuf,
    pub snapshot: SessionSnapshot,
}

/// The paths of the session folder `dir` when its files are laid out as `layout`.
fn session_paths(dir: &Path, layout: SessionLayout) -> SessionPaths {
    let mut paths = SessionPaths::new(dir);
    paths.layout = layout;
    paths
}

/// Every session folder holding its host-written DB (`inbound.db`, or `session.db` in the
/// single layout), in path order.
pub fn read_sessions(data_dir: &Path, layout: SessionLayout) -> Result<Vec<SessionFiles>, String> {
    let env = LiveEnv::new();
    let mut sessions = Vec::new();
    for group in sorted_dirs(&data_dir.join("sessions"))? {
        for dir in sorted_dirs(&group)? {
            let paths = session_paths(&dir, layout);
            if !paths.inbound_db().exists() {
                continue;
            }
            let snapshot =
                snapshot_session(&env, &paths).map_err(|e| format!("{}: {e}", dir.display()))?;
            sessions.push(SessionFiles {
                session_id: file_name(&dir),
                agent_group_id: file_name(&group),
                dir,
                snapshot,
            });
        }
    }
    Ok(sessions)
}

/// Every DB file of the data folder with its schema: `central.db`, then each session's
/// `inbound.db` and (once an agent made it) `outbound.db`, or its one `session.db` in the single
/// layout.
pub fn db_files(
    data_dir: &Path,
    central_db: &Path,
    layout: SessionLayout,
) -> Result<Vec<(PathBuf, Schema)>, String> {
    let mut files = vec![(central_db.to_path_buf(), Schema::Central)];
    for group in sorted_dirs(&data_dir.join("sessions"))? {
        for dir in sorted_dirs(&group)? {
            let paths = session_paths(&dir, layout);
            let session = match layout {
                SessionLayout::Split => vec![
                    (paths.inbound_db(), Schema::Inbound),
                    (paths.outbound_db(), Schema::Outbound),
                ],
                SessionLayout::Single => vec![(paths.inbound_db(), Schema::Session)],
            };
            for (path, schema) in session {
                if path.exists() {
                    files.push((path, schema));
                }
            }
        }
    }
    Ok(files)
}

/// `PRAGMA integrity_check` of a DB file opened read-only: its rows (`["ok"]`), or the error
/// that prevented reading them.
pub fn integrity_of_file(path: &Path, schema: Schema) -> Vec<String> {
    let checked = Db::open(&LiveEnv::new(), path, schema, Access::ReadOnly)
        .and_then(|db| db.integrity_check());
    checked.unwrap_or_else(|e| vec![format!("{}: {e}", path.display())])
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}
