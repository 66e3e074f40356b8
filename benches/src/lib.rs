//! clawsim-benches: what the protocol's operations cost on real SQLite, next to the reference
//! implementation's figures in `shared/BASELINE.md`.
//!
//! The benches (`benches/writes.rs`, `benches/loops.rs`) drive core's real code on the live Env
//! (real files, real clock, SQLite's default VFS): the host's router, delivery pass and sweep, the
//! agent-runner's poll step and its write path. This library holds what they share: where files
//! live ([`place`]), settled session histories built straight into the DBs ([`history`]), stand-ins
//! for the outside world ([`fakes`]), the timed operations themselves ([`rigs`]), raw-SQLite baselines and the disk commit-rate check
//! ([`raw`]), the reference figures ([`reference`]), and how big a run is ([`run_mode`]).
//!
//! Why a history is written directly rather than through the protocol: building 100,000 settled
//! messages through router, runner and delivery would take minutes of fsyncs; writing the same rows
//! with the same seq allocation in one transaction per file takes about a second, and the loops
//! under test cannot tell the difference.

pub mod fakes;
pub mod history;
pub mod place;
pub mod raw;
pub mod reference;
pub mod report;
pub mod rigs;
pub mod run_mode;
