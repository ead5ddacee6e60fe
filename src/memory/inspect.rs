//! A look at a store without changing it, for the doctor: the same comparisons the repair at
//! open makes ([`Memory::check_and_repair`] uses them too), on the store the engine has open
//! or on a read-only opening of its own when nothing in this process holds it.

use std::path::Path;

use roaring::RoaringBitmap;

use super::store::Store;
use super::text::TextIndex;
use super::types::EmbedderIdentity;
use super::{Memory, Result};

/// Chunk ids in LMDB against entries in the full-text index.
pub struct TextDiff {
    pub chunk_ids: RoaringBitmap,
    /// Chunks the text index lacks.
    pub missing: RoaringBitmap,
    /// Text entries with no chunk behind them.
    pub orphans: RoaringBitmap,
}

pub fn compare_text(store: &Store, text: &TextIndex) -> Result<TextDiff> {
    let chunk_ids = chunk_ids(store)?;
    let text_ids = text.all_ids()?;
    Ok(TextDiff {
        missing: &chunk_ids - &text_ids,
        orphans: &text_ids - &chunk_ids,
        chunk_ids,
    })
}

fn chunk_ids(store: &Store) -> Result<RoaringBitmap> {
    store.read(|txn| {
        let mut ids = RoaringBitmap::new();
        for entry in store
            .dbs
            .chunks
            .remap_data_type::<heed::types::DecodeIgnore>()
            .iter(txn)?
        {
            ids.insert(entry?.0);
        }
        Ok(ids)
    })
}

/// Chunk ids against the vectors stored for them.
pub struct VectorDiff {
    pub missing: RoaringBitmap,
    pub stray: RoaringBitmap,
}

pub fn compare_vectors(store: &Store, chunk_ids: &RoaringBitmap) -> Result<VectorDiff> {
    let have = store.read(|txn| super::vectors::ids(&store.dbs, txn))?;
    Ok(VectorDiff {
        missing: chunk_ids - &have,
        stray: &have - chunk_ids,
    })
}

/// What the doctor learns about a store.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub chunks: u64,
    /// The embedder the stored vectors were made with, as recorded in the store.
    pub recorded_embedder: Option<EmbedderIdentity>,
    /// `None` when the indexes were not compared: a write was in progress in this process.
    pub consistency: Option<Differences>,
    /// How far the arroy forest is behind the stored vectors.
    pub ann: AnnLag,
}

/// The arroy forest against the store.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AnnLag {
    pub stored: u64,
    pub indexed: u64,
    /// Written or deleted since the last build.
    pub pending: u64,
}

impl AnnLag {
    /// Vectors the forest does not answer for: pending ones, or all when it was never built.
    pub fn behind(&self) -> u64 {
        self.pending.max(self.stored.saturating_sub(self.indexed))
    }
}

fn ann_lag(store: &Store) -> Result<AnnLag> {
    store.read(|txn| {
        Ok(AnnLag {
            stored: super::vectors::len(&store.dbs, txn)?,
            indexed: super::index::indexed(&store.dbs, txn)?,
            pending: super::index::pending_count(store, txn)?,
        })
    })
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Differences {
    pub missing_text: u64,
    pub orphan_text: u64,
    /// `None` when vectors were not compared: they came from another embedder, so vector
    /// search is off and only a forced rebuild brings them back.
    pub missing_vectors: Option<u64>,
    pub stray_vectors: u64,
}

impl Differences {
    pub fn is_consistent(&self) -> bool {
        self.missing_text == 0
            && self.orphan_text == 0
            && self.missing_vectors.unwrap_or(0) == 0
            && self.stray_vectors == 0
    }
}

/// Whether vectors made by `recorded` can be searched with `expected`. Zero dimensions in
/// `expected` mean "not known without asking the endpoint" (a remote embedder with no
/// `memory.remote.dimensions`); then the name and model decide.
pub fn identities_match(expected: &EmbedderIdentity, recorded: &EmbedderIdentity) -> bool {
    expected.name == recorded.name
        && expected.model_hash == recorded.model_hash
        && (expected.dimensions == 0 || expected.dimensions == recorded.dimensions)
}

/// `with_vectors`: compare the vectors too (not when another embedder made them).
fn differences(store: &Store, text: Option<&TextIndex>, with_vectors: bool) -> Result<Differences> {
    let diff = match text {
        Some(text) => compare_text(store, text)?,
        // No index directory at all: every chunk is missing from it.
        None => {
            let chunk_ids = chunk_ids(store)?;
            TextDiff {
                missing: chunk_ids.clone(),
                orphans: RoaringBitmap::new(),
                chunk_ids,
            }
        }
    };
    let mut out = Differences {
        missing_text: diff.missing.len(),
        orphan_text: diff.orphans.len(),
        ..Default::default()
    };
    if with_vectors {
        let vectors = compare_vectors(store, &diff.chunk_ids)?;
        out.missing_vectors = Some(vectors.missing.len());
        out.stray_vectors = vectors.stray.len();
    }
    Ok(out)
}

fn recorded(store: &Store) -> Result<(u64, Option<EmbedderIdentity>)> {
    store.read(|txn| {
        Ok((
            store.dbs.chunks.len(txn)?,
            store.meta_get::<EmbedderIdentity>(txn, "embedder")?,
        ))
    })
}

/// Open the store under `dir` read-only and compare its indexes; `Ok(None)` when there is
/// no store there yet. Vectors are compared when they came from `expected` (or when it is
/// not known), as the engine would use them.
///
/// The caller must make sure this process does not have the store open already: LMDB
/// forbids opening one environment twice in a process (the engine's open store is looked
/// at with [`Memory::inspect`] instead).
pub fn inspect_dir(dir: &Path, expected: Option<&EmbedderIdentity>) -> Result<Option<Inspection>> {
    if !dir.join("data.mdb").exists() {
        return Ok(None);
    }
    let store = Store::open_read_only(dir)?;
    let text_dir = dir.join("text");
    let text = if text_dir.join("meta.json").exists() {
        Some(TextIndex::open_existing(&text_dir)?)
    } else {
        None
    };
    let (chunks, recorded_embedder) = recorded(&store)?;
    let with_vectors = recorded_embedder
        .as_ref()
        .is_some_and(|r| expected.is_none_or(|e| identities_match(e, r)));
    let consistency = differences(&store, text.as_ref(), with_vectors)?;
    Ok(Some(Inspection {
        chunks,
        recorded_embedder,
        consistency: Some(consistency),
        ann: ann_lag(&store)?,
    }))
}

impl Memory {
    /// [`inspect_dir`] on this open store. Does not wait for a running write (an index run
    /// can take minutes): the indexes are then not compared, since they legitimately differ
    /// until the write commits.
    pub fn inspect(&self) -> Result<Inspection> {
        let (chunks, recorded_embedder) = recorded(&self.store)?;
        let compare = || -> Result<Differences> {
            // Commits of another process (a CLI index run) since the last refresh.
            self.text.reload()?;
            differences(&self.store, Some(&self.text), self.vectors_enabled())
        };
        let consistency = match self.writer.try_lock() {
            Ok(_writer) => Some(compare()?),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                let _writer = p.into_inner();
                Some(compare()?)
            }
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        Ok(Inspection {
            chunks,
            recorded_embedder,
            consistency,
            ann: ann_lag(&self.store)?,
        })
    }
}
