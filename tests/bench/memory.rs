//! Memory at scale: a generated corpus of 100,000 chunks (seeded, Zipf-distributed
//! vocabulary, names, tags and links) in 1,000 markdown files, with the `hash` embedder.
//!
//! Measures, on the release binary: ingest throughput (`memory index`) and its peak RSS,
//! hybrid search latency p50/p99 (`memory.search` over `--batch`, the engine's own `tookMs`),
//! idle RSS with the store open, and ANN recall@10 against exact cosine. Baseline in the same
//! run: the approach of the OpenClaw original, SQLite FTS5 BM25 plus brute-force cosine over
//! the same vectors (`tests/bench/memory_baseline.py`, needs python3 with numpy).
//! With `--features edge` and a MiniLM model dir (`OPENCLAW_RS_MINILM_DIR`), also MiniLM
//! embedding throughput.
//!
//! Run: `cargo bench --bench memory`. Under `cargo test` it runs a 2,000-chunk smoke pass.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openclaw_rs::memory::embed::{Embedder, HashEmbedder};
use openclaw_rs::memory::{Memory, MemoryOptions};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");
const SECTIONS_PER_FILE: usize = 100;
const QUERIES: usize = 200;
const WARMUP: usize = 10;

struct Corpus {
    vocabulary: Vec<String>,
    /// Cumulative Zipf weights over `vocabulary`.
    cumulative: Vec<f64>,
    names: Vec<String>,
    tags: Vec<String>,
}

impl Corpus {
    fn new(rng: &mut StdRng) -> Self {
        const COMMON: &[&str] = &[
            "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "was", "on", "with",
            "as", "we", "be", "at", "this", "have", "from", "or", "by", "not", "but", "are",
        ];
        const SYLLABLES: &[&str] = &[
            "ka", "ro", "mi", "ten", "sa", "vel", "dor", "an", "lu", "pre", "con", "ex", "ist",
            "ra", "mo", "nel", "tri", "gan", "ber", "lo", "qui", "sta", "fen", "dal", "or", "im",
            "ver", "ul", "par", "ti", "cen", "ow", "ash", "pen", "gro", "wil", "mar", "zu",
        ];
        let mut vocabulary: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
        let mut seen: std::collections::HashSet<String> = vocabulary.iter().cloned().collect();
        while vocabulary.len() < 30_000 {
            let n = rng.random_range(2..=4);
            let word: String = (0..n)
                .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
                .collect();
            if seen.insert(word.clone()) {
                vocabulary.push(word);
            }
        }
        let mut cumulative = Vec::with_capacity(vocabulary.len());
        let mut total = 0.0;
        for rank in 1..=vocabulary.len() {
            total += 1.0 / (rank as f64).powf(1.07);
            cumulative.push(total);
        }
        let first = [
            "Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis",
        ];
        let last = [
            "Lovelace", "Hopper", "Turing", "Torvalds", "Liskov", "Thompson", "Hamilton",
        ];
        let names = first
            .iter()
            .flat_map(|f| last.iter().map(move |l| format!("{f} {l}")))
            .collect();
        let tags = (0..200).map(|i| format!("topic{i}")).collect();
        Self {
            vocabulary,
            cumulative,
            names,
            tags,
        }
    }

    fn word(&self, rng: &mut StdRng) -> &str {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let x = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|c| *c < x);
        &self.vocabulary[i.min(self.vocabulary.len() - 1)]
    }

    fn paragraph(&self, rng: &mut StdRng) -> String {
        let words = rng.random_range(50..150);
        let mut out = String::new();
        for i in 0..words {
            if i > 0 {
                out.push(if i % 14 == 0 { '\n' } else { ' ' });
            }
            match rng.random_range(0..100) {
                0 => out.push_str(&self.names[rng.random_range(0..self.names.len())]),
                1 => {
                    out.push('#');
                    out.push_str(&self.tags[rng.random_range(0..self.tags.len())]);
                }
                2 => out.push_str(&format!("[[{}]]", self.word(rng))),
                _ => out.push_str(self.word(rng)),
            }
        }
        out.push('.');
        out
    }
}

fn write_workspace(workspace: &Path, chunks: usize, rng: &mut StdRng, corpus: &Corpus) {
    let dir = workspace.join("memory");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for file in 0..chunks.div_ceil(SECTIONS_PER_FILE) {
        let mut text = format!("# Notes {file}\n\n");
        for section in 0..SECTIONS_PER_FILE.min(chunks - file * SECTIONS_PER_FILE) {
            text.push_str(&format!(
                "## Section {section}\n\n{}\n\n",
                corpus.paragraph(rng)
            ));
        }
        std::fs::write(dir.join(format!("notes-{file:04}.md")), text).expect("write");
    }
}

/// Run the binary and return its stdout and peak RSS in KiB.
fn run_measured(args: &[&str]) -> (String, u64) {
    // Reaped with wait4 below, which also gives the peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(BIN)
        // The figures are the hash embedder's, whatever the build's profile prefers.
        .env("OPENCLAW_RS_MEMORY__EMBEDDER", "hash")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut out = child.stdout.expect("stdout");
    let mut err = child.stderr.expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    std::io::Read::read_to_string(&mut out, &mut stdout).expect("read");
    stderr.push_str(&reader.join().unwrap_or_default());
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?} failed: {stderr}"
    );
    (stdout, usage.ru_maxrss as u64)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Resident memory of a process in KiB: in all, and split into private (anonymous) pages
/// and pages of mapped files: the store's LMDB and tantivy maps and the program's own code,
/// shared page cache that the kernel can drop and read back.
#[derive(Clone, Copy)]
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
}

impl Rss {
    fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
        };
        Self {
            total: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:") + field("RssShmem:"),
        }
    }

    fn describe(self) -> String {
        format!(
            "{:.1} MiB ({:.1} MiB private, {:.1} MiB mapped files)",
            self.total as f64 / 1024.0,
            self.anon as f64 / 1024.0,
            self.file as f64 / 1024.0
        )
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let chunks = std::env::var("MEMORY_BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("state");
    let workspace = home.join("workspace");
    let home_arg = home.to_str().expect("utf-8 path");
    let mut rng = StdRng::seed_from_u64(20261122);
    let corpus = Corpus::new(&mut rng);
    write_workspace(&workspace, chunks, &mut rng, &corpus);

    // Ingest.
    let started = Instant::now();
    let (out, ingest_peak_kib) = run_measured(&["--home", home_arg, "memory", "index", "--json"]);
    let ingest_wall = started.elapsed();
    let result: serde_json::Value = serde_json::from_str(&out).expect("index json");
    let added = result["addedChunks"].as_u64().expect("addedChunks");
    assert_eq!(added as usize, chunks, "{result}");
    let chunks_per_sec = added as f64 / ingest_wall.as_secs_f64();

    // Queries: a few words from a random chunk, so there is something to find.
    let queries: Vec<String> = (0..QUERIES + WARMUP)
        .map(|_| {
            let paragraph = corpus.paragraph(&mut rng);
            let words: Vec<&str> = paragraph
                .split_whitespace()
                .filter(|w| w.chars().all(char::is_alphanumeric))
                .collect();
            let n = rng.random_range(2..=5).min(words.len());
            let start = rng.random_range(0..=words.len() - n);
            words[start..start + n].join(" ")
        })
        .collect();

    // Search latency and idle RSS in one long-lived `--batch` process.
    let mut child = Command::new(BIN)
        .env("OPENCLAW_RS_MEMORY__EMBEDDER", "hash")
        .args(["--home", home_arg, "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn batch");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    writeln!(stdin, r#"{{"id":0,"method":"memory.status"}}"#).expect("write");
    stdin.flush().expect("flush");
    let status: serde_json::Value =
        serde_json::from_str(&lines.next().expect("line").expect("read")).expect("json");
    assert_eq!(status["ok"], true, "{status}");
    std::thread::sleep(Duration::from_millis(500));
    let idle = Rss::of(child.id());
    let mut took = Vec::new();
    let mut modes = std::collections::BTreeMap::<String, usize>::new();
    for (i, query) in queries.iter().enumerate() {
        let request = serde_json::json!({"id": i + 1, "method": "memory.search", "params": {"query": query, "limit": 10}});
        writeln!(stdin, "{request}").expect("write");
        stdin.flush().expect("flush");
        let response: serde_json::Value =
            serde_json::from_str(&lines.next().expect("line").expect("read")).expect("json");
        assert_eq!(response["ok"], true, "{response}");
        if i >= WARMUP {
            took.push(response["payload"]["tookMs"].as_f64().expect("tookMs"));
            let mode = response["payload"]["mode"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            *modes.entry(mode).or_default() += 1;
        }
    }
    let searching = Rss::of(child.id());
    drop(stdin);
    let _ = child.wait();
    took.sort_by(f64::total_cmp);
    let p50 = percentile(&took, 50.0);
    let p99 = percentile(&took, 99.0);

    // Recall@10 of the ANN side against exact cosine, in-process on the same store.
    let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(384));
    let memory = Memory::open(MemoryOptions {
        dir: home.join("memory"),
        workspace: workspace.clone(),
        paths: vec![],
        chunking: Default::default(),
        graph: Default::default(),
        search: Default::default(),
        embedder: embedder.clone(),
        embedder_notice: None,
        vector_index: Default::default(),
    })
    .expect("open store");
    let mut recall_sum = 0.0;
    let query_vectors: Vec<Vec<f32>> = queries[WARMUP..]
        .iter()
        .map(|q| embedder.embed(&[q]).expect("embed").remove(0))
        .collect();
    for vector in &query_vectors {
        let exact: std::collections::HashSet<u32> = memory
            .nearest(vector, 10, true)
            .expect("exact")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        // As search runs it: a pool of 50 candidates, of which the best 10 count.
        let ann = memory.nearest(vector, 50, false).expect("ann");
        let found = ann
            .iter()
            .take(10)
            .filter(|(id, _)| exact.contains(id))
            .count();
        recall_sum += found as f64 / exact.len().max(1) as f64;
    }
    let recall = recall_sum / query_vectors.len() as f64;

    println!(
        "memory benchmark: {chunks} chunks in {} files, hash embedder (384 d)",
        chunks / SECTIONS_PER_FILE
    );
    println!("| measure | openclaw-rs | target |");
    println!("|---|---|---|");
    println!(
        "| ingest (memory index, wall) | {chunks_per_sec:.0} chunks/s ({:.1} s) | ≥ 2,000 chunks/s |",
        ingest_wall.as_secs_f64()
    );
    println!(
        "| peak RSS during ingest | {:.1} MiB | |",
        ingest_peak_kib as f64 / 1024.0
    );
    println!("| hybrid search p50 | {p50:.2} ms | ≤ 5 ms |");
    println!("| hybrid search p99 | {p99:.2} ms | ≤ 20 ms |");
    println!("| ANN recall@10 vs exact cosine | {recall:.3} | ≥ 0.90 |");
    println!("| idle RSS, store open | {} | ≤ 30 MB |", idle.describe());
    println!(
        "| RSS after {QUERIES} searches | {} | |",
        searching.describe()
    );
    println!("search modes: {modes:?}");

    // Baseline: the same chunks and vectors through SQLite FTS5 + numpy.
    let export = tmp.path().join("baseline");
    std::fs::create_dir_all(&export).expect("mkdir");
    let vectors = memory.vectors().expect("vectors");
    let mut chunks_out = std::io::BufWriter::new(
        std::fs::File::create(export.join("chunks.jsonl")).expect("create"),
    );
    let mut vectors_out =
        std::io::BufWriter::new(std::fs::File::create(export.join("vectors.f32")).expect("create"));
    for (id, vector) in &vectors {
        let text = memory.chunk_text(*id).expect("chunk").unwrap_or_default();
        writeln!(
            chunks_out,
            "{}",
            serde_json::json!({"id": id, "text": text})
        )
        .expect("write");
        for x in vector {
            vectors_out.write_all(&x.to_le_bytes()).expect("write");
        }
    }
    chunks_out.flush().expect("flush");
    vectors_out.flush().expect("flush");
    let mut queries_out = std::fs::File::create(export.join("queries.jsonl")).expect("create");
    for (query, vector) in queries[WARMUP..].iter().zip(&query_vectors) {
        writeln!(
            queries_out,
            "{}",
            serde_json::json!({"text": query, "vector": vector})
        )
        .expect("write");
    }
    std::fs::write(
        export.join("meta.json"),
        serde_json::json!({"dimensions": 384, "count": vectors.len()}).to_string(),
    )
    .expect("write");
    drop(memory);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench/memory_baseline.py");
    let has_numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_numpy {
        println!("baseline skipped: python3 with numpy is not installed");
    } else {
        let out = Command::new("python3")
            .arg(&script)
            .arg(&export)
            // One thread, as our search is one thread.
            .env("OPENBLAS_NUM_THREADS", "1")
            .env("OMP_NUM_THREADS", "1")
            .stderr(Stdio::inherit())
            .output()
            .expect("run baseline");
        assert!(out.status.success(), "baseline failed");
        let base: serde_json::Value = serde_json::from_slice(&out.stdout).expect("baseline json");
        let base_ingest = base["ingestChunksPerSec"].as_f64().expect("ingest");
        let base_p50 = base["searchP50Ms"].as_f64().expect("p50");
        let base_p99 = base["searchP99Ms"].as_f64().expect("p99");
        println!();
        println!("| measure | openclaw-rs | SQLite FTS5 + numpy brute force | ratio |");
        println!("|---|---|---|---|");
        println!(
            "| ingest | {chunks_per_sec:.0} chunks/s | {base_ingest:.0} chunks/s | {:.2}× |",
            chunks_per_sec / base_ingest
        );
        println!(
            "| hybrid search p50 | {p50:.2} ms | {base_p50:.2} ms | {:.3}× the time |",
            p50 / base_p50
        );
        println!(
            "| hybrid search p99 | {p99:.2} ms | {base_p99:.2} ms | {:.3}× the time |",
            p99 / base_p99
        );
        println!(
            "| peak RSS | {:.1} MiB (ingest) | {:.1} MiB | |",
            ingest_peak_kib as f64 / 1024.0,
            base["peakRssMiB"].as_f64().unwrap_or(0.0)
        );
        println!(
            "baseline versions: python {} · sqlite {} · numpy {}",
            base["python"], base["sqlite"], base["numpy"]
        );
    }

    minilm_throughput(&corpus, &mut rng);

    if full {
        assert!(
            chunks_per_sec >= 2_000.0,
            "ingest {chunks_per_sec:.0} chunks/s"
        );
        assert!(
            p50 <= 5.0 && p99 <= 20.0,
            "search p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
        assert!(recall >= 0.90, "recall@10 {recall:.3}");
        // The target is the process's own memory; the mapped files are page cache.
        assert!(idle.anon <= 30 * 1000, "idle private RSS {} KiB", idle.anon);
    }
}

#[cfg(not(feature = "edge"))]
fn minilm_throughput(_: &Corpus, _: &mut StdRng) {
    println!("minilm: not measured (core build; run with --features edge)");
}

/// Chunks per second through the edge build's MiniLM embedder, on chunk-sized paragraphs of
/// the same corpus, in batches as ingestion sends them.
#[cfg(feature = "edge")]
fn minilm_throughput(corpus: &Corpus, rng: &mut StdRng) {
    use openclaw_rs::memory::embed::{Embedder, MiniLmEmbedder};
    let dir = std::env::var_os("OPENCLAW_RS_MINILM_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            directories::BaseDirs::new().map(|b| b.cache_dir().join("openclaw-rs/models/minilm"))
        })
        .filter(|dir| dir.join("model.onnx").is_file());
    let Some(dir) = dir else {
        println!("minilm: not measured (no model; run dist/fetch-models.sh)");
        return;
    };
    let load_started = Instant::now();
    let embedder = MiniLmEmbedder::load(&dir).expect("load minilm");
    let load_ms = load_started.elapsed().as_secs_f64() * 1e3;
    let full = std::env::args().any(|a| a == "--bench");
    let texts: Vec<String> = (0..if full { 512 } else { 32 })
        .map(|_| corpus.paragraph(rng))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = Instant::now();
    let vectors = embedder.embed(&refs).expect("embed");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(vectors.len(), texts.len());
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    println!(
        "minilm: {:.1} chunks/s ({} chunks of {} words on average; model load {load_ms:.0} ms)",
        texts.len() as f64 / seconds,
        texts.len(),
        words / texts.len().max(1)
    );
}
