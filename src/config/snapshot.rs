//! The engine's view of one load of the configuration: the loaded files, what the sandbox
//! backend and the embedder resolve to, and every diagnostic. It lives here, below the
//! engine, so that the layers the engine drives (findings, the turn loop) can read it.

use std::sync::Arc;

use super::{BackendChoice, Config, Diagnostic, EmbedderChoice, Loaded};

/// Checks of files the engine does not read itself but must report on (a face's theme and
/// keymap files). Registered at start, run again on every reload.
pub type FileCheck = Arc<dyn Fn(&Loaded) -> Vec<Diagnostic> + Send + Sync>;

/// Everything derived from one load of the configuration; replaced whole on reload, so a
/// reader never sees half of an old and half of a new configuration.
pub struct Snapshot {
    pub loaded: Loaded,
    pub sandbox_backend: BackendChoice,
    pub embedder: EmbedderChoice,
    /// Config diagnostics followed by those of the file checks.
    pub diagnostics: Vec<Diagnostic>,
}

impl Snapshot {
    pub(crate) fn new(loaded: Loaded, file_checks: &[FileCheck]) -> Self {
        let sandbox_backend = loaded.config.sandbox.backend.resolve();
        let embedder = loaded.config.memory.embedder.resolve();
        for reason in [&sandbox_backend.fallback_reason, &embedder.fallback_reason]
            .into_iter()
            .flatten()
        {
            tracing::warn!("{reason}");
        }
        let mut diagnostics = loaded.diagnostics.clone();
        for check in file_checks {
            diagnostics.extend(check(&loaded));
        }
        Self {
            loaded,
            sandbox_backend,
            embedder,
            diagnostics,
        }
    }

    pub fn config(&self) -> &Config {
        &self.loaded.config
    }
}
