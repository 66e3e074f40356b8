//! The agent-runner process: configuration from environment variables, then the poll loop on the
//! real clock. `clawsim-agent` is a thin `main` around [`run_agent`].

use crate::config::{Design, RunnerConfig, DESIGN_VAR};
use crate::env::{Env, SessionPaths};
use crate::live::agent_lock;
use crate::live::env::{sleep_until_ms, LiveEnv};
use crate::live::process_runtime::PARENT_PID_VAR;
use crate::provider::Provider;
use crate::runner::mock::MockProvider;
use crate::runner::AgentRunner;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

/// The environment variables `clawsim-agent` reads, with what each means; printed by `--help`.
pub const AGENT_ENV_VARS: &[(&str, &str)] = &[
    (
        "CLAWSIM_SESSION_DIR",
        "session folder holding inbound.db, outbound.db, .heartbeat, outbox/ (default \
         /workspace in a container; required by `clawsim agent`)",
    ),
    ("CLAWSIM_INBOUND_DB", "override the inbound.db path"),
    ("CLAWSIM_OUTBOUND_DB", "override the outbound.db path"),
    ("CLAWSIM_HEARTBEAT", "override the .heartbeat path"),
    (
        "CLAWSIM_POLL_IDLE_MS",
        "poll interval with no query running (default 1000)",
    ),
    (
        "CLAWSIM_POLL_ACTIVE_MS",
        "poll interval while a query runs (default 500)",
    ),
    (
        "CLAWSIM_QUERY_IDLE_TIMEOUT_MS",
        "end a query after this long without events or messages (default 20000)",
    ),
    (
        "CLAWSIM_ADMIN_USER_ID",
        "sender id allowed to run admin commands",
    ),
    (
        "CLAWSIM_TZ",
        "time zone of times shown to the agent (default UTC)",
    ),
    ("CLAWSIM_PROVIDER", "provider to use: mock (the only one)"),
    (
        DESIGN_VAR,
        "storage design of the session files: v2 (default), split-wal, full-sync, normal-sync, \
         db-heartbeat, single-delete, v1-single-wal (set by the host)",
    ),
    (
        "CLAWSIM_AGENT_LOCK",
        "lock file held while the agent lives; if another agent holds it, exit at once",
    ),
    (
        "CLAWSIM_MOCK_SCRIPT",
        "file with a mock script applied to every prompt without its own",
    ),
    (
        PARENT_PID_VAR,
        "exit once the process with this pid is no longer the parent (set by ProcessRuntime)",
    ),
];

/// How the agent process is set up, as read from its environment.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub runner: RunnerConfig,
    pub mock_default_script: Option<String>,
    /// Exit once this process is no longer the parent (it died; the agent was orphaned).
    pub parent_pid: Option<u32>,
    /// The session's agent lock ([`crate::live::agent_lock`]), when the runtime gave one.
    pub lock_file: Option<PathBuf>,
}

/// The settings of an agent-runner outside a container (`clawsim agent`): as
/// [`settings_from_vars`], except that the session folder must be named and must exist. The
/// `/workspace` default is the container's mount point; on a host it would be a folder created
/// at the filesystem root, polled forever with nobody writing to it.
pub fn local_settings_from_vars(vars: &BTreeMap<String, String>) -> Result<AgentSettings, String> {
    let session_dir = vars
        .get("CLAWSIM_SESSION_DIR")
        .filter(|dir| !dir.is_empty())
        .ok_or(
            "CLAWSIM_SESSION_DIR is not set: `clawsim agent` runs the agent-runner of one \
             session and needs that session's folder (the host, e.g. `clawsim chat`, sets it); \
             see `clawsim-agent --help` for every setting",
        )?;
    if !std::path::Path::new(session_dir).is_dir() {
        return Err(format!(
            "CLAWSIM_SESSION_DIR: {session_dir}: no such folder (the host creates a session's \
             folder before it starts the session's agent-runner)"
        ));
    }
    settings_from_vars(vars)
}

/// Reads the settings from environment variables; an error names the variable.
pub fn settings_from_vars(vars: &BTreeMap<String, String>) -> Result<AgentSettings, String> {
    let session_dir = vars
        .get("CLAWSIM_SESSION_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/workspace"));
    let mut runner = RunnerConfig::new(SessionPaths::new(session_dir));
    runner.paths.inbound_override = vars.get("CLAWSIM_INBOUND_DB").map(PathBuf::from);
    runner.paths.outbound_override = vars.get("CLAWSIM_OUTBOUND_DB").map(PathBuf::from);
    runner.paths.heartbeat_override = vars.get("CLAWSIM_HEARTBEAT").map(PathBuf::from);
    if let Some(name) = vars.get(DESIGN_VAR).filter(|name| !name.is_empty()) {
        runner.set_design(Design::by_name(name).map_err(|e| format!("{DESIGN_VAR}: {e}"))?);
    }
    read_ms(
        vars,
        "CLAWSIM_POLL_IDLE_MS",
        &mut runner.poll_interval_idle_ms,
    )?;
    read_ms(
        vars,
        "CLAWSIM_POLL_ACTIVE_MS",
        &mut runner.poll_interval_active_ms,
    )?;
    read_ms(
        vars,
        "CLAWSIM_QUERY_IDLE_TIMEOUT_MS",
        &mut runner.query_idle_timeout_ms,
    )?;
    runner.admin_user_id = vars
        .get("CLAWSIM_ADMIN_USER_ID")
        .filter(|id| !id.is_empty())
        .cloned();
    if let Some(zone) = vars.get("CLAWSIM_TZ") {
        runner.time_zone =
            crate::time::parse_time_zone(zone).map_err(|e| format!("CLAWSIM_TZ: {e}"))?;
    }
    match vars.get("CLAWSIM_PROVIDER").map(String::as_str) {
        None | Some("mock") => {}
        Some(other) => return Err(format!("CLAWSIM_PROVIDER: unknown provider {other:?}")),
    }
    let mock_default_script = match vars.get("CLAWSIM_MOCK_SCRIPT") {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("CLAWSIM_MOCK_SCRIPT: {path}: {e}"))?,
        ),
        None => None,
    };
    let parent_pid = match vars.get(PARENT_PID_VAR) {
        Some(text) => Some(
            text.parse::<u32>()
                .map_err(|_| format!("{PARENT_PID_VAR}: expected a process id, got {text:?}"))?,
        ),
        None => None,
    };
    Ok(AgentSettings {
        runner,
        mock_default_script,
        parent_pid,
        lock_file: vars.get("CLAWSIM_AGENT_LOCK").map(PathBuf::from),
    })
}

fn read_ms(vars: &BTreeMap<String, String>, name: &str, into: &mut i64) -> Result<(), String> {
    if let Some(text) = vars.get(name) {
        *into = text
            .parse::<i64>()
            .ok()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| format!("{name}: expected a positive number of ms, got {text:?}"))?;
    }
    Ok(())
}

/// Exit code of an agent that found its session's lock held by another agent.
pub const EXIT_SESSION_TAKEN: i32 = 75;

/// Takes the session's agent lock, if one is configured; `Err(exit code)` when another live
/// agent holds it: one agent-runner per session, never two writers of one outbound.db.
fn lock_session(settings: &AgentSettings) -> Result<Option<agent_lock::AgentLock>, i32> {
    let Some(path) = &settings.lock_file else {
        return Ok(None);
    };
    match agent_lock::acquire(path) {
        Ok(Some(lock)) => Ok(Some(lock)),
        Ok(None) => {
            tracing::warn!(lock = %path.display(), "another agent-runner holds this session");
            Err(EXIT_SESSION_TAKEN)
        }
        Err(error) => {
            tracing::warn!(lock = %path.display(), %error, "agent lock not taken; running anyway");
            Ok(None)
        }
    }
}

fn provider_for(settings: &AgentSettings) -> Box<dyn Provider> {
    match &settings.mock_default_script {
        Some(script) => Box::new(MockProvider::with_default_script(script)),
        None => Box::new(MockProvider::new()),
    }
}

/// True when the agent was started by a parent process that is gone.
fn orphaned(settings: &AgentSettings) -> bool {
    settings
        .parent_pid
        .is_some_and(|pid| std::os::unix::process::parent_id() != pid)
}

/// Exit code of an agent whose parent is gone.
const ORPHANED_EXIT_CODE: i32 = 3;

/// Runs the agent-runner until its provider exits the process (or its parent, when it has one,
/// is gone); returns the exit code. Errors of a step are logged and retried at the idle interval:
/// a loop never crashes.
pub fn run_agent(settings: AgentSettings) -> i32 {
    let _lock = match lock_session(&settings) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let env: Rc<dyn Env> = Rc::new(LiveEnv::new());
    let idle_ms = settings.runner.poll_interval_idle_ms;
    let mut runner = loop {
        if orphaned(&settings) {
            tracing::warn!("parent process gone; exiting");
            return ORPHANED_EXIT_CODE;
        }
        match AgentRunner::start(
            env.clone(),
            settings.runner.clone(),
            provider_for(&settings),
        ) {
            Ok(runner) => break runner,
            Err(error) => {
                tracing::warn!(%error, "agent-runner could not start; retrying");
                sleep_until_ms(env.now_ms() + idle_ms);
            }
        }
    };
    tracing::info!(session_dir = %settings.runner.paths.root.display(), "agent-runner started");
    loop {
        if orphaned(&settings) {
            tracing::warn!("parent process gone; exiting");
            return ORPHANED_EXIT_CODE;
        }
        let wake_ms = match runner.step() {
            Ok(step) => {
                if let Some(code) = step.exit_code {
                    tracing::warn!(code, "provider exited the process");
                    return code;
                }
                step.next_wake_ms
            }
            Err(error) => {
                tracing::warn!(%error, "poll iteration failed; retrying");
                env.now_ms() + idle_ms
            }
        };
        sleep_until_ms(wake_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn a_local_agent_needs_an_existing_session_folder() {
        let error = local_settings_from_vars(&vars(&[])).unwrap_err();
        assert!(
            error.starts_with("CLAWSIM_SESSION_DIR is not set"),
            "{error}"
        );
        let error = local_settings_from_vars(&vars(&[("CLAWSIM_SESSION_DIR", "")])).unwrap_err();
        assert!(
            error.starts_with("CLAWSIM_SESSION_DIR is not set"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error =
            local_settings_from_vars(&vars(&[("CLAWSIM_SESSION_DIR", missing.to_str().unwrap())]))
                .unwrap_err();
        assert!(error.contains("no such folder"), "{error}");
        let settings = local_settings_from_vars(&vars(&[
            ("CLAWSIM_SESSION_DIR", dir.path().to_str().unwrap()),
            (PARENT_PID_VAR, "42"),
        ]))
        .unwrap();
        assert_eq!(settings.runner.paths.root, dir.path());
        assert_eq!(settings.parent_pid, Some(42));
    }

    #[test]
    fn a_container_agent_keeps_the_workspace_default() {
        let settings = settings_from_vars(&vars(&[])).unwrap();
        assert_eq!(settings.runner.paths.root, PathBuf::from("/workspace"));
        assert_eq!(settings.parent_pid, None);
        assert!(settings_from_vars(&vars(&[(PARENT_PID_VAR, "me")])).is_err());
    }
}
