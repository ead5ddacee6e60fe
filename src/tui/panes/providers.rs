//! Providers: the chain as a table (state, latency, error rate, cooldown, circuit, a latency
//! sparkline per provider), the selected provider's detail, the self-heal timeline of
//! recent turns, and the policy.
//!
//! The pane is a stack of sections (see [`sections`]); a feature adds its own by appending
//! an entry there, without touching the others.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{config_text, config_value};
use crate::engine::chat::ProviderInfo;
use crate::orchestrator::sessions::now_ms;
use crate::tui::action::Action;
use crate::tui::app::{App, PaneId};
use crate::tui::keymap::Section as KeySection;
use crate::tui::theme::Theme;
use crate::tui::widgets::{pane_block, scroll_offset, truncate_right};

#[derive(Debug, Clone, PartialEq)]
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
    /// The engine's view (`providers.list`), once it has answered.
    pub info: Option<ProviderInfo>,
}

/// Providers from the configuration, in id order.
pub fn configured(app: &App) -> Vec<ProviderRow> {
    let Some(map) = config_value(app, "/providers").and_then(|v| v.as_object()) else {
        return Vec::new();
    };
    map.iter()
        .map(|(id, p)| {
            let text = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            ProviderRow {
                id: id.clone(),
                kind: text("kind"),
                model: text("model"),
                base_url: text("base_url"),
                key_ref: text("api_key"),
                key_state: key_state(app, id),
                builtin: false,
                info: None,
            }
        })
        .collect()
}

fn key_state(app: &App, id: &str) -> Option<(bool, String)> {
    app.view.health.as_ref().and_then(|h| {
        h.checks
            .iter()
            .find(|c| c.name == format!("provider.{id}.api_key"))
            .map(|c| (c.ok, c.detail.clone()))
    })
}

/// The chain in the order turns try it: from `providers.list` once it answered, else from
/// the configuration (configured providers, then the built-in fallbacks).
pub fn rows(app: &App) -> Vec<ProviderRow> {
    if let Some(list) = &app.view.providers {
        return list
            .providers
            .iter()
            .map(|p| ProviderRow {
                id: p.id.clone(),
                kind: p.kind.clone(),
                model: p.model.clone(),
                base_url: p.base_url.clone().unwrap_or_default(),
                key_ref: p.key_ref.clone().unwrap_or_default(),
                key_state: key_state(app, &p.id),
                builtin: p.key_ref.is_none()
                    && matches!(p.kind.as_str(), "ollama" | "offline" | "local"),
                info: Some(p.clone()),
            })
            .collect();
    }
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
            "ollama" => ("ollama", crate::providers::OLLAMA_DEFAULT_URL),
            "offline" => ("offline", "no model: answers from memory"),
            "local" => ("local", "in-process GGUF model"),
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
            info: None,
        });
    }
    rows
}

type Draw = fn(&App, &Theme, Rect, &mut Buffer, bool);

/// The pane's sections, top to bottom, with their heights. Append to add one.
pub fn sections(app: &App, area: Rect) -> Vec<(Constraint, Draw)> {
    let table = (rows(app).len() as u16 + 1).clamp(3, area.height / 2);
    let tall = area.height >= 30;
    vec![
        (Constraint::Length(table), table_section as Draw),
        (Constraint::Length(2), detail_section),
        (Constraint::Length(if tall { 5 } else { 2 }), spark_section),
        (Constraint::Min(3), timeline_section),
        (Constraint::Length(2), policy_section),
        (Constraint::Length(super::voice::HEIGHT), voice_section),
    ]
}

fn voice_section(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, _focused: bool) {
    super::voice::render(app, theme, area, buf);
}

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let block = pane_block(theme, "providers", focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let sections = sections(app, inner);
    let areas = Layout::vertical(sections.iter().map(|(c, _)| *c)).split(inner);
    for ((_, draw), rect) in sections.iter().zip(areas.iter()) {
        draw(app, theme, *rect, buf, focused);
    }
}

/// `▁▂▃▅▇` of the values, scaled to their maximum.
pub fn sparkline(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail.iter().copied().max().unwrap_or(0).max(1);
    tail.iter()
        .map(|v| BARS[((*v * 7).div_ceil(max) as usize).min(7)])
        .collect()
}

fn state_style(state: &str) -> &'static str {
    match state {
        "healthy" => "providers.state.healthy",
        "degraded" => "providers.state.degraded",
        "cooldown" => "providers.state.cooldown",
        "circuit_open" | "circuit_half_open" | "parked" => "providers.state.circuit",
        _ => "providers.state.unconfigured",
    }
}

fn duration_text(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs.div_ceil(60)),
        _ => format!("{}h{:02}", secs / 3600, (secs % 3600) / 60),
    }
}

fn table_section(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let rows = rows(app);
    let wide = area.width >= 110;
    let dim = theme.style("ui.text.dim");
    let text = theme.style("ui.text");
    let head = if wide {
        format!(
            " {:<12} {:<9} {:<22} {:<12} {:>6} {:>6} {:>5} {:>8} {:<9} {}",
            "provider",
            "kind",
            "model",
            "state",
            "p50",
            "p95",
            "err",
            "cooldown",
            "circuit",
            "latency"
        )
    } else {
        format!(
            " {:<11} {:<12} {:>6} {:>6} {:>4} {:>6} {:<7} {}",
            "provider", "state", "p50", "p95", "err", "cool", "circuit", "latency"
        )
    };
    let mut lines = vec![Line::from(Span::styled(head, theme.style("ui.heading")))];
    let selected = app
        .selected(PaneId::Providers)
        .min(rows.len().saturating_sub(1));
    let offset = scroll_offset(selected, (area.height as usize).saturating_sub(1));
    let now = now_ms();
    for (i, row) in rows.iter().enumerate().skip(offset) {
        let info = row.info.as_ref();
        let state = info.map_or("…", |p| p.state.as_str());
        let state_text = match state {
            "circuit_half_open" => "half-open",
            "circuit_open" => "circuit open",
            other => other,
        };
        let ms = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |v| format!("{v}ms"));
        let p50 = ms(info.and_then(|p| p.latency_p50_ms));
        let p95 = ms(info.and_then(|p| p.latency_p95_ms));
        let err = info.map_or_else(
            || "—".into(),
            |p| {
                if p.samples == 0 {
                    "—".into()
                } else {
                    format!("{:.0}%", p.error_rate * 100.0)
                }
            },
        );
        let cool = info
            .and_then(|p| p.cooldown_until_ms)
            .map_or_else(|| "—".into(), |u| duration_text(u.saturating_sub(now)));
        let circuit = info.map_or("—", |p| match p.circuit.as_str() {
            "half_open" => "half",
            other => other,
        });
        let spark = info.map_or_else(String::new, |p| sparkline(&p.recent_latencies_ms, 8));
        let mut spans = vec![Span::styled(
            format!(
                " {:<w$} ",
                truncate_right(&row.id, if wide { 12 } else { 11 }),
                w = if wide { 12 } else { 11 }
            ),
            theme.style("ui.key"),
        )];
        if wide {
            let model = if row.model.is_empty() {
                "(default)".to_string()
            } else {
                truncate_right(&row.model, 22)
            };
            spans.push(Span::styled(
                format!("{:<9} {:<22} ", row.kind, model),
                text,
            ));
        }
        spans.push(Span::styled(
            format!("{:<12} ", truncate_right(state_text, 12)),
            theme.style(state_style(state)),
        ));
        let circuit_w = if wide { 9 } else { 7 };
        let cool_w = if wide { 8 } else { 6 };
        let err_w = if wide { 5 } else { 4 };
        spans.push(Span::styled(
            format!("{p50:>6} {p95:>6} {err:>err_w$} {cool:>cool_w$} {circuit:<circuit_w$} "),
            text,
        ));
        spans.push(Span::styled(spark, theme.style("providers.spark")));
        let line = Line::from(spans);
        lines.push(if focused && i == selected {
            line.style(theme.style("ui.selection"))
        } else {
            line
        });
    }
    if rows.is_empty() {
        lines.push(Line::from(Span::styled(" no provider in the chain", dim)));
    }
    Paragraph::new(lines).render(area, buf);
}

fn detail_section(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, _focused: bool) {
    let rows = rows(app);
    let dim = theme.style("ui.text.dim");
    let text = theme.style("ui.text");
    let selected = app
        .selected(PaneId::Providers)
        .min(rows.len().saturating_sub(1));
    let line = match rows.get(selected) {
        Some(row) => {
            let mut spans = vec![Span::styled(format!("{}: ", row.id), theme.style("ui.key"))];
            let local = row.info.as_ref().and_then(|i| i.local.as_ref());
            let endpoint = match row.kind.as_str() {
                "offline" => "no model: answers from memory, runs /tool".to_string(),
                "local" if local.is_some() => local.map(|l| l.summary()).unwrap_or_default(),
                "local" => "in-process GGUF model".to_string(),
                _ if row.base_url.is_empty() => "default endpoint".to_string(),
                _ => row.base_url.clone(),
            };
            spans.push(Span::styled(endpoint, text));
            if !row.key_ref.is_empty() {
                spans.push(Span::styled(format!(" · key {}", row.key_ref), dim));
                if let Some((false, why)) = &row.key_state {
                    spans.push(Span::styled(
                        format!(" · {why}"),
                        theme.style("providers.key.missing"),
                    ));
                }
            }
            if let Some(info) = &row.info {
                if let Some(reason) = &info.reason {
                    spans.push(Span::styled(
                        format!(" · {reason}"),
                        theme.style("providers.key.missing"),
                    ));
                } else if let Some(e) = &info.last_error {
                    spans.push(Span::styled(format!(" · last error {e}"), dim));
                }
            }
            Line::from(spans)
        }
        None => Line::from(Span::styled(" loading…", dim)),
    };
    Paragraph::new(line)
        .wrap(Wrap { trim: false })
        .render(indented(area), buf);
}

fn spark_section(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, _focused: bool) {
    let rows = rows(app);
    let selected = app
        .selected(PaneId::Providers)
        .min(rows.len().saturating_sub(1));
    let Some(info) = rows.get(selected).and_then(|r| r.info.clone()) else {
        return;
    };
    let dim = theme.style("ui.text.dim");
    let label = format!(
        " latency of the last {} calls{}",
        info.recent_latencies_ms.len(),
        info.recent_latencies_ms
            .iter()
            .max()
            .map(|m| format!(" (max {m} ms)"))
            .unwrap_or_default()
    );
    if info.recent_latencies_ms.is_empty() {
        Line::from(Span::styled(" no successful call yet in this run", dim)).render(area, buf);
        return;
    }
    let [label_area, chart] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    Line::from(Span::styled(label, dim)).render(label_area, buf);
    let chart = chart.inner(ratatui::layout::Margin {
        horizontal: 1,
        vertical: 0,
    });
    ratatui::widgets::Sparkline::default()
        .data(info.recent_latencies_ms.iter().copied())
        .style(theme.style("providers.spark"))
        .render(chart, buf);
}

fn timeline_section(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, _focused: bool) {
    let dim = theme.style("ui.text.dim");
    let mut lines = vec![Line::from(Span::styled(
        " self-heal timeline (newest first)",
        theme.style("ui.heading"),
    ))];
    let turns = app
        .view
        .telemetry
        .as_ref()
        .map(|t| t.turns.clone())
        .unwrap_or_default();
    if turns.is_empty() {
        lines.push(Line::from(Span::styled(" no turns yet in this run", dim)));
    }
    for turn in turns
        .iter()
        .rev()
        .take(area.height.saturating_sub(1) as usize)
    {
        let mut spans = vec![Span::styled(
            format!(" {:<10} ", truncate_right(&turn.session, 10)),
            dim,
        )];
        for (i, a) in turn.self_healing.attempts.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" → ", dim));
            }
            let (mark, style) = match a.status.as_str() {
                "ok" => ("✓", "providers.state.healthy"),
                "skipped" => ("↷", "providers.state.unconfigured"),
                "cancelled" => ("■", "providers.state.degraded"),
                _ => ("✗", "providers.state.circuit"),
            };
            let detail = match (&a.reason, a.status.as_str()) {
                (Some(r), _) => format!(" {r}"),
                (None, _) => String::new(),
            };
            let latency = if a.status == "skipped" {
                String::new()
            } else {
                format!(" {}ms", a.latency_ms)
            };
            spans.push(Span::styled(
                format!("{mark} {}{detail}{latency}", a.provider),
                theme.style(style),
            ));
        }
        if let Some(b) = turn.self_healing.badge().filter(|_| turn.ok) {
            spans.push(Span::styled(
                format!("  ({b})"),
                theme.style("conversations.badge"),
            ));
        }
        lines.push(Line::from(spans));
    }
    Paragraph::new(lines).render(area, buf);
}

fn policy_section(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, _focused: bool) {
    let dim = theme.style("ui.text.dim");
    let on = config_value(app, "/self_heal/enabled")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let key = |a: Action| {
        app.keymap
            .hint(KeySection::Providers, a)
            .map_or_else(|| a.name().to_string(), |k| k.to_string())
    };
    let keys = format!(
        "{} probe · {} reset · {}/{} move",
        key(Action::ProvidersProbe),
        key(Action::ProvidersReset),
        key(Action::ProvidersMoveUp),
        key(Action::ProvidersMoveDown)
    );
    let policy = if on {
        format!(
            "{keys} · self-heal on: {} attempts, {} retry before fallback, backoff {}–{} ms, cooldown from {} ms, circuit after {} failures, deadline {} ms",
            config_text(app, "/self_heal/max_attempts"),
            config_text(app, "/self_heal/fallback_after_retries"),
            config_text(app, "/self_heal/backoff_ms"),
            config_text(app, "/self_heal/backoff_max_ms"),
            config_text(app, "/self_heal/cooldown_ms"),
            config_text(app, "/self_heal/circuit_threshold"),
            config_text(app, "/self_heal/deadline_ms"),
        )
    } else {
        format!("{keys} · self-heal off: a failed turn is reported, not retried")
    };
    Paragraph::new(Line::from(Span::styled(policy, dim)))
        .wrap(Wrap { trim: false })
        .render(indented(area), buf);
}

/// One column in from the border, so wrapped lines align with the first.
pub fn indented(area: Rect) -> Rect {
    area.inner(ratatui::layout::Margin {
        horizontal: 1,
        vertical: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_maximum() {
        assert_eq!(sparkline(&[1, 2, 4, 8], 8), "▂▃▅█");
        assert_eq!(sparkline(&[5; 20], 4).chars().count(), 4);
        assert_eq!(sparkline(&[], 4), "");
        assert_eq!(duration_text(25 * 60_000 - 3), "25m");
        assert_eq!(duration_text(59_000), "59s");
    }
}
