//! Secrets are stored as references (`env:NAME`, `file:PATH`), never as values.
//!
//! A `SecretRef` resolves on demand and never prints what it resolves to: its `Debug`,
//! `Display` and `Serialize` show the reference, or `<redacted>` for an inline value someone
//! pasted into a file by mistake.

use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const REDACTED: &str = "<redacted>";

#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:NAME`: read from the environment when needed.
    Env(String),
    /// `file:PATH`: read from a file (first line, trimmed) when needed.
    File(PathBuf),
    /// A literal value in a config file. Accepted so that a mistake does not lock the user
    /// out, but reported as a warning, and never shown.
    Inline(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("secret file {path} cannot be read: {reason}")]
    FileUnreadable { path: String, reason: String },
    #[error("secret reference {0} resolves to an empty value")]
    Empty(String),
}

impl SecretRef {
    pub fn parse(raw: &str) -> Self {
        if let Some(name) = raw.strip_prefix("env:") {
            SecretRef::Env(name.trim().to_string())
        } else if let Some(path) = raw.strip_prefix("file:") {
            SecretRef::File(PathBuf::from(path.trim()))
        } else {
            SecretRef::Inline(raw.to_string())
        }
    }

    pub fn is_inline(&self) -> bool {
        matches!(self, SecretRef::Inline(_))
    }

    /// The reference as a user may see it; never the secret itself.
    pub fn display_ref(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("env:{name}"),
            SecretRef::File(path) => format!("file:{}", path.display()),
            SecretRef::Inline(_) => REDACTED.to_string(),
        }
    }

    /// Whether the secret can be resolved now, without returning it.
    pub fn is_available(&self) -> Result<(), SecretError> {
        self.resolve().map(|_| ())
    }

    /// The secret value. Callers must not log or display it.
    pub fn resolve(&self) -> Result<String, SecretError> {
        let value = match self {
            SecretRef::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::EnvMissing(name.clone()))?
            }
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map_err(|e| SecretError::FileUnreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            SecretRef::Inline(value) => value.clone(),
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(SecretError::Empty(self.display_ref()));
        }
        Ok(value)
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({})", self.display_ref())
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_ref())
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.display_ref())
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(SecretRef::parse(&raw))
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A reference to a secret: `env:NAME` or `file:PATH`.",
            "pattern": "^(env|file):.+"
        })
    }
}

/// A URL as it may be shown: any password in it and the query string's values replaced,
/// since keys are sometimes passed as `https://user:KEY@host` or `?api-key=KEY`.
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut shown = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or_default();
                    format!("{user}:{REDACTED}@{host}")
                }
                None => authority.to_string(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => before_query.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}={REDACTED}"),
                None => pair.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

pub(crate) fn serialize_redacted_url<S: Serializer>(
    url: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_str(&redact_url(url)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_passwords_and_query_values() {
        assert_eq!(
            redact_url("https://user:hunter2@host:8443/v1?api-key=X&mode=fast"),
            "https://user:<redacted>@host:8443/v1?api-key=<redacted>&mode=<redacted>"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:11434"),
            "http://127.0.0.1:11434"
        );
        assert_eq!(redact_url("https://host/v1"), "https://host/v1");
    }

    #[test]
    fn inline_values_never_print() {
        let secret = SecretRef::parse("sk-live-123456");
        assert!(secret.is_inline());
        assert!(!format!("{secret:?}").contains("sk-live"));
        assert!(!secret.to_string().contains("sk-live"));
        let json = serde_json::to_string(&secret).unwrap();
        assert!(!json.contains("sk-live"), "{json}");
    }

    #[test]
    fn env_reference_resolves_and_reports_missing() {
        let secret = SecretRef::parse("env:OPENCLAW_RS_TEST_SURELY_UNSET_VAR");
        assert_eq!(
            secret.display_ref(),
            "env:OPENCLAW_RS_TEST_SURELY_UNSET_VAR"
        );
        assert_eq!(
            secret.is_available(),
            Err(SecretError::EnvMissing(
                "OPENCLAW_RS_TEST_SURELY_UNSET_VAR".into()
            ))
        );
    }

    #[test]
    fn file_reference_reads_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "abc\nignored\n").unwrap();
        let secret = SecretRef::parse(&format!("file:{}", path.display()));
        assert_eq!(secret.resolve().unwrap(), "abc");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(secret.resolve(), Err(SecretError::Empty(_))));
    }
}
