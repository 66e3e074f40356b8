//! The simulated container runtime, as the host sees it.
//!
//! The host holds a [`SimRuntime`] as its `Box<dyn ContainerRuntime>`; every call returns at once
//! and only records what the host asked for in a [`ContainerTable`] the world shares. After each
//! host step the world drains those requests: a start becomes a container that comes up after a
//! simulated latency (or fails to), a kill drops that container's agent-runner. The table outlives
//! any one host process, as Docker's containers outlive the host daemon that started them; only
//! a machine crash empties it.

use clawsim_core::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// What the host asked of the runtime, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeRequest {
    /// Start generation `generation` of the session's container.
    Start {
        spec: ContainerSpec,
        generation: u64,
    },
    /// Kill (or stop) the session's container.
    Kill { session_id: String, stop: bool },
}

/// One session's container as the runtime knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    pub state: ContainerState,
    /// Bumped at every start, so events of an earlier container are recognised as stale.
    pub generation: u64,
}

/// Every session's container, and the requests not yet handled by the world.
#[derive(Debug, Default)]
pub struct ContainerTable {
    containers: BTreeMap<String, ContainerRecord>,
    requests: Vec<RuntimeRequest>,
}

impl ContainerTable {
    /// The session's container state (`Stopped` when it never had one).
    pub fn state(&self, session_id: &str) -> ContainerState {
        self.containers
            .get(session_id)
            .map_or(ContainerState::Stopped, |c| c.state)
    }

    /// The session's container record.
    pub fn record(&self, session_id: &str) -> Option<&ContainerRecord> {
        self.containers.get(session_id)
    }

    /// True when `generation` is the session's current container and it is in `state`.
    pub fn is_current(&self, session_id: &str, generation: u64, state: ContainerState) -> bool {
        self.containers
            .get(session_id)
            .is_some_and(|c| c.generation == generation && c.state == state)
    }

    /// Sets the state of the session's current container.
    pub fn set_state(&mut self, session_id: &str, state: ContainerState) {
        if let Some(record) = self.containers.get_mut(session_id) {
            record.state = state;
        }
    }

    /// Sessions whose container is starting or running, in id order.
    pub fn live_sessions(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter(|(_, c)| c.state != ContainerState::Stopped)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Sessions whose container is running, in id order.
    pub fn running_sessions(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter(|(_, c)| c.state == ContainerState::Running)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Requests made since the last call, in order.
    pub fn take_requests(&mut self) -> Vec<RuntimeRequest> {
        std::mem::take(&mut self.requests)
    }

    /// Every container stops at once (a machine crash); pending requests die with the host.
    pub fn stop_all(&mut self) {
        for record in self.containers.values_mut() {
            record.state = ContainerState::Stopped;
        }
        self.requests.clear();
    }

    fn start(&mut self, spec: &ContainerSpec) {
        let record = self
            .containers
            .entry(spec.session_id.clone())
            .or_insert(ContainerRecord {
                state: ContainerState::Stopped,
                generation: 0,
            });
        if record.state != ContainerState::Stopped {
            return;
        }
        record.generation += 1;
        record.state = ContainerState::Starting;
        let generation = record.generation;
        self.requests.push(RuntimeRequest::Start {
            spec: spec.clone(),
            generation,
        });
    }

    fn kill(&mut self, session_id: &str, stop: bool) {
        let Some(record) = self.containers.get_mut(session_id) else {
            return;
        };
        if record.state == ContainerState::Stopped {
            return;
        }
        record.state = ContainerState::Stopped;
        self.requests.push(RuntimeRequest::Kill {
            session_id: session_id.to_string(),
            stop,
        });
    }
}

/// The host's handle on the shared [`ContainerTable`].
#[derive(Debug, Clone)]
pub struct SimRuntime {
    table: Rc<RefCell<ContainerTable>>,
}

impl SimRuntime {
    /// A handle on `table`.
    pub fn new(table: Rc<RefCell<ContainerTable>>) -> Self {
        Self { table }
    }
}

impl ContainerRuntime for SimRuntime {
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        self.table.borrow_mut().start(spec);
        Ok(())
    }

    fn state(&mut self, session_id: &str) -> ContainerState {
        self.table.borrow().state(session_id)
    }

    fn kill(&mut self, session_id: &str) -> Result<(), String> {
        self.table.borrow_mut().kill(session_id, false);
        Ok(())
    }

    fn stop(&mut self, session_id: &str) -> Result<(), String> {
        self.table.borrow_mut().kill(session_id, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(session_id: &str) -> ContainerSpec {
        ContainerSpec {
            session_id: session_id.into(),
            agent_group_id: "ag".into(),
            session_dir: "/data/sessions/ag/s".into(),
            env_vars: BTreeMap::new(),
        }
    }

    #[test]
    fn start_is_a_no_op_while_starting_or_running() {
        let table = Rc::new(RefCell::new(ContainerTable::default()));
        let mut runtime = SimRuntime::new(table.clone());
        runtime.start(&spec("s1")).unwrap();
        runtime.start(&spec("s1")).unwrap();
        assert_eq!(runtime.state("s1"), ContainerState::Starting);
        table.borrow_mut().set_state("s1", ContainerState::Running);
        runtime.start(&spec("s1")).unwrap();
        let requests = table.borrow_mut().take_requests();
        assert_eq!(requests.len(), 1);
        assert!(table.borrow().is_current("s1", 1, ContainerState::Running));
    }

    #[test]
    fn kill_then_start_makes_a_new_generation() {
        let table = Rc::new(RefCell::new(ContainerTable::default()));
        let mut runtime = SimRuntime::new(table.clone());
        runtime.start(&spec("s1")).unwrap();
        runtime.kill("s1").unwrap();
        runtime.kill("s1").unwrap();
        runtime.start(&spec("s1")).unwrap();
        let requests = table.borrow_mut().take_requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(table.borrow().record("s1").unwrap().generation, 2);
        assert_eq!(runtime.state("unknown"), ContainerState::Stopped);
    }
}
