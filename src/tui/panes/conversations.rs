//! Conversations: the session list, the transcript with the streaming reply, tool-call
//! cards, citations and self-heal badges, and the message box.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::config_text;
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::conversations::{ConversationsState, Entry};
use crate::tui::keymap::Section;
use crate::tui::theme::Theme;
use crate::tui::widgets::{pane_block, truncate_right};

/// Tool output lines shown in an expanded card.
const TOOL_LINES: usize = 6;

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let block = pane_block(theme, "conversations", focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let state = &app.conversations;
    let wide = inner.width >= 100;
    let (list_area, main) = if wide {
        let [l, m] = Layout::horizontal([Constraint::Length(28), Constraint::Min(40)]).areas(inner);
        (Some(l), m)
    } else {
        (None, inner)
    };
    if let Some(l) = list_area {
        session_list(state, theme, l, buf, focused);
    }
    let input_lines = state.input.lines().count().max(1) + usize::from(state.input.ends_with('\n'));
    let input_h = (input_lines as u16 + 1).min(6);
    let completions = state.completions();
    let comp_h = u16::from(state.composing && !completions.is_empty());
    let [head, body, comp, input] = Layout::vertical([
        Constraint::Length(u16::from(!wide)),
        Constraint::Min(3),
        Constraint::Length(comp_h),
        Constraint::Length(input_h),
    ])
    .areas(main);
    if !wide {
        header(state, theme, head, buf);
    }
    transcript(app, theme, body, buf);
    if comp_h > 0 {
        let spans: Vec<Span> = completions
            .iter()
            .flat_map(|(name, what)| {
                [
                    Span::styled(format!(" {name}"), theme.style("ui.key")),
                    Span::styled(format!(" {what} "), theme.style("ui.text.dim")),
                ]
            })
            .collect();
        Line::from(spans).render(comp, buf);
    }
    input_box(app, theme, input, buf);
}

fn session_list(
    state: &ConversationsState,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
    focused: bool,
) {
    let block = Block::default()
        .borders(Borders::RIGHT)
        .border_style(theme.style("ui.border"));
    let inner = block.inner(area);
    block.render(area, buf);
    let mut lines = vec![Line::from(Span::styled(
        format!(" sessions ({})", state.sessions.len()),
        theme.style("ui.heading"),
    ))];
    if state.current.is_none() {
        lines.push(Line::from(Span::styled(
            " + new session",
            theme.style("conversations.hint"),
        )));
    }
    let rows = inner.height.saturating_sub(lines.len() as u16) as usize;
    let offset = crate::tui::widgets::scroll_offset(state.selected, rows);
    for (i, s) in state.sessions.iter().enumerate().skip(offset).take(rows) {
        let current = state.current.as_deref() == Some(s.id.as_str());
        let title = if s.title.is_empty() { &s.id } else { &s.title };
        let text = format!(
            " {} {}",
            truncate_right(title, inner.width.saturating_sub(7) as usize),
            s.messages
        );
        let style = if current && focused {
            theme.style("ui.selection")
        } else if current {
            theme.style("ui.key")
        } else if i == state.selected {
            theme.style("ui.text")
        } else {
            theme.style("ui.text.dim")
        };
        lines.push(Line::from(Span::styled(text, style)));
    }
    Paragraph::new(lines).render(inner, buf);
}

fn header(state: &ConversationsState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let text = match &state.current {
        Some(id) => {
            let title = state
                .sessions
                .iter()
                .find(|s| &s.id == id)
                .map_or(id.as_str(), |s| s.title.as_str());
            format!(
                " {} · {} session(s) · ↑↓ switch",
                truncate_right(title, 40),
                state.sessions.len()
            )
        }
        None if state.sessions.is_empty() => " new session".to_string(),
        None => format!(
            " new session · {} saved · ↑↓ open one",
            state.sessions.len()
        ),
    };
    Line::from(Span::styled(text, theme.style("ui.text.dim"))).render(area, buf);
}

/// Word-wrap `text` to `width` columns (by characters; the transcript is mostly prose).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut out = Vec::new();
    for raw in text.split('\n') {
        let mut line = String::new();
        let mut len = 0;
        for word in raw.split_inclusive(' ') {
            let wlen = word.chars().count();
            if len + wlen > width && len > 0 {
                out.push(std::mem::take(&mut line).trim_end().to_string());
                len = 0;
            }
            if wlen > width {
                let chars: Vec<char> = word.chars().collect();
                for piece in chars.chunks(width) {
                    if len > 0 {
                        out.push(std::mem::take(&mut line));
                    }
                    line.extend(piece);
                    len = piece.len();
                }
            } else {
                line.push_str(word);
                len += wlen;
            }
        }
        out.push(line.trim_end().to_string());
    }
    out
}

fn push_wrapped(
    lines: &mut Vec<Line<'static>>,
    text: &str,
    indent: &str,
    width: usize,
    style: Style,
) {
    for l in wrap(text, width.saturating_sub(indent.chars().count())) {
        lines.push(Line::from(Span::styled(format!("{indent}{l}"), style)));
    }
}

fn transcript(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let state = &app.conversations;
    let width = area.width.saturating_sub(1) as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    if state.transcript.is_empty() && state.streaming.is_none() {
        empty(app, theme, &mut lines, width);
    }
    let mut cards = Vec::new();
    for (i, entry) in state.transcript.iter().enumerate() {
        if matches!(entry, Entry::Tool { .. }) {
            cards.push((i, lines.len()));
        }
        let card = Card {
            open: state.card_open(i),
            selected: state.tool_selected == Some(i),
        };
        entry_lines(entry, card, theme, width, &mut lines);
        lines.push(Line::default());
    }
    *state.card_lines.borrow_mut() = cards;
    if let Some(s) = &state.streaming {
        let doing = s.status.as_deref().unwrap_or("replying");
        lines.push(Line::from(Span::styled(
            format!(" assistant · {doing}…"),
            theme
                .style("conversations.assistant")
                .add_modifier(ratatui::style::Modifier::BOLD),
        )));
        if !s.reasoning.is_empty() {
            push_wrapped(
                &mut lines,
                &s.reasoning,
                " │ ",
                width,
                theme.style("conversations.reasoning"),
            );
        }
        push_wrapped(
            &mut lines,
            &format!("{}▌", s.text),
            "   ",
            width,
            theme.style("conversations.assistant"),
        );
    }
    let rows = area.height as usize;
    state.rendered.set((lines.len(), rows));
    let bottom = lines.len().saturating_sub(rows);
    let top = state.scroll.unwrap_or(bottom).min(bottom);
    let shown: Vec<Line> = lines.into_iter().skip(top).take(rows).collect();
    Paragraph::new(shown).render(area, buf);
    if top < bottom {
        let more = format!(" ↓ {} more line(s) ", bottom - top);
        let x = area.right().saturating_sub(more.chars().count() as u16 + 1);
        buf.set_string(
            x,
            area.bottom().saturating_sub(1),
            more,
            theme.style("ui.key"),
        );
    }
}

/// How a tool-call card is drawn.
#[derive(Clone, Copy)]
struct Card {
    open: bool,
    /// The card keys act on it.
    selected: bool,
}

fn entry_lines(
    entry: &Entry,
    card: Card,
    theme: &Theme,
    width: usize,
    lines: &mut Vec<Line<'static>>,
) {
    match entry {
        Entry::User(text) => {
            lines.push(Line::from(Span::styled(
                " you",
                theme.style("conversations.user"),
            )));
            push_wrapped(lines, text, "   ", width, theme.style("ui.text"));
        }
        Entry::Assistant {
            text,
            reasoning,
            badge,
            by,
            citations,
        } => {
            let mut head = vec![Span::styled(
                format!(
                    " assistant{}",
                    if by.is_empty() {
                        String::new()
                    } else {
                        format!(" · {by}")
                    }
                ),
                theme
                    .style("conversations.assistant")
                    .add_modifier(ratatui::style::Modifier::BOLD),
            )];
            if let Some(b) = badge {
                let style = if b.starts_with("failed") {
                    "conversations.badge.failed"
                } else {
                    "conversations.badge"
                };
                head.push(Span::styled(format!("  ⟳ {b}"), theme.style(style)));
            }
            lines.push(Line::from(head));
            if !reasoning.is_empty() {
                push_wrapped(
                    lines,
                    reasoning,
                    " │ ",
                    width,
                    theme.style("conversations.reasoning"),
                );
            }
            push_wrapped(
                lines,
                text,
                "   ",
                width,
                theme.style("conversations.assistant"),
            );
            for c in citations {
                let snippet: String = c.snippet.split_whitespace().collect::<Vec<_>>().join(" ");
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("   [{}] ", c.index),
                        theme.style("conversations.citation"),
                    ),
                    Span::styled(
                        format!("{}:{}-{} ", c.source, c.line_start, c.line_end),
                        theme.style("conversations.citation"),
                    ),
                    Span::styled(
                        truncate_right(&snippet, width.saturating_sub(c.source.len() + 16)),
                        theme.style("ui.text.dim"),
                    ),
                ]));
            }
        }
        Entry::Tool {
            name,
            arguments,
            status,
            output,
        } => {
            let mark = match status.as_str() {
                "ok" => "✓",
                "error" => "✗",
                _ => "…",
            };
            let expanded = card.open;
            let fold = if expanded { "▾" } else { "▸" };
            let args = if expanded {
                String::new()
            } else {
                format!(
                    " {}",
                    truncate_right(arguments, width.saturating_sub(name.len() + 12))
                )
            };
            let (pointer, style) = if card.selected {
                ("›", theme.style("ui.selection"))
            } else {
                (" ", theme.style("conversations.tool"))
            };
            lines.push(Line::from(Span::styled(
                format!("{pointer}{fold} tool {name} {mark}{args}"),
                style,
            )));
            if expanded {
                push_wrapped(
                    lines,
                    &format!("args {arguments}"),
                    "   ",
                    width,
                    theme.style("ui.text.dim"),
                );
                let out: Vec<&str> = output.lines().take(TOOL_LINES).collect();
                push_wrapped(
                    lines,
                    &out.join("\n"),
                    "   → ",
                    width,
                    theme.style("ui.text"),
                );
            }
        }
        Entry::Note(text) => push_wrapped(lines, text, " · ", width, theme.style("ui.text.dim")),
        Entry::Error(text) => push_wrapped(
            lines,
            text,
            " ✗ ",
            width,
            theme.style("conversations.badge.failed"),
        ),
    }
}

/// No transcript yet: say what will answer, and how to start.
fn empty(app: &App, theme: &Theme, lines: &mut Vec<Line<'static>>, width: usize) {
    let text = theme.style("ui.text");
    let dim = theme.style("ui.text.dim");
    let heading = if app.conversations.sessions.is_empty() {
        " No conversations yet."
    } else {
        " New session: no messages yet."
    };
    lines.push(Line::from(Span::styled(heading, theme.style("ui.heading"))));
    let chain: Vec<String> = app
        .view
        .providers
        .as_ref()
        .map(|p| {
            p.providers
                .iter()
                .filter(|p| p.state != "unconfigured")
                .map(|p| p.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let who = if chain.is_empty() {
        format!(
            " Turns go to: {}",
            config_text(app, "/self_heal/fallback").replace(", ", " → ")
        )
    } else {
        format!(" Turns go to: {}", chain.join(" → "))
    };
    push_wrapped(lines, &who, "", width, text);
    if app.view.providers.as_ref().is_some_and(|p| p.offline_only) {
        push_wrapped(
            lines,
            " Only the offline provider can answer (no model): it answers from memory \
             and runs /tool commands. Add a provider to config.toml or start Ollama.",
            "",
            width,
            theme.style("ui.notice.warn"),
        );
    }
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled(" ", dim),
        Span::styled(key(app, Action::ConversationCompose), theme.style("ui.key")),
        Span::styled(" type a message   ", dim),
        Span::styled("/help", theme.style("ui.key")),
        Span::styled(" commands   ", dim),
        Span::styled(key(app, Action::FocusProviders), theme.style("ui.key")),
        Span::styled(" providers", dim),
    ]));
}

fn input_box(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let state = &app.conversations;
    let title = if state.composing {
        " message · Enter send · Alt+Enter line · Tab complete · Esc ".to_string()
    } else {
        format!(
            " {} type · {} new · {} tools · PgUp/PgDn scroll ",
            key(app, Action::ConversationCompose),
            key(app, Action::ConversationNew),
            key(app, Action::ConversationToggleTools),
        )
    };
    let mut block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(
            truncate_right(&title, area.width as usize),
            theme.style("ui.text.dim"),
        ))
        .border_style(theme.style(if state.composing {
            "ui.border.focused"
        } else {
            "ui.border"
        }));
    if let Some(model) = &state.model {
        block = block.title_bottom(Span::styled(
            format!(
                " {}{model} ",
                state
                    .provider
                    .as_deref()
                    .map(|p| format!("{p} · "))
                    .unwrap_or_default()
            ),
            theme.style("ui.text.dim"),
        ));
    }
    let inner = block.inner(area);
    block.render(area, buf);
    let style = theme.style("conversations.input");
    let mut lines: Vec<Line> = state
        .input
        .split('\n')
        .map(|l| Line::from(Span::styled(format!(" {l}"), style)))
        .collect();
    if state.composing
        && let Some(last) = lines.last_mut()
    {
        last.push_span(Span::styled("▌", theme.style("ui.key")));
    }
    let skip = lines.len().saturating_sub(inner.height as usize);
    Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>()).render(inner, buf);
}

fn key(app: &App, action: Action) -> String {
    app.keymap
        .hint(Section::Conversations, action)
        .map_or_else(|| action.name().to_string(), |k| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_on_spaces_and_splits_long_words() {
        assert_eq!(wrap("aaa bbb ccc", 8), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("x\n\ny", 8), vec!["x", "", "y"]);
        assert_eq!(
            wrap(&"z".repeat(20), 8),
            vec!["zzzzzzzz", "zzzzzzzz", "zzzz"]
        );
    }
}
