//! Which embedder the configuration resolves to, seen without loading it: where MiniLM's
//! files are looked for and the identity a store built now would record.

use std::path::PathBuf;

use super::{Embedder, HashEmbedder, RemoteEmbedder};
use crate::config::{EmbedderKind, Snapshot};
use crate::memory::types::EmbedderIdentity;

/// Where the MiniLM files are looked for: `memory.model_dir`, `<state>/models/minilm`, then
/// the cache directory `dist/fetch-models.sh` fills by default.
pub fn model_dirs(snapshot: &Snapshot) -> Vec<PathBuf> {
    let config = snapshot.config();
    let mut dirs = Vec::new();
    if let Some(dir) = &config.memory.model_dir {
        dirs.push(dir.clone());
        return dirs;
    }
    dirs.push(
        snapshot
            .loaded
            .paths
            .state_dir
            .join("models")
            .join("minilm"),
    );
    if let Some(base) = directories::BaseDirs::new() {
        dirs.push(
            base.cache_dir()
                .join("openclaw-rs")
                .join("models")
                .join("minilm"),
        );
    }
    dirs
}

/// The identity of the embedder the configuration resolves to now, with the same fallbacks
/// as the engine's `memory_options` but without loading a model or calling an endpoint: what the
/// doctor compares with the identity a store recorded. A remote embedder whose dimensions
/// are not configured gets 0 (unknown) dimensions.
pub fn configured_identity(snapshot: &Snapshot) -> EmbedderIdentity {
    let config = snapshot.config();
    let hash = || HashEmbedder::new(config.memory.dimensions as usize).identity();
    match snapshot.embedder.in_use {
        EmbedderKind::Hash => hash(),
        EmbedderKind::Minilm => minilm_identity(snapshot).unwrap_or_else(hash),
        EmbedderKind::Remote => {
            RemoteEmbedder::configured_identity(&config.memory.remote).unwrap_or_else(|_| hash())
        }
    }
}

#[cfg(not(feature = "edge"))]
fn minilm_identity(_snapshot: &Snapshot) -> Option<EmbedderIdentity> {
    None
}

/// Hashing the model reads about 90 MB; the TUI runs the doctor after every fix, so the
/// identity is kept while the files' sizes and times stay the same.
#[cfg(feature = "edge")]
fn minilm_identity(snapshot: &Snapshot) -> Option<EmbedderIdentity> {
    type Stamp = Vec<Option<(u64, Option<std::time::SystemTime>)>>;
    static LAST: std::sync::Mutex<Option<(PathBuf, Stamp, EmbedderIdentity)>> =
        std::sync::Mutex::new(None);
    let dirs = model_dirs(snapshot);
    let dir = dirs.iter().find(|dir| dir.join("model.onnx").is_file())?;
    let stamp: Stamp = ["model.onnx", "tokenizer.json"]
        .iter()
        .map(|name| {
            std::fs::metadata(dir.join(name))
                .ok()
                .map(|m| (m.len(), m.modified().ok()))
        })
        .collect();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((d, s, identity)) = last.as_ref()
        && d == dir
        && *s == stamp
    {
        return Some(identity.clone());
    }
    let identity = super::MiniLmEmbedder::identity_of(dir).ok()?;
    *last = Some((dir.clone(), stamp, identity.clone()));
    Some(identity)
}
