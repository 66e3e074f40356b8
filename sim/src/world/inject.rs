//! Fault injection: what each planned fault does to the world when it strikes, and the quiet
//! period that ends them all.
//!
//! Each fault acts through the same surfaces the real thing would: a killed container loses its
//! process, a crashed host loses its process and its in-flight work, a machine crash also loses
//! what the disk had not synced, a skewed clock is read by the core through its Env, a failing
//! provider is a mock script in the next user message. A fault that finds nothing to act on is
//! recorded as skipped and not counted.

use super::armed::{StartFault, TrapThen};
use super::event::{Event, Timer};
use super::state::World;
use crate::faults::{Fault, FaultSide};
use crate::fs::{FsFault, FsOp, FsTrap, PathMatch, Side, TrapEffect};
use crate::ledger::FaultRecord;
use clawsim_core::config::RunnerConfig;
use clawsim_core::runtime::ContainerState;
use clawsim_core::SessionPaths;
use clawsim_oracle::event::{Actor, Event as TypedEvent, FaultEffect};

use FaultEffect as Effect;

impl From<FaultSide> for Side {
    fn from(side: FaultSide) -> Side {
        match side {
            FaultSide::Host => Side::Host,
            FaultSide::Container => Side::Container,
        }
    }
}

impl World {
    /// Fault `index` of the plan strikes (unless the quiet period has begun).
    pub(super) fn strike(&mut self, index: usize) {
        if self.quiet {
            return;
        }
        let fault = self.config.faults.faults[index].fault.clone();
        let effect = self.apply(&fault);
        let kind = fault.kind();
        if effect == Effect::Struck {
            self.record.count_fault(kind);
        }
        self.record.ledger.faults.push(FaultRecord {
            at_ms: self.now_ms(),
            fault: fault.clone(),
            applied: effect != Effect::Skipped,
        });
        self.record(Actor::Faults, None, TypedEvent::Fault { fault, effect });
    }

    /// Does what `fault` does (or arms it).
    fn apply(&mut self, fault: &Fault) -> Effect {
        let struck = |done: bool| {
            if done {
                Effect::Struck
            } else {
                Effect::Skipped
            }
        };
        match *fault {
            Fault::ContainerKilled { pick } => struck(self.kill_container(pick)),
            Fault::ContainerHung { pick, duration_ms } => {
                struck(self.hang_container(pick, duration_ms))
            }
            Fault::ContainerSlowStart { extra_ms } => {
                self.armed.arm_start(StartFault::Slow { extra_ms });
                Effect::Struck
            }
            Fault::ContainerStartFails => {
                self.armed.arm_start(StartFault::Fails);
                Effect::Struck
            }
            Fault::ContainerKilledStarting { at_permille } => {
                self.armed.arm_start(StartFault::Killed { at_permille });
                Effect::Armed
            }
            Fault::HostCrash { down_ms } => struck(self.crash_host(down_ms)),
            Fault::HostCrashMidSend { down_ms } => {
                self.armed.mid_send_crashes.push(down_ms);
                Effect::Armed
            }
            Fault::MachineCrash { down_ms } => {
                self.fs.crash_machine();
                self.machine_down(down_ms);
                Effect::Struck
            }
            Fault::PowerCut {
                after_ops,
                down_ms,
                counted_on,
            } => {
                let side = counted_on.map(Side::from);
                self.armed.arm_power_cut(&self.fs, after_ops, side, down_ms);
                Effect::Armed
            }
            Fault::FsyncError { side } => {
                self.fs_fault(fault, FsFault::FsyncError { side: side.into() })
            }
            Fault::DiskFull { side, ops } => self.fs_fault(
                fault,
                FsFault::DiskFull {
                    side: side.into(),
                    ops,
                },
            ),
            Fault::SqliteBusy { side } => self.fs_fault(fault, FsFault::Busy { side: side.into() }),
            Fault::SlowDisk {
                side,
                delay_ms,
                ops,
            } => self.fs_fault(
                fault,
                FsFault::SlowDisk {
                    side: side.into(),
                    latency_ms: delay_ms,
                    ops,
                },
            ),
            Fault::ChannelSlow { extra_ms, sends } => {
                self.channel.slow_down(extra_ms, sends);
                Effect::Struck
            }
            Fault::ChannelTransient { sends } => {
                self.channel.fail_transiently(sends);
                Effect::Struck
            }
            Fault::ChannelPermanent { sends } => {
                self.channel.refuse(sends);
                Effect::Struck
            }
            Fault::ProviderSlow { think_ms } => {
                self.arm_script(fault, format!("think {think_ms}ms"))
            }
            Fault::ProviderSilent => self.arm_script(fault, "silent".into()),
            Fault::ProviderError { fatal } => {
                let how = if fatal { "fatal" } else { "retryable" };
                self.arm_script(fault, format!("error {how} injected provider error"))
            }
            Fault::ProviderExit { code } => self.arm_script(fault, format!("exit {code}")),
            Fault::ClockSkew {
                side,
                offset_ms,
                drift_ppm,
            } => {
                self.clock.step_ms(side.into(), offset_ms);
                self.clock.set_drift_ppm(side.into(), drift_ppm);
                Effect::Struck
            }
            Fault::ClockStep { side, delta_ms } => {
                self.clock.step_ms(side.into(), delta_ms);
                Effect::Struck
            }
            Fault::DuplicateWake => {
                self.duplicate_wakes();
                Effect::Struck
            }
            Fault::ChannelRefusesRow { skip } => {
                self.channel.refuse_row(skip);
                Effect::Armed
            }
            Fault::OutboxRemovalFails { removals } => {
                let trap = FsTrap {
                    side: Side::Host,
                    op: Some(FsOp::Remove),
                    path: PathMatch::Contains("/outbox/".into()),
                    effect: TrapEffect::Fail { ops: removals },
                };
                self.armed
                    .arm_trap(&self.fs, fault.kind(), trap, TrapThen::Count);
                Effect::Armed
            }
            Fault::HeartbeatTouchFails { touches } => {
                let trap = FsTrap {
                    side: Side::Container,
                    op: Some(FsOp::Touch),
                    path: PathMatch::EndsWith("/.heartbeat".into()),
                    effect: TrapEffect::Fail { ops: touches },
                };
                self.armed
                    .arm_trap(&self.fs, fault.kind(), trap, TrapThen::Count);
                Effect::Armed
            }
            Fault::ProviderSilentPastIdle { beyond_ms } => {
                let idle_ms = RunnerConfig::new(SessionPaths::default()).query_idle_timeout_ms;
                self.arm_script(fault, format!("think {}ms", idle_ms + beyond_ms))
            }
            Fault::CrashBetweenSendAndRecord { down_ms } => {
                self.armed.send_crashes.push(down_ms);
                Effect::Armed
            }
            Fault::CrashBetweenAnswerAndAck => {
                self.armed.answer_crashes.borrow_mut().pending += 1;
                Effect::Armed
            }
            Fault::CrashBetweenActionAndRecord { down_ms } => {
                self.armed.action_crashes.push(down_ms);
                Effect::Armed
            }
            Fault::CrashBetweenCentralRowAndFolder { down_ms } => {
                self.armed.folder_crashes.push(down_ms);
                Effect::Armed
            }
        }
    }

    /// Arms a crash of the host at its next mutating disk operation that `op` and `path`
    /// name, for fault `kind`; see [`World::check_traps`] for what follows.
    pub(super) fn arm_host_crash(
        &mut self,
        kind: &'static str,
        op: Option<FsOp>,
        path: PathMatch,
        down_ms: i64,
    ) -> crate::fs::TrapId {
        let trap = FsTrap {
            side: Side::Host,
            op,
            path,
            effect: TrapEffect::Crash,
        };
        let then = TrapThen::CrashHost { down_ms };
        self.armed.arm_trap(&self.fs, kind, trap, then)
    }

    /// Traps of targeted faults that sprang during the last step: each recorded with the step
    /// it struck in and counted; a process a crash trap killed goes down in the world too (the
    /// host is restarted after its downtime, a container is gone and the sweep replaces it).
    pub(super) fn check_traps(&mut self) {
        if !self.armed.has_traps() {
            return;
        }
        for (kind, then) in self.armed.traps_sprung(&self.fs) {
            match then {
                TrapThen::Count => self.fault_fired(kind, None),
                TrapThen::CrashHost { down_ms } => {
                    self.fault_fired(kind, None);
                    self.crash_host(down_ms);
                }
                TrapThen::KillContainer { session_id } => {
                    self.fault_fired(kind, Some(&session_id));
                    if self.containers.processes.contains_key(&session_id) {
                        self.kill_session_container(&session_id);
                        let killed = TypedEvent::ContainerKilled;
                        self.record(Actor::Runtime, Some(&session_id), killed);
                    }
                }
            }
        }
    }

    /// Arms a storage fault in SimFs; it is counted when it meets a disk operation.
    fn fs_fault(&mut self, fault: &Fault, fs_fault: FsFault) -> Effect {
        self.armed.arm_storage(&self.fs, fault.kind(), fs_fault);
        Effect::Armed
    }

    /// Storage faults that met a disk operation during the last step: each recorded with the
    /// step it struck in, and counted. (Checked only while one is armed: reading SimFs's
    /// counters is not free.)
    pub(super) fn check_armed_storage(&mut self) {
        for kind in self.armed.storage_fired(&self.fs) {
            self.fault_fired(kind, None);
        }
    }

    /// An armed fault of `kind` met what it waited for (in `session`, when it is known).
    pub(super) fn fault_fired(&mut self, kind: &'static str, session: Option<&str>) {
        self.record.count_fault(kind);
        let struck_in = self.record.struck_step();
        let fired = TypedEvent::FaultFired {
            kind: kind.to_string(),
            struck_in,
        };
        self.record(Actor::Faults, session, fired);
    }

    /// Arms a mock script for the next workload message (counted when it rides on one).
    fn arm_script(&mut self, fault: &Fault, script: String) -> Effect {
        self.armed.arm_script(fault.kind(), script);
        Effect::Armed
    }

    /// `docker kill`: the process dies at once, between two of its steps.
    fn kill_container(&mut self, pick: u64) -> bool {
        let Some(session_id) = self.containers.pick_running(pick) else {
            return false;
        };
        self.kill_session_container(&session_id);
        true
    }

    /// A host crash armed for the send under way strikes, if that host still runs.
    pub(super) fn crash_mid_send(&mut self, incarnation: u64, session_id: &str, down_ms: i64) {
        if self.host.incarnation == incarnation && self.host.running.is_some() {
            self.fault_fired("host-crash-mid-send", Some(session_id));
            self.crash_host(down_ms);
        }
    }

    /// A container armed to die while starting is killed, if it is still coming up.
    pub(super) fn kill_starting(&mut self, session_id: &str, generation: u64) {
        let starting = self.containers.table.borrow().is_current(
            session_id,
            generation,
            ContainerState::Starting,
        );
        if starting {
            self.fault_fired("container-killed-starting", Some(session_id));
            self.kill_session_container(session_id);
        }
    }

    /// The session's container is killed (its process may have died already).
    fn kill_session_container(&mut self, session_id: &str) {
        self.containers
            .table
            .borrow_mut()
            .set_state(session_id, ContainerState::Stopped);
        self.end_container(session_id, true);
    }

    /// `docker pause`: the container still runs, its process makes no progress.
    fn hang_container(&mut self, pick: u64, duration_ms: i64) -> bool {
        let Some(session_id) = self.containers.pick_running(pick) else {
            return false;
        };
        let until = self.now_ms() + duration_ms;
        let Some(process) = self.containers.processes.get_mut(&session_id) else {
            return false;
        };
        process.hung_until_ms = Some(until);
        let generation = process.generation;
        self.schedule(
            until,
            Event::HangEnd {
                session_id,
                generation,
            },
        );
        true
    }

    /// The host process dies; it is restarted after `down_ms`.
    fn crash_host(&mut self, down_ms: i64) -> bool {
        let Some(host) = self.host.running.take() else {
            return false;
        };
        // The process dies first, so dropping its connections cannot touch the disk.
        self.fs.crash_process(Side::Host);
        drop(host);
        self.host.passes.clear();
        self.host.crashed_since_restart = true;
        self.schedule_in(down_ms, Event::HostRestart);
        true
    }

    /// After a power loss SimFs has already applied (between steps or in the middle of one):
    /// every process is gone, the machine comes back after `down_ms`.
    pub(super) fn machine_down(&mut self, down_ms: i64) {
        let host = self.host.running.take();
        let host_was_up = host.is_some();
        drop(host);
        self.host.passes.clear();
        self.containers.processes.clear();
        self.containers.table.borrow_mut().stop_all();
        self.host.crashed_since_restart = true;
        if host_was_up {
            self.schedule_in(down_ms, Event::HostRestart);
        }
    }

    /// Every waiting actor is woken once more, now.
    fn duplicate_wakes(&mut self) {
        let wakes: Vec<Event> = self
            .containers
            .processes
            .iter()
            .map(|(session_id, process)| Event::RunnerWake {
                session_id: session_id.clone(),
                generation: process.generation,
                token: process.wake_token,
                duplicate: true,
            })
            .collect();
        for event in wakes {
            self.schedule_in(0, event);
        }
        for timer in [Timer::DeliveryFast, Timer::DeliverySlow, Timer::Sweep] {
            let event = Event::Tick {
                timer,
                incarnation: self.host.incarnation,
                once: true,
            };
            self.schedule_in(0, event);
        }
    }

    /// Whether an armed power cut fired during the last step; if so the world goes down with
    /// the machine. (Checked only while one is armed: reading SimFs's counters is not free.)
    pub(super) fn check_power_cut(&mut self) {
        let Some(down_ms) = self.armed.power_cut_fired(&self.fs) else {
            return;
        };
        self.record.count_fault("power-cut");
        let struck_in = self.record.struck_step();
        self.record(Actor::Faults, None, TypedEvent::PowerCutFired { struck_in });
        self.machine_down(down_ms);
    }

    /// Faults stop: the channel heals, hung containers resume, no more container start faults
    /// or scripted provider faults; the core gets the rest of the run to converge. (Storage
    /// faults are one-shot or bounded by an operation count, so an armed one fires at most a
    /// few more times.)
    pub(super) fn quiet_start(&mut self) {
        self.quiet = true;
        self.channel.heal();
        self.armed.disarm(&self.fs);
        let hung: Vec<(String, u64)> = self
            .containers
            .processes
            .iter()
            .filter(|(_, p)| p.hung_until_ms.is_some())
            .map(|(id, p)| (id.clone(), p.generation))
            .collect();
        for (session_id, generation) in hung {
            self.hang_end(&session_id, generation);
        }
        self.record(Actor::World, None, TypedEvent::QuietPeriod);
    }
}
