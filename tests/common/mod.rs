//! What the integration tests share: the binary with a clean environment, its JSON output,
//! a temporary state dir with a given config, the engine started in-process (`engine`), and a fake model provider (`fake_provider`).
// Each test crate uses some of these; the others would warn as dead code in that crate.
#![allow(dead_code)]

pub mod engine;
pub mod fake_provider;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

/// The binary for the state dir `home`, without the caller's `OPENCLAW_RS_*` settings and
/// `RUST_LOG`: only what a test sets reaches it.
pub fn bin(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("OPENCLAW_RS_") {
            c.env_remove(key);
        }
    }
    c.env_remove("RUST_LOG");
    c.arg("--home").arg(home);
    c
}

/// A fresh temporary state dir whose `config.toml` holds `text`; deleted when dropped.
pub fn home_with_config(text: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(home.path().join("config.toml"), text).expect("config.toml written");
    home
}

/// Stdout as one JSON value; a failure shows both streams.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
