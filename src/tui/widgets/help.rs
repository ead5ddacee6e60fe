//! The help popup, generated from the live keymap: what you see is what the keys do.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget};

use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::Section;
use crate::tui::theme::Theme;

/// Lines of the help text: per section, every action with its keys.
pub fn lines(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for section in Section::ALL {
        let rows: Vec<(String, Action)> = Action::ALL
            .iter()
            .filter_map(|action| {
                let keys = app.keymap.keys_for(section, *action);
                (!keys.is_empty()).then(|| {
                    let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
                    (keys.join(", "), *action)
                })
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::default());
        }
        let heading = match section {
            Section::Global => "everywhere".to_string(),
            other => format!("in {}", other.name()),
        };
        lines.push(Line::from(Span::styled(heading, theme.style("ui.heading"))));
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0)
            .min(22);
        for (keys, action) in rows {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<width$}  "), theme.style("ui.key")),
                Span::styled(format!("{:<20} ", action.name()), theme.style("ui.popup")),
                Span::styled(action.description().to_string(), theme.style("ui.text.dim")),
            ]));
        }
    }
    lines
}

pub fn render(app: &App, theme: &Theme, scroll: usize, area: Rect, buf: &mut Buffer) {
    let popup = super::centered(
        area,
        76.min(area.width),
        area.height.saturating_sub(2).max(6),
    );
    super::clear(buf, popup, theme.style("ui.popup"));
    let lines = lines(app, theme);
    let inner_height = popup.height.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(inner_height);
    let scroll = scroll.min(max_scroll);
    let title = format!(" keys — keymap {} ", app.keymap.name);
    let footer = if max_scroll > 0 {
        format!(
            " {}/{} · ↑↓ scroll · esc close ",
            scroll + 1,
            max_scroll + 1
        )
    } else {
        " esc close ".to_string()
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style("ui.popup.border"))
        .title(Span::styled(title, theme.style("ui.title.focused")))
        .title_bottom(Line::from(Span::styled(footer, theme.style("ui.text.dim"))).right_aligned());
    Paragraph::new(lines)
        .block(block)
        .style(theme.style("ui.popup"))
        .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
        .render(popup, buf);
}
