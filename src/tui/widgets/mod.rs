//! Pieces shared by the panes and popups.

pub mod help;
pub mod palette;
pub mod prompt;
pub mod status_bar;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

use super::theme::Theme;

/// A pane's frame: title and border styled by focus.
pub fn pane_block<'a>(theme: &Theme, title: &'a str, focused: bool) -> Block<'a> {
    let (border, title_style) = if focused {
        (
            theme.style("ui.border.focused"),
            theme.style("ui.title.focused"),
        )
    } else {
        (theme.style("ui.border"), theme.style("ui.title"))
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(Span::styled(format!(" {title} "), title_style))
}

/// `key  value` rows with the keys padded to one width.
pub fn key_value_lines<'a>(
    theme: &Theme,
    rows: &[(String, String)],
    value_scope: &str,
    selected: Option<usize>,
) -> Vec<Line<'a>> {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let line = Line::from(vec![
                Span::styled(format!(" {k:<width$}  "), theme.style("ui.text.dim")),
                Span::styled(v.clone(), theme.style(value_scope)),
            ]);
            if Some(i) == selected {
                line.style(theme.style("ui.selection"))
            } else {
                line
            }
        })
        .collect()
}

/// Keep the text's tail when it does not fit: paths matter most at their end.
pub fn truncate_left(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let tail: String = text.chars().skip(count - (max - 1)).collect();
    format!("…{tail}")
}

/// Keep the text's head when it does not fit.
pub fn truncate_right(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let head: String = text.chars().take(max - 1).collect();
    format!("{head}…")
}

/// The first row to show so that `selected` stays visible in `height` rows.
pub fn scroll_offset(selected: usize, height: usize) -> usize {
    if height == 0 {
        0
    } else {
        selected.saturating_sub(height - 1)
    }
}

/// A centered rectangle of at most `width` x `height` inside `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Fill `area` with a style, so popups hide what is under them.
pub fn clear(buf: &mut Buffer, area: Rect, style: ratatui::style::Style) {
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.reset();
                cell.set_style(style);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_the_meaningful_end() {
        assert_eq!(truncate_left("/home/user/.openclaw-rs", 12), "…openclaw-rs");
        assert_eq!(truncate_left("short", 12), "short");
        assert_eq!(truncate_right("a long message", 6), "a lon…");
        assert_eq!(truncate_left("x", 0), "");
    }

    #[test]
    fn scroll_keeps_selection_visible() {
        assert_eq!(scroll_offset(0, 5), 0);
        assert_eq!(scroll_offset(4, 5), 0);
        assert_eq!(scroll_offset(5, 5), 1);
        assert_eq!(scroll_offset(3, 0), 0);
    }
}
