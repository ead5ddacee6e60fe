//! The command palette: every action, filtered as you type, with its key.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget};

use crate::tui::app::{App, Palette};
use crate::tui::theme::Theme;

pub fn render(app: &App, palette: &Palette, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let matches = palette.matches();
    let height = (matches.len() as u16 + 4).clamp(6, area.height.saturating_sub(2).max(6));
    let mut popup = super::centered(area, 72.min(area.width), height);
    popup.y = area.y + 1.min(area.height.saturating_sub(popup.height));
    super::clear(buf, popup, theme.style("ui.popup"));

    let list_height = popup.height.saturating_sub(3) as usize;
    let selected = palette.selected.min(matches.len().saturating_sub(1));
    let offset = super::scroll_offset(selected, list_height);
    let section = app.focus.section();
    let mut lines = vec![Line::from(vec![
        Span::styled(" : ", theme.style("ui.key")),
        Span::styled(palette.query.clone(), theme.style("ui.match")),
        Span::styled("▏", theme.style("ui.popup")),
    ])];
    if matches.is_empty() {
        lines.push(Line::from(Span::styled(
            "   no action matches; backspace to widen",
            theme.style("ui.text.dim"),
        )));
    }
    let inner_width = popup.width.saturating_sub(2) as usize;
    for (i, action) in matches.iter().enumerate().skip(offset).take(list_height) {
        let key = app
            .keymap
            .hint(section, *action)
            .map(|k| k.to_string())
            .unwrap_or_default();
        let name = format!("   {:<20} ", action.name());
        let room = inner_width.saturating_sub(name.chars().count() + key.chars().count() + 1);
        let description = super::truncate_right(action.description(), room);
        let pad = room.saturating_sub(description.chars().count());
        let line = Line::from(vec![
            Span::styled(name, theme.style("ui.popup")),
            Span::styled(description, theme.style("ui.text.dim")),
            Span::raw(" ".repeat(pad + 1)),
            Span::styled(key, theme.style("ui.key")),
        ]);
        lines.push(if i == selected {
            line.style(theme.style("ui.selection"))
        } else {
            line
        });
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style("ui.popup.border"))
        .title(Span::styled(
            " command palette ",
            theme.style("ui.title.focused"),
        ))
        .title_bottom(
            Line::from(Span::styled(
                " enter run · ↑↓ choose · esc close ",
                theme.style("ui.text.dim"),
            ))
            .right_aligned(),
        );
    Paragraph::new(lines)
        .block(block)
        .style(theme.style("ui.popup"))
        .render(popup, buf);
}
