//! Fault injection: what each planned fault does to the world when it strikes, and the quiet
//! period that ends them all.
//!
//! Each fault acts through the same surfaces the real thing would: a killed container loses its
//! process, a crashed host loses its process and its in-flight work, a machine crash also loses
//! what the disk had not synced, a skewed clock is read by the core through its Env, a failing
//! provider is a mock script in the next user message. A fault that finds nothing to act on is
//! recorded as skipped and not counted.

use crate::faults::{Fault, FaultSide};
use crate::fs::{FsFault, Side};
use crate::ledger::FaultRecord;
use crate::world::{ArmedStorageFault, Event, StartFault, Timer, World};
use clawsim_core::runtime::ContainerState;
use clawsim_oracle::event::{Actor, Event as TypedEvent, FaultEffect};
use std::collections::BTreeMap;

/// SimFs's counter of power cuts that fired.
const POWER_CUTS_FIRED: &str = "fault.power_loss.fired";

use FaultEffect as Effect;

impl From<FaultSide> for Side {
    fn from(side: FaultSide) -> Side {
        match side {
            FaultSide::Host => Side::Host,
            FaultSide::Container => Side::Container,
        }
    }
}

/// The SimFs counter that counts firings of a storage fault.
fn fired_counter(fault: &FsFault) -> &'static str {
    match fault {
        FsFault::FsyncError { .. } => "fault.fsync_error.fired",
        FsFault::DiskFull { .. } => "fault.disk_full.fired",
        FsFault::Busy { .. } => "fault.busy.fired",
        FsFault::SlowDisk { .. } => "fault.slow_disk.fired",
        FsFault::PowerLossAfter { .. } => POWER_CUTS_FIRED,
    }
}

impl World {
    /// Fault `index` of the plan strikes (unless the quiet period has begun).
    pub(crate) fn strike(&mut self, index: usize) {
        if self.quiet {
            return;
        }
        let fault = self.config.faults.faults[index].fault.clone();
        let effect = self.apply(&fault);
        let kind = fault.kind();
        if effect == Effect::Struck {
            *self.fault_counts.entry(kind.to_string()).or_default() += 1;
        }
        self.ledger.faults.push(FaultRecord {
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
                self.start_faults.push(StartFault::Slow { extra_ms });
                Effect::Struck
            }
            Fault::ContainerStartFails => {
                self.start_faults.push(StartFault::Fails);
                Effect::Struck
            }
            Fault::HostCrash { down_ms } => struck(self.crash_host(down_ms)),
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
                self.fs.inject(FsFault::PowerLossAfter {
                    ops: after_ops,
                    side,
                });
                self.armed_power_cut = Some(down_ms);
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
        }
    }

    /// Arms a storage fault; it fires at the next operation that meets it (SimFs counts both).
    /// Arms a storage fault in SimFs; it is counted when it meets a disk operation.
    fn fs_fault(&mut self, fault: &Fault, fs_fault: FsFault) -> Effect {
        let fired_counter = fired_counter(&fs_fault);
        let fired_before = self.fs.counters().get(fired_counter).copied().unwrap_or(0);
        self.fs.inject(fs_fault);
        self.armed_storage.push(ArmedStorageFault {
            kind: fault.kind(),
            fired_counter,
            fired_before,
        });
        Effect::Armed
    }

    /// Storage faults that met a disk operation during the last step: each recorded with the
    /// step it struck in, and counted. (Checked only while one is armed: reading SimFs's
    /// counters is not free.)
    pub(crate) fn check_armed_storage(&mut self) {
        if self.armed_storage.is_empty() {
            return;
        }
        let counters = self.fs.counters();
        let mut fired_seen: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut still_armed = Vec::new();
        for armed in std::mem::take(&mut self.armed_storage) {
            let now = counters.get(armed.fired_counter).copied().unwrap_or(0);
            let seen = fired_seen
                .entry(armed.fired_counter)
                .or_insert(armed.fired_before);
            if now > *seen {
                // One firing per armed fault of a kind, in the order they were armed.
                *seen += 1;
                self.fault_fired(armed.kind);
            } else {
                still_armed.push(armed);
            }
        }
        self.armed_storage = still_armed;
    }

    fn fault_fired(&mut self, kind: &'static str) {
        *self.fault_counts.entry(kind.to_string()).or_default() += 1;
        let struck_in = self.struck_step();
        let fired = TypedEvent::FaultFired {
            kind: kind.to_string(),
            struck_in,
        };
        self.record(Actor::Faults, None, fired);
    }

    /// The step a fault firing now struck in: the last step either side recorded during this
    /// dispatch.
    fn struck_step(&self) -> Option<u64> {
        self.last_side_step
            .filter(|step| *step >= self.dispatch_first_step)
    }

    /// Arms a mock script for the next workload message (counted when it rides on one).
    fn arm_script(&mut self, fault: &Fault, script: String) -> Effect {
        self.armed_scripts.push((fault.kind(), script));
        Effect::Armed
    }

    /// The running container `pick` (modulo their number), if any runs.
    fn pick_running(&self, pick: u64) -> Option<String> {
        let running = self.table.borrow().running_sessions();
        if running.is_empty() {
            return None;
        }
        Some(running[(pick % running.len() as u64) as usize].clone())
    }

    /// `docker kill`: the process dies at once, between two of its steps.
    fn kill_container(&mut self, pick: u64) -> bool {
        let Some(session_id) = self.pick_running(pick) else {
            return false;
        };
        self.table
            .borrow_mut()
            .set_state(&session_id, ContainerState::Stopped);
        self.end_container(&session_id, true);
        true
    }

    /// `docker pause`: the container still runs, its process makes no progress.
    fn hang_container(&mut self, pick: u64, duration_ms: i64) -> bool {
        let Some(session_id) = self.pick_running(pick) else {
            return false;
        };
        let until = self.now_ms() + duration_ms;
        let Some(process) = self.containers.get_mut(&session_id) else {
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
        let Some(host) = self.host.take() else {
            return false;
        };
        // The process dies first, so dropping its connections cannot touch the disk.
        self.fs.crash_process(Side::Host);
        drop(host);
        self.passes.clear();
        self.crashed_since_restart = true;
        self.schedule_in(down_ms, Event::HostRestart);
        true
    }

    /// After a power loss SimFs has already applied (between steps or in the middle of one):
    /// every process is gone, the machine comes back after `down_ms`.
    pub(crate) fn machine_down(&mut self, down_ms: i64) {
        let host = self.host.take();
        let host_was_up = host.is_some();
        drop(host);
        self.passes.clear();
        self.containers.clear();
        self.table.borrow_mut().stop_all();
        self.crashed_since_restart = true;
        if host_was_up {
            self.schedule_in(down_ms, Event::HostRestart);
        }
    }

    /// Every waiting actor is woken once more, now.
    fn duplicate_wakes(&mut self) {
        let wakes: Vec<Event> = self
            .containers
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
                incarnation: self.host_incarnation,
                once: true,
            };
            self.schedule_in(0, event);
        }
    }

    /// Whether an armed power cut fired during the last step; if so the world goes down with
    /// the machine. (Checked only while one is armed: reading SimFs's counters is not free.)
    pub(crate) fn check_power_cut(&mut self) {
        let Some(down_ms) = self.armed_power_cut else {
            return;
        };
        let fired = self
            .fs
            .counters()
            .get(POWER_CUTS_FIRED)
            .copied()
            .unwrap_or(0);
        if fired <= self.power_cuts_seen {
            return;
        }
        self.power_cuts_seen = fired;
        self.armed_power_cut = None;
        *self.fault_counts.entry("power-cut".into()).or_default() += 1;
        let struck_in = self.struck_step();
        self.record(Actor::Faults, None, TypedEvent::PowerCutFired { struck_in });
        self.machine_down(down_ms);
    }

    /// Faults stop: the channel heals, hung containers resume, no more container start faults
    /// or scripted provider faults; the core gets the rest of the run to converge. (Storage
    /// faults are one-shot or bounded by an operation count, so an armed one fires at most a
    /// few more times.)
    pub(crate) fn quiet_start(&mut self) {
        self.quiet = true;
        self.channel.heal();
        self.start_faults.clear();
        self.armed_scripts.clear();
        if self.armed_power_cut.take().is_some() {
            // SimFs cannot disarm; a later power cut replaces an armed one, so push it out of
            // reach.
            self.fs.inject(FsFault::PowerLossAfter {
                ops: u32::MAX,
                side: None,
            });
        }
        let hung: Vec<(String, u64)> = self
            .containers
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
