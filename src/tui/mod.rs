//! The full-screen face. The only module that knows about terminals.
//!
//! Data flow: key -> [`action::Action`] (via the keymap) -> [`app::App::update`] ->
//! [`app::Command`] -> engine call -> result as [`app::Msg`] -> state -> one redraw.

pub mod action;
pub mod app;
pub mod conversations;
mod driver;
pub mod findings;
pub mod keymap;
pub mod memory;
pub mod message;
pub mod overlay;
pub mod panes;
pub mod paste;
pub mod providers;
pub mod theme;
pub mod ui;
pub mod voice;
pub mod widgets;

use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};

use crate::config::{Diagnostic, valid_name};
use crate::engine::Engine;

/// A user's theme or keymap file, as found in the state dir.
pub(crate) struct UserFile {
    /// The name to use: the one asked for, or `default` when it was not a safe file name.
    pub name: String,
    pub path: std::path::PathBuf,
    /// The file's text and its display name, when it exists and could be read.
    pub text: Option<(String, String)>,
}

/// Find `<dir>/<name>.toml` for `kind` ("theme", "keymap"). Names that could escape the dir
/// are refused; unreadable files are reported. Never fails.
pub(crate) fn user_file(
    kind: &str,
    name: &str,
    dir: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> UserFile {
    let name = if valid_name(name) {
        name
    } else {
        diags.push(Diagnostic::error(
            kind,
            format!("{kind} name '{name}' is not valid; using default"),
        ));
        "default"
    };
    let path = dir.join(format!("{name}.toml"));
    let text = if path.exists() {
        let source = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => Some((source, text)),
            Err(e) => {
                diags.push(Diagnostic::error(source, format!("cannot read: {e}")));
                None
            }
        }
    } else {
        None
    };
    UserFile {
        name: name.to_string(),
        path,
        text,
    }
}

/// The TUI's own files (theme, keymap) checked for the engine, so `config check`, `health`
/// and the findings pane report a broken one even when the TUI is not running.
pub fn file_checks() -> Vec<crate::engine::FileCheck> {
    vec![std::sync::Arc::new(|loaded: &crate::config::Loaded| {
        let ui = &loaded.config.ui;
        let (_, mut diagnostics) = theme::Theme::load(&ui.theme, &loaded.paths.themes_dir, false);
        diagnostics.extend(keymap::Keymap::load(&ui.keymap, &loaded.paths.keymaps_dir).1);
        diagnostics
    })]
}

/// Colours the terminal says it has, from the conventions terminals follow.
fn advertised_colors() -> u32 {
    let colorterm = std::env::var("COLORTERM").unwrap_or_default();
    let term = std::env::var("TERM").unwrap_or_default();
    if colorterm.contains("truecolor") || colorterm.contains("24bit") {
        16_777_216
    } else if term.contains("256color") || term.contains("direct") {
        256
    } else {
        16
    }
}

/// The TUI's event loop on any backend, with terminal input from `input`: what [`run`] does
/// after setting up the terminal. Tests drive the whole TUI in-process with it (keys in,
/// a `TestBackend` screen out, a real engine behind).
pub async fn drive<B: ratatui::backend::Backend>(
    terminal: &mut ratatui::Terminal<B>,
    app: &mut app::App,
    theme: &theme::Theme,
    engine: crate::engine::EngineHandle,
    input: tokio::sync::mpsc::UnboundedReceiver<std::io::Result<crossterm::event::Event>>,
) -> Result<()>
where
    B::Error: Send + Sync + 'static,
{
    driver::run_with_input(terminal, app, theme, engine, Instant::now(), input).await
}

/// Run the TUI until the user quits. Returns the process exit status.
pub async fn run(engine: &Engine, started: Instant, no_color: bool) -> Result<i32> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        eprintln!(
            "openclaw-rs: stdout is not a terminal, so the TUI cannot start; \
             use --batch or a subcommand (see --help) for scripted use"
        );
        return Ok(crate::cli::exit::USAGE);
    }
    let handle = engine.handle();
    let snapshot = handle.snapshot();
    let (paths, ui) = (&snapshot.loaded.paths, &snapshot.config().ui);
    // Problems in these files reach the user through the engine's file checks.
    let (theme, _) = theme::Theme::load(&ui.theme, &paths.themes_dir, no_color);
    let (keymap, _) = keymap::Keymap::load(&ui.keymap, &paths.keymaps_dir);
    let mut app = app::App::new(keymap, theme.name.clone());
    app.terminal.colors = advertised_colors();

    let mut terminal = ratatui::try_init().wrap_err("cannot start the terminal UI")?;
    // Bracketed paste: a paste arrives as one event, so its newlines do not press Enter.
    // ratatui's restore (and its panic hook) knows only raw mode and the alternate screen;
    // this mode is switched off beside it on every path out, the panic hook included.
    let pasting = crossterm::execute!(std::io::stdout(), EnableBracketedPaste);
    if let Err(e) = &pasting {
        tracing::warn!("bracketed paste not enabled: {e}");
    }
    install_paste_panic_hook();
    let result = driver::run(&mut terminal, &mut app, &theme, handle, started).await;
    // Restore on every path out, error or not; the panic hook covers panics.
    restore_terminal();
    result.map(|()| crate::cli::exit::OK)
}

/// Put the terminal back as it was: bracketed paste off, then what ratatui set up (raw mode,
/// alternate screen). Errors are ignored: there is nothing better to do on the way out.
fn restore_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), DisableBracketedPaste);
    ratatui::restore();
}

/// Chain a panic hook that restores the whole terminal before the hooks installed so far
/// (ratatui's restore, then the error report) run, so a panic never leaves the shell in
/// bracketed-paste mode.
fn install_paste_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), DisableBracketedPaste);
        previous(info);
    }));
}
