//! The event loop: wait for something to happen, drain everything pending, apply it, and
//! draw once if anything changed. Idle costs nothing: there is no tick.

use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event, EventStream};
use futures_util::{FutureExt, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc};

use super::app::{App, Command, Msg};
use super::theme::Theme;
use super::ui;
use crate::engine::EngineHandle;

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
    let (tx, mut results) = mpsc::unbounded_channel::<Msg>();
    let mut events = engine.subscribe();
    let mut terminal_events = EventStream::new();
    let mut sigterm = signal(SignalKind::terminate()).wrap_err("installing SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).wrap_err("installing SIGHUP handler")?;
    let mut first_frame = true;

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
        }
        if app.should_quit {
            return Ok(());
        }

        let mut pending = Vec::new();
        tokio::select! {
            maybe = terminal_events.next() => match maybe {
                Some(Ok(event)) => pending.extend(terminal_msg(event)),
                Some(Err(e)) => return Err(e).wrap_err("reading terminal input"),
                // stdin closed: nobody can type any more.
                None => pending.push(Msg::Terminate),
            },
            Some(msg) = results.recv() => pending.push(msg),
            event = events.recv() => pending.extend(engine_msg(event)),
            _ = sigterm.recv() => pending.push(Msg::Terminate),
            _ = sighup.recv() => pending.push(Msg::Terminate),
        }
        // Drain whatever else is ready, so a burst costs one redraw.
        while let Some(Some(event)) = terminal_events.next().now_or_never() {
            match event {
                Ok(event) => pending.extend(terminal_msg(event)),
                Err(e) => return Err(e).wrap_err("reading terminal input"),
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
        }
    }
}

fn terminal_msg(event: Event) -> Option<Msg> {
    match event {
        Event::Key(key) => Some(Msg::Key(key)),
        Event::Resize(..) => Some(Msg::Resize),
        // Focus, paste and mouse events change nothing on screen yet.
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
            // The loop sees `should_quit` and leaves after this drain.
            Command::Quit => {}
        }
    }
}
