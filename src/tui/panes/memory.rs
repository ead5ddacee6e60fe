//! Memory: what will be remembered, and with which settings.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{config_text, config_value};
use crate::tui::app::{App, PaneId};
use crate::tui::theme::Theme;
use crate::tui::widgets::{key_value_lines, pane_block, scroll_offset};

pub fn rows(app: &App) -> Vec<(String, String)> {
    if app.view.config.is_none() {
        return Vec::new();
    }
    let on = |pointer: &str| {
        config_value(app, pointer)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let store = app.view.status.as_ref().map_or_else(
        || "—".to_string(),
        |s| format!("{}/memory", s.state_dir.trim_end_matches('/')),
    );
    vec![
        (
            "enabled".into(),
            if on("/memory/enabled") { "yes" } else { "no" }.into(),
        ),
        ("embedder".into(), embedder(app)),
        ("sources".into(), config_text(app, "/memory/paths")),
        (
            "chunking".into(),
            format!(
                "{} tokens, {} overlap",
                config_text(app, "/memory/chunk_tokens"),
                config_text(app, "/memory/chunk_overlap")
            ),
        ),
        (
            "conversations".into(),
            if on("/memory/ingest_conversations") {
                "remembered"
            } else {
                "not remembered"
            }
            .into(),
        ),
        ("store".into(), store),
    ]
}

/// The embedder that runs, saying so when the profile asked for one this build lacks.
fn embedder(app: &App) -> String {
    let dimensions = config_text(app, "/memory/dimensions");
    match app.view.status.as_ref().map(|s| &s.embedder) {
        Some(choice) if choice.fallback_reason.is_some() => format!(
            "{} ({dimensions} dimensions; {} needs the edge build)",
            choice.in_use.as_str(),
            choice.requested.as_str()
        ),
        Some(choice) => format!("{} ({dimensions} dimensions)", choice.in_use.as_str()),
        None => format!(
            "{} ({dimensions} dimensions)",
            config_text(app, "/memory/embedder")
        ),
    }
}

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let block = pane_block(theme, "memory", focused);
    let rows = rows(app);
    let mut lines = vec![
        Line::from(Span::styled(
            " No memory store yet.",
            theme.style("ui.heading"),
        )),
        Line::from(Span::styled(
            " Memory sources and settings of the active profile; change them",
            theme.style("ui.text"),
        )),
        Line::from(Span::styled(
            " under [memory] in config.toml:",
            theme.style("ui.text"),
        )),
        Line::default(),
    ];
    if rows.is_empty() {
        lines.push(Line::from(Span::styled(
            " loading settings…",
            theme.style("ui.text.dim"),
        )));
    }
    let selected = focused.then(|| {
        app.selected(PaneId::Memory)
            .min(rows.len().saturating_sub(1))
    });
    let body_height = (area.height as usize).saturating_sub(2 + lines.len());
    let offset = scroll_offset(selected.unwrap_or(0), body_height);
    lines.extend(
        key_value_lines(theme, &rows, "memory.value", selected)
            .into_iter()
            .skip(offset),
    );
    Paragraph::new(lines).block(block).render(area, buf);
}
