//! clawsim-core: the NanoClaw v2 session protocol (see PROTOCOL.md) on real SQLite.
//!
//! **Model.** A host routes inbound messages into per-session `inbound.db` files and delivers what
//! each session's agent-runner writes to its `outbound.db`; the agent-runner, one per container,
//! polls its inbound file, drives a provider, and writes replies. Each file has exactly one
//! writing side. Every long-running loop is a state machine whose `step` does bounded work and
//! says when it wants to run next; waits on the outside world (channel send, provider turn,
//! container start) split the step.
//!
//! **Seam.** Core reaches time, files, randomness and SQLite's VFS only through [`Env`]. It never
//! asks whether it is simulated: the live drivers in [`live`] give it the real clock, real files
//! and SQLite's default VFS; the simulator gives it its own, and runs these same steps.
//!
//! **Faults it must survive.** Any process may die between any two steps or inside one (SQLite's
//! transactions make each write atomic), clocks of host and container may differ, a container
//! may hang or be killed, a channel may fail, a provider may error or exit.

pub mod channel;
pub mod config;
pub mod db;
pub mod env;
pub mod error;
pub mod host;
pub mod inspect;
pub mod live;
pub mod model;
pub mod provider;
pub mod runner;
pub mod runtime;
pub mod seq;
pub mod time;

pub use env::{Env, Millis, SessionPaths};
pub use error::{Error, Result};
