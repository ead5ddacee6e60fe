//! The memory explorer's state: a search box with debounced live results, a preview of the
//! selected chunk, and a graph walk with breadcrumbs. It changes only through the methods
//! below, which return the engine work they imply; `panes::memory` draws it. The graph
//! walk is in memory/walk.rs.
//!
//! Time is data here: typing records a deadline, the driver sleeps until
//! [`MemoryState::next_deadline`] and sends the app a tick, and [`MemoryState::tick`] fires
//! what is due. Answers carry the tag of their request, so a result overtaken by a newer
//! question (an older query, a node already left) is dropped.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};

use super::action::Action;
use super::app::{Command, decode};
use super::overlay::{Confirm, Overlay, Pending};
use crate::engine::memory::{
    MemoryCancel, MemoryGet, MemoryGraphNeighbors, MemoryGraphNode, MemoryGraphTop, MemoryIndex,
    MemorySearch, MemoryStatus,
};
use crate::engine::{EngineError, ErrorCode, Method};
use crate::memory::types::{
    ChunkView, EdgeKind, IndexResult, NeighborsResult, NodeKind, NodeRef, NodeResult, NodeView,
    SearchHit, SearchResult, StatusResult, TopResult,
};

mod marks;
mod walk;
pub use marks::{marked_spans, marked_terms, term_spans};

/// Quiet time after the last keystroke before a search goes out.
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// Quiet time after the last cursor move before the full chunk is fetched.
pub const PREVIEW_DELAY: Duration = Duration::from_millis(150);
const SEARCH_LIMIT: usize = 20;
const TOP_LIMIT: usize = 20;
const NEIGHBOR_LIMIT: usize = 50;
const CHUNK_LIMIT: usize = 20;
/// Longest query the box takes; the engine shortens long ones anyway.
const MAX_QUERY: usize = 200;
const PAGE: usize = 10;

/// The popup `memory-reindex` opens: a rebuild drops the whole index, so it asks first.
pub fn reindex_confirm() -> Overlay {
    Overlay::Confirm(Confirm {
        title: "rebuild the memory index".into(),
        body: "Drop the full-text index, the vectors and the graph, and build them \
               again from the memory files and the stored notes, with the embedder \
               this run uses. Search works again when it is done."
            .into(),
        scroll: 0,
        on_yes: Pending::MemoryReindex,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Search,
    Graph,
}

/// Which list the cursor is in while the graph is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphFocus {
    #[default]
    Neighbors,
    Chunks,
}

/// One step of the walk: how the node was asked for, what to call it, where the cursor was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crumb {
    pub node: NodeRef,
    pub label: String,
    pub selected: usize,
}

/// A neighbour of the centre, by the edge that joins them.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborRow<'a> {
    pub kind: EdgeKind,
    /// The edge goes from the centre to the neighbour.
    pub outgoing: bool,
    pub count: u32,
    pub node: &'a NodeView,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexProgress {
    pub done: u64,
    pub total: Option<u64>,
    pub message: String,
}

/// The latest tag sent per kind of question; answers with another tag are stale.
#[derive(Debug, Clone, Default)]
struct Tags {
    next: u64,
    search: u64,
    preview: u64,
    neighbors: u64,
    node: u64,
}

#[derive(Debug, Clone, Default)]
pub struct GraphState {
    /// The walk so far; the last crumb is the centre.
    pub trail: Vec<Crumb>,
    pub neighbors: Option<NeighborsResult>,
    pub node: Option<NodeResult>,
    pub focus: GraphFocus,
    pub selected: usize,
    pub chunk_selected: usize,
    /// Only this edge kind (None: all kinds).
    pub filter: Option<EdgeKind>,
    pub loading: bool,
}

#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    /// Status and top nodes were asked for (on first focus).
    pub started: bool,
    pub status: Option<StatusResult>,
    /// The top nodes: where a walk starts when there is no query.
    pub top: Option<TopResult>,
    pub mode: Mode,
    /// Keys go to the search box.
    pub editing: bool,
    pub query: String,
    pub search_due: Option<Instant>,
    /// The query of the search in flight, if any.
    pub searching: Option<String>,
    pub results: Option<SearchResult>,
    /// Cursor in the search list (hits, or top nodes when the query is empty).
    pub selected: usize,
    /// The full chunk behind the selected hit, once fetched.
    pub preview: Option<ChunkView>,
    pub preview_due: Option<Instant>,
    pub graph: GraphState,
    pub indexing: Option<IndexProgress>,
    /// `memory.cancel` was sent for the running index; it has not ended yet.
    pub cancelling: bool,
    pub last_index: Option<IndexResult>,
    /// Failures by method, shown in the pane until that method next succeeds.
    pub errors: Vec<(String, String)>,
    tags: Tags,
}

/// Short kind names for breadcrumbs and rows.
pub fn kind_label(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Document => "doc",
        other => other.as_str(),
    }
}

/// How a node reads in a trail or a row: `doc:MEMORY.md`, `chunk #12`, `entity:ada lovelace`.
pub fn node_label(node: &NodeView) -> String {
    match node.kind {
        NodeKind::Chunk => {
            let id = node.key.strip_prefix("chunk:").unwrap_or(&node.key);
            format!("chunk #{id}")
        }
        kind => format!("{}:{}", kind_label(kind), node.label),
    }
}

/// The next filter in the cycle: all, then each edge kind, then all again.
fn next_filter(filter: Option<EdgeKind>) -> Option<EdgeKind> {
    match filter {
        None => EdgeKind::ALL.first().copied(),
        Some(kind) => {
            let at = EdgeKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            EdgeKind::ALL.get(at + 1).copied()
        }
    }
}

impl MemoryState {
    fn tagged(&mut self, method: &'static str, params: Value) -> (u64, Command) {
        self.tags.next += 1;
        let tag = self.tags.next;
        (
            tag,
            Command::CallTagged {
                method,
                params,
                tag,
            },
        )
    }

    /// The first time the pane is shown: what the store holds and where a walk can start.
    pub fn on_focus(&mut self) -> Vec<Command> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        self.refresh()
    }

    pub fn refresh(&mut self) -> Vec<Command> {
        let mut commands = vec![
            Command::Call {
                method: MemoryStatus::NAME,
                params: json!({}),
            },
            Command::Call {
                method: MemoryGraphTop::NAME,
                params: json!({ "limit": TOP_LIMIT }),
            },
        ];
        if !self.query.trim().is_empty() {
            commands.push(self.search_now());
        }
        if let Some(crumb) = self.graph.trail.last().cloned() {
            commands.extend(self.load_node(crumb.node));
        }
        commands
    }

    /// When the driver should wake up next for this pane.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.search_due, self.preview_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fire what is due at `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Command> {
        let mut commands = Vec::new();
        if self.search_due.is_some_and(|due| due <= now) {
            self.search_due = None;
            commands.push(self.search_now());
        }
        if self.preview_due.is_some_and(|due| due <= now) {
            self.preview_due = None;
            commands.extend(self.fetch_preview());
        }
        commands
    }

    fn search_now(&mut self) -> Command {
        self.search_due = None;
        let query = self.query.trim().to_string();
        let (tag, command) = self.tagged(
            MemorySearch::NAME,
            json!({ "query": query, "limit": SEARCH_LIMIT }),
        );
        self.tags.search = tag;
        self.searching = Some(query);
        command
    }

    /// The query changed: show it now, search once typing pauses.
    fn query_changed(&mut self, now: Instant) {
        self.selected = 0;
        if self.query.trim().is_empty() {
            // Nothing to look for: back to the top nodes, and forget answers still coming.
            self.search_due = None;
            self.searching = None;
            self.results = None;
            self.preview = None;
            self.preview_due = None;
            self.tags.search = 0;
        } else {
            self.search_due = Some(now + DEBOUNCE);
        }
    }

    /// A key while the search box has it. `None`: not a text-editing key, so the keymap
    /// decides (ctrl-c still quits, tab still moves on).
    pub fn edit_key(&mut self, key: KeyEvent, now: Instant) -> Option<Vec<Command>> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('u') if ctrl => {
                self.query.clear();
                self.query_changed(now);
            }
            KeyCode::Char('w') if ctrl => {
                let kept = self.query.trim_end().len();
                let cut = self.query[..kept].rfind(' ').map_or(0, |i| i + 1);
                self.query.truncate(cut);
                self.query_changed(now);
            }
            KeyCode::Char(c) if !ctrl && !alt => {
                if self.query.chars().count() < MAX_QUERY {
                    self.query.push(c);
                    self.query_changed(now);
                }
            }
            KeyCode::Backspace => {
                self.query.pop();
                self.query_changed(now);
            }
            KeyCode::Esc => self.editing = false,
            KeyCode::Enter => {
                self.editing = false;
                // Typed faster than the debounce: search now instead of opening an old hit.
                if self.search_due.is_some() {
                    return Some(vec![self.search_now()]);
                }
                return Some(self.open(now));
            }
            KeyCode::Down => return Some(self.move_by(1, now)),
            KeyCode::Up => return Some(self.move_by(-1, now)),
            KeyCode::PageDown => return Some(self.move_by(PAGE as isize, now)),
            KeyCode::PageUp => return Some(self.move_by(-(PAGE as isize), now)),
            _ => return None,
        }
        Some(Vec::new())
    }

    /// A paste into the search field: one line, as if typed, within the field's bound.
    pub fn paste(&mut self, text: &str, now: Instant) {
        self.mode = Mode::Search;
        self.editing = true;
        let room = MAX_QUERY.saturating_sub(self.query.chars().count());
        self.query
            .extend(super::paste::single_line(text).chars().take(room));
        self.query_changed(now);
    }

    /// Rows of the list the cursor is in.
    fn list_len(&self) -> usize {
        match self.mode {
            Mode::Search => self.search_len(),
            Mode::Graph if self.graph.trail.is_empty() => self.top_nodes().len(),
            Mode::Graph => match self.graph.focus {
                GraphFocus::Neighbors => self.neighbor_rows().len(),
                GraphFocus::Chunks => self.graph.node.as_ref().map_or(0, |n| n.chunks.len()),
            },
        }
    }

    fn search_len(&self) -> usize {
        if self.query.trim().is_empty() {
            self.top_nodes().len()
        } else {
            self.hits().len()
        }
    }

    fn cursor(&mut self) -> &mut usize {
        match self.mode {
            Mode::Search => &mut self.selected,
            Mode::Graph if self.graph.trail.is_empty() => &mut self.selected,
            Mode::Graph => match self.graph.focus {
                GraphFocus::Neighbors => &mut self.graph.selected,
                GraphFocus::Chunks => &mut self.graph.chunk_selected,
            },
        }
    }

    /// Move the cursor; `isize::MIN`/`MAX` jump to the ends.
    pub fn move_by(&mut self, by: isize, now: Instant) -> Vec<Command> {
        let last = self.list_len().saturating_sub(1);
        let cursor = self.cursor();
        let before = *cursor;
        *cursor = if by < 0 {
            cursor.saturating_sub(by.unsigned_abs())
        } else {
            cursor.saturating_add(by as usize).min(last)
        };
        let moved = *cursor != before;
        if moved && self.mode == Mode::Search && !self.hits().is_empty() {
            // The snippet shows at once; the whole chunk once the cursor rests.
            self.preview = None;
            self.preview_due = Some(now + PREVIEW_DELAY);
        }
        Vec::new()
    }

    pub fn hits(&self) -> &[SearchHit] {
        match &self.results {
            Some(results) if !self.query.trim().is_empty() => &results.hits,
            _ => &[],
        }
    }

    pub fn top_nodes(&self) -> &[NodeView] {
        self.top.as_ref().map_or(&[], |t| &t.nodes)
    }

    pub fn selected_hit(&self) -> Option<&SearchHit> {
        let hits = self.hits();
        hits.get(self.selected.min(hits.len().checked_sub(1)?))
    }

    fn fetch_preview(&mut self) -> Vec<Command> {
        let Some(chunk_id) = self.selected_hit().map(|h| h.chunk_id) else {
            return Vec::new();
        };
        if self
            .preview
            .as_ref()
            .is_some_and(|c| c.chunk_id == chunk_id)
        {
            return Vec::new();
        }
        let (tag, command) = self.tagged(MemoryGet::NAME, json!({ "chunkId": chunk_id }));
        self.tags.preview = tag;
        vec![command]
    }

    pub fn toggle_mode(&mut self) {
        self.editing = false;
        self.mode = match self.mode {
            Mode::Search => Mode::Graph,
            Mode::Graph => Mode::Search,
        };
    }

    pub fn index(&mut self, force: bool) -> Vec<Command> {
        if self.indexing.is_some() {
            return Vec::new();
        }
        self.indexing = Some(IndexProgress {
            done: 0,
            total: None,
            message: if force {
                "rebuilding…".into()
            } else {
                "starting…".into()
            },
        });
        vec![Command::Call {
            method: MemoryIndex::NAME,
            params: json!({ "force": force }),
        }]
    }

    /// Stop the running index (its build is dropped; the previous index answers).
    pub fn cancel(&mut self) -> Vec<Command> {
        if self.indexing.is_none() || self.cancelling {
            return Vec::new();
        }
        self.cancelling = true;
        vec![Command::Call {
            method: MemoryCancel::NAME,
            params: json!({}),
        }]
    }

    pub fn progress(&mut self, done: u64, total: Option<u64>, message: &str) {
        self.indexing = Some(IndexProgress {
            done,
            total,
            message: message.to_string(),
        });
    }

    /// The memory pane's actions; other actions are not for this pane.
    pub fn act(&mut self, action: Action, now: Instant) -> Vec<Command> {
        match action {
            Action::MemorySearch => {
                self.mode = Mode::Search;
                self.editing = true;
                Vec::new()
            }
            Action::MemoryOpen => self.open(now),
            Action::MemoryBack => self.back(),
            Action::MemoryEdgeFilter => self.cycle_filter(),
            Action::MemoryChunks => {
                self.toggle_chunks();
                Vec::new()
            }
            Action::MemoryGraph => {
                self.toggle_mode();
                Vec::new()
            }
            Action::MemoryIndex => self.index(false),
            Action::MemoryCancel => self.cancel(),
            Action::SelectNext => self.move_by(1, now),
            Action::SelectPrev => self.move_by(-1, now),
            Action::PageDown => self.move_by(PAGE as isize, now),
            Action::PageUp => self.move_by(-(PAGE as isize), now),
            Action::SelectFirst => self.move_by(isize::MIN, now),
            Action::SelectLast => self.move_by(isize::MAX, now),
            _ => Vec::new(),
        }
    }

    /// An untagged memory result (status, top, index). Returns a line for the status bar.
    pub fn apply(
        &mut self,
        method: &str,
        result: Result<Value, EngineError>,
    ) -> (Vec<Command>, Option<String>) {
        let value = match result {
            Ok(value) => value,
            Err(error) => {
                if method == MemoryIndex::NAME {
                    self.indexing = None;
                    self.cancelling = false;
                    if error.code == ErrorCode::Cancelled {
                        // Asked for: not a failure to keep showing. The refreshed status
                        // says what waits for the next build.
                        return (
                            self.refresh(),
                            Some(
                                "memory index cancelled: the previous vector index answers".into(),
                            ),
                        );
                    }
                }
                self.fail(method, error.message.clone());
                return (
                    Vec::new(),
                    Some(format!("{method} failed: {}", error.message)),
                );
            }
        };
        self.errors.retain(|(m, _)| m != method);
        let parsed: Result<Option<String>, serde_json::Error> = match method {
            MemoryStatus::NAME => decode::<MemoryStatus>(value).map(|s| {
                self.status = Some(s);
                None
            }),
            MemoryGraphTop::NAME => decode::<MemoryGraphTop>(value).map(|t| {
                self.top = Some(t);
                None
            }),
            MemoryCancel::NAME => Ok(None),
            MemoryIndex::NAME => decode::<MemoryIndex>(value).map(|r| {
                self.indexing = None;
                self.cancelling = false;
                let line = format!(
                    "memory indexed: {} file(s), +{} -{} chunk(s) in {} ms",
                    r.indexed_files, r.added_chunks, r.removed_chunks, r.took_ms
                );
                self.last_index = Some(r);
                Some(line)
            }),
            _ => Ok(None),
        };
        match parsed {
            Ok(line) if method == MemoryIndex::NAME => (self.refresh(), line),
            Ok(line) => (Vec::new(), line),
            Err(e) => {
                self.fail(method, format!("unexpected result: {e}"));
                (Vec::new(), None)
            }
        }
    }

    /// A tagged answer: dropped unless it answers the latest question of its kind.
    pub fn apply_tagged(
        &mut self,
        method: &str,
        tag: u64,
        result: Result<Value, EngineError>,
    ) -> (Vec<Command>, Option<String>) {
        let latest = match method {
            MemorySearch::NAME => self.tags.search,
            MemoryGet::NAME => self.tags.preview,
            MemoryGraphNeighbors::NAME => self.tags.neighbors,
            MemoryGraphNode::NAME => self.tags.node,
            _ => 0,
        };
        if tag != latest {
            return (Vec::new(), None);
        }
        let value = match result {
            Ok(value) => value,
            Err(error) => {
                match method {
                    MemorySearch::NAME => self.searching = None,
                    MemoryGraphNeighbors::NAME => self.graph.loading = false,
                    _ => {}
                }
                self.fail(method, error.message.clone());
                return (
                    Vec::new(),
                    Some(format!("{method} failed: {}", error.message)),
                );
            }
        };
        self.errors.retain(|(m, _)| m != method);
        let mut commands = Vec::new();
        let parsed = match method {
            MemorySearch::NAME => decode::<MemorySearch>(value).map(|r| {
                self.searching = None;
                self.results = Some(r);
                self.selected = 0;
                self.preview = None;
                self.preview_due = None;
                commands = self.fetch_preview();
            }),
            MemoryGet::NAME => decode::<MemoryGet>(value).map(|r| {
                self.preview = r.chunk;
            }),
            MemoryGraphNeighbors::NAME => {
                decode::<MemoryGraphNeighbors>(value).map(|r| {
                    self.graph.loading = false;
                    // The crumb asked by key (`chunk:12`) now has its proper name.
                    if let Some(crumb) = self.graph.trail.last_mut() {
                        crumb.label = node_label(&r.center);
                    }
                    self.graph.neighbors = Some(r);
                    let last = self.neighbor_rows().len().saturating_sub(1);
                    self.graph.selected = self.graph.selected.min(last);
                })
            }
            MemoryGraphNode::NAME => decode::<MemoryGraphNode>(value).map(|r| {
                self.graph.node = Some(r);
            }),
            _ => Ok(()),
        };
        if let Err(e) = parsed {
            self.fail(method, format!("unexpected result: {e}"));
        }
        (commands, None)
    }

    fn fail(&mut self, method: &str, message: String) {
        self.errors.retain(|(m, _)| m != method);
        self.errors.push((method.to_string(), message));
    }

    /// Why `method` last failed, if it did since its last success.
    pub fn error(&self, method: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, message)| message.as_str())
    }

    /// The embedder's vectors do not match, or the last search fell back to keywords.
    pub fn degraded(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| s.embedder_mismatch.is_some())
            || self
                .results
                .as_ref()
                .is_some_and(|r| r.mode == crate::memory::types::SearchMode::Keyword)
    }
}

#[cfg(test)]
mod tests;
