//! Conversations: the providers a turn would use, and how to get one going.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::config_text;
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::tui::widgets::pane_block;

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let block = pane_block(theme, "conversations", focused);
    let text = theme.style("ui.text");
    let dim = theme.style("ui.text.dim");
    let hint = theme.style("conversations.hint");
    let mut lines = vec![Line::from(Span::styled(
        " No conversations yet.",
        theme.style("ui.heading"),
    ))];
    lines.push(Line::default());

    let providers = super::providers::configured(app);
    if providers.is_empty() {
        lines.push(Line::from(Span::styled(
            " A conversation needs a model provider, and none is configured.",
            text,
        )));
    } else {
        lines.push(Line::from(Span::styled(" Configured providers:", text)));
        for p in &providers {
            lines.push(Line::from(vec![
                Span::styled(format!("   {:<12}", p.id), theme.style("ui.key")),
                Span::styled(format!("{:<10} {}", p.kind, p.model), text),
            ]));
        }
    }
    lines.push(Line::from(vec![
        Span::styled(" When a provider fails, turns fall back to: ", text),
        Span::styled(
            config_text(app, "/self_heal/fallback").replace(", ", " → "),
            hint,
        ),
    ]));
    lines.push(Line::default());
    if providers.is_empty() {
        let config_file = app
            .view
            .status
            .as_ref()
            .map_or("config.toml", |s| s.config_file.as_str());
        lines.push(Line::from(Span::styled(" Next: add a provider to", text)));
        lines.push(Line::from(Span::styled(format!("   {config_file}"), hint)));
        for example in [
            "[providers.openai]",
            "kind = \"openai\"",
            "api_key = \"env:OPENAI_API_KEY\"",
            "model = \"gpt-4o-mini\"",
        ] {
            lines.push(Line::from(Span::styled(format!("     {example}"), dim)));
        }
        lines.push(Line::default());
    }
    lines.push(Line::from(vec![
        Span::styled(" ", dim),
        Span::styled(
            key(app, crate::tui::action::Action::ToggleHelp),
            theme.style("ui.key"),
        ),
        Span::styled(" keys   ", dim),
        Span::styled(
            key(app, crate::tui::action::Action::OpenPalette),
            theme.style("ui.key"),
        ),
        Span::styled(" command palette   ", dim),
        Span::styled(
            key(app, crate::tui::action::Action::FocusProviders),
            theme.style("ui.key"),
        ),
        Span::styled(" providers", dim),
    ]));
    Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

fn key(app: &App, action: crate::tui::action::Action) -> String {
    app.keymap
        .hint(crate::tui::keymap::Section::Conversations, action)
        .map_or_else(|| action.name().to_string(), |k| k.to_string())
}
