use proptest::prelude::*;
use regex::Regex;

use super::*;

const KEYS: &[(&str, &str)] = &[
    ("aws_access_key", "AKIAABCDEFGHIJKLMNOP"),
    ("github_token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    (
        "github_token",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    ),
    ("gitlab_token", "glpat-abcdefghijklmnopqrst"),
    ("openai_key", "sk-proj-abcdefghijklmnopqrstuvwx"),
    ("anthropic_key", "sk-ant-api03-abcdefghijklmnopqrstuv"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop",
    ),
    (
        "pem_private_key",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
    ),
];

/// Split `text` into pieces of 1 to 3 characters, the way a leaking model would send it.
fn pieces(text: &str, seed: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut n = seed;
    while i < chars.len() {
        let len = 1 + n % 3;
        n = n.wrapping_mul(31).wrapping_add(7);
        let end = (i + len).min(chars.len());
        out.push(chars[i..end].iter().collect());
        i = end;
    }
    out
}

fn stream(text_pieces: &[String], on_secret: SecretAction) -> (Vec<String>, StreamRedactor) {
    let mut r = StreamRedactor::new(on_secret);
    let mut out: Vec<String> = text_pieces.iter().map(|p| r.push(p)).collect();
    out.push(r.close());
    (out, r)
}

#[test]
fn every_shape_split_into_tiny_deltas_is_redacted_before_any_byte_leaves() {
    for seed in 0..5 {
        for (rule, key) in KEYS {
            let text = format!("before {key} after");
            let (out, _) = stream(&pieces(&text, seed), SecretAction::Redact);
            let joined = out.concat();
            assert_eq!(joined, format!("before [REDACTED:{rule}] after"), "{rule}");
            // No piece carries more than a few bytes of the secret: the secret's start
            // never appears in what was emitted.
            let head = &key[..4];
            assert!(
                out.iter()
                    .all(|p| !p.replace(&marker(rule), "").contains(head)),
                "{rule}: {out:?}"
            );
            assert_eq!(joined, redact(&text));
        }
    }
}

#[test]
fn prose_is_passed_on_at_once_and_only_a_possible_secret_is_held() {
    let mut r = StreamRedactor::new(SecretAction::Redact);
    assert_eq!(r.push("Hello, world. "), "Hello, world. ");
    assert_eq!(r.held(), 0);
    // `sk-` could become a key: held; a space proves it is not.
    assert_eq!(r.push("use sk-"), "use ");
    assert_eq!(r.held(), 3);
    assert_eq!(r.push("abc "), "sk-abc ");
    assert_eq!(r.held(), 0);
    // Not at a word start: `ask-` never becomes a key; its `-` could still open a PEM
    // header, until the next character says otherwise.
    assert_eq!(r.push("ask-"), "ask");
    assert_eq!(r.push("x"), "-x");
    assert_eq!(r.finish(), "");
}

#[test]
fn the_earlier_rule_wins_at_one_position_and_is_waited_for() {
    // `sk-ant-` + 13 characters is already an OpenAI-shaped key, but the Anthropic rule
    // could still match and is listed first.
    let text = "sk-ant-api03-abcdefghijklmnopqrstuv";
    assert_eq!(redact(text), "[REDACTED:anthropic_key]");
    let (out, _) = stream(&pieces(text, 1), SecretAction::Redact);
    assert_eq!(out.concat(), "[REDACTED:anthropic_key]");
    assert_eq!(
        redact("sk-abcdefghijklmnopqrstuvwxyz"),
        "[REDACTED:openai_key]"
    );
}

#[test]
fn a_secret_is_swallowed_to_its_end_and_a_pem_block_to_its_end_marker() {
    let long = format!("x ghp_{} y", "a".repeat(80));
    assert_eq!(redact(&long), "x [REDACTED:github_token] y");
    let pem = "k: -----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY----- done";
    assert_eq!(redact(pem), "k: [REDACTED:pem_private_key] done");
    let (out, _) = stream(&pieces(pem, 2), SecretAction::Redact);
    assert_eq!(out.concat(), "k: [REDACTED:pem_private_key] done");
    // No end marker: the rest of the text is the key.
    assert_eq!(
        redact("a -----BEGIN PRIVATE KEY-----\nMIIE never ends"),
        "a [REDACTED:pem_private_key]"
    );
}

#[test]
fn generic_values_of_secret_named_keys_are_redacted_but_words_are_not() {
    let text = "export DB_PASSWORD=Xk9qT2vLp8sWm4zRb7n; token: aaaaaaaaaaaaaaaaaaaa";
    let shown = redact(text);
    assert_eq!(
        shown,
        "export DB_PASSWORD=[REDACTED:generic_secret_assignment]; token: aaaaaaaaaaaaaaaaaaaa"
    );
    for seed in 0..4 {
        let (out, _) = stream(&pieces(text, seed), SecretAction::Redact);
        assert_eq!(out.concat(), shown);
    }
    let found = find(text);
    assert_eq!(found.len(), 1);
    assert_eq!(&text[found[0].range.clone()], "Xk9qT2vLp8sWm4zRb7n");
    // A quoted key, spaces around the separator, a quoted value: in prose, split anywhere.
    let json = "config {\"api_key\" :  \"Zq8vX2mL9pR4tW7yB3nK\"} and more words";
    let want = "config {\"api_key\" :  \"[REDACTED:generic_secret_assignment]\"} and more words";
    assert_eq!(redact(json), want);
    for seed in 0..4 {
        assert_eq!(
            stream(&pieces(json, seed), SecretAction::Redact).0.concat(),
            want
        );
    }
}

#[test]
fn json_stays_json_and_only_its_strings_change() {
    let args = r#"{"token":"ghp_abcdefghijklmnopqrstuvwxyz0123456789","n":1}"#;
    let shown = redact_json_text(args);
    let value: serde_json::Value = serde_json::from_str(&shown).expect("still JSON");
    assert_eq!(value["token"], "[REDACTED:github_token]");
    assert_eq!(value["n"], 1);
    // A PEM block without its end would swallow the closing quote as text; not as JSON.
    let pem = r#"{"k":"-----BEGIN PRIVATE KEY-----\nMIIE"}"#;
    let value: serde_json::Value =
        serde_json::from_str(&redact_json_text(pem)).expect("still JSON");
    assert_eq!(value["k"], "[REDACTED:pem_private_key]");
    assert_eq!(redact_json_text("{ \"a\": 1 }"), "{ \"a\": 1 }");
}

#[test]
fn block_stops_the_stream_at_the_secret_and_nothing_emitted_holds_it() {
    let text = "the token is ghp_abcdefghijklmnopqrstuvwxyz0123456789 and more text";
    let (out, r) = stream(&pieces(text, 0), SecretAction::Block);
    let joined = out.concat();
    assert_eq!(joined, "the token is ");
    assert_eq!(r.blocked(), Some("github_token"));
    assert_eq!(r.found(), ["github_token"]);
}

#[test]
fn multibyte_text_around_and_between_secrets_survives_any_split() {
    let text = "日本語 é🦀AKIAABCDEFGHIJKLMNOP🦀 ünï sk-proj-abcdefghijklmnopqrstuvwx—ok";
    let want = "日本語 é🦀[REDACTED:aws_access_key]🦀 ünï [REDACTED:openai_key]—ok";
    assert_eq!(redact(text), want);
    for seed in 0..6 {
        assert_eq!(
            stream(&pieces(text, seed), SecretAction::Redact).0.concat(),
            want
        );
    }
}

#[test]
fn the_hold_back_bound_is_the_longest_deciding_prefix_as_documented() {
    // docs/architecture.md states this number.
    assert_eq!(max_hold(), 271);
    let doc = include_str!("../../../docs/architecture.md");
    assert!(
        doc.contains("271 bytes"),
        "docs/architecture.md must state the bound"
    );
    // The JWT's longest undecided prefix is held, and no more.
    let mut r = StreamRedactor::new(SecretAction::Redact);
    let header = format!("eyJ{}", "a".repeat(256));
    r.push(&header);
    r.push(".eyJ1234567");
    assert_eq!(r.held(), 270);
    r.push("8");
    assert!(r.held() <= max_hold());
}

/// The documented shapes, open-ended, as the audit knew them: no output may match them.
fn documented_shapes() -> Vec<Regex> {
    [
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----",
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b",
        r"\bglpat-[A-Za-z0-9_-]{20,}\b",
        r"\bsk-ant-[A-Za-z0-9_-]{20,}",
        r"\bsk-(?:proj-|live-|svcacct-)?[A-Za-z0-9_-]{20,}",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("pattern"))
    .chain(
        secrets::RULES
            .iter()
            .map(|r| Regex::new(r.pattern).expect("pattern")),
    )
    .collect()
}

fn fragment() -> impl Strategy<Value = String> {
    let mut fixed: Vec<String> = KEYS.iter().map(|(_, k)| (*k).to_string()).collect();
    // Pieces of secrets, so near-misses and secrets glued to secrets are common.
    for (_, k) in KEYS {
        fixed.push(k[..k.len() / 2].to_string());
        fixed.push(k[k.len() / 3..].to_string());
    }
    fixed.extend(
        [
            " ",
            "\n",
            ".",
            "-",
            "_",
            "=",
            "\"",
            ": ",
            "token=",
            "api_key: \"",
            "password = ",
            "sk-",
            "ghp_",
            "eyJ",
            "AKIA",
            "-----END ",
            "-----",
            "é",
            "日本",
            "🦀",
            "\u{200b}",
            "the ",
            "key ",
        ]
        .iter()
        .map(|s| (*s).to_string()),
    );
    prop_oneof![
        3 => proptest::sample::select(fixed),
        1 => "[A-Za-z0-9_.+/=~-]{1,40}",
        1 => "[a-z ]{1,12}",
    ]
}

fn input_and_cuts() -> impl Strategy<Value = (String, Vec<usize>)> {
    (
        proptest::collection::vec(fragment(), 0..24),
        proptest::collection::vec(1usize..8, 1..64),
    )
        .prop_map(|(parts, cuts)| (parts.concat(), cuts))
}

/// `text` cut into pieces of the given character counts, cycling.
fn split(text: &str, cuts: &[usize]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < chars.len() {
        let end = (i + cuts[k % cuts.len()]).min(chars.len());
        out.push(chars[i..end].iter().collect());
        i = end;
        k += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_gives_the_one_shot_redaction_and_no_secret_shape(
        (text, cuts) in input_and_cuts()
    ) {
        let one_shot = redact(&text);
        let mut r = StreamRedactor::new(SecretAction::Redact);
        let mut streamed = String::new();
        for piece in split(&text, &cuts) {
            streamed.push_str(&r.push(&piece));
            prop_assert!(r.held() <= max_hold());
        }
        streamed.push_str(&r.finish());
        prop_assert_eq!(&streamed, &one_shot);
        for re in documented_shapes() {
            prop_assert!(!re.is_match(&streamed), "{} matches {:?}", re, streamed);
        }
        // find() and redact() agree: the ranges replaced by markers give the same text.
        let mut rebuilt = String::new();
        let mut last = 0;
        for m in find(&text) {
            rebuilt.push_str(&text[last..m.range.start]);
            rebuilt.push_str(&marker(m.rule));
            last = m.range.end;
        }
        rebuilt.push_str(&text[last..]);
        prop_assert_eq!(rebuilt, one_shot);
    }

    #[test]
    fn blocking_emits_a_prefix_of_the_text_that_holds_no_secret(
        (text, cuts) in input_and_cuts()
    ) {
        let mut r = StreamRedactor::new(SecretAction::Block);
        let mut streamed = String::new();
        for piece in split(&text, &cuts) {
            streamed.push_str(&r.push(&piece));
        }
        streamed.push_str(&r.close());
        let blocked = r.blocked();
        // Exactly the text before the first secret; all of it when there is none.
        match find(&text).first() {
            Some(first) => {
                prop_assert_eq!(&streamed, &text[..first.range.start]);
                prop_assert_eq!(blocked, Some(first.rule));
            }
            None => {
                prop_assert_eq!(&streamed, &text);
                prop_assert_eq!(blocked, None);
            }
        }
    }
}
