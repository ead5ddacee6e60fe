//! The memory pane's graph walk: the most connected nodes to start from, then the centre
//! with its breadcrumbs, its neighbours grouped by edge kind, and its chunks.

use super::*;
use crate::engine::memory::MemoryGraphTop;
use crate::memory::types::{ChunkView, NodeKind, NodeView};
use crate::tui::memory::{GraphFocus, kind_label, node_label};

pub(super) fn top_list(
    m: &MemoryState,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
    focused: bool,
) {
    let mut lines = vec![Line::from(Span::styled(
        "Most connected — enter opens one in the graph",
        theme.style("ui.heading"),
    ))];
    let nodes = m.top_nodes();
    if let Some(message) = m.error(MemoryGraphTop::NAME) {
        lines.push(Line::from(Span::styled(
            format!("graph unavailable: {message}"),
            theme.style("ui.notice.error"),
        )));
    } else if m.top.is_none() {
        lines.push(Line::from(Span::styled(
            "reading the graph…",
            theme.style("ui.text.dim"),
        )));
    } else if nodes.is_empty() {
        lines.push(Line::from(Span::styled(
            "the graph has no nodes yet",
            theme.style("ui.text.dim"),
        )));
    }
    let selected = m.selected.min(nodes.len().saturating_sub(1));
    let height = (area.height as usize).saturating_sub(1);
    let offset = scroll_offset(selected, height);
    let width = area.width as usize;
    for (i, node) in nodes.iter().enumerate().skip(offset).take(height) {
        lines.push(list_row(
            node_spans(node, theme, true),
            focused && i == selected,
            theme,
            width,
        ));
    }
    Paragraph::new(lines).render(area, buf);
}

/// `entity:ada lovelace  (12)`; chunks as `chunk #12 "label"`.
fn node_spans(node: &NodeView, theme: &Theme, degree: bool) -> Vec<Span<'static>> {
    let mut spans = match node.kind {
        NodeKind::Chunk => vec![
            Span::styled(node_label(node), theme.style("memory.node")),
            Span::styled(format!(" \"{}\"", node.label), theme.style("ui.text.dim")),
        ],
        kind => vec![
            Span::styled(format!("{}:", kind_label(kind)), theme.style("ui.text.dim")),
            Span::styled(node.label.clone(), theme.style("memory.node")),
        ],
    };
    if degree {
        spans.push(Span::styled(
            format!("  ({})", node.degree),
            theme.style("ui.text.dim"),
        ));
    }
    spans
}

pub(super) fn graph(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let m = &app.memory;
    let g = &m.graph;
    if g.trail.is_empty() {
        top_list(m, theme, area, buf, focused);
        return;
    }
    let [crumbs_area, center_area, rest] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(area);

    // Breadcrumbs, the tail kept when they do not fit.
    let labels: Vec<&str> = g.trail.iter().map(|c| c.label.as_str()).collect();
    let (last, before) = labels.split_last().map_or(("", &[][..]), |(l, b)| (*l, b));
    let mut trail = before.join(" › ");
    if !trail.is_empty() {
        trail.push_str(" › ");
    }
    let room = (crumbs_area.width as usize).saturating_sub(last.chars().count());
    let trail = truncate_left(&trail, room);
    Paragraph::new(Line::from(fit(
        vec![
            Span::styled(trail, theme.style("memory.crumb")),
            Span::styled(last.to_string(), theme.style("memory.crumb.current")),
        ],
        crumbs_area.width as usize,
    )))
    .render(crumbs_area, buf);

    // The centre: what it is, its edges by kind, the filter.
    let dim = theme.style("ui.text.dim");
    let mut center = Vec::new();
    if let Some(n) = &g.neighbors {
        center.extend(node_spans(&n.center, theme, false));
        center.push(Span::styled(format!(" · degree {}", n.center.degree), dim));
    } else if g.loading {
        center.push(Span::styled("loading…", dim));
    }
    if let Some(node) = &g.node {
        let counts: Vec<String> = node
            .edge_counts
            .iter()
            .map(|c| format!("{} {}", c.kind.as_str(), c.count))
            .collect();
        if !counts.is_empty() {
            center.push(Span::styled(format!(" · {}", counts.join(" · ")), dim));
        }
    }
    let filter = format!(
        "  {} {}",
        key(app, Action::MemoryEdgeFilter),
        g.filter.map_or("all edges", |k| k.as_str())
    );
    let room = (center_area.width as usize).saturating_sub(filter.chars().count());
    let mut line = fit(center, room);
    let used: usize = line.iter().map(|s| s.content.chars().count()).sum();
    line.push(Span::raw(" ".repeat(room.saturating_sub(used))));
    line.push(Span::styled(
        filter,
        if g.filter.is_some() {
            theme.style("memory.edge.filter")
        } else {
            dim
        },
    ));
    Paragraph::new(Line::from(line)).render(center_area, buf);

    let chunks_focused = g.focus == GraphFocus::Chunks;
    if rest.width >= WIDE {
        let [left, _, right] = Layout::horizontal([
            Constraint::Percentage(50),
            Constraint::Length(1),
            Constraint::Min(10),
        ])
        .areas(rest);
        let [list, _, preview] = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Length(1),
            Constraint::Min(2),
        ])
        .areas(right);
        neighbors(m, theme, left, buf, focused && !chunks_focused);
        chunk_list(app, theme, list, buf, focused && chunks_focused);
        chunk_preview(m, theme, preview, buf);
    } else if chunks_focused {
        let [list, _, preview] = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Length(1),
            Constraint::Min(2),
        ])
        .areas(rest);
        chunk_list(app, theme, list, buf, focused);
        chunk_preview(m, theme, preview, buf);
    } else {
        // The neighbours as tall as they need (up to 65%), the chunks below.
        let g = &m.graph;
        let needed = m.neighbor_rows().len().max(1)
            + usize::from(g.neighbors.as_ref().is_some_and(|n| n.truncated));
        let most = (rest.height * 13 / 20).max(1);
        let height = u16::try_from(needed).unwrap_or(u16::MAX).clamp(1, most);
        let [list, _, chunks] = Layout::vertical([
            Constraint::Length(height),
            Constraint::Length(1),
            Constraint::Min(2),
        ])
        .areas(rest);
        neighbors(m, theme, list, buf, focused);
        chunk_list(app, theme, chunks, buf, false);
    }
}

fn neighbors(m: &MemoryState, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let g = &m.graph;
    let dim = theme.style("ui.text.dim");
    let rows = m.neighbor_rows();
    let mut lines: Vec<Line<'static>> = Vec::new();
    if g.neighbors.is_none() {
        if g.loading {
            lines.push(Line::from(Span::styled("loading…", dim)));
        }
        Paragraph::new(lines).render(area, buf);
        return;
    }
    if rows.is_empty() {
        let text = match g.filter {
            Some(kind) => format!("no {} edges here", kind.as_str()),
            None => "no edges here".to_string(),
        };
        lines.push(Line::from(Span::styled(text, dim)));
    }
    let truncated = g.neighbors.as_ref().is_some_and(|n| n.truncated);
    let height = (area.height as usize).saturating_sub(usize::from(truncated));
    let selected = g.selected.min(rows.len().saturating_sub(1));
    let offset = scroll_offset(selected, height);
    let label_width = rows
        .iter()
        .map(|r| r.kind.as_str().len())
        .max()
        .unwrap_or(0);
    let width = area.width as usize;
    for (i, row) in rows.iter().enumerate().skip(offset).take(height) {
        // The edge is named on the first row of its group (and at the top of the view).
        let first = i == offset
            || rows
                .get(i.wrapping_sub(1))
                .is_none_or(|p| p.kind != row.kind || p.outgoing != row.outgoing);
        let edge = if first { row.kind.as_str() } else { "" };
        let arrow = if row.outgoing { "→" } else { "←" };
        let mut spans = vec![Span::styled(
            format!("{edge:>label_width$} {arrow} "),
            theme.style("memory.edge"),
        )];
        spans.extend(node_spans(row.node, theme, false));
        if row.count > 1 {
            spans.push(Span::styled(format!(" ×{}", row.count), dim));
        }
        lines.push(list_row(spans, focused && i == selected, theme, width));
    }
    if truncated {
        lines.push(Line::from(Span::styled(
            "… more neighbours than shown",
            dim,
        )));
    }
    Paragraph::new(lines).render(area, buf);
}

fn chunk_row(chunk: &ChunkView, theme: &Theme) -> Vec<Span<'static>> {
    // The first line of prose: headings are in the location already.
    let mut lines = chunk.text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .clone()
        .find(|l| !l.starts_with('#'))
        .or_else(|| lines.next())
        .unwrap_or("");
    vec![
        Span::styled(format!("#{} ", chunk.chunk_id), theme.style("memory.node")),
        Span::styled(
            format!(
                "{} ",
                location(
                    &truncate_left(&chunk.source, 24),
                    chunk.line_start,
                    chunk.line_end
                )
            ),
            theme.style("memory.source"),
        ),
        Span::styled(first.to_string(), theme.style("ui.text")),
    ]
}

fn chunk_list(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let g = &app.memory.graph;
    let Some(node) = &g.node else {
        return;
    };
    let hint = if focused {
        String::new()
    } else {
        format!(" — {} to browse", key(app, Action::MemoryChunks))
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("chunks ({})", node.chunks.len()),
            theme.style("ui.heading"),
        ),
        Span::styled(hint, theme.style("ui.text.dim")),
    ])];
    if node.chunks.is_empty() {
        lines.push(Line::from(Span::styled(
            "no chunk is about this node",
            theme.style("ui.text.dim"),
        )));
    }
    let height = (area.height as usize).saturating_sub(1);
    let selected = g.chunk_selected.min(node.chunks.len().saturating_sub(1));
    let offset = scroll_offset(selected, height);
    for (i, chunk) in node.chunks.iter().enumerate().skip(offset).take(height) {
        lines.push(list_row(
            chunk_row(chunk, theme),
            focused && i == selected,
            theme,
            area.width as usize,
        ));
    }
    Paragraph::new(lines).render(area, buf);
}

fn chunk_preview(m: &MemoryState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let g = &m.graph;
    let Some(chunk) = g.node.as_ref().and_then(|n| {
        n.chunks
            .get(g.chunk_selected.min(n.chunks.len().saturating_sub(1)))
    }) else {
        return;
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(
            location(&chunk.source, chunk.line_start, chunk.line_end),
            theme.style("memory.source"),
        ),
        Span::styled(
            chunk
                .heading
                .as_ref()
                .map_or(String::new(), |h| format!(" › {h}")),
            theme.style("ui.text.dim"),
        ),
    ])];
    // Highlight what the last search looked for, if anything.
    let terms = m
        .query
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>();
    lines.extend(text_lines(&chunk.text, Some(&terms), theme));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(area, buf);
}
