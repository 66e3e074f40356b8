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
//!
//! A worker can die at any point of that exchange: before it reads a request (the parent's
//! write fails with a broken pipe), after reading one (its output ends), by writing a line
//! that is not a result, or by exiting non-zero after its last answer. Which of these the
//! parent sees first depends on how the two processes were scheduled, so the report does not:
//! a failed write only marks the worker as no longer fed, and the worker is judged when its
//! output ends, by the oldest seed it was sent and did not answer — the one it was running.
//! That seed is named with its profile and the command that runs it alone.

use crate::seeds::{PoolOptions, SeedPlan, SeedRequest, SeedResult};
use clap::ValueEnum;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
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
    /// `None` once the parent feeds it no more: the plan is spent, or a write to it failed.
    stdin: Option<ChildStdin>,
    /// Requests sent (or being sent when the write failed) and not yet answered, oldest first.
    in_flight: VecDeque<SeedRequest>,
    /// Why the last write to it failed: a worker that stopped reading, reported once its
    /// output ends.
    send_error: Option<String>,
}

/// What a worker's reader thread reports: a result line, or the end of its output. A reader
/// stops at its first unreadable line.
type Report = (usize, Option<Result<SeedResult, String>>);

/// Runs the plan on `jobs` worker processes of `exe`; see [`crate::seeds::run_pool`].
pub(crate) fn run_pool(
    plan: &SeedPlan,
    options: &PoolOptions,
    exe: &Path,
    jobs: usize,
    on_result: impl FnMut(SeedResult),
) -> Result<(), String> {
    let started = Instant::now();
    let (sender, reports) = mpsc::channel::<Report>();
    let mut workers = Vec::new();
    for index in 0..jobs.max(1) {
        let mut command = Command::new(exe);
        command.arg("worker");
        match spawn(command, index, sender.clone()) {
            Ok(worker) => workers.push(worker),
            Err(error) => {
                let _ = finish(workers, true);
                return Err(error);
            }
        }
    }
    drop(sender);
    drive(plan, options, started, workers, &reports, on_result)
}

/// Feeds the workers the plan's seeds and collects their results until every seed sent is
/// answered, or one worker fails.
fn drive(
    plan: &SeedPlan,
    options: &PoolOptions,
    started: Instant,
    mut workers: Vec<Worker>,
    reports: &Receiver<Report>,
    mut on_result: impl FnMut(SeedResult),
) -> Result<(), String> {
    let mut next = 0u64;
    let mut feed = |worker: &mut Worker| {
        if worker.stdin.is_none() {
            return;
        }
        match options.request(plan, next, started) {
            Some(request) => {
                next += 1;
                send(worker, request);
            }
            None => worker.stdin = None,
        }
    };
    let outcome = (|| {
        for worker in &mut workers {
            for _ in 0..IN_FLIGHT_PER_WORKER {
                feed(worker);
            }
        }
        while workers.iter().any(|w| !w.in_flight.is_empty()) {
            let (index, report) = reports
                .recv()
                .map_err(|_| "every worker's output ended".to_string())?;
            let worker = &mut workers[index];
            match report {
                // A worker whose input was closed ends once it has answered everything; its
                // exit status is judged by `finish`.
                None if worker.in_flight.is_empty() => {}
                None => return Err(failed(worker, index, "its output ended", false)),
                Some(Err(error)) => return Err(failed(worker, index, &error, true)),
                Some(Ok(result)) => {
                    let expected = worker.in_flight.front().map(|r| r.seed);
                    if expected != Some(result.seed) {
                        let error = format!("it answered seed {} out of turn", result.seed);
                        return Err(failed(worker, index, &error, true));
                    }
                    worker.in_flight.pop_front();
                    on_result(result);
                    feed(worker);
                }
            }
        }
        Ok(())
    })();
    let finished = finish(workers, outcome.is_err());
    outcome.and(finished)
}

/// Starts worker `index` with `command` and the thread that reads its results into `reports`.
fn spawn(mut command: Command, index: usize, reports: Sender<Report>) -> Result<Worker, String> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            format!(
                "starting worker process {}: {e}",
                command.get_program().to_string_lossy()
            )
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let result = line
                .map_err(|e| format!("reading its output: {e}"))
                .and_then(|l| {
                    serde_json::from_str(&l).map_err(|e| format!("bad result {l:?}: {e}"))
                });
            let unreadable = result.is_err();
            if reports.send((index, Some(result))).is_err() || unreadable {
                return;
            }
        }
        let _ = reports.send((index, None));
    });
    Ok(Worker {
        stdin: child.stdin.take(),
        child,
        in_flight: VecDeque::new(),
        send_error: None,
    })
}

/// Writes `request` to the worker. The request counts as in flight even when the write
/// fails: a worker that stopped reading is reported, by its oldest unanswered seed, when its
/// output ends, whichever of the two the parent happens to see first.
fn send(worker: &mut Worker, request: SeedRequest) {
    let mut line = serde_json::to_string(&request).expect("a request serializes");
    line.push('\n');
    let seed = request.seed;
    worker.in_flight.push_back(request);
    let stdin = worker
        .stdin
        .as_mut()
        .expect("a worker is fed until its stdin is closed");
    if let Err(error) = stdin
        .write_all(line.as_bytes())
        .and_then(|()| stdin.flush())
    {
        worker.stdin = None;
        worker.send_error = Some(format!("sending seed {seed}: {error}"));
    }
}

/// The error for a worker that failed: the seed it was running (the oldest it did not
/// answer), its profile, how the worker ended, and the command that runs that seed alone. A
/// worker still talking (`kill`) is killed first, so waiting for it cannot hang.
fn failed(worker: &mut Worker, index: usize, error: &str, kill: bool) -> String {
    if kill {
        let _ = worker.child.kill();
    }
    worker.stdin = None;
    let status = worker
        .child
        .wait()
        .map_or_else(|e| format!("waiting for it: {e}"), |s| s.to_string());
    let error = match &worker.send_error {
        Some(send_error) => format!("{error}; {send_error}"),
        None => error.to_string(),
    };
    match worker.in_flight.front() {
        Some(request) => format!(
            "worker {index} failed before answering seed {seed} (profile {profile}): {error} \
             ({status}); run it alone with `{replay}`",
            seed = request.seed,
            profile = request.profile.name(),
            replay = replay_command(request),
        ),
        None => format!("worker {index} failed between seeds: {error} ({status})"),
    }
}

/// The command that runs `request`'s seed alone, as the worker would have run it.
fn replay_command(request: &SeedRequest) -> String {
    let workload = request
        .workload
        .to_possible_value()
        .expect("no skipped variant");
    crate::cli::shell_command(&[
        crate::cli::this_exe(),
        "replay".into(),
        request.seed.to_string(),
        "--profile".into(),
        request.profile.name().to_string(),
        "--workload".into(),
        workload.get_name().to_string(),
    ])
}

/// Closes every worker's input and waits for it; after a failure, kills the others first.
/// Without one, a worker that exited non-zero after its last answer is an error too.
fn finish(workers: Vec<Worker>, failed: bool) -> Result<(), String> {
    let mut outcome = Ok(());
    for (index, mut worker) in workers.into_iter().enumerate() {
        worker.stdin = None;
        if failed {
            let _ = worker.child.kill();
        }
        match worker.child.wait() {
            Ok(status) if failed || status.success() => {}
            Ok(status) => {
                outcome = outcome.and(Err(format!(
                    "worker {index} exited with {status} after answering every seed it was sent"
                )))
            }
            Err(error) => {
                outcome = outcome.and(Err(format!("worker {index}: waiting for it: {error}")))
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    //! A worker dying at each point of the exchange, each point reached by waiting on an event
    //! (the worker's exit, a line it reads), never on a clock: the report names the seed, its
    //! profile and its replay command whichever way the processes were scheduled.

    use super::*;
    use crate::case::WorkloadKind;
    use crate::seeds::Workers;
    use clawsim_sim::fs::MountProfile;
    use std::sync::{Mutex, MutexGuard};

    fn plan() -> SeedPlan {
        SeedPlan {
            start: 40,
            count: Some(4),
            profiles: MountProfile::ALL.to_vec(),
            shard: (0, 1),
        }
    }

    fn options() -> PoolOptions {
        PoolOptions {
            design: clawsim_core::config::Design::V2,
            workers: Workers::InProcess,
            workload: WorkloadKind::Swarm,
            time_budget: None,
            check_determinism: false,
            stop: Default::default(),
        }
    }

    /// Held by every test here for its whole run. A process another thread forks holds
    /// copies of this process's descriptors until it execs, among them the read end of a
    /// worker's stdin while that worker is being spawned: the pipe then still has a reader
    /// after the worker exited, and a write to it succeeds instead of failing. One test at a
    /// time makes "exited before the send" a broken pipe every time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn one_at_a_time() -> MutexGuard<'static, ()> {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker that runs `script` (`sh -c`), and the channel its results arrive on.
    fn worker(script: &str, args: &[&str]) -> (Worker, Receiver<Report>) {
        let (sender, reports) = mpsc::channel();
        let mut command = Command::new("sh");
        command.arg("-c").arg(script).arg("sh").args(args);
        (spawn(command, 0, sender).unwrap(), reports)
    }

    /// Runs the plan on one worker; the seeds it answered, and the pool's outcome.
    fn drive_one(
        worker: Worker,
        reports: &Receiver<Report>,
        options: &PoolOptions,
    ) -> (Vec<u64>, Result<(), String>) {
        let mut answered = Vec::new();
        let outcome = drive(
            &plan(),
            options,
            Instant::now(),
            vec![worker],
            reports,
            |r| answered.push(r.seed),
        );
        (answered, outcome)
    }

    /// What the report must say about `seed`: the seed with its profile, and how to run it.
    fn assert_names(error: &str, seed: u64) {
        let profile = MountProfile::ALL[seed as usize % MountProfile::ALL.len()].name();
        assert!(
            error.contains(&format!("seed {seed} (profile {profile})")),
            "{error}"
        );
        // The command names this executable by its absolute path.
        let replay = format!(" replay {seed} --profile {profile} --workload swarm`");
        assert!(error.contains(&replay), "{error}");
    }

    #[test]
    fn a_worker_gone_before_its_first_request_is_reported_with_that_seed() {
        let _serial = one_at_a_time();
        let (mut worker, reports) = worker("exit 3", &[]);
        // Once it has exited, the read end of its stdin is closed: the first write fails.
        worker.child.wait().unwrap();
        let (answered, outcome) = drive_one(worker, &reports, &options());
        let error = outcome.unwrap_err();
        assert_eq!(answered, Vec::<u64>::new());
        assert_names(&error, 40);
        assert!(error.contains("sending seed 40: Broken pipe"), "{error}");
        assert!(error.contains("its output ended"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
    }

    #[test]
    fn a_worker_that_dies_after_reading_its_first_request_is_reported_with_that_seed() {
        let _serial = one_at_a_time();
        // The second write may or may not fail, depending on when the worker exits; the
        // report names the seed it was running either way.
        let (worker, reports) = worker("read line; exit 3", &[]);
        let (answered, outcome) = drive_one(worker, &reports, &options());
        let error = outcome.unwrap_err();
        assert_eq!(answered, Vec::<u64>::new());
        assert_names(&error, 40);
        assert!(error.contains("its output ended"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
    }

    #[test]
    fn a_worker_that_dies_after_an_answer_is_reported_with_the_next_seed() {
        let _serial = one_at_a_time();
        let (seed, profile) = plan().nth(0).unwrap();
        let result = crate::seeds::run_seed(seed, profile, WorkloadKind::Swarm, false);
        let line = serde_json::to_string(&result).unwrap();
        // Answers seed 40, reads seed 41, and dies running it.
        let script = r#"read line; printf '%s\n' "$1"; read line; exit 3"#;
        let (worker, reports) = worker(script, &[&line]);
        let (answered, outcome) = drive_one(worker, &reports, &options());
        let error = outcome.unwrap_err();
        assert_eq!(answered, vec![40]);
        assert_names(&error, 41);
        assert!(error.contains("exit status: 3"), "{error}");
    }

    #[test]
    fn a_worker_that_writes_a_bad_line_is_stopped_and_reported_with_its_seed() {
        let _serial = one_at_a_time();
        // After the bad line it waits for a third request that never comes: the pool kills it.
        let (worker, reports) = worker("read line; echo not-json; read line; read line", &[]);
        let (answered, outcome) = drive_one(worker, &reports, &options());
        let error = outcome.unwrap_err();
        assert_eq!(answered, Vec::<u64>::new());
        assert_names(&error, 40);
        assert!(error.contains(r#"bad result "not-json""#), "{error}");
        assert!(error.contains("signal: 9"), "{error}");
    }

    #[test]
    fn a_worker_that_exits_non_zero_with_nothing_unanswered_is_an_error() {
        let _serial = one_at_a_time();
        let (worker, reports) = worker("exit 3", &[]);
        let mut options = options();
        options.time_budget = Some(std::time::Duration::ZERO);
        let (answered, outcome) = drive_one(worker, &reports, &options);
        assert_eq!(answered, Vec::<u64>::new());
        let error = outcome.unwrap_err();
        assert!(
            error.contains("worker 0 exited with exit status: 3"),
            "{error}"
        );
    }
}
