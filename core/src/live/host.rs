//! The host daemon on the real clock: one thread running a tokio current-thread runtime that
//! feeds channel input to the router and drives the same delivery and sweep steps the simulator
//! drives, on real timers.

use crate::channel::{ChannelAdapter, SendError};
use crate::config::HostConfig;
use crate::host::{DeliveryStep, Host, InboundEvent};
use crate::live::env::LiveEnv;
use crate::runtime::ContainerRuntime;
use crate::Result;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;

/// Something for the host thread to do.
pub enum HostInput {
    /// A message from a channel, to route.
    Message(InboundEvent),
    /// A user's answer to a pending question.
    Answer { question_id: String, option: String },
    /// Run a closure on the host thread with the host (inspection in tests, administration).
    Call(Box<dyn FnOnce(&mut Host) + Send>),
}

/// The running host daemon.
pub struct LiveHostHandle {
    inputs: mpsc::UnboundedSender<Option<HostInput>>,
    thread: Option<JoinHandle<()>>,
}

type Adapters = BTreeMap<String, Box<dyn ChannelAdapter + Send>>;

/// Opens the host on its own thread and starts its loops. `make_runtime` runs on that thread;
/// `setup` runs once after open (wiring agent and messaging groups). Open and setup errors are
/// returned here.
pub fn spawn_host(
    config: HostConfig,
    make_runtime: impl FnOnce() -> Box<dyn ContainerRuntime> + Send + 'static,
    adapters: Vec<Box<dyn ChannelAdapter + Send>>,
    setup: impl FnOnce(&mut Host) -> Result<()> + Send + 'static,
) -> Result<LiveHostHandle> {
    let (inputs, receiver) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("clawsim-host".into())
        .spawn(move || {
            let opened = Host::open(Rc::new(LiveEnv::new()), config.clone(), make_runtime())
                .and_then(|mut host| setup(&mut host).map(|_| host));
            let host = match opened {
                Ok(host) => {
                    let _ = ready_tx.send(Ok(()));
                    host
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            let adapters = adapters
                .into_iter()
                .map(|a| (a.channel_type().to_string(), a))
                .collect();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("tokio runtime");
            runtime.block_on(host_loop(host, config, adapters, receiver));
        })
        .map_err(|e| crate::Error::Invalid(format!("cannot start host thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(LiveHostHandle {
            inputs,
            thread: Some(thread),
        }),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(crate::Error::Invalid("host thread died at start".into())),
    }
}

impl LiveHostHandle {
    pub fn send(&self, input: HostInput) {
        // A closed channel means the host has stopped; the caller sees that at shutdown.
        let _ = self.inputs.send(Some(input));
    }

    /// Runs `f` on the host thread and returns its result.
    pub fn call<T: Send + 'static>(&self, f: impl FnOnce(&mut Host) -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send(HostInput::Call(Box::new(move |host| {
            let _ = tx.send(f(host));
        })));
        rx.recv().expect("host thread stopped")
    }

    /// Stops the loops, drops the host (and with it the runtime's processes), joins the thread.
    pub fn shutdown(mut self) {
        let _ = self.inputs.send(None);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LiveHostHandle {
    fn drop(&mut self) {
        let _ = self.inputs.send(None);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn host_loop(
    mut host: Host,
    config: HostConfig,
    mut adapters: Adapters,
    mut inputs: mpsc::UnboundedReceiver<Option<HostInput>>,
) {
    let interval = |ms: i64| tokio::time::interval(Duration::from_millis(ms.max(1) as u64));
    let mut fast = interval(config.delivery_fast_interval_ms);
    let mut slow = interval(config.delivery_slow_interval_ms);
    let mut sweep = interval(config.sweep_interval_ms);
    for timer in [&mut fast, &mut slow, &mut sweep] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            input = inputs.recv() => match input {
                Some(Some(input)) => handle_input(&mut host, input),
                _ => break,
            },
            _ = fast.tick() => deliver_sessions(&mut host, &mut adapters, true),
            _ = slow.tick() => deliver_sessions(&mut host, &mut adapters, false),
            _ = sweep.tick() => sweep_sessions(&mut host),
        }
    }
    tracing::info!("host stopped");
}

fn handle_input(host: &mut Host, input: HostInput) {
    match input {
        HostInput::Message(event) => {
            if let Err(error) = host.route(&event) {
                tracing::warn!(%error, channel = %event.channel_type, platform = %event.platform_id, "message not routed");
            }
        }
        HostInput::Answer {
            question_id,
            option,
        } => {
            if let Err(error) = host.answer_question(&question_id, &option) {
                tracing::warn!(%error, %question_id, "answer not routed");
            }
        }
        HostInput::Call(f) => f(host),
    }
}

fn session_ids(host: &mut Host, running_only: bool) -> Vec<String> {
    host.sessions_to_deliver(running_only)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot list sessions");
            Vec::new()
        })
}

fn deliver_sessions(host: &mut Host, adapters: &mut Adapters, running_only: bool) {
    for session_id in session_ids(host, running_only) {
        if let Err(error) = deliver_session(host, adapters, &session_id) {
            tracing::warn!(%error, session = %session_id, "delivery pass failed");
        }
    }
}

/// One delivery pass: the host's steps, with each send handed to its channel's adapter.
fn deliver_session(host: &mut Host, adapters: &mut Adapters, session_id: &str) -> Result<()> {
    let Some(mut pass) = host.begin_delivery(session_id)? else {
        return Ok(());
    };
    let outcome = (|| loop {
        match host.delivery_step(&mut pass)? {
            DeliveryStep::Done => return Ok(()),
            DeliveryStep::Send(delivery) => {
                let channel = delivery.route.channel_type.clone().unwrap_or_default();
                let sent = match adapters.get_mut(&channel) {
                    Some(adapter) => adapter.send(&delivery),
                    None => Err(SendError::Permanent(format!(
                        "no adapter for channel {channel:?}"
                    ))),
                };
                host.delivery_sent(&mut pass, sent)?;
            }
        }
    })();
    host.end_delivery(pass);
    outcome
}

fn sweep_sessions(host: &mut Host) {
    for session_id in session_ids(host, false) {
        match host.sweep_session(&session_id) {
            Ok(report) => tracing::debug!(session = %session_id, ?report, "swept"),
            Err(error) => tracing::warn!(%error, session = %session_id, "sweep failed"),
        }
    }
}
