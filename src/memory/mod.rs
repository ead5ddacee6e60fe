//! Persistent memory: documents, chunks and vectors in LMDB (heed), full text in tantivy, and
//! a graph of what the text mentions, searched together.
//!
//! LMDB is the source of truth. A chunk's record, vector and graph edges are committed in
//! one transaction; the tantivy index follows and is checked against LMDB at every open, so
//! a crash at any point leaves a store that opens and repairs itself.

pub mod chunk;
pub mod embed;
pub mod graph;
pub mod index;
mod ingest;
pub mod inspect;
mod open;
mod search;
pub mod store;
pub mod text;
pub mod types;
pub mod vectors;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use heed::RoTxn;
use sha2::{Digest, Sha256};

use self::chunk::{ChunkOptions, Chunker, TokenFit};
use self::embed::{EmbedError, Embedder};
use self::graph::GraphLimits;
use self::store::{ChunkRecord, DocumentRecord, Store, StoreError};
use self::text::{TextError, TextIndex};
use self::types::*;

pub use self::ingest::IndexProgress;

/// Where a process keeps its open store: empty until first use. Whoever reads the store
/// outside the owner (the memory checks) holds the lock for the whole look, so the owner
/// cannot open the store meanwhile.
pub type MemorySlot = Arc<tokio::sync::Mutex<Option<Arc<Memory>>>>;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Cancelled(String),
}

impl From<index::BuildError> for MemoryError {
    fn from(e: index::BuildError) -> Self {
        match e {
            index::BuildError::Cancelled => MemoryError::Cancelled(e.to_string()),
            index::BuildError::Store(e) => MemoryError::Store(e),
        }
    }
}

impl From<heed::Error> for MemoryError {
    fn from(e: heed::Error) -> Self {
        MemoryError::Store(e.into())
    }
}

pub type Result<T, E = MemoryError> = std::result::Result<T, E>;

impl store::MapFull for MemoryError {
    fn is_map_full(&self) -> bool {
        matches!(self, MemoryError::Store(e) if e.is_map_full())
    }
}

/// Ranking settings, from `[memory.search]`.
#[derive(Debug, Clone, Copy)]
pub struct SearchDefaults {
    pub fusion: Fusion,
    pub vector_weight: f32,
    pub text_weight: f32,
    pub mmr: f32,
    pub half_life_days: f32,
    /// Vector neighbours less similar than this (cosine) are not hits: nearest is not
    /// the same as related.
    pub min_similarity: f32,
}

impl Default for SearchDefaults {
    fn default() -> Self {
        Self {
            fusion: Fusion::Weighted,
            vector_weight: 0.7,
            text_weight: 0.3,
            mmr: 0.0,
            half_life_days: 0.0,
            min_similarity: 0.2,
        }
    }
}

pub struct MemoryOptions {
    /// `<state>/memory`: LMDB here, tantivy in `text/`.
    pub dir: PathBuf,
    /// Where `paths` are resolved.
    pub workspace: PathBuf,
    /// Files to ingest, relative to the workspace; globs allowed.
    pub paths: Vec<String>,
    pub chunking: ChunkOptions,
    pub graph: GraphLimits,
    pub search: SearchDefaults,
    pub embedder: Arc<dyn Embedder>,
    /// `memory.vector_index`: scan, arroy, or chosen by the store's size.
    pub vector_index: VectorIndexChoice,
    /// Why the embedder in use is not the one configured, when it is not.
    pub embedder_notice: Option<String>,
}

pub struct Memory {
    options: MemoryOptions,
    store: Store,
    text: TextIndex,
    /// The embedder the stored vectors came from, when it is not the one in use: vector
    /// search and vector writes stay off until a forced rebuild.
    mismatch: std::sync::RwLock<Option<EmbedderIdentity>>,
    graph_limits: GraphLimits,
    /// One writer at a time (tantivy allows one, and ingestion is sequential anyway).
    writer: Mutex<()>,
    consistency: Mutex<Consistency>,
    /// Set to stop a running index run or vector index build; cleared when the next starts.
    cancel_build: std::sync::atomic::AtomicBool,
    /// Index runs and builds under way (a cancel reports whether it stopped one).
    running: std::sync::atomic::AtomicU32,
    /// Vectors waiting for the forest before [`Memory::build_due`] says so
    /// ([`index::BUILD_AFTER_PENDING`]; smaller in tests).
    build_after_pending: std::sync::atomic::AtomicU64,
}

impl Memory {
    /// The chunker for this store: chunks fit the embedder's window when it has one.
    fn chunker(&self) -> Chunker {
        let embedder = Arc::clone(&self.options.embedder);
        let fit = embedder.window().map(|window| TokenFit {
            window,
            count: Arc::new(move |text: &str| embedder.count_tokens(text)),
        });
        Chunker::fitted(self.options.chunking, fit)
    }

    fn read<T>(&self, f: impl FnOnce(&RoTxn<'_>) -> Result<T>) -> Result<T> {
        self.store.read(f)
    }

    fn write<T>(&self, f: impl FnMut(&mut heed::RwTxn<'_>) -> Result<T>) -> Result<T> {
        self.store.write(f)
    }

    pub fn options(&self) -> &MemoryOptions {
        &self.options
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_consistency(&self) -> std::sync::MutexGuard<'_, Consistency> {
        self.consistency.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether vectors can be written and searched with the embedder in use.
    fn vectors_enabled(&self) -> bool {
        self.mismatch().is_none()
    }

    fn mismatch(&self) -> Option<EmbedderIdentity> {
        self.mismatch
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    // ---- add / get / delete -----------------------------------------------------------------

    pub fn add(&self, mut params: AddParams) -> Result<AddResult> {
        // A conversation turn saved to memory is a model's words as much as the session
        // file is: stored as the faces showed it, secrets redacted.
        if params.session.is_some() {
            params.text = crate::secrets::redact::redact(&params.text);
        }
        if params.text.trim().is_empty() {
            return Err(MemoryError::Invalid("memory.add needs some text".into()));
        }
        let source = params
            .source
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("note")
            .to_string();
        let _writer = self.lock_writer();
        // Stored, and found by the scan of what waits for the forest: the note is searchable
        // when this returns. The forest's build is not on this path (see `build_due`).
        ingest::add_note(self, &source, params)
    }

    /// Whether enough vectors wait for the arroy forest that a build should follow: notes
    /// arrive one at a time and are scanned exactly until then (cheap). `memory.add` returns
    /// before any build; the engine runs it afterwards, in the background.
    pub fn build_due(&self) -> Result<bool> {
        if !self.vectors_enabled() {
            return Ok(false);
        }
        self.read(|txn| {
            let stored = vectors::len(&self.store.dbs, txn)?;
            if index::resolve(self.options.vector_index, stored, self.auto_crossover())
                != VectorIndexKind::Arroy
            {
                return Ok(false);
            }
            let waiting = match index::last_build(&self.store, txn)? {
                Some(_) => index::pending_count(&self.store, txn)?,
                // Never built: everything waits.
                None => stored,
            };
            Ok(waiting
                >= self
                    .build_after_pending
                    .load(std::sync::atomic::Ordering::Relaxed))
        })
    }

    /// Lower the [`build_due`](Self::build_due) threshold, so tests need not add a thousand
    /// notes.
    #[cfg(test)]
    pub(crate) fn set_build_after_pending(&self, vectors: u64) {
        self.build_after_pending
            .store(vectors, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self, params: GetParams) -> Result<GetResult> {
        let txn = self.store.read_txn()?;
        let chunk =
            match params.chunk_id {
                Some(id) => {
                    let chunk =
                        self.store.dbs.chunks.get(&txn, &id)?.ok_or_else(|| {
                            MemoryError::NotFound(format!("no chunk with id {id}"))
                        })?;
                    let has_vector = vectors::contains(&self.store.dbs, &txn, id)?;
                    Some(chunk_view(&chunk, has_vector))
                }
                None => None,
            };
        let document = match params.document_id.or(chunk.as_ref().map(|c| c.document_id)) {
            Some(id) => match self.store.dbs.documents.get(&txn, &id)? {
                Some(doc) => Some(document_view(&doc)),
                None if params.document_id.is_some() => {
                    return Err(MemoryError::NotFound(format!("no document with id {id}")));
                }
                None => None,
            },
            None => None,
        };
        if chunk.is_none() && document.is_none() {
            return Err(MemoryError::Invalid(
                "memory.get needs chunkId or documentId".into(),
            ));
        }
        Ok(GetResult { chunk, document })
    }

    pub fn delete(&self, params: DeleteParams) -> Result<DeleteResult> {
        let _writer = self.lock_writer();
        let (doc_id, only_chunk) = match (params.document_id, params.chunk_id) {
            (Some(doc), None) => (doc, None),
            (None, Some(chunk)) => {
                let record = self
                    .read(|txn| Ok(self.store.dbs.chunks.get(txn, &chunk)?))?
                    .ok_or_else(|| MemoryError::NotFound(format!("no chunk with id {chunk}")))?;
                (record.document_id, Some(chunk))
            }
            _ => {
                return Err(MemoryError::Invalid(
                    "memory.delete needs exactly one of chunkId and documentId".into(),
                ));
            }
        };
        let doc = self
            .read(|txn| Ok(self.store.dbs.documents.get(txn, &doc_id)?))?
            .ok_or_else(|| MemoryError::NotFound(format!("no document with id {doc_id}")))?;
        let doomed: Vec<ChunkId> = match only_chunk {
            Some(id) => vec![id],
            None => doc.chunk_ids.clone(),
        };
        let remaining: Vec<ChunkId> = doc
            .chunk_ids
            .iter()
            .copied()
            .filter(|id| !doomed.contains(id))
            .collect();
        let delete_document = remaining.is_empty();
        let mut text = ingest::TextSession::new(self)?;
        ingest::remove_chunks(self, &mut text, &doomed)?;
        text.commit()?;
        drop(text);
        self.write(|txn| {
            if delete_document {
                ingest::remove_document_record(self, txn, &doc)?;
            } else {
                let mut doc = doc.clone();
                doc.chunk_ids = remaining.clone();
                self.store.dbs.documents.put(txn, &doc.id, &doc)?;
            }
            Ok(())
        })?;
        Ok(DeleteResult {
            deleted_chunks: doomed.len() as u32,
            deleted_documents: u32::from(delete_document),
        })
    }

    // ---- index / search / status ------------------------------------------------------------

    pub fn index(
        &self,
        params: IndexParams,
        progress: &dyn Fn(IndexProgress),
    ) -> Result<IndexResult> {
        let _writer = self.lock_writer();
        let _running = self.running();
        // A cancel from here on stops this run's build, also one sent while files are read.
        self.cancel_build
            .store(false, std::sync::atomic::Ordering::Relaxed);
        if params.force {
            progress(IndexProgress {
                done: 0,
                total: 0,
                message: "clearing the indexes".into(),
            });
            self.rebuild()?;
        }
        let result = ingest::index(self, params, progress)?;
        if self.cancel_build.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(MemoryError::Cancelled(format!(
                "the index run was cancelled: {} file(s) indexed are kept, the vector index \
                 is unchanged and the rest waits for the next run",
                result.indexed_files
            )));
        }
        // Only what this run changed goes into the forest.
        self.build_vector_index_locked(&|p: index::BuildProgress| {
            progress(IndexProgress {
                done: p.done,
                total: p.total,
                message: format!("vector index: {}", p.message),
            })
        })?;
        if result.forced {
            // Everything was written just now; record that the three indexes agree.
            drop(_writer);
            let report = self.check_and_repair()?;
            *self.lock_consistency() = report;
        }
        Ok(result)
    }

    /// The vector index that answers searches for the store as it is in `txn`.
    fn vector_index(&self, txn: &RoTxn<'_>) -> Result<Box<dyn index::VectorIndex + Send + Sync>> {
        let stored = vectors::len(&self.store.dbs, txn)?;
        Ok(index::for_kind(index::resolve(
            self.options.vector_index,
            stored,
            self.auto_crossover(),
        )))
    }

    /// Where `auto` turns to arroy for this store's embedder.
    fn auto_crossover(&self) -> Option<u64> {
        index::auto_crossover(&self.options.embedder.identity())
    }

    /// Bring the arroy forest up to date when it is the index in effect (only what changed
    /// since its last build is rebuilt). `None` when there was nothing to do.
    pub fn build_vector_index(
        &self,
        progress: &dyn Fn(index::BuildProgress),
    ) -> Result<Option<AnnBuild>> {
        let _writer = self.lock_writer();
        let _running = self.running();
        self.cancel_build
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.build_vector_index_locked(progress)
    }

    /// Counts an index run or build as under way until the guard is dropped.
    fn running(&self) -> impl Drop + '_ {
        struct Running<'a>(&'a std::sync::atomic::AtomicU32);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        self.running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running(&self.running)
    }

    fn build_vector_index_locked(
        &self,
        progress: &dyn Fn(index::BuildProgress),
    ) -> Result<Option<AnnBuild>> {
        use std::sync::atomic::Ordering;
        if !self.vectors_enabled() {
            return Ok(None);
        }
        let stored = self.read(|txn| Ok(vectors::len(&self.store.dbs, txn)?))?;
        if index::resolve(self.options.vector_index, stored, self.auto_crossover())
            != VectorIndexKind::Arroy
        {
            return Ok(None);
        }
        if self.cancel_build.load(Ordering::Relaxed) {
            return Err(index::BuildError::Cancelled.into());
        }
        tracing::info!(stored, "building the vector index");
        let control = index::BuildControl {
            progress,
            cancel: &self.cancel_build,
            trees: None,
        };
        Ok(index::build(
            &self.store,
            self.options.embedder.dimensions(),
            &control,
        )?)
    }

    /// Stop the running index run or vector index build: files indexed so far stay, nothing
    /// of the build is kept and the previous index answers. True when one was running.
    pub fn cancel_build(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.running.load(Ordering::SeqCst) == 0 {
            return false;
        }
        self.cancel_build.store(true, Ordering::Relaxed);
        true
    }

    pub fn search(&self, params: SearchParams) -> Result<SearchResult> {
        search::search(self, params)
    }

    pub fn status(&self) -> Result<StatusResult> {
        let txn = self.store.read_txn()?;
        let dbs = &self.store.dbs;
        let vectors = vectors::len(dbs, &txn)?;
        let last_index = self.store.meta_get::<LastIndex>(&txn, "last_index")?;
        let window = self.options.embedder.window();
        let truncated_chunks = match window {
            Some(_) => self
                .store
                .meta_get::<Vec<ChunkId>>(&txn, ingest::TRUNCATED_KEY)?
                .map_or(0, |ids| ids.len() as u64),
            None => 0,
        };
        let status = StatusResult {
            enabled: true,
            dir: self.options.dir.display().to_string(),
            workspace: self.options.workspace.display().to_string(),
            schema_version: store::SCHEMA_VERSION,
            documents: dbs.documents.len(&txn)?,
            chunks: dbs.chunks.len(&txn)?,
            vectors,
            text_entries: self.text.num_docs(),
            nodes: dbs.nodes.len(&txn)?,
            edges: dbs.edges_out.len(&txn)?,
            lmdb_bytes: self.store.disk_size(),
            text_bytes: self.text.disk_size(),
            map_size_bytes: self.store.map_size(),
            embedder: self.options.embedder.identity(),
            embedder_window: window.map(|w| u32::try_from(w).unwrap_or(u32::MAX)),
            truncated_chunks,
            embedder_notice: self.options.embedder_notice.clone(),
            embedder_mismatch: self.mismatch(),
            last_index,
            consistency: self.lock_consistency().clone(),
            vector_index: VectorIndexStatus {
                setting: self.options.vector_index,
                kind: index::resolve(self.options.vector_index, vectors, self.auto_crossover()),
                stored: vectors,
                indexed: index::indexed(dbs, &txn)?,
                pending: index::pending_count(&self.store, &txn)?,
                last_build: index::last_build(&self.store, &txn)?,
                build: index::build_state(self.store.dir()),
            },
        };
        Ok(status)
    }

    /// The `k` nearest chunks to `vector`: as search finds them, or by exact cosine over
    /// every stored vector. For measuring recall and for tests.
    pub fn nearest(&self, vector: &[f32], k: usize, exact: bool) -> Result<Vec<(ChunkId, f32)>> {
        let txn = self.store.read_txn()?;
        Ok(if exact {
            vectors::nearest_exact(&self.store.dbs, &txn, vector, k)?
        } else {
            self.vector_index(&txn)?
                .nearest(&self.store.dbs, &txn, vector, k, None)?
        })
    }

    /// Every stored vector by chunk id, in id order (for exporting a benchmark corpus).
    pub fn vectors(&self) -> Result<Vec<(ChunkId, Vec<f32>)>> {
        let txn = self.store.read_txn()?;
        Ok(vectors::all(&self.store.dbs, &txn)?)
    }

    /// A chunk's indexed text (headings and body), for exporting a benchmark corpus.
    pub fn chunk_text(&self, id: ChunkId) -> Result<Option<String>> {
        let txn = self.store.read_txn()?;
        Ok(self
            .store
            .dbs
            .chunks
            .get(&txn, &id)?
            .map(|c| c.indexed_text()))
    }

    // ---- graph ------------------------------------------------------------------------------

    fn resolve_node(&self, txn: &RoTxn<'_>, node: &NodeRef) -> Result<store::NodeRecord> {
        graph::resolve(&self.store, txn, node)?.ok_or_else(|| {
            MemoryError::NotFound(match node {
                NodeRef::Id(id) => format!("no graph node with id {id}"),
                NodeRef::Key(key) => format!(
                    "no graph node '{key}' (keys look like tag:rust, entity:ada lovelace, chunk:12)"
                ),
            })
        })
    }

    pub fn neighbors(&self, params: NeighborsParams) -> Result<NeighborsResult> {
        let txn = self.store.read_txn()?;
        let center = self.resolve_node(&txn, &params.node)?;
        let depth = params.depth.unwrap_or(1).clamp(1, 4);
        let limit = params.limit.unwrap_or(50).clamp(1, 500);
        let found = graph::neighbors(
            &self.store,
            &txn,
            center.id,
            depth,
            &params.edge_kinds,
            limit,
        )?;
        Ok(NeighborsResult {
            center: graph::node_view(&center, Some(0)),
            nodes: found.nodes,
            edges: found.edges,
            truncated: found.truncated,
        })
    }

    pub fn path(&self, params: PathParams) -> Result<PathResult> {
        let txn = self.store.read_txn()?;
        let from = self.resolve_node(&txn, &params.from)?;
        let to = self.resolve_node(&txn, &params.to)?;
        let max_depth = params.max_depth.unwrap_or(6).clamp(1, 12);
        let found = graph::shortest_path(
            &self.store,
            &txn,
            from.id,
            to.id,
            max_depth,
            &params.edge_kinds,
        )?;
        let Some((ids, edges)) = found else {
            return Ok(PathResult {
                found: false,
                nodes: Vec::new(),
                edges: Vec::new(),
            });
        };
        let mut nodes = Vec::with_capacity(ids.len());
        for (depth, id) in ids.iter().enumerate() {
            if let Some(record) = self.store.dbs.nodes.get(&txn, id)? {
                nodes.push(graph::node_view(&record, Some(depth as u32)));
            }
        }
        Ok(PathResult {
            found: true,
            nodes,
            edges,
        })
    }

    pub fn node(&self, params: NodeParams) -> Result<NodeResult> {
        let txn = self.store.read_txn()?;
        let node = self.resolve_node(&txn, &params.node)?;
        let mut counts: std::collections::BTreeMap<EdgeKind, u32> = Default::default();
        for direction in [graph::Direction::Out, graph::Direction::In] {
            for (kind, _, _) in graph::edges_of(&self.store, &txn, node.id, direction)? {
                if !(kind == EdgeKind::CoOccurs && direction == graph::Direction::In) {
                    *counts.entry(kind).or_default() += 1;
                }
            }
        }
        let limit = params.chunk_limit.unwrap_or(20).clamp(1, 200);
        let mut chunks = Vec::new();
        for id in graph::chunks_of(&self.store, &txn, &node, limit)? {
            if let Some(chunk) = self.store.dbs.chunks.get(&txn, &id)? {
                let has_vector = vectors::contains(&self.store.dbs, &txn, id)?;
                chunks.push(chunk_view(&chunk, has_vector));
            }
        }
        Ok(NodeResult {
            node: graph::node_view(&node, None),
            edge_counts: counts
                .into_iter()
                .map(|(kind, count)| EdgeCount { kind, count })
                .collect(),
            chunks,
        })
    }

    pub fn top(&self, params: TopParams) -> Result<TopResult> {
        let txn = self.store.read_txn()?;
        let limit = params.limit.unwrap_or(20).clamp(1, 500);
        Ok(TopResult {
            nodes: graph::top(&self.store, &txn, params.kind, limit)?,
        })
    }
}

pub fn chunk_view(chunk: &ChunkRecord, has_vector: bool) -> ChunkView {
    ChunkView {
        chunk_id: chunk.id,
        document_id: chunk.document_id,
        source: chunk.source.clone(),
        line_start: chunk.line_start,
        line_end: chunk.line_end,
        heading: chunk.heading.clone(),
        text: chunk.text.clone(),
        tags: chunk.tags.clone(),
        created_at: chunk.created_at,
        has_vector,
    }
}

fn document_view(doc: &DocumentRecord) -> DocumentView {
    DocumentView {
        document_id: doc.id,
        source: doc.source.clone(),
        kind: doc.kind,
        chunk_ids: doc.chunk_ids.clone(),
        bytes: doc.size,
        indexed_at: doc.indexed_at,
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Where the workspace is: `workspace` from the config, else `<state>/workspace`.
pub fn workspace_dir(state_dir: &Path, configured: Option<&Path>) -> PathBuf {
    match configured {
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        Some(dir) => state_dir.join(dir),
        None => state_dir.join("workspace"),
    }
}

#[cfg(test)]
mod tests;
