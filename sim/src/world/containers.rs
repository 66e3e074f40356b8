//! The containers: the runtime's table, where the host's start and kill requests land, and the
//! agent-runner process inside each running container, with its own Env (VFS and random
//! stream) and its wake-up token.

use crate::clock::SimClock;
use crate::env::SimEnv;
use crate::fs::{Side, SimFs};
use crate::rng::SimRng;
use crate::runtime::{ContainerTable, RuntimeRequest, SimRuntime};
use clawsim_core::runner::AgentRunner;
use clawsim_core::runtime::ContainerSpec;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// An agent-runner process inside a running container.
pub(super) struct ContainerProcess {
    pub(super) generation: u64,
    pub(super) spec: ContainerSpec,
    pub(super) env: Rc<SimEnv>,
    /// `None` until `AgentRunner::start` succeeds (the process retries it).
    pub(super) runner: Option<AgentRunner>,
    /// The wake-up that is the runner's own; other (stale) wake-ups are ignored.
    pub(super) wake_token: u64,
    pub(super) hung_until_ms: Option<i64>,
    /// The runner's idle poll interval: after a failed poll it tries again this much later,
    /// as the live binary does.
    pub(super) poll_interval_idle_ms: i64,
}

#[derive(Default)]
pub(super) struct Containers {
    pub(super) table: Rc<RefCell<ContainerTable>>,
    /// The process of every running container, by session.
    pub(super) processes: BTreeMap<String, ContainerProcess>,
    next_wake_token: u64,
    /// Session folders whose outbound.db has been declared the container side's.
    declared_writers: BTreeSet<PathBuf>,
}

impl Containers {
    /// The host's runtime handle on the shared container table.
    pub(super) fn runtime_handle(&self) -> Box<SimRuntime> {
        Box::new(SimRuntime::new(self.table.clone()))
    }

    /// What the host asked of the runtime since the last call.
    pub(super) fn take_requests(&self) -> Vec<RuntimeRequest> {
        self.table.borrow_mut().take_requests()
    }

    /// A fresh wake-up token; every earlier one goes stale.
    pub(super) fn next_wake_token(&mut self) -> u64 {
        let token = self.next_wake_token;
        self.next_wake_token += 1;
        token
    }

    /// Whether `session_dir`'s outbound.db is declared the container side's only now.
    pub(super) fn declare_writer(&mut self, session_dir: &Path) -> bool {
        self.declared_writers.insert(session_dir.to_path_buf())
    }

    /// The running container `pick` (modulo their number), if any runs.
    pub(super) fn pick_running(&self, pick: u64) -> Option<String> {
        let running = self.table.borrow().running_sessions();
        if running.is_empty() {
            return None;
        }
        Some(running[(pick % running.len() as u64) as usize].clone())
    }
}

/// The name SimFs knows a session's container process by.
pub(super) fn container_process(session_id: &str) -> String {
    format!("agent-{session_id}")
}

/// A new Env for the container process of `session_id`, generation `generation`, with its own
/// VFS and random stream.
pub(super) fn container_env(
    fs: &SimFs,
    clock: &SimClock,
    rng: &SimRng,
    session_id: &str,
    generation: u64,
) -> Rc<SimEnv> {
    Rc::new(SimEnv::for_process(
        Side::Container,
        &container_process(session_id),
        fs.clone(),
        clock.clone(),
        rng.fork(&format!("container:{session_id}:{generation}")),
    ))
}
