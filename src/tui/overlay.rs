//! The popups over the panes: help, the command palette, a confirm question and a line of
//! input. Each takes the keys while it is open; what reaches beyond the popup (run an
//! action, start confirmed work, submit a line) goes back to the app as an [`Outcome`].

use std::cmp::Reverse;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nucleo_matcher::pattern::{AtomKind, CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

use super::action::Action;

/// Rows a page-up/page-down scrolls a popup.
const PAGE: usize = 10;
/// Longest text typed into the palette or an input line: a command's name is short, a
/// reason a sentence, a filter a word.
const MAX_TYPED: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help {
        scroll: usize,
    },
    Palette(Palette),
    /// A change waiting for a yes: what it does and its exact diff.
    Confirm(Confirm),
    /// A line of text the user is typing.
    Input(Input),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub title: String,
    pub body: String,
    pub scroll: usize,
    pub on_yes: Pending,
}

/// Engine work a confirm popup or an input line will start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Fix { fix_id: String },
    FixAll,
    Undo { seq: u64 },
    MemoryReindex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub prompt: String,
    pub text: String,
    pub purpose: InputPurpose,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPurpose {
    Filter,
    Suppress {
        check_id: String,
        path: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Palette {
    pub query: String,
    pub selected: usize,
}

impl Palette {
    /// Actions matching the query, best first. Every word of the query must appear in an
    /// action's name or description with its letters in order; nucleo-matcher (helix's
    /// matcher) ranks the hits, preferring letters together and at word starts. Case is
    /// smart: a lowercase query ignores case, one with a capital letter does not.
    pub fn matches(&self) -> Vec<Action> {
        // `/tts` finds what `tts` does: slash commands are typed here until there is a
        // command bar.
        let query = self.query.trim_start_matches('/');
        let pattern = Pattern::new(
            query,
            CaseMatching::Smart,
            Normalization::Smart,
            AtomKind::Fuzzy,
        );
        let mut matcher = Matcher::new(Config::DEFAULT);
        let (mut buf, mut indices) = (Vec::new(), Vec::new());
        let mut ranked: Vec<(Rank, usize, Action)> = Action::ALL
            .iter()
            .filter_map(|action| {
                let name = Utf32Str::new(action.name(), &mut buf);
                let rank = match pattern.score(name, &mut matcher) {
                    Some(score) => Rank::Name(Reverse(score)),
                    None => {
                        let haystack = format!("{} {}", action.name(), action.description());
                        indices.clear();
                        let text = Utf32Str::new(&haystack, &mut buf);
                        pattern.indices(text, &mut matcher, &mut indices)?;
                        let (first, last) = (indices.iter().min(), indices.iter().max());
                        Rank::Description(last.zip(first).map_or(0, |(l, f)| l - f))
                    }
                };
                Some((rank, action.name().len(), *action))
            })
            .collect();
        // Among equals the shorter name first, then the keymap's order (a stable sort).
        ranked.sort_by_key(|(rank, len, _)| (*rank, *len));
        ranked.into_iter().map(|(_, _, a)| a).collect()
    }
}

/// Where a palette hit sits in the list: hits on an action's name first, best nucleo score
/// first; then hits that need the description, the letters closest together first (in
/// prose, how near the letters sit says more than word-start bonuses made for names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Name(Reverse<u32>),
    /// The span (in characters) from the first matched letter to the last.
    Description(u32),
}

/// What a key did to an open popup, for the app to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The popup took the key; only the screen changed.
    Stay,
    /// Close the popup the way the `close` action does.
    Close,
    /// Close the popup and run this action.
    Run(Action),
    /// The question was answered yes: start this work.
    Yes(Pending),
    /// The line was submitted.
    Submit(Input),
}

/// Where a paste went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pasted {
    /// Typed into the open popup.
    Taken,
    /// Refused, with the reason for the status bar.
    Refused(&'static str),
    /// No popup takes text: the focused pane may.
    ToPane,
}

impl Overlay {
    /// Give a key to the confirm, input or palette popup. `None`: no popup takes keys
    /// before the keymap (none is open, or help is, which reads actions instead).
    pub fn key(&mut self, key: KeyEvent) -> Option<Outcome> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Overlay::Confirm(confirm) => Some(match key.code {
                KeyCode::Char('y') | KeyCode::Enter => Outcome::Yes(confirm.on_yes.clone()),
                KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
                    *self = Overlay::None;
                    Outcome::Stay
                }
                code => {
                    confirm.scroll = scrolled(confirm.scroll, code);
                    Outcome::Stay
                }
            }),
            Overlay::Input(input) => Some(match key.code {
                KeyCode::Enter => Outcome::Submit(input.clone()),
                KeyCode::Esc => {
                    *self = Overlay::None;
                    Outcome::Stay
                }
                KeyCode::Char('c') if ctrl => {
                    *self = Overlay::None;
                    Outcome::Stay
                }
                KeyCode::Char('u') if ctrl => {
                    input.text.clear();
                    Outcome::Stay
                }
                KeyCode::Backspace => {
                    input.text.pop();
                    Outcome::Stay
                }
                KeyCode::Char(c) if !ctrl && input.text.chars().count() < MAX_TYPED => {
                    input.text.push(c);
                    Outcome::Stay
                }
                _ => Outcome::Stay,
            }),
            Overlay::Palette(palette) => Some(palette_key(palette, key)),
            Overlay::Help { .. } | Overlay::None => None,
        }
    }

    /// While help is open, movement scrolls it. `false`: the action is not help's.
    pub fn scroll_help(&mut self, action: Action) -> bool {
        let Overlay::Help { scroll } = self else {
            return false;
        };
        match action {
            Action::SelectNext => *scroll = scroll.saturating_add(1),
            Action::SelectPrev => *scroll = scroll.saturating_sub(1),
            Action::PageDown => *scroll = scroll.saturating_add(PAGE),
            Action::PageUp => *scroll = scroll.saturating_sub(PAGE),
            Action::SelectFirst => *scroll = 0,
            _ => return false,
        }
        true
    }

    /// A paste goes into an open palette or input line as one line of text, bounded like
    /// typing; it never answers a question; it closes help.
    pub fn paste(&mut self, text: &str) -> Pasted {
        match self {
            Overlay::Input(input) => {
                let room = MAX_TYPED.saturating_sub(input.text.chars().count());
                input
                    .text
                    .extend(super::paste::single_line(text).chars().take(room));
                Pasted::Taken
            }
            Overlay::Palette(palette) => {
                // A stray large paste must not become the query.
                let room = MAX_TYPED.saturating_sub(palette.query.chars().count());
                palette
                    .query
                    .extend(super::paste::single_line(text).chars().take(room));
                palette.selected = 0;
                Pasted::Taken
            }
            Overlay::Confirm(_) => Pasted::Refused("paste ignored: answer the question first"),
            Overlay::Help { .. } => {
                *self = Overlay::None;
                Pasted::ToPane
            }
            Overlay::None => Pasted::ToPane,
        }
    }
}

/// A confirm popup's scroll position after a movement key.
fn scrolled(scroll: usize, code: KeyCode) -> usize {
    match code {
        KeyCode::Down | KeyCode::Char('j') => scroll.saturating_add(1),
        KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
        KeyCode::PageDown => scroll.saturating_add(PAGE),
        KeyCode::PageUp => scroll.saturating_sub(PAGE),
        _ => scroll,
    }
}

/// The palette is a text field: keys type, except for the few that steer it.
fn palette_key(palette: &mut Palette, key: KeyEvent) -> Outcome {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let count = palette.matches().len();
    match key.code {
        KeyCode::Esc => return Outcome::Close,
        KeyCode::Char('c') if ctrl => return Outcome::Close,
        KeyCode::Enter => {
            return match palette.matches().get(palette.selected) {
                Some(action) => Outcome::Run(*action),
                None => Outcome::Stay,
            };
        }
        KeyCode::Down | KeyCode::Tab => {
            palette.selected = (palette.selected + 1).min(count.saturating_sub(1));
        }
        KeyCode::Char('n') if ctrl => {
            palette.selected = (palette.selected + 1).min(count.saturating_sub(1));
        }
        KeyCode::Up | KeyCode::BackTab => palette.selected = palette.selected.saturating_sub(1),
        KeyCode::Char('p') if ctrl => palette.selected = palette.selected.saturating_sub(1),
        KeyCode::Backspace => {
            palette.query.pop();
            palette.selected = 0;
        }
        KeyCode::Char('u') if ctrl => {
            palette.query.clear();
            palette.selected = 0;
        }
        KeyCode::Char(c) if !ctrl => {
            palette.query.push(c);
            palette.selected = 0;
        }
        _ => {}
    }
    Outcome::Stay
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn palette_lists_every_action_when_empty_and_nothing_for_nonsense() {
        let p = Palette::default();
        assert_eq!(p.matches().len(), Action::ALL.len());
        let p = Palette {
            query: "zzzzqqq".into(),
            selected: 0,
        };
        assert!(p.matches().is_empty());
        let p = Palette {
            query: "fcs".into(),
            selected: 0,
        };
        assert!(p.matches().contains(&Action::FocusConversations));
    }

    fn first(query: &str) -> Option<Action> {
        let p = Palette {
            query: query.into(),
            selected: 0,
        };
        p.matches().first().copied()
    }

    #[test]
    fn the_palette_ranks_initials_and_words_in_any_order_first() {
        // The initials of an action's name beat letters scattered through descriptions.
        assert_eq!(first("tsl"), Some(Action::TtsSpeakLast));
        assert_eq!(first("ctt"), Some(Action::ConversationToggleTool));
        // Each word is matched on its own, in any order.
        assert_eq!(first("memory focus"), Some(Action::FocusMemory));
        assert_eq!(first("tool toggle"), Some(Action::ConversationToggleTool));
        // A name hit beats the same word in another action's description.
        assert_eq!(first("findings"), Some(Action::FocusFindings));
    }

    #[test]
    fn the_palette_ignores_case_until_the_query_has_a_capital() {
        let names = |query: &str| {
            Palette {
                query: query.into(),
                selected: 0,
            }
            .matches()
        };
        // Lowercase: letters in any case, so "undo" is also found spread over other names.
        assert!(names("undo").len() > 1, "{:?}", names("undo"));
        assert_eq!(names("UNDO"), Vec::<Action>::new());
        assert_eq!(names("Undo"), vec![Action::UndoFix]);
    }

    #[test]
    fn a_confirm_answers_yes_or_closes_and_scrolls_otherwise() {
        let confirm = |scroll| {
            Overlay::Confirm(Confirm {
                title: "t".into(),
                body: "b".into(),
                scroll,
                on_yes: Pending::FixAll,
            })
        };
        let mut overlay = confirm(0);
        assert_eq!(overlay.key(key(KeyCode::Char('j'))), Some(Outcome::Stay));
        assert_eq!(overlay, confirm(1));
        assert_eq!(
            overlay.key(key(KeyCode::Enter)),
            Some(Outcome::Yes(Pending::FixAll))
        );
        assert_eq!(overlay.key(key(KeyCode::Char('n'))), Some(Outcome::Stay));
        assert_eq!(overlay, Overlay::None);
    }

    #[test]
    fn an_input_line_types_bounded_and_submits() {
        let mut overlay = Overlay::Input(Input {
            prompt: "filter: ".into(),
            text: String::new(),
            purpose: InputPurpose::Filter,
        });
        for _ in 0..MAX_TYPED + 5 {
            overlay.key(key(KeyCode::Char('x')));
        }
        let Some(Outcome::Submit(input)) = overlay.key(key(KeyCode::Enter)) else {
            panic!("not submitted: {overlay:?}");
        };
        assert_eq!(input.text.chars().count(), MAX_TYPED);
        assert_eq!(overlay.paste("more"), Pasted::Taken);
        assert_eq!(Overlay::None.key(key(KeyCode::Enter)), None);
    }

    #[test]
    fn help_scrolls_with_movement_only() {
        let mut overlay = Overlay::Help { scroll: 0 };
        assert!(overlay.scroll_help(Action::PageDown));
        assert_eq!(overlay, Overlay::Help { scroll: PAGE });
        assert!(!overlay.scroll_help(Action::Quit));
        assert!(!Overlay::None.scroll_help(Action::SelectNext));
    }
}
