//! The sweep (PROTOCOL §7 "Sweep", §8): acks copied into `messages_in`, due work woken, a dead
//! container's claims retried with backoff up to `max_tries`, and nothing else reset.
//!
//! The stories behind these: the reference judged staleness by comparing the heartbeat's mtime
//! (the container's clock) with its own clock, so a container whose clock ran behind looked dead
//! while it worked, and was killed mid-turn; and it retried a message whose answer had already
//! reached the user, who then got the answer twice. Here the host only asks "has the mtime
//! changed?" and measures silence on its own clock, and output that was delivered protects its
//! message from a retry. The tests play the container by writing acks and touching the
//! heartbeat, with a manual clock, so no test depends on real time.

mod host_support;

use clawsim_core::host::{Host, SessionInfo, SessionMode, SweepReport};
use clawsim_core::model::InboundRow;
use clawsim_core::runtime::ContainerState;
use clawsim_core::time::{format_instant, parse_instant};
use clawsim_core::Env;
use host_support::*;

const MINUTE_MS: i64 = 60_000;
const STALE_MS: i64 = 10 * MINUTE_MS;

struct Setup {
    world: World,
    host: Host,
    session: SessionInfo,
    agent: Agent,
    message_id: String,
}

fn setup() -> Setup {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("hello", None)).unwrap();
    let session = host.session(&routed.session_id).unwrap();
    let agent = Agent::of(&world.env, &session);
    Setup {
        world,
        host,
        session,
        agent,
        message_id: routed.message_id,
    }
}

impl Setup {
    fn sweep(&mut self) -> SweepReport {
        self.host.sweep_session(&self.session.id).unwrap()
    }

    fn row(&self, id: &str) -> InboundRow {
        inbound_row(&self.world.env, &self.session.paths, id)
    }

    fn advance(&self, ms: i64) {
        self.world.env.advance_ms(ms);
    }

    /// The container claims the message, beats once, then hangs until presumed dead.
    fn claim_and_hang(&mut self) -> SweepReport {
        self.agent.ack(&self.message_id, "processing");
        self.agent.touch_heartbeat();
        assert!(!self.sweep().presumed_dead, "a heartbeat just changed");
        self.advance(STALE_MS);
        self.sweep()
    }
}

#[test]
fn terminal_acks_are_copied_including_failed() {
    let mut s = setup();
    let failed = s.host.route(&chat("boom", None)).unwrap().message_id;
    let working = s.host.route(&chat("slow", None)).unwrap().message_id;
    s.agent.ack(&s.message_id, "completed");
    s.agent.ack(&failed, "failed");
    s.agent.ack(&working, "processing");

    let report = s.sweep();
    assert_eq!(report.acks_synced, 2);
    assert_eq!(s.row(&s.message_id).status, "completed");
    assert_eq!(s.row(&failed).status, "failed");
    assert_eq!(s.row(&working).status, "pending");
    assert_eq!(
        s.sweep().acks_synced,
        0,
        "terminal rows are not looked at again"
    );
}

#[test]
fn dead_container_claims_back_off_and_fail_after_max_tries() {
    let mut s = setup();
    for tries in 1..=5 {
        let report = s.claim_and_hang();
        assert!(report.presumed_dead);
        assert_eq!(report.retried, 1, "round {tries}");
        let row = s.row(&s.message_id);
        assert_eq!(row.tries, tries);
        let backoff_ms = 5_000 * (1 << tries);
        let expected = format_instant(s.world.env.now_ms() + backoff_ms);
        assert_eq!(row.process_after.as_deref(), Some(expected.as_str()));
        assert_eq!(
            s.world.runtime.state_of(&s.session.id),
            ContainerState::Stopped
        );
        assert_eq!(s.world.runtime.kills().len(), tries as usize);

        s.advance(backoff_ms - 1);
        assert!(!s.sweep().woke, "not before the backoff has passed");
        s.advance(1);
        assert!(s.sweep().woke, "due again: a new container is started");
    }
    let report = s.claim_and_hang();
    assert_eq!((report.retried, report.failed), (0, 1));
    let row = s.row(&s.message_id);
    assert_eq!((row.status.as_str(), row.tries), ("failed", 5));
}

#[test]
fn a_live_agent_with_a_skewed_clock_is_never_reset() {
    let mut s = setup();
    s.agent.ack(&s.message_id, "processing");
    let day_ms = 24 * 60 * MINUTE_MS;
    // The container's clock is a day behind, and once even steps backwards; what matters is
    // that the mtime keeps changing.
    let container_clock = [-day_ms, -day_ms + 5, -2 * day_ms, -day_ms + 10, 3 * day_ms];
    for offset_ms in container_clock {
        let mtime_ms = s.world.env.now_ms() + offset_ms;
        s.world.env.set_mtime(&s.agent.paths.heartbeat(), mtime_ms);
        let report = s.sweep();
        assert!(!report.presumed_dead);
        s.advance(STALE_MS + MINUTE_MS);
    }
    assert!(s.world.runtime.kills().is_empty());
    assert_eq!(s.row(&s.message_id).tries, 0);
}

#[test]
fn a_heartbeat_that_never_existed_counts_as_silence() {
    let mut s = setup();
    s.agent.ack(&s.message_id, "processing");
    assert!(!s.sweep().presumed_dead);
    s.advance(STALE_MS - 1);
    assert!(!s.sweep().presumed_dead);
    s.advance(1);
    assert!(s.sweep().presumed_dead);
}

#[test]
fn a_silent_container_without_claims_is_not_presumed_dead() {
    let mut s = setup();
    s.agent.ack(&s.message_id, "completed");
    s.agent.touch_heartbeat();
    s.sweep();
    s.advance(2 * STALE_MS);
    let report = s.sweep();
    assert!(!report.presumed_dead);
    assert!(s.world.runtime.kills().is_empty());
}

#[test]
fn a_message_whose_reply_was_delivered_is_completed_not_retried() {
    let mut s = setup();
    s.agent.reply(&s.message_id, "the answer");
    deliver(&mut s.host, &s.session.id, accept);
    let report = s.claim_and_hang();
    assert!(report.presumed_dead);
    assert_eq!((report.output_sent, report.retried), (1, 0));
    let row = s.row(&s.message_id);
    assert_eq!((row.status.as_str(), row.tries), ("completed", 0));
}

#[test]
fn every_message_of_an_answered_batch_is_protected_not_only_the_first() {
    let mut s = setup();
    let second = s
        .host
        .route(&chat("and another thing", None))
        .unwrap()
        .message_id;
    // The agent claimed both as one batch: replies cite the first, claim_batches maps the second.
    s.agent.ack(&second, "processing");
    clawsim_core::db::Db::open(
        &*s.world.env,
        &s.session.paths.outbound_db(),
        clawsim_core::db::Schema::Outbound,
        clawsim_core::db::Access::ReadWrite,
    )
    .unwrap()
    .write(|tx| {
        tx.execute(
            "INSERT INTO claim_batches (message_id, batch_id) VALUES (?1, ?2), (?2, ?2)",
            [&second, &s.message_id],
        )
    })
    .unwrap();
    s.agent.reply(&s.message_id, "one answer for both");
    deliver(&mut s.host, &s.session.id, accept);
    let report = s.claim_and_hang();
    assert_eq!((report.output_sent, report.retried), (2, 0));
    assert_eq!(s.row(&second).status, "completed");
}

#[test]
fn a_container_that_exits_with_claims_costs_each_claim_one_try_once() {
    let mut s = setup();
    s.sweep(); // wakes the container
    s.agent.ack(&s.message_id, "processing");
    s.agent.touch_heartbeat();
    // The turn crashes the agent process: its heartbeat is fresh, but it is gone.
    s.world.runtime.exit(&s.session.id);
    let report = s.sweep();
    assert!(report.presumed_dead);
    assert_eq!(report.retried, 1);
    assert_eq!(s.row(&s.message_id).tries, 1);
    // Until a new container clears the claim, later sweeps see the same claim: no new try.
    let report = s.sweep();
    assert_eq!((report.presumed_dead, report.retried), (false, 0));
    assert_eq!(s.row(&s.message_id).tries, 1);
    // The next container claims it again (a new claim) and dies too: a second try.
    s.advance(60_000);
    s.agent.ack(&s.message_id, "processing");
    s.world.runtime.exit(&s.session.id);
    assert_eq!(s.sweep().retried, 1);
    assert_eq!(s.row(&s.message_id).tries, 2);
}

#[test]
fn a_dead_containers_claim_costs_one_try_across_host_restarts() {
    // Story: the set of claims already counted as a try lived only in host memory, so a host
    // that restarted before the next container cleared a dead container's claims counted them
    // again, and repeated host crashes failed a message in fewer real tries than max_tries.
    // Method: one dead container's claim, then several host restarts with the claim still in
    // outbound.db (no container has run since); the count must stay at one try.
    let mut s = setup();
    s.sweep();
    s.agent.ack(&s.message_id, "processing");
    s.agent.touch_heartbeat();
    s.world.runtime.exit(&s.session.id);
    assert_eq!(s.sweep().retried, 1);
    assert_eq!(s.row(&s.message_id).tries, 1);
    for restart in 1..=3 {
        s.host = s.world.open();
        let report = s.sweep();
        assert_eq!(
            report.retried, 0,
            "restart {restart} counted the claim again"
        );
        assert_eq!(s.row(&s.message_id).tries, 1, "restart {restart}");
    }
    // A new claim of the same message (the next container's) is a new try, as before.
    s.advance(60_000);
    s.agent.ack(&s.message_id, "processing");
    s.world.runtime.exit(&s.session.id);
    assert_eq!(s.sweep().retried, 1);
    assert_eq!(s.row(&s.message_id).tries, 2);
}

/// Leaves a hot journal beside the session's outbound.db, as a container killed inside a write
/// transaction does: the files are copied while a transaction that spilled pages is open.
fn leave_hot_journal(s: &Setup) {
    let scratch = tempfile::tempdir().unwrap();
    let db_path = scratch.path().join("outbound.db");
    let env = clawsim_core::live::ManualEnv::new(0, 1);
    let mut db = clawsim_core::db::Db::open(
        &env,
        &db_path,
        clawsim_core::db::Schema::Outbound,
        clawsim_core::db::Access::ReadWrite,
    )
    .unwrap();
    db.write(|tx| {
        for i in 0..200 {
            tx.execute(
                "INSERT INTO processing_ack VALUES (?1, 'completed', 't')",
                [format!("old-{i}")],
            )?;
        }
        Ok(())
    })
    .unwrap();
    let conn = db.conn();
    conn.execute_batch("PRAGMA cache_size = 1; BEGIN IMMEDIATE;")
        .unwrap();
    conn.execute(
        "UPDATE processing_ack SET status_changed = hex(randomblob(300))",
        [],
    )
    .unwrap();
    let journal = scratch.path().join("outbound.db-journal");
    assert!(journal.exists(), "the transaction spilled into a journal");
    let target = s.session.paths.outbound_db();
    std::fs::copy(&db_path, &target).unwrap();
    std::fs::copy(&journal, target.with_file_name("outbound.db-journal")).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_hot_journal_in_outbound_does_not_keep_the_sweep_from_waking_a_container() {
    let mut s = setup();
    leave_hot_journal(&s);
    // The container that was writing died; its message is still pending.
    s.world.runtime.exit(&s.session.id);
    let report = s.sweep();
    assert!(
        report.woke,
        "the next container is what rolls the journal back"
    );
    assert_eq!(
        s.world.runtime.starts().len(),
        2,
        "started at route, then again"
    );
}

#[test]
fn a_container_hung_before_claiming_anything_is_replaced_without_a_try() {
    let mut s = setup();
    s.agent.touch_heartbeat();
    assert!(!s.sweep().presumed_dead);
    // The container stops beating before it claims the due message.
    s.advance(STALE_MS);
    let report = s.sweep();
    assert!(report.presumed_dead);
    assert_eq!(s.world.runtime.kills(), vec![s.session.id.clone()]);
    assert!(
        report.woke,
        "the next container is started in the same sweep"
    );
    assert_eq!(s.row(&s.message_id).tries, 0, "nothing was claimed: no try");
}

#[test]
fn an_idle_silent_container_without_due_work_is_left_alone() {
    let mut s = setup();
    s.agent.ack(&s.message_id, "completed");
    s.sweep();
    s.advance(2 * STALE_MS);
    assert!(!s.sweep().presumed_dead);
    assert!(s.world.runtime.kills().is_empty());
}

#[test]
fn a_reply_not_yet_delivered_does_not_protect_its_message() {
    let mut s = setup();
    s.agent.reply(&s.message_id, "written, not sent");
    let report = s.claim_and_hang();
    assert_eq!((report.output_sent, report.retried), (0, 1));
}

#[test]
fn the_next_container_gets_a_full_stale_period() {
    let mut s = setup();
    assert!(s.claim_and_hang().presumed_dead);
    // The claim stays until a new container clears it; the host must not count it again
    // before that container had its chance.
    s.advance(STALE_MS - 1);
    let report = s.sweep();
    assert!(!report.presumed_dead);
    assert_eq!(s.row(&s.message_id).tries, 1);
}

#[test]
fn due_work_wakes_a_stopped_container() {
    let mut s = setup();
    s.world.runtime.exit(&s.session.id);
    let report = s.sweep();
    assert!(report.woke);
    assert_eq!(s.world.runtime.starts().len(), 2);
    assert_eq!(
        s.host.container_state(&s.session.id),
        ContainerState::Running
    );
    assert!(!s.sweep().woke, "a running container is not woken again");
}

#[test]
fn future_work_in_any_text_form_waits_for_its_instant() {
    let mut s = setup();
    s.agent.ack(&s.message_id, "completed");
    s.sweep();
    s.world.runtime.exit(&s.session.id);
    // Now is 08:00:00Z; as text the space form sorts before it, as an instant it is 30 s away.
    let mut task = task_row("task-a", "2026-03-01 08:00:30", None);
    task.series_id = None;
    insert_inbound(&s.world.env, &s.session.paths, &task);
    assert!(!s.sweep().woke);
    s.advance(29_999);
    assert!(!s.sweep().woke);
    s.advance(1);
    assert!(s.sweep().woke);
    assert!(parse_instant("2026-03-01 08:00:30").is_some());
}

/// A `system` row left pending with no container up — an action's result after its turn
/// ended, an answer to a question whose turn died — is consumed only by a new container, so it
/// wakes one (§9.1: every inbound row ends completed or failed). While one runs, it is the
/// running turn's business and wakes nothing.
#[test]
fn a_pending_system_row_wakes_a_container_only_when_none_runs() {
    for content in [
        serde_json::json!({"action": "schedule_task", "status": "ok", "result": {}}),
        serde_json::json!({"questionId": "q-gone", "selectedOption": "yes"}),
    ] {
        let mut s = setup();
        s.agent.ack(&s.message_id, "completed");
        s.sweep();
        let mut row = task_row("sys-1", START, None);
        row.kind = "system".into();
        row.process_after = None;
        row.content = content.to_string();
        insert_inbound(&s.world.env, &s.session.paths, &row);
        assert!(
            !s.sweep().woke,
            "{content}: a running container is not woken"
        );
        s.world.runtime.exit(&s.session.id);
        assert!(s.sweep().woke, "{content}: nothing else would consume it");
    }
}

#[test]
fn missing_outbound_db_degrades_the_sweep_of_that_session_only() {
    let mut s = setup();
    s.host
        .add_messaging_group("mg-other", "chat", "room-2")
        .unwrap();
    s.host
        .wire("mg-other", "ag-main", 0, SessionMode::Shared)
        .unwrap();
    let mut other = chat("hi", None);
    other.platform_id = "room-2".into();
    let other = s.host.route(&other).unwrap();
    std::fs::remove_file(s.agent.paths.outbound_db()).unwrap();
    s.world.runtime.exit(&s.session.id);

    let results = s.host.sweep_all().unwrap();
    assert_eq!(results.len(), 2);
    for (session_id, result) in results {
        let report = result.unwrap();
        if session_id == s.session.id {
            assert!(report.outbound_unreadable);
            assert!(report.woke, "a new container recreates the file");
        } else {
            assert_eq!(session_id, other.session_id);
            assert!(!report.outbound_unreadable);
        }
    }
}

/// `sessions.last_active` follows the session's activity at the sweep after it (the router
/// does not write it: a commit per message would double the cost of routing one).
#[test]
fn the_sweep_records_the_last_activity_of_a_session() {
    let mut s = setup();
    let last_active = |s: &Setup| -> String {
        let central = s.world.config.data_dir.join("central.db");
        rusqlite::Connection::open(central)
            .unwrap()
            .query_row(
                "SELECT last_active FROM sessions WHERE id = ?1",
                [&s.session.id],
                |r| r.get(0),
            )
            .unwrap()
    };
    s.sweep();
    let first = last_active(&s);
    s.advance(MINUTE_MS);
    s.host.route(&chat("again", None)).unwrap();
    assert_eq!(last_active(&s), first, "routing alone does not write it");
    s.sweep();
    let second = last_active(&s);
    assert!(
        parse_instant(&second) > parse_instant(&first),
        "{first} → {second}"
    );
}
