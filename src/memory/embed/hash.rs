//! The `hash` embedder: feature hashing of word unigrams and character 3-grams.
//!
//! No model, no allocation beyond the output, and stable across versions and platforms:
//! the hash is FNV-1a (64-bit) with fixed namespaces, never `DefaultHasher`, whose output
//! may change between Rust releases and would silently invalidate every stored vector.

use super::{EmbedError, Embedder, l2_normalize};
use crate::memory::types::EmbedderIdentity;

/// Bump when the features or hashing change: the identity changes with it, so stores built
/// with the old scheme ask for a rebuild instead of mixing vectors.
const ALGORITHM: &str = "fnv1a64-w1-c3-logtf-v1";

/// The embedder's name in its identity (and in a store's record of it).
pub const NAME: &str = "hash";

const WORD_NAMESPACE: u64 = 0x5744; // "WD"
const TRIGRAM_NAMESPACE: u64 = 0x4333; // "C3"

pub struct HashEmbedder {
    dimensions: usize,
}

impl HashEmbedder {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions: dimensions.max(1),
        }
    }

    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        // Feature hashes, sorted, so equal features sit together and are counted in one
        // pass (faster than a hash map for the few hundred features of a chunk).
        let mut features: Vec<u64> = Vec::with_capacity(text.len() + 16);
        let mut word = String::new();
        let mut padded: Vec<char> = Vec::new();
        let mut buf = [0u8; 12];
        for token in words(text) {
            word.clear();
            word.extend(token.chars().flat_map(char::to_lowercase));
            features.push(fnv1a(WORD_NAMESPACE, word.as_bytes()));
            // Trigrams of the word with boundary marks, so "cat" and "concatenate" differ
            // at the edges but still share their middle.
            padded.clear();
            padded.push('^');
            padded.extend(word.chars());
            padded.push('$');
            for window in padded.windows(3) {
                let mut len = 0;
                for c in window {
                    len += c.encode_utf8(&mut buf[len..]).len();
                }
                features.push(fnv1a(TRIGRAM_NAMESPACE, &buf[..len]));
            }
        }
        features.sort_unstable();
        let mut vector = vec![0.0f32; self.dimensions];
        for run in features.chunk_by(|a, b| a == b) {
            let hash = run[0];
            let bucket = (hash % self.dimensions as u64) as usize;
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            vector[bucket] += sign * (1.0 + (run.len() as f32).ln());
        }
        l2_normalize(&mut vector);
        vector
    }
}

impl Embedder for HashEmbedder {
    fn identity(&self) -> EmbedderIdentity {
        EmbedderIdentity {
            name: NAME.into(),
            dimensions: self.dimensions as u32,
            model_hash: ALGORITHM.into(),
        }
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|text| self.embed_one(text)).collect())
    }
}

/// Runs of letters and digits (any script); everything else separates words.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn fnv1a(namespace: u64, bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET ^ namespace.wrapping_mul(PRIME);
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let embedder = HashEmbedder::new(384);
        let a = embedder.embed_one("The quick brown fox jumps over the lazy dog");
        let b = embedder.embed_one("The quick brown fox jumps over the lazy dog");
        assert_eq!(a, b);
        assert_eq!(a.len(), 384);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }

    #[test]
    fn the_hash_is_stable_across_releases() {
        // Stored vectors depend on these exact values; changing them needs a new ALGORITHM.
        assert_eq!(fnv1a(0, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(0, b"a"), 0xaf63_dc4c_8601_ec8c);
        let v = HashEmbedder::new(384).embed_one("memory");
        let nonzero = v.iter().filter(|x| **x != 0.0).count();
        // One word plus its trigrams "^me mem emo mor ory ry$": at most 7 buckets.
        assert!((1..=7).contains(&nonzero), "{nonzero}");
    }

    #[test]
    fn related_text_is_closer_than_unrelated_text() {
        let embedder = HashEmbedder::new(384);
        let query = embedder.embed_one("deploying the database migration");
        let related = embedder.embed_one("We deployed the database migrations on Friday");
        let unrelated = embedder.embed_one("Lunch was a tomato soup with basil");
        assert!(cosine(&query, &related) > cosine(&query, &unrelated) + 0.1);
    }

    #[test]
    fn case_and_punctuation_do_not_matter_and_empty_text_is_zero() {
        let embedder = HashEmbedder::new(64);
        assert_eq!(
            embedder.embed_one("Hello, World!"),
            embedder.embed_one("hello world")
        );
        assert!(embedder.embed_one("  ... ").iter().all(|x| *x == 0.0));
    }
}
