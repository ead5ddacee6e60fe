//! The full-text side of memory: a tantivy index of chunk text under `<memory>/text/`,
//! keyed by chunk id. It holds no text of its own (LMDB does), so it can always be rebuilt
//! from the chunk records.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use roaring::RoaringBitmap;
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::types::ChunkId;

const TOKENIZER: &str = "en_stem";
/// A query longer than this many distinct terms is cut: BM25 over hundreds of terms costs
/// time and finds nothing a shorter query would miss.
pub const MAX_QUERY_TERMS: usize = 64;
const WRITER_ARENA_BYTES: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
#[error("full-text index at {dir}: {message}")]
pub struct TextError {
    pub dir: String,
    pub message: String,
}

pub struct TextIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    /// What `meta.json` looked like when the reader last reloaded: a commit (ours or another
    /// process's) replaces that file, so a change means there is something new to see.
    seen_meta: std::sync::Mutex<Option<MetaStamp>>,
    chunk_id: Field,
    body: Field,
    analyzer: TextAnalyzer,
}

pub struct TextWriter<'a> {
    index: &'a TextIndex,
    writer: IndexWriter,
}

impl TextIndex {
    pub fn open(dir: &Path) -> Result<Self, TextError> {
        Self::open_with(dir, true)
    }

    /// Open an index that must already exist, creating nothing: for the doctor's read-only
    /// look (tantivy readers need no lock, so another process may be writing meanwhile).
    pub fn open_existing(dir: &Path) -> Result<Self, TextError> {
        Self::open_with(dir, false)
    }

    fn open_with(dir: &Path, create: bool) -> Result<Self, TextError> {
        let err = |message: String| TextError {
            dir: dir.display().to_string(),
            message: format!(
                "{message}; run `openclaw-rs memory index --force` to rebuild it from the \
                 stored chunks"
            ),
        };
        if create {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let mut builder = Schema::builder();
        let chunk_id = builder.add_u64_field("chunk_id", INDEXED | FAST);
        let body = builder.add_text_field(
            "body",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        );
        let schema = builder.build();
        let directory = MmapDirectory::open(dir).map_err(|e| err(e.to_string()))?;
        let index = if create {
            Index::open_or_create(directory, schema)
        } else {
            Index::open(directory).and_then(|index| {
                // `open_or_create` compares schemas itself; `open` takes whatever it finds.
                if index.schema() == schema {
                    Ok(index)
                } else {
                    Err(tantivy::TantivyError::SchemaError(
                        "the index has another schema than this build's".into(),
                    ))
                }
            })
        }
        .map_err(|e| err(e.to_string()))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e: tantivy::TantivyError| err(e.to_string()))?;
        let analyzer = index
            .tokenizer_for_field(body)
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            index,
            reader,
            seen_meta: std::sync::Mutex::new(MetaStamp::of(dir)),
            chunk_id,
            body,
            analyzer,
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> TextError {
        TextError {
            dir: self.dir.display().to_string(),
            message: e.to_string(),
        }
    }

    pub fn writer(&self) -> Result<TextWriter<'_>, TextError> {
        let writer = self
            .index
            .writer_with_num_threads(1, WRITER_ARENA_BYTES)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => TextError {
                    dir: self.dir.display().to_string(),
                    message: "another process is writing to it (an `openclaw-rs memory index` \
                              still running?); try again when it is done"
                        .into(),
                },
                e => self.error(e),
            })?;
        Ok(TextWriter {
            index: self,
            writer,
        })
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn disk_size(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Distinct analysed terms of `query`, at most [`MAX_QUERY_TERMS`], and whether it was cut.
    pub fn query_terms(&self, query: &str) -> (Vec<String>, bool) {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(query);
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        let mut cut = false;
        while stream.advance() {
            let text = &stream.token().text;
            if seen.insert(text.clone()) {
                if terms.len() == MAX_QUERY_TERMS {
                    cut = true;
                    break;
                }
                terms.push(text.clone());
            }
        }
        (terms, cut)
    }

    /// BM25 top `limit` chunk ids for any of `terms`, best first.
    pub fn search(&self, terms: &[String], limit: usize) -> Result<Vec<(ChunkId, f32)>, TextError> {
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .map(|t| {
                let query = TermQuery::new(
                    Term::from_field_text(self.body, t),
                    IndexRecordOption::WithFreqs,
                );
                (Occur::Should, Box::new(query) as Box<dyn Query>)
            })
            .collect();
        let query = BooleanQuery::new(clauses);
        self.refresh();
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit))
            .map_err(|e| self.error(e))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let column = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("chunk_id")
                .map_err(|e| self.error(e))?;
            if let Some(id) = column.first(address.doc_id) {
                hits.push((id as ChunkId, score));
            }
        }
        Ok(hits)
    }

    /// Byte ranges of `text` whose analysed form is one of `terms`: what a snippet marks.
    pub fn matches(&self, text: &str, terms: &[String]) -> Vec<Range<usize>> {
        if terms.is_empty() {
            return Vec::new();
        }
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut ranges = Vec::new();
        while stream.advance() {
            let token = stream.token();
            if terms.contains(&token.text) {
                ranges.push(token.offset_from..token.offset_to);
            }
        }
        ranges
    }

    /// Every chunk id in the index, for the consistency check.
    pub fn all_ids(&self) -> Result<RoaringBitmap, TextError> {
        let searcher = self.reader.searcher();
        let mut ids = RoaringBitmap::new();
        for segment in searcher.segment_readers() {
            let column = segment
                .fast_fields()
                .u64("chunk_id")
                .map_err(|e| self.error(e))?;
            for doc in segment.doc_ids_alive() {
                if let Some(id) = column.first(doc) {
                    ids.insert(id as u32);
                }
            }
        }
        Ok(ids)
    }

    /// See commits of another process (a CLI `memory index` beside the TUI or a batch
    /// session) before searching: one `stat` of `meta.json`, and a reload only when it changed,
    /// so new text is found by the next search rather than after a polling interval.
    fn refresh(&self) {
        let now = MetaStamp::of(&self.dir);
        let mut seen = self.seen_meta.lock().unwrap_or_else(|p| p.into_inner());
        if now.is_some() && *seen != now {
            match self.reader.reload() {
                Ok(()) => *seen = now,
                Err(e) => tracing::debug!("full-text reader reload: {e}"),
            }
        }
    }

    pub fn reload(&self) -> Result<(), TextError> {
        self.reader.reload().map_err(|e| self.error(e))
    }
}

/// Identity and change time of an index's `meta.json` (tantivy writes it anew, by rename, at
/// every commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MetaStamp {
    /// None where the platform does not say (Windows): size and time decide there.
    inode: Option<u64>,
    modified: Option<std::time::SystemTime>,
    len: u64,
}

impl MetaStamp {
    fn of(dir: &Path) -> Option<Self> {
        let m = std::fs::metadata(dir.join("meta.json")).ok()?;
        Some(Self {
            inode: crate::platform::file_id(&m),
            modified: m.modified().ok(),
            len: m.len(),
        })
    }
}

impl TextWriter<'_> {
    pub fn add(&mut self, id: ChunkId, text: &str) -> Result<(), TextError> {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.index.chunk_id, u64::from(id));
        doc.add_text(self.index.body, text);
        self.writer
            .add_document(doc)
            .map(drop)
            .map_err(|e| self.index.error(e))
    }

    pub fn delete(&mut self, id: ChunkId) {
        self.writer
            .delete_term(Term::from_field_u64(self.index.chunk_id, u64::from(id)));
    }

    pub fn delete_all(&mut self) -> Result<(), TextError> {
        self.writer
            .delete_all_documents()
            .map(drop)
            .map_err(|e| self.index.error(e))
    }

    /// Make everything added so far durable and visible to searches.
    pub fn commit(&mut self) -> Result<(), TextError> {
        self.writer.commit().map_err(|e| self.index.error(e))?;
        self.index.reload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_stemmed_terms_and_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let index = TextIndex::open(tmp.path()).unwrap();
            let mut writer = index.writer().unwrap();
            writer
                .add(1, "We deployed the database migrations")
                .unwrap();
            writer.add(2, "Tomato soup with basil").unwrap();
            writer.add(3, "deploying again tomorrow").unwrap();
            writer.commit().unwrap();
        }
        let index = TextIndex::open(tmp.path()).unwrap();
        let (terms, cut) = index.query_terms("Deploying databases!");
        assert!(!cut);
        let hits = index.search(&terms, 10).unwrap();
        let ids: Vec<_> = hits.iter().map(|h| h.0).collect();
        assert_eq!(ids[0], 1, "{hits:?}");
        assert!(ids.contains(&3) && !ids.contains(&2));
        let text = "We deployed the database migrations";
        let marked: Vec<_> = index
            .matches(text, &terms)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(marked, ["deployed", "database"]);
        assert_eq!(index.all_ids().unwrap().len(), 3);
    }

    #[test]
    fn deletes_and_empty_queries() {
        let tmp = tempfile::tempdir().unwrap();
        let index = TextIndex::open(tmp.path()).unwrap();
        let mut writer = index.writer().unwrap();
        writer.add(1, "alpha beta").unwrap();
        writer.add(2, "alpha gamma").unwrap();
        writer.commit().unwrap();
        writer.delete(1);
        writer.commit().unwrap();
        let (terms, _) = index.query_terms("alpha");
        assert_eq!(index.search(&terms, 10).unwrap().len(), 1);
        assert!(index.search(&[], 10).unwrap().is_empty());
        let (terms, cut) = index.query_terms(&("word ".repeat(10) + "!!!"));
        assert_eq!((terms.len(), cut), (1, false));
    }
}
