//! The Docker engine as clawsim-e2e reaches it: connecting (with API version negotiation, since
//! the engine may be older than bollard's default API), the labels every container carries, and
//! the clean-up of containers that no live process owns any more.
//!
//! **Why owners are recorded.** Several processes may use one engine at once (a test binary, a
//! `clawsim chat --docker`, another test binary of the same suite). A container is a leftover
//! only when the process that started it is gone, so each container carries its owner's identity
//! (host name, pid, and the pid's start time, which tells a reused pid apart) and only containers
//! whose owner is dead are removed at start.
//!
//! **Why a thread per call.** bollard is async; callers of this crate are sync code that may run
//! on a tokio runtime's thread (the host's), where `block_on` would panic. [`on_docker_thread`]
//! runs the async work on a fresh thread with its own current-thread runtime.

use bollard::query_parameters::{ListContainersOptions, LogsOptions, RemoveContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;

/// Label every container (and the image) started by clawsim-e2e carries.
pub const LABEL_E2E: &str = "clawsim.e2e";
/// Label with the run id of the [`crate::DockerOptions`] that started the container.
pub const LABEL_RUN: &str = "clawsim.run";
/// Label with the identity of the process that started the container (see [`owner_token`]).
pub const LABEL_OWNER: &str = "clawsim.owner";
/// Label with the session id the container serves.
pub const LABEL_SESSION: &str = "clawsim.session";

/// Lines of a container's log kept for a failure report.
pub const LOG_TAIL_LINES: usize = 200;

/// Connects to the engine named by `DOCKER_HOST`, else the default unix socket, negotiates the
/// API version down to the engine's, and pings it.
pub async fn connect() -> Result<Docker, String> {
    let docker = Docker::connect_with_defaults().map_err(|e| format!("connect: {e}"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("version negotiation: {e}"))?;
    docker.ping().await.map_err(|e| format!("ping: {e}"))?;
    Ok(docker)
}

/// Runs `work` on a fresh thread with its own current-thread tokio runtime and waits for it.
/// Safe to call from inside another runtime's thread.
pub fn on_docker_thread<T, F, W>(work: W) -> Result<T, String>
where
    T: Send + 'static,
    F: Future<Output = Result<T, String>>,
    W: FnOnce() -> F + Send + 'static,
{
    std::thread::Builder::new()
        .name("clawsim-docker".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            runtime.block_on(work())
        })
        .map_err(|e| format!("spawn docker thread: {e}"))?
        .join()
        .map_err(|_| "docker thread panicked".to_string())?
}

/// Whether an engine answers; `Err` carries the reason, for a "skipped" line.
pub fn probe() -> Result<(), String> {
    on_docker_thread(|| async { connect().await.map(|_| ()) })
}

/// This process's identity as recorded on its containers: `host:pid:start time`.
pub fn owner_token() -> String {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN
        .get_or_init(|| {
            let pid = std::process::id();
            format!(
                "{}:{pid}:{}",
                host_name(),
                process_start_time(pid).unwrap_or_default()
            )
        })
        .clone()
}

/// True unless `token` names a process on this host that is certainly gone. A token from
/// another host, or one that cannot be read, counts as alive: never remove what may be in use.
pub fn owner_alive(token: &str) -> bool {
    let mut parts = token.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return true;
    };
    if host != host_name() {
        return true;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return true;
    };
    if !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    process_start_time(pid).is_some_and(|now| now == start)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot), which differs
/// between two processes that got the same pid.
fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing paren are plain.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_string)
}

/// Ids of containers (running or not) carrying every `key=value` label given.
pub async fn containers_with_labels(
    docker: &Docker,
    labels: &[(&str, &str)],
) -> Result<Vec<(String, HashMap<String, String>)>, String> {
    let label_filters = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_string(), label_filters)])),
        ..Default::default()
    };
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| format!("list containers: {e}"))?;
    Ok(containers
        .into_iter()
        .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
        .collect())
}

/// Force-removes a container (killing it if it runs); a container already gone is fine.
pub async fn remove_container(docker: &Docker, id: &str) -> Result<(), String> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(format!("remove container {id}: {e}")),
    }
}

/// The last [`LOG_TAIL_LINES`] lines of a container's stdout and stderr.
pub async fn container_logs(docker: &Docker, id: &str) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: LOG_TAIL_LINES.to_string(),
        ..Default::default()
    };
    let mut stream = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(output) => text.push_str(&String::from_utf8_lossy(&output.into_bytes())),
            Err(e) => {
                text.push_str(&format!("<logs unavailable: {e}>\n"));
                break;
            }
        }
    }
    text
}

/// Removes every clawsim-e2e container whose owning process is gone; returns how many.
pub async fn remove_leftovers(docker: &Docker) -> Result<usize, String> {
    let mut removed = 0;
    for (id, labels) in containers_with_labels(docker, &[(LABEL_E2E, "1")]).await? {
        let owner = labels.get(LABEL_OWNER).map(String::as_str).unwrap_or("");
        if !owner_alive(owner) {
            remove_container(docker, &id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes leftovers once per process (the first caller pays; later calls return at once).
pub fn remove_leftovers_once() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        match on_docker_thread(|| async { remove_leftovers(&connect().await?).await }) {
            Ok(0) => {}
            Ok(n) => eprintln!("clawsim-e2e: removed {n} leftover container(s) of earlier runs"),
            Err(e) => eprintln!("clawsim-e2e: could not remove leftover containers: {e}"),
        }
    });
}

/// Removes every container of one run, returning `(name or id, logs)` of each when
/// `with_logs` (for a failure report).
pub fn remove_run(run_id: &str, with_logs: bool) -> Result<Vec<(String, String)>, String> {
    let run_id = run_id.to_string();
    on_docker_thread(move || async move {
        let docker = connect().await?;
        let mut logs = Vec::new();
        for (id, labels) in containers_with_labels(&docker, &[(LABEL_RUN, &run_id)]).await? {
            if with_logs {
                let session = labels.get(LABEL_SESSION).cloned().unwrap_or_default();
                logs.push((
                    format!("{id:.12} (session {session})"),
                    container_logs(&docker, &id).await,
                ));
            }
            remove_container(&docker, &id).await?;
        }
        Ok(logs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_dead_pid_is_not() {
        assert!(owner_alive(&owner_token()));
        let host = host_name();
        // pid_max is at most 2^22, so this pid never exists.
        assert!(!owner_alive(&format!("{host}:4194999:12345")));
        // Same pid, other start time: the pid was reused by another process.
        let pid = std::process::id();
        assert!(!owner_alive(&format!("{host}:{pid}:1")));
    }

    #[test]
    fn unreadable_or_foreign_owners_count_as_alive() {
        assert!(owner_alive(""));
        assert!(owner_alive("garbage"));
        assert!(owner_alive("some-other-host:1:1"));
    }
}

/// A fault injected from outside, as an operator (or the kernel) would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutsideFault {
    /// `docker kill`: the agent-runner dies at once.
    Kill,
    /// `docker pause`: the agent-runner is frozen, alive but silent.
    Pause,
}

/// Ids of the containers of one session of one run that run and are not paused.
pub async fn running_containers(
    docker: &Docker,
    run_id: &str,
    session_id: &str,
) -> Result<Vec<String>, String> {
    let labels = [(LABEL_RUN, run_id), (LABEL_SESSION, session_id)];
    let mut running = Vec::new();
    for (id, _) in containers_with_labels(docker, &labels).await? {
        let info = docker
            .inspect_container(
                &id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|e| format!("inspect {id}: {e}"))?;
        let state = info.state.unwrap_or_default();
        if state.running == Some(true) && state.paused != Some(true) {
            running.push(id);
        }
    }
    Ok(running)
}

/// Applies `fault` to the running containers of one session of one run; returns how many it hit.
pub fn inject(run_id: &str, session_id: &str, fault: OutsideFault) -> Result<usize, String> {
    let (run_id, session_id) = (run_id.to_string(), session_id.to_string());
    on_docker_thread(move || async move {
        let docker = connect().await?;
        let running = running_containers(&docker, &run_id, &session_id).await?;
        for id in &running {
            match fault {
                OutsideFault::Kill => crate::runtime::kill_container(&docker, id).await?,
                OutsideFault::Pause => docker
                    .pause_container(id)
                    .await
                    .map_err(|e| format!("pause {id}: {e}"))?,
            }
        }
        Ok(running.len())
    })
}

/// CPU time a container has used so far, in ns (one-shot stats).
pub async fn cpu_usage_ns(docker: &Docker, id: &str) -> Result<u64, String> {
    let options = bollard::query_parameters::StatsOptions {
        stream: false,
        one_shot: true,
    };
    let stats = docker
        .stats(id, Some(options))
        .next()
        .await
        .ok_or_else(|| format!("no stats for {id}"))?
        .map_err(|e| format!("stats {id}: {e}"))?;
    stats
        .cpu_stats
        .and_then(|cpu| cpu.cpu_usage)
        .and_then(|usage| usage.total_usage)
        .ok_or_else(|| format!("stats of {id} carry no CPU usage"))
}
