//! Redacting secrets from text that arrives in pieces: model deltas, reasoning, log lines.
//!
//! [`StreamRedactor`] takes text in any number of pieces and gives back, for each piece, the
//! text that is safe to pass on now. It holds back only the shortest tail that could still
//! grow into a secret, and never more than [`max_hold`] bytes (the longest a secret pattern's
//! deciding prefix can be), so a secret split over any number of deltas is replaced by its
//! marker (`[REDACTED:github_token]`) before any byte of it leaves. [`redact`] is the same
//! machine over one whole text: for any input split into any chunks, the concatenated
//! output equals `redact(input)` (the property `tests/secrets_never_leave.rs` and this
//! module's proptest check).
//!
//! The patterns are those of [`crate::secrets`], each cut to a bounded deciding prefix (the
//! point where the text is certainly a secret) followed by a continuation class that is
//! swallowed with it. A pattern that matched as far as its prefix is redacted even when the
//! original, open-ended pattern would have failed on what followed: the redactor errs
//! towards hiding. At one position, the earliest-listed rule that matches wins, and a rule
//! listed earlier that could still match is waited for.

use std::sync::LazyLock;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::start;
use regex_automata::util::syntax;
use regex_automata::{Anchored, MatchKind};

use super::{self as secrets, Continuation, GENERIC_RULE, GENERIC_VALUE_CAP, GENERIC_VALUE_MIN};
use crate::config::SecretAction;

/// The marker a secret is replaced with.
pub fn marker(rule: &str) -> String {
    format!("[REDACTED:{rule}]")
}

struct Compiled {
    id: &'static str,
    dfa: DFA,
    then: Continuation,
    max_len: usize,
}

static SHAPED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    secrets::RULES
        .iter()
        .filter_map(|rule| {
            // ASCII semantics throughout: `\b` is an ASCII word boundary, `(?i)` ASCII
            // folding, so every match is ASCII and ends on a character boundary.
            let syntax = syntax::Config::new().unicode(false).utf8(false);
            let dfa = DFA::builder()
                .configure(DFA::config().match_kind(MatchKind::LeftmostFirst))
                .syntax(syntax)
                .build(rule.pattern)
                .ok()?;
            let max_len = syntax::parse_with(rule.pattern, &syntax)
                .ok()?
                .properties()
                .maximum_len()?;
            Some(Compiled {
                id: rule.id,
                dfa,
                then: rule.then,
                max_len,
            })
        })
        .collect()
});

/// The bytes a shaped rule can start with, whatever comes before them: anything else is
/// plain text at once, without running a DFA.
static STARTS: LazyLock<[bool; 256]> = LazyLock::new(|| {
    let mut starts = [false; 256];
    for compiled in SHAPED.iter() {
        let mut cache = compiled.dfa.create_cache();
        // ASCII `\b` only asks whether the byte before is a word byte, none, or another.
        for look_behind in [None, Some(b' '), Some(b'a')] {
            let config = start::Config::new()
                .anchored(Anchored::Yes)
                .look_behind(look_behind);
            let Ok(sid) = compiled.dfa.start_state(&mut cache, &config) else {
                return [true; 256];
            };
            for b in 0..=255u8 {
                match compiled.dfa.next_state(&mut cache, sid, b) {
                    Ok(next) if next.is_dead() => {}
                    _ => starts[b as usize] = true,
                }
            }
        }
    }
    starts
});

/// A byte a generic context can end with (its last byte).
fn separator_byte(b: u8) -> bool {
    matches!(b, b':' | b'=' | b'"' | b'\'') || b.is_ascii_whitespace()
}

/// Whether a generic value could start after the text whose bytes `before` gives, last
/// first: the end of `GENERIC_CONTEXT` is `[:=]`, up to 16 spaces, an optional quote. A cheap
/// test before the context regex, which prose fails at nearly every word.
fn after_separator(mut before: impl Iterator<Item = u8>) -> bool {
    let mut b = before.next();
    if matches!(b, Some(b'"' | b'\'')) {
        b = before.next();
    }
    let mut spaces = 0;
    while spaces < 16 && b.is_some_and(|c| c.is_ascii_whitespace()) {
        spaces += 1;
        b = before.next();
    }
    matches!(b, Some(b':' | b'='))
}

/// What may stand before a generic secret's value: a secret-named key and its separator.
/// Matched against the end of the text already passed on.
static GENERIC_CONTEXT: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(&format!("{}\\z", secrets::GENERIC_CONTEXT)).expect("static pattern")
});

/// The longest text before a generic value that the context needs to see.
static CONTEXT_LEN: LazyLock<usize> = LazyLock::new(|| {
    syntax::parse_with(
        secrets::GENERIC_CONTEXT,
        &syntax::Config::new().unicode(false).utf8(false),
    )
    .ok()
    .and_then(|hir| hir.properties().maximum_len())
    .unwrap_or(256)
});

/// The most text a [`StreamRedactor`] ever holds back between calls, in bytes: the longest
/// deciding prefix of any rule (the JWT's, 271 bytes with today's rules).
pub fn max_hold() -> usize {
    SHAPED
        .iter()
        .map(|c| c.max_len)
        .chain([GENERIC_VALUE_CAP - 1])
        .max()
        .unwrap_or(0)
}

/// The text with every secret replaced by its marker.
pub fn redact(text: &str) -> String {
    let mut r = StreamRedactor::new(SecretAction::Redact);
    let mut out = r.push(text);
    out.push_str(&r.finish());
    out
}

/// Every string in a JSON document redacted (keys are left alone): a secret in a string
/// never spills over into the document's syntax.
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if !find(s).is_empty() => *s = redact(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// A JSON text (a tool call's arguments) with its secrets redacted, still JSON when it was:
/// each string is redacted on its own. Unchanged when it holds no secret.
pub fn redact_json_text(text: &str) -> String {
    if find(text).is_empty() {
        return text.to_string();
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) => {
            redact_json(&mut value);
            serde_json::to_string(&value).unwrap_or_else(|_| redact(text))
        }
        Err(_) => redact(text),
    }
}

/// Every secret in `text`, by rule and byte range, as [`redact`] sees them.
pub fn find(text: &str) -> Vec<secrets::Match> {
    let mut r = StreamRedactor::new(SecretAction::Redact);
    r.push(text);
    r.run(true);
    r.matches
}

enum Status {
    Dead,
    Alive,
    /// A match of this many bytes.
    Matched(usize),
}

enum Decision {
    Hold,
    Plain,
    Secret {
        rule: &'static str,
        len: usize,
        then: Continuation,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Scan,
    /// Swallowing the rest of a secret: bytes of the class belong to it.
    Continue(Continuation),
    /// Inside a PEM block: everything up to `-----END ` and the `-----` after it.
    Pem {
        seen_end: bool,
    },
}

/// A redactor over one stream of text. See the module documentation.
#[derive(Clone)]
pub struct StreamRedactor {
    action: SecretAction,
    /// Input not yet passed on or dropped.
    pending: String,
    /// Input bytes before `pending`, for match ranges.
    offset: usize,
    mode: Mode,
    /// The end of what was passed on (markers included): the look-behind of `\b` and the
    /// context of generic values.
    history: Vec<u8>,
    /// The last bytes of a PEM block, to find its end across pieces.
    pem_tail: Vec<u8>,
    caches: Vec<Cache>,
    matches: Vec<secrets::Match>,
    blocked: Option<&'static str>,
    closed: bool,
}

impl std::fmt::Debug for StreamRedactor {
    // Never the held text: it may be the start of a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRedactor")
            .field("held", &self.pending.len())
            .field("found", &self.found())
            .field("blocked", &self.blocked)
            .finish()
    }
}

impl StreamRedactor {
    /// `on_secret`: `Redact` replaces each secret with its marker; `Block` stops the stream
    /// at the first secret (what came before it is passed on, nothing after).
    pub fn new(on_secret: SecretAction) -> Self {
        Self {
            action: on_secret,
            pending: String::new(),
            offset: 0,
            mode: Mode::Scan,
            history: Vec::new(),
            pem_tail: Vec::new(),
            caches: SHAPED.iter().map(|c| c.dfa.create_cache()).collect(),
            matches: Vec::new(),
            blocked: None,
            closed: false,
        }
    }

    /// Take the next piece; returns the text that is safe to pass on now.
    pub fn push(&mut self, delta: &str) -> String {
        if self.blocked.is_some() || self.closed {
            return String::new();
        }
        self.pending.push_str(delta);
        self.run(false)
    }

    /// The end of the stream: the held tail, decided now that nothing more can follow.
    pub fn finish(mut self) -> String {
        self.close()
    }

    /// [`finish`](Self::finish) keeping the redactor, to ask [`blocked`](Self::blocked) and
    /// [`found`](Self::found) after the end. It takes nothing more afterwards.
    pub fn close(&mut self) -> String {
        let out = self.run(true);
        self.closed = true;
        out
    }

    /// How many bytes are held back right now (never more than [`max_hold`]).
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    /// The rule ids of the secrets found so far, one per secret, in order.
    pub fn found(&self) -> Vec<&'static str> {
        self.matches.iter().map(|m| m.rule).collect()
    }

    /// With `on_secret = block`: the rule of the secret that stopped the stream.
    pub fn blocked(&self) -> Option<&'static str> {
        self.blocked
    }

    fn emit(&mut self, out: &mut String, text: &str) {
        out.push_str(text);
        self.history.extend_from_slice(text.as_bytes());
        // Kept to twice the context so trimming is rare; the context needs the last
        // CONTEXT_LEN bytes at most.
        let keep = (*CONTEXT_LEN).max(1);
        if self.history.len() > 2 * keep {
            self.history.drain(..self.history.len() - keep);
        }
    }

    fn run(&mut self, eoi: bool) -> String {
        let mut out = String::new();
        let mut pos = 0;
        while pos < self.pending.len() && self.blocked.is_none() {
            let rest = &self.pending.as_bytes()[pos..];
            match self.mode {
                Mode::Continue(class) => {
                    let n = rest.iter().take_while(|b| class.contains(**b)).count();
                    let ended = n < rest.len();
                    pos += n;
                    self.extend_last(self.offset + pos);
                    if ended {
                        self.mode = Mode::Scan;
                    }
                }
                Mode::Pem { seen_end } => {
                    let (needle, seen_end): (&[u8], bool) = if seen_end {
                        (b"-----", true)
                    } else {
                        (b"-----END ", false)
                    };
                    let mut done = false;
                    for &b in rest {
                        pos += 1;
                        self.pem_tail.push(b);
                        if self.pem_tail.len() > needle.len() {
                            self.pem_tail.remove(0);
                        }
                        if self.pem_tail == needle {
                            done = true;
                            break;
                        }
                    }
                    self.extend_last(self.offset + pos);
                    if done {
                        self.pem_tail.clear();
                        self.mode = if seen_end {
                            Mode::Scan
                        } else {
                            Mode::Pem { seen_end: true }
                        };
                    }
                }
                Mode::Scan if !self.may_start(pos) => {
                    // A run of plain text: no rule can start anywhere in it.
                    let bytes = self.pending.as_bytes();
                    let mut end = pos + 1;
                    while end < bytes.len()
                        && !STARTS[bytes[end] as usize]
                        && !(Continuation::GenericValue.contains(bytes[end])
                            && separator_byte(bytes[end - 1])
                            && after_separator(
                                bytes[pos..end]
                                    .iter()
                                    .rev()
                                    .chain(self.history.iter().rev())
                                    .copied(),
                            ))
                    {
                        end += 1;
                    }
                    let piece = self.pending[pos..end].to_string();
                    self.emit(&mut out, &piece);
                    pos = end;
                }
                Mode::Scan => match self.decide(pos, eoi) {
                    Decision::Hold => break,
                    Decision::Plain => {
                        let len = self.pending[pos..].chars().next().map_or(1, char::len_utf8);
                        let piece = self.pending[pos..pos + len].to_string();
                        self.emit(&mut out, &piece);
                        pos += len;
                    }
                    Decision::Secret { rule, len, then } => {
                        let start = self.offset + pos;
                        self.matches.push(secrets::Match {
                            rule,
                            range: start..start + len,
                        });
                        pos += len;
                        if self.action == SecretAction::Block {
                            self.blocked = Some(rule);
                            break;
                        }
                        self.emit(&mut out, &marker(rule));
                        self.mode = match then {
                            Continuation::PemBlock => Mode::Pem { seen_end: false },
                            class => Mode::Continue(class),
                        };
                    }
                },
            }
        }
        if self.blocked.is_some() {
            pos = self.pending.len();
        }
        self.pending.drain(..pos);
        self.offset += pos;
        out
    }

    fn extend_last(&mut self, end: usize) {
        if let Some(m) = self.matches.last_mut() {
            m.range.end = m.range.end.max(end);
        }
    }

    /// Whether a rule could start at `pending[pos]`.
    fn may_start(&self, pos: usize) -> bool {
        let b = self.pending.as_bytes()[pos];
        STARTS[b as usize]
            || (Continuation::GenericValue.contains(b)
                && after_separator(self.history.iter().rev().copied()))
    }

    /// What starts at `pending[pos]`: rules in order, the first that is not dead decides.
    fn decide(&mut self, pos: usize, eoi: bool) -> Decision {
        let rest = &self.pending.as_bytes()[pos..];
        let look_behind = self.history.last().copied();
        for (compiled, cache) in SHAPED.iter().zip(self.caches.iter_mut()) {
            match status(&compiled.dfa, cache, look_behind, rest, eoi) {
                Status::Dead => {}
                Status::Alive => return Decision::Hold,
                Status::Matched(len) => {
                    return Decision::Secret {
                        rule: compiled.id,
                        len,
                        then: compiled.then,
                    };
                }
            }
        }
        let value = Continuation::GenericValue;
        // The context regex only runs where a value can start right after a separator.
        if value.contains(rest[0])
            && after_separator(self.history.iter().rev().copied())
            && GENERIC_CONTEXT.is_match(&self.history)
        {
            let run = rest.iter().take_while(|b| value.contains(**b)).count();
            let decided = if run >= GENERIC_VALUE_CAP {
                Some(GENERIC_VALUE_CAP)
            } else if run < rest.len() || eoi {
                Some(run)
            } else {
                None
            };
            match decided {
                None => return Decision::Hold,
                Some(len) if len >= GENERIC_VALUE_MIN && secrets::looks_random(&rest[..len]) => {
                    return Decision::Secret {
                        rule: GENERIC_RULE,
                        len,
                        then: value,
                    };
                }
                Some(_) => {}
            }
        }
        Decision::Plain
    }
}

/// Run one rule's DFA anchored at the start of `rest`.
fn status(dfa: &DFA, cache: &mut Cache, look_behind: Option<u8>, rest: &[u8], eoi: bool) -> Status {
    // The lazy DFA fails only when told to give up on a thrashing cache, which this
    // configuration never does; if it ever did, the text is hidden rather than shown.
    let fail_closed = Status::Matched(rest.len());
    let config = start::Config::new()
        .anchored(Anchored::Yes)
        .look_behind(look_behind);
    let Ok(mut sid) = dfa.start_state(cache, &config) else {
        return fail_closed;
    };
    if sid.is_dead() {
        return Status::Dead;
    }
    for (i, &b) in rest.iter().enumerate() {
        sid = match dfa.next_state(cache, sid, b) {
            Ok(sid) => sid,
            Err(_) => return fail_closed,
        };
        // Matches show one byte late: a match state after byte `i` is a match of `i` bytes.
        if sid.is_match() {
            return Status::Matched(i);
        }
        if sid.is_dead() || sid.is_quit() {
            return Status::Dead;
        }
    }
    if !eoi {
        return Status::Alive;
    }
    match dfa.next_eoi_state(cache, sid) {
        Ok(sid) if sid.is_match() => Status::Matched(rest.len()),
        Ok(_) => Status::Dead,
        Err(_) => fail_closed,
    }
}

#[cfg(test)]
mod tests;
