//! The scriptable mock provider: stands in for the LLM in the simulator, the e2e suite and
//! `clawsim chat`, so every path of the agent-runner can be driven from a message's text.
//!
//! By default it answers `Mock response to: <first 100 characters of the input>` once for the
//! prompt and once for each follow-up pushed into the query. It is sans-IO and deterministic:
//! time comes only from the `now_ms` given to [`Provider::query`], [`ProviderQuery::push`] and
//! [`ProviderQuery::poll`]; session ids come from a counter (`mock-session-1`, `mock-session-2`,
//! …), and a resumed query keeps the session id it was given. A query first emits
//! `Init { session_id }`.
//!
//! # Scripts
//!
//! Any line of an input (the prompt, or a pushed follow-up) may carry a script:
//!
//! ```text
//! @mock <directive>; <directive>; ...
//! ```
//!
//! `@mock` may start the line or follow a space or `>` (so it works inside a formatted
//! `<message …>` element); the script runs to the end of the line or to the next `<` (in a
//! formatted prompt a `<` can only be markup, since content is escaped). `&amp; &lt; &gt;
//! &quot;` are unescaped before parsing. Several `@mock` lines in one input form one script.
//! Directives are separated by `;`, except inside `"…"`, `{…}` or `[…]`, so JSON arguments may
//! hold semicolons.
//!
//! | directive | effect |
//! |---|---|
//! | `think <N>ms` / `think <N>s` | wait N before going on (directives run in the order written) |
//! | `active` | while thinking, emit an `Activity` event every second |
//! | `progress <text>` | emit `Progress { text }` |
//! | `tool <name> <json args>` | call a tool (args default to `{}`) and wait for its result |
//! | `say <text>` | answer `<text>` instead of the default answer |
//! | `reply <N>` | answer N times (0: no answer) |
//! | `silent` | never answer and emit nothing more; the query is done once the runner ends it |
//! | `error retryable <msg>` / `error fatal <msg>` | emit an error instead of the answer; the query is done |
//! | `exit <code>` | emit `Exit { code }` (the process exits) instead of the answer |
//!
//! A tool's `taskId` argument written `$task` names the last task this session's agent
//! scheduled (the id `schedule_task` returned to it in this process), as a real agent cancels,
//! pauses or resumes a task by the id it was given; with none known it stays `$task`, an
//! unknown id.
//!
//! `progress`, `think` and `tool` run in order; then comes the outcome: `exit`, else `error`,
//! else `silent`, else the answer (`say`/`reply`). A malformed directive is skipped and reported
//! with a `Progress` event naming it; a script never makes the mock fail.
//!
//! A default script ([`MockProvider::with_default_script`], the agent binary reads it from the
//! file named by `CLAWSIM_MOCK_SCRIPT`) applies to every input that has no script of its own.
//! Its text is the same directive list; it may span lines, each with or without `@mock`, and
//! lines starting with `#` are comments. Examples live in `fixtures/mock-scripts/`.

use crate::env::Millis;
use crate::provider::{Provider, ProviderEvent, ProviderQuery, QueryPoll};
use crate::runner::formatter::unescape_xml;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// The word that starts a script line.
pub const SCRIPT_MARKER: &str = "@mock";

/// How much of an input the default answer quotes, in characters.
const QUOTED_CHARS: usize = 100;

/// Interval of `Activity` events while an `active` script thinks.
const ACTIVITY_INTERVAL_MS: Millis = 1_000;

/// One parsed directive of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    Think { ms: Millis },
    Active,
    Progress(String),
    Silent,
    Reply(u32),
    Say(String),
    Error { retryable: bool, message: String },
    Exit(i32),
    Tool { name: String, args: Value },
}

/// A parsed script: its directives in order, and the text of those that did not parse.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MockScript {
    pub directives: Vec<Directive>,
    pub malformed: Vec<String>,
}

impl MockScript {
    /// Parses a script file or argument: directive lists, one or more lines, each optionally
    /// starting with `@mock`; `#` lines are comments.
    pub fn parse(text: &str) -> MockScript {
        let mut script = MockScript::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let list = line.strip_prefix(SCRIPT_MARKER).unwrap_or(line);
            script.add_list(list);
        }
        script
    }

    /// The script carried by `@mock` lines of a (formatted, escaped) input, if any.
    pub fn from_input(input: &str) -> Option<MockScript> {
        let mut script = MockScript::default();
        let mut found = false;
        for line in input.lines() {
            if let Some(list) = script_in_line(line) {
                found = true;
                script.add_list(&unescape_xml(list));
            }
        }
        found.then_some(script)
    }

    fn add_list(&mut self, list: &str) {
        for text in split_directives(list) {
            match parse_directive(text) {
                Some(directive) => self.directives.push(directive),
                None => self.malformed.push(text.to_string()),
            }
        }
    }
}

/// The directive list of one line: after an `@mock` at a word start, up to `<` or the end.
fn script_in_line(line: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(found) = line[from..].find(SCRIPT_MARKER) {
        let at = from + found;
        let after = &line[at + SCRIPT_MARKER.len()..];
        let starts_word = line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == '>');
        let ends_word = after.chars().next().is_none_or(char::is_whitespace);
        if starts_word && ends_word {
            return Some(after.split('<').next().unwrap_or(after));
        }
        from = at + SCRIPT_MARKER.len();
    }
    None
}

/// Splits on `;` outside double quotes and brackets; empty pieces are dropped.
fn split_directives(list: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut depth, mut in_quotes, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in list.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '{' | '[' if !in_quotes => depth += 1,
            '}' | ']' if !in_quotes => depth -= 1,
            ';' if !in_quotes && depth <= 0 => {
                pieces.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&list[start..]);
    pieces
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_directive(text: &str) -> Option<Directive> {
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    };
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match word.to_ascii_lowercase().as_str() {
        "think" => parse_duration_ms(rest).map(|ms| Directive::Think { ms }),
        "active" if rest.is_empty() => Some(Directive::Active),
        "silent" if rest.is_empty() => Some(Directive::Silent),
        "progress" => non_empty(rest).map(Directive::Progress),
        "say" => non_empty(rest).map(Directive::Say),
        "reply" => rest.parse().ok().map(Directive::Reply),
        "exit" => rest.parse().ok().map(Directive::Exit),
        "error" => {
            let (class, message) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let retryable = match class {
                "retryable" => true,
                "fatal" => false,
                _ => return None,
            };
            let message = non_empty(message.trim()).unwrap_or_else(|| "mock error".into());
            Some(Directive::Error { retryable, message })
        }
        "tool" => {
            let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let args = match args.trim() {
                "" => Value::Object(Default::default()),
                json => serde_json::from_str(json).ok()?,
            };
            non_empty(name).map(|name| Directive::Tool { name, args })
        }
        _ => None,
    }
}

/// `500ms` or `2s` (a space before the unit is allowed).
fn parse_duration_ms(text: &str) -> Option<Millis> {
    let text = text.replace(' ', "");
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else {
        (text.strip_suffix('s')?, 1_000)
    };
    number
        .parse::<Millis>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(scale))
}

/// What a query was asked and given, in order; tests read it to see what reached the provider.
#[derive(Debug, Clone, PartialEq)]
pub enum MockRecord {
    Query {
        prompt: String,
        resume_session_id: Option<String>,
        session_id: String,
    },
    Push {
        session_id: String,
        text: String,
    },
    ToolResult {
        session_id: String,
        call_id: String,
        name: String,
        result: Result<Value, String>,
    },
}

/// A shared log of every query of one [`MockProvider`].
#[derive(Debug, Clone, Default)]
pub struct MockTranscript(Rc<RefCell<Vec<MockRecord>>>);

impl MockTranscript {
    /// Everything recorded so far, in order.
    pub fn records(&self) -> Vec<MockRecord> {
        self.0.borrow().clone()
    }

    fn record(&self, record: MockRecord) {
        self.0.borrow_mut().push(record);
    }

    /// The id `schedule_task` last returned in session `session_id`.
    fn last_task_id(&self, session_id: &str) -> Option<String> {
        self.0
            .borrow()
            .iter()
            .rev()
            .find_map(|record| match record {
                MockRecord::ToolResult {
                    session_id: of,
                    name,
                    result: Ok(result),
                    ..
                } if of == session_id && name == "schedule_task" => {
                    result.get("taskId")?.as_str().map(str::to_string)
                }
                _ => None,
            })
    }
}

/// The placeholder for the id of the last task the agent scheduled.
pub const TASK_PLACEHOLDER: &str = "$task";

/// The scriptable mock provider (see the module documentation for the script language).
#[derive(Debug, Default)]
pub struct MockProvider {
    sessions_started: u64,
    default_script: Option<MockScript>,
    transcript: MockTranscript,
}

impl MockProvider {
    /// A mock with no default script.
    pub fn new() -> Self {
        Self::default()
    }

    /// A mock that applies `script` to every input without a script of its own.
    pub fn with_default_script(script: &str) -> Self {
        Self {
            default_script: Some(MockScript::parse(script)),
            ..Self::default()
        }
    }

    /// The log of every query this provider starts (shared: clone it before boxing the mock).
    pub fn transcript(&self) -> MockTranscript {
        self.transcript.clone()
    }
}

impl Provider for MockProvider {
    fn query(
        &mut self,
        prompt: &str,
        resume_session_id: Option<&str>,
        _now_ms: Millis,
    ) -> Box<dyn ProviderQuery> {
        let session_id = match resume_session_id {
            Some(id) => id.to_string(),
            None => {
                self.sessions_started += 1;
                format!("mock-session-{}", self.sessions_started)
            }
        };
        self.transcript.record(MockRecord::Query {
            prompt: prompt.to_string(),
            resume_session_id: resume_session_id.map(str::to_string),
            session_id: session_id.clone(),
        });
        Box::new(MockQuery {
            session_id,
            inputs: VecDeque::from([prompt.to_string()]),
            default_script: self.default_script.clone(),
            transcript: self.transcript.clone(),
            ..MockQuery::default()
        })
    }
}

/// One step of a turn's program.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Emit(ProviderEvent),
    Think {
        ms: Millis,
        active: bool,
    },
    /// A think under way: until when, and when the next `Activity` is due if `active`.
    Wait {
        until_ms: Millis,
        next_activity_ms: Option<Millis>,
    },
    Tool {
        name: String,
        args: Value,
    },
    Answer {
        text: String,
        times: u32,
    },
    Fail {
        message: String,
        retryable: bool,
    },
    Exit(i32),
    Silent,
}

/// A running mock query: a queue of inputs, each run as one turn's program.
#[derive(Debug, Default)]
struct MockQuery {
    session_id: String,
    init_sent: bool,
    inputs: VecDeque<String>,
    turn: VecDeque<Action>,
    /// `(call_id, tool name)` of the tool call waiting for its result.
    awaiting_tool: Option<(String, String)>,
    calls_made: u64,
    silent: bool,
    /// After an error or exit: nothing more, ever.
    finished: bool,
    ended: bool,
    aborted: bool,
    default_script: Option<MockScript>,
    transcript: MockTranscript,
}

impl MockQuery {
    fn compile_turn(&self, input: &str) -> VecDeque<Action> {
        let script = MockScript::from_input(input)
            .or_else(|| self.default_script.clone())
            .unwrap_or_default();
        let mut turn: VecDeque<Action> = script
            .malformed
            .iter()
            .map(|text| {
                Action::Emit(ProviderEvent::Progress {
                    message: format!("mock: ignored malformed directive `{text}`"),
                })
            })
            .collect();
        let active = script.directives.contains(&Directive::Active);
        let mut outcome: Option<Action> = None;
        let mut answer_text = None;
        let mut times = 1;
        for directive in script.directives {
            match directive {
                Directive::Think { ms } => turn.push_back(Action::Think { ms, active }),
                Directive::Progress(message) => {
                    turn.push_back(Action::Emit(ProviderEvent::Progress { message }))
                }
                Directive::Tool { name, args } => turn.push_back(Action::Tool { name, args }),
                Directive::Say(text) => answer_text = Some(text),
                Directive::Reply(n) => times = n,
                Directive::Active => {}
                Directive::Exit(code) => outcome = Some(rank_outcome(outcome, Action::Exit(code))),
                Directive::Error { retryable, message } => {
                    let fail = Action::Fail { message, retryable };
                    outcome = Some(rank_outcome(outcome, fail));
                }
                Directive::Silent => outcome = Some(rank_outcome(outcome, Action::Silent)),
            }
        }
        turn.push_back(outcome.unwrap_or_else(|| Action::Answer {
            text: answer_text.unwrap_or_else(|| default_answer(input)),
            times,
        }));
        turn
    }

    /// Runs the current action; `None` means go on to the next one.
    fn run(&mut self, action: Action, now_ms: Millis) -> Option<QueryPoll> {
        match action {
            Action::Emit(event) => Some(QueryPoll::Event(event)),
            Action::Think { ms, active } => {
                self.turn.push_front(Action::Wait {
                    until_ms: now_ms.saturating_add(ms),
                    next_activity_ms: active.then_some(now_ms + ACTIVITY_INTERVAL_MS),
                });
                None
            }
            Action::Wait {
                until_ms,
                next_activity_ms,
            } => self.wait(until_ms, next_activity_ms, now_ms),
            Action::Tool { name, mut args } => {
                if args.get("taskId").and_then(Value::as_str) == Some(TASK_PLACEHOLDER) {
                    if let Some(task_id) = self.transcript.last_task_id(&self.session_id) {
                        args["taskId"] = Value::String(task_id);
                    }
                }
                self.calls_made += 1;
                let call_id = format!("mock-call-{}", self.calls_made);
                self.awaiting_tool = Some((call_id.clone(), name.clone()));
                Some(QueryPoll::Event(ProviderEvent::ToolCall {
                    call_id,
                    name,
                    args,
                }))
            }
            // No answer still closes the turn, as an SDK's result with no text does.
            Action::Answer { times: 0, .. } => Some(QueryPoll::Event(ProviderEvent::Result {
                text: None,
                ends_turn: true,
            })),
            Action::Answer { text, times } => {
                if times > 1 {
                    let times = times - 1;
                    self.turn.push_front(Action::Answer {
                        text: text.clone(),
                        times,
                    });
                }
                Some(QueryPoll::Event(ProviderEvent::Result {
                    text: Some(text),
                    ends_turn: times == 1,
                }))
            }
            Action::Fail { message, retryable } => {
                self.finished = true;
                Some(QueryPoll::Event(ProviderEvent::Error {
                    message,
                    retryable,
                    classification: None,
                }))
            }
            Action::Exit(code) => {
                self.finished = true;
                Some(QueryPoll::Event(ProviderEvent::Exit { code }))
            }
            Action::Silent => {
                self.silent = true;
                None
            }
        }
    }

    fn wait(
        &mut self,
        until_ms: Millis,
        next_activity_ms: Option<Millis>,
        now_ms: Millis,
    ) -> Option<QueryPoll> {
        if now_ms >= until_ms {
            return None;
        }
        if let Some(due_ms) = next_activity_ms.filter(|due| *due <= now_ms) {
            // A late poll gets one Activity, not one per missed second.
            let missed = (now_ms - due_ms) / ACTIVITY_INTERVAL_MS + 1;
            self.turn.push_front(Action::Wait {
                until_ms,
                next_activity_ms: Some(due_ms + missed * ACTIVITY_INTERVAL_MS),
            });
            return Some(QueryPoll::Event(ProviderEvent::Activity));
        }
        self.turn.push_front(Action::Wait {
            until_ms,
            next_activity_ms,
        });
        let wake_at_ms = next_activity_ms.map_or(until_ms, |due| due.min(until_ms));
        Some(QueryPoll::Pending {
            wake_at_ms: Some(wake_at_ms),
        })
    }
}

/// Exit beats error beats silence, whatever order they were written in.
fn rank_outcome(current: Option<Action>, new: Action) -> Action {
    let rank = |action: &Action| match action {
        Action::Exit(_) => 3,
        Action::Fail { .. } => 2,
        _ => 1,
    };
    match current {
        Some(current) if rank(&current) >= rank(&new) => current,
        _ => new,
    }
}

/// `Mock response to: <first 100 characters of the input>`.
pub fn default_answer(input: &str) -> String {
    let quoted: String = input.chars().take(QUOTED_CHARS).collect();
    format!("Mock response to: {quoted}")
}

impl ProviderQuery for MockQuery {
    fn push(&mut self, text: &str, _now_ms: Millis) {
        self.transcript.record(MockRecord::Push {
            session_id: self.session_id.clone(),
            text: text.to_string(),
        });
        if !(self.silent || self.finished || self.aborted || self.ended) {
            self.inputs.push_back(text.to_string());
        }
    }

    fn end(&mut self) {
        self.ended = true;
    }

    fn abort(&mut self) {
        self.aborted = true;
    }

    fn tool_result(&mut self, call_id: &str, result: Result<Value, String>, _now_ms: Millis) {
        let Some((awaited, name)) = self.awaiting_tool.clone() else {
            return;
        };
        if awaited != call_id {
            return;
        }
        self.awaiting_tool = None;
        self.transcript.record(MockRecord::ToolResult {
            session_id: self.session_id.clone(),
            call_id: call_id.to_string(),
            name,
            result,
        });
    }

    fn poll(&mut self, now_ms: Millis) -> QueryPoll {
        if self.aborted || self.finished {
            return QueryPoll::Done;
        }
        if !self.init_sent {
            self.init_sent = true;
            return QueryPoll::Event(ProviderEvent::Init {
                session_id: self.session_id.clone(),
            });
        }
        loop {
            if self.silent {
                return match self.ended {
                    true => QueryPoll::Done,
                    false => QueryPoll::Pending { wake_at_ms: None },
                };
            }
            if self.awaiting_tool.is_some() {
                return QueryPoll::Pending { wake_at_ms: None };
            }
            let Some(action) = self.turn.pop_front() else {
                match self.inputs.pop_front() {
                    Some(input) => self.turn = self.compile_turn(&input),
                    None if self.ended => return QueryPoll::Done,
                    None => return QueryPoll::Pending { wake_at_ms: None },
                }
                continue;
            };
            if let Some(poll) = self.run(action, now_ms) {
                return poll;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_directive() {
        let script = MockScript::parse(
            r#"@mock think 2s; think 150ms; active; progress working; silent; reply 3; say hi there;
               error retryable busy now; error fatal broken; exit 137; tool send_message {"text": "a;b"}"#,
        );
        assert_eq!(script.malformed, Vec::<String>::new());
        assert_eq!(
            script.directives,
            vec![
                Directive::Think { ms: 2_000 },
                Directive::Think { ms: 150 },
                Directive::Active,
                Directive::Progress("working".into()),
                Directive::Silent,
                Directive::Reply(3),
                Directive::Say("hi there".into()),
                Directive::Error {
                    retryable: true,
                    message: "busy now".into()
                },
                Directive::Error {
                    retryable: false,
                    message: "broken".into()
                },
                Directive::Exit(137),
                Directive::Tool {
                    name: "send_message".into(),
                    args: json!({"text": "a;b"})
                },
            ]
        );
    }

    #[test]
    fn malformed_directives_are_collected_not_fatal() {
        let script = MockScript::parse("think soon; reply many; dance; tool x {bad json; say ok");
        assert_eq!(script.directives, vec![]);
        assert_eq!(script.malformed.len(), 4, "{:?}", script.malformed);
    }

    #[test]
    fn script_is_found_inside_an_escaped_message_element() {
        let prompt = r#"<message id="2" sender="A">hello
@mock say a &amp; b &lt;3; reply 2</message>"#;
        let script = MockScript::from_input(prompt).unwrap();
        assert_eq!(
            script.directives,
            vec![Directive::Say("a & b <3".into()), Directive::Reply(2)]
        );
        assert!(MockScript::from_input("mail me@mock now").is_none());
        assert!(MockScript::from_input("<message>@mock reply 0</message>").is_some());
    }

    #[test]
    fn default_answer_quotes_first_hundred_chars() {
        let long = "é".repeat(150);
        let answer = default_answer(&long);
        assert_eq!(answer.chars().count(), "Mock response to: ".len() + 100);
    }
}
