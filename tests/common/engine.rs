//! The engine in-process, started the way the benches start it again and again: from a
//! state dir whose `config.toml` the caller wrote, with no file checks.

use std::path::Path;

use openclaw_rs::config::{LoadOptions, load};
use openclaw_rs::engine::Engine;

/// The engine on `state_dir`, which must load without a diagnostic: a typo in the config a
/// run wrote would otherwise measure the defaults instead.
pub fn start_clean(state_dir: &Path) -> Engine {
    let engine = Engine::start(
        load(&LoadOptions {
            state_dir: state_dir.to_path_buf(),
            ..Default::default()
        }),
        Vec::new(),
    );
    let h = engine.handle();
    assert!(
        h.snapshot().diagnostics.is_empty(),
        "{:?}",
        h.snapshot().diagnostics
    );
    engine
}
