//! Rigs: one protocol operation, set up on a copied history, ready to be timed again and again.
//!
//! Each rig times only core's own code (router, runner step, delivery pass, sweep, write path)
//! and does the bench's bookkeeping — writing the next 10 messages, checking that they were
//! acked or sent, resetting a history that grew — outside the timed part. A history grows by the
//! rows each iteration adds; when it has grown by a tenth, the rig starts over from its template,
//! so a 1,000-row figure is a 1,000-to-1,100-row figure, never a 5,000-row one.

use crate::fakes::{InstantProvider, NoopAdapter};
use crate::history::{bench_route, chat_content, chat_event, HostCopy, HostTemplate};
use clawsim_core::channel::ChannelAdapter;
use clawsim_core::config::RunnerConfig;
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::host::{DeliveryStep, Host};
use clawsim_core::live::LiveEnv;
use clawsim_core::model::{kind, status, InboundRow, OutboundRow};
use clawsim_core::runner::AgentRunner;
use clawsim_core::time::format_instant;
use clawsim_core::{seq, Env, Result, SessionPaths};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// New messages per poll cycle and per delivery pass (BASELINE.md's 10).
pub const NEW_PER_CYCLE: usize = 10;

/// The most steps one poll cycle may take before the rig calls it stuck.
const STEPS_PER_CYCLE_MAX: u64 = 10_000;

fn growth_limit(history: usize) -> usize {
    (history / 10).max(NEW_PER_CYCLE)
}

fn sqlite_error(db: &Db) -> impl FnOnce(rusqlite::Error) -> clawsim_core::Error + '_ {
    move |source| clawsim_core::Error::Sqlite {
        file: db.path().to_path_buf(),
        source,
    }
}

/// Quoted, comma-separated ids for an `IN (…)` list (the rigs' own ids, never user text).
fn sql_id_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An agent-runner on a settled history, with the host's side played by the rig: it writes
/// pending messages into `inbound.db` and, after each cycle, marks them completed as the host's
/// sweep would.
pub struct PollRig {
    template: Rc<HostTemplate>,
    copy: HostCopy,
    runner: AgentRunner,
    inbound: Db,
    acks: Db,
    grown: usize,
    next_message: u64,
    /// Runner steps taken by all cycles so far.
    pub steps: u64,
    /// Cycles run so far.
    pub cycles: u64,
}

impl PollRig {
    pub fn new(template: Rc<HostTemplate>) -> Result<PollRig> {
        let copy = template.instantiate()?;
        let paths = copy.session_paths(0);
        let env = LiveEnv::new();
        let inbound = Db::open(
            &env,
            &paths.inbound_db(),
            Schema::Inbound,
            Access::ReadWrite,
        )?;
        let runner = start_runner(paths.clone())?;
        let acks = Db::open(
            &env,
            &paths.outbound_db(),
            Schema::Outbound,
            Access::ReadOnly,
        )?;
        Ok(PollRig {
            template,
            copy,
            runner,
            inbound,
            acks,
            grown: 0,
            next_message: 0,
            steps: 0,
            cycles: 0,
        })
    }

    /// One poll cycle: [`NEW_PER_CYCLE`] pending messages are written (untimed), then the
    /// runner is stepped until all of them are acked `completed`. Returns the time spent in
    /// `AgentRunner::step` only.
    pub fn cycle(&mut self) -> Result<Duration> {
        let ids = self.write_pending()?;
        let mut timed = Duration::ZERO;
        let mut steps = 0;
        loop {
            let started = Instant::now();
            self.runner.step()?;
            timed += started.elapsed();
            steps += 1;
            if self.completed_acks(&ids)? == ids.len() {
                break;
            }
            assert!(
                steps < STEPS_PER_CYCLE_MAX,
                "poll cycle stuck: {steps} steps and the 10 new messages are not all acked"
            );
        }
        self.steps += steps;
        self.cycles += 1;
        self.settle(&ids)?;
        Ok(timed)
    }

    /// One runner step with nothing pending.
    pub fn idle_step(&mut self) -> Result<Duration> {
        let started = Instant::now();
        self.runner.step()?;
        Ok(started.elapsed())
    }

    fn write_pending(&mut self) -> Result<Vec<String>> {
        let now_ms = LiveEnv::new().now_ms();
        let rows: Vec<InboundRow> = (0..NEW_PER_CYCLE)
            .map(|_| {
                self.next_message += 1;
                pending_row(self.next_message, now_ms)
            })
            .collect();
        self.inbound.write(|tx| {
            for row in &rows {
                seq::insert_inbound(tx, row)?;
            }
            Ok(())
        })?;
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    fn completed_acks(&mut self, ids: &[String]) -> Result<usize> {
        let sql = format!(
            "SELECT COUNT(*) FROM processing_ack WHERE status = 'completed' AND message_id IN ({})",
            sql_id_list(ids)
        );
        let count: i64 = self
            .acks
            .conn()
            .query_row(&sql, [], |r| r.get(0))
            .map_err(sqlite_error(&self.acks))?;
        Ok(count as usize)
    }

    /// What the host's sweep does with completed acks; then starts over if the history grew.
    fn settle(&mut self, ids: &[String]) -> Result<()> {
        let sql = format!(
            "UPDATE messages_in SET status = 'completed' WHERE id IN ({})",
            sql_id_list(ids)
        );
        self.inbound.write(|tx| tx.execute(&sql, []))?;
        self.grown += ids.len();
        if self.grown >= growth_limit(self.template.history()) {
            self.restart()?;
        }
        Ok(())
    }

    fn restart(&mut self) -> Result<()> {
        let (steps, cycles, next_message) = (self.steps, self.cycles, self.next_message);
        *self = PollRig::new(self.template.clone())?;
        (self.steps, self.cycles, self.next_message) = (steps, cycles, next_message);
        Ok(())
    }

    /// The copy's data directory (for tests).
    pub fn data_dir(&self) -> &std::path::Path {
        self.copy.data_dir()
    }

    /// Paths of the session the runner serves.
    pub fn session_paths(&self) -> SessionPaths {
        self.copy.session_paths(0)
    }
}

/// Starts an agent-runner with the instant provider. `query_idle_timeout_ms = 0` ends a query
/// as soon as it has answered everything, instead of 20 s of real time later.
pub fn start_runner(paths: SessionPaths) -> Result<AgentRunner> {
    let mut config = RunnerConfig::new(paths);
    config.query_idle_timeout_ms = 0;
    AgentRunner::start(Rc::new(LiveEnv::new()), config, Box::new(InstantProvider))
}

fn pending_row(n: u64, now_ms: i64) -> InboundRow {
    InboundRow {
        id: format!("bench-in-{n:08}"),
        seq: None,
        kind: kind::CHAT.into(),
        timestamp: format_instant(now_ms),
        status: status::PENDING.into(),
        process_after: None,
        recurrence: None,
        tries: 0,
        route: bench_route(None),
        content: chat_content(&format!("new message {n}")),
        series_id: None,
    }
}

/// A host on a settled history, with the agent-runner's side played by the rig: it writes
/// replies into `outbound.db` for the host's delivery pass to find.
pub struct DeliveryRig {
    template: Rc<HostTemplate>,
    copy: HostCopy,
    host: Host,
    outbound: Db,
    inbound_reader: Db,
    adapter: NoopAdapter,
    session_id: String,
    grown: usize,
    next_reply: u64,
}

impl DeliveryRig {
    pub fn new(template: Rc<HostTemplate>) -> Result<DeliveryRig> {
        let copy = template.instantiate()?;
        let paths = copy.session_paths(0);
        let env = LiveEnv::new();
        let host = copy.open_host()?;
        let outbound = Db::open(
            &env,
            &paths.outbound_db(),
            Schema::Outbound,
            Access::ReadWrite,
        )?;
        let inbound_reader =
            Db::open(&env, &paths.inbound_db(), Schema::Inbound, Access::ReadOnly)?;
        let mut rig = DeliveryRig {
            session_id: copy.session_ids()[0].clone(),
            template,
            copy,
            host,
            outbound,
            inbound_reader,
            adapter: NoopAdapter::new(crate::history::CHANNEL_TYPE),
            grown: 0,
            next_reply: 0,
        };
        // A host that has just opened starts at watermark 0 and reads the whole history once
        // (core/src/host/delivery.rs); that catch-up pass is not what a pass costs afterwards.
        rig.deliver()?;
        Ok(rig)
    }

    /// One delivery pass over the session after `new_replies` replies were written (untimed):
    /// `begin_delivery`, every `delivery_step`, a no-op channel send and `delivery_sent(Ok)` for
    /// each row handed out, `end_delivery`. Returns the time of the pass; panics when the pass
    /// did not hand out exactly the new replies.
    pub fn pass(&mut self, new_replies: usize) -> Result<Duration> {
        self.write_replies(new_replies)?;
        let started = Instant::now();
        let sent = self.deliver()?;
        let timed = started.elapsed();
        assert_eq!(
            sent, new_replies,
            "the delivery pass handed out {sent} rows, expected the {new_replies} new replies"
        );
        self.grown += new_replies;
        if self.grown >= growth_limit(self.template.history()) {
            self.restart()?;
        }
        Ok(timed)
    }

    fn deliver(&mut self) -> Result<usize> {
        let mut pass = self
            .host
            .begin_delivery(&self.session_id)?
            .expect("no other delivery pass runs on the bench session");
        let mut sent = 0;
        while let DeliveryStep::Send(delivery) = self.host.delivery_step(&mut pass)? {
            let outcome = self.adapter.send(&delivery);
            self.host.delivery_sent(&mut pass, outcome)?;
            sent += 1;
        }
        self.host.end_delivery(pass);
        Ok(sent)
    }

    fn write_replies(&mut self, count: usize) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        let max_inbound = seq::max_inbound_seq(self.inbound_reader.conn())
            .map_err(sqlite_error(&self.inbound_reader))?;
        let now = format_instant(LiveEnv::new().now_ms());
        let rows: Vec<OutboundRow> = (0..count)
            .map(|_| {
                self.next_reply += 1;
                reply_row(self.next_reply, &now)
            })
            .collect();
        self.outbound.write(|tx| {
            for row in &rows {
                seq::insert_outbound(tx, max_inbound, row)?;
            }
            Ok(())
        })
    }

    fn restart(&mut self) -> Result<()> {
        let next_reply = self.next_reply;
        // The old host and connections close before the new copy opens.
        *self = DeliveryRig::new(self.template.clone())?;
        self.next_reply = next_reply;
        Ok(())
    }

    /// The copy's data directory (for tests).
    pub fn data_dir(&self) -> &std::path::Path {
        self.copy.data_dir()
    }
}

fn reply_row(n: u64, timestamp: &str) -> OutboundRow {
    OutboundRow {
        id: format!("bench-out-{n:08}"),
        seq: None,
        in_reply_to: None,
        timestamp: timestamp.to_string(),
        deliver_after: None,
        recurrence: None,
        kind: kind::CHAT.into(),
        route: bench_route(None),
        content: serde_json::json!({ "text": format!("reply {n}") }).to_string(),
    }
}

/// A host on settled sessions, swept as its 60 s timer would.
pub struct SweepRig {
    _copy: HostCopy,
    host: Host,
    session_ids: Vec<String>,
}

impl SweepRig {
    pub fn new(template: &HostTemplate) -> Result<SweepRig> {
        let copy = template.instantiate()?;
        let host = copy.open_host()?;
        Ok(SweepRig {
            session_ids: copy.session_ids().to_vec(),
            _copy: copy,
            host,
        })
    }

    /// `sweep_session` of the first session.
    pub fn sweep_one(&mut self) -> Result<Duration> {
        let started = Instant::now();
        self.host.sweep_session(&self.session_ids[0])?;
        Ok(started.elapsed())
    }

    /// One sweep tick: `active_sessions`, then `sweep_session` of each. Panics when the host
    /// does not list every session of the template.
    pub fn sweep_all(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let sessions = self.host.active_sessions()?;
        for session in &sessions {
            self.host.sweep_session(&session.id)?;
        }
        let timed = started.elapsed();
        assert_eq!(sessions.len(), self.session_ids.len(), "active sessions");
        Ok(timed)
    }
}

/// A host routing chat messages into one existing session (shared mode).
pub struct HostWriteRig {
    _copy: HostCopy,
    host: Host,
    next_message: u64,
}

impl HostWriteRig {
    pub fn new(template: &HostTemplate) -> Result<HostWriteRig> {
        let copy = template.instantiate()?;
        let host = copy.open_host()?;
        Ok(HostWriteRig {
            _copy: copy,
            host,
            next_message: 0,
        })
    }

    /// One `Host::route` of a chat message into the existing session.
    pub fn route_one(&mut self) -> Result<()> {
        self.next_message += 1;
        let event = chat_event(None, &format!("routed {}", self.next_message));
        self.host.route(&event).map(|_| ())
    }
}

/// The agent-runner's write path for one outbound message: read `max(messages_in.seq)` on the
/// read-only inbound connection, then [`seq::insert_outbound`] in one write transaction on
/// `outbound.db` — both connections kept open, as the runner keeps them.
pub struct RunnerWriteRig {
    _dir: tempfile::TempDir,
    outbound: Db,
    inbound: Db,
    next_message: u64,
}

impl RunnerWriteRig {
    /// A bare session folder in `place`: `inbound.db` created by the rig (as the host would)
    /// and opened read-only, `outbound.db` opened read-write.
    pub fn new(place: crate::place::Place) -> Result<RunnerWriteRig> {
        let dir = place.scratch_dir("runner-write");
        let paths = SessionPaths::new(dir.path());
        let env = LiveEnv::new();
        drop(Db::open(
            &env,
            &paths.inbound_db(),
            Schema::Inbound,
            Access::ReadWrite,
        )?);
        let inbound = Db::open(&env, &paths.inbound_db(), Schema::Inbound, Access::ReadOnly)?;
        let outbound = Db::open(
            &env,
            &paths.outbound_db(),
            Schema::Outbound,
            Access::ReadWrite,
        )?;
        Ok(RunnerWriteRig {
            _dir: dir,
            outbound,
            inbound,
            next_message: 0,
        })
    }

    /// Writes one reply; returns its seq.
    pub fn write_out(&mut self) -> Result<i64> {
        self.next_message += 1;
        let row = reply_row(self.next_message, &format_instant(LiveEnv::new().now_ms()));
        let max_inbound =
            seq::max_inbound_seq(self.inbound.conn()).map_err(sqlite_error(&self.inbound))?;
        self.outbound
            .write(|tx| seq::insert_outbound(tx, max_inbound, &row))
    }
}
