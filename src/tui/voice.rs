//! Voice in the TUI: speak the last reply (`tts-speak-last`, or `/tts` in the palette),
//! auto-speak replies when they stop streaming, and what the providers pane's voice section
//! shows. State changes are data, as everywhere in the app; the driver converts and plays.
//!
//! A reply is spoken piece by piece ([`speak_pieces`]): the first sentence alone, then
//! pieces of `voice.segment_chars`, each converted while the one before it plays, so the
//! first audio of a long reply waits for one sentence, not for all of them.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::action::Action;
use super::app::{Command, decode};
use crate::engine::EngineError;
use crate::engine::Method;
use crate::engine::voice::{TtsDisable, TtsEnable, TtsStatusMethod};
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

/// How speaking a reply goes, piece by piece (the driver reports it).
#[derive(Debug, Clone, PartialEq)]
pub enum Speech {
    /// `tts.convert` answered for piece `index` of `total`.
    Converted {
        index: usize,
        total: usize,
        result: Result<Value, EngineError>,
    },
    /// A piece finished playing (or could not be played).
    Played(PlayOutcome),
    /// Nothing more will be converted or played.
    Done,
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
    /// The latest finished reply, as `chat.send` returned it.
    finished: Option<String>,
    /// The reply streaming now, as far as it has come (a failed attempt's text is dropped).
    streaming: Option<String>,
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

    /// What "speak the last reply" speaks: the reply streaming now, else the last one that
    /// finished. Never earlier replies, nor a failed attempt's text.
    pub fn last_reply(&self) -> Option<&str> {
        self.streaming
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .or(self.finished.as_deref())
    }

    /// A voice action. Returns the engine work and a status-bar line. `max_chars` bounds what
    /// is spoken, `piece_chars` the pieces after the first sentence.
    pub fn act(
        &mut self,
        action: Action,
        max_chars: usize,
        piece_chars: usize,
    ) -> (Vec<Command>, Option<String>) {
        match action {
            Action::TtsSpeakLast => self.speak(max_chars, piece_chars),
            Action::TtsAutoToggle => {
                self.auto = !self.auto;
                self.auto_known = true;
                let mut commands = Vec::new();
                let enabled = self.status.as_ref().is_some_and(|s| s.enabled);
                if self.auto && !enabled {
                    // Auto-speak is using voice: turn it on (core keeps it off until then).
                    commands.push(Command::Call {
                        method: TtsEnable::NAME,
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

    fn speak(&mut self, max_chars: usize, piece_chars: usize) -> (Vec<Command>, Option<String>) {
        let Some(reply) = self
            .last_reply()
            .filter(|r| !r.trim().is_empty())
            .map(str::to_string)
        else {
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
        let text = crate::voice::text::clip(&reply, max_chars.max(1));
        let pieces = crate::voice::text::speech_pieces(&text, piece_chars.max(1));
        let mut commands = vec![Command::Speak { pieces }];
        commands.extend(self.on_focus());
        (commands, Some("speaking the last reply…".into()))
    }

    /// A piece of a streamed reply. The first piece after a finished reply, or in another
    /// conversation, starts a new one.
    pub fn on_delta(&mut self, conversation: &str, text: &str, now: Instant) {
        if self.streaming.is_none() || self.reply_conversation.as_deref() != Some(conversation) {
            self.reply_conversation = Some(conversation.to_string());
            self.streaming = Some(String::new());
        }
        self.streaming
            .get_or_insert_with(String::new)
            .push_str(text);
        if self.auto {
            self.speak_at = Some(now + REPLY_SETTLED);
        }
    }

    /// An attempt failed and the next starts over: what it streamed is not the reply.
    pub fn on_restart(&mut self, conversation: &str) {
        if self.reply_conversation.as_deref() == Some(conversation)
            && let Some(streaming) = &mut self.streaming
        {
            streaming.clear();
        }
    }

    /// The turn ended: `Some(reply)` as `chat.send` returned it, `None` when it failed
    /// (whatever streamed is then no reply to speak).
    pub fn on_reply_end(&mut self, reply: Option<&str>) {
        self.streaming = None;
        if let Some(reply) = reply {
            self.finished = Some(reply.to_string());
        }
    }

    /// Time passed: speak a reply that has settled, when auto-speak is on.
    pub fn tick(
        &mut self,
        now: Instant,
        max_chars: usize,
        piece_chars: usize,
    ) -> (Vec<Command>, Option<String>) {
        match self.speak_at {
            Some(at) if now >= at && self.auto => {
                self.speak_at = None;
                self.speak(max_chars, piece_chars)
            }
            _ => (Vec::new(), None),
        }
    }

    /// How speaking goes; returns a status-bar line.
    pub fn on_speech(&mut self, speech: Speech) -> Option<String> {
        match speech {
            Speech::Converted {
                index,
                total,
                result,
            } => self.converted(index, total, result),
            Speech::Played(outcome) => Some(self.played(outcome)),
            Speech::Done => {
                self.speaking = false;
                None
            }
        }
    }

    fn converted(
        &mut self,
        index: usize,
        total: usize,
        result: Result<Value, EngineError>,
    ) -> Option<String> {
        let part = if total > 1 {
            format!(" (part {} of {total})", index + 1)
        } else {
            String::new()
        };
        match result {
            Ok(value) => match serde_json::from_value::<ConvertResult>(value) {
                Ok(done) => {
                    let line = format!(
                        "spoken with {} ({:.1} s){part}; playing…",
                        done.provider,
                        done.duration_ms as f64 / 1000.0
                    );
                    self.last = Some(Conversion {
                        attempts: done.attempts.clone(),
                        result: Ok(done),
                        played: None,
                    });
                    Some(line)
                }
                Err(e) => {
                    let message = format!("unexpected tts.convert result: {e}");
                    self.last = Some(Conversion {
                        result: Err(message.clone()),
                        attempts: Vec::new(),
                        played: None,
                    });
                    Some(message)
                }
            },
            Err(error) => {
                let attempts: Vec<Attempt> = error
                    .details
                    .as_ref()
                    .and_then(|d| d.get("attempts"))
                    .and_then(|a| serde_json::from_value(a.clone()).ok())
                    .unwrap_or_default();
                let line = format!("could not speak{part}: {}", error.message);
                self.last = Some(Conversion {
                    result: Err(error.message),
                    attempts,
                    played: None,
                });
                Some(line)
            }
        }
    }

    /// A `tts.*` answer. Returns follow-up work and a status-bar line.
    pub fn apply(
        &mut self,
        method: &str,
        result: Result<Value, EngineError>,
    ) -> (Vec<Command>, Option<String>) {
        match method {
            TtsStatusMethod::NAME => {
                match result.and_then(|v| {
                    decode::<TtsStatusMethod>(v)
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
            TtsEnable::NAME | TtsDisable::NAME => match result {
                Ok(_) => (vec![status_call()], None),
                Err(e) => (Vec::new(), Some(format!("{method} failed: {}", e.message))),
            },
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
        method: TtsStatusMethod::NAME,
        params: Value::Null,
    }
}

/// Speak `pieces` in order: each is converted while the one before it plays, so playback
/// starts when the first piece is converted. Stops at the first piece that cannot be
/// converted or played. Runs in the driver, off the render path.
pub async fn speak_pieces<C, CF, P, PF>(
    pieces: Vec<String>,
    mut convert: C,
    mut play: P,
    report: &(dyn Fn(Speech) + Sync),
) where
    C: FnMut(String) -> CF,
    CF: Future<Output = Result<Value, EngineError>>,
    P: FnMut(String) -> PF,
    PF: Future<Output = PlayOutcome>,
{
    let total = pieces.len();
    // One converted piece waits while another plays: conversion keeps ahead of playback
    // without filling the cache with a whole long reply before anything is heard.
    let (ready, mut to_play) = tokio::sync::mpsc::channel::<String>(1);
    let converting = async move {
        for (index, piece) in pieces.into_iter().enumerate() {
            let result = convert(piece).await;
            let path = result
                .as_ref()
                .ok()
                .and_then(|v| v.get("audioPath"))
                .and_then(Value::as_str)
                .map(str::to_string);
            report(Speech::Converted {
                index,
                total,
                result,
            });
            let Some(path) = path else { break };
            if ready.send(path).await.is_err() {
                break;
            }
        }
    };
    let playing = async {
        while let Some(path) = to_play.recv().await {
            let outcome = play(path).await;
            let stop = !matches!(outcome, PlayOutcome::Played { .. });
            report(Speech::Played(outcome));
            if stop {
                break;
            }
        }
        // Dropping the receiver stops the conversions too.
        drop(to_play);
    };
    tokio::join!(converting, playing);
    report(Speech::Done);
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
    fn speak_last_needs_a_reply_then_speaks_it_in_pieces() {
        let mut v = VoiceState::default();
        let (commands, line) = v.act(Action::TtsSpeakLast, 100, 400);
        assert!(commands.is_empty());
        assert!(line.unwrap().contains("no reply"));

        let now = Instant::now();
        v.on_delta("c1", "Hello ", now);
        v.on_delta("c1", "there. More words follow here. And more.", now);
        let (commands, _) = v.act(Action::TtsSpeakLast, 37, 400);
        assert_eq!(
            commands[0],
            Command::Speak {
                // Clipped at a sentence end to the limit, the first sentence alone.
                pieces: vec!["Hello there.".into(), "More words follow here.".into()],
            }
        );
        assert!(
            commands.contains(&status_call()),
            "first use asks for status"
        );
        let line = v.on_speech(Speech::Converted {
            index: 0,
            total: 2,
            result: Ok(convert_ok()),
        });
        assert!(line.unwrap().contains("espeak-ng"));
        assert_eq!(v.last.as_ref().unwrap().attempts.len(), 2);
        let line = v.on_speech(Speech::Played(PlayOutcome::NoPlayer {
            path: "/s/voice/cache/a.wav".into(),
        }));
        assert!(line.unwrap().contains("saved to /s/voice/cache/a.wav"));
        assert!(v.speaking);
        v.on_speech(Speech::Done);
        assert!(!v.speaking);
    }

    /// It used to speak the start of every reply of the session run together, failed
    /// attempts included.
    #[test]
    fn speak_last_speaks_the_last_reply_only() {
        let mut v = VoiceState::default();
        let now = Instant::now();
        v.on_delta("c1", "First answer.", now);
        v.on_reply_end(Some("First answer."));
        // The next turn: an attempt streams, fails and the next one starts over.
        v.on_delta("c1", "Broken attempt", now);
        v.on_restart("c1");
        v.on_delta("c1", "Second ", now);
        assert_eq!(v.last_reply(), Some("Second "));
        v.on_delta("c1", "answer.", now);
        v.on_reply_end(Some("Second answer."));
        let (commands, _) = v.act(Action::TtsSpeakLast, 4_000, 400);
        assert_eq!(
            commands[0],
            Command::Speak {
                pieces: vec!["Second answer.".into()]
            }
        );
        v.on_speech(Speech::Done);
        // A turn that fails leaves the last finished reply to speak.
        v.on_delta("c1", "Half a repl", now);
        v.on_reply_end(None);
        assert_eq!(v.last_reply(), Some("Second answer."));
    }

    #[test]
    fn a_failed_conversion_keeps_its_attempts() {
        let mut v = VoiceState::default();
        let error = EngineError::new(crate::engine::ErrorCode::Unavailable, "no voice provider")
            .with_details(serde_json::json!({ "attempts": [
                {"provider": "espeak-ng", "status": "timeout", "reason": "killed", "latencyMs": 20000}
            ]}));
        let line = v.on_speech(Speech::Converted {
            index: 0,
            total: 1,
            result: Err(error),
        });
        assert!(line.unwrap().contains("could not speak"));
        let last = v.last.unwrap();
        assert!(last.result.is_err());
        assert_eq!(last.attempts[0].status, "timeout");
    }

    #[test]
    fn auto_speak_waits_for_the_reply_to_settle_and_turns_voice_on() {
        let mut v = VoiceState::default();
        let (commands, _) = v.act(Action::TtsAutoToggle, 100, 400);
        assert!(v.auto);
        assert!(commands.contains(&Command::Call {
            method: "tts.enable",
            params: Value::Null
        }));
        let t0 = Instant::now();
        v.on_delta("c1", "Part one.", t0);
        v.on_delta("c1", " Part two.", t0 + Duration::from_millis(500));
        // Not yet: still streaming.
        let (commands, _) = v.tick(t0 + Duration::from_millis(1_300), 100, 400);
        assert!(commands.is_empty());
        let deadline = v.next_deadline().unwrap();
        let (commands, _) = v.tick(deadline, 100, 400);
        assert_eq!(
            commands[0],
            Command::Speak {
                pieces: vec!["Part one.".into(), "Part two.".into()]
            }
        );
        // A new conversation starts a new reply.
        v.on_delta("c2", "Fresh.", deadline);
        assert_eq!(v.last_reply(), Some("Fresh."));
        v.act(Action::TtsAutoToggle, 100, 400);
        assert!(!v.auto && v.next_deadline().is_none());
    }

    fn converted(path: &str) -> Result<Value, EngineError> {
        Ok(serde_json::json!({
            "audioPath": path, "provider": "espeak-ng", "outputFormat": "wav",
            "durationMs": 900, "attempts": []
        }))
    }

    /// It used to convert every piece and join them before anything played.
    #[tokio::test]
    async fn the_first_piece_plays_while_the_rest_is_converted() {
        use std::sync::{Arc, Mutex};
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let first_played = Arc::new(tokio::sync::Notify::new());
        let convert = |text: String| {
            let (log, first_played) = (log.clone(), first_played.clone());
            async move {
                // Every piece after the first is converted only once the first has begun
                // to play: a pipeline that waits for all conversions never gets there.
                if text != "One." {
                    first_played.notified().await;
                }
                log.lock().unwrap().push(format!("converted {text}"));
                converted(&format!("/a/{text}.wav"))
            }
        };
        let play = |path: String| {
            let (log, first_played) = (log.clone(), first_played.clone());
            async move {
                log.lock().unwrap().push(format!("playing {path}"));
                first_played.notify_one();
                PlayOutcome::Played {
                    player: "aplay".into(),
                }
            }
        };
        let reports = Mutex::new(Vec::new());
        let report = |s: Speech| reports.lock().unwrap().push(s);
        let pieces = vec!["One.".to_string(), "Two.".into(), "Three.".into()];
        tokio::time::timeout(
            Duration::from_secs(10),
            speak_pieces(pieces, convert, play, &report),
        )
        .await
        .expect("the first piece must play before the others are converted");
        let log = log.lock().unwrap().clone();
        assert_eq!(log[0], "converted One.");
        assert_eq!(log[1], "playing /a/One..wav");
        let played: Vec<&String> = log.iter().filter(|l| l.starts_with("playing")).collect();
        assert_eq!(
            played,
            [
                "playing /a/One..wav",
                "playing /a/Two..wav",
                "playing /a/Three..wav"
            ]
        );
        let reports = reports.into_inner().unwrap();
        assert_eq!(reports.last(), Some(&Speech::Done));
        assert_eq!(
            reports
                .iter()
                .filter(|s| matches!(s, Speech::Converted { total: 3, .. }))
                .count(),
            3
        );
    }

    #[tokio::test]
    async fn a_piece_that_cannot_be_converted_or_played_stops_the_rest() {
        let report = |_: Speech| {};
        let converts = std::sync::atomic::AtomicUsize::new(0);
        let convert = |_: String| {
            converts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { converted("/a/x.wav") }
        };
        let play = |path: String| async { PlayOutcome::NoPlayer { path } };
        let pieces: Vec<String> = (0..10).map(|i| format!("piece {i}.")).collect();
        speak_pieces(pieces, convert, play, &report).await;
        // The first plays (no player), one more may already wait converted; no more.
        assert!(converts.load(std::sync::atomic::Ordering::SeqCst) <= 3);

        let failing = |_: String| async {
            Err(EngineError::new(
                crate::engine::ErrorCode::Unavailable,
                "no voice provider",
            ))
        };
        let played = std::sync::atomic::AtomicUsize::new(0);
        let play = |_: String| {
            played.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                PlayOutcome::Played {
                    player: "aplay".into(),
                }
            }
        };
        speak_pieces(vec!["a.".into(), "b.".into()], failing, play, &report).await;
        assert_eq!(played.load(std::sync::atomic::Ordering::SeqCst), 0);
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
            commands.contains(&Command::Speak {
                pieces: vec!["Hi there.".into()]
            }),
            "{commands:?}"
        );
        assert_eq!(app.calls_in_flight, 1, "the first status");
    }

    #[test]
    fn replies_end_with_chat_send_and_a_restart_drops_the_failed_attempt() {
        let mut app = App::new(Keymap::builtin("default").unwrap(), "default".into());
        let delta = |app: &mut App, text: &str| {
            app.handle(Msg::Engine(EngineEvent::StreamDelta {
                conversation: "c1".into(),
                text: text.into(),
            }));
        };
        let done = |app: &mut App, reply: &str| {
            app.handle(Msg::CallDone {
                method: "chat.send".into(),
                result: Ok(serde_json::json!({ "session": "c1", "reply": reply })),
            });
        };
        delta(&mut app, "First reply.");
        done(&mut app, "First reply.");
        delta(&mut app, "Broken half");
        app.handle(Msg::Engine(EngineEvent::StreamRestart {
            conversation: "c1".into(),
            provider: "backup".into(),
        }));
        assert_eq!(app.voice.last_reply(), Some("First reply."));
        delta(&mut app, "Second reply.");
        done(&mut app, "Second reply.");
        assert_eq!(app.voice.last_reply(), Some("Second reply."));
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
