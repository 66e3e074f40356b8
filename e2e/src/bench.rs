//! Figures of the real thing, measured (never asserted): container start → first poll, message
//! → delivered reply at the protocol's default intervals and at the tuned test intervals, and
//! the CPU an idle agent container burns. Run with
//! `cargo run --release -p clawsim-e2e --example e2e_bench` (sample counts by
//! `CLAWSIM_E2E_BENCH_SAMPLES`, default 20).
//!
//! - **start → first poll**: from the runtime's start request to the session's `.heartbeat`
//!   appearing (create + start through the engine, process start, both DBs opened, first poll),
//!   on a session folder the host side prepared.
//! - **message → reply**: from handing a message to the live host to the channel receiving the
//!   mock's answer, one message at a time, with a warm container (the first, cold message is not
//!   counted). p99 of a few dozen samples is close to their maximum; read it as such.
//! - **idle CPU**: CPU time the container used over 10 s with nothing to do, as a percentage of
//!   one core (from the engine's one-shot stats, before and after).

use crate::engine;
use crate::world::{tune_for_tests, World};
use crate::{ensure_agent_image, DockerOptions, DockerRuntime};
use clawsim_core::config::HostConfig;
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::env::SessionPaths;
use clawsim_core::live::LiveEnv;
use clawsim_core::runtime::{ContainerRuntime, ContainerSpec};
use std::time::{Duration, Instant};

/// How long the idle CPU is measured over.
pub const IDLE_WINDOW: Duration = Duration::from_secs(10);

/// Samples, in ms, with their summary.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    /// The `q`-quantile (nearest rank), `NaN` when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }
}

/// One interval setting's figures.
#[derive(Debug, Clone, Default)]
pub struct LatencyFigures {
    pub reply_ms: Samples,
    pub idle_cpu_percent: f64,
}

/// Everything the bench measures.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub start_to_first_poll_ms: Samples,
    pub default_intervals: LatencyFigures,
    pub tuned_intervals: LatencyFigures,
}

/// Runs every measurement with `samples` samples each.
pub fn run(samples: usize) -> Result<Figures, String> {
    Ok(Figures {
        start_to_first_poll_ms: start_to_first_poll(samples)?,
        default_intervals: latency("bench-default", samples, |_| {})?,
        tuned_intervals: latency("bench-tuned", samples, tune_for_tests)?,
    })
}

/// The figures as a small table.
pub fn render(figures: &Figures) -> String {
    let row = |name: &str, samples: &Samples| {
        format!(
            "{name:<44} p50 {:>8.1} ms   p99 {:>8.1} ms   (n={})\n",
            samples.quantile(0.5),
            samples.quantile(0.99),
            samples.0.len()
        )
    };
    let mut out = String::new();
    out.push_str(&row(
        "container start -> first poll",
        &figures.start_to_first_poll_ms,
    ));
    out.push_str(&row(
        "message -> delivered reply, default intervals",
        &figures.default_intervals.reply_ms,
    ));
    out.push_str(&row(
        "message -> delivered reply, tuned intervals",
        &figures.tuned_intervals.reply_ms,
    ));
    out.push_str(&format!(
        "idle container CPU, default intervals        {:.3} % of one core\n",
        figures.default_intervals.idle_cpu_percent
    ));
    out.push_str(&format!(
        "idle container CPU, tuned intervals          {:.3} % of one core\n",
        figures.tuned_intervals.idle_cpu_percent
    ));
    out
}

/// Start → `.heartbeat`, `samples` times, on one prepared session folder.
pub fn start_to_first_poll(samples: usize) -> Result<Samples, String> {
    let image = ensure_agent_image()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let paths = SessionPaths::new(dir.path());
    // The host creates both files when it creates a session; do the same.
    for (path, schema) in [
        (paths.inbound_db(), Schema::Inbound),
        (paths.outbound_db(), Schema::Outbound),
    ] {
        Db::open(&LiveEnv::new(), &path, schema, Access::ReadWrite).map_err(|e| e.to_string())?;
    }
    let mut runtime = DockerRuntime::new(DockerOptions::new(image))?;
    let spec = ContainerSpec {
        session_id: "bench-start".into(),
        agent_group_id: "bench".into(),
        session_dir: dir.path().to_path_buf(),
        env_vars: Default::default(),
    };
    let mut measured = Samples::default();
    for _ in 0..samples {
        let _ = std::fs::remove_file(paths.heartbeat());
        let started = Instant::now();
        runtime.start(&spec)?;
        while !paths.heartbeat().exists() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "no heartbeat within 60 s: {:?}",
                    runtime.start_errors()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        measured.0.push(started.elapsed().as_secs_f64() * 1_000.0);
        runtime.kill("bench-start")?;
    }
    Ok(measured)
}

/// Message → reply in a live world configured by `configure`, then the idle container's CPU.
pub fn latency(
    name: &str,
    samples: usize,
    configure: impl FnOnce(&mut HostConfig),
) -> Result<LatencyFigures, String> {
    let mut world = World::start_with(name, configure).ok_or("no Docker engine")?;
    let warm_up = world.send("warm up");
    world.wait_answer(&warm_up, Duration::from_secs(120));
    let mut reply_ms = Samples::default();
    for _ in 0..samples {
        let sent_at = Instant::now();
        let marker = world.send("how long does this take?");
        world.wait_answer(&marker, Duration::from_secs(60));
        reply_ms.0.push(sent_at.elapsed().as_secs_f64() * 1_000.0);
    }
    // Idle: the query has ended and nothing is pending.
    world.wait_no_query_running(Duration::from_secs(120));
    let idle_cpu_percent = idle_cpu_percent(world.run_id(), &world.session_id())?;
    Ok(LatencyFigures {
        reply_ms,
        idle_cpu_percent,
    })
}

/// CPU the session's container uses over [`IDLE_WINDOW`], in % of one core.
fn idle_cpu_percent(run_id: &str, session_id: &str) -> Result<f64, String> {
    let (run_id, session_id) = (run_id.to_string(), session_id.to_string());
    engine::on_docker_thread(move || async move {
        let docker = engine::connect().await?;
        let running = engine::running_containers(&docker, &run_id, &session_id).await?;
        let id = running.first().ok_or("no running container to measure")?;
        let before_ns = engine::cpu_usage_ns(&docker, id).await?;
        let started = Instant::now();
        tokio::time::sleep(IDLE_WINDOW).await;
        let used_ns = engine::cpu_usage_ns(&docker, id).await? - before_ns;
        Ok(used_ns as f64 / started.elapsed().as_nanos() as f64 * 100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let samples = Samples((1..=100).map(f64::from).collect());
        assert_eq!(samples.quantile(0.5), 50.0);
        assert_eq!(samples.quantile(0.99), 99.0);
        assert_eq!(Samples(vec![7.0]).quantile(0.99), 7.0);
        assert!(Samples::default().quantile(0.5).is_nan());
    }
}
