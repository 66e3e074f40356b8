//! Worker processes: `clawsim run --jobs J` runs its worlds in J child processes of its own
//! executable (`clawsim worker`), not in J threads.
//!
//! SQLite keeps process-wide state behind global mutexes — the page cache that the bundled
//! build (`SQLITE_ENABLE_MEMORY_MANAGEMENT`) shares between all connections, memory
//! statistics, the PRNG window of the simulated VFS — so worlds on threads of one process
//! wait on each other: two threads ran 1.2× one thread's seeds on this machine's two cores,
//! two processes 1.9×. Processes share nothing, and a world that crashes its process takes
//! only that worker down, with its seed named.
//!
//! The protocol is JSON lines: the parent writes one [`SeedRequest`] per line on a worker's
//! stdin and reads one [`SeedResult`] per request, in order, from its stdout; a worker ends at
//! EOF on stdin. Each worker holds [`IN_FLIGHT_PER_WORKER`] requests so it never waits for the
//! parent between seeds. Workers inherit stderr, so a panic's message reaches the terminal.

use crate::seeds::{PoolOptions, SeedPlan, SeedRequest, SeedResult};
use clap::ValueEnum;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

/// Requests a worker holds at once: the seed it runs and the next one.
pub const IN_FLIGHT_PER_WORKER: usize = 2;

/// `clawsim worker`: answers each request line on `input` with a result line on `output`,
/// until `input` ends.
pub fn serve(input: impl BufRead, mut output: impl Write) -> Result<(), String> {
    for line in input.lines() {
        let line = line.map_err(|e| format!("reading a request: {e}"))?;
        let request: SeedRequest =
            serde_json::from_str(&line).map_err(|e| format!("bad request {line:?}: {e}"))?;
        let result = request.run();
        serde_json::to_writer(&mut output, &result).map_err(|e| e.to_string())?;
        output
            .write_all(b"\n")
            .and_then(|()| output.flush())
            .map_err(|e| format!("writing the result of seed {}: {e}", request.seed))?;
    }
    Ok(())
}

/// A worker as the parent sees it.
struct Worker {
    child: Child,
    /// `None` once the parent has no more seeds for it.
    stdin: Option<ChildStdin>,
    in_flight: VecDeque<SeedRequest>,
}

/// What a worker's reader thread reports: a result line, or the end of its output.
type Report = (usize, Option<Result<SeedResult, String>>);

/// Runs the plan on `jobs` worker processes of `exe`; see [`crate::seeds::run_pool`].
pub(crate) fn run_pool(
    plan: &SeedPlan,
    options: &PoolOptions,
    exe: &Path,
    jobs: usize,
    mut on_result: impl FnMut(SeedResult),
) -> Result<(), String> {
    let started = Instant::now();
    let (sender, reports) = mpsc::channel::<Report>();
    let mut workers = Vec::new();
    for index in 0..jobs.max(1) {
        workers.push(spawn(exe, index, sender.clone())?);
    }
    drop(sender);
    let mut next = 0u64;
    let mut feed = |worker: &mut Worker| -> Result<(), String> {
        match options.request(plan, next, started) {
            Some(request) => {
                next += 1;
                send(worker, request)
            }
            None => {
                worker.stdin = None;
                Ok(())
            }
        }
    };
    let outcome = (|| {
        for worker in &mut workers {
            for _ in 0..IN_FLIGHT_PER_WORKER {
                feed(worker)?;
            }
        }
        while workers.iter().any(|w| !w.in_flight.is_empty()) {
            let (index, report) = reports
                .recv()
                .map_err(|_| "every worker's output ended".to_string())?;
            let worker = &mut workers[index];
            let result = match report {
                // A worker whose input was closed ends once it has answered everything.
                None if worker.in_flight.is_empty() => continue,
                None => Err("its output ended".to_string()),
                Some(result) => result,
            };
            let result = result.map_err(|error| died(worker, index, &error))?;
            worker.in_flight.pop_front();
            on_result(result);
            feed(worker)?;
        }
        Ok(())
    })();
    finish(workers, outcome.is_err());
    outcome
}

/// Starts worker `index` and the thread that reads its results into `reports`.
fn spawn(exe: &Path, index: usize, reports: mpsc::Sender<Report>) -> Result<Worker, String> {
    let mut child = Command::new(exe)
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting worker process {}: {e}", exe.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let result = line
                .map_err(|e| format!("reading its output: {e}"))
                .and_then(|l| serde_json::from_str(&l).map_err(|e| format!("bad result: {e}")));
            if reports.send((index, Some(result))).is_err() {
                return;
            }
        }
        let _ = reports.send((index, None));
    });
    Ok(Worker {
        stdin: child.stdin.take(),
        child,
        in_flight: VecDeque::new(),
    })
}

fn send(worker: &mut Worker, request: SeedRequest) -> Result<(), String> {
    let mut line = serde_json::to_string(&request).map_err(|e| e.to_string())?;
    line.push('\n');
    let stdin = worker
        .stdin
        .as_mut()
        .expect("a worker is fed until its stdin is closed");
    stdin
        .write_all(line.as_bytes())
        .and_then(|()| stdin.flush())
        .map_err(|e| {
            format!(
                "worker {}: sending seed {}: {e}",
                worker.child.id(),
                request.seed
            )
        })?;
    worker.in_flight.push_back(request);
    Ok(())
}

/// The error for a worker that failed: the seed it was running and how to run that seed alone.
fn died(worker: &mut Worker, index: usize, error: &str) -> String {
    let status = worker
        .child
        .wait()
        .map_or_else(|e| e.to_string(), |s| s.to_string());
    match worker.in_flight.front() {
        Some(request) => {
            let workload = request
                .workload
                .to_possible_value()
                .expect("no skipped variant");
            format!(
                "worker {index} failed while running seed {seed} (profile {profile}): {error} \
                 ({status}); run it alone with `clawsim replay {seed} --profile {profile} \
                 --workload {workload}`",
                seed = request.seed,
                profile = request.profile.name(),
                workload = workload.get_name(),
            )
        }
        None => format!("worker {index} failed between seeds: {error} ({status})"),
    }
}

/// Closes every worker's input and waits for it; after a failure, kills the others first.
fn finish(workers: Vec<Worker>, failed: bool) {
    for mut worker in workers {
        worker.stdin = None;
        if failed {
            let _ = worker.child.kill();
        }
        let _ = worker.child.wait();
    }
}
