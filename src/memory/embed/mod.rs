//! Embedders: text to a unit-length vector, behind one trait, each with a recorded identity
//! so a store never mixes vectors from two of them.

mod configured;
pub mod hash;
#[cfg(feature = "edge")]
mod minilm;
mod remote;

pub use configured::{configured_identity, model_dirs};
pub use hash::HashEmbedder;
#[cfg(feature = "edge")]
pub use minilm::MiniLmEmbedder;
pub use remote::RemoteEmbedder;

/// Where the edge build keeps MiniLM's decluttered graph between processes.
pub fn minilm_cache_dir(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("cache").join("minilm")
}

use super::types::EmbedderIdentity;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("model directory {dir}: {message}")]
    Model { dir: String, message: String },
    #[error("embedding failed: {0}")]
    Failed(String),
}

pub trait Embedder: Send + Sync {
    fn identity(&self) -> EmbedderIdentity;

    fn dimensions(&self) -> usize;

    /// One vector per text, each L2-normalised (or all zeros for text with no features).
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// How many tokens of text (as [`count_tokens`](Self::count_tokens) counts them) reach a
    /// vector; the rest is cut off. `None`: the whole text counts, whatever its length.
    fn window(&self) -> Option<usize> {
        None
    }

    /// The tokens `text` is to this embedder, without any special tokens the model adds.
    /// Only meaningful with a [`window`](Self::window).
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    /// Whether embedding `text` cuts part of it off.
    fn truncates(&self, text: &str) -> bool {
        self.window()
            .is_some_and(|window| self.count_tokens(text) > window)
    }
}

/// Scale `vector` to unit length in place; a zero vector stays zero.
pub fn l2_normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in vector {
            *x /= norm;
        }
    }
}
