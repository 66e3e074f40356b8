//! Test doubles for the host's tests: an Env over a temporary directory with a manual clock, a
//! fake container runtime that records what the host asked of it, a stand-in for the
//! agent-runner that writes `outbound.db` rows and acks the way a container would, and a
//! driver that runs one delivery pass with a scripted channel.
#![allow(dead_code)]

use clawsim_core::channel::{OutboundDelivery, SendError};
use clawsim_core::config::HostConfig;
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::host::{DeliveryStep, Host, InboundEvent, SessionInfo, SessionMode};
use clawsim_core::model::{InboundRow, OutboundRow, Route};
use clawsim_core::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use clawsim_core::time::{format_instant, parse_instant};
use clawsim_core::{Env, SessionPaths};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The instant every test starts at.
pub const START: &str = "2026-03-01T08:00:00Z";

#[path = "../common/mod.rs"]
mod common;
pub use common::TestEnv;

/// A TestEnv whose clock starts at [`START`].
pub fn test_env() -> Rc<TestEnv> {
    TestEnv::starting_at(parse_instant(START).unwrap(), 0x9e37_79b9_7f4a_7c15)
}

/// What the fake runtime was asked, and the states it reports.
#[derive(Debug, Default)]
pub struct RuntimeLog {
    pub states: BTreeMap<String, ContainerState>,
    pub starts: Vec<String>,
    pub kills: Vec<String>,
    pub stops: Vec<String>,
    /// When set, every start fails with this error.
    pub start_error: Option<String>,
}

/// A container runtime whose containers run the moment they are asked to.
#[derive(Clone, Default)]
pub struct FakeRuntime(pub Rc<RefCell<RuntimeLog>>);

impl FakeRuntime {
    pub fn state_of(&self, session_id: &str) -> ContainerState {
        let log = self.0.borrow();
        log.states
            .get(session_id)
            .copied()
            .unwrap_or(ContainerState::Stopped)
    }

    /// The container exits by itself (crash, or the test says so).
    pub fn exit(&self, session_id: &str) {
        self.0
            .borrow_mut()
            .states
            .insert(session_id.into(), ContainerState::Stopped);
    }

    pub fn starts(&self) -> Vec<String> {
        self.0.borrow().starts.clone()
    }

    pub fn kills(&self) -> Vec<String> {
        self.0.borrow().kills.clone()
    }

    pub fn stops(&self) -> Vec<String> {
        self.0.borrow().stops.clone()
    }
}

impl ContainerRuntime for FakeRuntime {
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        let mut log = self.0.borrow_mut();
        if let Some(error) = &log.start_error {
            return Err(error.clone());
        }
        log.starts.push(spec.session_id.clone());
        log.states
            .insert(spec.session_id.clone(), ContainerState::Running);
        Ok(())
    }

    fn state(&mut self, session_id: &str) -> ContainerState {
        self.state_of(session_id)
    }

    fn kill(&mut self, session_id: &str) -> Result<(), String> {
        let mut log = self.0.borrow_mut();
        log.kills.push(session_id.into());
        log.states
            .insert(session_id.into(), ContainerState::Stopped);
        Ok(())
    }

    fn stop(&mut self, session_id: &str) -> Result<(), String> {
        let mut log = self.0.borrow_mut();
        log.stops.push(session_id.into());
        log.states
            .insert(session_id.into(), ContainerState::Stopped);
        Ok(())
    }
}

/// A host over a [`TestEnv`] with a [`FakeRuntime`], reopenable as after a crash.
pub struct World {
    pub env: Rc<TestEnv>,
    pub runtime: FakeRuntime,
    pub config: HostConfig,
}

impl World {
    pub fn new() -> World {
        let env = test_env();
        let config = HostConfig::new(env.dir.path().join("data"));
        World {
            env,
            runtime: FakeRuntime::default(),
            config,
        }
    }

    pub fn open(&self) -> Host {
        Host::open(
            self.env.clone(),
            self.config.clone(),
            Box::new(self.runtime.clone()),
        )
        .unwrap()
    }

    /// A host with one agent group `ag-main` wired to messaging group `mg-chat`
    /// (`chat`, `room-1`) in `mode`.
    pub fn open_wired(&self, mode: SessionMode) -> Host {
        let mut host = self.open();
        host.add_agent_group("ag-main", "Main").unwrap();
        host.add_messaging_group("mg-chat", "chat", "room-1")
            .unwrap();
        host.wire("mg-chat", "ag-main", 0, mode).unwrap();
        host
    }
}

/// An inbound chat event for `room-1`.
pub fn chat(text: &str, thread_id: Option<&str>) -> InboundEvent {
    InboundEvent {
        channel_type: "chat".into(),
        platform_id: "room-1".into(),
        thread_id: thread_id.map(Into::into),
        kind: "chat".into(),
        content: serde_json::json!({"sender": "Ana", "senderId": "u1", "text": text}).to_string(),
    }
}

/// The route of `room-1`.
pub fn room_route() -> Route {
    Route {
        platform_id: Some("room-1".into()),
        channel_type: Some("chat".into()),
        thread_id: None,
    }
}

/// Plays the agent-runner of one session: the writer of `outbound.db`.
pub struct Agent {
    pub env: Rc<TestEnv>,
    pub paths: SessionPaths,
}

impl Agent {
    pub fn of(env: &Rc<TestEnv>, session: &SessionInfo) -> Agent {
        Agent {
            env: env.clone(),
            paths: session.paths.clone(),
        }
    }

    fn outbound(&self) -> Db {
        Db::open(
            &*self.env,
            &self.paths.outbound_db(),
            Schema::Outbound,
            Access::ReadWrite,
        )
        .unwrap()
    }

    /// Writes one `messages_out` row (odd seq) and returns its id.
    pub fn write(&self, kind: &str, route: Route, content: serde_json::Value) -> String {
        self.write_row(OutboundRow {
            id: self.env.new_id("out"),
            seq: None,
            in_reply_to: None,
            timestamp: format_instant(self.env.now_ms()),
            deliver_after: None,
            recurrence: None,
            kind: kind.into(),
            route,
            content: content.to_string(),
        })
    }

    pub fn write_row(&self, row: OutboundRow) -> String {
        let max_inbound = inbound_rows(&self.env, &self.paths)
            .iter()
            .filter_map(|r| r.seq)
            .max()
            .unwrap_or(0);
        let mut outbound = self.outbound();
        outbound
            .write(|tx| clawsim_core::seq::insert_outbound(tx, max_inbound, &row))
            .unwrap();
        row.id
    }

    /// A chat reply to `in_reply_to` in room-1.
    pub fn reply(&self, in_reply_to: &str, text: &str) -> String {
        self.write_row(OutboundRow {
            id: self.env.new_id("out"),
            seq: None,
            in_reply_to: Some(in_reply_to.into()),
            timestamp: format_instant(self.env.now_ms()),
            deliver_after: None,
            recurrence: None,
            kind: "chat".into(),
            route: room_route(),
            content: serde_json::json!({ "text": text }).to_string(),
        })
    }

    /// A system row asking the host for an action.
    pub fn system(&self, content: serde_json::Value) -> String {
        self.write("system", room_route(), content)
    }

    pub fn ack(&self, message_id: &str, status: &str) {
        let now = format_instant(self.env.now_ms());
        self.outbound()
            .write(|tx| {
                tx.execute(
                    "INSERT INTO processing_ack (message_id, status, status_changed)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT(message_id) DO UPDATE SET status = excluded.status,
                        status_changed = excluded.status_changed",
                    [message_id, status, &now],
                )
            })
            .unwrap();
    }

    pub fn touch_heartbeat(&self) {
        self.env.touch(&self.paths.heartbeat()).unwrap();
    }

    pub fn outbox_file(&self, message_out_id: &str, name: &str, bytes: &[u8]) {
        let dir = self.paths.outbox_for(message_out_id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Every `messages_in` row of a session, in seq order.
pub fn inbound_rows(env: &Rc<TestEnv>, paths: &SessionPaths) -> Vec<InboundRow> {
    let mut db = Db::open(
        &**env,
        &paths.inbound_db(),
        Schema::Inbound,
        Access::ReadOnly,
    )
    .unwrap();
    let sql = format!(
        "SELECT {} FROM messages_in ORDER BY seq",
        InboundRow::COLUMNS
    );
    db.read(|tx| {
        let mut stmt = tx.prepare(&sql)?;
        let rows = stmt.query_map([], InboundRow::from_row)?;
        rows.collect()
    })
    .unwrap()
}

pub fn inbound_row(env: &Rc<TestEnv>, paths: &SessionPaths, id: &str) -> InboundRow {
    inbound_rows(env, paths)
        .into_iter()
        .find(|row| row.id == id)
        .unwrap_or_else(|| panic!("no messages_in row {id}"))
}

/// `delivered` rows of a session: `id -> (status, reason)`.
pub fn delivered(
    env: &Rc<TestEnv>,
    paths: &SessionPaths,
) -> BTreeMap<String, (String, Option<String>)> {
    let mut db = Db::open(
        &**env,
        &paths.inbound_db(),
        Schema::Inbound,
        Access::ReadOnly,
    )
    .unwrap();
    db.read(|tx| {
        let mut stmt = tx.prepare("SELECT message_out_id, status, reason FROM delivered")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
        rows.collect()
    })
    .unwrap()
}

/// Runs one whole delivery pass, answering each send with `channel`; returns what was sent.
pub fn deliver(
    host: &mut Host,
    session_id: &str,
    mut channel: impl FnMut(&OutboundDelivery) -> Result<(), SendError>,
) -> Vec<OutboundDelivery> {
    let mut pass = host
        .begin_delivery(session_id)
        .unwrap()
        .expect("no other pass running");
    let mut sent = Vec::new();
    while let DeliveryStep::Send(delivery) = host.delivery_step(&mut pass).unwrap() {
        let outcome = channel(&delivery);
        sent.push(delivery);
        host.delivery_sent(&mut pass, outcome).unwrap();
    }
    host.end_delivery(pass);
    sent
}

/// A channel that takes everything.
pub fn accept(_: &OutboundDelivery) -> Result<(), SendError> {
    Ok(())
}

/// The texts of sent deliveries.
pub fn texts(sent: &[OutboundDelivery]) -> Vec<String> {
    sent.iter()
        .map(|d| {
            d.content
                .get("text")
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// Writes a `messages_in` row directly, as an older host (or a test's setup) would have.
pub fn insert_inbound(env: &Rc<TestEnv>, paths: &SessionPaths, row: &InboundRow) -> i64 {
    let mut db = Db::open(
        &**env,
        &paths.inbound_db(),
        Schema::Inbound,
        Access::ReadWrite,
    )
    .unwrap();
    db.write(|tx| clawsim_core::seq::insert_inbound(tx, row))
        .unwrap()
}

/// A pending task row due at `process_after`, recurring on `recurrence` if given.
pub fn task_row(id: &str, process_after: &str, recurrence: Option<&str>) -> InboundRow {
    InboundRow {
        id: id.into(),
        seq: None,
        kind: "task".into(),
        timestamp: START.into(),
        status: "pending".into(),
        process_after: Some(process_after.into()),
        recurrence: recurrence.map(Into::into),
        tries: 0,
        route: room_route(),
        content: serde_json::json!({"prompt": "do it"}).to_string(),
        series_id: Some(id.into()),
    }
}
