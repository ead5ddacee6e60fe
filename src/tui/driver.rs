//! The event loop: wait for something to happen, drain everything pending, apply it, and
//! draw once if anything changed. Idle costs nothing: there is no tick.

use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr, eyre};
use crossterm::event::{Event, EventStream};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::{broadcast, mpsc};

use super::app::{App, Command, Msg};
use super::theme::Theme;
use super::ui;
use crate::engine::EngineHandle;
use crate::engine::Method;
use crate::engine::voice::TtsConvert;

pub async fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    theme: &Theme,
    engine: EngineHandle,
    started: Instant,
) -> Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let (terminal_events, _reader) = TerminalReader::spawn();
    run_with_input(terminal, app, theme, engine, started, terminal_events).await
}

/// [`run`] with terminal input from a channel instead of the terminal: the same loop, for
/// tests that drive the whole TUI in-process (a closed channel quits like a closed terminal).
pub async fn run_with_input<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    theme: &Theme,
    engine: EngineHandle,
    started: Instant,
    mut terminal_events: mpsc::UnboundedReceiver<TerminalEvent>,
) -> Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let (tx, mut results) = mpsc::unbounded_channel::<Msg>();
    let mut events = engine.subscribe();
    let mut terminations =
        crate::platform::Terminations::new().wrap_err("installing the signal handlers")?;
    let mut first_frame = true;
    let mut data_frame_logged = false;

    if let Ok(size) = terminal.size() {
        app.terminal.width = size.width;
        app.terminal.height = size.height;
    }
    let startup = app.refresh_commands();
    execute(startup, &engine, &tx);

    loop {
        if app.dirty {
            terminal
                .draw(|frame| ui::render(app, theme, frame))
                .wrap_err("drawing")?;
            app.dirty = false;
            if first_frame {
                first_frame = false;
                tracing::info!(
                    micros = started.elapsed().as_micros() as u64,
                    "first frame drawn"
                );
            }
            // The frame a user can act on: every pane shows engine data.
            if !data_frame_logged
                && app.view.status.is_some()
                && app.view.health.is_some()
                && app.view.config.is_some()
            {
                data_frame_logged = true;
                tracing::info!(
                    micros = started.elapsed().as_micros() as u64,
                    "first data frame drawn"
                );
            }
        }
        if app.should_quit {
            return Ok(());
        }

        let mut pending = Vec::new();
        // A debounced search wakes the loop at its deadline; with none, only events do.
        let deadline = app.next_deadline();
        tokio::select! {
            maybe = terminal_events.recv() => match maybe {
                Some(Ok(event)) => pending.extend(terminal_msg(event)),
                Some(Err(e)) => return Err(eyre!(e)).wrap_err("reading terminal input"),
                // The reader stopped: nobody can type any more.
                None => pending.push(Msg::Terminate),
            },
            Some(msg) = results.recv() => pending.push(msg),
            event = events.recv() => pending.extend(engine_msg(event)),
            () = terminations.recv() => pending.push(Msg::Terminate),
            () = sleep_until(deadline) => pending.push(Msg::Tick(Instant::now())),
        }
        // Drain whatever else is ready, so a burst costs one redraw.
        while let Ok(event) = terminal_events.try_recv() {
            match event {
                Ok(event) => pending.extend(terminal_msg(event)),
                Err(e) => return Err(eyre!(e)).wrap_err("reading terminal input"),
            }
        }
        while let Ok(msg) = results.try_recv() {
            pending.push(msg);
        }
        loop {
            match events.try_recv() {
                Ok(event) => pending.push(Msg::Engine(event)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    pending.push(Msg::EventsLagged(n))
                }
                Err(_) => break,
            }
        }
        for msg in pending {
            let commands = app.handle(msg);
            execute(commands, &engine, &tx);
            if std::mem::take(&mut app.conversations.bell) && app.bell_enabled() {
                // The terminal's bell: most terminals turn it into a notification.
                use std::io::Write as _;
                let mut out = std::io::stdout();
                let _ = out.write_all(b"\x07").and_then(|()| out.flush());
            }
        }
    }
}

/// Sleep until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Terminal input forwarded from crossterm's [`EventStream`] into the loop's channel, so the
/// loop drains input with `try_recv` like every other source. The stream waits in a blocking
/// `poll` with no timeout on a thread of crossterm's, so an idle terminal wakes nothing; when
/// this is dropped the task ends, and dropping the stream wakes that thread to leave.
struct TerminalReader {
    task: tokio::task::JoinHandle<()>,
}

pub type TerminalEvent = std::io::Result<Event>;

impl TerminalReader {
    fn spawn() -> (mpsc::UnboundedReceiver<TerminalEvent>, Self) {
        use futures_util::StreamExt as _;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stream = EventStream::new();
            while let Some(event) = stream.next().await {
                let failed = event.is_err();
                if tx.send(event).is_err() || failed {
                    return;
                }
            }
        });
        (rx, Self { task })
    }
}

impl Drop for TerminalReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn terminal_msg(event: Event) -> Option<Msg> {
    match event {
        Event::Key(key) => Some(Msg::Key(key)),
        Event::Resize(width, height) => Some(Msg::Resize(width, height)),
        Event::Paste(text) => Some(Msg::Paste(text)),
        // Focus and mouse events change nothing on screen yet.
        _ => None,
    }
}

fn engine_msg(
    event: Result<crate::engine::EngineEvent, broadcast::error::RecvError>,
) -> Option<Msg> {
    match event {
        Ok(event) => Some(Msg::Engine(event)),
        Err(broadcast::error::RecvError::Lagged(n)) => Some(Msg::EventsLagged(n)),
        // The engine is gone only when we are shutting down.
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

/// Run the app's commands off the render path; results come back as messages.
fn execute(commands: Vec<Command>, engine: &EngineHandle, tx: &mpsc::UnboundedSender<Msg>) {
    for command in commands {
        match command {
            Command::Call { method, params } => {
                let engine = engine.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let result = engine.call(method, params).await;
                    let _ = tx.send(Msg::CallDone {
                        method: method.to_string(),
                        result,
                    });
                });
            }
            Command::CallTagged {
                method,
                params,
                tag,
            } => {
                let engine = engine.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let result = engine.call(method, params).await;
                    let _ = tx.send(Msg::TaggedDone {
                        method: method.to_string(),
                        tag,
                        result,
                    });
                });
            }
            Command::Speak { pieces } => {
                let engine = engine.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let convert = |text: String| {
                        let engine = engine.clone();
                        async move {
                            engine
                                .call(TtsConvert::NAME, serde_json::json!({ "text": text }))
                                .await
                        }
                    };
                    let report = |speech| {
                        let _ = tx.send(Msg::Speech(speech));
                    };
                    super::voice::speak_pieces(pieces, convert, super::voice::play, &report).await;
                });
            }
            // The loop sees `should_quit` and leaves after this drain.
            Command::Quit => {}
        }
    }
}
