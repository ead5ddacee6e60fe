//! Findings: doctor and audit results, worst first, each one key from a previewed fix.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::findings::{Finding, Severity};
use crate::tui::action::Action;
use crate::tui::app::{App, PaneId};
use crate::tui::keymap::Section;
use crate::tui::theme::Theme;
use crate::tui::widgets::{pane_block, scroll_offset, truncate_right};

fn scope(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "findings.severity.critical",
        Severity::Warn => "findings.severity.warn",
        Severity::Info => "findings.severity.info",
    }
}

/// The findings listed, after the filter; the selection indexes this list.
pub fn rows(app: &App) -> Vec<&Finding> {
    app.findings.rows()
}

fn key(app: &App, action: Action) -> String {
    app.keymap
        .hint(Section::Findings, action)
        .map_or_else(|| action.name().to_string(), |k| k.to_string())
}

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let title = match &app.findings.report {
        Some(report) => {
            let s = report.summary;
            let deep = if app.findings.deep_scan {
                " · deep"
            } else {
                ""
            };
            format!(
                "findings · {} critical · {} warn · {} info{deep}",
                s.critical, s.warn, s.info
            )
        }
        None => "findings".to_string(),
    };
    let block = pane_block(theme, &title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let detail_height = if inner.height >= 16 { 7 } else { 5 };
    let [list_area, detail_area, keys_area] = Layout::vertical([
        Constraint::Min(2),
        Constraint::Length(detail_height),
        Constraint::Length(1),
    ])
    .areas(inner);

    let dim = theme.style("ui.text.dim");
    let rows = rows(app);
    let mut lines = Vec::new();
    match &app.findings.report {
        None => lines.push(Line::from(Span::styled(
            " running the doctor and the audit…",
            dim,
        ))),
        Some(report) if report.findings.is_empty() => lines.push(Line::from(Span::styled(
            " All clear: the doctor and the audit found nothing.",
            theme.style("health.ok"),
        ))),
        Some(_) if rows.is_empty() => lines.push(Line::from(Span::styled(
            format!(" nothing matches \"{}\"", app.findings.filter),
            dim,
        ))),
        Some(_) => {}
    }
    let selected = app
        .selected(PaneId::Findings)
        .min(rows.len().saturating_sub(1));
    let height = (list_area.height as usize).saturating_sub(lines.len());
    let offset = scroll_offset(selected, height);
    let width = list_area.width as usize;
    for (i, finding) in rows.iter().enumerate().skip(offset) {
        let label = format!(" {:<8} ", finding.severity.as_str());
        let fixable = if finding.fix.is_some() { "⚑ " } else { "  " };
        let text = format!("{fixable}{}", finding.title);
        let line = Line::from(vec![
            Span::styled(label.clone(), theme.style(scope(finding.severity))),
            Span::styled(
                truncate_right(&text, width.saturating_sub(label.len() + 1)),
                theme.style("ui.text"),
            ),
        ]);
        lines.push(if focused && i == selected {
            line.style(theme.style("ui.selection"))
        } else {
            line
        });
    }
    Paragraph::new(lines).render(list_area, buf);

    if let Some(finding) = rows.get(selected) {
        let mut detail = vec![Line::from(vec![
            Span::styled(finding.check_id.clone(), theme.style("ui.key")),
            Span::styled(
                finding
                    .path
                    .as_ref()
                    .map_or(String::new(), |p| format!("  {p}")),
                dim,
            ),
        ])];
        detail.push(Line::from(Span::styled(
            finding.detail.clone(),
            theme.style("ui.text"),
        )));
        match &finding.fix {
            Some(fix) => detail.push(Line::from(vec![
                Span::styled(
                    format!("{} fix: ", key(app, Action::FixSelected)),
                    theme.style("ui.key"),
                ),
                Span::styled(fix.description.clone(), theme.style("health.ok")),
            ])),
            None => detail.push(Line::from(Span::styled("no automatic fix", dim))),
        }
        Paragraph::new(detail)
            .wrap(Wrap { trim: false })
            .render(super::providers::indented(detail_area), buf);
    }

    let suppressed = app
        .findings
        .report
        .as_ref()
        .map_or(0, |r| r.suppressed.len());
    let mut keys = Vec::new();
    for (action, label) in [
        (Action::FixSelected, "fix"),
        (Action::FixAll, "all"),
        (Action::Suppress, "suppress"),
        (Action::UndoFix, "undo"),
        (Action::Refresh, "rerun"),
        (Action::DeepScan, "deep"),
        (Action::Filter, "filter"),
    ] {
        keys.push(Span::styled(
            format!(" {}", key(app, action)),
            theme.style("ui.key"),
        ));
        keys.push(Span::styled(format!(" {label} "), dim));
    }
    if suppressed > 0 {
        keys.push(Span::styled(format!("· {suppressed} suppressed"), dim));
    }
    Paragraph::new(Line::from(keys)).render(keys_area, buf);
}
