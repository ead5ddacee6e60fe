//! Streaming throughput through the TUI: the highest rate of streamed tokens at which the
//! conversations pane drops no frame.
//!
//! The real update and render path (`App::handle` with `StreamDelta` events, then
//! `Terminal::draw` of the whole UI on a ratatui `TestBackend`), in virtual time: token `i`
//! of a stream at `rate` tokens/s arrives at `i / rate` s; at every frame tick (60 Hz) the
//! loop applies every token that has arrived since the last tick, as the driver drains its
//! pending events, and draws once. A frame is **dropped** when
//!
//! - applying its tokens and drawing take longer than the frame interval (over budget): the
//!   next tick comes before the screen is done, so tokens wait more than a frame to show; or
//! - more tokens arrive while it works than the engine's event channel holds
//!   (`rate × work > EVENT_CAPACITY`, overrun): the driver, busy drawing, would find the
//!   channel overrun and skip deltas, which then never show while the turn streams.
//!
//! A rate passes when none of its frames is dropped; a rate with a drop is measured once
//! more, because another process on the machine can stall one frame. Each rate streams for
//! a fixed time, so the reply grows with the rate (the pane wraps the whole reply per frame).

use std::time::{Duration, Instant};

use openclaw_rs::engine::EngineEvent;
use openclaw_rs::tui::app::{App, Msg};
use openclaw_rs::tui::conversations::Entry;
use openclaw_rs::tui::keymap::Keymap;
use openclaw_rs::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// 60 frames per second.
pub const FRAME: Duration = Duration::from_micros(16_667);

/// Tokens as models stream them: a word or a piece of one, now and then a line break.
const TOKENS: &[&str] = &[
    "The", " spare", " lan", "terns", " are", " in", " hold", " three", ",", " beside", " the",
    " lamp", " oil", ".", "\n", "Ask", " the", " quarter", "master", " first", ".",
];

#[derive(Debug, Clone)]
pub struct RateRun {
    pub rate: u64,
    pub tokens: usize,
    pub frames: usize,
    pub dropped: usize,
    /// Of `dropped`: frames whose work took longer than [`FRAME`].
    pub over_budget: usize,
    /// Of `dropped`: frames during whose work more tokens arrived than the channel holds.
    pub overrun: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// A session with `turns` earlier exchanges and a turn whose reply is streaming.
fn streaming_app(turns: usize) -> App {
    let mut app = App::new(Keymap::builtin("default").unwrap(), "default".into());
    let key = |app: &mut App, code| {
        app.handle(Msg::Key(crossterm::event::KeyEvent::new(
            code,
            crossterm::event::KeyModifiers::NONE,
        )));
    };
    let answer: String = TOKENS.iter().cycle().take(160).copied().collect();
    for i in 0..turns {
        app.conversations
            .transcript
            .push(Entry::User(format!("question {i}: where is it?")));
        app.conversations.transcript.push(Entry::Assistant {
            text: answer.clone(),
            reasoning: String::new(),
            badge: None,
            by: "fake · fake-model".into(),
            citations: Vec::new(),
        });
    }
    key(&mut app, crossterm::event::KeyCode::Enter);
    for c in "and the oil?".chars() {
        key(&mut app, crossterm::event::KeyCode::Char(c));
    }
    key(&mut app, crossterm::event::KeyCode::Enter);
    assert!(app.conversations.running(), "the turn must be streaming");
    app
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Stream `seconds` of tokens at `rate` into a fresh app and time every frame.
pub fn run_rate(rate: u64, seconds: f64, width: u16, height: u16) -> RateRun {
    let mut app = streaming_app(10);
    let theme = Theme::builtin("default").unwrap();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| openclaw_rs::tui::ui::render(&app, &theme, f))
        .unwrap();
    let total = ((rate as f64) * seconds).round().max(1.0) as usize;
    let mut sent = 0usize;
    let mut expected = 0usize;
    let mut frames = Vec::new();
    let mut tick = 1u64;
    while sent < total {
        // Tokens that arrived before this tick: i / rate < tick * FRAME.
        let due = ((tick as f64 * FRAME.as_secs_f64() * rate as f64).ceil() as usize).min(total);
        let start = Instant::now();
        for i in sent..due {
            let text = TOKENS[i % TOKENS.len()];
            expected += text.len();
            app.handle(Msg::Engine(EngineEvent::StreamDelta {
                conversation: "s".into(),
                text: text.into(),
            }));
        }
        terminal
            .draw(|f| openclaw_rs::tui::ui::render(&app, &theme, f))
            .unwrap();
        frames.push(start.elapsed());
        sent = due;
        tick += 1;
    }
    let shown = app
        .conversations
        .streaming
        .as_ref()
        .map_or(0, |s| s.text.len());
    assert_eq!(shown, expected, "every token reached the transcript");
    let capacity = openclaw_rs::engine::EVENT_CAPACITY as f64;
    let over = |d: &Duration| *d > FRAME;
    let overrun = |d: &Duration| d.as_secs_f64() * rate as f64 > capacity;
    let over_budget = frames.iter().filter(|d| over(d)).count();
    let overruns = frames.iter().filter(|d| overrun(d)).count();
    let dropped = frames.iter().filter(|d| over(d) || overrun(d)).count();
    frames.sort();
    RateRun {
        rate,
        tokens: total,
        frames: frames.len(),
        dropped,
        over_budget,
        overrun: overruns,
        p50: percentile(&frames, 50.0),
        p99: percentile(&frames, 99.0),
        max: frames[frames.len() - 1],
    }
}

/// A rate's run, measured a second time when the first dropped a frame.
fn measure(rate: u64, seconds: f64, width: u16, height: u16) -> RateRun {
    let run = run_rate(rate, seconds, width, height);
    if run.dropped == 0 {
        return run;
    }
    run_rate(rate, seconds, width, height)
}

/// Rates from `start` doubling up to `limit`, then `refine` halvings of the gap between the
/// last that passed and the first that dropped a frame. Returns the highest rate without a
/// dropped frame and the lowest with one, if any.
pub fn sweep(
    start: u64,
    limit: u64,
    refine: u32,
    seconds: f64,
    width: u16,
    height: u16,
) -> (Option<RateRun>, Option<RateRun>) {
    let mut best: Option<RateRun> = None;
    let mut failed: Option<RateRun> = None;
    let mut rate = start;
    while rate <= limit {
        let run = measure(rate, seconds, width, height);
        if run.dropped > 0 {
            failed = Some(run);
            break;
        }
        best = Some(run);
        rate *= 2;
    }
    for _ in 0..refine {
        let (Some(lo), Some(hi)) = (&best, &failed) else {
            break;
        };
        let mid = (lo.rate + hi.rate) / 2;
        if mid == lo.rate {
            break;
        }
        let run = measure(mid, seconds, width, height);
        if run.dropped > 0 {
            failed = Some(run);
        } else {
            best = Some(run);
        }
    }
    (best, failed)
}
