//! The conversations pane's state: the session list, the transcript (with the reply that is
//! streaming), the multi-line input with its history, slash commands with completion, and
//! the scroll position. It changes only through the methods below, which return the engine
//! work they imply; `panes::conversations` draws it.

use std::cell::Cell;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};

use super::action::Action;
use super::app::{Command, decode};
use crate::engine::chat::{
    ChatAbort, ChatSend, ModelsList, SessionsHistory, SessionsList, TelemetryRecent,
};
use crate::engine::memory::MemorySearch;
use crate::engine::{EngineError, Method};
use crate::orchestrator::SelfHealing;
use crate::orchestrator::runtime::Citation;
use crate::orchestrator::sessions::{Line, SessionInfo};
use crate::providers::Role;

/// Longest message the box takes.
const MAX_INPUT: usize = 32 * 1024;
/// Inputs remembered for Up/Down.
const MAX_HISTORY: usize = 100;
/// Lines a page-up/page-down scrolls the transcript.
const PAGE: usize = 10;

/// Slash commands, with what they do (for completion and /help).
pub const SLASH: &[(&str, &str)] = &[
    ("/new", "start a new session"),
    ("/sessions", "list the sessions again"),
    (
        "/model",
        "NAME: use this model (PROVIDER/NAME for another provider); alone: list models",
    ),
    ("/tool", "NAME {json}: run a tool now"),
    ("/search", "QUERY: search memory"),
    ("/abort", "stop the running turn"),
    ("/help", "these commands"),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    User(String),
    Assistant {
        text: String,
        reasoning: String,
        badge: Option<String>,
        /// "provider · model".
        by: String,
        citations: Vec<Citation>,
    },
    Tool {
        name: String,
        arguments: String,
        status: String,
        output: String,
    },
    /// Said by the app, not the model: command output, hints.
    Note(String),
    Error(String),
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Streaming {
    pub text: String,
    pub reasoning: String,
    /// What the turn waits for before the first word (a local model loading), if anything.
    pub status: Option<String>,
}

#[derive(Debug, Default)]
pub struct ConversationsState {
    pub sessions: Vec<SessionInfo>,
    pub selected: usize,
    /// The session the transcript shows and messages go to; a new one when `None`.
    pub current: Option<String>,
    pub transcript: Vec<Entry>,
    /// The reply on its way, when a turn runs.
    pub streaming: Option<Streaming>,
    pub input: String,
    /// Typing goes to the input box.
    pub composing: bool,
    pub history: Vec<String>,
    history_pos: Option<usize>,
    /// First transcript line shown; `None` follows the end as text streams in.
    pub scroll: Option<usize>,
    /// Tool cards show their arguments and output (the all-cards toggle).
    pub tools_expanded: bool,
    /// Cards toggled one at a time, whose state is the opposite of `tools_expanded`; by
    /// transcript index.
    pub tools_flipped: std::collections::BTreeSet<usize>,
    /// The tool card the card keys act on, by transcript index.
    pub tool_selected: Option<usize>,
    /// Set by render: (transcript index, first line) of each tool card, to scroll to one.
    pub card_lines: std::cell::RefCell<Vec<(usize, usize)>>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Set by render: wrapped transcript lines and the rows they had, for paging.
    pub rendered: Cell<(usize, usize)>,
    /// Ring the bell when a reply finishes (`chat.bell`); the driver reads and clears it.
    pub bell: bool,
    /// A `/search` is on its way (its answer is the transcript's, not the memory pane's).
    pub awaiting_search: bool,
}

impl ConversationsState {
    /// The conversations actions (from any pane), and movement while `in_view`: the pane
    /// has focus and no popup is open. `None`: not this pane's. The flag asks for focus.
    pub fn act(&mut self, action: Action, in_view: bool) -> Option<(Vec<Command>, bool)> {
        let done = |focus| Some((Vec::new(), focus));
        match action {
            Action::ConversationCompose => {
                self.composing = true;
                done(true)
            }
            Action::ConversationNew => {
                self.new_session();
                done(true)
            }
            Action::ConversationToggleTools => {
                self.toggle_all_cards();
                done(false)
            }
            Action::ConversationToolNext | Action::ConversationToolPrev => {
                let by = if action == Action::ConversationToolNext {
                    1
                } else {
                    -1
                };
                self.select_card(by);
                done(true)
            }
            Action::ConversationToggleTool => {
                self.toggle_card();
                done(true)
            }
            Action::ConversationAbort => Some((self.abort(), false)),
            // Esc with nothing open stops a running turn.
            Action::Close if in_view && self.running() => Some((self.abort(), false)),
            Action::SelectNext if in_view => Some((self.select(1), false)),
            Action::SelectPrev if in_view => Some((self.select(-1), false)),
            Action::SelectFirst if in_view => Some((self.select(isize::MIN / 2), false)),
            Action::SelectLast if in_view => Some((self.select(isize::MAX / 2), false)),
            Action::PageUp if in_view => {
                self.scroll_by(-(PAGE as isize));
                done(false)
            }
            Action::PageDown if in_view => {
                self.scroll_by(PAGE as isize);
                done(false)
            }
            _ => None,
        }
    }

    pub fn running(&self) -> bool {
        self.streaming.is_some()
    }

    /// Slash commands matching what is typed, for the completion line.
    pub fn completions(&self) -> Vec<(&'static str, &'static str)> {
        let typed = self.input.trim_start();
        if !typed.starts_with('/') || typed.contains(char::is_whitespace) {
            return Vec::new();
        }
        SLASH
            .iter()
            .filter(|(name, _)| name.starts_with(typed))
            .copied()
            .collect()
    }

    pub fn refresh(&self) -> Vec<Command> {
        vec![Command::Call {
            method: SessionsList::NAME,
            params: Value::Null,
        }]
    }

    fn open(&mut self, id: String) -> Vec<Command> {
        self.current = Some(id.clone());
        self.transcript.clear();
        self.forget_cards();
        self.scroll = None;
        vec![Command::Call {
            method: SessionsHistory::NAME,
            params: json!({ "id": id }),
        }]
    }

    /// Move in the session list and show the session under the cursor.
    pub fn select(&mut self, by: isize) -> Vec<Command> {
        if self.sessions.is_empty() || self.running() {
            return Vec::new();
        }
        let last = self.sessions.len() as isize - 1;
        let next = (self.selected as isize + by).clamp(0, last) as usize;
        if next == self.selected && self.current.is_some() {
            return Vec::new();
        }
        self.selected = next;
        let id = self.sessions[next].id.clone();
        self.open(id)
    }

    pub fn new_session(&mut self) {
        self.current = None;
        self.transcript.clear();
        self.forget_cards();
        self.scroll = None;
        self.transcript.push(Entry::Note(
            "new session: the first message starts it".into(),
        ));
    }

    /// Card state is by transcript index: a new transcript starts it over.
    fn forget_cards(&mut self) {
        self.tools_flipped.clear();
        self.tool_selected = None;
    }

    /// Whether the tool card at transcript index `index` shows its arguments and output.
    pub fn card_open(&self, index: usize) -> bool {
        self.tools_expanded != self.tools_flipped.contains(&index)
    }

    fn cards(&self) -> Vec<usize> {
        self.transcript
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Entry::Tool { .. }))
            .map(|(i, _)| i)
            .collect()
    }

    /// Select the next (`by` > 0) or previous tool card. With none selected, the way in is
    /// from the end: the latest card is the one a user usually wants.
    pub fn select_card(&mut self, by: isize) {
        let cards = self.cards();
        let Some(&last) = cards.last() else {
            self.tool_selected = None;
            return;
        };
        let at = self
            .tool_selected
            .and_then(|sel| cards.iter().position(|&c| c == sel));
        let next = match at {
            None => last,
            Some(at) => {
                let to = (at as isize + by).clamp(0, cards.len() as isize - 1);
                cards[to as usize]
            }
        };
        self.tool_selected = Some(next);
        self.reveal_card(next);
    }

    /// Open or close the selected card alone (the latest one when none is selected).
    pub fn toggle_card(&mut self) {
        if self.tool_selected.is_none() {
            self.select_card(1);
        }
        if let Some(card) = self.tool_selected
            && !self.tools_flipped.remove(&card)
        {
            self.tools_flipped.insert(card);
        }
    }

    /// Open or close every card: they all take the new state.
    pub fn toggle_all_cards(&mut self) {
        self.tools_expanded = !self.tools_expanded;
        self.tools_flipped.clear();
    }

    /// Scroll so the card's first line is in view, where the last render put it.
    fn reveal_card(&mut self, card: usize) {
        let Some(line) = self
            .card_lines
            .borrow()
            .iter()
            .find(|(i, _)| *i == card)
            .map(|(_, line)| *line)
        else {
            return;
        };
        let (total, rows) = self.rendered.get();
        let bottom = total.saturating_sub(rows);
        let top = self.scroll.unwrap_or(bottom);
        if line >= top && line < top + rows {
            return;
        }
        // A little context above the card.
        let top = line.saturating_sub(2).min(bottom);
        self.scroll = (top < bottom).then_some(top);
    }

    /// Scroll the transcript by `by` lines; reaching the end follows it again.
    pub fn scroll_by(&mut self, by: isize) {
        let (total, rows) = self.rendered.get();
        let bottom = total.saturating_sub(rows);
        let top = self.scroll.unwrap_or(bottom) as isize + by;
        let top = top.clamp(0, bottom as isize) as usize;
        self.scroll = (top < bottom).then_some(top);
    }

    /// Keys while composing. `None`: not the input's key (the keymap gets it).
    pub fn edit_key(&mut self, key: KeyEvent) -> Option<Vec<Command>> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        match key.code {
            // Alt/Shift+Enter (and Ctrl+J, which terminals send for it) add a line.
            KeyCode::Enter if alt || shift => self.push_char('\n'),
            KeyCode::Char('j') if ctrl => self.push_char('\n'),
            KeyCode::Enter => return Some(self.submit()),
            KeyCode::Esc => {
                if self.running() {
                    return Some(self.abort());
                }
                self.composing = false;
            }
            KeyCode::Tab => {
                if let [(only, _)] = self.completions().as_slice() {
                    self.input = format!("{only} ");
                }
            }
            KeyCode::Up if !self.input.contains('\n') => self.recall(-1),
            KeyCode::Down if !self.input.contains('\n') => self.recall(1),
            KeyCode::PageUp => self.scroll_by(-10),
            KeyCode::PageDown => self.scroll_by(10),
            KeyCode::Char('u') if ctrl => self.input.clear(),
            KeyCode::Char('w') if ctrl => {
                let kept = self.input.trim_end().len();
                let cut = self.input[..kept]
                    .rfind(char::is_whitespace)
                    .map_or(0, |i| i + 1);
                self.input.truncate(cut);
            }
            KeyCode::Char('c') if ctrl => return None,
            KeyCode::Char(c) if !ctrl && !alt => self.push_char(c),
            KeyCode::Backspace => {
                self.input.pop();
            }
            _ => return None,
        }
        Some(Vec::new())
    }

    /// A paste into the message box: the text as typed, line breaks kept, never sent by a
    /// newline in it; cut at the box's bound like typing is.
    pub fn paste(&mut self, text: &str) {
        let text = super::paste::multi_line(text);
        let room = MAX_INPUT.saturating_sub(self.input.len());
        self.input
            .push_str(super::paste::truncate_bytes(&text, room));
        self.history_pos = None;
    }

    fn push_char(&mut self, c: char) {
        if self.input.len() < MAX_INPUT {
            self.input.push(c);
            self.history_pos = None;
        }
    }

    fn recall(&mut self, by: isize) {
        if self.history.is_empty() {
            return;
        }
        let len = self.history.len() as isize;
        let pos = match self.history_pos {
            None if by < 0 => len - 1,
            None => return,
            Some(p) => p as isize + by,
        };
        if pos >= len {
            self.history_pos = None;
            self.input.clear();
        } else {
            let pos = pos.max(0) as usize;
            self.history_pos = Some(pos);
            self.input = self.history[pos].clone();
        }
    }

    pub fn abort(&mut self) -> Vec<Command> {
        if !self.running() {
            self.transcript
                .push(Entry::Note("nothing is running".into()));
            return Vec::new();
        }
        vec![Command::Call {
            method: ChatAbort::NAME,
            params: json!({ "session": self.current }),
        }]
    }

    fn submit(&mut self) -> Vec<Command> {
        let text = self.input.trim().to_string();
        if text.is_empty() {
            return Vec::new();
        }
        self.input.clear();
        self.history_pos = None;
        if self.history.last() != Some(&text) {
            self.history.push(text.clone());
            if self.history.len() > MAX_HISTORY {
                self.history.remove(0);
            }
        }
        if let Some(rest) = text.strip_prefix('/') {
            let (name, arg) = rest
                .split_once(char::is_whitespace)
                .map_or((rest, ""), |(n, a)| (n, a.trim()));
            return self.slash(name, arg, &text);
        }
        self.send(text)
    }

    fn send(&mut self, text: String) -> Vec<Command> {
        if self.running() {
            self.transcript.push(Entry::Note(
                "a reply is still coming: wait, or Esc to abort it".into(),
            ));
            return Vec::new();
        }
        self.transcript.push(Entry::User(text.clone()));
        self.streaming = Some(Streaming::default());
        self.scroll = None;
        vec![Command::Call {
            method: ChatSend::NAME,
            params: json!({
                "session": self.current,
                "message": text,
                "provider": self.provider,
                "model": self.model,
            }),
        }]
    }

    fn slash(&mut self, name: &str, arg: &str, whole: &str) -> Vec<Command> {
        match name {
            "new" => {
                self.new_session();
                Vec::new()
            }
            "sessions" => self.refresh(),
            "abort" => self.abort(),
            "help" => {
                let mut text = String::from("commands:");
                for (n, what) in SLASH {
                    text.push_str(&format!("\n  {n} — {what}"));
                }
                text.push_str("\nEnter sends · Alt+Enter new line · Up/Down history · Esc aborts");
                self.transcript.push(Entry::Note(text));
                Vec::new()
            }
            "model" if arg.is_empty() => vec![Command::Call {
                method: ModelsList::NAME,
                params: json!({ "discover": true }),
            }],
            "model" => {
                match arg.split_once('/') {
                    Some((provider, model)) if !provider.is_empty() => {
                        self.provider = Some(provider.to_string());
                        self.model = Some(model.to_string());
                    }
                    _ => self.model = Some(arg.to_string()),
                }
                self.transcript.push(Entry::Note(format!(
                    "next turns use {}{}",
                    self.provider
                        .as_deref()
                        .map(|p| format!("{p} · "))
                        .unwrap_or_default(),
                    arg.rsplit('/').next().unwrap_or(arg)
                )));
                Vec::new()
            }
            "search" if !arg.is_empty() => vec![Command::Call {
                method: MemorySearch::NAME,
                params: json!({ "query": arg, "limit": 5 }),
            }],
            // `/tool` goes through the turn: the offline provider runs it, and its result
            // lands in the session like any tool call.
            "tool" if !arg.is_empty() => self.send(whole.to_string()),
            "search" | "tool" => {
                self.transcript
                    .push(Entry::Error(format!("/{name} needs an argument: /help")));
                Vec::new()
            }
            other => {
                self.transcript.push(Entry::Error(format!(
                    "unknown command /{other}: /help lists them"
                )));
                Vec::new()
            }
        }
    }

    pub fn delta(&mut self, session: &str, text: &str, reasoning: bool) {
        if !self.for_me(session) {
            return;
        }
        if self.current.is_none() {
            self.current = Some(session.to_string());
        }
        if let Some(s) = &mut self.streaming {
            if reasoning {
                s.reasoning.push_str(text);
            } else {
                s.text.push_str(text);
            }
        }
    }

    /// A local model is being read for the running turn: show how far it is, until done.
    pub fn model_progress(&mut self, message: &str, finished: bool) {
        if let Some(s) = &mut self.streaming {
            s.status = (!finished).then(|| message.to_string());
        }
    }

    pub fn restart(&mut self, session: &str, provider: &str) {
        if self.for_me(session)
            && let Some(s) = &mut self.streaming
        {
            *s = Streaming::default();
            self.transcript.push(Entry::Note(format!(
                "the reply broke off; starting over on {provider}"
            )));
        }
    }

    pub fn tool_event(
        &mut self,
        session: &str,
        name: &str,
        arguments: &str,
        status: &str,
        output: Option<&str>,
    ) {
        if !self.for_me(session) {
            return;
        }
        let output = output.unwrap_or("").to_string();
        if let Some(Entry::Tool {
            status: s,
            output: o,
            ..
        }) = self.transcript.iter_mut().rev().find(|e| {
            matches!(e, Entry::Tool { name: n, arguments: a, status, .. } if n == name && a == arguments && status == "running")
        }) {
            *s = status.to_string();
            *o = output;
            return;
        }
        self.transcript.push(Entry::Tool {
            name: name.to_string(),
            arguments: arguments.to_string(),
            status: status.to_string(),
            output,
        });
    }

    /// Events of a turn started before any session existed carry its new id.
    fn for_me(&self, session: &str) -> bool {
        self.running() && self.current.as_deref().is_none_or(|c| c == session)
    }

    /// A method's answer. Returns follow-up work and a status line.
    pub fn apply(
        &mut self,
        method: &str,
        result: Result<Value, EngineError>,
    ) -> (Vec<Command>, Option<String>) {
        match (method, result) {
            (ChatSend::NAME, Ok(v)) => {
                self.streaming = None;
                let Ok(r) = decode::<ChatSend>(v) else {
                    return (Vec::new(), Some("chat.send: unexpected result".into()));
                };
                let known = self.current.as_deref() == Some(r.session.as_str());
                self.current = Some(r.session.clone());
                self.transcript.push(Entry::Assistant {
                    text: r.reply.clone(),
                    reasoning: r.reasoning.clone(),
                    badge: r.runtime.self_healing.badge(),
                    by: format!("{} · {}", r.provider, r.model),
                    citations: r.citations.clone(),
                });
                self.bell = true;
                let mut follow = self.refresh();
                if !known {
                    // Keep the cursor on the session the turn went to.
                    self.selected = 0;
                }
                follow.push(Command::Call {
                    method: TelemetryRecent::NAME,
                    params: json!({ "limit": 50 }),
                });
                (follow, None)
            }
            (ChatSend::NAME, Err(e)) => {
                self.streaming = None;
                if let Some(id) = e.details.as_ref().and_then(|d| d["session"].as_str()) {
                    self.current = Some(id.to_string());
                }
                let badge = crate::engine::chat::failed_turn_telemetry(&e)
                    .and_then(|t| serde_json::from_value::<SelfHealing>(t).ok())
                    .and_then(|t| t.badge());
                self.transcript.push(Entry::Error(match badge {
                    Some(b) => format!("{} ({b})", e.message),
                    None => e.message.clone(),
                }));
                (
                    vec![Command::Call {
                        method: TelemetryRecent::NAME,
                        params: json!({ "limit": 50 }),
                    }],
                    Some(format!("turn failed: {}", e.message)),
                )
            }
            (SessionsList::NAME, Ok(v)) => {
                if let Ok(list) = decode::<SessionsList>(v) {
                    self.sessions = list.sessions;
                    if let Some(cur) = &self.current
                        && let Some(i) = self.sessions.iter().position(|s| &s.id == cur)
                    {
                        self.selected = i;
                    }
                    self.selected = self.selected.min(self.sessions.len().saturating_sub(1));
                }
                (Vec::new(), None)
            }
            (SessionsHistory::NAME, Ok(v)) => {
                let id = v["session"]["id"].as_str().unwrap_or("").to_string();
                if self.current.as_deref() == Some(id.as_str()) && !self.running() {
                    let lines: Vec<Line> =
                        serde_json::from_value(v["lines"].clone()).unwrap_or_default();
                    self.transcript = transcript(&lines);
                    self.forget_cards();
                }
                (Vec::new(), None)
            }
            (ModelsList::NAME, Ok(v)) => {
                let mut text = String::from("models (/model PROVIDER/NAME to pick one):");
                for p in v["providers"].as_array().into_iter().flatten() {
                    let models: Vec<&str> = p["models"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    text.push_str(&format!(
                        "\n  {}: {}",
                        p["provider"].as_str().unwrap_or("?"),
                        if models.is_empty() {
                            p["error"].as_str().unwrap_or("none").to_string()
                        } else {
                            models.join(", ")
                        }
                    ));
                }
                self.transcript.push(Entry::Note(text));
                (Vec::new(), None)
            }
            (MemorySearch::NAME, Ok(v)) => {
                let hits = v["hits"].as_array().cloned().unwrap_or_default();
                let mut text = format!(
                    "memory: {} hit(s) for \"{}\"",
                    hits.len(),
                    v["query"].as_str().unwrap_or("")
                );
                for (i, h) in hits.iter().enumerate() {
                    text.push_str(&format!(
                        "\n  [{}] {}:{} {}",
                        i + 1,
                        h["source"].as_str().unwrap_or("?"),
                        h["lineStart"],
                        h["snippet"]
                            .as_str()
                            .unwrap_or("")
                            .replace(['«', '»'], "")
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                self.transcript.push(Entry::Note(text));
                (Vec::new(), None)
            }
            (ChatAbort::NAME, Ok(_)) => (Vec::new(), Some("aborting the turn".into())),
            (_, Err(e)) => {
                self.transcript
                    .push(Entry::Error(format!("{method}: {}", e.message)));
                (Vec::new(), Some(format!("{method} failed: {}", e.message)))
            }
            _ => (Vec::new(), None),
        }
    }
}

/// A saved session as transcript entries.
pub fn transcript(lines: &[Line]) -> Vec<Entry> {
    let mut out = Vec::new();
    for line in lines {
        match line {
            Line::Message { message, .. } => match message.role {
                Role::User => out.push(Entry::User(message.content.clone())),
                Role::Assistant => {
                    for c in &message.tool_calls {
                        out.push(Entry::Tool {
                            name: c.name.clone(),
                            arguments: c.arguments.clone(),
                            status: "running".into(),
                            output: String::new(),
                        });
                    }
                    if message.tool_calls.is_empty() {
                        out.push(Entry::Assistant {
                            text: message.content.clone(),
                            reasoning: String::new(),
                            badge: None,
                            by: String::new(),
                            citations: Vec::new(),
                        });
                    }
                }
                Role::Tool => {
                    let name = message.name.clone().unwrap_or_default();
                    let failed = message.content.starts_with("error:");
                    if let Some(Entry::Tool { status, output, .. }) = out.iter_mut().rev().find(
                        |e| matches!(e, Entry::Tool { name: n, status, .. } if *n == name && status == "running"),
                    ) {
                        *status = if failed { "error" } else { "ok" }.into();
                        *output = message.content.clone();
                    }
                }
                Role::System => {}
            },
            Line::Turn { record, .. } => {
                // The turn record belongs to the assistant message before it.
                let badge = record
                    .get("selfHealing")
                    .cloned()
                    .and_then(|v| serde_json::from_value::<SelfHealing>(v).ok())
                    .and_then(|t| t.badge());
                let citations: Vec<Citation> = record
                    .get("citations")
                    .cloned()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default();
                let by = format!(
                    "{} · {}",
                    record["provider"].as_str().unwrap_or(""),
                    record["model"].as_str().unwrap_or("")
                );
                if record["ok"] == false {
                    out.push(Entry::Error(
                        record["error"]
                            .as_str()
                            .unwrap_or("the turn failed")
                            .to_string(),
                    ));
                } else if let Some(Entry::Assistant {
                    badge: b,
                    by: who,
                    citations: c,
                    ..
                }) = out
                    .iter_mut()
                    .rev()
                    .find(|e| matches!(e, Entry::Assistant { .. }))
                {
                    *b = badge;
                    *who = by;
                    *c = citations;
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
