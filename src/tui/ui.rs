//! Draw the whole screen from the app's state. Reads only; never changes state.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::action::Action;
use super::app::{App, Overlay, PaneId};
use super::panes;
use super::theme::Theme;
use super::widgets::{self, help, palette, prompt, status_bar};

/// Below this the layout cannot show a pane usefully; we say so instead of drawing garbage.
pub const MIN_WIDTH: u16 = 50;
pub const MIN_HEIGHT: u16 = 12;
/// From this size on, all four panes are shown at once.
pub const GRID_WIDTH: u16 = 120;
pub const GRID_HEIGHT: u16 = 36;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame<'_>) {
    draw(app, theme, frame.area(), frame.buffer_mut());
}

pub fn draw(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    widgets::clear(buf, area, theme.style("ui.text"));
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(app, theme, area, buf);
        return;
    }
    let [tabs_area, main_area, status_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    tabs(app, theme, tabs_area, buf);
    if area.width >= GRID_WIDTH && area.height >= GRID_HEIGHT {
        let [top, bottom] = Layout::vertical([Constraint::Percentage(50); 2]).areas(main_area);
        let [a, b] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(top);
        let [c, d] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(bottom);
        for (pane, rect) in PaneId::ALL.into_iter().zip([a, b, c, d]) {
            panes::render(app, pane, theme, rect, buf);
        }
    } else {
        panes::render(app, app.focus, theme, main_area, buf);
    }
    status_bar::render(app, theme, status_area, buf);
    match &app.overlay {
        Overlay::None => {}
        Overlay::Help { scroll } => help::render(app, theme, *scroll, main_area, buf),
        Overlay::Palette(p) => palette::render(app, p, theme, main_area, buf),
        Overlay::Confirm(c) => prompt::confirm(c, theme, main_area, buf),
        Overlay::Input(i) => prompt::input(i, theme, main_area, buf),
    }
}

fn tabs(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let mut spans = Vec::new();
    let jump = [
        Action::FocusConversations,
        Action::FocusMemory,
        Action::FocusProviders,
        Action::FocusFindings,
    ];
    for (pane, action) in PaneId::ALL.into_iter().zip(jump) {
        let key = app
            .keymap
            .hint(app.focus.section(), action)
            .map(|k| format!("{k} "))
            .unwrap_or_default();
        let style = if pane == app.focus {
            theme.style("ui.tabs.active")
        } else {
            theme.style("ui.tabs")
        };
        spans.push(Span::styled(format!(" {key}{} ", pane.name()), style));
        spans.push(Span::raw(" "));
    }
    Line::from(spans).render(area, buf);
    let help_key = app.keymap.hint(app.focus.section(), Action::ToggleHelp);
    let palette_key = app.keymap.hint(app.focus.section(), Action::OpenPalette);
    let hint = match (help_key, palette_key) {
        (Some(h), Some(p)) => format!("{h} help  {p} palette "),
        (Some(h), None) => format!("{h} help "),
        (None, Some(p)) => format!("{p} palette "),
        (None, None) => String::new(),
    };
    let used: usize = PaneId::ALL.iter().map(|p| p.name().len() + 5).sum();
    let width = hint.chars().count() as u16;
    if (area.width as usize) >= used + hint.chars().count() {
        Line::from(Span::styled(hint, theme.style("ui.text.dim"))).render(
            Rect {
                x: area.right() - width,
                width,
                ..area
            },
            buf,
        );
    }
}

fn too_small(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let quit = app
        .keymap
        .hint(app.focus.section(), Action::Quit)
        .map_or_else(|| "quit".to_string(), |k| k.to_string());
    let lines = vec![
        Line::from(Span::styled(
            "Terminal too small",
            theme.style("ui.notice.warn"),
        )),
        Line::from(Span::styled(
            format!(
                "{}x{} here; openclaw-rs needs at least {MIN_WIDTH}x{MIN_HEIGHT} (80x24 or more is best).",
                area.width, area.height
            ),
            theme.style("ui.text"),
        )),
        Line::from(Span::styled(
            format!("Resize the window, or press {quit} to quit."),
            theme.style("ui.text.dim"),
        )),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .render(area, buf);
}
