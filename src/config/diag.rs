//! Diagnostics for user-editable files: where (file, line, column) and what to do.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warning,
    Error,
}

/// One problem found in a config, profile, theme or keymap file (or an environment variable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    pub level: Level,
    /// A file path, or `environment variable NAME`, or `built-in NAME`.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(source: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            level: Level::Error,
            source: source.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn warning(source: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            level: Level::Warning,
            ..Self::error(source, message)
        }
    }

    /// Attach the line and column of byte `offset` in `text`.
    pub fn at(mut self, text: &str, offset: Option<usize>) -> Self {
        if let Some(offset) = offset {
            let (line, column) = line_col(text, offset);
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }

    /// `file:line:col` as editors and terminals understand it.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.source),
            (Some(l), None) => format!("{}:{l}", self.source),
            _ => self.source.clone(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    /// A TOML parse or type error, located in `text`. Values are left out of the message:
    /// the value at fault may be a key pasted into the wrong place.
    pub fn from_toml(source: &str, text: &str, err: &toml::de::Error) -> Self {
        Diagnostic::error(source, hide_values(err.message().trim()))
            .at(text, err.span().map(|s| s.start))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Error => "error",
        };
        write!(f, "{level}: {}: {}", self.location(), self.message)
    }
}

/// Replace every double-quoted string in a parser message with `"…"`.
pub fn hide_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    if inside {
        out.push_str("…\"");
    }
    out
}

/// 1-based line and column (in characters) of byte `offset`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Byte offset of the key at dotted `path` (e.g. `["sandbox", "fuel"]`) in a TOML text, so that
/// warnings about keys (unknown, secret-looking) can point at the line the user must edit.
pub fn key_offset(text: &str, path: &[String]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = doc.get_ref();
    for (i, segment) in path.iter().enumerate() {
        let (key, value) = table.iter().find(|(k, _)| k.get_ref() == segment)?;
        if i + 1 == path.len() {
            return Some(key.span().start);
        }
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => return Some(key.span().start),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_handles_multibyte() {
        let text = "a = 1\nb = \"é\"\nc";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        let c = text.find('c').unwrap();
        assert_eq!(line_col(text, c), (3, 1));
        // Past the end clamps instead of panicking.
        assert_eq!(line_col(text, 10_000), (3, 2));
    }

    #[test]
    fn messages_never_quote_values() {
        assert_eq!(
            hide_values("invalid type: string \"sk-live-1\", expected u64"),
            "invalid type: string \"…\", expected u64"
        );
        assert_eq!(hide_values("unknown field `x`"), "unknown field `x`");
        assert_eq!(hide_values("dangling \"abc"), "dangling \"…\"");
    }

    #[test]
    fn key_offset_finds_nested_keys() {
        let text = "top = 1\n[sandbox]\nfuel = 3\n[providers.openai]\nmodel = \"x\"\n";
        let off = key_offset(text, &["sandbox".into(), "fuel".into()]).unwrap();
        assert_eq!(line_col(text, off), (3, 1));
        let off = key_offset(text, &["providers".into(), "openai".into(), "model".into()]).unwrap();
        assert_eq!(line_col(text, off).0, 5);
        assert!(key_offset(text, &["nope".into()]).is_none());
    }
}
