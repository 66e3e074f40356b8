//! What the disk holds when a run is judged: every DB file's integrity as its next writer would
//! find it (checked on a copy, so the world is left untouched), and the final state of every
//! session folder, found by walking the data folder rather than by asking the host.

use super::config::DATA_DIR;
use crate::env::SimEnv;
use crate::fs::{MountProfile, Side, SimFs};
use crate::ledger::{FinalSession, FinalState, IntegrityRecord, MaybeDurableRecord};
use clawsim_core::config::SessionLayout;
use clawsim_core::inspect::snapshot_session;
use clawsim_core::{Env, SessionPaths};
use std::path::{Path, PathBuf};

/// `PRAGMA integrity_check` of every DB file under the data folder at true time `now_ms`, as
/// its next writer would find it (see [`integrity_of_copy`]); `env` lists the folders.
pub(super) fn integrity_of_all(env: &dyn Env, fs: &SimFs, now_ms: i64) -> Vec<IntegrityRecord> {
    db_files(env, Path::new(DATA_DIR))
        .into_iter()
        .map(|file| IntegrityRecord {
            at_ms: now_ms,
            result: integrity_of_copy(fs, &file),
            file: file.display().to_string(),
        })
        .collect()
}

/// Both DBs of every session folder, found by walking the data folder with the host's `env`
/// (not by asking the host), plus every file's integrity and SimFs's single-writer record, at
/// true time `now_ms`.
pub(super) fn final_state(
    env: &SimEnv,
    fs: &SimFs,
    now_ms: i64,
    layout: SessionLayout,
) -> FinalState {
    let sessions = session_dirs(env, layout)
        .into_iter()
        .map(|(agent_group_id, session_id, dir)| {
            let mut paths = SessionPaths::new(dir.clone());
            paths.layout = layout;
            let (snapshot, error) = match snapshot_session(env, &paths) {
                Ok(snapshot) => (Some(snapshot), None),
                Err(error) => (None, Some(error.to_string())),
            };
            FinalSession {
                session_id,
                agent_group_id,
                dir: dir.display().to_string(),
                snapshot,
                error,
            }
        })
        .collect();
    FinalState {
        at_ms: now_ms,
        host_now_ms: env.now_ms(),
        sessions,
        integrity: integrity_of_all(env, fs, now_ms),
        single_writer_violations: fs.violations(),
        maybe_durable: fs
            .maybe_durable()
            .into_iter()
            .map(|m| MaybeDurableRecord {
                side: m.side.name().to_string(),
                path: m.path.display().to_string(),
                file: m.file.display().to_string(),
                at_ms: m.at_ms,
                cause: format!("{:?}", m.cause),
            })
            .collect(),
    }
}

/// `(agent group, session id, folder)` of every session folder under the data folder.
fn session_dirs(env: &dyn Env, layout: SessionLayout) -> Vec<(String, String, PathBuf)> {
    let sessions_dir = Path::new(DATA_DIR).join("sessions");
    let list = |dir: &Path| env.list_dir(dir).unwrap_or_default();
    list(&sessions_dir)
        .into_iter()
        .flat_map(|group| {
            let group_dir = sessions_dir.join(&group);
            list(&group_dir)
                .into_iter()
                .map(move |session| {
                    let dir = group_dir.join(&session);
                    (group.clone(), session, dir)
                })
                .collect::<Vec<_>>()
        })
        .filter(|(_, _, dir)| {
            let mut paths = SessionPaths::new(dir.clone());
            paths.layout = layout;
            env.exists(&paths.inbound_db())
        })
        .collect()
}

/// Every `*.db` file under `dir`, depth first, in name order.
fn db_files(env: &dyn Env, dir: &Path) -> Vec<PathBuf> {
    let Ok(names) = env.list_dir(dir) else {
        return Vec::new();
    };
    names
        .into_iter()
        .flat_map(|name| {
            let path = dir.join(&name);
            if name.ends_with(".db") {
                vec![path]
            } else {
                db_files(env, &path)
            }
        })
        .collect()
}

/// An empty SimFs with the same sector size as `fs`: SQLite sizes journal headers by the sector
/// size, so a hot journal is only read back as written on a disk with the same sectors.
fn scratch_like(fs: &SimFs) -> SimFs {
    // The sector size is drawn from the seed; a few seeds cover every size SimFs uses.
    (0..64)
        .map(|seed| SimFs::new(MountProfile::Bind, seed))
        .find(|scratch| scratch.sector_size() == fs.sector_size())
        .unwrap_or_else(|| SimFs::new(MountProfile::Bind, 0))
}

/// `PRAGMA integrity_check` of `file` as its next writer will find it: the file and the
/// journal or WAL beside it (whichever survived) are copied into a scratch SimFs and opened
/// read-write there, so a hot journal is rolled back, or the WAL replayed over a checkpoint cut
/// short, as the writer would. Checking a copy leaves the world untouched: no handle, lock,
/// counter or armed fault of its SimFs is used.
fn integrity_of_copy(fs: &SimFs, file: &Path) -> Vec<String> {
    use rusqlite::{Connection, OpenFlags};
    let Some(image) = fs.visible_image(Side::Host, file) else {
        return vec![format!("error: {} has vanished", file.display())];
    };
    let scratch = scratch_like(fs);
    let copy = Path::new("/check.db");
    let copied = scratch.write_file(Side::Host, copy, &image).and_then(|()| {
        ["-journal", "-wal"].iter().try_for_each(|suffix| {
            let beside = PathBuf::from(format!("{}{suffix}", file.display()));
            match fs.visible_image(Side::Host, &beside) {
                Some(bytes) => {
                    let copy_beside = PathBuf::from(format!("/check.db{suffix}"));
                    scratch.write_file(Side::Host, &copy_beside, &bytes)
                }
                None => Ok(()),
            }
        })
    });
    if let Err(error) = copied {
        return vec![format!("error: copying {}: {error}", file.display())];
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let vfs = scratch.vfs_name(Side::Host);
    let rows = Connection::open_with_flags_and_vfs(copy, flags, vfs.as_str()).and_then(|conn| {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    });
    rows.unwrap_or_else(|error| vec![format!("error: {error}")])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A hot journal of a database's first transaction (original size 0, no page records),
    /// as a power cut leaves it, written for a disk of `sector_size`-byte sectors.
    fn first_transaction_journal(sector_size: usize) -> Vec<u8> {
        let mut journal = vec![0u8; sector_size];
        journal[..8].copy_from_slice(&[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
        journal[12..16].copy_from_slice(&0x976d_2da3u32.to_be_bytes()); // checksum nonce
        journal[20..24].copy_from_slice(&(sector_size as u32).to_be_bytes());
        journal[24..28].copy_from_slice(&4096u32.to_be_bytes()); // page size
        journal
    }

    #[test]
    fn integrity_is_checked_after_rolling_back_a_hot_journal_on_any_sector_size() {
        let sector_sizes: BTreeSet<usize> = (0..64)
            .map(|seed| SimFs::new(MountProfile::Bind, seed).sector_size())
            .collect();
        assert!(sector_sizes.len() > 1, "{sector_sizes:?}");
        for sector_size in sector_sizes {
            let fs = (0..64)
                .map(|seed| SimFs::new(MountProfile::Bind, seed))
                .find(|fs| fs.sector_size() == sector_size)
                .unwrap();
            let file = Path::new("/s/inbound.db");
            fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
            // The first page never reached the disk; the journal says the file was empty.
            fs.write_file(Side::Host, file, &[0u8; 4096]).unwrap();
            let journal = first_transaction_journal(sector_size);
            fs.write_file(Side::Host, Path::new("/s/inbound.db-journal"), &journal)
                .unwrap();
            assert_eq!(
                integrity_of_copy(&fs, file),
                ["ok"],
                "sector size {sector_size}"
            );
            // Checking a copy leaves the world's files as they were.
            assert!(fs.exists(Side::Host, Path::new("/s/inbound.db-journal")));
        }
    }

    /// A WAL database whose checkpoint was cut short: page 1 already copied back into the
    /// main file, the rest of the transaction only in the WAL.
    fn checkpoint_cut_short(fs: &SimFs, file: &Path) -> rusqlite::Connection {
        fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
        let vfs = fs.vfs_name(Side::Host);
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_CREATE;
        let conn =
            rusqlite::Connection::open_with_flags_and_vfs(file, flags, vfs.as_str()).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t(x);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
             INSERT INTO t SELECT zeroblob(500) FROM n;
             PRAGMA wal_checkpoint(TRUNCATE);
             CREATE TABLE u(y);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
             INSERT INTO u SELECT zeroblob(500) FROM n;",
        )
        .unwrap();
        let wal = fs
            .visible_image(Side::Host, Path::new("/s/inbound.db-wal"))
            .unwrap();
        const PAGE: usize = 4096;
        let last_page_one = wal[32..]
            .chunks_exact(24 + PAGE)
            .rfind(|frame| frame[..4] == 1u32.to_be_bytes())
            .expect("the transaction rewrote page 1");
        let mut main = fs.visible_image(Side::Host, file).unwrap();
        main[..PAGE].copy_from_slice(&last_page_one[24..]);
        fs.write_file(Side::Host, file, &main).unwrap();
        conn
    }

    #[test]
    fn integrity_is_checked_after_replaying_the_wal_over_a_checkpoint_cut_short() {
        let fs = SimFs::new(MountProfile::Bind, 1);
        let file = Path::new("/s/inbound.db");
        let _writer = checkpoint_cut_short(&fs, file);
        assert_eq!(integrity_of_copy(&fs, file), ["ok"]);
        // Without its WAL, the same main file is malformed: the check needs the WAL.
        let alone = SimFs::new(MountProfile::Bind, 1);
        alone.create_dir_all(Side::Host, Path::new("/s")).unwrap();
        let main = fs.visible_image(Side::Host, file).unwrap();
        alone.write_file(Side::Host, file, &main).unwrap();
        assert_ne!(integrity_of_copy(&alone, file), ["ok"]);
    }
}
