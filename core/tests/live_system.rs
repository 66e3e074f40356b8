//! The live system end to end: the host daemon on the real clock and real files, each session's
//! agent-runner as a real `clawsim-agent` child process (ProcessRuntime), the scriptable mock
//! provider, and a memory channel standing in for the chat platform. These pin the user-visible
//! behaviours of PROTOCOL §5–§8 with every part real: a message gets its reply, follow-ups join a
//! running turn, commands, scheduled and recurring tasks, cancel, questions, files, and a killed
//! agent's message processed once by the next one.
//!
//! Intervals are tuned down (tens of ms) so the suite is quick; waits are bounded and generous
//! (an upper bound only), and no assertion is about timing.

use clawsim_core::channel::OutboundDelivery;
use clawsim_core::config::HostConfig;
use clawsim_core::host::{Host, InboundEvent, SessionInfo, SessionMode};
use clawsim_core::inspect::{snapshot_session, SessionSnapshot};
use clawsim_core::live::channels::{MemoryChannel, MemoryInbox};
use clawsim_core::live::host::{spawn_host, HostInput, LiveHostHandle};
use clawsim_core::live::process_runtime::ProcessRuntime;
use clawsim_core::live::LiveEnv;
use clawsim_core::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use clawsim_core::time::format_instant;
use clawsim_core::Env;
use serde_json::json;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const ADMIN: &str = "admin-1";

struct LiveSystem {
    host: Option<LiveHostHandle>,
    inbox: MemoryInbox,
    data: tempfile::TempDir,
}

fn config(data: &std::path::Path) -> HostConfig {
    let mut config = HostConfig::new(data);
    config.delivery_fast_interval_ms = 30;
    config.delivery_slow_interval_ms = 200;
    config.sweep_interval_ms = 100;
    // Generous: a loaded machine can starve an agent's heartbeat for seconds, and no test
    // here relies on a claim going stale (a killed agent is seen stopped at once).
    config.stale_after_ms = 60_000;
    config.backoff_base_ms = 50;
    config.send_backoff_base_ms = 20;
    for (name, value) in [
        ("CLAWSIM_POLL_IDLE_MS", "30"),
        ("CLAWSIM_POLL_ACTIVE_MS", "20"),
        ("CLAWSIM_QUERY_IDLE_TIMEOUT_MS", "2000"),
        ("CLAWSIM_ADMIN_USER_ID", ADMIN),
        ("RUST_LOG", "debug"),
    ] {
        config.agent_env.insert(name.into(), value.into());
    }
    config
}

impl LiveSystem {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        Self::start_in(data)
    }

    fn start_in(data: tempfile::TempDir) -> Self {
        let (channel, inbox) = MemoryChannel::new("test");
        let host = spawn_host(
            config(data.path()),
            || Box::new(ProcessRuntime::new(env!("CARGO_BIN_EXE_clawsim-agent"))),
            vec![Box::new(channel)],
            |host: &mut Host| {
                host.add_agent_group("ag", "Agent")?;
                host.add_messaging_group("mg", "test", "room-1")?;
                host.wire("mg", "ag", 0, SessionMode::PerThread)
            },
        )
        .expect("host starts");
        LiveSystem {
            host: Some(host),
            inbox,
            data,
        }
    }

    fn host(&self) -> &LiveHostHandle {
        self.host.as_ref().unwrap()
    }

    fn say(&self, thread: &str, sender_id: &str, text: &str) {
        let content = json!({"sender": "Ann", "senderId": sender_id, "text": text});
        self.host().send(HostInput::Message(InboundEvent {
            channel_type: "test".into(),
            platform_id: "room-1".into(),
            thread_id: Some(thread.into()),
            kind: "chat".into(),
            content: content.to_string(),
        }));
    }

    fn wait_text(&self, text: &str) -> OutboundDelivery {
        self.inbox
            .wait_for(|d| text_of(d) == text, WAIT)
            .unwrap_or_else(|| panic!("no delivery {text:?}; got {:#?}", texts(&self.inbox)))
    }

    fn sessions(&self) -> Vec<SessionInfo> {
        self.host().call(|h| h.active_sessions().unwrap())
    }

    fn snapshot(&self, thread_index: usize) -> SessionSnapshot {
        snapshot_session(&LiveEnv::new(), &self.sessions()[thread_index].paths).unwrap()
    }

    /// Waits until every session is settled, then a little longer to catch late duplicates.
    fn settle(&self) {
        let env = LiveEnv::new();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let settled = self.sessions().iter().all(|s| {
                snapshot_session(&env, &s.paths)
                    .map(|snap| snap.is_settled(env.now_ms()))
                    .unwrap_or(false)
            });
            if settled {
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
            assert!(std::time::Instant::now() < deadline, "system never settled");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (at most [`WAIT`]) until `predicate` holds of the first session's snapshot.
    fn wait_until(&self, what: &str, predicate: impl Fn(&SessionSnapshot) -> bool) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let holds = self
                .sessions()
                .first()
                .and_then(|s| snapshot_session(&LiveEnv::new(), &s.paths).ok())
                .is_some_and(|snap| predicate(&snap));
            if holds {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn restart_host(mut self) -> Self {
        self.host.take().unwrap().shutdown();
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().unwrap());
        Self::start_in(data)
    }
}

fn text_of(delivery: &OutboundDelivery) -> &str {
    delivery
        .content
        .get("text")
        .and_then(|t| t.as_str())
        .unwrap_or("")
}

fn texts(inbox: &MemoryInbox) -> Vec<String> {
    inbox.all().iter().map(|d| text_of(d).to_string()).collect()
}

fn count_text(inbox: &MemoryInbox, text: &str) -> usize {
    inbox.all().iter().filter(|d| text_of(d) == text).count()
}

fn count_delivered(inbox: &MemoryInbox, pred: impl Fn(&OutboundDelivery) -> bool) -> usize {
    inbox.all().iter().filter(|d| pred(d)).count()
}

fn in_seconds(seconds: i64) -> String {
    format_instant(LiveEnv::new().now_ms() + seconds * 1000)
}

#[test]
fn message_in_reply_delivered_once() {
    let system = LiveSystem::start();
    system.say("t1", "u1", "hello there");
    let reply = system
        .inbox
        .wait_for(|d| text_of(d).starts_with("Mock response to: "), WAIT)
        .expect("a reply");
    assert!(text_of(&reply).contains("hello there"), "{reply:?}");
    assert_eq!(reply.route.thread_id.as_deref(), Some("t1"));
    system.settle();
    assert_eq!(system.inbox.all().len(), 1, "{:#?}", texts(&system.inbox));
    let snapshot = system.snapshot(0);
    assert_eq!(
        snapshot.outcome_of(&snapshot.inbound[0].id),
        Some("completed")
    );
}

#[test]
fn follow_up_during_a_turn_joins_it_and_is_answered_once() {
    let system = LiveSystem::start();
    system.say("t1", "u1", "@mock think 1s; say first answer");
    // Wait until the first message is claimed, so the second arrives mid-turn.
    let deadline = std::time::Instant::now() + WAIT;
    while !system
        .sessions()
        .first()
        .and_then(|s| snapshot_session(&LiveEnv::new(), &s.paths).ok())
        .is_some_and(|snap| snap.acks.iter().any(|a| a.status == "processing"))
    {
        assert!(std::time::Instant::now() < deadline, "never claimed");
        std::thread::sleep(Duration::from_millis(20));
    }
    system.say("t1", "u1", "@mock say second answer");
    system.wait_text("first answer");
    system.wait_text("second answer");
    system.settle();
    assert_eq!(count_text(&system.inbox, "first answer"), 1);
    assert_eq!(count_text(&system.inbox, "second answer"), 1);
    let snapshot = system.snapshot(0);
    let second = &snapshot.inbound[1];
    assert_eq!(snapshot.outcome_of(&second.id), Some("completed"));
    // Both answers belong to the one turn: they reply to the first message of the batch.
    assert!(snapshot
        .outbound
        .iter()
        .all(|row| row.in_reply_to.as_deref() == Some(snapshot.inbound[0].id.as_str())));
}

#[test]
fn clear_is_for_the_admin_only() {
    let system = LiveSystem::start();
    system.say("t1", "someone-else", "/clear");
    system.wait_text("Permission denied: /clear requires admin access.");
    system.say("t1", ADMIN, "/clear");
    system.wait_text("Session cleared.");
    system.settle();
    assert_eq!(system.inbox.all().len(), 2, "{:#?}", texts(&system.inbox));
}

#[test]
fn scheduled_task_fires_at_its_time_not_before() {
    let system = LiveSystem::start();
    let at = in_seconds(2);
    system.say(
        "t1",
        "u1",
        &format!(
            r#"@mock tool schedule_task {{"prompt": "@mock say tick", "processAfter": "{at}"}}; say scheduled"#
        ),
    );
    system.wait_text("scheduled");
    system.wait_text("tick");
    system.settle();
    let snapshot = system.snapshot(0);
    let task = snapshot
        .inbound
        .iter()
        .find(|r| r.kind == "task")
        .expect("task row");
    let ack = snapshot
        .acks
        .iter()
        .find(|a| a.message_id == task.id)
        .expect("task acked");
    let due = clawsim_core::time::parse_instant(task.process_after.as_deref().unwrap()).unwrap();
    let acked = clawsim_core::time::parse_instant(&ack.status_changed).unwrap();
    assert!(acked >= due, "task ran before its time: {acked} < {due}");
    assert_eq!(count_text(&system.inbox, "tick"), 1);
}

#[test]
fn recurring_task_fires_again_and_cancel_stops_the_series() {
    let system = LiveSystem::start();
    let at = in_seconds(1);
    system.say(
        "t1",
        "u1",
        &format!(
            r#"@mock tool schedule_task {{"prompt": "@mock say tick", "processAfter": "{at}", "recurrence": "*/2 * * * * *"}}; say scheduled"#
        ),
    );
    system.wait_text("scheduled");
    let deadline = std::time::Instant::now() + WAIT;
    while count_text(&system.inbox, "tick") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "series did not fire twice"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let snapshot = system.snapshot(0);
    let first = snapshot.inbound.iter().find(|r| r.kind == "task").unwrap();
    system.say(
        "t1",
        "u1",
        &format!(
            r#"@mock tool cancel_task {{"taskId": "{}"}}; say cancelled"#,
            first.id
        ),
    );
    system.wait_text("cancelled");
    system.settle();
    let ticks_at_cancel = count_text(&system.inbox, "tick");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        count_text(&system.inbox, "tick"),
        ticks_at_cancel,
        "series fired after cancel"
    );
    let snapshot = system.snapshot(0);
    assert!(
        snapshot
            .inbound
            .iter()
            .filter(|r| r.kind == "task")
            .all(|r| r.status == "completed" || r.status == "failed"),
        "a task of the series is still live: {:#?}",
        snapshot.inbound
    );
}

#[test]
fn ask_user_question_round_trip() {
    let system = LiveSystem::start();
    system.say(
        "t1",
        "u1",
        r#"@mock tool ask_user_question {"question": "Pick one", "options": ["red", "blue"]}; say thanks"#,
    );
    let card = system
        .inbox
        .wait_for(
            |d| d.content.get("type").and_then(|t| t.as_str()) == Some("ask_question"),
            WAIT,
        )
        .expect("question card delivered");
    let question_id = card.content["questionId"].as_str().unwrap().to_string();
    assert!(system
        .host()
        .call(|h| h.pending_questions().unwrap())
        .iter()
        .any(|q| q.question_id == question_id));
    system.host().send(HostInput::Answer {
        question_id: question_id.clone(),
        option: "blue".into(),
    });
    system.wait_text("thanks");
    system.settle();
    let snapshot = system.snapshot(0);
    let answer = snapshot
        .inbound
        .iter()
        .find(|r| r.kind == "system")
        .expect("answer row");
    assert!(answer.content.contains("blue"));
    assert_eq!(snapshot.outcome_of(&answer.id), Some("completed"));
}

#[test]
fn send_file_is_delivered_with_its_file_and_the_outbox_cleaned() {
    let system = LiveSystem::start();
    let file_dir = tempfile::tempdir().unwrap();
    let file = file_dir.path().join("report.txt");
    std::fs::write(&file, b"quarterly numbers").unwrap();
    system.say(
        "t1",
        "u1",
        &format!(
            r#"@mock tool send_file {{"path": "{}", "text": "here it is"}}; reply 0"#,
            file.display()
        ),
    );
    let delivery = system.wait_text("here it is");
    assert_eq!(
        delivery.files,
        vec![("report.txt".to_string(), b"quarterly numbers".to_vec())]
    );
    system.settle();
    let session = &system.sessions()[0];
    let outbox = session.paths.outbox_for(&delivery.message_out_id);
    assert!(!outbox.exists(), "outbox {} not removed", outbox.display());
}

#[test]
fn killed_agent_message_is_processed_once_by_the_next_agent() {
    // Killed inside its think. A starved test may kill it only after it answered: the next
    // agent must then not answer again, so the assertions hold either way. (A question cannot
    // hold the turn here: its card is output, and output-sent protection would complete the
    // message instead of running it again.)
    let system = LiveSystem::start();
    system.say("t1", "u1", "@mock think 1s; say survived");
    system.wait_until("the message claimed", |snap| {
        snap.acks.iter().any(|a| a.status == "processing")
    });
    let session = system.sessions().into_iter().next().expect("a session");
    let pid_file = session
        .paths
        .root
        .with_file_name(format!("{}.agent.pid", session.id));
    // The host writes the pid file just after starting the agent; on a slow machine the agent
    // can claim before it is (completely) written.
    let deadline = std::time::Instant::now() + WAIT;
    let pid = loop {
        let read = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if let Ok(pid) = read.trim().parse::<u32>() {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no pid in {}",
            pid_file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    system.wait_text("survived");
    system.settle();
    assert_eq!(
        count_text(&system.inbox, "survived"),
        1,
        "{:#?}",
        texts(&system.inbox)
    );
    assert_eq!(system.inbox.all().len(), 1);
}

#[test]
fn restarted_host_delivers_nothing_twice() {
    let system = LiveSystem::start();
    system.say("t1", "u1", "@mock say before restart");
    system.wait_text("before restart");
    system.settle();
    let system = system.restart_host();
    system.say("t1", "u1", "@mock say after restart");
    system.wait_text("after restart");
    system.settle();
    // The new host has its own channel: it must not have re-sent the first reply.
    assert_eq!(texts(&system.inbox), vec!["after restart".to_string()]);
    assert_eq!(
        count_delivered(&system.inbox, |d| d.route.thread_id.as_deref()
            == Some("t1")),
        1
    );
}

/// A ProcessRuntime whose drop is a host's death: its agents are left running, handed to the
/// test's [`Reaper`] instead of being killed.
struct DyingRuntime {
    inner: ProcessRuntime,
    orphans: Arc<Mutex<Vec<Child>>>,
}

impl ContainerRuntime for DyingRuntime {
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        self.inner.start(spec)
    }
    fn state(&mut self, session_id: &str) -> ContainerState {
        self.inner.state(session_id)
    }
    fn kill(&mut self, session_id: &str) -> Result<(), String> {
        self.inner.kill(session_id)
    }
    fn adopt(&mut self, spec: &ContainerSpec) -> ContainerState {
        self.inner.adopt(spec)
    }
}

impl Drop for DyingRuntime {
    fn drop(&mut self) {
        self.orphans.lock().unwrap().extend(self.inner.abandon());
    }
}

/// Kills and waits for every orphaned agent when the test ends, however it ends.
struct Reaper(Arc<Mutex<Vec<Child>>>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for mut child in self.0.lock().unwrap().drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_dying_host(
    data: &std::path::Path,
    orphans: &Arc<Mutex<Vec<Child>>>,
) -> (LiveHostHandle, MemoryInbox) {
    let (channel, inbox) = MemoryChannel::new("test");
    let orphans = orphans.clone();
    let host = spawn_host(
        config(data),
        move || {
            Box::new(DyingRuntime {
                inner: ProcessRuntime::new(env!("CARGO_BIN_EXE_clawsim-agent")),
                orphans,
            })
        },
        vec![Box::new(channel)],
        |host: &mut Host| {
            host.add_agent_group("ag", "Agent")?;
            host.add_messaging_group("mg", "test", "room-1")?;
            host.wire("mg", "ag", 0, SessionMode::PerThread)
        },
    )
    .expect("host starts");
    (host, inbox)
}

fn say_on(host: &LiveHostHandle, text: &str) {
    let content = json!({"sender": "Ann", "senderId": "u1", "text": text});
    host.send(HostInput::Message(InboundEvent {
        channel_type: "test".into(),
        platform_id: "room-1".into(),
        thread_id: Some("t1".into()),
        kind: "chat".into(),
        content: content.to_string(),
    }));
}

#[test]
fn a_restarted_host_adopts_the_live_agent_instead_of_starting_a_second() {
    // Story: ProcessRuntime wrote a pid file it never read back, so a host that died and
    // restarted knew nothing of the agent still running and started a second agent-runner on
    // the same session: two writers of one outbound.db. Method: a host whose runtime dies
    // without stopping its agent (the agent is left running, as a dead host's children are),
    // a new host on the same data, a message after the restart; every agent process logs
    // "agent-runner started" once, so the session's agent log counts the agents started.
    let orphans = Arc::new(Mutex::new(Vec::new()));
    let _reaper = Reaper(orphans.clone());
    let data = tempfile::tempdir().unwrap();
    let (host, inbox) = spawn_dying_host(data.path(), &orphans);
    say_on(&host, "@mock say before the crash");
    inbox
        .wait_for(|d| text_of(d) == "before the crash", WAIT)
        .expect("first reply");
    let session = host.call(|h| h.active_sessions().unwrap()).remove(0);
    host.shutdown();
    assert_eq!(
        orphans.lock().unwrap().len(),
        1,
        "the agent outlived its host"
    );

    let (host, inbox) = spawn_dying_host(data.path(), &orphans);
    say_on(&host, "@mock say after the restart");
    inbox
        .wait_for(|d| text_of(d) == "after the restart", WAIT)
        .expect("reply after the restart");
    let log = session
        .paths
        .root
        .with_file_name(format!("{}.agent.log", session.id));
    let log = std::fs::read_to_string(log).unwrap();
    assert_eq!(
        log.matches("agent-runner started").count(),
        1,
        "one agent-runner per session:\n{log}"
    );
    host.shutdown();
}
