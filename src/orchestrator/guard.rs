//! The turn's streamed text goes through the secret redactor before any face sees it.
//!
//! Every face reads a reply through the engine's events or the turn's result: the CLI's
//! `chat` printer, `--batch` `chat.delta` lines, the TUI transcript, voice auto-speak (it
//! speaks the transcript's deltas), and the session file and its export (written by the
//! turn from the checked reply). So the redactor sits here, between the provider stream and
//! `EngineEvent::StreamDelta` / `ReasoningDelta`, with the same patterns and the same
//! control-character stripping as the SafetyLayer's check of the final reply: the deltas
//! concatenated are the stored reply.

use std::sync::Mutex;

use super::heal::Cancel;
use crate::config::SecretAction;
use crate::sandbox::safety::{SafetyLayer, is_stripped};
use crate::secrets::redact::StreamRedactor;

pub struct StreamGuard {
    scanning: bool,
    on_secret: SecretAction,
    streams: Mutex<Streams>,
    /// Stopping the provider's stream when `on_secret = "block"` fires.
    cancel: Cancel,
}

struct Streams {
    text: StreamRedactor,
    reasoning: StreamRedactor,
    blocked: Option<&'static str>,
}

/// Pieces to pass on at the end of one model call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tails {
    pub text: String,
    pub reasoning: String,
}

impl StreamGuard {
    pub fn new(layer: &SafetyLayer, cancel: Cancel) -> Self {
        Self {
            scanning: layer.scans_secrets(),
            on_secret: layer.on_secret(),
            streams: Mutex::new(Streams {
                text: StreamRedactor::new(layer.on_secret()),
                reasoning: StreamRedactor::new(layer.on_secret()),
                blocked: None,
            }),
            cancel,
        }
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, Streams> {
        match self.streams.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A delta of the reply (`reasoning` false) or of its reasoning: what may be shown now.
    pub fn pass(&self, delta: &str, reasoning: bool) -> String {
        let clean: String = delta.chars().filter(|c| !is_stripped(*c)).collect();
        if !self.scanning {
            return clean;
        }
        let mut streams = self.streams();
        let streams = &mut *streams;
        let redactor = if reasoning {
            &mut streams.reasoning
        } else {
            &mut streams.text
        };
        let out = redactor.push(&clean);
        if let Some(rule) = redactor.blocked() {
            streams.blocked.get_or_insert(rule);
            self.cancel.cancel();
        }
        out
    }

    /// The model call ended: the held tails, decided. The next call streams afresh.
    pub fn close(&self) -> Tails {
        let mut streams = self.streams();
        let text = streams.text.close();
        let reasoning = streams.reasoning.close();
        let blocked = streams.text.blocked().or(streams.reasoning.blocked());
        if let Some(rule) = blocked {
            streams.blocked.get_or_insert(rule);
        }
        streams.text = StreamRedactor::new(self.on_secret);
        streams.reasoning = StreamRedactor::new(self.on_secret);
        Tails { text, reasoning }
    }

    /// A failed attempt's text is void, and so is what its redactors held.
    pub fn restart(&self) {
        let mut streams = self.streams();
        streams.text = StreamRedactor::new(self.on_secret);
        streams.reasoning = StreamRedactor::new(self.on_secret);
    }

    /// With `on_secret = "block"`: the rule of the secret that stopped the turn.
    pub fn blocked(&self) -> Option<&'static str> {
        self.streams().blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SafetyConfig;

    fn guard(on_secret: SecretAction, cancel: &Cancel) -> StreamGuard {
        let layer = SafetyLayer::new(&SafetyConfig {
            on_secret,
            ..SafetyConfig::default()
        });
        StreamGuard::new(&layer, cancel.clone())
    }

    const TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

    #[test]
    fn a_token_in_tiny_deltas_never_reaches_a_face_in_text_or_reasoning() {
        let cancel = Cancel::default();
        let g = guard(SecretAction::Redact, &cancel);
        let text = format!("your token: {TOKEN}.\u{200b}");
        let (mut shown, mut thought) = (String::new(), String::new());
        for (i, c) in text.chars().collect::<Vec<_>>().chunks(2).enumerate() {
            let piece: String = c.iter().collect();
            let out = g.pass(&piece, false);
            assert!(!out.contains("ghp_"), "delta {i}: {out}");
            shown.push_str(&out);
            thought.push_str(&g.pass(&piece, true));
        }
        let tails = g.close();
        shown.push_str(&tails.text);
        thought.push_str(&tails.reasoning);
        assert_eq!(shown, "your token: [REDACTED:github_token].");
        assert_eq!(thought, shown);
        assert!(!cancel.is_cancelled());
        assert_eq!(g.blocked(), None);
    }

    #[test]
    fn a_restart_voids_what_was_held_and_block_stops_the_turn() {
        let cancel = Cancel::default();
        let g = guard(SecretAction::Redact, &cancel);
        assert_eq!(g.pass("half sk-", false), "half ");
        g.restart();
        assert_eq!(g.close(), Tails::default());

        let g = guard(SecretAction::Block, &cancel);
        let mut shown = String::new();
        for c in format!("a {TOKEN} b").chars() {
            shown.push_str(&g.pass(&c.to_string(), false));
        }
        assert_eq!(shown, "a ");
        assert!(cancel.is_cancelled(), "the provider's stream is stopped");
        assert_eq!(g.blocked(), Some("github_token"));
    }
}
