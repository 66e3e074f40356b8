//! clawsim-oracle: the judge. The typed record of a run and the properties of PROTOCOL §9,
//! written once for both worlds.
//!
//! **Model.** A world — the simulator, or a real-Docker test — records what happened as typed
//! [`event::Event`]s at its own vantage points (users and channel, provider boundary, container
//! runtime, fault injector, the driver around each core step), plus an independent [`ledger`]
//! (what users sent, what the channel received, faults, integrity checks, the final files read
//! read-only). [`properties::check`] judges a [`properties::RunRecord`] made of those and nothing
//! else; each world says what it could not observe, and a property it cannot judge is counted
//! as such, never passed silently.
//!
//! **Independence.** A checker never asks the core what it did, never matches log text or
//! `Debug` output, and never calls the core's time or cron code: instants are parsed and
//! due-ness decided by [`time`] here. The core is a dependency for plain data types only (rows,
//! snapshots, settings, the mock script language).
//!
//! **Determinism.** Everything here is a pure function of the record: ordered maps only, no
//! clock, no randomness.

pub mod event;
pub mod fault;
pub mod ledger;
pub mod observed;
pub mod properties;
pub mod time;
pub mod trace;

pub use event::{Actor, Event};
pub use observed::Observed;
pub use properties::{check, Property, RunRecord, Verdict, Violation};
