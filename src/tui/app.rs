//! UI state and its one way to change: `App::update(Action) -> Vec<Command>`.
//!
//! The app never calls the engine itself. It returns [`Command`]s; the driver runs them and
//! feeds the results back as [`Msg`]s. That keeps every key press testable without a
//! terminal.
//!
//! `App` is the router: each pane keeps its state, its actions and its answers in its own
//! module (`conversations`, `memory`, `providers`, `findings`, `voice`), the popups theirs in
//! `overlay`; the app hands each key, action, answer and event to the one that owns it and
//! carries out what comes back ([`Effects`]).

use std::time::Instant;

use crossterm::event::{KeyEvent, KeyEventKind};
use serde_json::Value;

use super::action::Action;
use super::conversations::ConversationsState;
use super::findings::FindingsState;
use super::keymap::{KeyCombo, Keymap, Section};
use super::memory::MemoryState;
use super::message::{Owner, owner};
use super::overlay::{Outcome, Pasted};
use super::voice::VoiceState;
use crate::engine::chat::ChatSend;
use crate::engine::memory::{INDEX_TASK, MemorySearch};
use crate::engine::methods::{ConfigGet, ConfigReload, Health, HealthResult, Status, StatusResult};
use crate::engine::{EngineError, EngineEvent, Method};
use crate::findings::{Finding, TerminalInfo};

pub(crate) use super::message::decode;
pub use super::message::{Command, Effects, Msg};
pub use super::overlay::{Confirm, Input, InputPurpose, Overlay, Palette, Pending};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneId {
    Conversations,
    Memory,
    Providers,
    Findings,
}

impl PaneId {
    pub const ALL: [PaneId; 4] = [
        PaneId::Conversations,
        PaneId::Memory,
        PaneId::Providers,
        PaneId::Findings,
    ];

    pub fn name(self) -> &'static str {
        self.section().name()
    }

    pub fn section(self) -> Section {
        match self {
            PaneId::Conversations => Section::Conversations,
            PaneId::Memory => Section::Memory,
            PaneId::Providers => Section::Providers,
            PaneId::Findings => Section::Findings,
        }
    }

    fn index(self) -> usize {
        PaneId::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    fn offset(self, by: isize) -> PaneId {
        let n = PaneId::ALL.len() as isize;
        PaneId::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }
}

/// What the panes show, as the engine last reported it.
#[derive(Debug, Clone, Default)]
pub struct EngineView {
    pub status: Option<StatusResult>,
    pub health: Option<HealthResult>,
    /// `config.get` without a key: the effective configuration, secrets as references.
    pub config: Option<Value>,
    /// The last failed call, shown until the next success of that method.
    pub errors: Vec<(String, EngineError)>,
    /// `providers.list`: the chain with each provider's state.
    pub providers: Option<crate::engine::chat::ProvidersListResult>,
    /// `telemetry.recent`: the self-heal timeline.
    pub telemetry: Option<crate::engine::chat::RecentResult>,
}

pub struct App {
    pub focus: PaneId,
    pub overlay: Overlay,
    pub keymap: Keymap,
    pub view: EngineView,
    /// Selection per pane, by [`PaneId`] index. Panes clamp it to what they show.
    pub selection: [usize; 4],
    pub last_event: Option<String>,
    pub calls_in_flight: usize,
    pub theme_name: String,
    /// The terminal, for the doctor's terminal checks.
    pub terminal: TerminalInfo,
    /// Doctor and audit findings, their filter and the deep switch.
    pub findings: FindingsState,
    /// The memory explorer: search, preview, graph walk.
    pub memory: MemoryState,
    /// Speaking replies, and the providers pane's voice section.
    pub voice: VoiceState,
    /// Sessions, transcript, input.
    pub conversations: ConversationsState,
    pub should_quit: bool,
    /// Set by anything that changes what is on screen; the driver draws only when set.
    pub dirty: bool,
}

/// Rows a page-up/page-down moves.
const PAGE: usize = 10;

impl App {
    pub fn new(keymap: Keymap, theme_name: String) -> Self {
        Self {
            focus: PaneId::Conversations,
            overlay: Overlay::None,
            keymap,
            view: EngineView::default(),
            selection: [0; 4],
            last_event: None,
            calls_in_flight: 0,
            theme_name,
            terminal: TerminalInfo {
                width: 80,
                height: 24,
                colors: 256,
            },
            findings: FindingsState::default(),
            memory: MemoryState::default(),
            voice: VoiceState::default(),
            conversations: ConversationsState::default(),
            should_quit: false,
            dirty: true,
        }
    }

    /// What to ask the engine for at startup and on refresh.
    pub fn refresh_commands(&mut self) -> Vec<Command> {
        let mut commands = vec![
            Command::Call {
                method: Status::NAME,
                params: Value::Null,
            },
            Command::Call {
                method: Health::NAME,
                params: Value::Null,
            },
            Command::Call {
                method: ConfigGet::NAME,
                params: Value::Null,
            },
            self.findings.scan(self.terminal),
        ];
        commands.extend(super::providers::refresh());
        commands.extend(self.conversations.refresh());
        if self.memory.started {
            commands.extend(self.memory.refresh());
        }
        commands.extend(self.voice.refresh());
        self.calls_in_flight += commands.len();
        commands
    }

    /// `chat.bell`: ring when a reply finishes.
    pub fn bell_enabled(&self) -> bool {
        super::panes::config_value(self, "/chat/bell").and_then(Value::as_bool) == Some(true)
    }

    /// The provider under the cursor in the providers pane.
    pub fn selected_provider(&self) -> Option<String> {
        let rows = super::panes::providers::rows(self);
        let index = self
            .selected(PaneId::Providers)
            .min(rows.len().checked_sub(1)?);
        rows.get(index).map(|r| r.id.clone())
    }

    /// The finding under the cursor in the findings pane, as filtered.
    pub fn selected_finding(&self) -> Option<&Finding> {
        self.findings.selected(self.selected(PaneId::Findings))
    }

    pub fn selected(&self, pane: PaneId) -> usize {
        self.selection[pane.index()]
    }

    /// When the driver must wake up even if nothing happens (a debounced search).
    pub fn next_deadline(&self) -> Option<Instant> {
        let deadlines = [self.memory.next_deadline(), self.voice.next_deadline()];
        deadlines.into_iter().flatten().min()
    }

    /// Count the calls among `commands` as in flight, and hand them on.
    fn track(&mut self, commands: Vec<Command>) -> Vec<Command> {
        self.calls_in_flight += commands
            .iter()
            .filter(|c| matches!(c, Command::Call { .. } | Command::CallTagged { .. }))
            .count();
        commands
    }

    /// Carry out what a pane asked for; `pane` is the pane that asked.
    fn effects(&mut self, pane: PaneId, effects: Effects) -> Vec<Command> {
        if effects.focus {
            self.focus = pane;
        }
        if let Some(row) = effects.select {
            self.selection[pane.index()] = row;
        }
        if let Some(popup) = effects.popup {
            self.overlay = popup;
        }
        if effects.line.is_some() {
            self.last_event = effects.line;
        }
        self.track(effects.commands)
    }

    /// Apply one action. Returns the engine work it implies.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        self.dirty = true;
        let was = self.focus;
        let mut commands = self.route_action(action);
        if self.focus != was {
            // Leaving the pane leaves its search box: digits jump panes again on return.
            self.memory.editing = false;
        }
        if self.focus == PaneId::Memory && !self.memory.started {
            let first = self.memory.on_focus();
            commands.extend(self.track(first));
        }
        // The voice section asks for status when first seen; voice stays unprobed till then.
        if self.focus == PaneId::Providers && !self.voice.started {
            let first = self.voice.on_focus();
            commands.extend(self.track(first));
        }
        commands
    }

    /// The longest text one conversion takes, from the configuration.
    fn voice_max_chars(&self) -> usize {
        super::panes::config_value(self, "/voice/max_text_length")
            .and_then(|v| v.as_u64())
            .map_or(4_000, |n| n as usize)
    }

    fn voice_piece_chars(&self) -> usize {
        super::panes::config_value(self, "/voice/segment_chars")
            .and_then(|v| v.as_u64())
            .map_or(400, |n| n as usize)
    }

    /// Hand the action to the pane that owns it; what no pane takes is the app's own.
    fn route_action(&mut self, action: Action) -> Vec<Command> {
        if let Some(commands) = self.memory_action(action) {
            return commands;
        }
        if let Some(commands) = self.conversations_action(action) {
            return commands;
        }
        let ids: Vec<String> = super::panes::providers::rows(self)
            .into_iter()
            .map(|r| r.id)
            .collect();
        let selected = self.selected(PaneId::Providers);
        if let Some(effects) = super::providers::act(action, &mut self.view, ids, selected) {
            return self.effects(PaneId::Providers, effects);
        }
        let selected = self.selected(PaneId::Findings);
        if let Some(effects) = self.findings.act(action, selected, self.terminal) {
            return self.effects(PaneId::Findings, effects);
        }
        if matches!(action, Action::TtsSpeakLast | Action::TtsAutoToggle) {
            let (max, piece) = (self.voice_max_chars(), self.voice_piece_chars());
            let (commands, line) = self.voice.act(action, max, piece);
            if line.is_some() {
                self.last_event = line;
            }
            return self.track(commands);
        }
        let last = super::panes::row_count(self, self.focus).saturating_sub(1);
        let sel = &mut self.selection[self.focus.index()];
        match action {
            Action::Quit => {
                self.should_quit = true;
                return vec![Command::Quit];
            }
            Action::FocusNext => self.focus = self.focus.offset(1),
            Action::FocusPrev => self.focus = self.focus.offset(-1),
            Action::FocusConversations => self.focus = PaneId::Conversations,
            Action::FocusMemory => self.focus = PaneId::Memory,
            Action::FocusProviders => self.focus = PaneId::Providers,
            Action::FocusFindings => self.focus = PaneId::Findings,
            Action::SelectNext => *sel = (*sel + 1).min(last),
            Action::SelectPrev => *sel = sel.saturating_sub(1),
            Action::SelectFirst => *sel = 0,
            Action::SelectLast => *sel = last,
            Action::PageDown => *sel = (*sel + PAGE).min(last),
            Action::PageUp => *sel = sel.saturating_sub(PAGE),
            // Re-read the files; the engine's ConfigReloaded event then brings fresh data.
            Action::Refresh => {
                return self.track(vec![Command::Call {
                    method: ConfigReload::NAME,
                    params: Value::Null,
                }]);
            }
            Action::ToggleHelp => {
                self.overlay = match self.overlay {
                    Overlay::Help { .. } => Overlay::None,
                    _ => Overlay::Help { scroll: 0 },
                }
            }
            Action::OpenPalette => self.overlay = Overlay::Palette(Palette::default()),
            Action::Close => self.overlay = Overlay::None,
            // Taken by the panes above.
            Action::FixSelected
            | Action::FixAll
            | Action::Suppress
            | Action::UndoFix
            | Action::DeepScan
            | Action::Filter
            | Action::TtsSpeakLast
            | Action::TtsAutoToggle
            | Action::MemorySearch
            | Action::MemoryOpen
            | Action::MemoryBack
            | Action::MemoryEdgeFilter
            | Action::MemoryChunks
            | Action::MemoryGraph
            | Action::MemoryIndex
            | Action::MemoryReindex
            | Action::MemoryCancel
            | Action::ConversationCompose
            | Action::ConversationNew
            | Action::ConversationToggleTools
            | Action::ConversationToolNext
            | Action::ConversationToolPrev
            | Action::ConversationToggleTool
            | Action::ConversationAbort
            | Action::ProvidersProbe
            | Action::ProvidersReset
            | Action::ProvidersMoveUp
            | Action::ProvidersMoveDown => {}
        }
        Vec::new()
    }

    /// Conversations actions, and movement while the conversations pane has focus with no
    /// popup open; `None`: not theirs.
    fn conversations_action(&mut self, action: Action) -> Option<Vec<Command>> {
        let in_view = self.focus == PaneId::Conversations && matches!(self.overlay, Overlay::None);
        let (commands, focus) = self.conversations.act(action, in_view)?;
        if focus {
            self.focus = PaneId::Conversations;
        }
        Some(self.track(commands))
    }

    /// Memory actions (from any pane, e.g. the palette) and movement in the memory pane.
    /// `None`: not the memory pane's business.
    fn memory_action(&mut self, action: Action) -> Option<Vec<Command>> {
        let movement = matches!(
            action,
            Action::SelectNext
                | Action::SelectPrev
                | Action::SelectFirst
                | Action::SelectLast
                | Action::PageDown
                | Action::PageUp
        );
        let memory = matches!(
            action,
            Action::MemorySearch
                | Action::MemoryOpen
                | Action::MemoryBack
                | Action::MemoryEdgeFilter
                | Action::MemoryChunks
                | Action::MemoryGraph
                | Action::MemoryIndex
                | Action::MemoryReindex
                | Action::MemoryCancel
        );
        if !(memory || movement && self.focus == PaneId::Memory) {
            return None;
        }
        self.focus = PaneId::Memory;
        if action == Action::MemoryReindex {
            self.overlay = super::memory::reindex_confirm();
            return Some(Vec::new());
        }
        let commands = self.memory.act(action, Instant::now());
        Some(self.track(commands))
    }

    /// The popup said yes: start the work it asked about.
    fn run_pending(&mut self, pending: Pending) -> Vec<Command> {
        self.overlay = Overlay::None;
        let commands = match FindingsState::confirmed(&pending) {
            Some(call) => vec![call],
            None => self.memory.index(true),
        };
        self.track(commands)
    }

    fn submit_input(&mut self, input: Input) -> Vec<Command> {
        self.overlay = Overlay::None;
        if input.purpose == InputPurpose::Filter {
            self.selection[PaneId::Findings.index()] = 0;
        }
        let effects = self.findings.submit(input);
        self.effects(PaneId::Findings, effects)
    }

    pub fn handle(&mut self, msg: Msg) -> Vec<Command> {
        match msg {
            Msg::Key(key) => self.handle_key(key),
            Msg::Paste(text) => self.handle_paste(&text),
            Msg::Resize(width, height) => {
                self.terminal.width = width;
                self.terminal.height = height;
                self.dirty = true;
                Vec::new()
            }
            Msg::CallDone { method, result } => {
                self.calls_in_flight = self.calls_in_flight.saturating_sub(1);
                self.route_result(&method, result)
            }
            Msg::Speech(speech) => {
                if let Some(line) = self.voice.on_speech(speech) {
                    self.last_event = Some(line);
                }
                self.dirty = true;
                Vec::new()
            }
            Msg::TaggedDone {
                method,
                tag,
                result,
            } => {
                self.calls_in_flight = self.calls_in_flight.saturating_sub(1);
                self.dirty = true;
                let (commands, line) = self.memory.apply_tagged(&method, tag, result);
                if line.is_some() {
                    self.last_event = line;
                }
                self.track(commands)
            }
            Msg::Tick(now) => {
                let (max, piece) = (self.voice_max_chars(), self.voice_piece_chars());
                let (mut commands, line) = self.voice.tick(now, max, piece);
                if line.is_some() {
                    self.last_event = line;
                }
                commands.extend(self.memory.tick(now));
                if commands.is_empty() {
                    return commands;
                }
                self.dirty = true;
                self.track(commands)
            }
            Msg::Engine(event) => self.handle_event(event),
            Msg::EventsLagged(n) => {
                self.last_event = Some(format!("{n} engine event(s) skipped; press refresh"));
                self.dirty = true;
                Vec::new()
            }
            Msg::Terminate => self.update(Action::Quit),
        }
    }

    /// Hand an engine answer to the part of the UI that asked for it.
    fn route_result(&mut self, method: &str, result: Result<Value, EngineError>) -> Vec<Command> {
        let owner = owner(method, self.conversations.awaiting_search);
        let (commands, line) = match owner {
            Owner::View => {
                self.apply_result(method, result);
                return Vec::new();
            }
            Owner::Conversations => {
                if method == MemorySearch::NAME {
                    self.conversations.awaiting_search = false;
                }
                if method == ChatSend::NAME {
                    let reply = result.as_ref().ok().and_then(|v| v.get("reply"));
                    self.voice.on_reply_end(reply.and_then(Value::as_str));
                }
                self.conversations.apply(method, result)
            }
            Owner::Memory => self.memory.apply(method, result),
            Owner::Voice => self.voice.apply(method, result),
        };
        self.dirty = true;
        if line.is_some() {
            self.last_event = line;
        }
        self.track(commands)
    }

    fn handle_event(&mut self, event: EngineEvent) -> Vec<Command> {
        if !event.is_quiet() {
            self.last_event = Some(event.summary());
        }
        self.dirty = true;
        match event {
            // Findings changed under us: fetch fresh health.
            EngineEvent::FindingsChanged { .. } => {
                let scan = self.findings.scan(self.terminal);
                self.track(vec![scan])
            }
            EngineEvent::ConfigReloaded { .. } => self.refresh_commands(),
            EngineEvent::StreamDelta { conversation, text } => {
                self.voice.on_delta(&conversation, &text, Instant::now());
                self.conversations.delta(&conversation, &text, false);
                Vec::new()
            }
            EngineEvent::ReasoningDelta { conversation, text } => {
                self.conversations.delta(&conversation, &text, true);
                Vec::new()
            }
            EngineEvent::StreamRestart {
                conversation,
                provider,
            } => {
                self.voice.on_restart(&conversation);
                self.conversations.restart(&conversation, &provider);
                Vec::new()
            }
            EngineEvent::TurnToolCall {
                conversation,
                name,
                arguments,
                status,
                output,
                ..
            } => {
                self.conversations.tool_event(
                    &conversation,
                    &name,
                    &arguments,
                    &status,
                    output.as_deref(),
                );
                Vec::new()
            }
            // Attempts and health changes: the providers pane reads the new state.
            EngineEvent::Telemetry { .. } | EngineEvent::ProviderState { .. } => {
                self.track(vec![super::providers::list()])
            }
            EngineEvent::Progress {
                task,
                done,
                total,
                message,
            } if task == INDEX_TASK => {
                self.memory.progress(done, total, &message);
                Vec::new()
            }
            EngineEvent::Progress {
                task,
                done,
                total,
                message,
            } if task == crate::providers::local::LOAD_TASK => {
                let finished = total.is_some_and(|t| done >= t);
                self.conversations.model_progress(&message, finished);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// An answer for the app's view, the providers pane or the findings pane. A failure is
    /// kept (and shown) until that method next succeeds.
    pub fn apply_result(&mut self, method: &str, result: Result<Value, EngineError>) {
        self.dirty = true;
        self.view.errors.retain(|(m, _)| m != method);
        let value = match result {
            Ok(value) => value,
            Err(error) => {
                self.last_event = Some(format!("{method} failed: {}", error.message));
                self.view.errors.push((method.to_string(), error));
                return;
            }
        };
        // These answers start no further work: what comes back is a line or a popup.
        let applied = if FindingsState::owns(method) {
            self.findings.apply(method, value).map(|effects| {
                self.effects(PaneId::Findings, effects);
            })
        } else if super::providers::owns(method) {
            super::providers::apply(method, value, &mut self.view).map(|effects| {
                self.effects(PaneId::Providers, effects);
            })
        } else {
            self.apply_view(method, value)
        };
        if let Err(e) = applied {
            self.view.errors.push((
                method.to_string(),
                EngineError::internal(format!("unexpected {method} result: {e}")),
            ));
        }
    }

    /// `status`, `health` and `config.get`: what every pane and the status bar read.
    fn apply_view(&mut self, method: &str, value: Value) -> Result<(), serde_json::Error> {
        match method {
            Status::NAME => self.view.status = Some(decode::<Status>(value)?),
            Health::NAME => {
                let health = decode::<Health>(value)?;
                // A broken file must not go unnoticed just because findings is not in view.
                let errors = health.diagnostics.iter().filter(|d| d.is_error()).count();
                if errors > 0 {
                    self.last_event = Some(format!("{errors} config error(s): see findings"));
                }
                self.view.health = Some(health);
            }
            ConfigGet::NAME => self.view.config = value.get("value").cloned(),
            _ => {}
        }
        Ok(())
    }

    /// A paste goes to the text field a key would go to, as typed text. In one-line fields a
    /// line break becomes a space; in the message box it stays a line break, so a multi-line
    /// paste never sends. With no field to take it, the conversations pane opens its message
    /// box for it, the memory pane its search; elsewhere it is dropped with a note.
    fn handle_paste(&mut self, text: &str) -> Vec<Command> {
        self.dirty = true;
        match self.overlay.paste(text) {
            Pasted::Taken => return Vec::new(),
            Pasted::Refused(why) => {
                self.last_event = Some(why.into());
                return Vec::new();
            }
            Pasted::ToPane => {}
        }
        match self.focus {
            PaneId::Conversations => {
                self.conversations.composing = true;
                self.conversations.paste(text);
            }
            PaneId::Memory => self.memory.paste(text, Instant::now()),
            _ => self.last_event = Some("paste ignored: this pane has no text field".into()),
        }
        Vec::new()
    }

    fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        // Key repeat and release events exist only with the kitty protocol; act on presses.
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if let Some(outcome) = self.overlay.key(key) {
            return match outcome {
                Outcome::Stay => {
                    self.dirty = true;
                    Vec::new()
                }
                Outcome::Close => self.update(Action::Close),
                Outcome::Run(action) => {
                    self.overlay = Overlay::None;
                    self.update(action)
                }
                Outcome::Yes(pending) => {
                    self.dirty = true;
                    self.run_pending(pending)
                }
                Outcome::Submit(input) => {
                    self.dirty = true;
                    self.submit_input(input)
                }
            };
        }
        if self.focus == PaneId::Conversations
            && self.conversations.composing
            && matches!(self.overlay, Overlay::None)
            && let Some(commands) = self.conversations.edit_key(key)
        {
            self.dirty = true;
            if commands.iter().any(|c| {
                matches!(
                    c,
                    Command::Call {
                        method: MemorySearch::NAME,
                        ..
                    }
                )
            }) {
                self.conversations.awaiting_search = true;
            }
            return self.track(commands);
        }
        if self.focus == PaneId::Memory
            && self.memory.editing
            && matches!(self.overlay, Overlay::None)
            && let Some(commands) = self.memory.edit_key(key, Instant::now())
        {
            self.dirty = true;
            return self.track(commands);
        }
        let combo = KeyCombo::from_event(&key);
        let Some(action) = self.keymap.action_for(self.focus.section(), combo) else {
            return Vec::new();
        };
        if self.overlay.scroll_help(action) {
            self.dirty = true;
            return Vec::new();
        }
        self.update(action)
    }
}

#[cfg(test)]
mod tests;
