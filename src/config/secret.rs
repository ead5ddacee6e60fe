//! Secrets are stored as references (`env:NAME`, `file:PATH`), never as values.
//!
//! A `SecretRef` resolves on demand and never prints what it resolves to: its `Debug`,
//! `Display` and `Serialize` show the reference, or `<redacted>` for an inline value someone
//! pasted into a file by mistake.

use std::fmt;
use std::path::PathBuf;

use reqwest::Url;
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

/// A URL as it may be shown: its password (or a lone user name, which is often a token), the
/// values of its query string and its fragment replaced, since keys are passed as
/// `https://user:KEY@host`, `https://KEY@host`, `?api-key=KEY` or `#access_token=KEY`.
///
/// The text is read by the `url` crate (as `reqwest::Url`: the very parser and version the
/// HTTP client uses), so the parts hidden are the parts that would be sent as credentials
/// however the text is written (an `@` or `:` in a
/// password, backslashes, IPv6 hosts). Text that is not a URL with a host (no scheme, a bad
/// port, garbage) is shown with everything before its last `@`, its query values and its
/// fragment hidden.
pub fn redact_url(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) if url.has_host() => redact_parsed(&url, text),
        _ => redact_unparsed(text),
    }
}

fn redact_parsed(url: &Url, text: &str) -> String {
    let mut shown = format!("{}://", url.scheme());
    match (url.username(), url.password()) {
        ("", None) => {}
        (user, Some(_)) => shown.push_str(&format!("{user}:{REDACTED}@")),
        // A user name alone is often the key itself (`https://TOKEN@host`).
        (_, None) => shown.push_str(&format!("{REDACTED}@")),
    }
    shown.push_str(url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    // `url` gives a URL without a path the path "/"; it is shown only when it was written.
    let written = text.split(['?', '#']).next().unwrap_or_default();
    if url.path() != "/" || written.trim_end().ends_with(['/', '\\']) {
        shown.push_str(url.path());
    }
    if let Some(query) = url.query() {
        shown.push('?');
        shown.push_str(&redact_query(query));
    }
    if let Some(fragment) = url.fragment() {
        shown.push('#');
        if !fragment.is_empty() {
            shown.push_str(REDACTED);
        }
    }
    shown
}

/// Not a URL `url` reads with a host: hide what could be credentials without knowing where
/// the authority ends.
fn redact_unparsed(text: &str) -> String {
    let (before_fragment, fragment) = match text.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (text, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (before_fragment, None),
    };
    let mut shown = match base.rfind('@') {
        Some(at) => {
            let start = base
                .find("://")
                .map(|i| i + 3)
                .filter(|&s| s <= at)
                .unwrap_or(0);
            format!("{}{REDACTED}{}", &base[..start], &base[at..])
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        shown.push('?');
        shown.push_str(&redact_query(query));
    }
    if let Some(fragment) = fragment {
        shown.push('#');
        if !fragment.is_empty() {
            shown.push_str(REDACTED);
        }
    }
    shown
}

/// Each `name=value` pair keeps its name; a bare item (`?KEY`) may be a key, so it goes whole.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}={REDACTED}"),
            None if pair.is_empty() => String::new(),
            None => REDACTED.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
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

    /// Each case: the text, what is shown, and what must never be shown ("": nothing secret).
    const ADVERSARIAL: &[(&str, &str, &str)] = &[
        // `@` and `:` inside a password: the last `@` ends the userinfo.
        (
            "https://ada:p@ss:w0rd@host/v1",
            "https://ada:<redacted>@host/v1",
            "w0rd",
        ),
        // A `@` after the host is in the path: the userinfo is what comes before the host.
        (
            "https://ada:s3cret@host/a@b",
            "https://ada:<redacted>@host/a@b",
            "s3cret",
        ),
        // A lone user name is often the token itself.
        (
            "https://ghp_tok3n@github.example/x",
            "https://<redacted>@github.example/x",
            "tok3n",
        ),
        // An empty user with a password.
        ("https://:s3cret@host", "https://:<redacted>@host", "s3cret"),
        // IPv6 hosts keep their brackets and port.
        (
            "http://ada:s3cret@[fe80::1]:11434/v1",
            "http://ada:<redacted>@[fe80::1]:11434/v1",
            "s3cret",
        ),
        ("http://[::1]:8080", "http://[::1]:8080", ""),
        // Percent-encoded userinfo: hidden as written, never decoded into view.
        (
            "https://us%40er:p%3As%2Fs@host/",
            "https://us%40er:<redacted>@host/",
            "p%3As",
        ),
        // Query secrets, bare items, empty values and `=` inside a value.
        (
            "https://host/v1?key=s3cret&flag&=x&a=b=s3cret2&",
            "https://host/v1?key=<redacted>&<redacted>&=<redacted>&a=<redacted>&",
            "s3cret",
        ),
        // A token in the fragment (OAuth's implicit flow), also after a query.
        (
            "https://host/cb#access_token=s3cret",
            "https://host/cb#<redacted>",
            "s3cret",
        ),
        (
            "https://host/cb?state=1#access_token=s3cret",
            "https://host/cb?state=<redacted>#<redacted>",
            "s3cret",
        ),
        // A `?` inside the fragment belongs to the fragment.
        (
            "https://host/#a?b=s3cret",
            "https://host/#<redacted>",
            "s3cret",
        ),
        // Backslashes and a missing `//` are read as the HTTP client reads them.
        (
            "https:\\\\ada:s3cret@host\\v1",
            "https://ada:<redacted>@host/v1",
            "s3cret",
        ),
        (
            "http:ada:s3cret@host",
            "http://ada:<redacted>@host",
            "s3cret",
        ),
        // No scheme: not a URL with a host, so everything before the last `@` goes.
        (
            "ada:s3cret@host:8080/v1",
            "<redacted>@host:8080/v1",
            "s3cret",
        ),
        ("127.0.0.1:11434", "127.0.0.1:11434", ""),
        ("localhost:11434/v1", "localhost:11434/v1", ""),
        // A port that is no number: unparseable, still hidden.
        (
            "http://ada:s3/cret@host:port/v1?k=s3cret2",
            "http://<redacted>@host:port/v1?k=<redacted>",
            "s3",
        ),
        // Garbage.
        ("", "", ""),
        (
            "::::@@s3cret@?x#y",
            "<redacted>@?<redacted>#<redacted>",
            "s3cret",
        ),
        ("not a url", "not a url", ""),
    ];

    #[test]
    fn adversarial_urls_never_show_their_credentials() {
        for (text, shown, secret) in ADVERSARIAL {
            let got = redact_url(text);
            assert_eq!(&got, shown, "{text:?}");
            assert!(
                secret.is_empty() || !got.contains(secret),
                "{text:?} showed {secret:?}: {got}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever surrounds it, a password never comes through. (A `/`, `?` or `#` in a
        /// password ends the authority for the HTTP client too: the text is then another URL.)
        #[test]
        fn a_password_never_shows(
            scheme in "(https?|wss?|ftp|ollama)",
            user in "[a-z%0-9._~-]{0,8}",
            password in "[A-Z0-9@:%]{1,12}",
            host in "([a-z0-9.-]{1,12}|\\[[0-9a-f:]{2,12}\\]|[0-9.]{7,15})",
            rest in "(:[0-9]{1,5})?(/[a-z0-9/@:.%]{0,10})?(\\?[a-z=&%]{0,10})?(#[a-z]{0,5})?",
        ) {
            let secret = format!("PW{password}");
            let text = format!("{scheme}://{user}:{secret}@{host}{rest}");
            let shown = redact_url(&text);
            proptest::prop_assert!(!shown.contains(&secret), "{} -> {}", text, shown);
        }

        #[test]
        fn any_text_is_shown_without_a_panic(text in "\\PC{0,40}") {
            let _ = redact_url(&text);
        }
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
