//! Stand-ins for the outside world, cheap enough that the benches measure only clawsim: a
//! container runtime that only records states, a provider that answers at once, and a channel
//! that accepts everything.

use clawsim_core::channel::{ChannelAdapter, OutboundDelivery, SendError};
use clawsim_core::env::Millis;
use clawsim_core::provider::{Provider, ProviderEvent, ProviderQuery, QueryPoll};
use clawsim_core::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// A container runtime that starts nothing: a started session is `Running` at once.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    states: BTreeMap<String, ContainerState>,
}

impl ContainerRuntime for FakeRuntime {
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        self.states
            .insert(spec.session_id.clone(), ContainerState::Running);
        Ok(())
    }

    fn state(&mut self, session_id: &str) -> ContainerState {
        self.states
            .get(session_id)
            .copied()
            .unwrap_or(ContainerState::Stopped)
    }

    fn kill(&mut self, session_id: &str) -> Result<(), String> {
        self.states
            .insert(session_id.to_string(), ContainerState::Stopped);
        Ok(())
    }
}

/// A provider whose queries answer every prompt and follow-up at once, like the reference mock
/// (`Mock response to: <first 100 chars>`) with no think time, then wait to be ended.
#[derive(Debug, Default)]
pub struct InstantProvider;

impl Provider for InstantProvider {
    fn query(
        &mut self,
        prompt: &str,
        _resume_session_id: Option<&str>,
        _now_ms: Millis,
    ) -> Box<dyn ProviderQuery> {
        let mut events = VecDeque::new();
        events.push_back(ProviderEvent::Init {
            session_id: "bench-provider-session".into(),
        });
        events.push_back(mock_result(prompt));
        Box::new(InstantQuery {
            events,
            ended: false,
        })
    }
}

fn mock_result(prompt: &str) -> ProviderEvent {
    let head: String = prompt.chars().take(100).collect();
    ProviderEvent::Result {
        text: Some(format!("Mock response to: {head}")),
        ends_turn: true,
    }
}

/// One query of [`InstantProvider`].
struct InstantQuery {
    events: VecDeque<ProviderEvent>,
    ended: bool,
}

impl ProviderQuery for InstantQuery {
    fn push(&mut self, text: &str, _now_ms: Millis) {
        self.events.push_back(mock_result(text));
    }

    fn end(&mut self) {
        self.ended = true;
    }

    fn abort(&mut self) {
        self.events.clear();
        self.ended = true;
    }

    fn tool_result(&mut self, _call_id: &str, _result: Result<Value, String>, _now_ms: Millis) {}

    fn poll(&mut self, _now_ms: Millis) -> QueryPoll {
        match self.events.pop_front() {
            Some(event) => QueryPoll::Event(event),
            None if self.ended => QueryPoll::Done,
            None => QueryPoll::Pending { wake_at_ms: None },
        }
    }
}

/// A channel that accepts every message and does nothing with it.
#[derive(Debug)]
pub struct NoopAdapter {
    channel_type: String,
    /// Messages accepted so far.
    pub sent: usize,
}

impl NoopAdapter {
    pub fn new(channel_type: &str) -> Self {
        Self {
            channel_type: channel_type.to_string(),
            sent: 0,
        }
    }
}

impl ChannelAdapter for NoopAdapter {
    fn channel_type(&self) -> &str {
        &self.channel_type
    }

    fn send(&mut self, _delivery: &OutboundDelivery) -> Result<(), SendError> {
        self.sent += 1;
        Ok(())
    }
}
