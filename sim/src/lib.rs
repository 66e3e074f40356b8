//! clawsim-sim: the simulated world that runs the unmodified core.
//!
//! **Model.** One process, one thread per world, no wall clock. SimFs holds every file and a
//! SQLite VFS over it serves the core's real SQL; [`clock::SimClock`] is the world's time, read
//! by each side through its own offset and drift; a seeded discrete-event [`scheduler`] runs the
//! actors — the host's router, delivery passes and sweep, one agent-runner per running container,
//! channel sends in flight, container starts, users, faults — one bounded step at a time, and
//! jumps to the next timer when all of them wait. Every choice comes from the seed or from a
//! [`tape`], so a run replays byte for byte, and its [`trace`] hash proves it.
//!
//! **Faults.** Planned faults (crashes and kills of host, containers and machine, power cuts in
//! the middle of a disk operation, disk and SQLite errors, slow and failing channel and
//! provider, clock skew and steps) strike during the active part of a run; then a quiet period
//! — faults off, hung containers resumed, as long as the protocol's timers may still owe work
//! ([`world::settle_ms`]) — lets everything due finish, so "eventually" is checked.
//!
//! **Architecture invariants.** Nothing inside a world reads the wall clock, spawns a thread or
//! iterates an unordered map. The core is driven only through its public API, exactly as the
//! live drivers drive it; the world never asks the core whether it is simulated. The world
//! never depends on the harness.

pub mod fs;
pub mod rng;
pub mod vfs;

pub use fs::{
    DoubtCause, FsFault, FsOp, FsTrap, MaybeDurable, MountProfile, PathMatch, Side, SimFs,
    TrapEffect, TrapId,
};
pub use rng::SimRng;

pub mod channel;
pub mod clock;
pub mod env;
pub mod faults;
pub mod provider;
pub mod runtime;
pub mod scheduler;
pub mod tape;
pub mod workload;

/// The record a world keeps lives in clawsim-oracle, shared with the real-Docker world.
pub use clawsim_oracle::{ledger, trace};
pub mod world;
