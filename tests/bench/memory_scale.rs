//! Memory at a million chunks: the int8 scan against the arroy forest, side by side, on the
//! vector layer of the real store (LMDB through `memory::vectors` and `memory::index`).
//!
//! Two kinds of vectors, 384 dimensions each:
//! - `hash`: the core default embedder over real text: windows of 48 words (stride 12,
//!   duplicates dropped) of the Rust documentation installed with the toolchain; queries are
//!   3 to 6 consecutive words of a random window, as people type them.
//! - `dense`: vectors that behave like sentence embeddings (see [`Dense`]): clustered on the
//!   unit sphere around topics and sub-topics with a shared mean direction; queries are new
//!   draws from the same distribution.
//!
//! For each kind the store grows to 100k, 300k and 1M chunks; at each size both tiers are
//! measured in the same process: p50/p99 latency of a top-10 query, recall@10 against exact
//! cosine, the arroy build time (incremental from the previous size), disk size of each
//! tier's data and RSS. Ingest rate at the first size is measured twice: the scan alone
//! (vectors and int8 blocks in batches of 1,000) and with arroy as the tier (the same, plus
//! the pending set the next build takes), then the one build that follows, on its own.
//!
//! Run: `nice -n 10 cargo bench --bench memory_scale` (sizes from `MEMORY_SCALE_SIZES`,
//! e.g. `100000,300000`; kinds from `MEMORY_SCALE_KINDS`, e.g. `dense`). Under `cargo test`
//! it runs a smoke pass of 1,000 chunks per kind. Data lives in a temporary
//! directory (`MEMORY_SCALE_DIR` to choose its parent) and is deleted at the end.
//!
//! Building a million-vector store takes longer than a quiet machine can be had for, so the
//! work splits in two: `MEMORY_SCALE_KEEP=dir MEMORY_SCALE_PHASE=build` grows the store in
//! `dir/<kind>` to each size (from what it already holds), builds the forest and writes the
//! queries with their exact answers next to it; `MEMORY_SCALE_PHASE=measure` then only times
//! the queries on the store as kept (run it between builds to measure each size). The
//! default phase, `all`, does both in one process. `MEMORY_SCALE_TREES` overrides the tree
//! count of a build, `MEMORY_SCALE_SWEEP` the `search_k` per hit values swept (e.g.
//! `100,200,400`).

#[path = "rust_docs.rs"]
mod rust_docs;

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use openclaw_rs::memory::embed::HashEmbedder;
use openclaw_rs::memory::index::{self, ArroyIndex, BuildControl, ScanIndex, VectorIndex};
use openclaw_rs::memory::store::Store;
use openclaw_rs::memory::vectors;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const DIMS: usize = 384;
const BATCH: usize = 1_000;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = std::env::var("MEMORY_SCALE_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| {
            if full {
                vec![100_000, 300_000, 1_000_000]
            } else {
                vec![1_000]
            }
        });
    let kinds: Vec<String> = std::env::var("MEMORY_SCALE_KINDS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_else(|| vec!["dense".into(), "hash".into()]);
    let queries = if full { 200 } else { 20 };
    let parent =
        std::env::var("MEMORY_SCALE_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
    println!(
        "memory_scale: {} dims, sizes {sizes:?}, {queries} queries per tier, machine: {} cores, load {}",
        DIMS,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let keep = std::env::var("MEMORY_SCALE_KEEP").ok().map(PathBuf::from);
    let phase = match std::env::var("MEMORY_SCALE_PHASE").as_deref() {
        Err(_) | Ok("all") => Phase::All,
        Ok("build") => Phase::Build,
        Ok("measure") => Phase::Measure,
        Ok(other) => panic!("MEMORY_SCALE_PHASE is all, build or measure, not {other}"),
    };
    assert!(
        phase == Phase::All || keep.is_some(),
        "MEMORY_SCALE_PHASE=build or measure needs MEMORY_SCALE_KEEP=dir"
    );
    let trees: Option<usize> = std::env::var("MEMORY_SCALE_TREES")
        .ok()
        .and_then(|v| v.trim().parse().ok());
    let sweep: Vec<usize> = std::env::var("MEMORY_SCALE_SWEEP")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| {
            if full {
                vec![100, 200, 400, 800, 1600]
            } else {
                Vec::new()
            }
        });
    for kind in &kinds {
        let tmp = tempfile::tempdir_in(&parent).expect("tempdir");
        let dir = match &keep {
            Some(keep) => keep.join(kind),
            None => tmp.path().to_path_buf(),
        };
        std::fs::create_dir_all(&dir).expect("store dir");
        let words = match kind.as_str() {
            // The kept queries are measured; no text to read.
            _ if phase == Phase::Measure => None,
            "dense" => None,
            "hash" => {
                let max = *sizes.iter().max().unwrap_or(&0);
                let words = real_words(max * STRIDE * 11 / 10 + WINDOW, full);
                println!("hash: {} words of text", words.len());
                Some(std::sync::Arc::new(words))
            }
            other => panic!("unknown kind {other}"),
        };
        let make = || -> Box<dyn Source> {
            match &words {
                None => Box::new(Dense::new(7)),
                Some(words) => Box::new(HashText::new(words.clone())),
            }
        };
        let run = Run {
            kind,
            make: &make,
            queries,
            dir: &dir,
            full,
            phase,
            trees,
            sweep: &sweep,
        };
        run.sizes(&sizes);
        // The store is gigabytes at a million: gone before the next kind starts (a kept
        // one stays for the next phase).
        drop(tmp);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Grow, build and measure in one process.
    All,
    /// Grow and build into the kept store; write the queries and their exact answers.
    Build,
    /// Time the queries on the kept store.
    Measure,
}

/// Where vectors and queries come from.
trait Source {
    /// The next `count` vectors of the corpus.
    fn vectors(&mut self, count: usize) -> Vec<Vec<f32>>;
    fn query(&mut self) -> Vec<f32>;
}

/// Vectors that behave like sentence embeddings. Models such as MiniLM put text on the unit
/// sphere so that (1) all vectors share a common direction (unrelated sentences still have
/// a cosine of about 0.1–0.2, the "anisotropy" of such models), (2) texts on one topic
/// form a cluster (cosine 0.4–0.7 within it), with sub-topics inside, and (3) the nearest
/// neighbour of a text is close but not identical (0.7–0.9). Each vector here is
/// `normalize(0.45·mean + 1.0·topic + 0.8·subtopic + noise)` with 2,000 topics, 8
/// sub-topics each, all directions random unit vectors and the noise Gaussian with a norm
/// of about 0.9; the run prints the cosines it actually gets. Uniform random vectors would
/// be far harder for any index (no structure) and far less like real text.
struct Dense {
    rng: StdRng,
    /// Queries have their own stream: the same queries whatever the store holds.
    queries: StdRng,
    mean: Vec<f32>,
    topics: Vec<Vec<f32>>,
    subtopics: Vec<Vec<f32>>,
}

const TOPICS: usize = 2_000;
const SUBTOPICS: usize = 8;

impl Dense {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mean = unit(&mut rng);
        let topics = (0..TOPICS).map(|_| unit(&mut rng)).collect();
        let subtopics = (0..TOPICS * SUBTOPICS).map(|_| unit(&mut rng)).collect();
        Self {
            rng,
            queries: StdRng::seed_from_u64(seed ^ 0x5155_4552),
            mean,
            topics,
            subtopics,
        }
    }

    fn draw(&self, rng: &mut StdRng) -> Vec<f32> {
        // Topic sizes are skewed (a few big subjects, many small ones): square of uniform.
        let u: f64 = rng.random_range(0.0..1.0);
        let topic = ((u * u) * TOPICS as f64) as usize % TOPICS;
        let sub = topic * SUBTOPICS + rng.random_range(0..SUBTOPICS);
        let noise_scale = 0.9 / (DIMS as f32).sqrt();
        let mut v: Vec<f32> = (0..DIMS)
            .map(|j| {
                0.45 * self.mean[j]
                    + self.topics[topic][j]
                    + 0.8 * self.subtopics[sub][j]
                    + noise_scale * gaussian(rng)
            })
            .collect();
        normalize(&mut v);
        v
    }
}

impl Source for Dense {
    fn vectors(&mut self, count: usize) -> Vec<Vec<f32>> {
        // Borrowed out while `draw` reads the topic tables.
        let mut rng = std::mem::replace(&mut self.rng, StdRng::seed_from_u64(0));
        let out = (0..count).map(|_| self.draw(&mut rng)).collect();
        self.rng = rng;
        out
    }

    fn query(&mut self) -> Vec<f32> {
        let mut rng = std::mem::replace(&mut self.queries, StdRng::seed_from_u64(0));
        let out = self.draw(&mut rng);
        self.queries = rng;
        out
    }
}

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box–Muller.
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn unit(rng: &mut StdRng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIMS).map(|_| gaussian(rng)).collect();
    normalize(&mut v);
    v
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Hash vectors of windows of real text.
struct HashText {
    words: std::sync::Arc<Vec<String>>,
    next_window: usize,
    seen: HashSet<u64>,
    embedder: HashEmbedder,
    rng: StdRng,
}

const WINDOW: usize = 48;
const STRIDE: usize = 12;

impl HashText {
    fn new(words: std::sync::Arc<Vec<String>>) -> Self {
        Self {
            words,
            next_window: 0,
            seen: HashSet::new(),
            embedder: HashEmbedder::new(DIMS),
            rng: StdRng::seed_from_u64(11),
        }
    }
}

impl Source for HashText {
    fn vectors(&mut self, count: usize) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let start = self.next_window * STRIDE;
            // Past the end of the text, windows start again from an offset: new text.
            let start = start % (self.words.len() - WINDOW);
            self.next_window += 1;
            let text = self.words[start..start + WINDOW].join(" ");
            let key = fnv(&text);
            if !self.seen.insert(key) {
                if self.next_window > self.words.len() * 4 {
                    panic!("the text ran out of distinct windows");
                }
                continue;
            }
            out.push(self.embedder.embed_one(&text));
        }
        out
    }

    fn query(&mut self) -> Vec<f32> {
        loop {
            let n = self.rng.random_range(3..=6);
            let start = self.rng.random_range(0..self.words.len() - n);
            let v = self
                .embedder
                .embed_one(&self.words[start..start + n].join(" "));
            if v.iter().any(|x| *x != 0.0) {
                return v;
            }
        }
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Words of the Rust documentation installed with the toolchain (HTML, tags stripped);
/// a short built-in text when it is not installed (the smoke pass needs no toolchain docs).
fn real_words(want: usize, full: bool) -> Vec<String> {
    let mut words = Vec::new();
    if let Some(root) = rust_docs::root() {
        // The prose first (book, reference, cargo), then the API docs.
        let order = [
            "book",
            "reference",
            "cargo",
            "rustc",
            "edition-guide",
            "std",
            "core",
            "alloc",
        ];
        for part in order {
            let mut files = Vec::new();
            rust_docs::collect_html(&root.join(part), &mut files);
            files.sort();
            for file in files {
                if let Ok(html) = std::fs::read_to_string(&file) {
                    words.extend(
                        rust_docs::strip_html(&html)
                            .split_whitespace()
                            .map(str::to_string),
                    );
                }
                if words.len() >= want {
                    return words;
                }
            }
        }
    }
    if words.len() < WINDOW * 4 {
        assert!(
            !full,
            "the full run needs the Rust documentation (rustup component add rust-docs)"
        );
        let text = include_str!("../../README.md");
        words = text.split_whitespace().map(str::to_string).collect();
    }
    words
}

fn put(store: &Store, first_id: u32, batch: &[Vec<f32>]) {
    let items: Vec<(u32, &[f32])> = batch
        .iter()
        .enumerate()
        .map(|(i, v)| (first_id + i as u32, v.as_slice()))
        .collect();
    store
        .write(|txn| vectors::put_many(&store.dbs, txn, &items))
        .expect("put vectors");
}

fn build(store: &Store, trees: Option<usize>) -> f64 {
    let started = Instant::now();
    let cancel = AtomicBool::new(false);
    index::build(
        store,
        DIMS,
        &BuildControl {
            progress: &|_| {},
            cancel: &cancel,
            trees,
        },
    )
    .expect("build");
    started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Pages of one database, in bytes.
fn db_bytes<K, V>(store: &Store, db: &heed::Database<'static, K, V>) -> u64 {
    let txn = store.read_txn().expect("txn");
    let stat = db.stat(&txn).expect("stat");
    (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64 * u64::from(stat.page_size)
}

fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    format!(
        "RSS {:.0} MiB ({:.0} MiB private, {:.0} MiB mapped; peak {:.0} MiB)",
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:") + field("RssShmem:"),
        field("VmHWM:")
    )
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn stored(store: &Store) -> usize {
    let txn = store.read_txn().expect("txn");
    vectors::len(&store.dbs, &txn).expect("len") as usize
}

/// The queries of a size and their exact top 10 (kept in `truth-<size>.json` between phases).
struct Kept {
    queries: Vec<Vec<f32>>,
    truth: Vec<Vec<u32>>,
}

/// One kind of vectors through the sizes.
struct Run<'a> {
    kind: &'a str,
    make: &'a dyn Fn() -> Box<dyn Source>,
    queries: usize,
    dir: &'a Path,
    full: bool,
    phase: Phase,
    trees: Option<usize>,
    sweep: &'a [usize],
}

impl Run<'_> {
    fn sizes(&self, sizes: &[usize]) {
        let store = Store::open(&self.dir.join("store")).expect("open store");
        let mut stored = stored(&store);
        if self.phase == Phase::Measure {
            assert!(stored > 0, "nothing kept in {}", self.dir.display());
            let kept = self.read_truth(stored);
            self.measure(&store, stored, &kept);
            return;
        }
        let mut source = (self.make)();
        if stored == 0 {
            self.ingest_rates(&store, sizes[0], &mut source);
            stored = sizes[0];
        } else {
            // A kept store grows with the vectors that follow those it holds.
            let mut skipped = 0;
            while skipped < stored {
                skipped += source.vectors((BATCH * 10).min(stored - skipped)).len();
            }
        }
        for &size in sizes {
            if size < stored {
                println!(
                    "{} {size}: skipped, the store already holds {stored}",
                    self.kind
                );
                continue;
            }
            let added = size - stored;
            let started = Instant::now();
            let mut made = 0.0;
            while stored < size {
                let t = Instant::now();
                let batch = source.vectors((BATCH * 10).min(size - stored));
                made += t.elapsed().as_secs_f64();
                put(&store, stored as u32 + 1, &batch);
                stored += batch.len();
            }
            let put_secs = started.elapsed().as_secs_f64() - made;
            let build_secs = if added > 0 {
                build(&store, self.trees)
            } else {
                0.0
            };
            let trees = {
                let txn = store.read_txn().expect("txn");
                index::last_build(&store, &txn)
                    .expect("last build")
                    .map_or(0, |b| b.trees)
            };
            let mib = |b: u64| b as f64 / (1 << 20) as f64;
            println!(
                "{kind} {size}: build {build_secs:.1} s for {added} added ({trees} trees) | \
                 put {:.0} vectors/s | disk: f32 {:.0} MiB, scan codes {:.0} MiB, arroy {:.0} MiB, \
                 file {:.0} MiB | {} | load {}",
                if put_secs > 0.0 {
                    added as f64 / put_secs
                } else {
                    0.0
                },
                mib(db_bytes(&store, &store.dbs.vectors)),
                mib(db_bytes(&store, &store.dbs.vector_codes)),
                mib(db_bytes(&store, &store.dbs.ann)),
                mib(store.disk_size()),
                rss(),
                load(),
                kind = self.kind,
            );
            let kept = self.truth(&store, size);
            match self.phase {
                Phase::Build => self.write_truth(size, &kept),
                _ => self.measure(&store, size, &kept),
            }
        }
    }

    /// Ingest rate at the first size: today's way in a scratch store of its own, then the
    /// same vectors into the bench store, where arroy is the tier, as `memory index` and
    /// `memory add` write them (batches of BATCH, the forest's pending set kept up to date, no
    /// build on the way), then the one build that follows the batch, timed on its own.
    fn ingest_rates(&self, store: &Store, first: usize, source: &mut Box<dyn Source>) {
        let kind = self.kind;
        let scratch = Store::open(&self.dir.join("scratch")).expect("scratch store");
        let mut made_n = 0usize;
        let started = Instant::now();
        let mut vectors_made = 0.0;
        while made_n < first {
            let t = Instant::now();
            let batch = source.vectors(BATCH.min(first - made_n));
            vectors_made += t.elapsed().as_secs_f64();
            put(&scratch, made_n as u32 + 1, &batch);
            made_n += batch.len();
        }
        let scan_secs = started.elapsed().as_secs_f64() - vectors_made;
        drop(scratch);
        std::fs::remove_dir_all(self.dir.join("scratch")).expect("remove scratch");
        // The same vectors again, from a fresh source.
        *source = (self.make)();
        let started = Instant::now();
        let mut made = 0.0;
        let mut stored = 0;
        while stored < first {
            let t = Instant::now();
            let batch = source.vectors(BATCH.min(first - stored));
            made += t.elapsed().as_secs_f64();
            put(store, stored as u32 + 1, &batch);
            stored += batch.len();
        }
        let arroy_secs = started.elapsed().as_secs_f64() - made;
        let build_secs = build(store, self.trees);
        println!(
            "{kind} ingest {first}: scan {:.0} vectors/s ({scan_secs:.1} s); arroy tier {:.0} \
             vectors/s ({arroy_secs:.1} s) = {:+.0}% | then the build that follows, \
             all {first} at once: {build_secs:.1} s | load {}",
            first as f64 / scan_secs,
            first as f64 / arroy_secs,
            (arroy_secs / scan_secs - 1.0) * 100.0,
            load()
        );
    }

    /// The queries (the same at every size: the sources draw them from a stream of their
    /// own) and their exact top 10 over every stored vector.
    fn queries(&self) -> Vec<Vec<f32>> {
        let mut source = (self.make)();
        (0..self.queries).map(|_| source.query()).collect()
    }

    fn truth(&self, store: &Store, size: usize) -> Kept {
        let qs = self.queries();
        let txn = store.read_txn().expect("txn");
        let exact: Vec<Vec<(u32, f32)>> = qs
            .iter()
            .map(|q| vectors::nearest_exact(&store.dbs, &txn, q, 10).expect("exact"))
            .collect();
        if self.kind == "dense" {
            // What the generated vectors look like (see `Dense`).
            let top1 = exact.iter().map(|e| e[0].1).sum::<f32>() / exact.len() as f32;
            let mut rng = StdRng::seed_from_u64(99);
            let mut pair = 0.0;
            for _ in 0..200 {
                let a = rng.random_range(1..=size as u32);
                let b = rng.random_range(1..=size as u32);
                let va = vectors::get(&store.dbs, &txn, a).expect("get").expect("a");
                let vb = vectors::get(&store.dbs, &txn, b).expect("get").expect("b");
                pair += va.iter().zip(&vb).map(|(x, y)| x * y).sum::<f32>();
            }
            println!(
                "dense {size}: mean cosine of a query to its nearest chunk {top1:.2}, of two random chunks {:.2}",
                pair / 200.0
            );
        }
        let truth = exact
            .into_iter()
            .map(|e| e.into_iter().map(|h| h.0).collect())
            .collect();
        Kept { queries: qs, truth }
    }

    fn truth_path(&self, size: usize) -> PathBuf {
        self.dir.join(format!("truth-{size}.json"))
    }

    fn write_truth(&self, size: usize, kept: &Kept) {
        let mut file = std::fs::File::create(self.truth_path(size)).expect("truth file");
        let json = serde_json::json!({ "queries": kept.queries, "truth": kept.truth });
        file.write_all(&serde_json::to_vec(&json).expect("json"))
            .expect("write truth");
    }

    fn read_truth(&self, size: usize) -> Kept {
        let path = self.truth_path(size);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run MEMORY_SCALE_PHASE=build first",
                path.display()
            )
        });
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("truth json");
        Kept {
            queries: serde_json::from_value(json["queries"].clone()).expect("queries"),
            truth: serde_json::from_value(json["truth"].clone()).expect("truth"),
        }
    }

    /// Time both tiers on the store as it is, against the exact answers.
    fn measure(&self, store: &Store, size: usize, kept: &Kept) {
        let kind = self.kind;
        let (qs, exact) = (&kept.queries, &kept.truth);
        assert_eq!(
            qs.len(),
            exact.len(),
            "queries and answers differ in number"
        );
        let trees = {
            let txn = store.read_txn().expect("txn");
            index::last_build(store, &txn)
                .expect("last build")
                .map_or(0, |b| b.trees)
        };
        let load_before = load();
        let txn = store.read_txn().expect("txn");
        let measure = |index: &dyn VectorIndex| -> (f64, f64, f64) {
            // Pages in from the store first: every query once, untimed.
            for q in qs {
                index.nearest(&store.dbs, &txn, q, 10, None).expect("warm");
            }
            let mut took = Vec::with_capacity(qs.len());
            let mut hits = 0usize;
            for (q, truth) in qs.iter().zip(exact) {
                let t = Instant::now();
                let found = index
                    .nearest(&store.dbs, &txn, q, 10, None)
                    .expect("nearest");
                took.push(t.elapsed().as_secs_f64() * 1e3);
                hits += found.iter().filter(|h| truth.contains(&h.0)).count();
            }
            took.sort_by(f64::total_cmp);
            (
                percentile(&took, 50.0),
                percentile(&took, 99.0),
                hits as f64 / (qs.len() * 10) as f64,
            )
        };
        let (scan_p50, scan_p99, scan_recall) = measure(&ScanIndex);
        let (arroy_p50, arroy_p99, arroy_recall) = measure(&ArroyIndex::default());
        let mut sweep = Vec::new();
        for &per_hit in self.sweep {
            let (p50, p99, recall) = measure(&ArroyIndex {
                search_k_per_hit: Some(per_hit),
            });
            sweep.push(format!(
                "{per_hit}: {p50:.2}/{p99:.2} ms {recall:.3} ({:.1}x)",
                scan_p50 / p50
            ));
        }
        drop(txn);
        println!(
            "{kind} {size}: scan p50 {scan_p50:.2} ms p99 {scan_p99:.2} ms recall@10 {scan_recall:.3} | \
             arroy p50 {arroy_p50:.2} ms p99 {arroy_p99:.2} ms recall@10 {arroy_recall:.3} (search_k/hit {}, {trees} trees) | \
             arroy {:.1}x faster | {} | load {load_before} before, {} after",
            index::search_k(size as u64),
            scan_p50 / arroy_p50,
            rss(),
            load()
        );
        if !sweep.is_empty() {
            println!(
                "{kind} {size}: arroy search_k/hit sweep (p50/p99, recall@10, x scan): {}",
                sweep.join(", ")
            );
        }
        if !self.full {
            // The smoke pass checks that both tiers work, not their speed.
            assert!(scan_recall >= 0.95, "scan recall {scan_recall}");
            assert!(arroy_recall >= 0.5, "arroy recall {arroy_recall}");
        }
    }
}
