//! The full-screen face. The only module that knows about terminals.
//!
//! Data flow: key -> [`action::Action`] (via the keymap) -> [`app::App::update`] ->
//! [`app::Command`] -> engine call -> result as [`app::Msg`] -> state -> one redraw.

pub mod action;
pub mod app;
mod driver;
pub mod keymap;
pub mod panes;
pub mod theme;
pub mod ui;
pub mod widgets;

use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr};

use crate::engine::Engine;

/// Run the TUI until the user quits. Returns the process exit status.
pub async fn run(engine: &Engine, started: Instant, no_color: bool) -> Result<i32> {
    let handle = engine.handle();
    let loaded = handle.loaded();
    let (theme, mut diagnostics) =
        theme::Theme::load(&loaded.config.ui.theme, &loaded.paths.themes_dir, no_color);
    let (keymap, keymap_diagnostics) =
        keymap::Keymap::load(&loaded.config.ui.keymap, &loaded.paths.keymaps_dir);
    diagnostics.extend(keymap_diagnostics);
    for d in &diagnostics {
        tracing::warn!("{d}");
    }
    handle.add_diagnostics(diagnostics);
    let mut app = app::App::new(keymap, theme.name.clone());

    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        eprintln!(
            "openclaw-rs: stdout is not a terminal, so the TUI cannot start; \
             use --batch or a subcommand (see --help) for scripted use"
        );
        return Ok(crate::commands::exit::USAGE);
    }
    let mut terminal = ratatui::try_init().wrap_err("cannot start the terminal UI")?;
    let result = driver::run(&mut terminal, &mut app, &theme, handle, started).await;
    // Restore on every path out, error or not; the panic hook covers panics.
    ratatui::restore();
    result.map(|()| crate::commands::exit::OK)
}
