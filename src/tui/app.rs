//! UI state and its one way to change: `App::update(Action) -> Vec<Command>`.
//!
//! The app never calls the engine itself. It returns [`Command`]s; the driver runs them and
//! feeds the results back as [`Msg`]s. That keeps every key press testable without a
//! terminal.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::Value;

use super::action::Action;
use super::conversations::ConversationsState;
use super::keymap::{KeyCombo, Keymap, Section};
use super::memory::MemoryState;
use super::voice::{Speech, VoiceState};
use crate::engine::EngineError;
use crate::engine::EngineEvent;
use crate::engine::methods::{FixAllResult, HealthResult, JournalResult, StatusResult};
use crate::findings::fix::{Applied, JournalEntry};
use crate::findings::{Finding, Report, TerminalInfo};

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

/// What the app asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Call an engine method; the result comes back as [`Msg::CallDone`].
    Call {
        method: &'static str,
        params: Value,
    },
    /// Call an engine method whose answer a newer question may overtake (a search as you
    /// type); the result comes back as [`Msg::TaggedDone`] with the same tag, so the app can
    /// drop stale answers.
    CallTagged {
        method: &'static str,
        params: Value,
        tag: u64,
    },
    /// Speak these pieces of text in order, converting each while the one before plays;
    /// how it goes comes back as [`Msg::Speech`].
    Speak {
        pieces: Vec<String>,
    },
    Quit,
}

/// Everything that can happen to the app.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    /// Text the terminal handed over as one paste (bracketed paste): typed into the field
    /// that has focus, never taken as keys.
    Paste(String),
    Resize(u16, u16),
    CallDone {
        method: String,
        result: Result<Value, EngineError>,
    },
    TaggedDone {
        method: String,
        tag: u64,
        result: Result<Value, EngineError>,
    },
    Engine(EngineEvent),
    /// Time passed: the driver woke at [`App::next_deadline`].
    Tick(Instant),
    /// The event stream dropped this many events because the UI fell behind.
    EventsLagged(u64),
    /// A signal (SIGTERM, SIGHUP) asked us to leave.
    Terminate,
    /// Progress of a [`Command::Speak`].
    Speech(Speech),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Palette {
    pub query: String,
    pub selected: usize,
}

impl Palette {
    /// Actions matching the query: every query character in order (a subsequence), best
    /// (shortest, earliest) first.
    pub fn matches(&self) -> Vec<Action> {
        // `/tts` finds what `tts` does: slash commands are typed here until there is a
        // command bar.
        let query = self.query.trim_start_matches('/').to_lowercase();
        let mut scored: Vec<(usize, usize, Action)> = Action::ALL
            .iter()
            .filter_map(|action| {
                let haystack = format!("{} {}", action.name(), action.description().to_lowercase());
                subsequence_score(&query, &haystack)
                    .map(|score| (score, action.name().len(), *action))
            })
            .collect();
        scored.sort_by_key(|(score, len, _)| (*score, *len));
        scored.into_iter().map(|(_, _, a)| a).collect()
    }
}

/// Lower is better: the span the match covers. `None` when not all characters appear.
fn subsequence_score(query: &str, haystack: &str) -> Option<usize> {
    if query.is_empty() {
        return Some(0);
    }
    if let Some(pos) = haystack.find(query) {
        return Some(pos);
    }
    let mut chars = query.chars();
    let mut want = chars.next()?;
    let mut start = None;
    for (i, c) in haystack.char_indices() {
        if c == want {
            start.get_or_insert(i);
            match chars.next() {
                Some(next) => want = next,
                None => return Some(100 + i - start.unwrap_or(i)),
            }
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help {
        scroll: usize,
    },
    Palette(Palette),
    /// A change waiting for a yes: what it does and its exact diff.
    Confirm(Confirm),
    /// A line of text the user is typing.
    Input(Input),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub title: String,
    pub body: String,
    pub scroll: usize,
    pub on_yes: Pending,
}

/// Engine work a confirm popup or an input line will start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Fix { fix_id: String },
    FixAll,
    Undo { seq: u64 },
    MemoryReindex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub prompt: String,
    pub text: String,
    pub purpose: InputPurpose,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPurpose {
    Filter,
    Suppress {
        check_id: String,
        path: Option<String>,
    },
}

/// What the panes show, as the engine last reported it.
#[derive(Debug, Clone, Default)]
pub struct EngineView {
    pub status: Option<StatusResult>,
    pub health: Option<HealthResult>,
    /// `config.get` without a key: the effective configuration, secrets as references.
    pub config: Option<Value>,
    /// Doctor and audit findings (`findings.scan`).
    pub findings: Option<Report>,
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
    /// Text that findings must contain to be listed.
    pub findings_filter: String,
    /// Whether the last scan ran the deep checks; refreshes keep to it.
    pub deep_scan: bool,
    /// The terminal, for the doctor's terminal checks.
    pub terminal: TerminalInfo,
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
            findings_filter: String::new(),
            deep_scan: false,
            terminal: TerminalInfo {
                width: 80,
                height: 24,
                colors: 256,
            },
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
                method: "status",
                params: Value::Null,
            },
            Command::Call {
                method: "health",
                params: Value::Null,
            },
            Command::Call {
                method: "config.get",
                params: Value::Null,
            },
            self.scan_command(),
        ];
        commands.extend(self.agent_refresh());
        commands.extend(self.conversations.refresh());
        if self.memory.started {
            commands.extend(self.memory.refresh());
        }
        commands.extend(self.voice.refresh());
        self.calls_in_flight += commands.len();
        commands
    }

    /// The providers pane's data: the chain's state and the self-heal timeline.
    fn agent_refresh(&self) -> Vec<Command> {
        vec![
            Command::Call {
                method: "providers.list",
                params: Value::Null,
            },
            Command::Call {
                method: "telemetry.recent",
                params: serde_json::json!({ "limit": 50 }),
            },
        ]
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

    /// Conversations and providers actions; `None`: not theirs.
    fn agent_action(&mut self, action: Action) -> Option<Vec<Command>> {
        let conv = self.focus == PaneId::Conversations && matches!(self.overlay, Overlay::None);
        let commands = match action {
            Action::ConversationCompose => {
                self.focus = PaneId::Conversations;
                self.conversations.composing = true;
                Vec::new()
            }
            Action::ConversationNew => {
                self.focus = PaneId::Conversations;
                self.conversations.new_session();
                Vec::new()
            }
            Action::ConversationToggleTools => {
                self.conversations.toggle_all_cards();
                Vec::new()
            }
            Action::ConversationToolNext | Action::ConversationToolPrev => {
                self.focus = PaneId::Conversations;
                let by = if action == Action::ConversationToolNext {
                    1
                } else {
                    -1
                };
                self.conversations.select_card(by);
                Vec::new()
            }
            Action::ConversationToggleTool => {
                self.focus = PaneId::Conversations;
                self.conversations.toggle_card();
                Vec::new()
            }
            Action::ConversationAbort => self.conversations.abort(),
            // Esc with nothing open stops a running turn.
            Action::Close if conv && self.conversations.running() => self.conversations.abort(),
            Action::SelectNext if conv => self.conversations.select(1),
            Action::SelectPrev if conv => self.conversations.select(-1),
            Action::SelectFirst if conv => self.conversations.select(isize::MIN / 2),
            Action::SelectLast if conv => self.conversations.select(isize::MAX / 2),
            Action::PageUp if conv => {
                self.conversations.scroll_by(-(PAGE as isize));
                Vec::new()
            }
            Action::PageDown if conv => {
                self.conversations.scroll_by(PAGE as isize);
                Vec::new()
            }
            Action::ProvidersProbe => match self.selected_provider() {
                Some(id) => {
                    self.last_event = Some(format!("probing {id}…"));
                    vec![Command::Call {
                        method: "providers.probe",
                        params: serde_json::json!({ "id": id }),
                    }]
                }
                None => Vec::new(),
            },
            Action::ProvidersReset => match self.selected_provider() {
                Some(id) => vec![Command::Call {
                    method: "providers.reset",
                    params: serde_json::json!({ "id": id }),
                }],
                None => Vec::new(),
            },
            Action::ProvidersMoveUp | Action::ProvidersMoveDown => {
                let mut ids: Vec<String> = super::panes::providers::rows(self)
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                let at = self
                    .selected(PaneId::Providers)
                    .min(ids.len().saturating_sub(1));
                let to = if action == Action::ProvidersMoveUp {
                    at.checked_sub(1)
                } else {
                    (at + 1 < ids.len()).then_some(at + 1)
                };
                match to {
                    Some(to) => {
                        ids.swap(at, to);
                        // Show the new order now; the engine's answer confirms it.
                        if let Some(list) = &mut self.view.providers
                            && to < list.providers.len()
                            && at < list.providers.len()
                        {
                            list.providers.swap(at, to);
                        }
                        self.selection[PaneId::Providers.index()] = to;
                        vec![Command::Call {
                            method: "providers.reorder",
                            params: serde_json::json!({ "order": ids }),
                        }]
                    }
                    None => Vec::new(),
                }
            }
            _ => return None,
        };
        Some(self.track(commands))
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

    fn scan_command(&self) -> Command {
        Command::Call {
            method: "findings.scan",
            params: serde_json::json!({ "deep": self.deep_scan, "terminal": self.terminal }),
        }
    }

    fn call(&mut self, method: &'static str, params: Value) -> Vec<Command> {
        self.calls_in_flight += 1;
        vec![Command::Call { method, params }]
    }

    /// The finding under the cursor in the findings pane, as filtered.
    pub fn selected_finding(&self) -> Option<&Finding> {
        let rows = super::panes::findings::rows(self);
        let index = self
            .selected(PaneId::Findings)
            .min(rows.len().checked_sub(1)?);
        rows.get(index).copied()
    }

    pub fn selected(&self, pane: PaneId) -> usize {
        self.selection[pane.index()]
    }

    /// Apply one action. Returns the engine work it implies.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        self.dirty = true;
        let was = self.focus;
        let mut commands = self.update_inner(action);
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

    fn update_inner(&mut self, action: Action) -> Vec<Command> {
        if let Some(commands) = self.memory_action(action) {
            return commands;
        }
        if let Some(commands) = self.agent_action(action) {
            return commands;
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
                self.calls_in_flight += 1;
                return vec![Command::Call {
                    method: "config.reload",
                    params: Value::Null,
                }];
            }
            Action::ToggleHelp => {
                self.overlay = match self.overlay {
                    Overlay::Help { .. } => Overlay::None,
                    _ => Overlay::Help { scroll: 0 },
                }
            }
            Action::OpenPalette => self.overlay = Overlay::Palette(Palette::default()),
            Action::Close => self.overlay = Overlay::None,
            Action::FixSelected => self.confirm_fix(),
            Action::FixAll => self.confirm_fix_all(),
            Action::Suppress => {
                if let Some(finding) = self.selected_finding() {
                    let (check_id, path) = (finding.check_id.clone(), finding.path.clone());
                    self.overlay = Overlay::Input(Input {
                        prompt: format!("why accept {check_id}? "),
                        text: String::new(),
                        purpose: InputPurpose::Suppress { check_id, path },
                    });
                }
            }
            // Fetch the journal first, so the confirm names what will be undone.
            Action::UndoFix => return self.call("findings.journal", Value::Null),
            Action::DeepScan => {
                self.deep_scan = !self.deep_scan;
                self.focus = PaneId::Findings;
                self.calls_in_flight += 1;
                return vec![self.scan_command()];
            }
            Action::Filter => {
                self.focus = PaneId::Findings;
                self.overlay = Overlay::Input(Input {
                    prompt: "filter: ".into(),
                    text: self.findings_filter.clone(),
                    purpose: InputPurpose::Filter,
                });
            }
            Action::TtsSpeakLast | Action::TtsAutoToggle => {
                let (max, piece) = (self.voice_max_chars(), self.voice_piece_chars());
                let (commands, line) = self.voice.act(action, max, piece);
                if line.is_some() {
                    self.last_event = line;
                }
                return self.track(commands);
            }
            // Taken by `memory_action` above.
            Action::MemorySearch
            | Action::MemoryOpen
            | Action::MemoryBack
            | Action::MemoryEdgeFilter
            | Action::MemoryChunks
            | Action::MemoryGraph
            | Action::MemoryIndex
            | Action::MemoryReindex => {}
            // Taken by `agent_action` above.
            Action::ConversationCompose
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
        );
        if !(memory || movement && self.focus == PaneId::Memory) {
            return None;
        }
        self.focus = PaneId::Memory;
        if action == Action::MemoryReindex {
            self.overlay = Overlay::Confirm(Confirm {
                title: "rebuild the memory index".into(),
                body: "Drop the full-text index, the vectors and the graph, and build them \
                       again from the memory files and the stored notes, with the embedder \
                       this run uses. Search works again when it is done."
                    .into(),
                scroll: 0,
                on_yes: Pending::MemoryReindex,
            });
            return Some(Vec::new());
        }
        let commands = self.memory.act(action, Instant::now());
        Some(self.track(commands))
    }

    fn confirm_fix(&mut self) {
        let Some(finding) = self.selected_finding() else {
            return;
        };
        let confirm = match &finding.fix {
            Some(fix) => Confirm {
                title: format!("fix {}", finding.check_id),
                body: format!("{}\n\n{}", fix.description, fix.diff.trim_end()),
                scroll: 0,
                on_yes: Pending::Fix {
                    fix_id: fix.id.clone(),
                },
            },
            None => {
                self.last_event = Some(format!("{} has no automatic fix", finding.check_id));
                return;
            }
        };
        self.overlay = Overlay::Confirm(confirm);
    }

    fn confirm_fix_all(&mut self) {
        let Some(report) = &self.view.findings else {
            return;
        };
        let fixes: Vec<String> = report
            .findings
            .iter()
            .filter_map(|f| f.fix.as_ref())
            .map(|fix| format!("• {}", fix.description))
            .collect();
        if fixes.is_empty() {
            self.last_event = Some("nothing to fix".into());
            return;
        }
        self.overlay = Overlay::Confirm(Confirm {
            title: format!("apply {} fix(es)", fixes.len()),
            body: fixes.join("\n"),
            scroll: 0,
            on_yes: Pending::FixAll,
        });
    }

    fn run_pending(&mut self, pending: Pending) -> Vec<Command> {
        self.overlay = Overlay::None;
        match pending {
            Pending::Fix { fix_id } => {
                self.call("findings.fix", serde_json::json!({ "fixId": fix_id }))
            }
            Pending::FixAll => self.call("findings.fixAll", Value::Null),
            Pending::Undo { seq } => self.call("findings.undo", serde_json::json!({ "seq": seq })),
            Pending::MemoryReindex => {
                let commands = self.memory.index(true);
                self.track(commands)
            }
        }
    }

    fn submit_input(&mut self, input: Input) -> Vec<Command> {
        self.overlay = Overlay::None;
        match input.purpose {
            InputPurpose::Filter => {
                self.findings_filter = input.text.trim().to_string();
                self.selection[PaneId::Findings.index()] = 0;
                Vec::new()
            }
            InputPurpose::Suppress { check_id, path } => {
                if input.text.trim().is_empty() {
                    self.last_event = Some("a suppression needs a reason; nothing changed".into());
                    return Vec::new();
                }
                self.call(
                    "findings.suppress",
                    serde_json::json!({ "checkId": check_id, "path": path, "reason": input.text.trim() }),
                )
            }
        }
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
            Msg::CallDone { method, result }
                if method.starts_with("chat.")
                    || method.starts_with("sessions.")
                    || method == "models.list"
                    || (method == "memory.search" && self.conversations.awaiting_search) =>
            {
                self.calls_in_flight = self.calls_in_flight.saturating_sub(1);
                self.dirty = true;
                if method == "memory.search" {
                    self.conversations.awaiting_search = false;
                }
                if method == "chat.send" {
                    let reply = result.as_ref().ok().and_then(|v| v.get("reply"));
                    self.voice.on_reply_end(reply.and_then(Value::as_str));
                }
                let (commands, line) = self.conversations.apply(&method, result);
                if line.is_some() {
                    self.last_event = line;
                }
                self.track(commands)
            }
            Msg::CallDone { method, result } if method.starts_with("memory.") => {
                self.calls_in_flight = self.calls_in_flight.saturating_sub(1);
                self.dirty = true;
                let (commands, line) = self.memory.apply(&method, result);
                if line.is_some() {
                    self.last_event = line;
                }
                self.track(commands)
            }
            Msg::CallDone { method, result } if method.starts_with("tts.") => {
                self.calls_in_flight = self.calls_in_flight.saturating_sub(1);
                self.dirty = true;
                let (commands, line) = self.voice.apply(&method, result);
                if line.is_some() {
                    self.last_event = line;
                }
                self.track(commands)
            }
            Msg::CallDone { method, result } => {
                self.calls_in_flight = self.calls_in_flight.saturating_sub(1);
                self.apply_result(&method, result);
                Vec::new()
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
            Msg::Engine(event) => {
                if !event.is_quiet() {
                    self.last_event = Some(event.summary());
                }
                self.dirty = true;
                match event {
                    // Findings changed under us: fetch fresh health.
                    EngineEvent::FindingsChanged { .. } => {
                        self.calls_in_flight += 1;
                        vec![self.scan_command()]
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
                        let commands = vec![Command::Call {
                            method: "providers.list",
                            params: Value::Null,
                        }];
                        self.track(commands)
                    }
                    EngineEvent::Progress {
                        task,
                        done,
                        total,
                        message,
                    } if task == "memory.index" => {
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
            Msg::EventsLagged(n) => {
                self.last_event = Some(format!("{n} engine event(s) skipped; press refresh"));
                self.dirty = true;
                Vec::new()
            }
            Msg::Terminate => self.update(Action::Quit),
        }
    }

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
        let parsed = match method {
            "status" => serde_json::from_value(value).map(|s| self.view.status = Some(s)),
            "health" => serde_json::from_value::<HealthResult>(value).map(|health| {
                // A broken file must not go unnoticed just because findings is not in view.
                let errors = health.diagnostics.iter().filter(|d| d.is_error()).count();
                if errors > 0 {
                    self.last_event = Some(format!("{errors} config error(s): see findings"));
                }
                self.view.health = Some(health);
            }),
            "config.get" => {
                self.view.config = value.get("value").cloned();
                Ok(())
            }
            "providers.list" => {
                serde_json::from_value(value).map(|r| self.view.providers = Some(r))
            }
            "providers.reorder" => {
                serde_json::from_value::<crate::engine::chat::ReorderResult>(value).map(|r| {
                    self.last_event = Some(match (&r.note, &r.saved_to) {
                        (Some(note), _) => note.clone(),
                        (None, Some(file)) => format!("chain order saved to {file}"),
                        (None, None) => "chain order changed".into(),
                    });
                    self.view.providers = Some(r.list);
                })
            }
            "telemetry.recent" => {
                serde_json::from_value(value).map(|r| self.view.telemetry = Some(r))
            }
            "providers.probe" => serde_json::from_value::<crate::engine::chat::ProbeResult>(value)
                .map(|r| {
                    self.last_event = r.probes.first().map(|p| match &p.error {
                        None => format!("{} answered in {} ms", p.id, p.latency_ms),
                        Some(e) => format!("{} probe failed: {e}", p.id),
                    });
                }),
            "providers.reset" => {
                self.last_event = Some("cooldown ended, circuit closed".into());
                Ok(())
            }
            "findings.scan" => serde_json::from_value(value).map(|r| self.view.findings = Some(r)),
            "findings.fix" | "findings.suppress" => {
                serde_json::from_value::<Applied>(value).map(|applied| {
                    self.last_event = Some(match applied.journal_seq {
                        Some(seq) if applied.changed => {
                            format!("applied {} (undo: u, #{seq})", applied.fix_id)
                        }
                        _ => format!("{} was already in place", applied.fix_id),
                    });
                })
            }
            "findings.fixAll" => serde_json::from_value::<FixAllResult>(value).map(|result| {
                let changed = result.applied.iter().filter(|a| a.changed).count();
                self.last_event = Some(match result.failed.first() {
                    None => format!("applied {changed} fix(es)"),
                    // The first refusal says why; the rest stay listed in the pane.
                    Some(first) => format!(
                        "applied {changed} fix(es); {} refused: {}",
                        result.failed.len(),
                        first.error.message
                    ),
                });
            }),
            "findings.journal" => serde_json::from_value::<JournalResult>(value).map(|journal| {
                match journal.entries.iter().rev().find(|e| !e.undone) {
                    Some(entry) => {
                        self.overlay = Overlay::Confirm(Confirm {
                            title: format!("undo fix #{}", entry.seq),
                            body: format!("{}\n\n{}", entry.description, entry.fix_id),
                            scroll: 0,
                            on_yes: Pending::Undo { seq: entry.seq },
                        });
                    }
                    None => self.last_event = Some("no applied fix to undo".into()),
                }
            }),
            "findings.undo" => serde_json::from_value::<JournalEntry>(value).map(|entry| {
                self.last_event = Some(format!("undid #{} {}", entry.seq, entry.fix_id));
            }),
            _ => Ok(()),
        };
        if let Err(e) = parsed {
            self.view.errors.push((
                method.to_string(),
                EngineError::internal(format!("unexpected {method} result: {e}")),
            ));
        }
    }

    /// A paste goes to the text field a key would go to, as typed text. In one-line fields a
    /// line break becomes a space; in the message box it stays a line break, so a multi-line
    /// paste never sends. With no field to take it, the conversations pane opens its message
    /// box for it, the memory pane its search; elsewhere it is dropped with a note.
    fn handle_paste(&mut self, text: &str) -> Vec<Command> {
        self.dirty = true;
        match &mut self.overlay {
            Overlay::Input(input) => {
                // The same bound as typing: a reason is a sentence, a filter a word.
                let room = 200usize.saturating_sub(input.text.chars().count());
                input
                    .text
                    .extend(super::paste::single_line(text).chars().take(room));
                return Vec::new();
            }
            Overlay::Palette(palette) => {
                // A command's name is short; a stray large paste must not become the query.
                let room = 200usize.saturating_sub(palette.query.chars().count());
                palette
                    .query
                    .extend(super::paste::single_line(text).chars().take(room));
                palette.selected = 0;
                return Vec::new();
            }
            // A yes/no question takes no text: a paste must not answer it.
            Overlay::Confirm(_) => {
                self.last_event = Some("paste ignored: answer the question first".into());
                return Vec::new();
            }
            Overlay::Help { .. } => self.overlay = Overlay::None,
            Overlay::None => {}
        }
        match self.focus {
            PaneId::Conversations => {
                self.conversations.composing = true;
                self.conversations.paste(text);
                Vec::new()
            }
            PaneId::Memory => {
                self.memory.paste(text, Instant::now());
                Vec::new()
            }
            _ => {
                self.last_event = Some("paste ignored: this pane has no text field".into());
                Vec::new()
            }
        }
    }

    fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        // Key repeat and release events exist only with the kitty protocol; act on presses.
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if let Overlay::Confirm(confirm) = &mut self.overlay {
            self.dirty = true;
            match key.code {
                KeyCode::Char('y') | KeyCode::Enter => {
                    let pending = confirm.on_yes.clone();
                    return self.run_pending(pending);
                }
                KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
                    self.overlay = Overlay::None
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    confirm.scroll = confirm.scroll.saturating_add(1)
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    confirm.scroll = confirm.scroll.saturating_sub(1)
                }
                KeyCode::PageDown => confirm.scroll = confirm.scroll.saturating_add(PAGE),
                KeyCode::PageUp => confirm.scroll = confirm.scroll.saturating_sub(PAGE),
                _ => {}
            }
            return Vec::new();
        }
        if let Overlay::Input(input) = &mut self.overlay {
            self.dirty = true;
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            match key.code {
                KeyCode::Enter => {
                    let input = input.clone();
                    return self.submit_input(input);
                }
                KeyCode::Esc => self.overlay = Overlay::None,
                KeyCode::Char('c') if ctrl => self.overlay = Overlay::None,
                KeyCode::Char('u') if ctrl => input.text.clear(),
                KeyCode::Backspace => {
                    input.text.pop();
                }
                // Bounded: a reason is a sentence, a filter a word.
                KeyCode::Char(c) if !ctrl && input.text.chars().count() < 200 => input.text.push(c),
                _ => {}
            }
            return Vec::new();
        }
        if let Overlay::Palette(palette) = &mut self.overlay {
            return match palette_key(palette, key) {
                PaletteOutcome::Stay => {
                    self.dirty = true;
                    Vec::new()
                }
                PaletteOutcome::Close => self.update(Action::Close),
                PaletteOutcome::Run(action) => {
                    self.overlay = Overlay::None;
                    self.update(action)
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
                        method: "memory.search",
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
        if let Overlay::Help { scroll } = &mut self.overlay {
            // While help is open, movement scrolls it; anything else acts as usual.
            match action {
                Action::SelectNext => *scroll = scroll.saturating_add(1),
                Action::SelectPrev => *scroll = scroll.saturating_sub(1),
                Action::PageDown => *scroll = scroll.saturating_add(PAGE),
                Action::PageUp => *scroll = scroll.saturating_sub(PAGE),
                Action::SelectFirst => *scroll = 0,
                _ => return self.update(action),
            }
            self.dirty = true;
            return Vec::new();
        }
        self.update(action)
    }
}

enum PaletteOutcome {
    Stay,
    Close,
    Run(Action),
}

/// The palette is a text field: keys type, except for the few that steer it.
fn palette_key(palette: &mut Palette, key: KeyEvent) -> PaletteOutcome {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let count = palette.matches().len();
    match key.code {
        KeyCode::Esc => return PaletteOutcome::Close,
        KeyCode::Char('c') if ctrl => return PaletteOutcome::Close,
        KeyCode::Enter => {
            return match palette.matches().get(palette.selected) {
                Some(action) => PaletteOutcome::Run(*action),
                None => PaletteOutcome::Stay,
            };
        }
        KeyCode::Down | KeyCode::Tab => {
            palette.selected = (palette.selected + 1).min(count.saturating_sub(1));
        }
        KeyCode::Char('n') if ctrl => {
            palette.selected = (palette.selected + 1).min(count.saturating_sub(1));
        }
        KeyCode::Up | KeyCode::BackTab => palette.selected = palette.selected.saturating_sub(1),
        KeyCode::Char('p') if ctrl => palette.selected = palette.selected.saturating_sub(1),
        KeyCode::Backspace => {
            palette.query.pop();
            palette.selected = 0;
        }
        KeyCode::Char('u') if ctrl => {
            palette.query.clear();
            palette.selected = 0;
        }
        KeyCode::Char(c) if !ctrl => {
            palette.query.push(c);
            palette.selected = 0;
        }
        _ => {}
    }
    PaletteOutcome::Stay
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App::new(Keymap::builtin("default").unwrap(), "default".into())
    }

    fn press(app: &mut App, code: KeyCode, mods: KeyModifiers) -> Vec<Command> {
        app.handle(Msg::Key(KeyEvent::new(code, mods)))
    }

    fn ch(app: &mut App, c: char) -> Vec<Command> {
        press(app, KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn number_keys_jump_and_tab_cycles() {
        let mut app = app();
        ch(&mut app, '3');
        assert_eq!(app.focus, PaneId::Providers);
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(app.focus, PaneId::Findings);
        press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(app.focus, PaneId::Conversations, "wraps around");
        press(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(app.focus, PaneId::Findings);
    }

    #[test]
    fn quit_returns_the_quit_command() {
        let mut app = app();
        assert_eq!(ch(&mut app, 'q'), vec![Command::Quit]);
        assert!(app.should_quit);
        let mut app = self::app();
        assert_eq!(
            press(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL),
            vec![Command::Quit]
        );
    }

    #[test]
    fn refresh_asks_the_engine() {
        let mut app = app();
        let commands = press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
        let methods: Vec<_> = commands
            .iter()
            .map(|c| match c {
                Command::Call { method, .. } | Command::CallTagged { method, .. } => *method,
                Command::Quit | Command::Speak { .. } => "quit",
            })
            .collect();
        assert_eq!(methods, vec!["config.reload"]);
        let refetch = app.handle(Msg::Engine(EngineEvent::ConfigReloaded {
            errors: 0,
            warnings: 0,
        }));
        let methods: Vec<_> = refetch
            .iter()
            .filter_map(|c| match c {
                Command::Call { method, .. } | Command::CallTagged { method, .. } => Some(*method),
                Command::Quit | Command::Speak { .. } => None,
            })
            .collect();
        assert_eq!(
            methods,
            vec![
                "status",
                "health",
                "config.get",
                "findings.scan",
                "providers.list",
                "telemetry.recent",
                "sessions.list"
            ]
        );
        assert_eq!(app.calls_in_flight, 8);
    }

    #[test]
    fn help_toggles_and_scrolls_with_movement_keys() {
        let mut app = app();
        ch(&mut app, '?');
        assert_eq!(app.overlay, Overlay::Help { scroll: 0 });
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(app.overlay, Overlay::Help { scroll: 1 });
        assert_eq!(app.selected(PaneId::Conversations), 0, "pane did not move");
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        assert_eq!(app.overlay, Overlay::None);
    }

    #[test]
    fn palette_filters_types_and_runs_the_chosen_action() {
        let mut app = app();
        ch(&mut app, ':');
        assert!(matches!(app.overlay, Overlay::Palette(_)));
        for c in "findings".chars() {
            ch(&mut app, c);
        }
        assert_eq!(
            app.focus,
            PaneId::Conversations,
            "typing does not trigger bindings"
        );
        let Overlay::Palette(p) = &app.overlay else {
            panic!("palette closed")
        };
        assert_eq!(p.matches()[0], Action::FocusFindings);
        press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(app.overlay, Overlay::None);
        assert_eq!(app.focus, PaneId::Findings);
    }

    #[test]
    fn palette_lists_every_action_when_empty_and_nothing_for_nonsense() {
        let p = Palette::default();
        assert_eq!(p.matches().len(), Action::ALL.len());
        let p = Palette {
            query: "zzzzqqq".into(),
            selected: 0,
        };
        assert!(p.matches().is_empty());
        let p = Palette {
            query: "fcs".into(),
            selected: 0,
        };
        assert!(p.matches().contains(&Action::FocusConversations));
    }

    #[test]
    fn selection_moves_and_clamps() {
        let mut app = app();
        let findings: Vec<_> = (0..5)
            .map(|i| serde_json::json!({"checkId": format!("check.{i}"), "severity": "warn", "title": "t"}))
            .collect();
        app.apply_result(
            "findings.scan",
            Ok(serde_json::json!({"schemaVersion": 1, "ok": false,
                "summary": {"critical": 0, "warn": 5, "info": 0},
                "findings": findings, "suppressed": []})),
        );
        ch(&mut app, '4');
        press(&mut app, KeyCode::End, KeyModifiers::NONE);
        assert_eq!(app.selected(PaneId::Findings), 4);
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(app.selected(PaneId::Findings), 4, "stops at the last row");
        press(&mut app, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(app.selected(PaneId::Findings), 3);
        press(&mut app, KeyCode::Home, KeyModifiers::NONE);
        assert_eq!(app.selected(PaneId::Findings), 0);
    }

    #[test]
    fn results_and_failures_land_in_the_view() {
        let mut app = app();
        app.dirty = false;
        app.apply_result("status", Err(EngineError::internal("disk on fire")));
        assert!(app.dirty);
        assert_eq!(app.view.errors.len(), 1);
        assert!(app.last_event.as_deref().unwrap().contains("disk on fire"));
        app.apply_result(
            "config.get",
            Ok(serde_json::json!({"key": "", "value": {"a": 1}})),
        );
        assert_eq!(app.view.config, Some(serde_json::json!({"a": 1})));
    }

    #[test]
    fn engine_events_update_last_event_and_findings_changes_refetch() {
        let mut app = app();
        let cmds = app.handle(Msg::Engine(EngineEvent::FindingsChanged {
            critical: 1,
            warn: 0,
            info: 0,
        }));
        assert_eq!(cmds.len(), 1, "findings are fetched again");
        assert_eq!(
            app.last_event, None,
            "the pane shows the counts; the status bar stays"
        );
        app.handle(Msg::Engine(EngineEvent::ConfigReloaded {
            errors: 2,
            warnings: 0,
        }));
        assert!(app.last_event.as_deref().unwrap().contains("2 error(s)"));
    }

    #[test]
    fn undo_asks_first_naming_the_fix() {
        let mut app = app();
        ch(&mut app, '4');
        let commands = ch(&mut app, 'u');
        assert!(matches!(
            &commands[0],
            Command::Call {
                method: "findings.journal",
                ..
            }
        ));
        app.apply_result(
            "findings.journal",
            Ok(serde_json::json!({"entries": [
                {"seq": 1, "fixId": "a", "checkId": "a", "description": "old", "appliedAtMs": 0, "undo": [], "undone": true},
                {"seq": 2, "fixId": "b", "checkId": "b", "description": "chmod 0600 x", "appliedAtMs": 0, "undo": []}
            ]})),
        );
        let Overlay::Confirm(confirm) = &app.overlay else {
            panic!("no confirm: {:?}", app.overlay)
        };
        assert!(confirm.body.contains("chmod 0600 x"));
        let commands = ch(&mut app, 'y');
        assert_eq!(
            commands,
            vec![Command::Call {
                method: "findings.undo",
                params: serde_json::json!({"seq": 2}),
            }]
        );
        app.apply_result("findings.journal", Ok(serde_json::json!({"entries": []})));
        assert_eq!(app.last_event.as_deref(), Some("no applied fix to undo"));
    }

    fn calls(commands: &[Command]) -> Vec<(&'static str, Value)> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::Call { method, params } | Command::CallTagged { method, params, .. } => {
                    Some((*method, params.clone()))
                }
                Command::Quit | Command::Speak { .. } => None,
            })
            .collect()
    }

    fn tag_of(commands: &[Command], wanted: &str) -> u64 {
        commands
            .iter()
            .find_map(|c| match c {
                Command::CallTagged { method, tag, .. } if *method == wanted => Some(*tag),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no tagged {wanted} in {commands:?}"))
    }

    fn search_result(query: &str, chunk_ids: &[u32]) -> Value {
        let hits: Vec<Value> = chunk_ids
            .iter()
            .map(|id| {
                serde_json::json!({"chunkId": id, "snippet": format!("about «{query}» #{id}"),
                    "source": "MEMORY.md", "lineStart": 1, "lineEnd": 3, "score": 0.5,
                    "text": {"rank": 1, "score": 2.0}, "tags": [], "createdAt": 0})
            })
            .collect();
        serde_json::json!({"query": query, "mode": "hybrid", "fusion": "weighted",
            "embedder": "hash", "hits": hits, "tookMs": 1.0})
    }

    fn node(id: u32, kind: &str, key: &str, label: &str) -> Value {
        serde_json::json!({"id": id, "kind": kind, "key": key, "label": label, "degree": 2})
    }

    fn neighbors_result(center: Value, others: &[(Value, &str, bool)]) -> Value {
        let center_id = center["id"].as_u64().unwrap();
        let edges: Vec<Value> = others
            .iter()
            .map(|(n, kind, outgoing)| {
                let other = n["id"].as_u64().unwrap();
                let (from, to) = if *outgoing {
                    (center_id, other)
                } else {
                    (other, center_id)
                };
                serde_json::json!({"from": from, "to": to, "kind": kind, "count": 1})
            })
            .collect();
        let nodes: Vec<Value> = others.iter().map(|(n, _, _)| n.clone()).collect();
        serde_json::json!({"center": center, "nodes": nodes, "edges": edges, "truncated": false})
    }

    /// The memory pane focused, the search box open, and `text` typed; returns the search
    /// command fired once the debounce passed.
    fn typed_search(app: &mut App, text: &str) -> Vec<Command> {
        for c in text.chars() {
            assert!(ch(app, c).is_empty(), "typing alone calls nothing");
        }
        let due = app.next_deadline().expect("a search is due");
        app.handle(Msg::Tick(due))
    }

    fn memory_app() -> App {
        let mut app = app();
        let first = ch(&mut app, '2');
        let methods: Vec<_> = calls(&first).into_iter().map(|(m, _)| m).collect();
        assert_eq!(methods, vec!["memory.status", "memory.graph.top"]);
        // Passing through providers asks for voice status; memory is not asked again.
        let again = [ch(&mut app, '3'), ch(&mut app, '2')].concat();
        assert!(
            calls(&again).iter().all(|(m, _)| !m.starts_with("memory.")),
            "only once"
        );
        // Answer the voice status, so only memory's calls stay in flight.
        app.handle(Msg::CallDone {
            method: "tts.status".into(),
            result: Err(EngineError::internal("not under test")),
        });
        ch(&mut app, '/');
        assert!(app.memory.editing);
        app
    }

    #[test]
    fn memory_typing_debounces_and_keys_go_to_the_box() {
        let mut app = memory_app();
        for c in "ada 4q".chars() {
            assert!(ch(&mut app, c).is_empty());
        }
        assert_eq!(app.focus, PaneId::Memory, "digits type, they do not jump");
        assert!(!app.should_quit, "q types");
        assert_eq!(app.memory.query, "ada 4q");
        let due = app.next_deadline().unwrap();
        assert!(
            app.handle(Msg::Tick(due - std::time::Duration::from_millis(1)))
                .is_empty(),
            "not before the deadline"
        );
        let fired = app.handle(Msg::Tick(due));
        assert_eq!(
            calls(&fired),
            vec![(
                "memory.search",
                serde_json::json!({"query": "ada 4q", "limit": 20})
            )]
        );
        assert_eq!(app.next_deadline(), None, "nothing left to wake for");
        // Backspace past the last letter: no search, the top nodes come back.
        press(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
        assert_eq!(app.memory.query, "");
        assert_eq!(app.next_deadline(), None);
        // Esc leaves the box; then keys are keys again.
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        assert!(!app.memory.editing);
        ch(&mut app, '3');
        assert_eq!(app.focus, PaneId::Providers);
    }

    #[test]
    fn memory_stale_results_are_dropped() {
        let mut app = memory_app();
        let first = typed_search(&mut app, "ad");
        let old = tag_of(&first, "memory.search");
        let second = typed_search(&mut app, "a");
        let new = tag_of(&second, "memory.search");
        assert_ne!(old, new);
        app.handle(Msg::TaggedDone {
            method: "memory.search".into(),
            tag: new,
            result: Ok(search_result("ada", &[7, 8])),
        });
        app.handle(Msg::TaggedDone {
            method: "memory.search".into(),
            tag: old,
            result: Ok(search_result("ad", &[1])),
        });
        let results = app.memory.results.as_ref().unwrap();
        assert_eq!(
            results.query, "ada",
            "the older answer came late and was dropped"
        );
        assert_eq!(results.hits.len(), 2);
        assert_eq!(
            app.calls_in_flight, 3,
            "status, top and the new results' preview are still out"
        );
    }

    #[test]
    fn memory_enter_on_a_hit_opens_its_chunk_node_and_back_returns() {
        let mut app = memory_app();
        let fired = typed_search(&mut app, "ada");
        let tag = tag_of(&fired, "memory.search");
        app.handle(Msg::TaggedDone {
            method: "memory.search".into(),
            tag,
            result: Ok(search_result("ada", &[7, 12])),
        });
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
        let opened = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        let sent = calls(&opened);
        assert_eq!(
            sent[0],
            (
                "memory.graph.neighbors",
                serde_json::json!({"node": "chunk:12", "depth": 1, "edgeKinds": [], "limit": 50})
            )
        );
        assert_eq!(
            sent[1],
            (
                "memory.graph.node",
                serde_json::json!({"node": "chunk:12", "chunkLimit": 20})
            )
        );
        assert!(!app.memory.editing);
        assert_eq!(app.memory.mode, crate::tui::memory::Mode::Graph);
        let tag = tag_of(&opened, "memory.graph.neighbors");
        app.handle(Msg::TaggedDone {
            method: "memory.graph.neighbors".into(),
            tag,
            result: Ok(neighbors_result(
                node(40, "chunk", "chunk:12", "Ada wrote notes"),
                &[
                    (
                        node(2, "document", "document:MEMORY.md", "MEMORY.md"),
                        "contains",
                        false,
                    ),
                    (
                        node(9, "entity", "entity:ada lovelace", "ada lovelace"),
                        "mentions",
                        true,
                    ),
                ],
            )),
        });
        assert_eq!(app.memory.graph.trail[0].label, "chunk #12");
        // Rows: contains ← doc, mentions → entity. Follow the second.
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
        let followed = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(
            calls(&followed)[0].1["node"],
            serde_json::json!(9),
            "followed by node id"
        );
        assert_eq!(app.memory.graph.trail.len(), 2);
        let back = press(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
        assert_eq!(calls(&back)[0].1["node"], serde_json::json!("chunk:12"));
        assert_eq!(app.memory.graph.trail.len(), 1);
        assert_eq!(app.memory.graph.selected, 1, "the cursor is where it was");
        // A late answer for the node we left is ignored.
        let late = tag_of(&followed, "memory.graph.neighbors");
        app.handle(Msg::TaggedDone {
            method: "memory.graph.neighbors".into(),
            tag: late,
            result: Ok(neighbors_result(node(9, "entity", "entity:x", "x"), &[])),
        });
        assert!(
            app.memory.graph.neighbors.is_none(),
            "still waiting for chunk:12"
        );
        // Back from the first crumb: the search again.
        press(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
        assert_eq!(app.memory.mode, crate::tui::memory::Mode::Search);
        assert_eq!(app.memory.hits().len(), 2, "the results are still there");
    }

    #[test]
    fn memory_edge_filter_changes_the_params() {
        let mut app = memory_app();
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        app.handle(Msg::CallDone {
            method: "memory.graph.top".into(),
            result: Ok(serde_json::json!({"nodes": [node(9, "entity", "entity:ada", "ada")]})),
        });
        let opened = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(calls(&opened)[0].1["node"], serde_json::json!(9));
        let filtered = ch(&mut app, 'e');
        assert_eq!(
            calls(&filtered),
            vec![(
                "memory.graph.neighbors",
                serde_json::json!({"node": 9, "depth": 1, "edgeKinds": ["contains"], "limit": 50})
            )]
        );
        let filtered = ch(&mut app, 'e');
        assert_eq!(
            calls(&filtered)[0].1["edgeKinds"],
            serde_json::json!(["mentions"])
        );
        // The node's chunks asked for on opening still land: the filter does not change them.
        app.handle(Msg::TaggedDone {
            method: "memory.graph.node".into(),
            tag: tag_of(&opened, "memory.graph.node"),
            result: Ok(
                serde_json::json!({"node": node(9, "entity", "entity:ada", "ada"),
                "edgeCounts": [], "chunks": []}),
            ),
        });
        assert!(app.memory.graph.node.is_some());
    }

    #[test]
    fn memory_index_shows_progress_then_refreshes() {
        let mut app = memory_app();
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        let sent = ch(&mut app, 'i');
        assert_eq!(
            calls(&sent),
            vec![("memory.index", serde_json::json!({"force": false}))]
        );
        assert!(ch(&mut app, 'i').is_empty(), "one index run at a time");
        app.handle(Msg::Engine(EngineEvent::Progress {
            task: "memory.index".into(),
            done: 3,
            total: Some(10),
            message: "MEMORY.md".into(),
        }));
        assert_eq!(app.memory.indexing.as_ref().unwrap().done, 3);
        let after = app.handle(Msg::CallDone {
            method: "memory.index".into(),
            result: Ok(serde_json::json!({"scannedFiles": 1, "indexedFiles": 1,
                "unchangedFiles": 0, "removedFiles": 0, "addedChunks": 4, "removedChunks": 0,
                "reusedChunks": 0, "skipped": [], "tookMs": 12, "forced": false})),
        });
        assert!(app.memory.indexing.is_none());
        let methods: Vec<_> = calls(&after).into_iter().map(|(m, _)| m).collect();
        assert_eq!(methods, vec!["memory.status", "memory.graph.top"]);
        assert!(app.last_event.as_deref().unwrap().contains("+4"));
        // A full rebuild asks first.
        assert!(ch(&mut app, 'I').is_empty());
        assert!(matches!(app.overlay, Overlay::Confirm(_)));
        let sent = ch(&mut app, 'y');
        assert_eq!(
            calls(&sent),
            vec![("memory.index", serde_json::json!({"force": true}))]
        );
    }

    #[test]
    fn memory_failures_are_shown_not_fatal() {
        let mut app = memory_app();
        app.handle(Msg::CallDone {
            method: "memory.status".into(),
            result: Err(EngineError::invalid_request(
                "unknown method 'memory.status'",
            )),
        });
        assert!(app.memory.error("memory.status").is_some());
        assert!(
            app.last_event
                .as_deref()
                .unwrap()
                .contains("unknown method")
        );
        app.handle(Msg::CallDone {
            method: "memory.status".into(),
            result: Ok(serde_json::json!({"not": "a status"})),
        });
        assert!(
            app.memory
                .error("memory.status")
                .unwrap()
                .contains("unexpected")
        );
    }

    #[test]
    fn terminate_signal_quits() {
        let mut app = app();
        assert_eq!(app.handle(Msg::Terminate), vec![Command::Quit]);
    }
}
