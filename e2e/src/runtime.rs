//! [`DockerRuntime`]: the core's [`ContainerRuntime`] over a real Docker engine.
//!
//! The host calls the runtime synchronously from its own thread, which runs a tokio
//! current-thread runtime, so the runtime must never block on async work there. It owns a
//! worker thread with its own tokio runtime that talks to the engine; the host's side sends it
//! commands over a channel. `start` is fire-and-forget (the state reads `Starting` until the
//! worker has created and started the container), `kill` waits for the worker's answer for a
//! bounded time, and `state` reads a table the worker keeps current: a waiter task per
//! container marks it `Stopped` as soon as the engine reports that it exited.
//!
//! A paused container (`docker pause`) stays `Running`: that is the hung agent the host must
//! find through its stale heartbeat and kill.
//!
//! Containers are never reused: each start creates a new one, labelled with the run and the
//! session; dead ones are kept (their logs are evidence) until the runtime is dropped, which
//! saves their logs into the run's [`LogArchive`] and removes them.

use crate::engine::{
    connect, container_logs, containers_with_labels, remove_container, remove_leftovers_once,
    LABEL_E2E, LABEL_OWNER, LABEL_RUN, LABEL_SESSION,
};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, KillContainerOptions};
use bollard::Docker;
use clawsim_core::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Where the session folder is mounted inside the container.
pub const WORKSPACE_IN_CONTAINER: &str = "/workspace";

/// Logs of containers that are gone, kept for failure reports: `(container, logs)`.
#[derive(Debug, Clone, Default)]
pub struct LogArchive(Arc<Mutex<Vec<(String, String)>>>);

impl LogArchive {
    /// Every container's logs saved so far, in the order they were saved.
    pub fn all(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, container: String, logs: String) {
        self.0.lock().unwrap().push((container, logs));
    }
}

/// How [`DockerRuntime`] creates containers.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// The agent-runner image (from [`crate::ensure_agent_image`]).
    pub image: String,
    /// Labels every container of this run; [`crate::engine::remove_run`] removes them all.
    pub run_id: String,
    pub memory_limit_bytes: i64,
    /// CPU limit in billionths of a CPU.
    pub cpu_limit_nano: i64,
    pub pids_limit: i64,
    /// How long `kill` waits for the engine before it gives up.
    pub reply_timeout_ms: u64,
    /// `uid:gid` the agent-runner runs as; `None` = the owner of the session folder when that is
    /// not root (so the host can clean up what the container wrote), else the image's default.
    pub user: Option<String>,
    /// Environment added to every container after the spec's own.
    pub extra_env: BTreeMap<String, String>,
    /// Logs of removed containers land here.
    pub logs: LogArchive,
}

impl DockerOptions {
    /// Options for `image` with a fresh run id and modest limits (256 MiB, one CPU, 128 pids).
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            run_id: new_run_id(),
            memory_limit_bytes: 256 << 20,
            cpu_limit_nano: 1_000_000_000,
            pids_limit: 128,
            reply_timeout_ms: 15_000,
            user: None,
            extra_env: BTreeMap::new(),
            logs: LogArchive::default(),
        }
    }
}

/// A run id unique across processes and within one: `<pid>-<counter>-<time>`.
pub fn new_run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    format!(
        "{}-{}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos & 0xff_ffff
    )
}

/// One session's container as the runtime last knew it.
#[derive(Debug, Clone)]
struct Slot {
    state: ContainerState,
    /// Bumped by every start request, so a late report about an older container is ignored.
    generation: u64,
    container_id: Option<String>,
}

#[derive(Default)]
struct Shared {
    slots: BTreeMap<String, Slot>,
    /// Engine errors that made a start fail, for reports.
    errors: Vec<String>,
}

type SharedRef = Arc<Mutex<Shared>>;
type Reply = std_mpsc::Sender<Result<(), String>>;

enum Command {
    Start {
        spec: ContainerSpec,
        generation: u64,
    },
    Kill {
        session_id: String,
        reply: Reply,
    },
    Pause {
        session_id: String,
        reply: Reply,
    },
    Shutdown {
        reply: Reply,
    },
}

/// The core's container runtime on a Docker engine (see the module docs).
pub struct DockerRuntime {
    options: DockerOptions,
    shared: SharedRef,
    commands: mpsc::UnboundedSender<Command>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl DockerRuntime {
    /// Connects to the engine and starts the worker. Leftover containers of dead processes are
    /// removed first (once per process).
    pub fn new(options: DockerOptions) -> Result<DockerRuntime, String> {
        remove_leftovers_once();
        let shared = SharedRef::default();
        let (commands, receiver) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let worker = Worker {
            options: options.clone(),
            shared: shared.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("clawsim-docker-runtime".into())
            .spawn(move || worker.run(receiver, ready_tx))
            .map_err(|e| format!("spawn docker runtime thread: {e}"))?;
        let ready = ready_rx
            .recv_timeout(Duration::from_millis(options.reply_timeout_ms))
            .unwrap_or_else(|_| Err("docker runtime did not come up".into()));
        ready?;
        Ok(DockerRuntime {
            options,
            shared,
            commands,
            worker: Some(handle),
        })
    }

    /// The options this runtime was made with (its run id, image, log archive).
    pub fn options(&self) -> &DockerOptions {
        &self.options
    }

    /// Engine errors that made starts fail so far.
    pub fn start_errors(&self) -> Vec<String> {
        self.shared.lock().unwrap().errors.clone()
    }

    /// The id of the session's current (or last) container.
    pub fn container_id(&self, session_id: &str) -> Option<String> {
        let shared = self.shared.lock().unwrap();
        shared.slots.get(session_id)?.container_id.clone()
    }

    /// Freezes the session's container (`docker pause`): alive but silent.
    pub fn pause(&mut self, session_id: &str) -> Result<(), String> {
        let session_id = session_id.to_string();
        self.request(|reply| Command::Pause { session_id, reply })
    }

    fn request(&self, command: impl FnOnce(Reply) -> Command) -> Result<(), String> {
        let (reply, answer) = std_mpsc::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| "docker runtime worker is gone".to_string())?;
        answer
            .recv_timeout(Duration::from_millis(self.options.reply_timeout_ms))
            .map_err(|_| {
                format!(
                    "docker engine did not answer within {} ms",
                    self.options.reply_timeout_ms
                )
            })?
    }
}

impl ContainerRuntime for DockerRuntime {
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        let generation = {
            let mut shared = self.shared.lock().unwrap();
            let slot = shared.slots.entry(spec.session_id.clone()).or_insert(Slot {
                state: ContainerState::Stopped,
                generation: 0,
                container_id: None,
            });
            if slot.state != ContainerState::Stopped {
                return Ok(());
            }
            slot.state = ContainerState::Starting;
            slot.generation += 1;
            slot.generation
        };
        self.commands
            .send(Command::Start {
                spec: spec.clone(),
                generation,
            })
            .map_err(|_| "docker runtime worker is gone".to_string())
    }

    fn state(&mut self, session_id: &str) -> ContainerState {
        let shared = self.shared.lock().unwrap();
        shared
            .slots
            .get(session_id)
            .map_or(ContainerState::Stopped, |slot| slot.state)
    }

    fn kill(&mut self, session_id: &str) -> Result<(), String> {
        let session_id = session_id.to_string();
        self.request(|reply| Command::Kill { session_id, reply })
    }
}

impl Drop for DockerRuntime {
    /// Saves the logs of every container this runtime started and removes them (bounded by the
    /// reply timeout per container; the run's guard removes whatever is left).
    fn drop(&mut self) {
        let containers = self.shared.lock().unwrap().slots.len() as u64;
        let (reply, answer) = std_mpsc::channel();
        if self.commands.send(Command::Shutdown { reply }).is_ok() {
            let wait_ms = self.options.reply_timeout_ms * (containers + 1);
            if answer.recv_timeout(Duration::from_millis(wait_ms)).is_err() {
                eprintln!("clawsim-e2e: docker runtime shutdown timed out; containers may remain");
                return;
            }
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The worker thread: owns the engine connection and every container of this runtime.
struct Worker {
    options: DockerOptions,
    shared: SharedRef,
}

impl Worker {
    fn run(
        self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        ready: std_mpsc::Sender<Result<(), String>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = ready.send(Err(format!("tokio runtime: {e}")));
                return;
            }
        };
        runtime.block_on(async move {
            let docker = match connect().await {
                Ok(docker) => docker,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            // Commands run one at a time, so a kill always sees the container its start made.
            let mut started: Vec<String> = Vec::new();
            let mut adopted_sessions: Vec<String> = Vec::new();
            while let Some(command) = commands.recv().await {
                match command {
                    Command::Start { spec, generation } => {
                        if !adopted_sessions.contains(&spec.session_id) {
                            adopted_sessions.push(spec.session_id.clone());
                            self.kill_orphans(&docker, &spec.session_id).await;
                        }
                        if let Some(id) = self.start(&docker, &spec, generation).await {
                            started.push(id);
                        }
                    }
                    Command::Kill { session_id, reply } => {
                        let _ = reply.send(self.kill(&docker, &session_id).await);
                    }
                    Command::Pause { session_id, reply } => {
                        let _ = reply.send(self.pause(&docker, &session_id).await);
                    }
                    Command::Shutdown { reply } => {
                        self.remove_all(&docker, &started).await;
                        let _ = reply.send(Ok(()));
                        return;
                    }
                }
            }
        });
    }

    /// Creates and starts a container for `spec`; records the outcome in the session's slot.
    async fn start(
        &self,
        docker: &Docker,
        spec: &ContainerSpec,
        generation: u64,
    ) -> Option<String> {
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(container_name(&spec.session_id)),
                    ..Default::default()
                }),
                self.container_config(spec),
            )
            .await;
        let id = match created {
            Ok(response) => response.id,
            Err(e) => {
                self.start_failed(spec, generation, format!("create: {e}"));
                return None;
            }
        };
        self.update_slot(&spec.session_id, generation, |slot| {
            slot.container_id = Some(id.clone())
        });
        match docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            Ok(()) => {
                self.update_slot(&spec.session_id, generation, |slot| {
                    slot.state = ContainerState::Running
                });
                self.watch_exit(
                    docker.clone(),
                    spec.session_id.clone(),
                    generation,
                    id.clone(),
                );
            }
            Err(e) => self.start_failed(spec, generation, format!("start: {e}")),
        }
        Some(id)
    }

    fn container_config(&self, spec: &ContainerSpec) -> ContainerCreateBody {
        let mut env = spec.env_vars.clone();
        env.extend(self.options.extra_env.clone());
        // The agent-runner must look at the mount, whatever path the host gave the folder.
        env.insert("CLAWSIM_SESSION_DIR".into(), WORKSPACE_IN_CONTAINER.into());
        env.insert("TMPDIR".into(), "/tmp".into());
        let labels = HashMap::from([
            (LABEL_E2E.to_string(), "1".to_string()),
            (LABEL_RUN.to_string(), self.options.run_id.clone()),
            (LABEL_OWNER.to_string(), crate::engine::owner_token()),
            (LABEL_SESSION.to_string(), spec.session_id.clone()),
            (
                "clawsim.agent_group".to_string(),
                spec.agent_group_id.clone(),
            ),
        ]);
        ContainerCreateBody {
            image: Some(self.options.image.clone()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            user: self.options.user.clone().or_else(|| folder_owner(spec)),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                binds: Some(vec![format!(
                    "{}:{WORKSPACE_IN_CONTAINER}",
                    spec.session_dir.display()
                )]),
                memory: Some(self.options.memory_limit_bytes),
                nano_cpus: Some(self.options.cpu_limit_nano),
                pids_limit: Some(self.options.pids_limit),
                network_mode: Some("none".into()),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_string(),
                    "rw,size=16m".to_string(),
                )])),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn start_failed(&self, spec: &ContainerSpec, generation: u64, error: String) {
        let message = format!("session {}: {error}", spec.session_id);
        eprintln!("clawsim-e2e: container start failed: {message}");
        self.update_slot(&spec.session_id, generation, |slot| {
            slot.state = ContainerState::Stopped
        });
        self.shared.lock().unwrap().errors.push(message);
    }

    /// Applies `change` to the session's slot if it still belongs to `generation`.
    fn update_slot(&self, session_id: &str, generation: u64, change: impl FnOnce(&mut Slot)) {
        update_slot(&self.shared, session_id, generation, change);
    }

    /// Marks the slot `Stopped` when the engine says the container is no longer running.
    fn watch_exit(&self, docker: Docker, session_id: String, generation: u64, id: String) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            loop {
                let mut wait = docker
                    .wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
                // Any answer (an exit code, an error for a non-zero one, or the end of the
                // stream) ends the wait; the inspect below tells whether it really exited.
                let _ = wait.next().await;
                drop(wait);
                let running = match docker
                    .inspect_container(
                        &id,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                {
                    Ok(info) => info.state.and_then(|s| s.running).unwrap_or(false),
                    Err(_) => false,
                };
                if !running {
                    update_slot(&shared, &session_id, generation, |slot| {
                        slot.state = ContainerState::Stopped
                    });
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    async fn kill(&self, docker: &Docker, session_id: &str) -> Result<(), String> {
        let Some((id, generation)) = self.current(session_id) else {
            return Ok(());
        };
        let result = kill_container(docker, &id).await;
        if result.is_ok() {
            self.update_slot(session_id, generation, |slot| {
                slot.state = ContainerState::Stopped
            });
        }
        result.map_err(|e| format!("session {session_id}: {e}"))
    }

    async fn pause(&self, docker: &Docker, session_id: &str) -> Result<(), String> {
        let Some((id, _)) = self.current(session_id) else {
            return Err(format!("session {session_id} has no container"));
        };
        docker
            .pause_container(&id)
            .await
            .map_err(|e| format!("session {session_id}: pause {id}: {e}"))
    }

    fn current(&self, session_id: &str) -> Option<(String, u64)> {
        let shared = self.shared.lock().unwrap();
        let slot = shared.slots.get(session_id)?;
        Some((slot.container_id.clone()?, slot.generation))
    }

    /// Kills the containers of `session_id` that an earlier runtime of the same run left
    /// running (a host restarted within one run): one writer per session folder, always.
    async fn kill_orphans(&self, docker: &Docker, session_id: &str) {
        let labels = [
            (LABEL_RUN, self.options.run_id.as_str()),
            (LABEL_SESSION, session_id),
        ];
        let Ok(orphans) = containers_with_labels(docker, &labels).await else {
            return;
        };
        for (id, _) in orphans {
            if let Err(e) = kill_container(docker, &id).await {
                eprintln!("clawsim-e2e: could not kill orphan container {id}: {e}");
            }
        }
    }

    async fn remove_all(&self, docker: &Docker, started: &[String]) {
        for id in started {
            let logs = container_logs(docker, id).await;
            self.options.logs.push(id.chars().take(12).collect(), logs);
            if let Err(e) = remove_container(docker, id).await {
                eprintln!("clawsim-e2e: {e}");
            }
        }
    }
}

fn update_slot(
    shared: &SharedRef,
    session_id: &str,
    generation: u64,
    change: impl FnOnce(&mut Slot),
) {
    let mut shared = shared.lock().unwrap();
    if let Some(slot) = shared.slots.get_mut(session_id) {
        if slot.generation == generation {
            change(slot);
        }
    }
}

/// SIGKILL; a container that is not running is already what was asked for, and a paused one
/// is thawed first on engines that refuse to kill it frozen.
pub async fn kill_container(docker: &Docker, id: &str) -> Result<(), String> {
    let kill = || docker.kill_container(id, None::<KillContainerOptions>);
    match kill().await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            message,
        }) if !message.contains("paused") => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { message, .. })
            if message.contains("paused") =>
        {
            let _ = docker.unpause_container(id).await;
            kill().await.map_err(|e| format!("kill {id}: {e}"))
        }
        Err(e) => Err(format!("kill {id}: {e}")),
    }
}

/// A readable, unique container name: `clawsim-<session>-<counter>-<random>`.
fn container_name(session_id: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let cleaned: String = session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "clawsim-{cleaned}-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `uid:gid` of the session folder's owner, unless that is root.
fn folder_owner(spec: &ContainerSpec) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(&spec.session_dir).ok()?;
    (metadata.uid() != 0).then(|| format!("{}:{}", metadata.uid(), metadata.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_valid_and_unique() {
        let a = container_name("sess/with:odd chars");
        let b = container_name("sess/with:odd chars");
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(new_run_id(), new_run_id());
    }
}
