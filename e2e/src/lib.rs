//! clawsim-e2e: the same core in real Docker containers, through bollard.
//!
//! The agent-runner is built as a static binary and put alone in an image `FROM scratch`
//! ([`image`]); [`DockerRuntime`] implements the core's container runtime on the engine
//! ([`runtime`]); [`engine`] holds the connection, labels, clean-up of leftovers and faults
//! injected from outside. The e2e tests in `tests/` run the live host against real containers in
//! a [`world::World`], which records each run from the test's vantage points ([`record`], the
//! files through [`files`]) and has it judged by the same oracle that judges the simulator's
//! runs (`clawsim_oracle::check`); [`bench`] measures the figures.
//!
//! **Invariants.** Every container this crate starts carries the label `clawsim.e2e=1`, its run id
//! and its owner process; containers of dead owners are removed when a process first uses the
//! engine, and a run's containers are removed when its runtime (or its test's world) is dropped.
//! Nothing here blocks on async work from the caller's thread: engine calls run on threads of
//! their own.

pub mod bench;
pub mod engine;
pub mod files;
pub mod image;
pub mod record;
pub mod runtime;
pub mod world;

pub use image::ensure_agent_image;
pub use runtime::{DockerOptions, DockerRuntime, LogArchive};
