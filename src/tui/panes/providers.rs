//! Providers: the configured matrix, key states, and the self-heal policy.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{config_text, config_value};
use crate::tui::app::{App, PaneId};
use crate::tui::theme::Theme;
use crate::tui::widgets::{pane_block, scroll_offset, truncate_right};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    pub id: String,
    pub kind: String,
    pub model: String,
    pub base_url: String,
    /// `env:NAME` / `file:PATH`, or empty when the provider needs no key.
    pub key_ref: String,
    /// The health check's verdict on the key, when there is a key.
    pub key_state: Option<(bool, String)>,
    /// True for the built-in fallbacks that need no configuration.
    pub builtin: bool,
}

/// Providers from the configuration, in id order.
pub fn configured(app: &App) -> Vec<ProviderRow> {
    let Some(map) = config_value(app, "/providers").and_then(|v| v.as_object()) else {
        return Vec::new();
    };
    map.iter()
        .map(|(id, p)| {
            let text = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let key_state = app.view.health.as_ref().and_then(|h| {
                h.checks
                    .iter()
                    .find(|c| c.name == format!("provider.{id}.api_key"))
                    .map(|c| (c.ok, c.detail.clone()))
            });
            ProviderRow {
                id: id.clone(),
                kind: text("kind"),
                model: text("model"),
                base_url: text("base_url"),
                key_ref: text("api_key"),
                key_state,
                builtin: false,
            }
        })
        .collect()
}

/// Configured providers, then fallback entries that are built in (ollama, offline).
pub fn rows(app: &App) -> Vec<ProviderRow> {
    let mut rows = configured(app);
    let fallback = config_value(app, "/self_heal/fallback")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for id in fallback.iter().filter_map(|v| v.as_str()) {
        if rows.iter().any(|r| r.id == id) {
            continue;
        }
        let (kind, base_url) = match id {
            "ollama" => ("ollama", "http://127.0.0.1:11434"),
            "offline" => ("offline", "no model: answers from memory"),
            _ => continue,
        };
        rows.push(ProviderRow {
            id: id.to_string(),
            kind: kind.to_string(),
            model: String::new(),
            base_url: base_url.to_string(),
            key_ref: String::new(),
            key_state: None,
            builtin: true,
        });
    }
    rows
}

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let block = pane_block(theme, "providers", focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let rows = rows(app);
    let [list_area, detail_area, policy_area, voice_area] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Length(super::voice::HEIGHT),
    ])
    .areas(inner);
    super::voice::render(app, theme, voice_area, buf);

    let dim = theme.style("ui.text.dim");
    let text = theme.style("ui.text");
    let mut lines = vec![Line::from(Span::styled(
        format!(" {:<12} {:<10} {:<22} {}", "id", "kind", "model", "key"),
        theme.style("ui.heading"),
    ))];
    let selected = app
        .selected(PaneId::Providers)
        .min(rows.len().saturating_sub(1));
    let offset = scroll_offset(selected, (list_area.height as usize).saturating_sub(1));
    for (i, row) in rows.iter().enumerate().skip(offset) {
        let (key_text, key_style) = match (&row.key_state, row.key_ref.is_empty()) {
            (_, true) => ("not needed".to_string(), dim),
            (Some((true, _)), _) => ("set".to_string(), theme.style("providers.key.set")),
            (Some((false, _)), _) => ("missing".to_string(), theme.style("providers.key.missing")),
            (None, false) => ("…".to_string(), dim),
        };
        let model = if row.model.is_empty() {
            if row.builtin {
                "(fallback)"
            } else {
                "(default)"
            }
            .to_string()
        } else {
            truncate_right(&row.model, 22)
        };
        let line = Line::from(vec![
            Span::styled(
                format!(" {:<12} ", truncate_right(&row.id, 12)),
                theme.style("ui.key"),
            ),
            Span::styled(format!("{:<10} {:<22} ", row.kind, model), text),
            Span::styled(key_text, key_style),
        ]);
        lines.push(if focused && i == selected {
            line.style(theme.style("ui.selection"))
        } else {
            line
        });
    }
    Paragraph::new(lines).render(list_area, buf);

    let detail = match rows.get(selected) {
        Some(row) => {
            let mut spans = vec![Span::styled(
                format!(" {}: ", row.id),
                theme.style("ui.key"),
            )];
            let endpoint = if row.base_url.is_empty() {
                "default endpoint"
            } else {
                &row.base_url
            };
            spans.push(Span::styled(endpoint.to_string(), text));
            if !row.key_ref.is_empty() {
                spans.push(Span::styled(format!(" · key {}", row.key_ref), dim));
                if let Some((false, why)) = &row.key_state {
                    spans.push(Span::styled(
                        format!(" · {why}"),
                        theme.style("providers.key.missing"),
                    ));
                }
            }
            Line::from(spans)
        }
        None => Line::from(Span::styled(" loading…", dim)),
    };
    Paragraph::new(detail)
        .wrap(Wrap { trim: false })
        .render(detail_area, buf);

    let on = config_value(app, "/self_heal/enabled")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let policy = if on {
        format!(
            "self-heal on: {} attempts, backoff {}–{} ms, cooldown {} ms, circuit opens after {} failures for {} ms, request timeout {} ms",
            config_text(app, "/self_heal/max_attempts"),
            config_text(app, "/self_heal/backoff_ms"),
            config_text(app, "/self_heal/backoff_max_ms"),
            config_text(app, "/self_heal/cooldown_ms"),
            config_text(app, "/self_heal/circuit_threshold"),
            config_text(app, "/self_heal/circuit_open_ms"),
            config_text(app, "/self_heal/request_timeout_ms"),
        )
    } else {
        "self-heal off: a failed turn is reported, not retried".to_string()
    };
    Paragraph::new(Line::from(Span::styled(policy, dim)))
        .wrap(Wrap { trim: false })
        .render(indented(policy_area), buf);
}

/// One column in from the border, so wrapped lines align with the first.
pub fn indented(area: Rect) -> Rect {
    area.inner(ratatui::layout::Margin {
        horizontal: 1,
        vertical: 0,
    })
}
