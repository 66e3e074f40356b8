//! One session folder with an agent-runner in it and the test playing the host: the test writes
//! `inbound.db` directly (even seqs through `seq::insert_inbound`), steps the runner on the
//! manual clock, and reads what the runner wrote to `outbound.db` through its own read-only
//! connection.

use super::{TestEnv, START_MS};
use clawsim_core::config::RunnerConfig;
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::model::{kind, InboundRow, OutboundRow, Route};
use clawsim_core::runner::mock::{MockProvider, MockRecord, MockTranscript};
use clawsim_core::runner::{AgentRunner, RunnerStep};
use clawsim_core::time::format_instant;
use clawsim_core::{Env, Millis, SessionPaths};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::rc::Rc;

/// The admin sender id every world is configured with.
pub const ADMIN: &str = "admin-1";

/// The route every inbound message of a world comes from.
pub fn chat_route() -> Route {
    Route {
        platform_id: Some("chat-1".into()),
        channel_type: Some("test".into()),
        thread_id: Some("thread-1".into()),
    }
}

/// `chat` content from `sender_id` (named "User <id>").
pub fn chat_content(sender_id: &str, text: &str) -> String {
    json!({"sender": format!("User {sender_id}"), "senderId": sender_id, "text": text}).to_string()
}

pub struct RunnerWorld {
    pub env: Rc<TestEnv>,
    pub config: RunnerConfig,
    pub inbound: Option<Db>,
    pub runner: AgentRunner,
    pub transcript: MockTranscript,
    next_message: u64,
    /// When the runner last asked to be stepped again.
    next_wake_ms: Millis,
}

impl RunnerWorld {
    /// Inbound created (as the host would), the default mock, admin [`ADMIN`].
    pub fn new() -> RunnerWorld {
        Self::build(MockProvider::new(), |_| {}, true)
    }

    /// With a mock of the test's choosing and a config tweak.
    pub fn with(mock: MockProvider, tweak: impl FnOnce(&mut RunnerConfig)) -> RunnerWorld {
        Self::build(mock, tweak, true)
    }

    /// The runner starts before the host has created `inbound.db`.
    pub fn without_inbound() -> RunnerWorld {
        Self::build(MockProvider::new(), |_| {}, false)
    }

    fn build(
        mock: MockProvider,
        tweak: impl FnOnce(&mut RunnerConfig),
        create_inbound: bool,
    ) -> RunnerWorld {
        let env = TestEnv::new();
        let mut config = RunnerConfig::new(SessionPaths::new(env.path("session")));
        config.admin_user_id = Some(ADMIN.into());
        tweak(&mut config);
        env.create_dir_all(&config.paths.root).unwrap();
        let inbound = create_inbound.then(|| open_inbound(&env, &config.paths));
        let transcript = mock.transcript();
        let dyn_env: Rc<dyn Env> = env.clone();
        let runner = AgentRunner::start(dyn_env, config.clone(), Box::new(mock)).unwrap();
        RunnerWorld {
            env,
            config,
            inbound,
            runner,
            transcript,
            next_message: 0,
            next_wake_ms: START_MS,
        }
    }

    /// The host creates `inbound.db` (for a world made [`RunnerWorld::without_inbound`]).
    pub fn create_inbound(&mut self) {
        self.inbound = Some(open_inbound(&self.env, &self.config.paths));
    }

    /// A new container on the same session folder: the old runner is dropped mid-whatever.
    pub fn restart(&mut self, mock: MockProvider) {
        self.transcript = mock.transcript();
        let dyn_env: Rc<dyn Env> = self.env.clone();
        self.runner = AgentRunner::start(dyn_env, self.config.clone(), Box::new(mock)).unwrap();
        self.next_wake_ms = self.now_ms();
    }

    pub fn paths(&self) -> &SessionPaths {
        &self.config.paths
    }

    pub fn now_ms(&self) -> Millis {
        self.env.now_ms()
    }

    /// Writes a pending inbound row; returns its id.
    pub fn insert(&mut self, message_kind: &str, content: &str) -> String {
        self.insert_due(message_kind, content, None)
    }

    /// Writes a pending inbound row with `process_after`; returns its id.
    pub fn insert_due(
        &mut self,
        message_kind: &str,
        content: &str,
        process_after: Option<&str>,
    ) -> String {
        self.insert_full(message_kind, content, process_after, chat_route())
    }

    /// Writes a pending inbound row from the conversation `route`; returns its id.
    pub fn insert_routed(&mut self, message_kind: &str, content: &str, route: Route) -> String {
        self.insert_full(message_kind, content, None, route)
    }

    fn insert_full(
        &mut self,
        message_kind: &str,
        content: &str,
        process_after: Option<&str>,
        route: Route,
    ) -> String {
        self.next_message += 1;
        let row = InboundRow {
            id: format!("in-{}", self.next_message),
            seq: None,
            kind: message_kind.to_string(),
            timestamp: format_instant(self.now_ms()),
            status: "pending".into(),
            process_after: process_after.map(str::to_string),
            recurrence: None,
            tries: 0,
            route,
            content: content.to_string(),
            series_id: None,
        };
        let inbound = self.inbound.as_mut().expect("inbound.db created");
        inbound
            .write(|tx| clawsim_core::seq::insert_inbound(tx, &row))
            .unwrap();
        row.id
    }

    /// A chat message from `sender_id`; returns its id.
    pub fn chat(&mut self, sender_id: &str, text: &str) -> String {
        self.insert(kind::CHAT, &chat_content(sender_id, text))
    }

    /// The seq the host gave an inbound row.
    pub fn inbound_seq(&mut self, id: &str) -> i64 {
        let inbound = self.inbound.as_mut().unwrap();
        inbound
            .read(|tx| {
                tx.query_row("SELECT seq FROM messages_in WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
            })
            .unwrap()
    }

    /// One step now, whenever the runner asked to be woken.
    pub fn step(&mut self) -> RunnerStep {
        let step = self.runner.step().expect("runner step");
        self.next_wake_ms = step.next_wake_ms;
        step
    }

    /// Steps the runner at the times it asks for (its wake-ups up to and including now + `ms`);
    /// the clock ends at exactly now + `ms`. Returns the exit code if the provider exited the
    /// process.
    pub fn run_for(&mut self, ms: Millis) -> Option<i32> {
        let end_ms = self.now_ms() + ms;
        for _ in 0..1_000_000 {
            if self.next_wake_ms > end_ms {
                self.env.set_now_ms(end_ms);
                return None;
            }
            self.env.set_now_ms(self.next_wake_ms.max(self.now_ms()));
            let step = self.step();
            if step.exit_code.is_some() {
                return step.exit_code;
            }
        }
        panic!("runner never went quiet");
    }

    /// Every `messages_out` row, in seq order.
    pub fn outbound(&self) -> Vec<OutboundRow> {
        let mut db = self.open_outbound();
        let sql = format!(
            "SELECT {} FROM messages_out ORDER BY seq",
            OutboundRow::COLUMNS
        );
        db.read(|tx| {
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map([], OutboundRow::from_row)?;
            rows.collect()
        })
        .unwrap()
    }

    /// The parsed content of every outbound row, in seq order.
    pub fn outbound_contents(&self) -> Vec<Value> {
        self.outbound()
            .iter()
            .map(OutboundRow::content_json)
            .collect()
    }

    /// `content.text` of every outbound row that has one, in seq order.
    pub fn texts(&self) -> Vec<String> {
        self.outbound_contents()
            .iter()
            .filter_map(|c| c.get("text").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    /// `processing_ack` as `id → status`.
    pub fn acks(&self) -> BTreeMap<String, String> {
        let mut db = self.open_outbound();
        db.read(|tx| {
            let mut stmt = tx.prepare("SELECT message_id, status FROM processing_ack")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .unwrap()
    }

    pub fn ack(&self, id: &str) -> Option<String> {
        self.acks().get(id).cloned()
    }

    /// Prompts and pushes the provider received, in order.
    pub fn provider_inputs(&self) -> Vec<String> {
        self.transcript
            .records()
            .into_iter()
            .filter_map(|record| match record {
                MockRecord::Query { prompt, .. } => Some(prompt),
                MockRecord::Push { text, .. } => Some(text),
                MockRecord::ToolResult { .. } => None,
            })
            .collect()
    }

    /// Results the runner gave to tool calls, as `(tool name, result)`.
    pub fn tool_results(&self) -> Vec<(String, Result<Value, String>)> {
        self.transcript
            .records()
            .into_iter()
            .filter_map(|record| match record {
                MockRecord::ToolResult { name, result, .. } => Some((name, result)),
                _ => None,
            })
            .collect()
    }

    fn open_outbound(&self) -> Db {
        let path = self.paths().outbound_db();
        Db::open(&*self.env, &path, Schema::Outbound, Access::ReadOnly).unwrap()
    }
}

fn open_inbound(env: &TestEnv, paths: &SessionPaths) -> Db {
    Db::open(env, &paths.inbound_db(), Schema::Inbound, Access::ReadWrite).unwrap()
}
