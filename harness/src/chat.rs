//! `clawsim chat`: the smallest real use of the system. The live host routes each line typed
//! into a session whose agent-runner runs as a child process (or, with `--docker`, in a real
//! container), and prints the mock provider's replies as they are delivered.

use clawsim_core::config::HostConfig;
use clawsim_core::host::{Host, InboundEvent, SessionMode};
use clawsim_core::inspect::snapshot_session;
use clawsim_core::live::channels::TerminalChannel;
use clawsim_core::live::host::{spawn_host, HostInput, LiveHostHandle};
use clawsim_core::live::process_runtime::ProcessRuntime;
use clawsim_core::live::LiveEnv;
use clawsim_core::runtime::ContainerRuntime;
use clawsim_core::Env;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

pub const CHANNEL: &str = "terminal";
const PLATFORM_ID: &str = "local";

/// Options of `clawsim chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// Where the central DB and session folders live (default: a fresh temporary folder).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Your sender id.
    #[arg(long, default_value = "user")]
    pub user_id: String,
    /// Sender id allowed to run admin commands such as /clear (default: you).
    #[arg(long)]
    pub admin_id: Option<String>,
    /// Agent poll interval and host delivery interval, in ms.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: i64,
    /// After end of input, wait at most this long for every message to be answered.
    #[arg(long, default_value_t = 60)]
    pub drain_timeout_s: u64,
    /// Run each session's agent-runner in a real Docker container (the static `clawsim-agent`
    /// in a `FROM scratch` image, built on first use) instead of a child process.
    #[arg(long)]
    pub docker: bool,
}

/// Runs `clawsim chat` with the runtime its arguments ask for.
pub fn run(args: &ChatArgs) -> Result<(), String> {
    if !args.docker {
        let runtime = process_runtime()?;
        return run_chat(args, move || Box::new(runtime));
    }
    eprintln!("clawsim chat: building the agent image (first use takes a minute)...");
    let image = clawsim_e2e::ensure_agent_image()?;
    let options = clawsim_e2e::DockerOptions::new(image);
    // Fail before the host starts when the engine is unreachable.
    drop(clawsim_e2e::DockerRuntime::new(options.clone())?);
    run_chat(args, move || {
        match clawsim_e2e::DockerRuntime::new(options) {
            Ok(runtime) => Box::new(runtime),
            Err(error) => panic!("Docker runtime: {error}"),
        }
    })
}

/// Runs the chat on this terminal with `runtime` as the container runtime.
pub fn run_chat(
    args: &ChatArgs,
    make_runtime: impl FnOnce() -> Box<dyn ContainerRuntime> + Send + 'static,
) -> Result<(), String> {
    let (data_dir, _temp) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let mut config = HostConfig::new(&data_dir);
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
    let host = spawn_host(
        config,
        make_runtime,
        vec![Box::new(TerminalChannel::new(CHANNEL))],
        wire_terminal,
    )
    .map_err(|e| e.to_string())?;
    eprintln!(
        "clawsim chat: data in {}; type a message, /answer <questionId> <option>, or /quit",
        data_dir.display()
    );
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        match parse_line(&line, &args.user_id) {
            LineInput::Quit => break,
            LineInput::Nothing => {}
            LineInput::Send(input) => host.send(input),
        }
    }
    drain(&host, Duration::from_secs(args.drain_timeout_s));
    host.shutdown();
    Ok(())
}

fn wire_terminal(host: &mut Host) -> clawsim_core::Result<()> {
    host.add_agent_group("assistant", "Assistant")?;
    host.add_messaging_group("terminal-local", CHANNEL, PLATFORM_ID)?;
    host.wire("terminal-local", "assistant", 0, SessionMode::Shared)
}

/// What one typed line asks for.
pub enum LineInput {
    Send(HostInput),
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
    if let Some(rest) = line.strip_prefix("/answer ") {
        let mut parts = rest.trim().splitn(2, ' ');
        if let (Some(question_id), Some(option)) = (parts.next(), parts.next()) {
            return LineInput::Send(HostInput::Answer {
                question_id: question_id.to_string(),
                option: option.trim().to_string(),
            });
        }
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

/// Waits until every session is settled (all answered and delivered), at most `timeout`.
fn drain(host: &LiveHostHandle, timeout: Duration) {
    let env = LiveEnv::new();
    let deadline = env.now_ms() + timeout.as_millis() as i64;
    while env.now_ms() < deadline {
        let sessions = host.call(|h| h.active_sessions().unwrap_or_default());
        let settled = sessions.iter().all(|s| {
            snapshot_session(&env, &s.paths)
                .map(|snap| snap.is_settled(env.now_ms()))
                .unwrap_or(false)
        });
        if settled {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("clawsim chat: gave up waiting for replies after {timeout:?}");
}

/// The process runtime running `clawsim agent` (this very binary) per session.
pub fn process_runtime() -> Result<ProcessRuntime, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    Ok(ProcessRuntime::new(exe).with_args(&["agent"]))
}
