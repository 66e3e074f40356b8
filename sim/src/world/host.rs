//! The host process: core's [`Host`] while the process runs, the incarnation it is in (events
//! of an older one are stale), its delivery passes between their steps, and the workload
//! messages offered while it was down.

use super::event::Timer;
use crate::env::SimEnv;
use crate::runtime::SimRuntime;
use clawsim_core::config::HostConfig;
use clawsim_core::host::{DeliveryPass, Host};
use std::collections::BTreeMap;
use std::rc::Rc;

/// A delivery pass between its steps.
pub(super) struct ActivePass {
    pub(super) session_id: String,
    pub(super) pass: DeliveryPass,
    pub(super) fast: bool,
}

pub(super) struct HostProcess {
    pub(super) config: HostConfig,
    pub(super) env: Rc<SimEnv>,
    /// `None` while the process is down.
    pub(super) running: Option<Host>,
    /// Bumped at every host start; events of an older host are stale.
    pub(super) incarnation: u64,
    /// A crash happened since the last restart, so the restart checks every DB's integrity.
    pub(super) crashed_since_restart: bool,
    pub(super) passes: BTreeMap<u64, ActivePass>,
    next_pass_id: u64,
    /// Workload messages offered while the host was down, offered again when it is back.
    pub(super) backlog: Vec<usize>,
}

impl HostProcess {
    /// A host process not started yet.
    pub(super) fn new(config: HostConfig, env: Rc<SimEnv>) -> Self {
        Self {
            config,
            env,
            running: None,
            incarnation: 0,
            crashed_since_restart: false,
            passes: BTreeMap::new(),
            next_pass_id: 0,
            backlog: Vec::new(),
        }
    }

    /// Opens the core's host over the world's files, as a starting process does.
    pub(super) fn open(&self, runtime: Box<SimRuntime>) -> clawsim_core::Result<Host> {
        Host::open(self.env.clone(), self.config.clone(), runtime)
    }

    /// Whether the host runs and is the incarnation `incarnation` belongs to.
    pub(super) fn is_current(&self, incarnation: u64) -> bool {
        self.running.is_some() && incarnation == self.incarnation
    }

    /// The period of one of the host's timers.
    pub(super) fn interval_ms(&self, timer: Timer) -> i64 {
        match timer {
            Timer::DeliveryFast => self.config.delivery_fast_interval_ms,
            Timer::DeliverySlow => self.config.delivery_slow_interval_ms,
            Timer::Sweep => self.config.sweep_interval_ms,
        }
    }

    /// Keeps a pass that has just begun; its id names it in the events of its sends.
    pub(super) fn add_pass(&mut self, active: ActivePass) -> u64 {
        let pass_id = self.next_pass_id;
        self.next_pass_id += 1;
        self.passes.insert(pass_id, active);
        pass_id
    }

    /// Ends pass `pass_id` (the host lets its session be delivered again).
    pub(super) fn end_pass(&mut self, pass_id: u64) {
        if let (Some(host), Some(active)) = (self.running.as_mut(), self.passes.remove(&pass_id)) {
            host.end_delivery(active.pass);
        }
    }
}
