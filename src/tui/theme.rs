//! Themes: semantic style names (`findings.severity.critical`) mapped to styles, from TOML
//! files compiled in from `themes/`, with user files in `<state>/themes/` overriding only the
//! names they set. UI code asks for a name, never for a colour.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

use crate::config::Diagnostic;

pub const BUILTIN_THEMES: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("basic", include_str!("../../themes/basic.toml")),
];

#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    styles: HashMap<String, Style>,
    /// NO_COLOR: colours dropped, emphasis kept.
    no_color: bool,
}

/// One parsed file: its parent (if any) and its styles.
struct ThemeLayer {
    inherits: Option<String>,
    styles: Vec<(String, Style)>,
}

fn parse_modifier(name: &str) -> Option<Modifier> {
    Some(match name {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" | "underline" => Modifier::UNDERLINED,
        "reversed" | "reverse" => Modifier::REVERSED,
        "crossed_out" | "crossed-out" => Modifier::CROSSED_OUT,
        "slow_blink" => Modifier::SLOW_BLINK,
        "hidden" => Modifier::HIDDEN,
        _ => return None,
    })
}

fn parse_layer(source: &str, text: &str, diags: &mut Vec<Diagnostic>) -> ThemeLayer {
    use toml::de::{DeTable, DeValue};
    let mut layer = ThemeLayer {
        inherits: None,
        styles: Vec::new(),
    };
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            diags.push(Diagnostic::from_toml(source, text, &e));
            return layer;
        }
    };
    let at =
        |offset: usize, message: String| Diagnostic::error(source, message).at(text, Some(offset));
    let color =
        |value: &toml::Spanned<DeValue<'_>>, diags: &mut Vec<Diagnostic>| match value.get_ref() {
            DeValue::String(s) => match Color::from_str(s) {
                Ok(c) => Some(c),
                Err(_) => {
                    diags.push(at(
                        value.span().start,
                        format!(
                            "bad colour '{s}': use a name (red, lightblue, gray, ...), \
                         #rrggbb, or an index 0-255"
                        ),
                    ));
                    None
                }
            },
            _ => {
                diags.push(at(value.span().start, "a colour must be a string".into()));
                None
            }
        };
    // Walk in file order so problems are reported top to bottom.
    let mut top: Vec<_> = doc.get_ref().iter().collect();
    top.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in top {
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("name", _) => {}
            ("inherits", DeValue::String(parent)) => layer.inherits = Some(parent.to_string()),
            ("styles", DeValue::Table(styles)) => {
                let mut styles: Vec<_> = styles.iter().collect();
                styles.sort_by_key(|(k, _)| k.span().start);
                for (scope, spec) in styles {
                    let mut style = Style::default();
                    match spec.get_ref() {
                        DeValue::String(_) => match color(spec, diags) {
                            Some(c) => style = style.fg(c),
                            None => continue,
                        },
                        DeValue::Table(fields) => {
                            let mut ok = true;
                            for (field, v) in fields {
                                match (field.get_ref().as_ref(), v.get_ref()) {
                                    ("fg", _) => match color(v, diags) {
                                        Some(c) => style = style.fg(c),
                                        None => ok = false,
                                    },
                                    ("bg", _) => match color(v, diags) {
                                        Some(c) => style = style.bg(c),
                                        None => ok = false,
                                    },
                                    ("modifiers", DeValue::Array(items)) => {
                                        for item in items {
                                            match item.get_ref() {
                                                DeValue::String(m) => match parse_modifier(m) {
                                                    Some(m) => style = style.add_modifier(m),
                                                    None => {
                                                        ok = false;
                                                        diags.push(at(
                                                            item.span().start,
                                                            format!(
                                                                "unknown modifier '{m}': use bold, dim, \
                                                                 italic, underlined, reversed, crossed_out"
                                                            ),
                                                        ));
                                                    }
                                                },
                                                _ => {
                                                    ok = false;
                                                    diags.push(at(
                                                        item.span().start,
                                                        "a modifier must be a string".into(),
                                                    ));
                                                }
                                            }
                                        }
                                    }
                                    (other, _) => {
                                        ok = false;
                                        diags.push(at(
                                            field.span().start,
                                            format!(
                                                "unknown style field '{other}': use fg, bg, modifiers"
                                            ),
                                        ));
                                    }
                                }
                            }
                            if !ok {
                                continue;
                            }
                        }
                        _ => {
                            diags.push(at(
                                spec.span().start,
                                "a style is a colour string or { fg, bg, modifiers }".into(),
                            ));
                            continue;
                        }
                    }
                    layer.styles.push((scope.get_ref().to_string(), style));
                }
            }
            (other, _) => diags.push(at(
                key.span().start,
                format!("unknown theme key '{other}': use name, inherits, [styles]"),
            )),
        }
    }
    layer
}

impl Theme {
    pub fn builtin(name: &str) -> Option<Self> {
        let text = BUILTIN_THEMES.iter().find(|(n, _)| *n == name)?.1;
        let mut diags = Vec::new();
        let layer = parse_layer(&format!("built-in theme {name}"), text, &mut diags);
        let mut theme = match layer.inherits.as_deref() {
            Some(parent) if parent != name => Theme::builtin(parent)?,
            _ => Theme {
                name: name.into(),
                styles: HashMap::new(),
                no_color: false,
            },
        };
        theme.name = name.into();
        theme.styles.extend(layer.styles);
        Some(theme)
    }

    /// Load theme `name`: built-in of that name, else a user file (which may `inherits` a
    /// built-in), with `<dir>/<name>.toml` overriding what it sets. Always usable.
    pub fn load(name: &str, user_dir: &Path, no_color: bool) -> (Self, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let user = super::user_file("theme", name, user_dir, &mut diags);
        let (name, user_file) = (user.name.as_str(), &user.path);
        let user_layer = user
            .text
            .as_ref()
            .map(|(source, text)| parse_layer(source, text, &mut diags));
        let base_name = if BUILTIN_THEMES.iter().any(|(n, _)| *n == name) {
            name.to_string()
        } else if let Some(parent) = user_layer.as_ref().and_then(|l| l.inherits.clone()) {
            if BUILTIN_THEMES.iter().any(|(n, _)| *n == parent) {
                parent
            } else {
                diags.push(Diagnostic::error(
                    user_file.display().to_string(),
                    format!(
                        "inherits unknown theme '{parent}'; built-ins are default, light, basic"
                    ),
                ));
                "default".into()
            }
        } else {
            if user_layer.is_none() {
                diags.push(Diagnostic::error(
                    "theme",
                    format!(
                        "no theme '{name}': built-ins are default, light and basic, or create {}",
                        user_file.display()
                    ),
                ));
            }
            "default".into()
        };
        let mut theme = Theme::builtin(&base_name).unwrap_or_else(|| Theme {
            name: base_name.clone(),
            styles: HashMap::new(),
            no_color: false,
        });
        theme.name = name.to_string();
        if let Some(layer) = user_layer {
            theme.styles.extend(layer.styles);
        }
        theme.no_color = no_color;
        (theme, diags)
    }

    /// The style for a semantic name, falling back to its parents:
    /// `findings.severity.critical` -> `findings.severity` -> `findings` -> `ui.text`.
    pub fn style(&self, scope: &str) -> Style {
        let mut name = scope;
        let style = loop {
            if let Some(style) = self.styles.get(name) {
                break *style;
            }
            match name.rfind('.') {
                Some(i) => name = &name[..i],
                None => break self.styles.get("ui.text").copied().unwrap_or_default(),
            }
        };
        if self.no_color {
            strip_colors(style)
        } else {
            style
        }
    }

    pub fn no_color(&self) -> bool {
        self.no_color
    }

    #[cfg(test)]
    fn styles(&self) -> impl Iterator<Item = (&String, &Style)> {
        self.styles.iter()
    }
}

/// Drop colours but keep what they meant: a background highlight becomes reverse video.
fn strip_colors(style: Style) -> Style {
    let mut plain = Style::default()
        .add_modifier(style.add_modifier)
        .remove_modifier(style.sub_modifier);
    if style.bg.is_some_and(|bg| bg != Color::Reset) {
        plain = plain.add_modifier(Modifier::REVERSED);
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names the UI asks for; every shipped theme must define each (or a parent of it).
    const REQUIRED: &[&str] = &[
        "ui.text",
        "ui.text.dim",
        "ui.border",
        "ui.border.focused",
        "ui.title",
        "ui.title.focused",
        "ui.tabs",
        "ui.tabs.active",
        "ui.statusbar",
        "ui.statusbar.accent",
        "ui.selection",
        "ui.popup",
        "ui.popup.border",
        "ui.key",
        "ui.heading",
        "ui.notice.error",
        "ui.notice.warn",
        "health.ok",
        "health.fail",
        "findings.severity.critical",
        "findings.severity.warn",
        "findings.severity.info",
        "ui.statusbar.warn",
        "ui.match",
        "providers.key.set",
        "providers.key.missing",
        "memory.value",
        "memory.status",
        "memory.status.warn",
        "memory.progress",
        "memory.input",
        "memory.match",
        "memory.score",
        "memory.source",
        "memory.node",
        "memory.edge",
        "memory.edge.filter",
        "memory.crumb",
        "memory.crumb.current",
        "conversations.hint",
    ];

    #[test]
    fn every_shipped_theme_parses_and_defines_what_the_ui_uses() {
        for (name, text) in BUILTIN_THEMES {
            let mut diags = Vec::new();
            parse_layer(name, text, &mut diags);
            assert!(diags.is_empty(), "{name}: {diags:?}");
            let theme = Theme::builtin(name).unwrap();
            for scope in REQUIRED {
                assert!(
                    theme.styles.contains_key(*scope),
                    "{name} does not define {scope}"
                );
            }
        }
    }

    #[test]
    fn basic_theme_uses_only_the_16_ansi_colours() {
        let theme = Theme::builtin("basic").unwrap();
        for (scope, style) in theme.styles() {
            for color in [style.fg, style.bg].into_iter().flatten() {
                assert!(
                    !matches!(color, Color::Rgb(..) | Color::Indexed(_)),
                    "basic: {scope} uses {color:?}"
                );
            }
        }
    }

    #[test]
    fn lookup_falls_back_to_parent_scopes() {
        let theme = Theme::builtin("default").unwrap();
        assert_eq!(
            theme.style("findings.severity.critical.extra"),
            theme.style("findings.severity.critical")
        );
        assert_eq!(theme.style("nothing.here"), theme.style("ui.text"));
    }

    #[test]
    fn no_color_keeps_emphasis_and_turns_highlights_into_reverse() {
        let (theme, _) = Theme::load("default", Path::new("/nonexistent"), true);
        let selection = theme.style("ui.selection");
        assert_eq!(selection.fg, None);
        assert_eq!(selection.bg, None);
        assert!(selection.add_modifier.contains(Modifier::REVERSED));
        let critical = theme.style("findings.severity.critical");
        assert_eq!(critical.fg, None);
        assert!(critical.add_modifier.contains(Modifier::BOLD));
        // Search terms and the active edge filter stay visible without colour.
        let term = theme.style("memory.match");
        assert_eq!(term.fg, None);
        assert!(term.add_modifier.contains(Modifier::UNDERLINED));
        let filter = theme.style("memory.edge.filter");
        assert!(filter.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn bad_colours_and_fields_are_reported_with_lines() {
        let text = "[styles]\n\"ui.text\" = \"blurple\"\n\"ui.border\" = { fg = \"red\", shade = 3 }\n\"ui.key\" = { modifiers = [\"sparkly\"] }\n\"ui.title\" = \"#00ff00\"\n";
        let mut diags = Vec::new();
        let layer = parse_layer("mine.toml", text, &mut diags);
        let lines: Vec<_> = diags.iter().map(|d| d.line.unwrap()).collect();
        assert_eq!(lines, vec![2, 3, 4], "{diags:?}");
        assert_eq!(layer.styles.len(), 1, "the good style still applies");
    }

    #[test]
    fn user_theme_overrides_only_what_it_sets_and_can_inherit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("default.toml"),
            "[styles]\n\"ui.text\" = \"magenta\"\n",
        )
        .unwrap();
        let (theme, diags) = Theme::load("default", dir.path(), false);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(theme.style("ui.text").fg, Some(Color::Magenta));
        let builtin = Theme::builtin("default").unwrap();
        assert_eq!(theme.style("ui.border"), builtin.style("ui.border"));

        std::fs::write(
            dir.path().join("mine.toml"),
            "inherits = \"basic\"\n[styles]\n\"ui.key\" = \"red\"\n",
        )
        .unwrap();
        let (theme, diags) = Theme::load("mine", dir.path(), false);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(theme.style("ui.key").fg, Some(Color::Red));
        let basic = Theme::builtin("basic").unwrap();
        assert_eq!(theme.style("ui.border"), basic.style("ui.border"));
    }
}
