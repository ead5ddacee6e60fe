//! Persistent memory: documents and chunks in LMDB (heed), full text in tantivy, vectors in
//! arroy, and a graph of what the text mentions, searched together.

pub mod embed;
pub mod types;
