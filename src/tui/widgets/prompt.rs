//! Popups that ask: a confirm with the exact change, and a one-line text input.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget, Wrap};

use crate::tui::app::{Confirm, Input};
use crate::tui::theme::Theme;

fn popup_block<'a>(theme: &Theme, title: String, footer: &'a str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style("ui.popup.border"))
        .title(Span::styled(
            format!(" {title} "),
            theme.style("ui.title.focused"),
        ))
        .title_bottom(Line::from(Span::styled(footer, theme.style("ui.text.dim"))).right_aligned())
}

/// Diff lines keep their meaning by colour (and by their +/- in any case).
fn body_line<'a>(theme: &Theme, line: &'a str) -> Line<'a> {
    let scope = if line.starts_with("+++") || line.starts_with("---") {
        "ui.text.dim"
    } else if line.starts_with('+') {
        "health.ok"
    } else if line.starts_with('-') {
        "health.fail"
    } else if line.starts_with("@@") {
        "ui.heading"
    } else {
        "ui.popup"
    };
    Line::from(Span::styled(line, theme.style(scope)))
}

pub fn confirm(confirm: &Confirm, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let lines: Vec<Line<'_>> = confirm.body.lines().map(|l| body_line(theme, l)).collect();
    let height = (lines.len() as u16 + 2).clamp(5, area.height.saturating_sub(2).max(5));
    let popup = super::centered(area, 76.min(area.width), height);
    super::clear(buf, popup, theme.style("ui.popup"));
    let max_scroll = lines
        .len()
        .saturating_sub(popup.height.saturating_sub(2) as usize);
    let scroll = confirm.scroll.min(max_scroll);
    Paragraph::new(lines)
        .block(popup_block(
            theme,
            confirm.title.clone(),
            " y apply · n cancel · ↑↓ scroll ",
        ))
        .style(theme.style("ui.popup"))
        .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
        .render(popup, buf);
}

pub fn input(input: &Input, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let popup = super::centered(area, 70.min(area.width), 3);
    super::clear(buf, popup, theme.style("ui.popup"));
    let line = Line::from(vec![
        Span::styled(input.prompt.clone(), theme.style("ui.key")),
        Span::styled(input.text.clone(), theme.style("ui.match")),
        Span::styled("▏", theme.style("ui.popup")),
    ]);
    Paragraph::new(line)
        .block(popup_block(theme, String::new(), " enter ok · esc cancel "))
        .style(theme.style("ui.popup"))
        .wrap(Wrap { trim: false })
        .render(popup, buf);
}
