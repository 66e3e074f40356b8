//! DockerRuntime against a real engine, without the host: the core's container runtime contract
//! (start is a request that returns at once, state follows the container, kill and stop end it)
//! and the crate's housekeeping (every container labelled and mounted, removed with its runtime
//! after its logs are saved, leftovers of dead processes removed, live ones left alone).
//!
//! The agent-runner is started on an empty session folder: with no inbound.db it waits and
//! retries, so the container stays up until killed; with an unknown provider it exits at once.

use clawsim_core::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use clawsim_e2e::engine::{self, LABEL_E2E, LABEL_OWNER, LABEL_RUN};
use clawsim_e2e::world::docker_image_or_skip;
use clawsim_e2e::{DockerOptions, DockerRuntime};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn spec(dir: &std::path::Path, env: &[(&str, &str)]) -> ContainerSpec {
    ContainerSpec {
        session_id: "sess-rt".into(),
        agent_group_id: "agent".into(),
        session_dir: dir.to_path_buf(),
        env_vars: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Polls `state` until it is `want`, at most 120 s (an upper bound: a container starts in about
/// a second, but a busy machine can make the engine much slower).
fn wait_state(runtime: &mut DockerRuntime, want: ContainerState) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while runtime.state("sess-rt") != want {
        assert!(
            Instant::now() < deadline,
            "state stayed {:?}, wanted {want:?}; start errors: {:?}",
            runtime.state("sess-rt"),
            runtime.start_errors()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_containers(run_id: &str) -> Vec<(String, std::collections::HashMap<String, String>)> {
    let run_id = run_id.to_string();
    engine::on_docker_thread(move || async move {
        let docker = engine::connect().await?;
        engine::containers_with_labels(&docker, &[(LABEL_RUN, &run_id)]).await
    })
    .unwrap()
}

#[test]
fn a_started_container_runs_labelled_until_killed_and_is_removed_with_its_runtime() {
    let Some(image) = docker_image_or_skip("runtime") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let options = DockerOptions::new(image);
    let (run_id, logs) = (options.run_id.clone(), options.logs.clone());
    let mut runtime = DockerRuntime::new(options).unwrap();
    assert_eq!(runtime.state("sess-rt"), ContainerState::Stopped);

    runtime
        .start(&spec(dir.path(), &[("RUST_LOG", "info")]))
        .unwrap();
    assert_ne!(
        runtime.state("sess-rt"),
        ContainerState::Stopped,
        "start is a request, seen at once"
    );
    wait_state(&mut runtime, ContainerState::Running);
    // A second start while one runs is a no-op: still one container.
    runtime.start(&spec(dir.path(), &[])).unwrap();
    let containers = run_containers(&run_id);
    assert_eq!(containers.len(), 1, "{containers:?}");
    let labels = &containers[0].1;
    assert_eq!(labels.get(LABEL_E2E).map(String::as_str), Some("1"));
    assert_eq!(labels.get(LABEL_OWNER), Some(&engine::owner_token()));

    runtime.kill("sess-rt").unwrap();
    assert_eq!(runtime.state("sess-rt"), ContainerState::Stopped);
    // Killing what is already dead is not an error.
    runtime.kill("sess-rt").unwrap();

    drop(runtime);
    assert_eq!(
        run_containers(&run_id),
        vec![],
        "the runtime removes its containers"
    );
    assert_eq!(logs.all().len(), 1, "the removed container's logs are kept");
}

#[test]
fn a_container_that_exits_by_itself_reads_stopped_and_can_be_started_again() {
    let Some(image) = docker_image_or_skip("runtime") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let options = DockerOptions::new(image);
    let logs = options.logs.clone();
    let mut runtime = DockerRuntime::new(options).unwrap();
    // An unknown provider is a configuration error: the agent exits at once.
    runtime
        .start(&spec(dir.path(), &[("CLAWSIM_PROVIDER", "nope")]))
        .unwrap();
    wait_state(&mut runtime, ContainerState::Stopped);
    let first = runtime.container_id("sess-rt");
    runtime.start(&spec(dir.path(), &[])).unwrap();
    wait_state(&mut runtime, ContainerState::Running);
    assert_ne!(
        runtime.container_id("sess-rt"),
        first,
        "a new container, never a reused one"
    );
    drop(runtime);
    let all = logs.all();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .any(|(_, text)| text.contains("CLAWSIM_PROVIDER")),
        "the failed agent's complaint is in its logs: {all:?}"
    );
}

#[test]
fn a_paused_container_still_reads_running_and_can_be_killed() {
    let Some(image) = docker_image_or_skip("runtime") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut runtime = DockerRuntime::new(DockerOptions::new(image)).unwrap();
    runtime.start(&spec(dir.path(), &[])).unwrap();
    wait_state(&mut runtime, ContainerState::Running);
    runtime.pause("sess-rt").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        runtime.state("sess-rt"),
        ContainerState::Running,
        "a hung agent looks alive"
    );
    runtime.kill("sess-rt").unwrap();
    assert_eq!(runtime.state("sess-rt"), ContainerState::Stopped);
}

#[test]
fn leftovers_of_dead_processes_are_removed_and_live_ones_kept() {
    let Some(image) = docker_image_or_skip("runtime") else {
        return;
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let dead_owner = format!("{}:4194999:1", host.trim());
    let live_owner = engine::owner_token();
    let run_id = clawsim_e2e::runtime::new_run_id();
    let remaining = engine::on_docker_thread(move || async move {
        use bollard::models::ContainerCreateBody;
        let docker = engine::connect().await?;
        for owner in [dead_owner, live_owner] {
            let labels = [
                (LABEL_E2E.to_string(), "1".to_string()),
                (LABEL_RUN.to_string(), run_id.clone()),
                (LABEL_OWNER.to_string(), owner),
            ];
            let body = ContainerCreateBody {
                image: Some(image.clone()),
                labels: Some(labels.into_iter().collect()),
                ..Default::default()
            };
            docker
                .create_container(
                    None::<bollard::query_parameters::CreateContainerOptions>,
                    body,
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        engine::remove_leftovers(&docker).await?;
        let remaining = engine::containers_with_labels(&docker, &[(LABEL_RUN, &run_id)]).await?;
        for (id, _) in &remaining {
            engine::remove_container(&docker, id).await?;
        }
        Ok(remaining)
    })
    .unwrap();
    assert_eq!(remaining.len(), 1, "{remaining:?}");
    assert_eq!(
        remaining[0].1.get(LABEL_OWNER),
        Some(&engine::owner_token())
    );
}
