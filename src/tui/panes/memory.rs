//! Memory: a search box with live results and a preview, and a graph explorer with
//! breadcrumbs. Draws `app.memory` (see `tui::memory`); changes nothing.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{config_text, config_value};
use crate::engine::Method;
use crate::engine::memory::{MemorySearch, MemoryStatus};
use crate::memory::types::{SearchHit, SearchMode};
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::Section;
use crate::tui::memory::{MemoryState, Mode, marked_spans, marked_terms, term_spans};
use crate::tui::theme::Theme;
use crate::tui::widgets::{key_value_lines, pane_block, scroll_offset, truncate_left};

mod walk;

/// From this inner width on, lists and previews sit side by side.
const WIDE: u16 = 100;

/// The memory settings of the active profile, shown while the store is empty.
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

fn key(app: &App, action: Action) -> String {
    app.keymap
        .hint(Section::Memory, action)
        .map_or_else(|| action.name().to_string(), |k| k.to_string())
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Cut spans to `width` characters, ending in `…` when something was cut.
fn fit(spans: Vec<Span<'static>>, width: usize) -> Vec<Span<'static>> {
    let total: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    if total <= width {
        return spans;
    }
    let mut room = width.saturating_sub(1);
    let mut out = Vec::new();
    for span in spans {
        if room == 0 {
            break;
        }
        let n = span.content.chars().count();
        if n <= room {
            room -= n;
            out.push(span);
        } else {
            let head: String = span.content.chars().take(room).collect();
            out.push(Span::styled(head, span.style));
            room = 0;
        }
    }
    if width > 0 {
        out.push(Span::raw("…"));
    }
    out
}

/// A list row: `▸` and the selection style on the cursor's row (the marker also reads
/// without colour), a blank column elsewhere. `width` includes the marker.
fn list_row(
    spans: Vec<Span<'static>>,
    selected: bool,
    theme: &Theme,
    width: usize,
) -> Line<'static> {
    let mut all = vec![Span::styled(
        if selected { "▸" } else { " " },
        theme.style("ui.key"),
    )];
    all.extend(fit(spans, width.saturating_sub(1)));
    let line = Line::from(all);
    if selected {
        line.style(theme.style("ui.selection"))
    } else {
        line
    }
}

/// A snippet with its « » marks drawn as highlights, on one line.
fn snippet_spans(snippet: &str, theme: &Theme, base: Style) -> Vec<Span<'static>> {
    let flat = snippet.split_whitespace().collect::<Vec<_>>().join(" ");
    marked_spans(&flat)
        .into_iter()
        .map(|(text, marked)| {
            Span::styled(
                text,
                if marked {
                    theme.style("memory.match")
                } else {
                    base
                },
            )
        })
        .collect()
}

/// Text as lines, with the given terms (or the « » marks) highlighted.
fn text_lines(text: &str, terms: Option<&[String]>, theme: &Theme) -> Vec<Line<'static>> {
    let base = theme.style("ui.text");
    reflow(text)
        .iter()
        .map(|line| {
            let pieces = match terms {
                Some(terms) => term_spans(line, terms),
                None => marked_spans(line),
            };
            Line::from(
                pieces
                    .into_iter()
                    .map(|(t, hit)| {
                        Span::styled(
                            t,
                            if hit {
                                theme.style("memory.match")
                            } else {
                                base
                            },
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// Markdown's soft line breaks joined, so the preview wraps at its own width; headings, list
/// items, quotes, tables, code and blank lines keep their lines.
fn reflow(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut joinable = false;
    let mut in_code = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            out.push(line.to_string());
            joinable = false;
            continue;
        }
        let structural = in_code
            || trimmed.is_empty()
            || trimmed.starts_with(['#', '-', '*', '>', '|', '+'])
            || trimmed
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        match out.last_mut() {
            Some(last) if joinable && !structural => {
                last.push(' ');
                last.push_str(trimmed);
            }
            _ => out.push(line.to_string()),
        }
        joinable = !structural || (!in_code && trimmed.starts_with(['-', '*', '+']));
        if trimmed.is_empty() || trimmed.starts_with(['#', '|']) {
            joinable = false;
        }
    }
    out
}

fn location(source: &str, start: u32, end: u32) -> String {
    if start == end {
        format!("{source}:{start}")
    } else {
        format!("{source}:{start}-{end}")
    }
}

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let m = &app.memory;
    let title = match (m.started, m.mode) {
        (false, _) => "memory",
        (true, Mode::Search) => "memory · search",
        (true, Mode::Graph) => "memory · graph",
    };
    let block = pane_block(theme, title, focused);
    let inner = super::providers::indented(block.inner(area));
    block.render(area, buf);
    if inner.height < 4 || inner.width < 20 {
        return;
    }
    let gauge_rows = u16::from(m.indexing.is_some());
    let [status_area, gauge_area, body, keys_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(gauge_rows),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    status_line(app, theme, status_area, buf);
    gauge(app, theme, gauge_area, buf);
    if m.started {
        keys_line(app, theme, keys_area, buf);
    }

    let empty = m.status.as_ref().is_some_and(|s| s.chunks == 0);
    let unavailable = m.status.is_none() && m.error(MemoryStatus::NAME).is_some();
    let disabled = m.status.as_ref().is_some_and(|s| !s.enabled);
    // Nothing to explore: say how to fill the store, until the user types anyway.
    let nothing = (empty || unavailable || disabled) && !m.editing && m.query.is_empty();
    if !m.started || nothing {
        welcome(app, theme, body, buf);
        return;
    }
    match m.mode {
        Mode::Search => search(app, theme, body, buf, focused),
        Mode::Graph => walk::graph(app, theme, body, buf, focused),
    }
}

fn status_line(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let m = &app.memory;
    let plain = theme.style(MemoryStatus::NAME);
    let warn = theme.style("memory.status.warn");
    let mut spans: Vec<Span<'static>> = Vec::new();
    match (&m.status, m.error(MemoryStatus::NAME)) {
        (None, Some(message)) => spans.push(Span::styled(
            format!("memory unavailable: {message}"),
            theme.style("ui.notice.error"),
        )),
        (None, _) if !m.started => spans.push(Span::styled(
            format!(
                "press {} to open the memory explorer",
                app.keymap
                    .hint(app.focus.section(), Action::FocusMemory)
                    .map_or_else(|| "focus-memory".into(), |k| k.to_string())
            ),
            plain,
        )),
        (None, _) => spans.push(Span::styled("reading the memory store…", plain)),
        (Some(s), _) => {
            spans.push(Span::styled(
                format!(
                    "{} chunks · {} docs · {} nodes · embedder {} ({}d)",
                    thousands(s.chunks),
                    thousands(s.documents),
                    thousands(s.nodes),
                    s.embedder.name,
                    s.embedder.dimensions
                ),
                plain,
            ));
            if let Some(old) = &s.embedder_mismatch {
                let dims = if old.dimensions == s.embedder.dimensions {
                    String::new()
                } else {
                    format!(" ({}d)", old.dimensions)
                };
                spans.push(Span::styled(format!(" ≠ stored {}{dims}", old.name), warn));
            } else if s.consistency.ok {
                spans.push(Span::styled(" · consistent", plain));
            } else {
                let c = &s.consistency;
                spans.push(Span::styled(
                    format!(
                        " · {} without vectors, {} not in full text",
                        c.missing_vectors, c.missing_text
                    ),
                    warn,
                ));
            }
        }
    }
    Paragraph::new(Line::from(fit(spans, area.width as usize))).render(area, buf);
}

/// Width of the bar in [`gauge`], in cells.
const GAUGE_CELLS: usize = 20;

/// The running index or build, on its own row: a bar (when the stage has a known size),
/// the count and the stage, and the key that stops it.
fn gauge(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let Some(p) = &app.memory.indexing else {
        return;
    };
    if area.height == 0 {
        return;
    }
    let style = theme.style("memory.progress");
    let dim = theme.style("ui.text.dim");
    let mut spans = Vec::new();
    match p.total.filter(|t| *t > 0) {
        Some(total) => {
            let done = p.done.min(total);
            let filled = (done as f64 / total as f64 * GAUGE_CELLS as f64).round() as usize;
            spans.push(Span::styled("█".repeat(filled), style));
            spans.push(Span::styled("░".repeat(GAUGE_CELLS - filled), dim));
            spans.push(Span::styled(
                format!(
                    " {:>3}% {}/{} ",
                    done * 100 / total,
                    thousands(done),
                    thousands(total)
                ),
                style,
            ));
        }
        None if p.done > 0 => spans.push(Span::styled(format!("{} ", thousands(p.done)), style)),
        None => {}
    }
    spans.push(Span::styled(p.message.clone(), style));
    // The way to stop it always shows; the stage's words give way first.
    let hint = if app.memory.cancelling {
        "  cancelling…".to_string()
    } else {
        format!("  {} cancel", key(app, Action::MemoryCancel))
    };
    let room = (area.width as usize).saturating_sub(hint.chars().count());
    let mut line = fit(spans, room);
    line.push(Span::styled(hint, dim));
    Paragraph::new(Line::from(line)).render(area, buf);
}

fn keys_line(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let m = &app.memory;
    let dim = theme.style("ui.text.dim");
    let empty = m.status.as_ref().is_some_and(|s| s.chunks == 0);
    let pairs: Vec<(String, &str)> = if m.editing {
        vec![
            ("enter".into(), "open"),
            ("esc".into(), "done typing"),
            ("↑↓".into(), "choose"),
            ("ctrl-u".into(), "clear"),
        ]
    } else {
        let mut pairs = vec![(key(app, Action::MemorySearch), "search")];
        match m.mode {
            _ if empty => {}
            Mode::Search => {
                pairs.push((key(app, Action::MemoryOpen), "open"));
                pairs.push((key(app, Action::MemoryGraph), "graph"));
            }
            Mode::Graph => {
                pairs.clear();
                pairs.push((key(app, Action::MemoryOpen), "follow"));
                pairs.push((key(app, Action::MemoryBack), "back"));
                pairs.push((key(app, Action::MemoryEdgeFilter), "edges"));
                pairs.push((key(app, Action::MemoryChunks), "chunks"));
                pairs.push((key(app, Action::MemoryGraph), "search"));
            }
        }
        if m.indexing.is_some() {
            pairs.push((key(app, Action::MemoryCancel), "cancel index"));
        } else {
            pairs.push((key(app, Action::MemoryIndex), "index"));
        }
        if m.status
            .as_ref()
            .is_some_and(|s| s.embedder_mismatch.is_some())
        {
            pairs.push((key(app, Action::MemoryReindex), "rebuild vectors"));
        }
        pairs
    };
    let mut spans = Vec::new();
    for (k, label) in pairs {
        spans.push(Span::styled(k, theme.style("ui.key")));
        spans.push(Span::styled(format!(" {label}  "), dim));
    }
    Paragraph::new(Line::from(fit(spans, area.width as usize))).render(area, buf);
}

/// An empty (or not yet read, or disabled) store: how to fill it, and the settings.
fn welcome(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let m = &app.memory;
    let mut lines = Vec::new();
    match &m.status {
        Some(s) if !s.enabled => lines.push(Line::from(Span::styled(
            "Memory is off: set enabled = true under [memory] in config.toml.",
            theme.style("ui.notice.warn"),
        ))),
        Some(s) => {
            lines.push(Line::from(Span::styled(
                "No memory yet",
                theme.style("ui.heading"),
            )));
            let workspace = s.workspace.trim_end_matches('/');
            lines.push(Line::from(vec![
                Span::styled(
                    format!("Put notes in {workspace}/MEMORY.md and press "),
                    theme.style("ui.text"),
                ),
                Span::styled(key(app, Action::MemoryIndex), theme.style("ui.key")),
                Span::styled(" to index them, or run ", theme.style("ui.text")),
                Span::styled("openclaw-rs memory add TEXT", theme.style("memory.value")),
                Span::styled(".", theme.style("ui.text")),
            ]));
        }
        None => {}
    }
    if let Some(r) = &m.last_index {
        lines.push(Line::from(Span::styled(
            format!(
                "last index: {} file(s) scanned, {} indexed, {} skipped",
                r.scanned_files,
                r.indexed_files,
                r.skipped.len()
            ),
            theme.style("ui.text.dim"),
        )));
    }
    let settings = rows(app);
    if !settings.is_empty() {
        if !lines.is_empty() {
            lines.push(Line::default());
        }
        lines.push(Line::from(Span::styled(
            "Settings of the active profile (under [memory] in config.toml):",
            theme.style("ui.text.dim"),
        )));
        lines.extend(key_value_lines(theme, &settings, "memory.value", None));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

fn search(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let m = &app.memory;
    let notice = m.results.as_ref().and_then(|r| {
        let keyword = r.mode == SearchMode::Keyword;
        match (&r.notice, keyword) {
            (Some(n), true) => Some(format!("keyword search only: {n}")),
            (Some(n), false) => Some(n.clone()),
            (None, true) => Some("keyword search only: vectors are unavailable".into()),
            (None, false) => None,
        }
    });
    let [input_area, notice_area, rest] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(notice.is_some())),
        Constraint::Min(1),
    ])
    .areas(area);

    // The search box.
    let mut input = vec![Span::styled(
        format!("{} ", key(app, Action::MemorySearch)),
        theme.style("ui.key"),
    )];
    if m.query.is_empty() && !m.editing {
        input.push(Span::styled("search memory…", theme.style("ui.text.dim")));
    } else {
        input.push(Span::styled(m.query.clone(), theme.style("memory.input")));
        if m.editing {
            input.push(Span::styled("▏", theme.style("ui.text")));
        }
    }
    let summary = if m.searching.is_some() || m.search_due.is_some() {
        "searching…".to_string()
    } else if let Some(r) = m.results.as_ref().filter(|_| !m.query.trim().is_empty()) {
        let mode = match r.mode {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Keyword => "keyword",
        };
        format!("{} hit(s) · {mode} · {:.1} ms", r.hits.len(), r.took_ms)
    } else {
        String::new()
    };
    let room = (input_area.width as usize).saturating_sub(summary.chars().count() + 2);
    let mut line = fit(input, room);
    let used: usize = line.iter().map(|s| s.content.chars().count()).sum();
    if !summary.is_empty() {
        line.push(Span::raw(" ".repeat(room.saturating_sub(used) + 2)));
        line.push(Span::styled(summary, theme.style("ui.text.dim")));
    }
    Paragraph::new(Line::from(line)).render(input_area, buf);
    if let Some(notice) = notice {
        Paragraph::new(Line::from(fit(
            vec![Span::styled(notice, theme.style("memory.status.warn"))],
            notice_area.width as usize,
        )))
        .render(notice_area, buf);
    }

    if m.query.trim().is_empty() {
        walk::top_list(m, theme, rest, buf, focused);
        return;
    }
    let hits = m.hits();
    if hits.is_empty() {
        let text = if let Some(message) = m.error(MemorySearch::NAME) {
            format!("search failed: {message}")
        } else if m.results.is_none() {
            "searching…".to_string()
        } else {
            format!("nothing in memory matches \"{}\"", m.query.trim())
        };
        Paragraph::new(Line::from(Span::styled(text, theme.style("ui.text.dim"))))
            .render(rest, buf);
        return;
    }
    let (list_area, preview_area) = split(rest, 45, hits.len());
    let selected = m.selected.min(hits.len() - 1);
    let width = list_area.width as usize;
    let height = list_area.height as usize;
    let offset = scroll_offset(selected, height);
    let lines: Vec<Line<'static>> = hits
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, hit)| list_row(hit_row(hit, theme), focused && i == selected, theme, width))
        .collect();
    Paragraph::new(lines).render(list_area, buf);
    if let Some(hit) = hits.get(selected) {
        hit_preview(m, hit, theme, preview_area, buf);
    }
}

/// Side by side from [`WIDE`] on (the list gets `left`%), else stacked: the list as tall as
/// its `rows`, up to 40%.
fn split(area: Rect, left: u16, rows: usize) -> (Rect, Rect) {
    if area.width >= WIDE {
        let [a, _, b] = Layout::horizontal([
            Constraint::Percentage(left),
            Constraint::Length(1),
            Constraint::Min(10),
        ])
        .areas(area);
        (a, b)
    } else {
        let most = (area.height * 2 / 5).max(1);
        let height = u16::try_from(rows).unwrap_or(u16::MAX).clamp(1, most);
        let [a, _, b] = Layout::vertical([
            Constraint::Length(height),
            Constraint::Length(1),
            Constraint::Min(2),
        ])
        .areas(area);
        (a, b)
    }
}

/// Compact score breakdown: `T1` full-text rank, `V3` vector rank, `·` when absent.
fn ranks(hit: &SearchHit) -> String {
    let t = hit
        .text
        .as_ref()
        .map_or_else(|| "·".to_string(), |c| format!("T{}", c.rank));
    let v = hit
        .vector
        .as_ref()
        .map_or_else(|| "·".to_string(), |c| format!("V{}", c.rank));
    format!("{t:<3} {v:<3}")
}

fn hit_row(hit: &SearchHit, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = vec![
        Span::styled(format!("{:.2} ", hit.score), theme.style("memory.score")),
        Span::styled(format!("{} ", ranks(hit)), theme.style("ui.text.dim")),
        Span::styled(
            format!(
                "{} ",
                location(
                    &truncate_left(&hit.source, 24),
                    hit.line_start,
                    hit.line_end
                )
            ),
            theme.style("memory.source"),
        ),
    ];
    spans.extend(snippet_spans(&hit.snippet, theme, theme.style("ui.text")));
    spans
}

fn hit_preview(m: &MemoryState, hit: &SearchHit, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let dim = theme.style("ui.text.dim");
    let mut lines = vec![Line::from(vec![
        Span::styled(
            location(&hit.source, hit.line_start, hit.line_end),
            theme.style("memory.source"),
        ),
        Span::styled(
            hit.heading
                .as_ref()
                .map_or(String::new(), |h| format!(" › {h}")),
            dim,
        ),
    ])];
    let component = |name: &str, c: Option<&crate::memory::types::ComponentScore>| match c {
        Some(c) => format!("{name} #{} {:.2}", c.rank, c.score),
        None => format!("{name} —"),
    };
    let fusion = m.results.as_ref().map_or("", |r| match r.fusion {
        crate::memory::types::Fusion::Rrf => " (rrf)",
        crate::memory::types::Fusion::Weighted => " (weighted)",
    });
    let mut score = vec![
        Span::styled(
            format!("score {:.3}", hit.score),
            theme.style("memory.score"),
        ),
        Span::styled(
            format!(
                "{fusion} = {} · {}",
                component("text", hit.text.as_ref()),
                component("vector", hit.vector.as_ref())
            ),
            dim,
        ),
    ];
    if !hit.tags.is_empty() {
        let tags: Vec<String> = hit.tags.iter().map(|t| format!("#{t}")).collect();
        score.push(Span::styled(
            format!("  {}", tags.join(" ")),
            theme.style("memory.value"),
        ));
    }
    lines.push(Line::from(score));
    lines.push(Line::default());
    match m.preview.as_ref().filter(|c| c.chunk_id == hit.chunk_id) {
        Some(chunk) => {
            let terms = marked_terms(&hit.snippet);
            lines.extend(text_lines(&chunk.text, Some(&terms), theme));
        }
        None => lines.extend(text_lines(&hit.snippet, None, theme)),
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn reflow_joins_soft_breaks_only() {
        let text =
            "## Ada\nwrote the first\nprogram.\n\n- one\n  more\n- two\n```\ncode\nkept\n```";
        assert_eq!(
            reflow(text),
            vec![
                "## Ada",
                "wrote the first program.",
                "",
                "- one more",
                "- two",
                "```",
                "code",
                "kept",
                "```"
            ]
        );
    }

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        let spans = vec![Span::raw("abc"), Span::raw("def")];
        let out: String = fit(spans.clone(), 4)
            .iter()
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(out, "abc…");
        assert_eq!(fit(spans, 6).len(), 2);
    }
}
