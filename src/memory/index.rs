//! The vector index seam: how the nearest chunks to a query vector are found.
//!
//! Two implementations share the memory store's LMDB environment and the unit-length f32
//! vectors in it (`vectors.rs`, the source of truth):
//! - [`ScanIndex`]: every vector scored from its int8 code, the best re-ranked by exact
//!   cosine. No build step; exact in practice; cost linear in the store.
//! - [`ArroyIndex`]: arroy's random-projection forest (database `ann`), searched with a
//!   `search_k` chosen for recall@10 ≥ 0.95, its candidates re-ranked by exact cosine on the
//!   stored f32 vectors. Built incrementally: vectors written or deleted since the last build
//!   are recorded in a "pending" bitmap (`vectors.rs` keeps it), the build feeds only those
//!   to arroy, and until then a query scores the pending ones exactly and merges them, so
//!   new text is never invisible and deleted text never found.
//!
//! `memory.vector_index = "auto"` picks arroy from [`AUTO_CROSSOVER`] stored dense vectors
//! up and never for `hash` vectors ([`auto_crossover`]), both measured by `cargo bench
//! --bench memory_scale` (docs/benchmarks.md).
//!
//! A build runs in one LMDB write transaction: killed or cancelled midway, nothing of it is
//! committed and the previous forest (plus the pending scan) keeps answering. While it runs
//! it reports to `vector-build.json` beside the store (about once a second), so `memory
//! status` in any process shows it ([`build_state`]); the file goes when the build ends.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arroy::distances::Cosine;
use heed::RoTxn;
use rand::SeedableRng;
use rand::rngs::StdRng;
use roaring::RoaringBitmap;

use super::store::{Dbs, Result, Store, StoreError};
use super::types::{
    AnnBuild, BuildPhase, BuildState, ChunkId, EmbedderIdentity, VectorIndexChoice, VectorIndexKind,
};
use super::vectors;

/// The arroy index number inside the `ann` database (one embedder at a time).
const ANN_INDEX: u16 = 0;
pub(super) const LAST_BUILD_KEY: &str = "ann_last_build";

/// `auto` uses arroy from this many stored dense vectors up. Measured (docs/benchmarks.md
/// "Memory at scale", release, quiet machine): the scan answers in 4.9, 15.2 and 46.7 ms at
/// 100k, 300k and 1M, exactly; arroy in 6.3, 8.7 and 12.8 ms at recall@10 0.88–0.92, so it
/// is clearly faster (3.7×) only at a million.
pub const AUTO_CROSSOVER: u64 = 1_000_000;

/// Where `auto` switches to arroy for vectors made by `embedder`; `None`: never. `hash`
/// vectors are sparse (a short query sets a few dozen of the 384 dimensions, which the scan
/// exploits) and not clustered, so the forest's random splits cannot find their
/// neighbours: at 100k–1M its recall@10 stayed between 0.47 and 0.56 at every `search_k`
/// tried, while the scan answered a million in 12.7 ms, exactly.
pub fn auto_crossover(embedder: &EmbedderIdentity) -> Option<u64> {
    (embedder.name != super::embed::hash::NAME).then_some(AUTO_CROSSOVER)
}

/// The file a running build reports to, beside the store.
const BUILD_STATE_FILE: &str = "vector-build.json";
/// How often a running build rewrites that file; a file older than [`BUILD_STALE_MS`] whose
/// process cannot be asked about is taken for an interrupted build.
const BUILD_REPORT_MS: u128 = 1_000;
const BUILD_STALE_MS: i64 = 10_000;

/// A build follows `memory.add` (in the background) once this many vectors wait for the
/// forest; an index run always builds after its files.
pub const BUILD_AFTER_PENDING: u64 = 1_000;

/// Filters that leave fewer chunks than this are answered exactly over those chunks: a
/// forest walk would discard most of what it visits.
const EXACT_FILTER_MAX: u64 = 20_000;

/// A way to find the nearest stored vectors to a query.
pub trait VectorIndex {
    fn kind(&self) -> VectorIndexKind;

    /// The `count` chunks most similar to `query` by exact cosine of their stored vectors,
    /// best first, restricted to `allowed` when given.
    fn nearest(
        &self,
        dbs: &Dbs,
        txn: &RoTxn<'_>,
        query: &[f32],
        count: usize,
        allowed: Option<&RoaringBitmap>,
    ) -> Result<Vec<(ChunkId, f32)>>;
}

/// Today's int8 block scan with exact re-rank.
pub struct ScanIndex;

impl VectorIndex for ScanIndex {
    fn kind(&self) -> VectorIndexKind {
        VectorIndexKind::Scan
    }

    fn nearest(
        &self,
        dbs: &Dbs,
        txn: &RoTxn<'_>,
        query: &[f32],
        count: usize,
        allowed: Option<&RoaringBitmap>,
    ) -> Result<Vec<(ChunkId, f32)>> {
        vectors::nearest(dbs, txn, query, count, allowed)
    }
}

/// arroy's forest plus an exact scan of what was written since its last build.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArroyIndex {
    /// Items arroy gathers from the forest per neighbour asked for (its `search_k` is this
    /// times the count); `None` chooses from the forest's size (see [`search_k`]).
    pub search_k_per_hit: Option<usize>,
}

impl VectorIndex for ArroyIndex {
    fn kind(&self) -> VectorIndexKind {
        VectorIndexKind::Arroy
    }

    fn nearest(
        &self,
        dbs: &Dbs,
        txn: &RoTxn<'_>,
        query: &[f32],
        count: usize,
        allowed: Option<&RoaringBitmap>,
    ) -> Result<Vec<(ChunkId, f32)>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let reader = match arroy::Reader::<Cosine>::open(txn, ANN_INDEX, dbs.ann) {
            Ok(reader) => reader,
            // Never built (or built for other dimensions): the scan answers exactly.
            Err(arroy::Error::MissingMetadata(_))
            | Err(arroy::Error::InvalidVecDimension { .. }) => {
                return vectors::nearest(dbs, txn, query, count, allowed);
            }
            Err(e) => return Err(e.into()),
        };
        if reader.dimensions() != query.len() {
            return vectors::nearest(dbs, txn, query, count, allowed);
        }
        if let Some(allowed) = allowed
            && allowed.len() <= EXACT_FILTER_MAX
        {
            return vectors::nearest_among(dbs, txn, query, count, allowed);
        }
        let pending = vectors::pending(dbs, txn)?;
        // The forest answers for what it holds and has not changed since; deleted and
        // replaced vectors are pending and so filtered out here, immediately.
        let mut candidates = reader.item_ids() - &pending;
        if let Some(allowed) = allowed {
            candidates &= allowed;
        }
        let unit = vectors::unit_length(query);
        let mut found = Vec::new();
        if !candidates.is_empty() {
            let per_hit = self
                .search_k_per_hit
                .unwrap_or_else(|| search_k(reader.n_items()));
            let mut builder = reader.nns(count);
            builder.candidates(&candidates);
            if let Some(search_k) = NonZeroUsize::new(count.max(10).saturating_mul(per_hit)) {
                builder.search_k(search_k);
            }
            if let Some(one) = NonZeroUsize::new(1) {
                // search_k above is the whole budget; arroy would otherwise multiply it.
                builder.oversampling(one);
            }
            for (id, _) in builder.by_vector(txn, &unit)? {
                // Exact cosine on the stored vector: the score every tier reports.
                if let Some(similarity) = vectors::similarity(dbs, txn, &unit, id)? {
                    found.push((id, similarity));
                }
            }
        }
        // New and replaced vectors since the build, scored exactly.
        let mut fresh = pending;
        if let Some(allowed) = allowed {
            fresh &= allowed;
        }
        if !fresh.is_empty() {
            found.extend(vectors::nearest_among(dbs, txn, query, count, &fresh)?);
        }
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        found.dedup_by_key(|hit| hit.0);
        found.truncate(count);
        Ok(found)
    }
}

/// Items gathered from the forest per neighbour asked for, by forest size: enough for
/// recall@10 ≥ 0.95 on sentence-like embeddings (docs/benchmarks.md "Memory at scale").
pub fn search_k(items: u64) -> usize {
    match items {
        0..=50_000 => 400,
        50_001..=300_000 => 600,
        _ => 800,
    }
}

/// Trees for a forest of `items` vectors of `dims` dimensions. arroy's default grows
/// trees until they hold as many nodes as there are items (hundreds at a million), which
/// makes every build and incremental update cost minutes; recall comes from `search_k`
/// gathering enough candidates, and more trees only help until each query's budget is
/// spread thin. Higher dimensions split worse, so they get a few more.
pub fn trees_for(items: u64, dims: usize) -> usize {
    let log2 = (items.max(2) as f64).log2();
    let base = (log2 * 2.0).round() as usize; // 1k → 20, 100k → 33, 1M → 40
    let dims_extra = (dims / 128).min(4) * 2;
    (base + dims_extra).clamp(8, 64)
}

/// The index in effect for `choice` over `stored` vectors, `auto` switching at
/// `crossover` ([`auto_crossover`]).
pub fn resolve(choice: VectorIndexChoice, stored: u64, crossover: Option<u64>) -> VectorIndexKind {
    match choice {
        VectorIndexChoice::Scan => VectorIndexKind::Scan,
        VectorIndexChoice::Arroy => VectorIndexKind::Arroy,
        VectorIndexChoice::Auto if crossover.is_some_and(|at| stored >= at) => {
            VectorIndexKind::Arroy
        }
        VectorIndexChoice::Auto => VectorIndexKind::Scan,
    }
}

pub fn for_kind(kind: VectorIndexKind) -> Box<dyn VectorIndex + Send + Sync> {
    match kind {
        VectorIndexKind::Scan => Box::new(ScanIndex),
        VectorIndexKind::Arroy => Box::new(ArroyIndex::default()),
    }
}

/// Where a build is, for a progress bar: `done` of `total` steps, and what it is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildProgress {
    pub done: u64,
    pub total: u64,
    pub message: String,
}

/// How a build is watched and stopped.
pub struct BuildControl<'a> {
    /// Called on the caller's thread (about every 100 ms) while the build runs on another.
    pub progress: &'a dyn Fn(BuildProgress),
    pub cancel: &'a AtomicBool,
    /// Trees to build; `None` chooses from dimensions and size ([`trees_for`]).
    pub trees: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the vector index build was cancelled; the previous index is unchanged")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl super::store::MapFull for BuildError {
    fn is_map_full(&self) -> bool {
        matches!(self, BuildError::Store(e) if e.is_map_full())
    }
}

impl From<heed::Error> for BuildError {
    fn from(e: heed::Error) -> Self {
        BuildError::Store(e.into())
    }
}

impl From<arroy::Error> for BuildError {
    fn from(e: arroy::Error) -> Self {
        match e {
            arroy::Error::BuildCancelled => BuildError::Cancelled,
            e => BuildError::Store(e.into()),
        }
    }
}

/// Bring the arroy forest up to date with the stored vectors: the pending ones are added,
/// replaced or removed and only the trees they touch are rebuilt. Returns `None` when
/// nothing was pending. One write transaction: a kill or a cancel leaves the previous forest.
pub fn build(
    store: &Store,
    dims: usize,
    control: &BuildControl<'_>,
) -> Result<Option<AnnBuild>, BuildError> {
    // arroy reports from its worker threads; the caller's callback need not be thread-safe,
    // so the build runs on a scoped thread and this one relays the latest report.
    let latest: Mutex<Option<BuildProgress>> = Mutex::new(None);
    let done = AtomicBool::new(false);
    let (cancel, trees) = (control.cancel, control.trees);
    let mut report = StateFile::start(store.dir());
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let outcome = build_here(store, dims, cancel, trees, &|p| {
                *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            });
            done.store(true, Ordering::Release);
            outcome
        });
        while !done.load(Ordering::Acquire) {
            std::thread::park_timeout(std::time::Duration::from_millis(100));
            if let Some(p) = latest.lock().unwrap_or_else(|e| e.into_inner()).take() {
                report.update(&p);
                (control.progress)(p);
            }
            report.beat();
        }
        match worker.join() {
            Ok(outcome) => outcome,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A running build's `vector-build.json`: written at the start, rewritten about once a
/// second (also without news: the time says the process lives), removed when the build
/// ends however it ends. A kill leaves it, and [`build_state`] then says `interrupted`.
struct StateFile {
    path: std::path::PathBuf,
    state: BuildState,
    written: Instant,
}

impl StateFile {
    fn start(dir: &std::path::Path) -> Self {
        let now = super::now_ms();
        let file = Self {
            path: dir.join(BUILD_STATE_FILE),
            state: BuildState {
                state: BuildPhase::Running,
                pid: std::process::id(),
                started_at: now,
                updated_at: now,
                done: 0,
                total: 0,
                message: "starting".into(),
            },
            written: Instant::now(),
        };
        file.write();
        file
    }

    fn update(&mut self, p: &BuildProgress) {
        self.state.done = p.done;
        self.state.total = p.total;
        self.state.message.clone_from(&p.message);
    }

    fn beat(&mut self) {
        if self.written.elapsed().as_millis() >= BUILD_REPORT_MS {
            self.state.updated_at = super::now_ms();
            self.written = Instant::now();
            self.write();
        }
    }

    fn write(&self) {
        // Written aside and renamed: a reader never sees half a file. Best effort: the
        // build matters, its report does not.
        let tmp = self.path.with_extension("json.tmp");
        let written = serde_json::to_vec(&self.state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            tracing::debug!("cannot report the build in {}: {e}", self.path.display());
        }
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The build under way for the store in `dir`, in this process or another: `running`
/// while its process reports, `interrupted` when that process is gone (killed) without
/// finishing. `None` when no build runs or the last one ended.
pub fn build_state(dir: &std::path::Path) -> Option<BuildState> {
    let bytes = std::fs::read(dir.join(BUILD_STATE_FILE)).ok()?;
    let mut state: BuildState = serde_json::from_slice(&bytes).ok()?;
    let alive = crate::platform::process_alive(state.pid)
        .unwrap_or_else(|| super::now_ms() - state.updated_at <= BUILD_STALE_MS);
    if !alive {
        state.state = BuildPhase::Interrupted;
    }
    Some(state)
}

fn build_here(
    store: &Store,
    dims: usize,
    cancel: &AtomicBool,
    trees: Option<usize>,
    progress: &(dyn Fn(BuildProgress) + Sync),
) -> Result<Option<AnnBuild>, BuildError> {
    let started = Instant::now();
    store.write(|txn| -> Result<Option<AnnBuild>, BuildError> {
        let dbs = &store.dbs;
        let writer = arroy::Writer::<Cosine>::new(dbs.ann, ANN_INDEX, dims);
        let pending = vectors::pending(dbs, txn)?;
        let built = store.meta_get::<AnnBuild>(txn, LAST_BUILD_KEY)?;
        // Never built, or built for other dimensions: everything goes in.
        let existing_dims = arroy::Reader::<Cosine>::open(txn, ANN_INDEX, dbs.ann)
            .ok()
            .map(|r| r.dimensions());
        let full = built.is_none() || existing_dims.is_some_and(|d| d != dims);
        if !full && pending.is_empty() && !writer.need_build(txn)? {
            return Ok(None);
        }
        let (mut added, mut removed) = (0u64, 0u64);
        let total_items = if full {
            vectors::len(dbs, txn)?
        } else {
            pending.len()
        };
        let report = |done: u64, message: &str| {
            progress(BuildProgress {
                done,
                total: total_items,
                message: message.into(),
            })
        };
        report(0, "loading vectors into the forest");
        let check_every = 4096;
        if full {
            writer.clear(txn)?;
            let ids = vectors::ids(dbs, txn)?;
            for (n, id) in ids.iter().enumerate() {
                if let Some(vector) = vectors::get(dbs, txn, id)? {
                    writer.add_item(txn, id, &vector)?;
                    added += 1;
                }
                if n % check_every == 0 {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(BuildError::Cancelled);
                    }
                    report(n as u64, "loading vectors into the forest");
                }
            }
        } else {
            for (n, id) in pending.iter().enumerate() {
                match vectors::get(dbs, txn, id)? {
                    Some(vector) => {
                        writer.add_item(txn, id, &vector)?;
                        added += 1;
                    }
                    None => {
                        if writer.del_item(txn, id)? {
                            removed += 1;
                        }
                    }
                }
                if n % check_every == 0 && cancel.load(Ordering::Relaxed) {
                    return Err(BuildError::Cancelled);
                }
            }
        }
        let stored = vectors::len(dbs, txn)?;
        let trees = trees.unwrap_or_else(|| trees_for(stored, dims));
        let mut rng = StdRng::seed_from_u64(0x6f70_656e_636c_6177);
        let step_total = total_items;
        writer
            .builder(&mut rng)
            .n_trees(trees)
            .cancel(|| cancel.load(Ordering::Relaxed))
            .progress(|p: arroy::WriterProgress| {
                progress(BuildProgress {
                    done: p
                        .sub
                        .as_ref()
                        .map_or(0, |s| u64::from(s.current.load(Ordering::Relaxed))),
                    total: p.sub.as_ref().map_or(step_total, |s| u64::from(s.max)),
                    message: step_words(&format!("{:?}", p.main)),
                })
            })
            .build(txn)?;
        vectors::clear_pending(dbs, txn)?;
        let record = AnnBuild {
            at: super::now_ms(),
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            items: stored,
            trees: u32::try_from(trees).unwrap_or(u32::MAX),
            added,
            removed,
        };
        store.meta_put(txn, LAST_BUILD_KEY, &record)?;
        Ok(Some(record))
    })
}

/// The last committed build, if any.
pub fn last_build(store: &Store, txn: &RoTxn<'_>) -> Result<Option<AnnBuild>> {
    store.meta_get(txn, LAST_BUILD_KEY)
}

/// Vectors in the forest as of its last build (0 when never built).
pub fn indexed(dbs: &Dbs, txn: &RoTxn<'_>) -> Result<u64> {
    match arroy::Reader::<Cosine>::open(txn, ANN_INDEX, dbs.ann) {
        Ok(reader) => Ok(reader.n_items()),
        Err(arroy::Error::MissingMetadata(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Vectors written or deleted since the last build (0 when there was none: then
/// [`indexed`] is 0 and everything is waiting for the first build).
pub fn pending_count(store: &Store, txn: &RoTxn<'_>) -> Result<u64> {
    Ok(vectors::pending(&store.dbs, txn)?.len())
}

/// arroy's step names (`CreateNewTrees`) as words (`create new trees`).
fn step_words(step: &str) -> String {
    let mut out = String::with_capacity(step.len() + 8);
    for (i, c) in step.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    const DIMS: usize = 32;

    /// Vectors around a few random centres, as sentence embeddings of related text are.
    fn clustered(rng: &mut StdRng, count: usize, centres: &[Vec<f32>]) -> Vec<Vec<f32>> {
        (0..count)
            .map(|i| {
                let centre = &centres[i % centres.len()];
                centre
                    .iter()
                    .map(|c| c + rng.random_range(-0.6f32..0.6))
                    .collect()
            })
            .collect()
    }

    fn centres(rng: &mut StdRng, n: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| (0..DIMS).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect()
    }

    fn put(store: &Store, first_id: u32, vectors: &[Vec<f32>]) {
        let items: Vec<(ChunkId, &[f32])> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (first_id + i as u32, v.as_slice()))
            .collect();
        store
            .write(|txn| vectors::put_many(&store.dbs, txn, &items))
            .unwrap();
    }

    fn build_now(store: &Store) -> Option<AnnBuild> {
        let cancel = AtomicBool::new(false);
        build(
            store,
            DIMS,
            &BuildControl {
                progress: &|_| {},
                cancel: &cancel,
                trees: None,
            },
        )
        .unwrap()
    }

    fn arroy_nearest(store: &Store, query: &[f32], count: usize) -> Vec<(ChunkId, f32)> {
        let txn = store.read_txn().unwrap();
        ArroyIndex::default()
            .nearest(&store.dbs, &txn, query, count, None)
            .unwrap()
    }

    fn setup(count: usize, seed: u64) -> (tempfile::TempDir, Store, StdRng, Vec<Vec<f32>>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let centres = centres(&mut rng, 20);
        let vectors = clustered(&mut rng, count, &centres);
        put(&store, 1, &vectors);
        (tmp, store, rng, centres)
    }

    #[test]
    fn the_forest_reaches_the_recall_target_with_exact_scores() {
        let (_tmp, store, mut rng, centres) = setup(6_000, 1);
        let record = build_now(&store).expect("a first build");
        assert_eq!((record.items, record.added), (6_000, 6_000));
        assert_eq!(record.trees as usize, trees_for(6_000, DIMS));
        let txn = store.read_txn().unwrap();
        assert_eq!(indexed(&store.dbs, &txn).unwrap(), 6_000);
        let queries = clustered(&mut rng, 50, &centres);
        let mut hits = 0;
        for query in &queries {
            let exact = vectors::nearest_exact(&store.dbs, &txn, query, 10).unwrap();
            let found = arroy_nearest(&store, query, 10);
            assert_eq!(found.len(), 10);
            for (id, score) in &found {
                let unit = vectors::unit_length(query);
                let truth = vectors::similarity(&store.dbs, &txn, &unit, *id).unwrap();
                assert_eq!(Some(*score), truth, "scores are exact cosines");
            }
            hits += found
                .iter()
                .filter(|(id, _)| exact.iter().any(|(e, _)| e == id))
                .count();
        }
        let recall = hits as f64 / (queries.len() * 10) as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn a_build_takes_only_what_changed_and_new_vectors_are_found_before_it() {
        let (_tmp, store, mut rng, centres) = setup(3_000, 2);
        build_now(&store).unwrap();
        assert!(
            build_now(&store).is_none(),
            "nothing pending, nothing built"
        );
        let fresh = clustered(&mut rng, 40, &centres);
        put(&store, 10_001, &fresh);
        {
            let txn = store.read_txn().unwrap();
            assert_eq!(pending_count(&store, &txn).unwrap(), 40);
            assert_eq!(indexed(&store.dbs, &txn).unwrap(), 3_000);
        }
        // Before any build, each new vector is its own nearest neighbour.
        for (i, vector) in fresh.iter().enumerate() {
            let top = arroy_nearest(&store, vector, 5)[0];
            assert_eq!(top.0, 10_001 + i as u32);
            assert!((top.1 - 1.0).abs() < 1e-5);
        }
        let record = build_now(&store).expect("an incremental build");
        assert_eq!((record.added, record.removed, record.items), (40, 0, 3_040));
        let txn = store.read_txn().unwrap();
        assert_eq!(pending_count(&store, &txn).unwrap(), 0);
        assert_eq!(indexed(&store.dbs, &txn).unwrap(), 3_040);
        drop(txn);
        assert_eq!(arroy_nearest(&store, &fresh[7], 1)[0].0, 10_008);
    }

    #[test]
    fn deleted_vectors_are_never_found_even_before_a_build() {
        let (_tmp, store, _rng, _) = setup(2_000, 3);
        build_now(&store).unwrap();
        let target = store
            .read(|txn| vectors::get(&store.dbs, txn, 77))
            .unwrap()
            .unwrap();
        assert_eq!(arroy_nearest(&store, &target, 1)[0].0, 77);
        store
            .write(|txn| vectors::delete_many(&store.dbs, txn, &[77]))
            .unwrap();
        assert!(arroy_nearest(&store, &target, 50).iter().all(|h| h.0 != 77));
        let record = build_now(&store).unwrap();
        assert_eq!((record.removed, record.items), (1, 1_999));
        assert!(arroy_nearest(&store, &target, 50).iter().all(|h| h.0 != 77));
    }

    #[test]
    fn a_cancelled_build_leaves_the_previous_forest() {
        let (_tmp, store, mut rng, centres) = setup(2_000, 4);
        let first = build_now(&store).unwrap();
        put(&store, 5_001, &clustered(&mut rng, 500, &centres));
        let cancel = AtomicBool::new(true);
        let reports = Mutex::new(0);
        let outcome = build(
            &store,
            DIMS,
            &BuildControl {
                progress: &|_| *reports.lock().unwrap() += 1,
                cancel: &cancel,
                trees: None,
            },
        );
        assert!(matches!(outcome, Err(BuildError::Cancelled)), "{outcome:?}");
        let txn = store.read_txn().unwrap();
        assert_eq!(last_build(&store, &txn).unwrap(), Some(first));
        assert_eq!(indexed(&store.dbs, &txn).unwrap(), 2_000);
        assert_eq!(pending_count(&store, &txn).unwrap(), 500);
        drop(txn);
        let new = store
            .read(|txn| vectors::get(&store.dbs, txn, 5_100))
            .unwrap()
            .unwrap();
        assert_eq!(arroy_nearest(&store, &new, 1)[0].0, 5_100);
    }

    #[test]
    fn a_running_build_is_reported_beside_the_store_and_a_killed_one_as_interrupted() {
        let (tmp, store, _rng, _) = setup(3_000, 6);
        assert_eq!(build_state(tmp.path()), None);
        let seen = Mutex::new(Vec::new());
        let cancel = AtomicBool::new(false);
        build(
            &store,
            DIMS,
            &BuildControl {
                progress: &|_| seen.lock().unwrap().extend(build_state(tmp.path())),
                cancel: &cancel,
                trees: None,
            },
        )
        .unwrap();
        let seen = seen.into_inner().unwrap();
        assert!(!seen.is_empty(), "the build reported nothing");
        assert!(
            seen.iter()
                .all(|s| s.state == BuildPhase::Running && s.pid == std::process::id())
        );
        assert_eq!(
            build_state(tmp.path()),
            None,
            "the report goes with the build"
        );

        // What a killed build leaves: its process is gone, so it is no longer running.
        // (Windows goes by the report's age instead: not asked here.)
        if !cfg!(unix) {
            return;
        }
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        let left = BuildState {
            pid,
            ..seen[0].clone()
        };
        std::fs::write(
            tmp.path().join(BUILD_STATE_FILE),
            serde_json::to_vec(&left).unwrap(),
        )
        .unwrap();
        let state = build_state(tmp.path()).unwrap();
        assert_eq!((state.state, state.pid), (BuildPhase::Interrupted, pid));
    }

    #[test]
    fn filters_restrict_the_hits_and_auto_switches_at_the_crossover() {
        let (_tmp, store, mut rng, centres) = setup(3_000, 5);
        build_now(&store).unwrap();
        let query = &clustered(&mut rng, 1, &centres)[0];
        let txn = store.read_txn().unwrap();
        let small: RoaringBitmap = (100..=140).collect();
        let hits = ArroyIndex::default()
            .nearest(&store.dbs, &txn, query, 10, Some(&small))
            .unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|(id, _)| small.contains(*id)));
        use VectorIndexChoice as C;
        let dense = auto_crossover(&EmbedderIdentity {
            name: "minilm".into(),
            dimensions: 384,
            model_hash: String::new(),
        });
        use crate::memory::embed::Embedder;
        let hash = auto_crossover(&crate::memory::embed::hash::HashEmbedder::new(384).identity());
        assert_eq!(
            resolve(C::Auto, AUTO_CROSSOVER - 1, dense),
            VectorIndexKind::Scan
        );
        assert_eq!(
            resolve(C::Auto, AUTO_CROSSOVER, dense),
            VectorIndexKind::Arroy
        );
        assert_eq!(resolve(C::Auto, u64::MAX, hash), VectorIndexKind::Scan);
        assert_eq!(resolve(C::Arroy, 0, hash), VectorIndexKind::Arroy);
        assert_eq!(resolve(C::Scan, u64::MAX, dense), VectorIndexKind::Scan);
        assert_eq!(resolve(C::Arroy, 0, dense), VectorIndexKind::Arroy);
        assert!(trees_for(1_000_000, 384) <= 64 && trees_for(1_000, 384) >= 8);
        assert_eq!(step_words("CreateNewTrees"), "create new trees");
    }
}
