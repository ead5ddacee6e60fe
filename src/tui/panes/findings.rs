//! Findings: health checks and problems in the user's files, worst first.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::config::Level;
use crate::tui::app::{App, PaneId};
use crate::tui::theme::Theme;
use crate::tui::widgets::{pane_block, scroll_offset, truncate_right};

/// What a row is, worst first. Labels match the engine's words: a diagnostic's `level`
/// (`error`, `warning`) and a health check's verdict (`fail`, `ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Fail,
    Warning,
    Ok,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Fail => "fail",
            Severity::Warning => "warning",
            Severity::Ok => "ok",
        }
    }

    fn scope(self) -> &'static str {
        match self {
            Severity::Error => "findings.severity.critical",
            Severity::Fail | Severity::Warning => "findings.severity.warn",
            Severity::Ok => "findings.severity.info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRow {
    pub severity: Severity,
    pub title: String,
    pub detail: String,
}

pub fn rows(app: &App) -> Vec<FindingRow> {
    let mut rows = Vec::new();
    if let Some(health) = &app.view.health {
        for d in &health.diagnostics {
            rows.push(FindingRow {
                severity: if d.level == Level::Error {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                title: d.message.clone(),
                detail: d.to_string(),
            });
        }
        for check in &health.checks {
            rows.push(FindingRow {
                severity: if check.ok {
                    Severity::Ok
                } else {
                    Severity::Fail
                },
                title: check.name.clone(),
                detail: check.detail.clone(),
            });
        }
    }
    for (method, error) in &app.view.errors {
        rows.push(FindingRow {
            severity: Severity::Error,
            title: format!("{method} failed"),
            detail: error.to_string(),
        });
    }
    // Stable sort: worst first, otherwise in the order found.
    rows.sort_by_key(|r| r.severity);
    rows
}

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let rows = rows(app);
    let problems = rows.iter().filter(|r| r.severity != Severity::Ok).count();
    let title = if app.view.health.is_none() {
        "findings".to_string()
    } else {
        format!("findings · {problems} to look at")
    };
    let block = pane_block(theme, &title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Min(2), Constraint::Length(3)]).areas(inner);

    let mut lines = Vec::new();
    if app.view.health.is_none() {
        lines.push(Line::from(Span::styled(
            " running health checks…",
            theme.style("ui.text.dim"),
        )));
    } else if problems == 0 {
        lines.push(Line::from(Span::styled(
            " All clear: configuration and health checks pass.",
            theme.style("health.ok"),
        )));
    }
    let selected = app
        .selected(PaneId::Findings)
        .min(rows.len().saturating_sub(1));
    let height = (list_area.height as usize).saturating_sub(lines.len());
    let offset = scroll_offset(selected, height);
    let width = list_area.width as usize;
    for (i, row) in rows.iter().enumerate().skip(offset) {
        let label = format!(" {:<8} ", row.severity.label());
        let title = truncate_right(&row.title, width.saturating_sub(label.len() + 1));
        let line = Line::from(vec![
            Span::styled(label, theme.style(row.severity.scope())),
            Span::styled(title, theme.style("ui.text")),
        ]);
        lines.push(if focused && i == selected {
            line.style(theme.style("ui.selection"))
        } else {
            line
        });
    }
    Paragraph::new(lines).render(list_area, buf);
    if let Some(row) = rows.get(selected) {
        Paragraph::new(Line::from(Span::styled(
            row.detail.clone(),
            theme.style("ui.text.dim"),
        )))
        .wrap(Wrap { trim: false })
        .render(super::providers::indented(detail_area), buf);
    }
}
