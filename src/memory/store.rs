//! The LMDB side of memory: one heed environment holding documents, chunks, the graph,
//! metadata and the vectors (see `vectors.rs`), so a chunk, its vector and its graph edges are committed
//! in one transaction or not at all.
//!
//! Readers use LMDB's MVCC snapshots and never wait for a writer. The one exception is
//! growing the map: LMDB may only resize with no transaction open in the process, so every
//! transaction holds a shared `resize` lock and a resize takes it exclusively, briefly.

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use heed::byteorder::BigEndian;
use heed::types::{Bytes, SerdeBincode, SerdeJson, Str, U32};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};
use serde::{Deserialize, Serialize};

use super::types::{ChunkId, DocumentId, DocumentKind, EdgeKind, NodeId, NodeKind};

/// 2: vectors moved from an arroy forest to `vectors.rs`; a version-1 store is migrated at
/// open by dropping the old vectors, which the consistency check then embeds again.
/// 3: an arroy forest (`ann`) over the stored vectors as the approximate tier (`index.rs`);
/// a version-2 store gains the empty database at open and keeps its vectors, and the
/// first build takes them all.
pub const SCHEMA_VERSION: u32 = 3;

const INITIAL_MAP_SIZE: usize = 64 << 20;
const MAX_DBS: u32 = 16;
/// LMDB keys are at most 511 bytes; longer keys are replaced by a digest.
const MAX_KEY_BYTES: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `dir` is empty for errors converted where the store is not at hand; the message then
    /// leaves the place out rather than print an empty path.
    #[error("memory store{}: {source}", at(.dir))]
    Lmdb {
        dir: String,
        #[source]
        source: heed::Error,
    },
    #[error(
        "memory store at {dir} has schema version {found}; this build reads version {SCHEMA_VERSION}. Run `openclaw-rs memory index --force` to rebuild it"
    )]
    Schema { dir: String, found: u32 },
    #[error(
        "memory store at {dir} was written by an older version (schema {found}); the next \
         normal open (starting the app, or `openclaw-rs memory index`) upgrades it in place"
    )]
    Outdated { dir: String, found: u32 },
    #[error(
        "memory store at {dir} is missing some of its databases (not made by this program, or \
         damaged); move the directory aside and run `openclaw-rs memory index --force`"
    )]
    Incomplete { dir: String },
    #[error("vector index: {0}")]
    Ann(#[from] arroy::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn at(dir: &str) -> String {
    if dir.is_empty() {
        String::new()
    } else {
        format!(" at {dir}")
    }
}

impl From<heed::Error> for StoreError {
    fn from(source: heed::Error) -> Self {
        StoreError::Lmdb {
            dir: String::new(),
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

type Id = U32<BigEndian>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRecord {
    pub id: DocumentId,
    /// What the document is found by: the path for files, source and content digest for
    /// notes (so two notes from one source are two documents).
    pub key: String,
    /// What the user sees: the path, or the source given to `memory.add`.
    pub source: String,
    pub kind: DocumentKind,
    pub mtime_ms: i64,
    pub size: u64,
    /// sha256 of the content; empty while the document is being (re)indexed, so a crash
    /// midway makes the next run index it again.
    pub content_hash: String,
    pub chunk_ids: Vec<ChunkId>,
    pub indexed_at: i64,
    pub tags: Vec<String>,
    pub session: Option<String>,
    /// The text of a note, kept so a forced rebuild can chunk and embed it again.
    pub note_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub id: ChunkId,
    pub document_id: DocumentId,
    /// The document's key (see [`DocumentRecord::key`]).
    pub document_key: String,
    pub source: String,
    pub heading: Option<String>,
    pub text: String,
    pub line_start: u32,
    pub line_end: u32,
    /// sha256 of heading and text: the same content keeps its id and vector on re-index.
    pub hash: [u8; 32],
    pub tags: Vec<String>,
    pub created_at: i64,
    pub session: Option<String>,
}

impl ChunkRecord {
    /// What is indexed and embedded: the headings give the text its context.
    pub fn indexed_text(&self) -> String {
        match &self.heading {
            Some(h) => format!("{h}\n{}", self.text),
            None => self.text.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    pub kind: NodeKind,
    pub key: String,
    pub label: String,
    pub degree: u32,
}

/// A read transaction that also holds the shared resize lock.
pub struct ReadTxn<'s> {
    pub txn: RoTxn<'s, WithoutTls>,
    _resize: RwLockReadGuard<'s, ()>,
}

impl<'s> std::ops::Deref for ReadTxn<'s> {
    type Target = RoTxn<'s>;
    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

/// Errors that may mean "the map is full": a write that fails with one is retried after
/// the map grows.
pub trait MapFull: From<StoreError> {
    fn is_map_full(&self) -> bool;
}

impl MapFull for StoreError {
    fn is_map_full(&self) -> bool {
        is_store_map_full(self)
    }
}

#[derive(Clone, Copy)]
pub struct Dbs {
    pub meta: Database<'static, Str, SerdeJson<serde_json::Value>>,
    pub documents: Database<'static, Id, SerdeBincode<DocumentRecord>>,
    pub doc_by_source: Database<'static, Str, Id>,
    pub chunks: Database<'static, Id, SerdeBincode<ChunkRecord>>,
    pub nodes: Database<'static, Id, SerdeBincode<NodeRecord>>,
    pub node_by_key: Database<'static, Str, Id>,
    /// `from ‖ kind ‖ to` → count; `edges_in` holds the same with `to` first.
    pub edges_out: Database<'static, Bytes, Id>,
    pub edges_in: Database<'static, Bytes, Id>,
    /// Chunk id → unit-length f32 vector; slots and int8 blocks index it (`vectors.rs`).
    pub vectors: Database<'static, Id, Bytes>,
    pub vector_slots: Database<'static, Id, Id>,
    pub vector_codes: Database<'static, Id, Bytes>,
    /// arroy's forest over the same vectors (`index.rs`).
    pub ann: arroy::Database<'static, arroy::distances::Cosine>,
}

pub struct Store {
    dir: PathBuf,
    env: Env<WithoutTls>,
    pub dbs: Dbs,
    resize: RwLock<()>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let with_dir = |source: heed::Error| StoreError::Lmdb {
            dir: dir.display().to_string(),
            source,
        };
        // The map starts small and doubles when full; the file only grows as data does.
        let existing = std::fs::metadata(dir.join("data.mdb")).map_or(0, |m| m.len() as usize);
        let map_size = round_to_page((existing * 2).max(INITIAL_MAP_SIZE));
        // SAFETY: the environment is opened once per process per directory (the engine owns
        // the only `Store`), and nothing else truncates or maps the file.
        let env = unsafe {
            EnvOpenOptions::new()
                .read_txn_without_tls()
                .map_size(map_size)
                .max_dbs(MAX_DBS)
                .open(dir)
        }
        .map_err(with_dir)?;
        let wtxn = env.write_txn().map_err(with_dir)?;
        let dbs = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                Ok(CommitOrAbort::<_, ()>::Commit((
                    (
                        opener.create_database(wtxn, Some("meta"))?,
                        opener.create_database(wtxn, Some("documents"))?,
                        opener.create_database(wtxn, Some("doc_by_source"))?,
                        opener.create_database(wtxn, Some("chunks"))?,
                    ),
                    (
                        opener.create_database(wtxn, Some("nodes"))?,
                        opener.create_database(wtxn, Some("node_by_key"))?,
                        opener.create_database(wtxn, Some("edges_out"))?,
                        opener.create_database(wtxn, Some("edges_in"))?,
                    ),
                    (
                        opener.create_database(wtxn, Some("vectors"))?,
                        opener.create_database(wtxn, Some("vector_slots"))?,
                        opener.create_database(wtxn, Some("vector_codes"))?,
                        opener.create_database(wtxn, Some("ann"))?,
                    ),
                )))
            })
            .map_err(with_dir)?
            .unwrap_commit();
        let (
            (meta, documents, doc_by_source, chunks),
            (nodes, node_by_key, edges_out, edges_in),
            (vectors, vector_slots, vector_codes, ann),
        ) = dbs;
        let store = Self {
            dir: dir.to_path_buf(),
            env,
            dbs: Dbs {
                meta,
                documents,
                doc_by_source,
                chunks,
                nodes,
                node_by_key,
                edges_out,
                edges_in,
                vectors,
                vector_slots,
                vector_codes,
                ann,
            },
            resize: RwLock::new(()),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// Open an existing store without writing to it: for the doctor, which may run while
    /// another process (a TUI, an index run) has the store open. LMDB allows any number of
    /// readers across processes. Nothing is created, so a missing database is an error.
    pub fn open_read_only(dir: &Path) -> Result<Self> {
        let with_dir = |source: heed::Error| StoreError::Lmdb {
            dir: dir.display().to_string(),
            source,
        };
        let existing = std::fs::metadata(dir.join("data.mdb"))?.len() as usize;
        let map_size = round_to_page(existing.max(INITIAL_MAP_SIZE));
        // SAFETY: the caller makes sure this process has no other `Store` on `dir` (heed
        // refuses a second opening anyway); the environment is read-only, so it never
        // writes, truncates or resizes the file that other processes map.
        let env = unsafe {
            let mut options = EnvOpenOptions::new().read_txn_without_tls();
            options
                .map_size(map_size)
                .max_dbs(MAX_DBS)
                .flags(heed::EnvFlags::READ_ONLY);
            options.open(dir)
        }
        .map_err(with_dir)?;
        let rtxn = env.read_txn().map_err(with_dir)?;
        let opened = env
            .open_databases_and_commit(rtxn, |opener, rtxn| -> heed::Result<_> {
                Ok(CommitOrAbort::<_, ()>::Commit((
                    (
                        opener.open_database(rtxn, Some("meta"))?,
                        opener.open_database(rtxn, Some("documents"))?,
                        opener.open_database(rtxn, Some("doc_by_source"))?,
                        opener.open_database(rtxn, Some("chunks"))?,
                    ),
                    (
                        opener.open_database(rtxn, Some("nodes"))?,
                        opener.open_database(rtxn, Some("node_by_key"))?,
                        opener.open_database(rtxn, Some("edges_out"))?,
                        opener.open_database(rtxn, Some("edges_in"))?,
                    ),
                    (
                        opener.open_database(rtxn, Some("vectors"))?,
                        opener.open_database(rtxn, Some("vector_slots"))?,
                        opener.open_database(rtxn, Some("vector_codes"))?,
                        opener.open_database(rtxn, Some("ann"))?,
                    ),
                )))
            })
            .map_err(with_dir)?
            .unwrap_commit();
        let missing = || StoreError::Incomplete {
            dir: dir.display().to_string(),
        };
        let (
            (meta, documents, doc_by_source, chunks),
            (nodes, node_by_key, edges_out, edges_in),
            (vectors, vector_slots, vector_codes, ann),
        ) = opened;
        // A store of an older schema lacks newer databases: say that, not "damaged".
        if let Some(meta) = meta {
            let txn = env.read_txn().map_err(with_dir)?;
            let found = meta
                .get(&txn, "schema_version")
                .map_err(with_dir)?
                .and_then(|v| serde_json::from_value::<u32>(v).ok());
            if let Some(found) = found.filter(|f| *f < SCHEMA_VERSION) {
                return Err(StoreError::Outdated {
                    dir: dir.display().to_string(),
                    found,
                });
            }
        }
        let store = Self {
            dir: dir.to_path_buf(),
            env,
            dbs: Dbs {
                meta: meta.ok_or_else(missing)?,
                documents: documents.ok_or_else(missing)?,
                doc_by_source: doc_by_source.ok_or_else(missing)?,
                chunks: chunks.ok_or_else(missing)?,
                nodes: nodes.ok_or_else(missing)?,
                node_by_key: node_by_key.ok_or_else(missing)?,
                edges_out: edges_out.ok_or_else(missing)?,
                edges_in: edges_in.ok_or_else(missing)?,
                vectors: vectors.ok_or_else(missing)?,
                vector_slots: vector_slots.ok_or_else(missing)?,
                vector_codes: vector_codes.ok_or_else(missing)?,
                ann: ann.ok_or_else(missing)?,
            },
            resize: RwLock::new(()),
        };
        match store.read(|txn| store.meta_get::<u32>(txn, "schema_version"))? {
            Some(SCHEMA_VERSION) => Ok(store),
            Some(found) => Err(StoreError::Schema {
                dir: dir.display().to_string(),
                found,
            }),
            None => Err(missing()),
        }
    }

    fn check_schema(&self) -> Result<()> {
        let found: Option<u32> = self.read(|txn| self.meta_get(txn, "schema_version"))?;
        match found {
            Some(SCHEMA_VERSION) => Ok(()),
            Some(1) => self.write(|txn| {
                // The old vectors were arroy's; every chunk record is kept and re-embedded.
                super::vectors::clear(&self.dbs, txn)?;
                self.meta_put(txn, "schema_version", &SCHEMA_VERSION)
            }),
            // The `ann` database was created empty just now; the vectors stay.
            Some(2) => self.write(|txn| self.meta_put(txn, "schema_version", &SCHEMA_VERSION)),
            Some(found) => Err(StoreError::Schema {
                dir: self.dir.display().to_string(),
                found,
            }),
            None => self.write(|txn| self.meta_put(txn, "schema_version", &SCHEMA_VERSION)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn read_txn(&self) -> Result<ReadTxn<'_>> {
        let mut resized = 0;
        loop {
            let guard = self.resize.read().unwrap_or_else(|p| p.into_inner());
            match self.env.read_txn() {
                Ok(txn) => {
                    return Ok(ReadTxn {
                        txn,
                        _resize: guard,
                    });
                }
                Err(e) if is_map_resized(&e) && resized < MAX_ADOPTIONS => {
                    drop(guard);
                    resized += 1;
                    self.adopt_map_size()?;
                }
                Err(e) => return Err(self.lmdb(e)),
            }
        }
    }

    fn lmdb(&self, source: heed::Error) -> StoreError {
        StoreError::Lmdb {
            dir: self.dir.display().to_string(),
            source,
        }
    }

    /// Another process grew the map past ours (a `memory index` beside the TUI or a batch
    /// session): LMDB refuses every new transaction with MDB_MAP_RESIZED until this process
    /// maps the new size. Size 0 takes the size that process recorded in the file.
    fn adopt_map_size(&self) -> Result<()> {
        let _exclusive = self.resize.write().unwrap_or_else(|p| p.into_inner());
        let before = self.env.info().map_size;
        // SAFETY: the exclusive resize lock means no transaction is open in this process.
        unsafe { self.env.resize(0) }.map_err(|e| self.lmdb(e))?;
        tracing::debug!(
            from = before,
            to = self.env.info().map_size,
            "memory store map grown by another process; adopted its size"
        );
        Ok(())
    }

    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&RoTxn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.read_txn()?;
        f(&txn)
    }

    /// Run `f` in a write transaction and commit; when the map is full, grow it and run `f`
    /// again from the start (nothing of the failed attempt was committed).
    pub fn write<T, E: MapFull>(
        &self,
        mut f: impl FnMut(&mut RwTxn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut resized = 0;
        loop {
            let full = {
                let shared = self.resize.read().unwrap_or_else(|p| p.into_inner());
                let mut txn = match self.env.write_txn() {
                    Ok(txn) => txn,
                    Err(e) if is_map_resized(&e) && resized < MAX_ADOPTIONS => {
                        drop(shared);
                        resized += 1;
                        self.adopt_map_size()?;
                        continue;
                    }
                    Err(e) => return Err(self.lmdb(e).into()),
                };
                match f(&mut txn) {
                    Ok(value) => match txn.commit() {
                        Ok(()) => return Ok(value),
                        Err(e) if is_map_full(&e) => true,
                        Err(e) => return Err(self.lmdb(e).into()),
                    },
                    Err(e) if e.is_map_full() => true,
                    Err(e) => return Err(e),
                }
            };
            if full {
                self.grow().map_err(E::from)?;
            }
        }
    }

    fn grow(&self) -> Result<()> {
        let _exclusive = self.resize.write().unwrap_or_else(|p| p.into_inner());
        let current = self.env.info().map_size;
        let new_size = round_to_page(current.saturating_mul(2));
        tracing::info!(
            from = current,
            to = new_size,
            "memory store full; growing the map"
        );
        // SAFETY: the exclusive resize lock means no transaction is open in this process.
        unsafe { self.env.resize(new_size) }?;
        Ok(())
    }

    pub fn map_size(&self) -> u64 {
        self.env.info().map_size as u64
    }

    pub fn disk_size(&self) -> u64 {
        self.env.real_disk_size().unwrap_or(0)
    }

    pub fn meta_get<T: serde::de::DeserializeOwned>(
        &self,
        txn: &RoTxn<'_>,
        key: &str,
    ) -> Result<Option<T>> {
        Ok(self
            .dbs
            .meta
            .get(txn, key)?
            .and_then(|v| serde_json::from_value(v).ok()))
    }

    pub fn meta_put<T: Serialize>(&self, txn: &mut RwTxn<'_>, key: &str, value: &T) -> Result<()> {
        let value = serde_json::to_value(value).map_err(std::io::Error::other)?;
        self.dbs.meta.put(txn, key, &value)?;
        Ok(())
    }

    /// The next id from a counter in `meta`, starting at 1.
    pub fn next_id(&self, txn: &mut RwTxn<'_>, counter: &str) -> Result<u32> {
        let next = self.meta_get::<u32>(txn, counter)?.unwrap_or(1);
        self.meta_put(txn, counter, &(next + 1))?;
        Ok(next)
    }

    /// Drop every record except the metadata; the text index is the caller's.
    pub fn clear_all(&self, txn: &mut RwTxn<'_>) -> Result<()> {
        self.dbs.documents.clear(txn)?;
        self.dbs.doc_by_source.clear(txn)?;
        self.dbs.chunks.clear(txn)?;
        self.dbs.nodes.clear(txn)?;
        self.dbs.node_by_key.clear(txn)?;
        self.dbs.edges_out.clear(txn)?;
        self.dbs.edges_in.clear(txn)?;
        super::vectors::clear(&self.dbs, txn)?;
        Ok(())
    }
}

pub fn edge_key(a: NodeId, kind: EdgeKind, b: NodeId) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..4].copy_from_slice(&a.to_be_bytes());
    key[4] = kind as u8;
    key[5..].copy_from_slice(&b.to_be_bytes());
    key
}

pub fn parse_edge_key(key: &[u8]) -> Option<(NodeId, EdgeKind, NodeId)> {
    let a = u32::from_be_bytes(key.get(..4)?.try_into().ok()?);
    let kind = *EdgeKind::ALL.get(usize::from(*key.get(4)?))?;
    let b = u32::from_be_bytes(key.get(5..9)?.try_into().ok()?);
    Some((a, kind, b))
}

/// A key LMDB accepts: short keys as they are, long ones as a digest of the whole.
pub fn lmdb_key(key: &str) -> std::borrow::Cow<'_, str> {
    if key.len() <= MAX_KEY_BYTES {
        return key.into();
    }
    let mut cut = MAX_KEY_BYTES - 80;
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}#sha256:{}",
        &key[..cut],
        hex::encode(super::sha256(key.as_bytes()))
    )
    .into()
}

/// Another process can grow the map again between our adopting its size and our next
/// transaction (it doubles each time); a few rounds cover an index run, and then the error
/// is reported rather than looping forever.
const MAX_ADOPTIONS: u32 = 3;

fn is_map_resized(e: &heed::Error) -> bool {
    matches!(e, heed::Error::Mdb(heed::MdbError::MapResized))
}

fn is_map_full(e: &heed::Error) -> bool {
    matches!(e, heed::Error::Mdb(heed::MdbError::MapFull))
}

fn is_store_map_full(e: &StoreError) -> bool {
    match e {
        StoreError::Lmdb { source, .. } => is_map_full(source),
        StoreError::Ann(arroy::Error::Heed(source)) => is_map_full(source),
        _ => false,
    }
}

fn round_to_page(size: usize) -> usize {
    let page = 4096 * 16;
    size.div_ceil(page) * page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_without_its_directory_prints_no_empty_path() {
        let e = StoreError::from(heed::Error::Mdb(heed::MdbError::MapResized));
        let text = e.to_string();
        assert!(text.starts_with("memory store: MDB_MAP_RESIZED"), "{text}");
        let e = StoreError::Lmdb {
            dir: "/home/u/.openclaw/memory".into(),
            source: heed::Error::Mdb(heed::MdbError::MapResized),
        };
        assert!(
            e.to_string()
                .starts_with("memory store at /home/u/.openclaw/memory: MDB_MAP_RESIZED"),
            "{e}"
        );
    }

    #[test]
    fn the_map_grows_instead_of_failing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let before = store.map_size();
        let blob = "x".repeat(1 << 20);
        // More than the initial map, in transactions of 8 MiB.
        for batch in 0..9 {
            store
                .write(|txn| -> Result<()> {
                    for i in 0..8u32 {
                        let key = format!("blob-{batch}-{i}");
                        store.meta_put(txn, &key, &blob)?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        assert!(store.map_size() > before);
        let count = store
            .read(|txn| -> Result<u64> { Ok(store.dbs.meta.len(txn)?) })
            .unwrap();
        assert_eq!(count, 9 * 8 + 1);
    }

    #[test]
    fn edge_keys_round_trip_and_long_keys_fit() {
        let key = edge_key(7, EdgeKind::CoOccurs, 1 << 20);
        assert_eq!(parse_edge_key(&key), Some((7, EdgeKind::CoOccurs, 1 << 20)));
        assert_eq!(parse_edge_key(&key[..5]), None);
        let long = "é".repeat(400);
        assert!(lmdb_key(&long).len() <= MAX_KEY_BYTES);
        assert_ne!(lmdb_key(&long), lmdb_key(&format!("{long}x")));
    }

    #[test]
    fn a_store_from_a_newer_schema_is_refused_with_a_way_out() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            store
                .write(|txn| -> Result<()> { store.meta_put(txn, "schema_version", &99u32) })
                .unwrap();
        }
        let err = Store::open(tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("schema version 99") && err.contains("--force"),
            "{err}"
        );
    }
}
