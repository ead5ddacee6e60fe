//! Keymaps: TOML files of `"key" = "action"` per section, compiled in from `keymaps/`, with
//! user files in `<state>/keymaps/` overriding only the keys they set.

use std::fmt;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;
use crate::config::Diagnostic;

pub const BUILTIN_KEYMAPS: &[(&str, &str)] = &[
    ("default", include_str!("../../keymaps/default.toml")),
    ("vim", include_str!("../../keymaps/vim.toml")),
];

/// Where a binding applies. Pane sections win over `global` while that pane has focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Global,
    Conversations,
    Memory,
    Providers,
    Findings,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::Global,
        Section::Conversations,
        Section::Memory,
        Section::Providers,
        Section::Findings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Global => "global",
            Section::Conversations => "conversations",
            Section::Memory => "memory",
            Section::Providers => "providers",
            Section::Findings => "findings",
        }
    }

    fn from_name(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A key with its modifiers, normalized so that `G`, `shift-g` and what the terminal reports
/// for Shift+G are the same binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyCombo {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeyCombo {
    pub fn new(code: KeyCode, modifiers: KeyModifiers) -> Self {
        let mut modifiers =
            modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            // The character already carries the shift; terminals differ on the flag.
            KeyCode::Char(c) => {
                modifiers.remove(KeyModifiers::SHIFT);
                if modifiers.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Self { code, modifiers }
    }

    pub fn from_event(event: &KeyEvent) -> Self {
        Self::new(event.code, event.modifiers)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        // "-" alone is a key; otherwise a trailing "-" would be an empty key name.
        while let Some((prefix, tail)) = rest.split_once('-') {
            if tail.is_empty() {
                break;
            }
            match prefix.to_ascii_lowercase().as_str() {
                "ctrl" | "c" => modifiers |= KeyModifiers::CONTROL,
                "alt" | "a" | "meta" | "m" => modifiers |= KeyModifiers::ALT,
                "shift" | "s" => modifiers |= KeyModifiers::SHIFT,
                _ => break,
            }
            rest = tail;
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "enter" | "return" | "ret" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" if modifiers.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" | "ins" => KeyCode::Insert,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            "minus" => KeyCode::Char('-'),
            _ if lower.len() > 1 && lower.starts_with('f') => match lower[1..].parse::<u8>() {
                Ok(n @ 1..=12) => KeyCode::F(n),
                _ => return Err(format!("unknown key name '{rest}'")),
            },
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        let c = if modifiers.contains(KeyModifiers::SHIFT)
                            && !modifiers.contains(KeyModifiers::CONTROL)
                        {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        };
                        KeyCode::Char(c)
                    }
                    _ => return Err(format!("unknown key name '{rest}'")),
                }
            }
        };
        Ok(Self::new(code, modifiers))
    }
}

impl fmt::Display for KeyCombo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub section: Section,
    pub key: KeyCombo,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    pub name: String,
    bindings: Vec<Binding>,
}

/// One parsed file: bindings to set, and keys to unbind (`"x" = "none"`).
#[derive(Debug, Default)]
struct KeymapLayer {
    set: Vec<Binding>,
    unset: Vec<(Section, KeyCombo)>,
}

fn parse_layer(source: &str, text: &str, diags: &mut Vec<Diagnostic>) -> KeymapLayer {
    use toml::de::{DeTable, DeValue};
    let mut layer = KeymapLayer::default();
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            diags.push(Diagnostic::from_toml(source, text, &e));
            return layer;
        }
    };
    let at =
        |offset: usize, message: String| Diagnostic::error(source, message).at(text, Some(offset));
    // The parsed table does not keep file order; walk it in file order so that "first on
    // line N" and the order of reported problems follow the file.
    let mut sections: Vec<_> = doc.get_ref().iter().collect();
    sections.sort_by_key(|(k, _)| k.span().start);
    for (section_key, section_value) in sections {
        let Some(section) = Section::from_name(section_key.get_ref()) else {
            diags.push(at(
                section_key.span().start,
                format!(
                    "unknown section [{}]; sections are {}",
                    section_key.get_ref(),
                    Section::ALL.map(Section::name).join(", ")
                ),
            ));
            continue;
        };
        let DeValue::Table(entries) = section_value.get_ref() else {
            diags.push(at(
                section_key.span().start,
                format!(
                    "[{}] must be a table of \"key\" = \"action\"",
                    section.name()
                ),
            ));
            continue;
        };
        let mut seen: Vec<(KeyCombo, usize)> = Vec::new();
        let mut entries: Vec<_> = entries.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (key_text, value) in entries {
            let key = match KeyCombo::parse(key_text.get_ref()) {
                Ok(k) => k,
                Err(e) => {
                    diags.push(at(key_text.span().start, e));
                    continue;
                }
            };
            let line = crate::config::line_col(text, key_text.span().start).0;
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                diags.push(at(
                    key_text.span().start,
                    format!(
                        "key '{key}' is bound twice in [{}] (first on line {first})",
                        section.name()
                    ),
                ));
                continue;
            }
            seen.push((key, line));
            let DeValue::String(action_name) = value.get_ref() else {
                diags.push(at(
                    value.span().start,
                    format!("the action for '{key}' must be a string such as \"quit\""),
                ));
                continue;
            };
            if action_name == "none" {
                layer.unset.push((section, key));
                continue;
            }
            match Action::from_name(action_name) {
                Some(action) => layer.set.push(Binding {
                    section,
                    key,
                    action,
                }),
                None => diags.push(at(
                    value.span().start,
                    format!(
                        "unknown action '{action_name}'; see the command palette (:) or \
                         docs/architecture.md for the list"
                    ),
                )),
            }
        }
    }
    layer
}

impl Keymap {
    /// A built-in keymap, with no user file.
    pub fn builtin(name: &str) -> Option<Self> {
        let text = BUILTIN_KEYMAPS.iter().find(|(n, _)| *n == name)?.1;
        let mut diags = Vec::new();
        let layer = parse_layer(&format!("built-in keymap {name}"), text, &mut diags);
        let mut keymap = Keymap {
            name: name.to_string(),
            bindings: Vec::new(),
        };
        keymap.apply(layer);
        Some(keymap)
    }

    /// Load keymap `name`: the built-in of that name (or `default`), then
    /// `<dir>/<name>.toml` over it. Problems are returned; the keymap is always usable.
    pub fn load(name: &str, user_dir: &Path) -> (Self, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let user = super::user_file("keymap", name, user_dir, &mut diags);
        let base = if BUILTIN_KEYMAPS.iter().any(|(n, _)| *n == user.name) {
            user.name.as_str()
        } else {
            if !user.path.exists() {
                diags.push(Diagnostic::error(
                    "keymap",
                    format!(
                        "no keymap '{}': built-ins are default and vim, or create {}",
                        user.name,
                        user.path.display()
                    ),
                ));
            }
            "default"
        };
        let mut keymap = Keymap::builtin(base).unwrap_or_else(|| Keymap {
            name: base.into(),
            bindings: Vec::new(),
        });
        keymap.name = user.name.clone();
        if let Some((source, text)) = &user.text {
            let layer = parse_layer(source, text, &mut diags);
            keymap.apply(layer);
        }
        (keymap, diags)
    }

    fn apply(&mut self, layer: KeymapLayer) {
        for (section, key) in layer.unset {
            self.bindings
                .retain(|b| !(b.section == section && b.key == key));
        }
        for binding in layer.set {
            self.bindings
                .retain(|b| !(b.section == binding.section && b.key == binding.key));
            self.bindings.push(binding);
        }
    }

    /// The action for a key: the focused pane's section first, then `global`.
    pub fn action_for(&self, section: Section, key: KeyCombo) -> Option<Action> {
        let find = |s: Section| {
            self.bindings
                .iter()
                .find(|b| b.section == s && b.key == key)
                .map(|b| b.action)
        };
        find(section).or_else(|| find(Section::Global))
    }

    /// Keys bound to `action` in `section`, in the order the file gives them.
    pub fn keys_for(&self, section: Section, action: Action) -> Vec<KeyCombo> {
        self.bindings
            .iter()
            .filter(|b| b.section == section && b.action == action)
            .map(|b| b.key)
            .collect()
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The first key that triggers `action` from `section` (own section, else global).
    pub fn hint(&self, section: Section, action: Action) -> Option<KeyCombo> {
        self.keys_for(section, action)
            .into_iter()
            .next()
            .or_else(|| self.keys_for(Section::Global, action).into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_keymap_parses_without_diagnostics() {
        for (name, text) in BUILTIN_KEYMAPS {
            let mut diags = Vec::new();
            let layer = parse_layer(name, text, &mut diags);
            assert!(diags.is_empty(), "{name}: {diags:?}");
            assert!(!layer.set.is_empty());
        }
    }

    #[test]
    fn every_action_is_reachable_by_some_key_in_every_shipped_keymap() {
        for (name, _) in BUILTIN_KEYMAPS {
            let keymap = Keymap::builtin(name).unwrap();
            for action in Action::ALL {
                assert!(
                    keymap.bindings().iter().any(|b| b.action == *action),
                    "{name}: {} has no key",
                    action.name()
                );
            }
            for quit in ["q", "ctrl-c"] {
                assert_eq!(
                    keymap.action_for(Section::Global, KeyCombo::parse(quit).unwrap()),
                    Some(Action::Quit),
                    "{name}: {quit}"
                );
            }
        }
    }

    #[test]
    fn duplicate_binding_in_one_section_fails() {
        let text = "[global]\n\"ctrl-p\" = \"open-palette\"\n\"C-p\" = \"quit\"\n";
        let mut diags = Vec::new();
        parse_layer("test.toml", text, &mut diags);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].line, Some(3));
        assert!(diags[0].message.contains("bound twice"));

        let text = "[global]\nG = \"select-last\"\n\"shift-g\" = \"quit\"\n";
        let mut diags = Vec::new();
        parse_layer("test.toml", text, &mut diags);
        assert_eq!(diags.len(), 1, "G and shift-g are one key: {diags:?}");
    }

    #[test]
    fn unknown_actions_keys_and_sections_are_reported_with_lines() {
        let text = "[global]\nq = \"quit\"\nx = \"explode\"\n\"hyper-q\" = \"quit\"\n[nowhere]\na = \"quit\"\n";
        let mut diags = Vec::new();
        let layer = parse_layer("user.toml", text, &mut diags);
        let lines: Vec<_> = diags.iter().map(|d| d.line.unwrap()).collect();
        assert_eq!(lines, vec![3, 4, 5], "{diags:?}");
        assert!(diags[0].message.contains("explode"));
        assert_eq!(layer.set.len(), 1, "the good binding still applies");
    }

    #[test]
    fn user_file_overrides_only_what_it_sets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("default.toml"),
            "[global]\nx = \"quit\"\nq = \"none\"\n",
        )
        .unwrap();
        let (keymap, diags) = Keymap::load("default", dir.path());
        assert!(diags.is_empty(), "{diags:?}");
        let key = |k: &str| KeyCombo::parse(k).unwrap();
        assert_eq!(
            keymap.action_for(Section::Global, key("x")),
            Some(Action::Quit)
        );
        assert_eq!(
            keymap.action_for(Section::Global, key("q")),
            None,
            "unbound"
        );
        assert_eq!(
            keymap.action_for(Section::Global, key("tab")),
            Some(Action::FocusNext),
            "untouched defaults remain"
        );
    }

    #[test]
    fn missing_keymap_falls_back_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (keymap, diags) = Keymap::load("emacs", dir.path());
        assert!(diags[0].is_error());
        assert!(!keymap.bindings().is_empty());
        let (_, diags) = Keymap::load("../../x", dir.path());
        assert!(diags[0].message.contains("not valid"));
    }

    #[test]
    fn terminal_events_match_parsed_keys() {
        let key = |code, mods| KeyCombo::from_event(&KeyEvent::new(code, mods));
        assert_eq!(
            key(KeyCode::Char('G'), KeyModifiers::SHIFT),
            KeyCombo::parse("G").unwrap()
        );
        assert_eq!(
            key(KeyCode::BackTab, KeyModifiers::SHIFT),
            KeyCombo::parse("shift-tab").unwrap()
        );
        assert_eq!(
            key(KeyCode::Char('p'), KeyModifiers::CONTROL),
            KeyCombo::parse("ctrl-p").unwrap()
        );
        assert_eq!(KeyCombo::parse("ctrl-p").unwrap().to_string(), "ctrl-p");
        assert_eq!(KeyCombo::parse("-").unwrap().code, KeyCode::Char('-'));
        assert_eq!(KeyCombo::parse("f5").unwrap().code, KeyCode::F(5));
    }
}
