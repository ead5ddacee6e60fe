//! Getting text in: workspace files (incremental by mtime and content hash), notes from
//! `memory.add`, and forced rebuilds. Files are read line by line and written in batches,
//! so memory stays bounded whatever the file size.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
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

/// Chunks per LMDB transaction: large enough to amortise the commit and the tree build.
const BATCH_CHUNKS: usize = 1024;
/// Lines longer than this are cut into pieces (a minified blob must not be one allocation).
const MAX_LINE_BYTES: usize = 16 * 1024;
const BINARY_SNIFF_BYTES: usize = 8 * 1024;
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

// ---- files ----------------------------------------------------------------------------------

enum FileOutcome {
    Unchanged,
    Indexed {
        added: u32,
        reused: u32,
        removed: u32,
    },
}

pub fn index(
    memory: &Memory,
    params: IndexParams,
    progress: &dyn Fn(IndexProgress),
) -> Result<IndexResult> {
    let started = Instant::now();
    let mut result = IndexResult {
        forced: params.force,
        ..Default::default()
    };
    let workspace = &memory.options.workspace;
    let (files, mut skipped) = resolve_files(workspace, &memory.options.paths, &params.paths);
    result.scanned_files = files.len() as u32;
    let total = files.len() as u64;
    let mut text = TextSession::new(memory)?;
    for (n, path) in files.iter().enumerate() {
        let source = source_name(workspace, path);
        progress(IndexProgress {
            done: n as u64,
            total,
            message: source.clone(),
        });
        match index_file(memory, &mut text, path, &source) {
            Ok(FileOutcome::Unchanged) => result.unchanged_files += 1,
            Ok(FileOutcome::Indexed {
                added,
                reused,
                removed,
            }) => {
                result.indexed_files += 1;
                result.added_chunks += added;
                result.reused_chunks += reused;
                result.removed_chunks += removed;
            }
            Err(FileError::Skip(reason)) => skipped.push(SkippedFile {
                path: source,
                reason,
            }),
            Err(FileError::Fatal(e)) => return Err(e),
        }
    }
    // Files that are gone take their chunks with them.
    let gone: Vec<DocumentRecord> = memory.read(|txn| {
        let mut gone = Vec::new();
        for entry in memory.store.dbs.documents.iter(txn)? {
            let (_, doc) = entry?;
            if doc.kind == DocumentKind::File && !resolve_source(workspace, &doc.source).exists() {
                gone.push(doc);
            }
        }
        Ok(gone)
    })?;
    for doc in gone {
        remove_chunks(memory, &mut text, &doc.chunk_ids)?;
        memory.write(|txn| Ok(remove_document_record(memory, txn, &doc)?))?;
        result.removed_files += 1;
        result.removed_chunks += doc.chunk_ids.len() as u32;
    }
    text.commit()?;
    drop(text);
    progress(IndexProgress {
        done: total,
        total,
        message: "done".into(),
    });
    result.skipped = skipped;
    result.took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let last = LastIndex {
        at: now_ms(),
        took_ms: result.took_ms,
        indexed_files: result.indexed_files,
        added_chunks: result.added_chunks,
    };
    memory.write(|txn| Ok(memory.store.meta_put(txn, "last_index", &last)?))?;
    Ok(result)
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

enum FileError {
    /// This file is left out; the run goes on.
    Skip(String),
    Fatal(MemoryError),
}

impl From<MemoryError> for FileError {
    fn from(e: MemoryError) -> Self {
        FileError::Fatal(e)
    }
}

fn io_skip(e: std::io::Error) -> FileError {
    if e.kind() == std::io::ErrorKind::NotFound {
        FileError::Skip("removed while indexing".into())
    } else {
        FileError::Skip(format!("cannot read: {e}"))
    }
}

fn index_file<'m>(
    memory: &'m Memory,
    text: &mut TextSession<'m>,
    path: &Path,
    source: &str,
) -> Result<FileOutcome, FileError> {
    let meta = std::fs::metadata(path).map_err(io_skip)?;
    if !meta.is_file() {
        return Err(FileError::Skip("not a regular file".into()));
    }
    let mtime_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let existing = memory.read(|txn| {
        Ok(
            match memory.store.dbs.doc_by_source.get(txn, &lmdb_key(source))? {
                Some(id) => memory.store.dbs.documents.get(txn, &id)?,
                None => None,
            },
        )
    })?;
    let complete = existing.as_ref().filter(|d| !d.content_hash.is_empty());
    if complete.is_some_and(|d| d.mtime_ms == mtime_ms && d.size == meta.len()) {
        return Ok(FileOutcome::Unchanged); // the cheap path: not even read
    }
    let content_hash = hash_file(path)?;
    if let Some(doc) = complete.filter(|d| d.content_hash == content_hash) {
        // Touched but not changed: remember the new mtime so the next run skips the read.
        let mut doc = doc.clone();
        doc.mtime_ms = mtime_ms;
        doc.size = meta.len();
        memory.write(|txn| Ok(memory.store.dbs.documents.put(txn, &doc.id, &doc)?))?;
        return Ok(FileOutcome::Unchanged);
    }
    let doc = begin_document(memory, source, source, DocumentKind::File, |doc| {
        doc.mtime_ms = mtime_ms;
        doc.size = meta.len();
    })?;
    let mut writer = DocWriter::new(memory, text, doc, mtime_ms)?;
    let mut chunker = memory.chunker();
    let file = File::open(path).map_err(io_skip)?;
    let mut lines = CappedLines::new(BufReader::with_capacity(64 * 1024, file));
    while let Some((line_no, line)) = lines.next_line().map_err(io_skip)? {
        for raw in chunker.push_line(line_no, &line) {
            writer.push(raw)?;
        }
    }
    if let Some(raw) = chunker.finish() {
        writer.push(raw)?;
    }
    let (_, added, reused, removed) = writer.finish(content_hash)?;
    Ok(FileOutcome::Indexed {
        added,
        reused,
        removed,
    })
}

/// sha256 of the file, streamed; refuses binary files (a NUL in the first 8 KiB).
fn hash_file(path: &Path) -> Result<String, FileError> {
    let mut file = File::open(path).map_err(io_skip)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    loop {
        let n = file.read(&mut buf).map_err(io_skip)?;
        if n == 0 {
            break;
        }
        if first && buf[..n.min(BINARY_SNIFF_BYTES)].contains(&0) {
            return Err(FileError::Skip("binary file (contains NUL bytes)".into()));
        }
        first = false;
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Lines with their 1-based numbers, invalid UTF-8 replaced, over-long lines cut into
/// pieces that share a line number.
struct CappedLines<R> {
    reader: R,
    line_no: u32,
    continuing: bool,
}

impl<R: BufRead> CappedLines<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            line_no: 0,
            continuing: false,
        }
    }

    fn next_line(&mut self) -> std::io::Result<Option<(u32, String)>> {
        let mut bytes = Vec::new();
        let mut ended = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let room = MAX_LINE_BYTES - bytes.len();
            let window = &available[..available.len().min(room)];
            match window.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    bytes.extend_from_slice(&window[..i]);
                    self.reader.consume(i + 1);
                    ended = true;
                    break;
                }
                None => {
                    let n = window.len();
                    bytes.extend_from_slice(window);
                    self.reader.consume(n);
                    if bytes.len() >= MAX_LINE_BYTES {
                        break;
                    }
                }
            }
        }
        if bytes.is_empty() && !ended {
            return Ok(None);
        }
        if !self.continuing {
            self.line_no = self.line_no.saturating_add(1);
        }
        self.continuing = !ended && bytes.len() >= MAX_LINE_BYTES;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Ok(Some((
            self.line_no,
            String::from_utf8_lossy(&bytes).into_owned(),
        )))
    }
}

/// The files `patterns` (relative to the workspace) and `extra` (files or directories)
/// name, sorted and without repeats, plus the ones that could not be used.
fn resolve_files(
    workspace: &Path,
    patterns: &[String],
    extra: &[String],
) -> (Vec<PathBuf>, Vec<SkippedFile>) {
    let mut files = std::collections::BTreeSet::new();
    let mut skipped = Vec::new();
    for pattern in patterns {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            workspace.join(pattern)
        };
        match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => {
                for path in paths.flatten() {
                    if path.is_file() {
                        files.insert(path);
                    }
                }
            }
            Err(e) => skipped.push(SkippedFile {
                path: pattern.clone(),
                reason: format!("bad pattern in memory.paths: {e}"),
            }),
        }
    }
    for path in extra {
        let path = PathBuf::from(path);
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir().map_or(path.clone(), |cwd| cwd.join(&path))
        };
        if path.is_dir() {
            let pattern = path.join("**").join("*.md");
            for found in glob::glob(&pattern.to_string_lossy())
                .into_iter()
                .flatten()
                .flatten()
            {
                if found.is_file() {
                    files.insert(found);
                }
            }
        } else if path.is_file() {
            files.insert(path);
        } else {
            skipped.push(SkippedFile {
                path: path.display().to_string(),
                reason: "no such file or directory".into(),
            });
        }
    }
    (files.into_iter().collect(), skipped)
}

/// Workspace files by their relative path, others by their full path.
fn source_name(workspace: &Path, path: &Path) -> String {
    path.strip_prefix(workspace)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn resolve_source(workspace: &Path, source: &str) -> PathBuf {
    let path = Path::new(source);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        workspace.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_lines_number_lines_and_cut_long_ones() {
        let long = "x".repeat(MAX_LINE_BYTES * 2 + 10);
        let mut bytes = format!("one\r\n{long}\nthree\n").into_bytes();
        bytes.extend_from_slice(b"\xff invalid\n"); // invalid UTF-8 on line 4
        let mut lines = CappedLines::new(BufReader::new(&bytes[..]));
        let mut out = Vec::new();
        while let Some((n, line)) = lines.next_line().unwrap() {
            out.push((n, line.len()));
        }
        assert_eq!(out[0], (1, 3));
        assert_eq!(out[1], (2, MAX_LINE_BYTES));
        assert_eq!(out[2], (2, MAX_LINE_BYTES));
        assert_eq!(out[3], (2, 10));
        assert_eq!(out[4], (3, 5));
        assert_eq!(out[5], (4, "\u{fffd} invalid".len()));
        assert_eq!(out.len(), 6);
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn a_vanished_file_is_reported_as_removed_while_indexing() {
        match hash_file(Path::new("/nonexistent/openclaw-rs/vanished.md")) {
            Err(FileError::Skip(reason)) => assert_eq!(reason, "removed while indexing"),
            _ => panic!("expected a skip"),
        }
    }
}
