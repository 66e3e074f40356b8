//! The record of one real-Docker run, in the oracle's terms, from the test's own vantage points:
//! each message the test sent and what the router answered, each answer a user gave to a
//! question, every delivery its channel adapter received (stamped on the real clock, with the
//! host incarnation that sent it), every fault the test injected, each host start. The files at
//! the end are read by the world ([`crate::world::World::run_record`]).
//!
//! Nothing here asks the core what it did beyond the return value a platform sees (the routed
//! message's id and seq). What this world cannot see at all — the VFS's opens, the storage's
//! syncs, the sweeps and the polls — is stated in [`observed`], so the oracle counts what needs
//! it as not judged instead of passing it.
//!
//! One lock guards the record; the host thread (channel sends, routing) and the test thread
//! (faults, host starts) stamp their events under it, so the trace is in time order.

use clawsim_core::channel::{ChannelAdapter, OutboundDelivery, SendError};
use clawsim_core::host::Routed;
use clawsim_core::live::channels::MemoryChannel;
use clawsim_core::model::Route;
use clawsim_oracle::event::{FaultEffect, SendResult};
use clawsim_oracle::fault::Fault;
use clawsim_oracle::ledger::{
    AnswerRecord, ChannelSend, FaultRecord, Ledger, SendOutcome, SentMessage,
};
use clawsim_oracle::trace::{Trace, TraceMode};
use clawsim_oracle::{Actor, Event, Observed};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a real-Docker run observes: none of the simulator's inside knowledge.
pub fn observed() -> Observed {
    Observed {
        // The engine's VFS is the kernel's; nobody records who opened which file how.
        vfs_opens: false,
        // No fault touches the disk here, and a failed sync would go unlogged.
        maybe_durable_log: false,
        // The agent-runner's polls and the host's sweeps happen inside their processes.
        runner_polls: false,
        sweep_reports: false,
        // A restart's files are read at the end only (a hot journal a killed writer left may
        // be unreadable read-only until the session's next writer rolls it back).
        crash_integrity: false,
        // The provider runs inside the agent's container; only its answers come out.
        provider_boundary: false,
        // Nobody watches which plain files the processes read and write.
        file_accesses: false,
    }
}

/// Now, on this machine's clock, in ms since the epoch: the true time of a real run.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The record being kept.
pub struct Record {
    pub started_ms: i64,
    pub trace: Trace,
    pub ledger: Ledger,
    /// Host processes started so far; the running one's number.
    pub incarnation: u64,
    /// Every delivery with its files' bytes, in order (the ledger keeps only their names).
    pub deliveries: Vec<OutboundDelivery>,
}

impl Record {
    fn new() -> Self {
        let ledger = Ledger {
            observed: observed(),
            ..Ledger::default()
        };
        Self {
            started_ms: now_ms(),
            trace: Trace::new(TraceMode::Full),
            ledger,
            incarnation: 0,
            deliveries: Vec::new(),
        }
    }

    /// Records `event` now.
    pub fn event(&mut self, actor: Actor, session: Option<&str>, event: Event) {
        self.trace.record(now_ms(), actor, session, event);
    }
}

/// The record, shared by the test thread and the host thread.
#[derive(Clone)]
pub struct Recorder(Arc<Mutex<Record>>);

impl Default for Recorder {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Record::new())))
    }
}

impl Recorder {
    /// The record, locked.
    pub fn lock(&self) -> MutexGuard<'_, Record> {
        // A test thread that panicked holding the lock leaves a record worth reading.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record, unless another thread holds it (for failure reports, which must not wait).
    pub fn try_lock(&self) -> Option<MutexGuard<'_, Record>> {
        match self.0.try_lock() {
            Ok(record) => Some(record),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// A host process starts; returns its incarnation.
    pub fn host_started(&self) -> u64 {
        let mut record = self.lock();
        record.incarnation += 1;
        let incarnation = record.incarnation;
        record.event(Actor::World, None, Event::HostStarted { incarnation });
        incarnation
    }

    /// The test sends `text` in chat 0, from `sender_id`, in `conversation`; returns its index
    /// in the ledger.
    pub fn sent(&self, text: String, sender_id: &str, conversation: Route) -> usize {
        let mut record = self.lock();
        let index = record.ledger.sent.len();
        record.ledger.sent.push(SentMessage {
            index,
            chat: 0,
            thread_id: None,
            text,
            sent_at_ms: now_ms(),
            offers: 0,
            routed_at_ms: None,
            session_id: None,
            message_id: None,
            seq: None,
            sender_id: Some(sender_id.to_string()),
            conversation: Some(conversation),
        });
        index
    }

    /// What the router answered to sent message `index`, as the platform sees it. Called on the
    /// host thread right after the router returned, so nothing of the host comes between.
    pub fn routed(&self, index: usize, result: &Result<Routed, String>) {
        let mut record = self.lock();
        let at_ms = now_ms();
        let sent = &mut record.ledger.sent[index];
        sent.offers += 1;
        match result {
            Ok(routed) => {
                sent.routed_at_ms = Some(at_ms);
                sent.session_id = Some(routed.session_id.clone());
                sent.message_id = Some(routed.message_id.clone());
                sent.seq = Some(routed.seq);
                let event = Event::MessageRouted {
                    index,
                    message_id: routed.message_id.clone(),
                    seq: routed.seq,
                };
                record.event(Actor::Router, Some(&routed.session_id), event);
            }
            Err(error) => {
                let error = error.clone();
                record.event(Actor::Router, None, Event::MessageRefused { index, error });
            }
        }
    }

    /// A user's answer to a question card and what the host made of it.
    pub fn answered(&self, question_id: &str, option: &str, result: &Result<Routed, String>) {
        let mut record = self.lock();
        let at_ms = now_ms();
        let question_id = question_id.to_string();
        record.ledger.answers.push(AnswerRecord {
            at_ms,
            question_id: question_id.clone(),
            option: option.to_string(),
            message_id: result.as_ref().ok().map(|r| r.message_id.clone()),
        });
        let (session, event) = match result {
            Ok(routed) => (
                Some(routed.session_id.as_str()),
                Event::QuestionAnswered {
                    question_id,
                    message_id: routed.message_id.clone(),
                },
            ),
            Err(error) => (
                None,
                Event::AnswerRefused {
                    question_id,
                    error: error.clone(),
                },
            ),
        };
        record.event(Actor::User, session, event);
    }

    /// The test injected `fault` into `session`'s container or the host; `applied` is false
    /// when it found nothing to act on. Returns the fault's index in the ledger.
    pub fn fault(&self, session: Option<&str>, fault: Fault, applied: bool) -> usize {
        let mut record = self.lock();
        let at_ms = now_ms();
        let effect = if applied {
            FaultEffect::Struck
        } else {
            FaultEffect::Skipped
        };
        record.ledger.faults.push(FaultRecord {
            at_ms,
            fault: fault.clone(),
            applied,
        });
        record.event(Actor::Test, session, Event::Fault { fault, effect });
        record.ledger.faults.len() - 1
    }

    /// A host stopped by fault `index` is up again: its down time is now known.
    pub fn host_back(&self, index: usize) {
        let mut record = self.lock();
        let at_ms = now_ms();
        if let Some(FaultRecord {
            at_ms: stopped_ms,
            fault: Fault::HostCrash { down_ms },
            ..
        }) = record.ledger.faults.get_mut(index)
        {
            *down_ms = at_ms - *stopped_ms;
        }
    }

    /// The channel adapter received `delivery` from host `incarnation`.
    fn received(&self, delivery: &OutboundDelivery, incarnation: u64) {
        let mut record = self.lock();
        let at_ms = now_ms();
        record.ledger.channel.push(ChannelSend {
            at_ms,
            outcome: SendOutcome::Received,
            message_out_id: delivery.message_out_id.clone(),
            seq: delivery.seq,
            session_id: delivery.session_id.clone(),
            route: delivery.route.clone(),
            kind: delivery.kind.clone(),
            content: delivery.content.clone(),
            files: delivery
                .files
                .iter()
                .map(|(name, _)| name.clone())
                .collect(),
            host_incarnation: incarnation,
        });
        record.deliveries.push(delivery.clone());
        // The host only ever stops between steps here (a clean shutdown), never between a
        // send and its record: every send finishes with its host alive.
        let event = Event::SendFinished {
            row: delivery.message_out_id.clone(),
            result: SendResult::Received,
            host_alive: true,
            reached: true,
        };
        record.event(Actor::Channel, Some(&delivery.session_id), event);
    }
}

/// The chat platform's end of one host incarnation: a [`MemoryChannel`] (whose inbox the test
/// waits on) that records every delivery first.
pub struct RecordingChannel {
    inner: MemoryChannel,
    recorder: Recorder,
    incarnation: u64,
}

impl RecordingChannel {
    pub fn new(inner: MemoryChannel, recorder: Recorder, incarnation: u64) -> Self {
        Self {
            inner,
            recorder,
            incarnation,
        }
    }
}

impl ChannelAdapter for RecordingChannel {
    fn channel_type(&self) -> &str {
        self.inner.channel_type()
    }

    fn send(&mut self, delivery: &OutboundDelivery) -> Result<(), SendError> {
        self.recorder.received(delivery, self.incarnation);
        self.inner.send(delivery)
    }
}
