//! The session folder as the host creates and opens it (PROTOCOL §2).
//!
//! Creation is an idempotent *ensure*, run on every route and every wake, so a host that died
//! half-way through creating a folder finishes the job the next time it touches the session.
//! `outbox/` is made last and marks a complete folder: while it is missing, `outbound.db` is
//! opened read-write once more so its schema is (re)applied. After that the host opens
//! `outbound.db` read-only, always: the agent-runner is its single writer. (Under a design with
//! the single layout both are one `session.db`, which both sides open read-write.)

use super::Host;
use crate::config::Design;
use crate::db::{Access, Db, Schema};
use crate::env::{Env, SessionPaths};
use crate::error::IoResultExt;
use crate::Result;

/// What [`ensure_folder`] found and made.
struct Ensured {
    /// Some part of the folder was missing.
    repaired: bool,
    /// The `inbound.db` connection opened to (re)apply its schema, kept for the operation that
    /// follows (a new session's first message) instead of opening the file twice.
    inbound: Option<Db>,
}

/// Creates whatever part of the session folder is missing; a no-op for a complete folder.
fn ensure_folder(env: &dyn Env, paths: &SessionPaths, design: &Design) -> Result<Ensured> {
    let outbox = paths.outbox();
    env.create_dir_all(&paths.root).at(&paths.root)?;
    let complete = env.exists(&outbox);
    let inbound_missing = !env.exists(&paths.inbound_db());
    let outbound_missing = !env.exists(&paths.outbound_db());
    let inbound = if !complete || inbound_missing {
        Some(open_inbound(env, paths, design)?)
    } else {
        None
    };
    if !complete || outbound_missing {
        drop(Db::open_session(
            env,
            &paths.outbound_db(),
            Schema::Outbound,
            Access::ReadWrite,
            design,
        )?);
    }
    env.create_dir_all(&outbox).at(&outbox)?;
    Ok(Ensured {
        repaired: !complete || inbound_missing || outbound_missing,
        inbound,
    })
}

/// The session's `inbound.db`, read-write (the host is its writer), migrated to this build.
pub(crate) fn open_inbound(env: &dyn Env, paths: &SessionPaths, design: &Design) -> Result<Db> {
    let path = paths.inbound_db();
    Db::open_session(env, &path, Schema::Inbound, Access::ReadWrite, design)
}

/// The session's `outbound.db`, read-only. A missing file is an error naming it.
pub(crate) fn open_outbound(env: &dyn Env, paths: &SessionPaths, design: &Design) -> Result<Db> {
    let path = paths.outbound_db();
    Db::open_session(env, &path, Schema::Outbound, Access::ReadOnly, design)
}

impl Host {
    /// Ensures the session's folder (see [`ensure_folder`]). A folder found incomplete may
    /// have been removed under the host: its kept connections are on files no longer there,
    /// so they are closed.
    pub(super) fn ensure_session_folder(
        &mut self,
        session_id: &str,
        paths: &SessionPaths,
    ) -> Result<()> {
        let ensured = ensure_folder(&*self.env, paths, &self.config.design)?;
        if ensured.repaired {
            self.connections.close_session(session_id);
        }
        self.check_in(session_id, ensured.inbound, None);
        Ok(())
    }

    /// The session's `schema` file for one operation: a kept connection, or a new one
    /// (`inbound.db` read-write, `outbound.db` read-only).
    pub(super) fn check_out(
        &mut self,
        session_id: &str,
        paths: &SessionPaths,
        schema: Schema,
    ) -> Result<Db> {
        if let Some(db) = self.connections.check_out(session_id, schema) {
            return Ok(db);
        }
        match schema {
            Schema::Inbound => open_inbound(&*self.env, paths, &self.config.design),
            Schema::Outbound => open_outbound(&*self.env, paths, &self.config.design),
            Schema::Central | Schema::Session => Err(crate::Error::Invalid(
                "central.db is not a session file".into(),
            )),
        }
    }

    /// Keeps the connections of an operation that succeeded, for the next one.
    pub(super) fn check_in(&mut self, session_id: &str, inbound: Option<Db>, outbound: Option<Db>) {
        let files = [(Schema::Inbound, inbound), (Schema::Outbound, outbound)];
        for (schema, db) in files {
            if let Some(db) = db {
                self.connections.check_in(session_id, schema, db);
            }
        }
    }
}
