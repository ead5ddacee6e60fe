//! Recognizing secrets in text, to report where they are without ever showing them.

use std::sync::LazyLock;

use regex::Regex;

/// A kind of secret and the pattern that finds it. Patterns are ASCII-only and anchored on
/// the shapes providers document, so ordinary prose does not match.
struct Rule {
    id: &'static str,
    pattern: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        id: "pem_private_key",
        pattern: r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----",
    },
    Rule {
        id: "aws_access_key",
        pattern: r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    },
    Rule {
        id: "github_token",
        pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b",
    },
    Rule {
        id: "gitlab_token",
        pattern: r"\bglpat-[A-Za-z0-9_-]{20,}\b",
    },
    Rule {
        id: "anthropic_key",
        pattern: r"\bsk-ant-[A-Za-z0-9_-]{20,}",
    },
    Rule {
        id: "openai_key",
        pattern: r"\bsk-(?:proj-|live-|svcacct-)?[A-Za-z0-9_-]{20,}",
    },
    Rule {
        id: "jwt",
        pattern: r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    },
];

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
