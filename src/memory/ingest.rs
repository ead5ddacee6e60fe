//! Getting text in: workspace files (incremental by mtime and content hash), notes from
//! `memory.add`, and forced rebuilds. Files are read line by line and written in batches,
//! so memory stays bounded whatever the file size. The file side (which files, what changed,
//! reading them line by line) is in ingest/files.rs.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use heed::RwTxn;
use sha2::{Digest, Sha256};

use super::chunk::RawChunk;
use super::embed::hash::words;
use super::graph;
use super::store::{ChunkRecord, DocumentRecord, Store, StoreError, lmdb_key};
use super::types::*;
use super::vectors;
use super::{Memory, MemoryError, Result, now_ms, sha256};

mod files;
pub use files::index;

/// Chunks per LMDB transaction: large enough to amortise the commit and the tree build.
const BATCH_CHUNKS: usize = 1024;
/// Meta key: the ids of chunks longer than the embedder's window, whose vectors miss part of
/// their text (`memory.status.truncatedChunks`; the chunker keeps it at 0 but for single
/// words longer than the window).
pub const TRUNCATED_KEY: &str = "truncated_chunks";

/// Keep the truncated-chunk list in step with chunks embedded (`added`) and deleted.
pub fn note_truncated(
    store: &Store,
    txn: &mut RwTxn<'_>,
    added: &[ChunkId],
    removed: &[ChunkId],
) -> Result<(), StoreError> {
    let mut ids: Vec<ChunkId> = store.meta_get(txn, TRUNCATED_KEY)?.unwrap_or_default();
    let before = ids.len();
    if !removed.is_empty() && !ids.is_empty() {
        let removed: HashSet<ChunkId> = removed.iter().copied().collect();
        ids.retain(|id| !removed.contains(id));
    }
    ids.extend(added);
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != before || !added.is_empty() {
        store.meta_put(txn, TRUNCATED_KEY, &ids)?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct IndexProgress {
    pub done: u64,
    pub total: u64,
    pub message: String,
}

/// One full-text writer for a whole run, committed every few thousand chunks or seconds
/// rather than per file: a commit costs fsyncs, and what is not yet committed is repaired
/// from LMDB at the next open if the process dies.
pub struct TextSession<'m> {
    writer: super::text::TextWriter<'m>,
    pending: usize,
    since: Instant,
}

const TEXT_COMMIT_CHUNKS: usize = 8192;
const TEXT_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

impl<'m> TextSession<'m> {
    pub fn new(memory: &'m Memory) -> Result<Self> {
        Ok(Self {
            writer: memory.text.writer()?,
            pending: 0,
            since: Instant::now(),
        })
    }

    fn add(&mut self, chunk: &ChunkRecord) -> Result<()> {
        self.writer.add(chunk.id, &chunk.indexed_text())?;
        self.pending += 1;
        Ok(())
    }

    fn delete(&mut self, id: ChunkId) {
        self.writer.delete(id);
        self.pending += 1;
    }

    fn maybe_commit(&mut self) -> Result<()> {
        if self.pending >= TEXT_COMMIT_CHUNKS || self.since.elapsed() >= TEXT_COMMIT_INTERVAL {
            self.commit()?;
        }
        Ok(())
    }

    pub fn commit(&mut self) -> Result<()> {
        if self.pending > 0 {
            self.writer.commit()?;
        }
        self.pending = 0;
        self.since = Instant::now();
        Ok(())
    }
}

/// A chunk ready to be written: new, or an old one kept because its content is unchanged.
enum Pending {
    New(ChunkRecord),
    Kept(ChunkRecord),
}

/// Writes one document's chunks in batches, reusing unchanged ones.
struct DocWriter<'m, 's> {
    memory: &'m Memory,
    text: &'s mut TextSession<'m>,
    doc: DocumentRecord,
    /// Old chunks of this document by content hash, not yet claimed by the new content.
    reusable: HashMap<[u8; 32], ChunkRecord>,
    seen: HashSet<[u8; 32]>,
    pending: Vec<Pending>,
    new_ids: Vec<ChunkId>,
    new_graph_nodes: usize,
    created_at: i64,
    added: u32,
    reused: u32,
}

impl<'m, 's> DocWriter<'m, 's> {
    fn new(
        memory: &'m Memory,
        text: &'s mut TextSession<'m>,
        doc: DocumentRecord,
        created_at: i64,
    ) -> Result<Self> {
        let reusable = memory.read(|txn| {
            let mut map = HashMap::new();
            for id in &doc.chunk_ids {
                if let Some(chunk) = memory.store.dbs.chunks.get(txn, id)? {
                    map.insert(chunk.hash, chunk);
                }
            }
            Ok(map)
        })?;
        Ok(Self {
            memory,
            text,
            doc,
            reusable,
            seen: HashSet::new(),
            pending: Vec::new(),
            new_ids: Vec::new(),
            new_graph_nodes: 0,
            created_at,
            added: 0,
            reused: 0,
        })
    }

    fn push(&mut self, raw: RawChunk) -> Result<()> {
        if words(&raw.text).next().is_none() {
            return Ok(()); // nothing to find: rules, lone punctuation
        }
        let heading = raw.heading_path();
        let hash = chunk_hash(heading.as_deref(), &raw.text);
        if !self.seen.insert(hash) {
            return Ok(()); // the same content twice in one document: keep the first
        }
        let pending = match self.reusable.remove(&hash) {
            Some(mut old) => {
                old.line_start = raw.line_start;
                old.line_end = raw.line_end;
                Pending::Kept(old)
            }
            None => Pending::New(ChunkRecord {
                id: 0,
                document_id: self.doc.id,
                document_key: self.doc.key.clone(),
                source: self.doc.source.clone(),
                heading,
                text: raw.text,
                line_start: raw.line_start,
                line_end: raw.line_end,
                hash,
                tags: self.doc.tags.clone(),
                created_at: self.created_at,
                session: self.doc.session.clone(),
            }),
        };
        self.pending.push(pending);
        if self.pending.len() >= BATCH_CHUNKS {
            self.flush()?;
        }
        Ok(())
    }

    /// Embed and commit the pending chunks: records, vectors and graph in one transaction,
    /// then the text index.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let memory = self.memory;
        let pending = std::mem::take(&mut self.pending);
        let new_texts: Vec<String> = pending
            .iter()
            .filter_map(|p| match p {
                Pending::New(c) => Some(c.indexed_text()),
                Pending::Kept(_) => None,
            })
            .collect();
        let vectors = if memory.vectors_enabled() && !new_texts.is_empty() {
            let refs: Vec<&str> = new_texts.iter().map(String::as_str).collect();
            let embedder = &memory.options.embedder;
            match embedder.embed(&refs) {
                Ok(v) => Some(
                    v.into_iter()
                        .zip(&refs)
                        .map(|(vector, text)| (vector, embedder.truncates(text)))
                        .collect::<Vec<_>>(),
                ),
                Err(e) => {
                    // Keyword search still finds them; the consistency check embeds later.
                    tracing::warn!("embedding failed, chunks stored without vectors: {e}");
                    None
                }
            }
        } else {
            None
        };
        let mut written: Vec<ChunkRecord> = Vec::new();
        let limits = memory.graph_limits;
        let doc_before = self.doc.clone();
        let new_ids_before = self.new_ids.len();
        let graph_nodes_before = self.new_graph_nodes;
        memory.write(|txn| {
            // Re-runnable from the start if the map had to grow.
            self.doc = doc_before.clone();
            self.new_ids.truncate(new_ids_before);
            self.new_graph_nodes = graph_nodes_before;
            written.clear();
            let mut vector_iter = vectors.iter().flatten();
            let mut new_vectors: Vec<(ChunkId, &[f32])> = Vec::new();
            let mut truncated: Vec<ChunkId> = Vec::new();
            for item in &pending {
                match item {
                    Pending::Kept(chunk) => {
                        memory.store.dbs.chunks.put(txn, &chunk.id, chunk)?;
                        self.new_ids.push(chunk.id);
                    }
                    Pending::New(chunk) => {
                        let mut chunk = chunk.clone();
                        chunk.id = memory.store.next_id(txn, "next_chunk_id")?;
                        memory.store.dbs.chunks.put(txn, &chunk.id, &chunk)?;
                        if let Some((vector, cut)) = vector_iter.next() {
                            new_vectors.push((chunk.id, vector.as_slice()));
                            if *cut {
                                truncated.push(chunk.id);
                            }
                        }
                        graph::add_chunk(
                            &memory.store,
                            txn,
                            &chunk,
                            limits,
                            &mut self.new_graph_nodes,
                        )?;
                        self.new_ids.push(chunk.id);
                        written.push(chunk);
                    }
                }
            }
            // Until the document is complete it lists old and new chunks: a crash here
            // loses neither, and the next run finishes the job.
            let mut ids = self.doc.chunk_ids.clone();
            ids.extend(
                self.new_ids
                    .iter()
                    .filter(|id| !self.doc.chunk_ids.contains(id)),
            );
            self.doc.chunk_ids = ids;
            memory
                .store
                .dbs
                .documents
                .put(txn, &self.doc.id, &self.doc)?;
            // One call per batch: each touched block of int8 codes is rewritten once.
            vectors::put_many(&memory.store.dbs, txn, &new_vectors)?;
            if !truncated.is_empty() {
                note_truncated(&memory.store, txn, &truncated, &[])?;
            }
            Ok(())
        })?;
        for chunk in &written {
            self.text.add(chunk)?;
        }
        self.text.maybe_commit()?;
        self.added += written.len() as u32;
        self.reused += (pending.len() - written.len()) as u32;
        Ok(())
    }

    /// Flush, drop the old chunks the new content no longer has, and mark the document done.
    fn finish(mut self, content_hash: String) -> Result<(DocumentRecord, u32, u32, u32)> {
        self.flush()?;
        let stale: Vec<ChunkId> = self.reusable.values().map(|c| c.id).collect();
        remove_chunks(self.memory, self.text, &stale)?;
        self.doc.chunk_ids = self.new_ids.clone();
        self.doc.content_hash = content_hash;
        self.doc.indexed_at = now_ms();
        let doc = self.doc.clone();
        let memory = self.memory;
        memory.write(|txn| {
            memory.store.dbs.documents.put(txn, &doc.id, &doc)?;
            Ok(())
        })?;
        Ok((doc, self.added, self.reused, stale.len() as u32))
    }
}

fn chunk_hash(heading: Option<&str>, text: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(heading.unwrap_or("").as_bytes());
    hasher.update([0]);
    hasher.update(text.as_bytes());
    hasher.finalize().into()
}

/// Find or create the document record for `key`, marked incomplete.
fn begin_document(
    memory: &Memory,
    key: &str,
    source: &str,
    kind: DocumentKind,
    fill: impl Fn(&mut DocumentRecord),
) -> Result<DocumentRecord> {
    memory.write(|txn| {
        let lookup = lmdb_key(key);
        let existing = match memory.store.dbs.doc_by_source.get(txn, &lookup)? {
            Some(id) => memory.store.dbs.documents.get(txn, &id)?,
            None => None,
        };
        let mut doc = match existing {
            Some(doc) => doc,
            None => {
                let id = memory.store.next_id(txn, "next_document_id")?;
                memory.store.dbs.doc_by_source.put(txn, &lookup, &id)?;
                DocumentRecord {
                    id,
                    key: key.to_string(),
                    source: source.to_string(),
                    kind,
                    mtime_ms: 0,
                    size: 0,
                    content_hash: String::new(),
                    chunk_ids: Vec::new(),
                    indexed_at: 0,
                    tags: Vec::new(),
                    session: None,
                    note_text: None,
                }
            }
        };
        doc.content_hash.clear();
        fill(&mut doc);
        memory.store.dbs.documents.put(txn, &doc.id, &doc)?;
        Ok(doc)
    })
}

pub fn add_note(memory: &Memory, source: &str, params: AddParams) -> Result<AddResult> {
    let mut tags: Vec<String> = params
        .tags
        .iter()
        .map(|t| t.trim().trim_start_matches('#').to_string())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    let content = hex::encode(sha256(params.text.as_bytes()));
    // Notes are keyed by source and content: the same text from the same source is one note.
    let key = format!("{source}#{}", &content[..16]);
    let existing = memory.read(|txn| {
        Ok(
            match memory.store.dbs.doc_by_source.get(txn, &lmdb_key(&key))? {
                Some(id) => memory.store.dbs.documents.get(txn, &id)?,
                None => None,
            },
        )
    })?;
    if let Some(doc) = existing.filter(|d| d.content_hash == content) {
        return Ok(AddResult {
            document_id: doc.id,
            chunk_ids: doc.chunk_ids,
            deduplicated: true,
            notice: None,
        });
    }
    let kind = if params.session.is_some() {
        DocumentKind::Turn
    } else {
        DocumentKind::Note
    };
    let now = now_ms();
    let doc = begin_document(memory, &key, source, kind, |doc| {
        doc.tags = tags.clone();
        doc.session = params.session.clone();
        doc.note_text = Some(params.text.clone());
        doc.size = params.text.len() as u64;
        doc.mtime_ms = now;
    })?;
    let mut text = TextSession::new(memory)?;
    let mut writer = DocWriter::new(memory, &mut text, doc, now)?;
    let mut chunker = memory.chunker();
    for (i, line) in params.text.lines().enumerate() {
        for raw in chunker.push_line(u32::try_from(i + 1).unwrap_or(u32::MAX), line) {
            writer.push(raw)?;
        }
    }
    if let Some(raw) = chunker.finish() {
        writer.push(raw)?;
    }
    let (doc, _, _, _) = writer.finish(content)?;
    text.commit()?;
    drop(text);
    let missing = memory.read(|txn| {
        let mut missing = 0;
        for id in &doc.chunk_ids {
            if !vectors::contains(&memory.store.dbs, txn, *id)? {
                missing += 1;
            }
        }
        Ok(missing)
    })?;
    let notice = if !memory.vectors_enabled() {
        Some("stored without vectors: the store was built with another embedder; run `openclaw-rs memory index --force`".to_string())
    } else if missing > 0 {
        Some(format!(
            "{missing} chunk(s) stored without a vector (the embedder failed); keyword search finds them"
        ))
    } else {
        None
    };
    if doc.chunk_ids.is_empty() {
        return Err(MemoryError::Invalid(
            "memory.add: the text has no words to remember".into(),
        ));
    }
    Ok(AddResult {
        document_id: doc.id,
        chunk_ids: doc.chunk_ids,
        deduplicated: false,
        notice,
    })
}

/// Remove chunks from all three indexes and the graph; document records are the caller's.
pub fn remove_chunks(memory: &Memory, text: &mut TextSession<'_>, ids: &[ChunkId]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    for batch in ids.chunks(BATCH_CHUNKS) {
        memory.write(|txn| {
            for id in batch {
                memory.store.dbs.chunks.delete(txn, id)?;
                graph::remove_chunk(&memory.store, txn, *id)?;
            }
            // Also when vectors are off (another embedder made them): a deleted chunk's vector
            // must not outlive it.
            vectors::delete_many(&memory.store.dbs, txn, batch)?;
            note_truncated(&memory.store, txn, &[], batch)?;
            Ok(())
        })?;
    }
    for id in ids {
        text.delete(*id);
    }
    text.maybe_commit()
}

pub fn remove_document_record(
    memory: &Memory,
    txn: &mut RwTxn<'_>,
    doc: &DocumentRecord,
) -> Result<(), super::store::StoreError> {
    memory.store.dbs.documents.delete(txn, &doc.id)?;
    memory
        .store
        .dbs
        .doc_by_source
        .delete(txn, &lmdb_key(&doc.key))?;
    graph::remove_document_node(&memory.store, txn, &doc.key)
}

/// Every note, with its original text, for a rebuild.
pub fn collect_notes(memory_store: &super::store::Store) -> Result<Vec<DocumentRecord>> {
    memory_store.read(|txn| -> Result<_> {
        let mut notes = Vec::new();
        for entry in memory_store.dbs.documents.iter(txn)? {
            let (_, doc) = entry?;
            if doc.note_text.is_some() {
                notes.push(doc);
            }
        }
        Ok(notes)
    })
}

/// Put a note back after a rebuild, as it was given.
pub fn restore_note(memory: &Memory, doc: &DocumentRecord) -> Result<()> {
    let Some(text) = doc.note_text.clone() else {
        return Ok(());
    };
    let source = doc.source.clone();
    add_note(
        memory,
        &source,
        AddParams {
            text,
            tags: doc.tags.clone(),
            source: Some(source.clone()),
            session: doc.session.clone(),
        },
    )?;
    Ok(())
}
