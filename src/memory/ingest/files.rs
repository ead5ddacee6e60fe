//! Workspace files into memory: which files the patterns name, which changed since the last
//! run (mtime and size, then the sha256 of the content), and each changed file read line by
//! line through the document writer of ingest.rs; files that are gone lose their chunks.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{
    DocWriter, IndexProgress, TextSession, begin_document, remove_chunks, remove_document_record,
};
use crate::memory::store::{DocumentRecord, lmdb_key};
use crate::memory::types::*;
use crate::memory::{Memory, MemoryError, Result, now_ms};

/// Lines longer than this are cut into pieces (a minified blob must not be one allocation).
const MAX_LINE_BYTES: usize = 16 * 1024;
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

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
        // Cancelled: what was indexed stays and is committed below; the rest waits.
        if memory
            .cancel_build
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            break;
        }
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
