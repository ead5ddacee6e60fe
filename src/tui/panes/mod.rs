//! The four panes. Each reads the app's state and draws; none changes anything.

pub mod conversations;
pub mod findings;
pub mod memory;
pub mod providers;
pub mod voice;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::app::{App, PaneId};
use super::theme::Theme;

/// Selectable rows in a pane, so that selection can be clamped where it changes.
pub fn row_count(app: &App, pane: PaneId) -> usize {
    match pane {
        PaneId::Conversations => 0,
        // The memory pane keeps its own cursors (see `tui::memory`).
        PaneId::Memory => 0,
        PaneId::Providers => providers::rows(app).len(),
        PaneId::Findings => findings::rows(app).len(),
    }
}

pub fn render(app: &App, pane: PaneId, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let focused = app.focus == pane;
    match pane {
        PaneId::Conversations => conversations::render(app, theme, area, buf, focused),
        PaneId::Memory => memory::render(app, theme, area, buf, focused),
        PaneId::Providers => providers::render(app, theme, area, buf, focused),
        PaneId::Findings => findings::render(app, theme, area, buf, focused),
    }
}

/// A value from the effective configuration, by JSON pointer (`/memory/embedder`).
pub fn config_value<'a>(app: &'a App, pointer: &str) -> Option<&'a serde_json::Value> {
    app.view.config.as_ref()?.pointer(pointer)
}

/// A config value as display text: strings bare, arrays joined, others as JSON.
pub fn config_text(app: &App, pointer: &str) -> String {
    match config_value(app, pointer) {
        None => "—".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(items)) if items.is_empty() => "none".into(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}
