//! `clawsim chat`: the smallest real use of the system. The live host routes each line typed
//! into a session whose agent-runner runs as a child process (or, with `--docker`, in a real
//! container), and prints the mock provider's replies as they are delivered.
//!
//! A person at a terminal types anything, presses Ctrl-C, closes the terminal, or is the victim
//! of an agent that dies; the chat must say what happened and leave nothing behind:
//!
//! - stdin is read as bytes and decoded lossily: a line with invalid UTF-8 is sent with each bad
//!   byte replaced by U+FFFD, and the chat says so;
//! - SIGTERM, SIGINT and SIGHUP stop every agent-runner the chat started and remove its
//!   temporary data, then end the chat (exit status 128 + the signal's number);
//! - an agent-runner that fails to start or exits is reported with the tail of its log;
//! - `/answer` is checked against the questions the agent asked and the options it offered;
//! - at `/quit` or end of input the chat says what it waits for, and says "gave up" only when a
//!   reply is really missing: not when the reply is written and only its query is still open
//!   (for follow-ups, until its idle timeout), nor when an open question waits for you.
//!
//! The chat's own notes go to stderr, prefixed `clawsim chat:`; the agent's words to stdout.

use clawsim_core::config::HostConfig;
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::host::{Host, InboundEvent, PendingQuestion, SessionInfo, SessionMode};
use clawsim_core::inspect::{snapshot_session, SessionSnapshot};
use clawsim_core::live::channels::TerminalChannel;
use clawsim_core::live::host::{spawn_host, HostInput, LiveHostHandle};
use clawsim_core::live::process_runtime::{AgentExit, ProcessRuntime};
use clawsim_core::live::LiveEnv;
use clawsim_core::model::{status, InboundRow};
use clawsim_core::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use clawsim_core::time::is_due;
use clawsim_core::{Env, SessionPaths};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{BufRead, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const CHANNEL: &str = "terminal";
const PLATFORM_ID: &str = "local";

/// How often the chat looks for agent-runners that exited, and how often a drain looks again.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);
/// Lines of an exited agent-runner's log shown in the chat.
const LOG_TAIL_LINES: usize = 12;
/// How much of the end of a log is read to find those lines.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// How much of a message's text names it in a note.
const EXCERPT_CHARS: usize = 40;

/// Options of `clawsim chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// Where the central DB and session folders live (default: a fresh temporary folder,
    /// removed when the chat ends).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Your sender id.
    #[arg(long, default_value = "user")]
    pub user_id: String,
    /// Sender id allowed to run admin commands such as /clear (default: you).
    #[arg(long)]
    pub admin_id: Option<String>,
    /// Agent poll interval and host delivery interval, in ms (at least 1).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..))]
    pub interval_ms: i64,
    /// After /quit or end of input, wait at most this long for every message to be answered.
    #[arg(long, default_value_t = 60)]
    pub drain_timeout_s: u64,
    /// Run each session's agent-runner in a real Docker container (the static `clawsim-agent`
    /// in a `FROM scratch` image, built on first use) instead of a child process.
    #[arg(long)]
    pub docker: bool,
}

/// Runs `clawsim chat` with the runtime its arguments ask for; returns the exit status.
pub fn run(args: &ChatArgs) -> Result<i32, String> {
    if !args.docker {
        let processes = SharedProcesses::new(process_runtime()?);
        let runtime = processes.clone();
        return run_chat(args, Some(processes), move || Box::new(runtime));
    }
    eprintln!("clawsim chat: building the agent image (first use takes a minute)...");
    let image = clawsim_e2e::ensure_agent_image()?;
    let options = clawsim_e2e::DockerOptions::new(image);
    // Fail before the host starts when the engine is unreachable.
    drop(clawsim_e2e::DockerRuntime::new(options.clone())?);
    run_chat(args, None, move || {
        match clawsim_e2e::DockerRuntime::new(options) {
            Ok(runtime) => Box::new(runtime),
            Err(error) => panic!("Docker runtime: {error}"),
        }
    })
}

/// Runs the chat on this terminal with `make_runtime` as the container runtime. `processes`,
/// when the runtime is (a clone of) it, lets the chat report agent-runners that exit and stop
/// them all on a signal. Returns the exit status: 0, or 128 + the signal that ended the chat.
pub fn run_chat(
    args: &ChatArgs,
    processes: Option<SharedProcesses>,
    make_runtime: impl FnOnce() -> Box<dyn ContainerRuntime> + Send + 'static,
) -> Result<i32, String> {
    let (data_dir, temp) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let (events_tx, events) = std::sync::mpsc::channel();
    // Before anything is started, so no signal finds an agent-runner the chat cannot stop.
    watch_signals(events_tx.clone())?;
    let host = spawn_host(
        host_config(args, &data_dir),
        make_runtime,
        vec![Box::new(TerminalChannel::new(CHANNEL))],
        wire_terminal,
    )
    .map_err(|e| e.to_string())?;
    print_banner(args, &data_dir, temp.is_some());
    read_stdin(events_tx)?;
    let chat = Chat {
        host: &host,
        processes: processes.as_ref(),
        events: &events,
    };
    let stop = match chat.converse(&args.user_id) {
        Stop::Signal(signal) => Some(signal),
        Stop::Quit(why) => chat.drain(why, Duration::from_secs(args.drain_timeout_s)),
    };
    if let Some(signal) = stop {
        note(&format!("{}: ending now", signal.name));
    }
    // Agent-runners first (no new one starts after this), so none outlives the chat or writes
    // into the folder being removed.
    let stopped = processes.as_ref().map(SharedProcesses::close);
    if let (Some(_), Some(agents)) = (stop, &stopped) {
        note(&format!(
            "stopped {}{}",
            plural(agents.len(), "agent-runner", "agent-runners"),
            match agents.len() {
                0 => String::new(),
                _ => format!(" (pid {})", join(agents.iter().map(|(_, pid)| pid), ", ")),
            }
        ));
    }
    host.shutdown();
    if let Some(temp) = temp {
        let path = temp.path().display().to_string();
        match temp.close() {
            Ok(()) if stop.is_some() => note(&format!("removed {path}")),
            Ok(()) => {}
            Err(error) => note(&format!("could not remove {path}: {error}")),
        }
    }
    Ok(stop.map_or(0, |signal| 128 + signal.number))
}

fn host_config(args: &ChatArgs, data_dir: &Path) -> HostConfig {
    let mut config = HostConfig::new(data_dir);
    config.delivery_fast_interval_ms = args.interval_ms;
    let admin_id = args
        .admin_id
        .clone()
        .unwrap_or_else(|| args.user_id.clone());
    for (name, value) in [
        ("CLAWSIM_ADMIN_USER_ID", admin_id),
        ("CLAWSIM_POLL_IDLE_MS", args.interval_ms.to_string()),
        (
            "CLAWSIM_POLL_ACTIVE_MS",
            (args.interval_ms / 2).max(1).to_string(),
        ),
    ] {
        config.agent_env.insert(name.into(), value);
    }
    config
}

fn print_banner(args: &ChatArgs, data_dir: &Path, temporary: bool) {
    let kept = if temporary {
        "temporary, removed when the chat ends"
    } else {
        "kept"
    };
    eprintln!(
        "clawsim chat: data in {} ({kept})\n\
         clawsim chat: commands:\n  \
         <text>                         send a message; the mock agent answers (`@mock ...` scripts it)\n  \
         /clear                         reset the agent's session\n  \
         /answer <questionId> <option>  answer a question the agent asked, with an offered option\n  \
         /quit (or end of input)        end: waits up to {}s for replies still due\n  \
         Ctrl-C (SIGINT), SIGTERM       end now: stops the agent-runners, removes temporary data\n\
         clawsim chat: ready; type a message",
        data_dir.display(),
        args.drain_timeout_s,
    );
}

/// A note from the chat itself (not the agent), on stderr.
fn note(text: &str) {
    eprintln!("clawsim chat: {text}");
}

fn wire_terminal(host: &mut Host) -> clawsim_core::Result<()> {
    host.add_agent_group("assistant", "Assistant")?;
    host.add_messaging_group("terminal-local", CHANNEL, PLATFORM_ID)?;
    host.wire("terminal-local", "assistant", 0, SessionMode::Shared)
}

/// What one typed line asks for.
pub enum LineInput {
    Send(HostInput),
    /// `/answer <questionId> <option>`, to check against the open questions before sending.
    Answer {
        question_id: String,
        option: String,
    },
    /// A command used wrongly; the text says how to use it.
    Refused(String),
    Quit,
    Nothing,
}

pub fn parse_line(line: &str, user_id: &str) -> LineInput {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return LineInput::Nothing;
    }
    if line.trim() == "/quit" {
        return LineInput::Quit;
    }
    if line.trim() == "/answer" || line.starts_with("/answer ") {
        let mut parts = line["/answer".len()..].trim().splitn(2, ' ');
        return match (parts.next(), parts.next().map(str::trim)) {
            (Some(question_id), Some(option)) if !option.is_empty() => LineInput::Answer {
                question_id: question_id.to_string(),
                option: option.to_string(),
            },
            _ => LineInput::Refused("usage: /answer <questionId> <option>".into()),
        };
    }
    let content = serde_json::json!({ "sender": "You", "senderId": user_id, "text": line });
    LineInput::Send(HostInput::Message(InboundEvent {
        channel_type: CHANNEL.into(),
        platform_id: PLATFORM_ID.into(),
        thread_id: None,
        kind: "chat".into(),
        content: content.to_string(),
    }))
}

/// A signal that ends the chat.
#[derive(Debug, Clone, Copy)]
struct Signal {
    name: &'static str,
    number: i32,
}

/// What the chat's thread is told: by the stdin reader and the signal watcher.
enum Event {
    Line(Vec<u8>),
    /// End of input; with the read error that ended it, if any.
    EndOfInput(Option<String>),
    Signal(Signal),
}

/// Why the conversation ended.
enum Stop {
    /// `/quit` or end of input (the text says which): drain, then end.
    Quit(&'static str),
    /// End now.
    Signal(Signal),
}

/// Reads stdin as bytes, a line at a time, on its own thread: the chat's thread must stay free
/// to see signals and exited agents while nobody types.
fn read_stdin(events: Sender<Event>) -> Result<(), String> {
    std::thread::Builder::new()
        .name("clawsim-chat-stdin".into())
        .spawn(move || {
            let mut input = std::io::stdin().lock();
            loop {
                let mut line = Vec::new();
                let event = match input.read_until(b'\n', &mut line) {
                    Ok(0) => Event::EndOfInput(None),
                    Ok(_) => Event::Line(line),
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => Event::EndOfInput(Some(error.to_string())),
                };
                let last = matches!(event, Event::EndOfInput(_));
                if events.send(event).is_err() || last {
                    return;
                }
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot start the stdin reader: {e}"))
}

/// Turns SIGTERM, SIGINT and SIGHUP into events from now on (they no longer kill the process).
fn watch_signals(events: Sender<Event>) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("clawsim-chat-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(error.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let streams = (|| {
                    Ok::<_, std::io::Error>((
                        signal(SignalKind::terminate())?,
                        signal(SignalKind::interrupt())?,
                        signal(SignalKind::hangup())?,
                    ))
                })();
                let (mut term, mut int, mut hup) = match streams {
                    Ok(streams) => streams,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let (name, number) = tokio::select! {
                        _ = term.recv() => ("SIGTERM", 15),
                        _ = int.recv() => ("SIGINT", 2),
                        _ = hup.recv() => ("SIGHUP", 1),
                    };
                    if events.send(Event::Signal(Signal { name, number })).is_err() {
                        return;
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start the signal watcher: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("cannot watch signals: {error}")),
        Err(_) => Err("cannot watch signals: the watcher stopped".into()),
    }
}

/// The chat's view of the running system.
struct Chat<'a> {
    host: &'a LiveHostHandle,
    processes: Option<&'a SharedProcesses>,
    events: &'a Receiver<Event>,
}

impl Chat<'_> {
    /// Hands typed lines to the host until `/quit`, end of input or a signal.
    fn converse(&self, user_id: &str) -> Stop {
        let mut line_number = 0u64;
        loop {
            match self.events.recv_timeout(WATCH_INTERVAL) {
                Ok(Event::Line(bytes)) => {
                    line_number += 1;
                    let text = String::from_utf8_lossy(&bytes);
                    if let Cow::Owned(_) = text {
                        note(&format!(
                            "line {line_number} had invalid UTF-8; sent with each bad byte \
                             replaced by \u{FFFD}"
                        ));
                    }
                    if let Some(stop) = self.handle_line(&text, user_id) {
                        return stop;
                    }
                }
                Ok(Event::EndOfInput(error)) => {
                    if let Some(error) = error {
                        note(&format!(
                            "cannot read stdin ({error}); ending as at end of input"
                        ));
                    }
                    return Stop::Quit("end of input");
                }
                Ok(Event::Signal(signal)) => return Stop::Signal(signal),
                Err(RecvTimeoutError::Timeout) => {}
                // The signal watcher keeps a sender for the life of the process.
                Err(RecvTimeoutError::Disconnected) => return Stop::Quit("end of input"),
            }
            self.report_exits();
        }
    }

    fn handle_line(&self, text: &str, user_id: &str) -> Option<Stop> {
        match parse_line(text, user_id) {
            LineInput::Quit => return Some(Stop::Quit("/quit")),
            LineInput::Nothing => {}
            LineInput::Send(input) => self.host.send(input),
            LineInput::Refused(reason) => note(&reason),
            LineInput::Answer {
                question_id,
                option,
            } => match self.check_answer(&question_id, &option) {
                Ok(()) => self.host.send(HostInput::Answer {
                    question_id,
                    option,
                }),
                Err(refusal) => note(&format!("/answer refused: {refusal}")),
            },
        }
        None
    }

    /// Accepts an answer only to an open question, with one of the options it offered.
    fn check_answer(&self, question_id: &str, option: &str) -> Result<(), String> {
        let (questions, sessions) = self
            .host
            .call(|h| (h.pending_questions(), h.active_sessions()));
        let questions = questions.map_err(|e| format!("cannot read the open questions: {e}"))?;
        let Some(question) = questions.iter().find(|q| q.question_id == question_id) else {
            return Err(match questions.len() {
                0 => format!("no question {question_id} is open (no question is open)"),
                _ => format!(
                    "no question {question_id} is open; open: {}",
                    join(questions.iter().map(|q| &q.question_id), ", ")
                ),
            });
        };
        let sessions = sessions.map_err(|e| format!("cannot read the sessions: {e}"))?;
        let offered = offered_options(&sessions, question)?;
        if offered.iter().any(|offered| offered == option) {
            return Ok(());
        }
        Err(format!(
            "{option:?} is not an option of question {question_id}; offered: {}",
            offered.join(" | ")
        ))
    }

    /// Waits until nothing due is left to answer or deliver, at most `timeout`; says what it
    /// waits for first and how it ended. Returns the signal that cut it short, if one did.
    fn drain(&self, why: &str, timeout: Duration) -> Option<Signal> {
        let deadline = Instant::now() + timeout;
        let mut outstanding = self.outstanding();
        for question in &outstanding.open_questions {
            note(&format!(
                "question {question} is still open; not waiting for its answer"
            ));
        }
        if outstanding.is_empty() {
            note(&format!("{why}: nothing left to wait for"));
            return None;
        }
        note(&format!(
            "{why}: waiting up to {}s for {}; Ctrl-C ends now",
            timeout.as_secs(),
            outstanding.describe()
        ));
        loop {
            self.report_exits();
            if outstanding.is_empty() {
                note("every reply is delivered");
                return None;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                let running = self.processes.map(|p| p.lock().runtime.agents().len());
                note(&format!(
                    "gave up waiting after {}s; still missing: {}{}",
                    timeout.as_secs(),
                    outstanding.describe(),
                    match running {
                        Some(0) => "; no agent-runner is running",
                        _ => "",
                    }
                ));
                return None;
            };
            match self.events.recv_timeout(left.min(WATCH_INTERVAL)) {
                Ok(Event::Signal(signal)) => return Some(signal),
                Ok(Event::Line(_)) => note("the chat is ending; line ignored"),
                Ok(Event::EndOfInput(_)) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(WATCH_INTERVAL),
            }
            outstanding = self.outstanding();
        }
    }

    /// What a drain still waits for, read from every session's two DBs.
    fn outstanding(&self) -> Outstanding {
        let (sessions, questions) = self
            .host
            .call(|h| (h.active_sessions(), h.pending_questions()));
        let mut outstanding = Outstanding::default();
        let questions = questions.unwrap_or_else(|error| {
            outstanding
                .unreadable
                .push(format!("the open questions cannot be read ({error})"));
            Vec::new()
        });
        outstanding.open_questions = questions.iter().map(|q| q.question_id.clone()).collect();
        let sessions = sessions.unwrap_or_else(|error| {
            outstanding
                .unreadable
                .push(format!("the sessions cannot be read ({error})"));
            Vec::new()
        });
        let env = LiveEnv::new();
        let now_ms = env.now_ms();
        for session in &sessions {
            let snapshot = match snapshot_session(&env, &session.paths) {
                Ok(snapshot) => snapshot,
                Err(error) => {
                    outstanding
                        .unreadable
                        .push(format!("session {} cannot be read ({error})", session.id));
                    continue;
                }
            };
            let asking = questions.iter().any(|q| q.session_id == session.id);
            let answered = answered_messages(&env, &session.paths, &snapshot);
            for row in &snapshot.inbound {
                let waiting = row.status != status::PAUSED
                    && is_due(row.process_after.as_deref(), now_ms)
                    && snapshot.outcome_of(&row.id).is_none()
                    && !answered.contains(row.id.as_str())
                    // A turn waiting for the user's answer is not a missing reply.
                    && !(asking && claimed(&snapshot, &row.id));
                if waiting {
                    outstanding.unanswered.push(excerpt(row));
                }
            }
            let delivered: BTreeSet<&str> = snapshot
                .delivered
                .iter()
                .map(|d| d.message_out_id.as_str())
                .collect();
            outstanding.undelivered += snapshot
                .outbound
                .iter()
                .filter(|row| {
                    !delivered.contains(row.id.as_str())
                        && is_due(row.deliver_after.as_deref(), now_ms)
                })
                .count();
        }
        outstanding
    }

    /// Says which agent-runners exited since the last look, each with the end of its log.
    fn report_exits(&self) {
        let Some(processes) = self.processes else {
            return;
        };
        for exit in processes.take_exits() {
            note(&describe_exit(&exit));
        }
    }
}

/// What a drain waits for.
#[derive(Debug, Default)]
struct Outstanding {
    /// Due messages without an outcome yet, each as an excerpt.
    unanswered: Vec<String>,
    /// Due rows the agent wrote that the terminal has not been handed yet.
    undelivered: usize,
    /// Sessions or files that could not be read, with why (waited for: they may hold replies).
    unreadable: Vec<String>,
    /// Questions waiting for the user's answer (not waited for).
    open_questions: Vec<String>,
}

impl Outstanding {
    fn is_empty(&self) -> bool {
        self.unanswered.is_empty() && self.undelivered == 0 && self.unreadable.is_empty()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.unanswered.is_empty() {
            parts.push(format!(
                "{} to {}",
                plural(self.unanswered.len(), "reply", "replies"),
                join(&self.unanswered, ", ")
            ));
        }
        if self.undelivered > 0 {
            parts.push(format!(
                "{} written but not yet shown",
                plural(self.undelivered, "reply", "replies")
            ));
        }
        parts.extend(self.unreadable.iter().cloned());
        parts.join("; ")
    }
}

/// Messages whose reply is written though their query has not ended (a query stays open for
/// follow-ups until its idle timeout, and only then are its messages acked): PROTOCOL §5's
/// "has output" rule, by which a restarted agent-runner acks them instead of answering again. A
/// reply cites the first message of its batch; a follow-up joins that batch in `claim_batches`
/// when a result ends its turn. Missing is a reply to none of these.
fn answered_messages(
    env: &LiveEnv,
    paths: &SessionPaths,
    snapshot: &SessionSnapshot,
) -> BTreeSet<String> {
    let mut answered: BTreeSet<String> = snapshot
        .outbound
        .iter()
        .filter_map(|row| row.in_reply_to.clone())
        .collect();
    // An unreadable file (not written yet, busy) answers nothing more this time round.
    let joined = Db::open(
        env,
        &paths.outbound_db(),
        Schema::Outbound,
        Access::ReadOnly,
    )
    .and_then(|mut outbound| {
        outbound.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT b.message_id FROM claim_batches b
                     JOIN messages_out o ON o.in_reply_to = b.batch_id",
            )?;
            let ids = stmt.query_map([], |row| row.get::<_, String>(0))?;
            ids.collect::<rusqlite::Result<Vec<String>>>()
        })
    });
    answered.extend(joined.unwrap_or_default());
    answered
}

/// True when the session's agent has claimed the message (its turn is running).
fn claimed(snapshot: &SessionSnapshot, message_id: &str) -> bool {
    snapshot
        .acks
        .iter()
        .any(|ack| ack.message_id == message_id && ack.status == status::PROCESSING)
}

/// A message as a note names it: the start of its text, else its kind and id.
fn excerpt(row: &InboundRow) -> String {
    let content: serde_json::Value = serde_json::from_str(&row.content).unwrap_or_default();
    match content.get("text").and_then(|t| t.as_str()) {
        Some(text) if text.chars().count() > EXCERPT_CHARS => {
            format!(
                "{:?}",
                text.chars().take(EXCERPT_CHARS).collect::<String>() + "..."
            )
        }
        Some(text) => format!("{text:?}"),
        None => format!("{} message {}", row.kind, row.id),
    }
}

/// The options a question offered, as the terminal showed them, read from the row that asked.
fn offered_options(
    sessions: &[SessionInfo],
    question: &PendingQuestion,
) -> Result<Vec<String>, String> {
    let unreadable = |why: String| {
        format!(
            "the options of question {} cannot be read ({why})",
            question.question_id
        )
    };
    let session = sessions
        .iter()
        .find(|s| s.id == question.session_id)
        .ok_or_else(|| unreadable(format!("session {} is not active", question.session_id)))?;
    let snapshot =
        snapshot_session(&LiveEnv::new(), &session.paths).map_err(|e| unreadable(e.to_string()))?;
    let row = snapshot
        .outbound
        .iter()
        .find(|row| row.id == question.message_out_id)
        .ok_or_else(|| unreadable(format!("no row {}", question.message_out_id)))?;
    let content: serde_json::Value =
        serde_json::from_str(&row.content).map_err(|e| unreadable(e.to_string()))?;
    let options = content
        .get("options")
        .and_then(|o| o.as_array())
        .ok_or_else(|| unreadable(format!("row {} has no options", row.id)))?;
    Ok(options
        .iter()
        .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
        .collect())
}

/// An exited agent-runner, its status and the end of its log, as the chat reports it.
fn describe_exit(exit: &AgentExit) -> String {
    let mut text = format!(
        "agent-runner of session {} (pid {}) ended with {}; the host starts a new one when the \
         session has work due",
        exit.session_id, exit.pid, exit.status
    );
    let log = exit.log_path.display();
    match log_tail(&exit.log_path, LOG_TAIL_LINES) {
        Ok(lines) if lines.is_empty() => text.push_str(&format!("\n  its log {log} is empty")),
        Ok(lines) => {
            text.push_str(&format!("\n  last lines of its log {log}:"));
            for line in lines {
                text.push_str(&format!("\n  | {line}"));
            }
        }
        Err(error) => text.push_str(&format!("\n  its log {log} cannot be read: {error}")),
    }
    text
}

/// The last `count` non-empty lines of a log, without terminal colour codes.
fn log_tail(path: &Path, count: usize) -> std::io::Result<Vec<String>> {
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    file.seek(std::io::SeekFrom::Start(
        length.saturating_sub(LOG_TAIL_BYTES),
    ))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = strip_ansi(&String::from_utf8_lossy(&bytes));
    let lines: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect();
    Ok(lines[lines.len().saturating_sub(count)..].to_vec())
}

/// Removes ANSI escape sequences (`ESC [ ... final`), which the agent's logger writes.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>, separator: &str) -> String {
    items
        .into_iter()
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(separator)
}

/// The process runtime running `clawsim agent` (this very binary) per session.
pub fn process_runtime() -> Result<ProcessRuntime, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    Ok(ProcessRuntime::new(exe).with_args(&["agent"]))
}

/// The chat's process runtime, shared by the host thread (which starts and stops agent-runners
/// through it) and the chat's thread (which reports those that exit and, on a signal, stops
/// them all even if the host thread is busy). Each start it makes is announced with its pid.
#[derive(Clone)]
pub struct SharedProcesses(Arc<Mutex<Processes>>);

pub struct Processes {
    runtime: ProcessRuntime,
    /// Set when the chat stops: no agent-runner starts after that.
    closed: bool,
}

impl SharedProcesses {
    pub fn new(runtime: ProcessRuntime) -> Self {
        Self(Arc::new(Mutex::new(Processes {
            runtime,
            closed: false,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Processes> {
        // A panic elsewhere must not keep the chat from stopping its agents.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_exits(&self) -> Vec<AgentExit> {
        self.lock().runtime.take_exits()
    }

    /// Kills every agent-runner and refuses to start more; returns (session id, pid) of those
    /// that were running.
    fn close(&self) -> Vec<(String, u32)> {
        let mut processes = self.lock();
        processes.closed = true;
        let running = processes.runtime.agents();
        processes.runtime.kill_all();
        running
    }
}

impl ContainerRuntime for SharedProcesses {
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        let mut processes = self.lock();
        if processes.closed {
            return Err("the chat is ending".into());
        }
        let session_id = &spec.session_id;
        let before = processes.runtime.latest_pid(session_id);
        if let Err(error) = processes.runtime.start(spec) {
            note(&format!(
                "agent-runner of session {session_id} could not be started: {error}"
            ));
            return Err(error);
        }
        match processes.runtime.latest_pid(session_id) {
            Some(pid) if Some(pid) != before => {
                note(&format!(
                    "agent-runner of session {session_id} started (pid {pid})"
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn state(&mut self, session_id: &str) -> ContainerState {
        self.lock().runtime.state(session_id)
    }

    fn kill(&mut self, session_id: &str) -> Result<(), String> {
        self.lock().runtime.kill(session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_needs_a_question_and_an_option() {
        for line in ["/answer", "/answer q-1", "/answer  q-1   "] {
            assert!(
                matches!(parse_line(line, "u"), LineInput::Refused(_)),
                "{line}"
            );
        }
        match parse_line("/answer q-1  light blue ", "u") {
            LineInput::Answer {
                question_id,
                option,
            } => assert_eq!(
                (question_id.as_str(), option.as_str()),
                ("q-1", "light blue")
            ),
            _ => panic!("not an answer"),
        }
    }

    #[test]
    fn colour_codes_are_stripped_from_log_lines() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m x"),
            "2026  WARN x"
        );
    }
}
