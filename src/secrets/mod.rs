//! Recognizing secrets in text, to report where they are without ever showing them, and
//! redacting them ([`redact`]). Every layer that holds text from outside uses this: memory,
//! the sandbox's safety layer, the turn loop, logging, the audit.

pub mod redact;

use std::sync::LazyLock;

use regex::Regex;

/// A kind of secret and the pattern that decides it.
///
/// Patterns are ASCII-only, anchored on the shapes providers document so ordinary prose
/// does not match, and bounded: each stops where the text is certainly a secret (a GitHub
/// token at its 36th character), and the rest of the secret is the `then` class that
/// follows. Bounded patterns are what lets [`redact::StreamRedactor`] hold back a
/// bounded tail of a stream; every match of the open-ended shapes (`{36,}`) starts with a
/// match of these.
pub(crate) struct Rule {
    pub id: &'static str,
    pub pattern: &'static str,
    pub then: Continuation,
}

/// What belongs to a secret after its deciding prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continuation {
    /// `[0-9A-Z]`
    UpperDigits,
    /// `[A-Za-z0-9_]`
    Word,
    /// `[A-Za-z0-9_-]`
    WordDash,
    /// `[A-Za-z0-9_.-]`
    WordDashDot,
    /// `[A-Za-z0-9+/=_.~-]`: a generic value.
    GenericValue,
    /// Everything up to `-----END ` and the next `-----`, or to the end of the text.
    PemBlock,
}

impl Continuation {
    pub fn contains(self, b: u8) -> bool {
        match self {
            Continuation::UpperDigits => b.is_ascii_uppercase() || b.is_ascii_digit(),
            Continuation::Word => b.is_ascii_alphanumeric() || b == b'_',
            Continuation::WordDash => b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'),
            Continuation::WordDashDot => {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
            }
            Continuation::GenericValue => {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'+' | b'/' | b'=' | b'_' | b'.' | b'~' | b'-')
            }
            Continuation::PemBlock => false,
        }
    }
}

/// In order: at one position the first rule that matches wins.
pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "pem_private_key",
        pattern: r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----",
        then: Continuation::PemBlock,
    },
    Rule {
        id: "aws_access_key",
        pattern: r"\b(?:AKIA|ASIA)[0-9A-Z]{16}",
        then: Continuation::UpperDigits,
    },
    Rule {
        id: "github_token",
        pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40})",
        then: Continuation::Word,
    },
    Rule {
        id: "gitlab_token",
        pattern: r"\bglpat-[A-Za-z0-9_-]{20}",
        then: Continuation::WordDash,
    },
    Rule {
        id: "anthropic_key",
        pattern: r"\bsk-ant-[A-Za-z0-9_-]{20}",
        then: Continuation::WordDash,
    },
    Rule {
        id: "openai_key",
        pattern: r"\bsk-(?:proj-|live-|svcacct-)?[A-Za-z0-9_-]{20}",
        then: Continuation::WordDash,
    },
    // A JWT's header is unbounded, so a run of 257 characters after `eyJ` (base64 of `{"`)
    // counts without its `.eyJ`: a blob that long starting like JSON is hidden either way.
    Rule {
        id: "jwt",
        pattern: r"\beyJ(?:[A-Za-z0-9_-]{8,256}\.eyJ[A-Za-z0-9_-]{8}|[A-Za-z0-9_-]{257})",
        then: Continuation::WordDashDot,
    },
];

/// The rule id of high-entropy values of secret-named keys.
pub(crate) const GENERIC_RULE: &str = "generic_secret_assignment";
/// A secret-named key and its separator, ending where the value starts (`TOKEN=`,
/// `"api_key": "`, `password: `). Bounded like the rules: a name up to 64 characters
/// after its keyword, up to 16 spaces around the separator.
pub(crate) const GENERIC_CONTEXT: &str = r#"(?i-u)(?:key|token|secret|password|passwd|credential)[A-Za-z0-9_.-]{0,64}["']?\s{0,16}[:=]\s{0,16}["']?"#;
/// A generic value is at least this long...
pub(crate) const GENERIC_VALUE_MIN: usize = 16;
/// ...and judged random on at most its first this many bytes (the rest is swallowed).
pub(crate) const GENERIC_VALUE_CAP: usize = 64;

/// Random keys score high, words and paths low.
pub(crate) fn looks_random(value: &[u8]) -> bool {
    entropy(value) >= 3.5
}

static COMPILED: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    RULES
        .iter()
        .filter_map(|rule| Regex::new(rule.pattern).ok().map(|re| (rule.id, re)))
        .collect()
});

/// `key = "literal"` (or `'literal'`) where the key names a secret, anywhere on a line, so
/// inline tables are covered too: the value is what must not be shown.
static SECRET_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:^|[\s{,])["']?[A-Za-z0-9_.-]*(?:key|token|secret|password|passwd|credential)[A-Za-z0-9_.-]*["']?\s*=\s*)(?:"([^"\n]*)"|'([^'\n]*)')"#,
    )
    .expect("static pattern")
});

/// The password of `scheme://user:password@host`.
static URL_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(://[^/\s:@"']+:)[^@\s"'/]+@"#).expect("static pattern"));

/// Query-string values: `?api_key=…&sig=…`.
static URL_QUERY_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"([?&][A-Za-z0-9_.-]+=)[^&\s"'#]+"#).expect("static pattern"));

/// Where a secret was found: the rule and the 1-based line, never the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: &'static str,
    pub line: usize,
}

/// Every line of `text` that holds a recognizable secret.
pub fn scan(text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some((rule, _)) = COMPILED.iter().find(|(_, re)| re.is_match(line)) {
            hits.push(Hit { rule, line: n + 1 });
        }
    }
    hits
}

/// Bits of entropy per character.
fn entropy(text: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for b in text {
        counts[*b as usize] += 1;
    }
    let n = text.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Where a secret is in a text: the rule and the byte range of the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub rule: &'static str,
    pub range: std::ops::Range<usize>,
}

/// Every secret in `text` by byte range, exactly the ones [`redact::redact`]
/// replaces: the shaped rules with what follows them (a PEM key's whole block), and
/// high-entropy values of secret-named keys (`generic_secret_assignment`). Ranges do not
/// overlap and are in order.
pub fn find(text: &str) -> Vec<Match> {
    redact::find(text)
}

/// The text with literal values of secret-named keys replaced; references (`env:`, `file:`)
/// stay visible because they are not secrets.
pub fn redact_assignments(text: &str) -> String {
    let text = SECRET_ASSIGNMENT.replace_all(text, |caps: &regex::Captures<'_>| {
        let value = caps
            .get(2)
            .or_else(|| caps.get(3))
            .map_or("", |m| m.as_str());
        if value.starts_with("env:") || value.starts_with("file:") || value.is_empty() {
            caps[0].to_string()
        } else {
            format!("{}\"{}\"", &caps[1], crate::config::REDACTED)
        }
    });
    let text = URL_PASSWORD.replace_all(&text, format!("${{1}}{}@", crate::config::REDACTED));
    let text = URL_QUERY_VALUE.replace_all(&text, format!("${{1}}{}", crate::config::REDACTED));
    // Anything else that looks like a key, wherever it is.
    let mut text = text.into_owned();
    for (_, re) in COMPILED.iter() {
        text = re.replace_all(&text, crate::config::REDACTED).into_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_common_secret_shapes_by_line() {
        let text = "plain line\n\
                    key = AKIAABCDEFGHIJKLMNOP\n\
                    -----BEGIN OPENSSH PRIVATE KEY-----\n\
                    token ghp_abcdefghijklmnopqrstuvwxyz0123456789\n\
                    the word sk- alone is fine\n\
                    auth sk-ant-api03-abcdefghijklmnopqrstuv\n";
        let hits = scan(text);
        let lines: Vec<usize> = hits.iter().map(|h| h.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 6]);
        assert_eq!(hits[0].rule, "aws_access_key");
        assert_eq!(hits[3].rule, "anthropic_key");
    }

    #[test]
    fn assignments_are_redacted_but_references_stay() {
        let text = "api_key = \"sk-live-abcdefghijklmnopqrstuvwx\"\n\
                    other_token = \"hunter2\"\n\
                    api_key = \"env:OPENAI_API_KEY\"\n\
                    model = \"gpt\"\n\
                    note = \"uses AKIAABCDEFGHIJKLMNOP\"\n";
        let shown = redact_assignments(text);
        assert!(
            !shown.contains("sk-live") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(!shown.contains("AKIA"), "{shown}");
        assert!(shown.contains("env:OPENAI_API_KEY"));
        assert!(shown.contains("model = \"gpt\""));
    }

    #[test]
    fn find_gives_ranges_of_the_secret_only() {
        let text = "export GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789 ok\n\
                    db_password: Xk9qT2vLp8sWm4zRb7n\n\
                    api_key = \"env:OPENAI_API_KEY\"\n\
                    session_token = aaaaaaaaaaaaaaaaaaaa\n\
                    -----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----\nafter";
        let found = find(text);
        let rules: Vec<&str> = found.iter().map(|m| m.rule).collect();
        assert_eq!(
            rules,
            [
                "github_token",
                "generic_secret_assignment",
                "pem_private_key"
            ]
        );
        assert_eq!(
            &text[found[0].range.clone()],
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
        );
        assert!(text[found[1].range.clone()].starts_with("Xk9"));
        assert!(text[found[2].range.clone()].ends_with("-----END RSA PRIVATE KEY-----"));
    }

    #[test]
    fn inline_tables_single_quotes_and_urls_are_redacted() {
        let text = "providers.a = { kind = \"openai\", api_key = \"zzINLINEzz\" }\n\
                    api_key = 'zzSINGLEzz'\n\
                    base_url = \"http://bob:zzPASSzz@10.1.2.3:8080/v1?api_key=zzQUERYzz&mode=x\"\n";
        let shown = redact_assignments(text);
        for secret in ["zzINLINEzz", "zzSINGLEzz", "zzPASSzz", "zzQUERYzz"] {
            assert!(!shown.contains(secret), "{secret} shown in: {shown}");
        }
        assert!(shown.contains("kind = \"openai\""));
        assert!(shown.contains("http://bob:"));
    }
}
