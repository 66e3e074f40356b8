//! The world: one seeded run of the unmodified core, from setup to the final ledger.
//!
//! A world owns SimFs, the clock, the host process (core's `Host`), one agent-runner per
//! running container (core's `AgentRunner` with its mock provider), the container table, the
//! channel and the users. [`run_world`] sets the host up, then pops events from the scheduler
//! one at a time: each event is one bounded step of one actor, recorded in the trace. Faults
//! strike at their planned times; after the active part of the run comes a quiet period —
//! faults off, hung containers resumed — long enough for everything due to be processed and
//! delivered; then both DBs of every session are read into the ledger.
//!
//! The parts, one subject each, from the bottom up (a part imports only parts above it in
//! this list, never this file):
//!
//! - `config.rs` — what determines a run ([`WorldConfig`], [`Timing`], the default scenario,
//!   [`start_ms`], [`settle_ms`], [`sim_host_config`]); `outcome.rs` — what it produced
//!   ([`RunOutcome`]); `event.rs` — the scheduler's events.
//! - State, one part per subject: `host.rs` (the host process, its incarnation and delivery
//!   passes), `containers.rs` (the runtime's table and each container's agent-runner process),
//!   `armed.rs` (the fault injector's armed faults), `record.rs` (trace, ledger, counters,
//!   provider log, errors), `integrity.rs` (the disk as the run is judged).
//! - `state.rs` — `World`, composing those parts with the files, the clock, the choices and
//!   the queue.
//! - The actors' steps over `World`: `runners.rs` (the container side, and the runtime requests
//!   a host step leaves), `router.rs` (users and the router), `host_steps.rs` (the host's
//!   timers, delivery passes, sweep and restart), `inject.rs` (faults striking, firing, and the
//!   quiet period).
//! - `run.rs` — setup, the dispatch loop and the outcome ([`run_world`]).

mod armed;
mod config;
mod containers;
mod event;
mod host;
mod host_steps;
mod inject;
mod integrity;
mod outcome;
mod record;
mod router;
mod run;
mod runners;
mod state;

pub use config::{
    add_one_power_loss, design_by_name, host_config_of, profile_by_name, settle_ms,
    sim_host_config, sim_host_config_for, start_ms, Timing, WorldConfig, ADMIN_USER_ID, DATA_DIR,
    POWER_LOSS_KINDS,
};
pub use outcome::RunOutcome;
pub use run::run_world;
