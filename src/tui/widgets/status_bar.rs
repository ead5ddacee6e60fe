//! The bottom line: profile, build track, sandbox backend, state dir, last event.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{truncate_left, truncate_right};
use crate::tui::app::App;
use crate::tui::theme::Theme;

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let base = theme.style("ui.statusbar");
    super::clear(buf, area, base);
    let mut left: Vec<Span<'static>> = Vec::new();
    match &app.view.status {
        Some(status) => {
            left.push(Span::styled(
                format!(" {} ", status.profile),
                theme.style("ui.statusbar.accent"),
            ));
            left.push(Span::styled(
                format!(" {} build ", status.build_track),
                base,
            ));
            let backend = status.sandbox.in_use.as_str();
            if status.sandbox.fallback_reason.is_some() {
                left.push(Span::styled(
                    format!(" {backend} (fallback) "),
                    theme.style("ui.statusbar.warn"),
                ));
            } else {
                left.push(Span::styled(format!("│ {backend} "), base));
            }
            let used = width_of(&left);
            let remaining = (area.width as usize).saturating_sub(used + 2);
            // Leave room for the last event when there is one.
            let dir_room = if app.last_event.is_some() || app.calls_in_flight > 0 {
                remaining.min(28)
            } else {
                remaining
            };
            left.push(Span::styled(
                format!(
                    "│ {} ",
                    truncate_left(&status.state_dir, dir_room.saturating_sub(3))
                ),
                base,
            ));
        }
        None => left.push(Span::styled(" starting… ", base)),
    }
    let used = width_of(&left);
    Line::from(left).render(area, buf);

    let right = if app.calls_in_flight > 0 {
        Some("loading…".to_string())
    } else {
        app.last_event.clone()
    };
    if let Some(text) = right {
        let room = (area.width as usize).saturating_sub(used + 3);
        if room >= 8 {
            let text = truncate_right(&text, room);
            let width = text.chars().count() as u16 + 2;
            let x = area.right().saturating_sub(width);
            Line::from(Span::styled(format!("│ {text}"), base))
                .render(Rect { x, width, ..area }, buf);
        }
    }
}

fn width_of(spans: &[Span<'_>]) -> usize {
    spans.iter().map(|s| s.content.chars().count()).sum()
}
