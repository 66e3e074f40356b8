//! `clawsim chat` and `clawsim agent` under bad input. The story: one byte of Latin-1 on stdin
//! ended the chat; SIGTERM left an orphaned `clawsim agent` polling forever; an agent-runner
//! that failed at start or died mid-turn gave only silence and then "gave up waiting"; `/answer`
//! took any option; and `clawsim agent` without settings made `/workspace` at the filesystem
//! root and polled it.
//!
//! Method: run the built binary with piped stdin, stdout and stderr, and wait for the specific
//! line each behaviour prints. Deadlines are generous upper bounds (the suite runs on two busy
//! cores), never the thing asserted; stdin is written only after the banner's last line; every
//! child (and every agent-runner a chat announced) is killed and reaped by a guard.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Upper bound for anything to happen; only a hung or broken chat reaches it.
const DEADLINE: Duration = Duration::from_secs(60);
const READY: &str = "clawsim chat: ready";

/// One running `clawsim chat`, its output lines as they come, and cleanup.
struct Chat {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line so far, `out: ` or `err: ` first (for failure messages).
    transcript: Vec<String>,
    /// Agent-runners the chat announced: (pid, start time), for the guard and the checks.
    agents: Vec<(u32, String)>,
}

impl Chat {
    /// Starts `clawsim chat` with fast intervals and waits for its banner.
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Chat {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clawsim"));
        command
            .arg("chat")
            .args(["--interval-ms", "50"])
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("clawsim chat starts");
        let (tx, lines) = std::sync::mpsc::channel();
        for (prefix, stream) in [
            (
                "out: ",
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            ),
            ("err: ", Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(format!("{prefix}{line}")).is_err() {
                        return;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        let mut chat = Chat {
            child,
            stdin,
            lines,
            transcript: Vec::new(),
            agents: Vec::new(),
        };
        chat.wait_line(|l| l.starts_with(&format!("err: {READY}")), "the banner");
        chat
    }

    /// Waits for a line satisfying `wanted` and returns it; panics with the transcript at the
    /// deadline or when the chat's output ends.
    fn wait_line(&mut self, wanted: impl Fn(&str) -> bool, what: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.note_agent(&line);
                    self.transcript.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {what} within {DEADLINE:?}:\n{}",
                        self.transcript.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "output ended before {what}:\n{}",
                        self.transcript.join("\n")
                    )
                }
            }
        }
    }

    fn wait_containing(&mut self, text: &str) -> String {
        self.wait_line(|line| line.contains(text), &format!("line with {text:?}"))
    }

    /// Records the pid of an agent-runner from the chat's "started (pid N)" line.
    fn note_agent(&mut self, line: &str) {
        let Some(rest) = line.split(" started (pid ").nth(1) else {
            return;
        };
        let pid: u32 = rest.trim_end_matches(')').parse().expect("pid");
        // The start time tells this process from a later one given the same pid.
        let started = process_start_time(pid).unwrap_or_default();
        self.agents.push((pid, started));
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to chat");
        stdin.flush().expect("flush chat stdin");
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the chat to exit, reading the rest of its output into the transcript.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for chat") {
                // The readers end with the pipes; collect what they still hold.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.transcript.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chat did not exit within {DEADLINE:?}:\n{}",
                self.transcript.join("\n")
            );
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                self.note_agent(&line);
                self.transcript.push(line);
            }
        }
    }

    fn transcript(&self) -> String {
        self.transcript.join("\n")
    }

    /// The data folder the banner named.
    fn data_dir(&self) -> PathBuf {
        let line = self
            .transcript
            .iter()
            .find_map(|l| l.strip_prefix("err: clawsim chat: data in "))
            .expect("banner names the data folder");
        PathBuf::from(line.rsplit_once(" (").expect("data line").0)
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, started) in &self.agents {
            if agent_alive(*pid, started) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Field 22 of /proc/<pid>/stat (start time), with the process state; `None` when gone.
fn process_stat(pid: u32) -> Option<(String, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; fields follow the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.first()?.to_string(), fields.get(19)?.to_string()))
}

fn process_start_time(pid: u32) -> Option<String> {
    process_stat(pid).map(|(_, started)| started)
}

/// True while the agent with this pid and start time exists and is not a zombie.
fn agent_alive(pid: u32, started: &str) -> bool {
    match process_stat(pid) {
        Some((state, start)) => state != "Z" && start == started,
        None => false,
    }
}

#[test]
fn the_banner_lists_the_commands_and_an_empty_chat_ends_at_once() {
    let mut chat = Chat::start(&[], &[]);
    let banner = chat.transcript();
    for command in [
        "/clear",
        "/answer <questionId> <option>",
        "/quit",
        "Ctrl-C (SIGINT), SIGTERM",
    ] {
        assert!(banner.contains(command), "{command} missing:\n{banner}");
    }
    chat.close_stdin();
    chat.wait_containing("end of input: nothing left to wait for");
    assert!(chat.wait_exit().success(), "{}", chat.transcript());
    assert!(!chat.data_dir().exists(), "temporary data left behind");
}

#[test]
fn a_line_with_invalid_utf8_is_sent_lossily_and_said_so() {
    let mut chat = Chat::start(&[], &[]);
    chat.send(b"caf\xe9 au lait\n");
    chat.wait_containing("line 1 had invalid UTF-8; sent with each bad byte replaced");
    chat.wait_line(
        |l| l.starts_with("out: agent: ") && l.contains("caf\u{FFFD} au lait"),
        "the reply to the repaired line",
    );
    // The chat goes on.
    chat.send(b"and then\n");
    chat.wait_line(
        |l| l.starts_with("out: agent: ") && l.contains("and then"),
        "the reply to the next line",
    );
    chat.send(b"/quit\n");
    assert!(chat.wait_exit().success(), "{}", chat.transcript());
    assert!(
        !chat.transcript().contains("gave up"),
        "{}",
        chat.transcript()
    );
}

/// Sends `signal` to a chat whose agent-runner is up, then checks that the chat ended with
/// 128 + the signal's number, that no agent-runner it announced is left, and that its temporary
/// folder is gone.
fn signal_stops_agents_and_removes_data(signal: &str, number: i32) {
    let mut chat = Chat::start(&[], &[]);
    chat.send(b"hello\n");
    chat.wait_containing("started (pid ");
    chat.wait_line(|l| l.starts_with("out: agent: "), "the reply");
    let data_dir = chat.data_dir();
    assert!(data_dir.exists());
    chat.signal(signal);
    chat.wait_containing(&format!("{signal}: ending now"));
    let status = chat.wait_exit();
    assert_eq!(status.code(), Some(128 + number), "{}", chat.transcript());
    assert!(
        chat.transcript().contains("stopped 1 agent-runner (pid"),
        "{}",
        chat.transcript()
    );
    assert!(!chat.agents.is_empty());
    for (pid, started) in &chat.agents {
        assert!(
            !agent_alive(*pid, started),
            "agent-runner {pid} outlived the chat"
        );
    }
    assert!(!data_dir.exists(), "{} left behind", data_dir.display());
}

#[test]
fn sigterm_stops_every_agent_runner_and_removes_the_temporary_data() {
    signal_stops_agents_and_removes_data("TERM", 15);
}

#[test]
fn sigint_stops_every_agent_runner_and_removes_the_temporary_data() {
    signal_stops_agents_and_removes_data("INT", 2);
}

#[test]
fn an_agent_runner_that_fails_to_start_is_reported_with_its_log() {
    // The agent-runner inherits the chat's environment: a script file that does not exist
    // makes it refuse its settings and exit at once.
    let missing = "/nonexistent/clawsim-test-script";
    let mut chat = Chat::start(
        &["--drain-timeout-s", "1"],
        &[("CLAWSIM_MOCK_SCRIPT", missing)],
    );
    chat.send(b"hello\n");
    chat.wait_containing("ended with exit status: 2");
    chat.wait_line(
        |l| l.starts_with("err:   | ") && l.contains(missing),
        "the log line naming the missing script",
    );
    chat.close_stdin();
    chat.wait_containing("gave up waiting after 1s; still missing: 1 reply to \"hello\"");
    assert!(chat.wait_exit().success(), "{}", chat.transcript());
}

#[test]
fn an_interval_of_zero_is_refused_before_anything_starts() {
    let output = Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .args(["chat", "--interval-ms", "0"])
        .stdin(Stdio::null())
        .output()
        .expect("clawsim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--interval-ms"), "{stderr}");
}

#[test]
fn an_agent_runner_that_dies_mid_turn_is_reported_and_quit_names_the_missing_reply() {
    let mut chat = Chat::start(&["--drain-timeout-s", "2"], &[]);
    // Answered, though its query stays open for follow-ups: not a missing reply.
    chat.send(b"hello\n");
    chat.wait_line(|l| l.starts_with("out: agent: "), "the reply to hello");
    chat.send(b"bye @mock exit 1\n");
    chat.wait_containing("ended with exit status: 1");
    chat.wait_line(
        |l| l.starts_with("err:   | ") && l.contains("provider exited the process"),
        "the log line of the exit",
    );
    chat.send(b"/quit\n");
    // The turn died holding the message: its reply is really missing.
    chat.wait_containing("/quit: waiting up to 2s for 1 reply to \"bye @mock exit 1\";");
    chat.wait_containing("gave up waiting after 2s; still missing: 1 reply to");
    assert!(chat.wait_exit().success(), "{}", chat.transcript());
}

const QUESTION: &[u8] = br#"@mock tool ask_user_question {"question": "Pick one", "options": ["red", "blue"]}; say thanks
"#;

/// Asks the mock's question and returns its id, from the line telling how to answer.
fn ask(chat: &mut Chat) -> String {
    chat.send(QUESTION);
    let line = chat.wait_containing("answer with: /answer ");
    line.split("/answer ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("question id")
        .to_string()
}

#[test]
fn answer_with_an_option_not_offered_is_refused_with_the_options() {
    let mut chat = Chat::start(&[], &[]);
    let question_id = ask(&mut chat);
    chat.send(format!("/answer {question_id} green\n").as_bytes());
    chat.wait_containing(&format!(
        "/answer refused: \"green\" is not an option of question {question_id}; offered: red | blue"
    ));
    chat.send(b"/answer q-nope red\n");
    chat.wait_containing(&format!(
        "/answer refused: no question q-nope is open; open: {question_id}"
    ));
    chat.send(b"/answer\n");
    chat.wait_containing("usage: /answer <questionId> <option>");
    chat.send(format!("/answer {question_id} blue\n").as_bytes());
    chat.wait_containing("out: agent: thanks");
    chat.send(b"/quit\n");
    assert!(chat.wait_exit().success(), "{}", chat.transcript());
    assert!(
        !chat.transcript().contains("gave up"),
        "{}",
        chat.transcript()
    );
}

#[test]
fn quit_does_not_wait_for_a_question_only_the_user_can_answer() {
    let mut chat = Chat::start(&[], &[]);
    let question_id = ask(&mut chat);
    chat.send(b"/quit\n");
    chat.wait_containing(&format!(
        "question {question_id} is still open; not waiting for its answer"
    ));
    chat.wait_containing("/quit: nothing left to wait for");
    assert!(chat.wait_exit().success(), "{}", chat.transcript());
    assert!(
        !chat.transcript().contains("gave up"),
        "{}",
        chat.transcript()
    );
}

#[test]
fn quit_waits_for_a_reply_on_its_way_and_does_not_give_up() {
    let mut chat = Chat::start(&[], &[]);
    chat.send(b"@mock think 3s; say pondered\n/quit\n");
    // Normally the drain starts while the agent thinks ("waiting up to 60s for 1 reply ...",
    // then "every reply is delivered"); on a stalled machine the reply may already be in.
    chat.wait_line(
        |l| l.contains("every reply is delivered") || l.contains("/quit: nothing left to wait for"),
        "the end of the drain",
    );
    assert!(chat.wait_exit().success(), "{}", chat.transcript());
    let transcript = chat.transcript();
    assert!(transcript.contains("out: agent: pondered"), "{transcript}");
    assert!(!transcript.contains("gave up"), "{transcript}");
    if transcript.contains("every reply is delivered") {
        assert!(
            transcript.contains(
                "/quit: waiting up to 60s for 1 reply to \"@mock think 3s; say pondered\""
            ),
            "{transcript}"
        );
    }
}

/// Runs `clawsim agent` with only `envs` (no inherited CLAWSIM_* setting) and returns its exit
/// status and stderr; kills it at the deadline (before the fix it polled forever).
fn agent(envs: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clawsim"));
    command
        .arg("agent")
        .env_clear()
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    struct Guard(Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut guard = Guard(command.spawn().expect("clawsim agent starts"));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "clawsim agent still running after {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut guard.0.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn agent_without_its_session_folder_refuses_to_start() {
    let workspace_existed = Path::new("/workspace").exists();
    let (status, stderr) = agent(&[]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CLAWSIM_SESSION_DIR is not set"),
        "{stderr}"
    );
    if !workspace_existed {
        assert!(!Path::new("/workspace").exists(), "/workspace was created");
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-session");
    let (status, stderr) = agent(&[("CLAWSIM_SESSION_DIR", missing.to_str().unwrap())]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(!missing.exists(), "the session folder was created");
}

#[test]
fn agent_whose_parent_is_gone_exits_instead_of_polling_forever() {
    // ProcessRuntime names the parent; a chat killed with SIGKILL cannot clean up, so its
    // agents notice they were orphaned. No process ever has pid u32::MAX: "gone" from the start.
    let dir = tempfile::tempdir().unwrap();
    let (status, stderr) = agent(&[
        ("CLAWSIM_SESSION_DIR", dir.path().to_str().unwrap()),
        ("CLAWSIM_PARENT_PID", &u32::MAX.to_string()),
    ]);
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("parent process gone"), "{stderr}");
}
