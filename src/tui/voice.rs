//! Voice in the TUI: speak the last reply (`tts-speak-last`, or `/tts` in the palette),
//! auto-speak replies when they stop streaming, and what the providers pane's voice section
//! shows. State changes are data, as everywhere in the app; the driver plays the audio.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::action::Action;
use super::app::Command;
use crate::engine::EngineError;
use crate::voice::{Attempt, ConvertResult, TtsStatus};

/// A reply counts as finished when no more of it has streamed for this long.
const REPLY_SETTLED: Duration = Duration::from_millis(1_200);
/// Players tried in order: PulseAudio/PipeWire, ALSA, macOS.
pub const PLAYERS: &[&str] = &["paplay", "aplay", "afplay"];

/// How playing a converted file went (the driver reports it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayOutcome {
    Played { player: String },
    NoPlayer { path: String },
    Failed { player: String, reason: String },
}

/// One conversion as the voice section shows it: what spoke, or why nothing did.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub result: Result<ConvertResult, String>,
    pub attempts: Vec<Attempt>,
    pub played: Option<PlayOutcome>,
}

#[derive(Debug, Clone, Default)]
pub struct VoiceState {
    /// `tts.status` was asked for (the providers pane was opened, or voice was used).
    pub started: bool,
    pub status: Option<TtsStatus>,
    pub status_error: Option<String>,
    /// Speak each reply when it stops streaming; starts as `tts.status` says.
    pub auto: bool,
    auto_known: bool,
    /// The text of the latest reply, as streamed.
    pub last_reply: Option<String>,
    reply_conversation: Option<String>,
    speak_at: Option<Instant>,
    pub speaking: bool,
    pub last: Option<Conversion>,
}

impl VoiceState {
    /// The first look at voice: ask for its status (this probes binaries, starts nothing).
    pub fn on_focus(&mut self) -> Vec<Command> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        vec![status_call()]
    }

    pub fn refresh(&self) -> Vec<Command> {
        if self.started {
            vec![status_call()]
        } else {
            Vec::new()
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.speak_at
    }

    /// A voice action. Returns the engine work and a status-bar line.
    pub fn act(&mut self, action: Action, max_chars: usize) -> (Vec<Command>, Option<String>) {
        match action {
            Action::TtsSpeakLast => self.speak(max_chars),
            Action::TtsAutoToggle => {
                self.auto = !self.auto;
                self.auto_known = true;
                let mut commands = Vec::new();
                let enabled = self.status.as_ref().is_some_and(|s| s.enabled);
                if self.auto && !enabled {
                    // Auto-speak is using voice: turn it on (core keeps it off until then).
                    commands.push(Command::Call {
                        method: "tts.enable",
                        params: Value::Null,
                    });
                }
                if !self.auto {
                    self.speak_at = None;
                }
                commands.extend(self.on_focus());
                let line = if self.auto {
                    "auto-speak on: replies are spoken when they finish"
                } else {
                    "auto-speak off"
                };
                (commands, Some(line.into()))
            }
            _ => (Vec::new(), None),
        }
    }

    fn speak(&mut self, max_chars: usize) -> (Vec<Command>, Option<String>) {
        let Some(reply) = self.last_reply.as_deref().filter(|r| !r.trim().is_empty()) else {
            return (
                Vec::new(),
                Some("nothing to speak yet: no reply in this session".into()),
            );
        };
        if self.speaking {
            return (Vec::new(), Some("already speaking".into()));
        }
        self.speaking = true;
        self.speak_at = None;
        let text = crate::voice::text::clip(reply, max_chars.max(1));
        let mut commands = vec![Command::Call {
            method: "tts.convert",
            params: serde_json::json!({ "text": text }),
        }];
        commands.extend(self.on_focus());
        (commands, Some("speaking the last reply…".into()))
    }

    /// A piece of a streamed reply: a new conversation starts a new reply.
    pub fn on_delta(&mut self, conversation: &str, text: &str, now: Instant) {
        if self.reply_conversation.as_deref() != Some(conversation) {
            self.reply_conversation = Some(conversation.to_string());
            self.last_reply = Some(String::new());
        }
        self.last_reply
            .get_or_insert_with(String::new)
            .push_str(text);
        if self.auto {
            self.speak_at = Some(now + REPLY_SETTLED);
        }
    }

    /// Time passed: speak a reply that has settled, when auto-speak is on.
    pub fn tick(&mut self, now: Instant, max_chars: usize) -> (Vec<Command>, Option<String>) {
        match self.speak_at {
            Some(at) if now >= at && self.auto => {
                self.speak_at = None;
                self.speak(max_chars)
            }
            _ => (Vec::new(), None),
        }
    }

    /// A `tts.*` answer. Returns follow-up work and a status-bar line.
    pub fn apply(
        &mut self,
        method: &str,
        result: Result<Value, EngineError>,
    ) -> (Vec<Command>, Option<String>) {
        match method {
            "tts.status" => {
                match result.and_then(|v| {
                    serde_json::from_value::<TtsStatus>(v)
                        .map_err(|e| EngineError::internal(format!("unexpected tts.status: {e}")))
                }) {
                    Ok(status) => {
                        if !self.auto_known {
                            self.auto = status.enabled && status.auto;
                            self.auto_known = true;
                        }
                        self.status = Some(status);
                        self.status_error = None;
                    }
                    Err(e) => self.status_error = Some(e.message),
                }
                (Vec::new(), None)
            }
            "tts.enable" | "tts.disable" => match result {
                Ok(_) => (vec![status_call()], None),
                Err(e) => (Vec::new(), Some(format!("{method} failed: {}", e.message))),
            },
            "tts.convert" => {
                self.speaking = false;
                match result {
                    Ok(value) => match serde_json::from_value::<ConvertResult>(value) {
                        Ok(done) => {
                            let attempts = done.attempts.clone();
                            let path = done.audio_path.clone();
                            let line = format!(
                                "spoken with {} ({:.1} s); playing…",
                                done.provider,
                                done.duration_ms as f64 / 1000.0
                            );
                            self.last = Some(Conversion {
                                result: Ok(done),
                                attempts,
                                played: None,
                            });
                            (vec![Command::Play { path }], Some(line))
                        }
                        Err(e) => {
                            let message = format!("unexpected tts.convert result: {e}");
                            self.last = Some(Conversion {
                                result: Err(message.clone()),
                                attempts: Vec::new(),
                                played: None,
                            });
                            (Vec::new(), Some(message))
                        }
                    },
                    Err(error) => {
                        let attempts: Vec<Attempt> = error
                            .details
                            .as_ref()
                            .and_then(|d| d.get("attempts"))
                            .and_then(|a| serde_json::from_value(a.clone()).ok())
                            .unwrap_or_default();
                        let line = format!("could not speak: {}", error.message);
                        self.last = Some(Conversion {
                            result: Err(error.message),
                            attempts,
                            played: None,
                        });
                        (Vec::new(), Some(line))
                    }
                }
            }
            _ => (Vec::new(), None),
        }
    }

    pub fn played(&mut self, outcome: PlayOutcome) -> String {
        let line = match &outcome {
            PlayOutcome::Played { player } => format!("played with {player}"),
            PlayOutcome::NoPlayer { path } => {
                format!("no audio player ({}); saved to {path}", PLAYERS.join(", "))
            }
            PlayOutcome::Failed { player, reason } => format!("{player} failed: {reason}"),
        };
        if let Some(last) = &mut self.last {
            last.played = Some(outcome);
        }
        line
    }
}

fn status_call() -> Command {
    Command::Call {
        method: "tts.status",
        params: Value::Null,
    }
}

/// Play `path` with the first player found. Runs in the driver, off the render path.
pub async fn play(path: String) -> PlayOutcome {
    let player = PLAYERS
        .iter()
        .find_map(|p| crate::voice::process::which(p).map(|b| (p.to_string(), b)));
    play_with(path, player).await
}

async fn play_with(path: String, player: Option<(String, std::path::PathBuf)>) -> PlayOutcome {
    let Some((name, bin)) = player else {
        return PlayOutcome::NoPlayer { path };
    };
    // A long reply plays for minutes; a stuck audio server must not keep a process forever.
    let limit = Duration::from_secs(15 * 60);
    match crate::voice::process::run(&bin, &[path], None, limit, 64 * 1024).await {
        Ok(done) if done.success => PlayOutcome::Played { player: name },
        Ok(done) => PlayOutcome::Failed {
            player: name,
            reason: done.reason(),
        },
        Err(e) => PlayOutcome::Failed {
            player: name,
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert_ok() -> Value {
        serde_json::json!({
            "audioPath": "/s/voice/cache/a.wav", "provider": "espeak-ng", "outputFormat": "wav",
            "durationMs": 1500,
            "attempts": [
                {"provider": "kittentts", "status": "unavailable", "reason": "binary 'piper' not found", "latencyMs": 0},
                {"provider": "espeak-ng", "status": "ok", "latencyMs": 80}
            ]
        })
    }

    #[test]
    fn speak_last_needs_a_reply_then_converts_and_plays() {
        let mut v = VoiceState::default();
        let (commands, line) = v.act(Action::TtsSpeakLast, 100);
        assert!(commands.is_empty());
        assert!(line.unwrap().contains("no reply"));

        let now = Instant::now();
        v.on_delta("c1", "Hello ", now);
        v.on_delta("c1", "there. More words follow here.", now);
        let (commands, _) = v.act(Action::TtsSpeakLast, 14);
        assert_eq!(
            commands[0],
            Command::Call {
                method: "tts.convert",
                // Clipped at a sentence end to the limit.
                params: serde_json::json!({ "text": "Hello there." }),
            }
        );
        assert!(
            commands.contains(&status_call()),
            "first use asks for status"
        );
        let (commands, line) = v.apply("tts.convert", Ok(convert_ok()));
        assert_eq!(
            commands,
            vec![Command::Play {
                path: "/s/voice/cache/a.wav".into()
            }]
        );
        assert!(line.unwrap().contains("espeak-ng"));
        assert_eq!(v.last.as_ref().unwrap().attempts.len(), 2);
        let line = v.played(PlayOutcome::NoPlayer {
            path: "/s/voice/cache/a.wav".into(),
        });
        assert!(line.contains("saved to /s/voice/cache/a.wav"), "{line}");
    }

    #[test]
    fn a_failed_conversion_keeps_its_attempts() {
        let mut v = VoiceState::default();
        let error = EngineError::new(crate::engine::ErrorCode::Unavailable, "no voice provider")
            .with_details(serde_json::json!({ "attempts": [
                {"provider": "espeak-ng", "status": "timeout", "reason": "killed", "latencyMs": 20000}
            ]}));
        let (commands, line) = v.apply("tts.convert", Err(error));
        assert!(commands.is_empty());
        assert!(line.unwrap().contains("could not speak"));
        let last = v.last.unwrap();
        assert!(last.result.is_err());
        assert_eq!(last.attempts[0].status, "timeout");
    }

    #[test]
    fn auto_speak_waits_for_the_reply_to_settle_and_turns_voice_on() {
        let mut v = VoiceState::default();
        let (commands, _) = v.act(Action::TtsAutoToggle, 100);
        assert!(v.auto);
        assert!(commands.contains(&Command::Call {
            method: "tts.enable",
            params: Value::Null
        }));
        let t0 = Instant::now();
        v.on_delta("c1", "Part one.", t0);
        v.on_delta("c1", " Part two.", t0 + Duration::from_millis(500));
        // Not yet: still streaming.
        let (commands, _) = v.tick(t0 + Duration::from_millis(1_300), 100);
        assert!(commands.is_empty());
        let deadline = v.next_deadline().unwrap();
        let (commands, _) = v.tick(deadline, 100);
        assert!(matches!(
            &commands[0],
            Command::Call { method: "tts.convert", params } if params["text"] == "Part one. Part two."
        ));
        // A new conversation starts a new reply.
        v.on_delta("c2", "Fresh.", deadline);
        assert_eq!(v.last_reply.as_deref(), Some("Fresh."));
        v.act(Action::TtsAutoToggle, 100);
        assert!(!v.auto && v.next_deadline().is_none());
    }
}

#[cfg(test)]
mod play_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn player(dir: &std::path::Path, body: &str) -> (String, std::path::PathBuf) {
        let path = dir.join("player");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        ("aplay".into(), path)
    }

    #[tokio::test]
    async fn plays_with_the_player_found_or_says_where_the_file_is() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("played");
        let ok = player(dir.path(), &format!("echo \"$1\" > {}", log.display()));
        assert_eq!(
            play_with("/tmp/a.wav".into(), Some(ok)).await,
            PlayOutcome::Played {
                player: "aplay".into()
            }
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "/tmp/a.wav");
        let broken = player(dir.path(), "echo 'no sound card' >&2; exit 1");
        let PlayOutcome::Failed { reason, .. } = play_with("/tmp/a.wav".into(), Some(broken)).await
        else {
            panic!("a failing player is reported");
        };
        assert!(reason.contains("no sound card"), "{reason}");
        assert_eq!(
            play_with("/tmp/a.wav".into(), None).await,
            PlayOutcome::NoPlayer {
                path: "/tmp/a.wav".into()
            }
        );
    }
}

#[cfg(test)]
mod app_tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::engine::EngineEvent;
    use crate::tui::app::{App, Command, Msg, PaneId};
    use crate::tui::keymap::Keymap;

    fn key(app: &mut App, code: KeyCode) -> Vec<Command> {
        app.handle(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    #[test]
    fn slash_tts_in_the_palette_speaks_the_last_reply() {
        let mut app = App::new(Keymap::builtin("default").unwrap(), "default".into());
        app.handle(Msg::Engine(EngineEvent::StreamDelta {
            conversation: "c1".into(),
            text: "Hi there.".into(),
        }));
        key(&mut app, KeyCode::Char(':'));
        for c in "/tts".chars() {
            key(&mut app, KeyCode::Char(c));
        }
        let commands = key(&mut app, KeyCode::Enter);
        assert!(
            commands.iter().any(|c| matches!(
                c,
                Command::Call { method: "tts.convert", params } if params["text"] == "Hi there."
            )),
            "{commands:?}"
        );
        assert_eq!(app.calls_in_flight, 2, "convert and the first status");
    }

    #[test]
    fn voice_is_not_asked_about_until_the_providers_pane_is_opened() {
        let mut app = App::new(Keymap::builtin("default").unwrap(), "default".into());
        let startup = app.refresh_commands();
        assert!(
            !startup
                .iter()
                .any(|c| matches!(c, Command::Call { method, .. } if method.starts_with("tts."))),
            "startup leaves voice alone"
        );
        let commands = key(&mut app, KeyCode::Char('3'));
        assert_eq!(app.focus, PaneId::Providers);
        assert!(commands.iter().any(|c| matches!(
            c,
            Command::Call {
                method: "tts.status",
                ..
            }
        )));
        // The providers pane's keys: speak (nothing yet) and auto-speak.
        assert!(key(&mut app, KeyCode::Char('s')).is_empty());
        assert!(
            app.last_event
                .as_deref()
                .is_some_and(|l| l.contains("no reply"))
        );
        key(&mut app, KeyCode::Char('a'));
        assert!(app.voice.auto);
    }
}
