//! Opening a store: the embedder and graph edge budget it was built with, the consistency
//! check between LMDB, tantivy and the vectors with its repairs, the count of truncated
//! chunks in an older store, and the forced rebuild that clears every index.

use std::sync::Mutex;

use super::store::{ChunkRecord, Store, StoreError};
use super::text::TextIndex;
use super::types::*;
use super::{GraphLimits, Memory, MemoryOptions, Result, ingest, inspect, now_ms, vectors};

impl Memory {
    /// Open (creating if needed) the store, then check it against itself and repair.
    pub fn open(options: MemoryOptions) -> Result<Self> {
        let store = Store::open(&options.dir)?;
        let text = TextIndex::open(&options.dir.join("text"))?;
        Self::assemble(options, store, text, true)
    }

    /// For `memory index --force` when [`open`](Self::open) failed on a damaged full-text
    /// index: that index is thrown away unopened (the forced index rebuilds everything).
    pub fn open_for_rebuild(options: MemoryOptions) -> Result<Self> {
        let store = Store::open(&options.dir)?;
        let text_dir = options.dir.join("text");
        let text = match TextIndex::open(&text_dir) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!("{e}; starting it afresh");
                std::fs::remove_dir_all(&text_dir)?;
                TextIndex::open(&text_dir)?
            }
        };
        Self::assemble(options, store, text, false)
    }

    /// Clear every index, record the embedder in use and put the notes back; the files
    /// follow in the same index run. The caller holds the writer lock.
    pub(super) fn rebuild(&self) -> Result<()> {
        let notes = ingest::collect_notes(&self.store)?;
        let identity = self.options.embedder.identity();
        let budget = self.graph_limits.max_edges_per_chunk;
        self.write(|txn| {
            self.store.clear_all(txn)?;
            self.store.meta_put(txn, "embedder", &identity)?;
            self.store
                .meta_put(txn, ingest::TRUNCATED_KEY, &Vec::<ChunkId>::new())?;
            Ok(self
                .store
                .meta_put(txn, "graph_max_edges_per_chunk", &budget)?)
        })?;
        {
            // Scoped: tantivy allows one writer, and restoring the notes needs it.
            let mut text = self.text.writer()?;
            text.delete_all()?;
            text.commit()?;
        }
        *self.mismatch.write().unwrap_or_else(|p| p.into_inner()) = None;
        for note in &notes {
            ingest::restore_note(self, note)?;
        }
        Ok(())
    }

    fn assemble(
        options: MemoryOptions,
        store: Store,
        text: TextIndex,
        check: bool,
    ) -> Result<Self> {
        let identity = options.embedder.identity();
        let (stored, edges_budget) = store.read(|txn| -> Result<_> {
            Ok((
                store.meta_get::<EmbedderIdentity>(txn, "embedder")?,
                store.meta_get::<usize>(txn, "graph_max_edges_per_chunk")?,
            ))
        })?;
        let empty = store.read(|txn| -> Result<_> { Ok(store.dbs.chunks.is_empty(txn)?) })?;
        let mismatch = match stored {
            Some(stored) if stored != identity && !empty => Some(stored),
            Some(stored) if stored == identity => None,
            _ => {
                store.write(|txn| -> Result<_, StoreError> {
                    store.meta_put(txn, "embedder", &identity)
                })?;
                None
            }
        };
        let graph_limits = GraphLimits {
            max_nodes_per_document: options.graph.max_nodes_per_document,
            max_edges_per_chunk: match edges_budget {
                Some(budget) => budget,
                None => {
                    let budget = options.graph.max_edges_per_chunk;
                    store.write(|txn| -> Result<_, StoreError> {
                        store.meta_put(txn, "graph_max_edges_per_chunk", &budget)
                    })?;
                    budget
                }
            },
        };
        if let Some(stored) = &mismatch {
            tracing::warn!(
                "memory vectors were made by {} ({} dimensions) but {} is in use; vector search \
                 is off until `openclaw-rs memory index --force`",
                stored.name,
                stored.dimensions,
                identity.name
            );
        }
        let memory = Self {
            options,
            store,
            text,
            mismatch: std::sync::RwLock::new(mismatch),
            graph_limits,
            writer: Mutex::new(()),
            consistency: Mutex::new(Consistency::default()),
            cancel_build: std::sync::atomic::AtomicBool::new(false),
            running: std::sync::atomic::AtomicU32::new(0),
            build_after_pending: std::sync::atomic::AtomicU64::new(
                super::index::BUILD_AFTER_PENDING,
            ),
        };
        if check {
            let report = memory.check_and_repair()?;
            *memory.lock_consistency() = report;
        }
        memory.count_truncated_once()?;
        Ok(memory)
    }

    /// A store written before truncations were recorded (its chunks may be longer than the
    /// window) is counted once, so `memory status` tells the truth about it too.
    fn count_truncated_once(&self) -> Result<()> {
        let embedder = &self.options.embedder;
        if embedder.window().is_none() || !self.vectors_enabled() {
            return Ok(());
        }
        let recorded = self.read(|txn| {
            Ok(self
                .store
                .meta_get::<Vec<ChunkId>>(txn, ingest::TRUNCATED_KEY)?
                .is_some())
        })?;
        if recorded {
            return Ok(());
        }
        let _writer = self.lock_writer();
        let truncated = self.read(|txn| {
            let mut ids = Vec::new();
            for entry in self.store.dbs.chunks.iter(txn)? {
                let (id, chunk) = entry?;
                if embedder.truncates(&chunk.indexed_text()) {
                    ids.push(id);
                }
            }
            Ok(ids)
        })?;
        self.write(|txn| {
            Ok(self
                .store
                .meta_put(txn, ingest::TRUNCATED_KEY, &truncated)?)
        })
    }

    /// Compare the three indexes and repair what LMDB can rebuild: chunks missing from the
    /// text index, text entries without a chunk, chunks without a vector.
    pub fn check_and_repair(&self) -> Result<Consistency> {
        let _writer = self.lock_writer();
        let mut report = Consistency {
            checked_at: now_ms(),
            ..Default::default()
        };
        let text_diff = inspect::compare_text(&self.store, &self.text)?;
        report.missing_text = text_diff.missing.len() as u32;
        report.orphan_text = text_diff.orphans.len() as u32;
        if !text_diff.missing.is_empty() || !text_diff.orphans.is_empty() {
            let mut writer = match self.text.writer() {
                Ok(writer) => writer,
                Err(e) => {
                    // Another process is writing (and will finish the job); report only.
                    tracing::info!("consistency check: not repairing now: {e}");
                    report.ok = false;
                    return Ok(report);
                }
            };
            for id in &text_diff.orphans {
                writer.delete(id);
            }
            let txn = self.store.read_txn()?;
            for id in &text_diff.missing {
                if let Some(chunk) = self.store.dbs.chunks.get(&txn, &id)? {
                    writer.add(id, &chunk.indexed_text())?;
                }
            }
            drop(txn);
            writer.commit()?;
            report.repaired += report.missing_text + report.orphan_text;
        }
        if self.vectors_enabled() {
            let vectors = inspect::compare_vectors(&self.store, &text_diff.chunk_ids)?;
            report.missing_vectors = vectors.missing.len() as u32;
            if !vectors.missing.is_empty() || !vectors.stray.is_empty() {
                let repaired = self.embed_missing(&vectors.missing, &vectors.stray)?;
                report.repaired += repaired;
            }
        } else {
            report.missing_vectors = 0;
        }
        report.ok =
            report.missing_text + report.orphan_text + report.missing_vectors == report.repaired;
        self.write(|txn| Ok(self.store.meta_put(txn, "consistency", &report)?))?;
        Ok(report)
    }

    /// Embed the chunks in `missing` and drop the vectors in `stray`.
    fn embed_missing(
        &self,
        missing: &roaring::RoaringBitmap,
        stray: &roaring::RoaringBitmap,
    ) -> Result<u32> {
        let mut repaired = 0;
        let ids: Vec<u32> = missing.iter().collect();
        for batch in ids.chunks(256) {
            let chunks: Vec<ChunkRecord> = self.read(|txn| {
                let mut out = Vec::new();
                for id in batch {
                    out.extend(self.store.dbs.chunks.get(txn, id)?);
                }
                Ok(out)
            })?;
            let texts: Vec<String> = chunks.iter().map(ChunkRecord::indexed_text).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = match self.options.embedder.embed(&refs) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("cannot embed chunks missing a vector: {e}");
                    break;
                }
            };
            let items: Vec<(ChunkId, &[f32])> = chunks
                .iter()
                .zip(&vectors)
                .map(|(chunk, vector)| (chunk.id, vector.as_slice()))
                .collect();
            let truncated: Vec<ChunkId> = chunks
                .iter()
                .zip(&refs)
                .filter(|(_, text)| self.options.embedder.truncates(text))
                .map(|(chunk, _)| chunk.id)
                .collect();
            self.write(|txn| {
                vectors::put_many(&self.store.dbs, txn, &items)?;
                Ok(ingest::note_truncated(&self.store, txn, &truncated, &[])?)
            })?;
            repaired += chunks.len() as u32;
        }
        let stray: Vec<ChunkId> = stray.iter().collect();
        self.write(|txn| Ok(vectors::delete_many(&self.store.dbs, txn, &stray)?))?;
        Ok(repaired)
    }
}
