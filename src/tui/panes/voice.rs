//! The providers pane's voice section: the active provider and its chain, whether each
//! provider's binary (or key) is there, and the last conversion with its attempts.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::Section;
use crate::tui::theme::Theme;
use crate::tui::voice::PlayOutcome;

/// Rows the section takes: its heading, the providers, the last conversion (two rows when
/// it wraps).
pub const HEIGHT: u16 = 5;

pub fn render(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let voice = &app.voice;
    let dim = theme.style("ui.text.dim");
    let text = theme.style("ui.text");
    let good = theme.style("providers.key.set");
    let bad = theme.style("providers.key.missing");
    let key = |action: Action| {
        app.keymap
            .hint(Section::Providers, action)
            .map_or_else(|| action.name().to_string(), |k| k.to_string())
    };

    let mut heading = vec![Span::styled(" voice ", theme.style("ui.heading"))];
    let mut providers = vec![Span::styled(" ", dim)];
    match (&voice.status, &voice.status_error) {
        (Some(status), _) => {
            heading.push(Span::styled(
                if status.enabled {
                    "on"
                } else {
                    "off until used"
                },
                if status.enabled { good } else { dim },
            ));
            let mut chain = vec![status.provider.clone()];
            chain.extend(status.fallback_providers.iter().cloned());
            heading.push(Span::styled(format!(" · {}", chain.join(" → ")), text));
            for (i, p) in status.provider_states.iter().enumerate() {
                if i > 0 {
                    providers.push(Span::styled("  ", dim));
                }
                providers.push(Span::styled(format!("{} ", p.id), theme.style("ui.key")));
                // Short words: five providers share one line of an 80-column pane.
                let (word, style) = match (p.available, p.configured) {
                    (true, _) => ("ok", good),
                    (false, true) => ("missing", bad),
                    (false, false) => ("unset", dim),
                };
                providers.push(Span::styled(word, style));
            }
        }
        (None, Some(error)) => {
            heading.push(Span::styled(format!("status failed: {error}"), bad));
        }
        (None, None) if voice.started => {
            heading.push(Span::styled("checking…", dim));
        }
        (None, None) => {
            heading.push(Span::styled("not probed until used", dim));
        }
    }
    heading.push(Span::styled(
        format!(
            " · auto {} ({}) · speak last ({})",
            if voice.auto { "on" } else { "off" },
            key(Action::TtsAutoToggle),
            key(Action::TtsSpeakLast)
        ),
        dim,
    ));

    let mut last = vec![Span::styled(" last: ", dim)];
    match &voice.last {
        None if voice.speaking => last.push(Span::styled("speaking…", dim)),
        None => last.push(Span::styled("nothing spoken yet", dim)),
        Some(conversion) => {
            match &conversion.result {
                Ok(done) => last.push(Span::styled(
                    format!(
                        "{} {:.1} s",
                        done.provider,
                        done.duration_ms as f64 / 1000.0
                    ),
                    good,
                )),
                Err(message) if conversion.attempts.is_empty() => {
                    last.push(Span::styled(format!("failed: {message}"), bad))
                }
                Err(_) => last.push(Span::styled("no provider could speak", bad)),
            }
            let failed: Vec<String> = conversion
                .attempts
                .iter()
                .filter(|a| a.status != "ok" && a.status != "cached")
                .map(|a| match &a.reason {
                    Some(reason) => format!("{} {} ({reason})", a.provider, a.status),
                    None => format!("{} {}", a.provider, a.status),
                })
                .collect();
            if !failed.is_empty() {
                let word = if conversion.result.is_ok() {
                    "after"
                } else {
                    ":"
                };
                last.push(Span::styled(format!(" {word} {}", failed.join(", ")), dim));
            }
            match &conversion.played {
                Some(PlayOutcome::Played { player }) => {
                    last.push(Span::styled(format!(" · played with {player}"), dim))
                }
                Some(PlayOutcome::NoPlayer { path }) => {
                    last.push(Span::styled(format!(" · saved: {path}"), text))
                }
                Some(PlayOutcome::Failed { player, reason }) => {
                    last.push(Span::styled(format!(" · {player} failed: {reason}"), bad))
                }
                None => {}
            }
        }
    }
    Paragraph::new(vec![
        Line::from(heading),
        Line::from(providers),
        Line::from(last),
    ])
    .wrap(Wrap { trim: false })
    .render(area, buf);
}
