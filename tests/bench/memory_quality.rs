//! Search quality on real text: does memory put the page that answers a question first?
//!
//! Corpus: the Rust book, the Cargo book and the Rust reference as installed with the
//! toolchain (`rustup component add rust-docs`), each HTML page turned into one note under
//! the workspace's `memory/` (redirect stubs and the one-page `print.html` copies left out).
//! Questions: [`QUESTIONS`], written for this benchmark in a user's words, each with the
//! page(s) that answer it. A hit counts for the page its chunk came from; a question is
//! answered at k when one of its pages is among the first k distinct pages.
//!
//! Reported, per mode, over the real engine (`memory.index`, `memory.search`, settings
//! from `config.toml` exactly as a user sets them): recall@1, @5, @10 and MRR (over the
//! first 10 pages) for BM25 only (`vector_weight = 0`), vectors only (`text_weight = 0`),
//! the hybrid (the defaults) and reciprocal rank fusion; then chunks of 200 and 800 tokens
//! against the default 400, and a sweep of the hybrid's vector weight and similarity floor. Same run, as the baseline: SQLite FTS5 `bm25()` over
//! whole pages (`tests/bench/memory_quality_baseline.py`, Python's own sqlite3).
//!
//! Embedders: `hash` always; `minilm` too on an edge build when its files are present
//! (`OPENCLAW_RS_MINILM_DIR`) and `MEMORY_QUALITY_EMBEDDERS` names it (it embeds about five
//! chunks a second, so the full corpus takes a while).
//!
//! Run: `cargo bench --bench memory_quality`. Under `cargo test` it runs a smoke pass over
//! the pages of the first questions and a few others, and checks that the pipeline finds
//! them.

#[path = "../common/mod.rs"]
mod common;
#[path = "rust_docs.rs"]
mod rust_docs;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

/// Questions and the pages (paths under the docs' html root, without `.html`) that answer
/// them.
const QUESTIONS: &[(&str, &[&str])] = &[
    (
        "how do I declare a variable I can change later",
        &["book/ch03-01-variables-and-mutability"],
    ),
    (
        "difference between a constant and an immutable let binding",
        &["book/ch03-01-variables-and-mutability"],
    ),
    (
        "which integer types exist and how many bits do they use",
        &["book/ch03-02-data-types", "reference/types/numeric"],
    ),
    (
        "what happens when an integer overflows in a release build",
        &["book/ch03-02-data-types"],
    ),
    (
        "assigning a String to another variable moves it so the first one is invalid",
        &["book/ch04-01-what-is-ownership"],
    ),
    (
        "can I have two mutable references to the same value at the same time",
        &["book/ch04-02-references-and-borrowing"],
    ),
    (
        "get a reference to part of a string by a byte range",
        &["book/ch04-03-slices"],
    ),
    (
        "create a new struct instance from an old one and change only some fields",
        &["book/ch05-01-defining-structs"],
    ),
    (
        "print a struct for debugging with derive Debug and the dbg macro",
        &["book/ch05-02-example-structs"],
    ),
    (
        "functions in an impl block without self such as a constructor",
        &["book/ch05-03-method-syntax"],
    ),
    (
        "rust has no null, what do I use instead for a value that may be absent",
        &["book/ch06-01-defining-an-enum"],
    ),
    (
        "match arms must cover every case, catch-all pattern with underscore",
        &["book/ch06-02-match"],
    ),
    (
        "shorter syntax than match when I care about one pattern only",
        &["book/ch06-03-if-let"],
    ),
    (
        "make the fields of a struct in a module public",
        &["book/ch07-03-paths-for-referring-to-an-item-in-the-module-tree"],
    ),
    (
        "re-export a name so users of my crate can reach it with pub use",
        &["book/ch07-04-bringing-paths-into-scope-with-the-use-keyword"],
    ),
    (
        "move a module's code into its own file",
        &["book/ch07-05-separating-modules-into-different-files"],
    ),
    (
        "read an element of a vector without panicking when the index is out of range",
        &["book/ch08-01-vectors"],
    ),
    (
        "why can't I index into a String with an integer",
        &["book/ch08-02-strings"],
    ),
    (
        "count how often each word appears using a hash map entry",
        &["book/ch08-03-hash-maps"],
    ),
    (
        "abort instead of unwinding on panic for a smaller binary",
        &["book/ch09-01-unrecoverable-errors-with-panic"],
    ),
    (
        "propagate an error to the caller with the question mark operator",
        &["book/ch09-02-recoverable-errors-with-result"],
    ),
    (
        "when should a library panic rather than return an error",
        &["book/ch09-03-to-panic-or-not-to-panic"],
    ),
    (
        "give a trait method a default implementation",
        &["book/ch10-02-traits"],
    ),
    (
        "dangling reference and lifetime annotations on a function returning a reference",
        &["book/ch10-03-lifetime-syntax"],
    ),
    (
        "run only the tests that are marked ignored",
        &["book/ch11-02-running-tests"],
    ),
    (
        "where do integration tests go in a package",
        &["book/ch11-03-test-organization"],
    ),
    (
        "use an environment variable to make the search case insensitive",
        &["book/ch12-05-working-with-environment-variables"],
    ),
    (
        "print error messages to standard error instead of standard output",
        &["book/ch12-06-writing-to-stderr-instead-of-stdout"],
    ),
    (
        "closure that takes ownership of captured values with move",
        &["book/ch13-01-closures"],
    ),
    (
        "iterator adapters are lazy until collect consumes them",
        &["book/ch13-02-iterators"],
    ),
    (
        "change the optimization level for dev and release builds",
        &["book/ch14-01-release-profiles", "cargo/reference/profiles"],
    ),
    (
        "examples in documentation comments that run as tests",
        &["book/ch14-02-publishing-to-crates-io"],
    ),
    (
        "several packages sharing one Cargo.lock and output directory",
        &[
            "book/ch14-03-cargo-workspaces",
            "cargo/reference/workspaces",
        ],
    ),
    (
        "store a recursive type like a cons list on the heap",
        &["book/ch15-01-box"],
    ),
    (
        "share one value between several owners with reference counting",
        &["book/ch15-04-rc"],
    ),
    (
        "mutate data behind an immutable reference with borrow rules checked at runtime",
        &[
            "book/ch15-05-interior-mutability",
            "reference/interior-mutability",
        ],
    ),
    (
        "memory leak caused by reference cycles and how Weak prevents it",
        &["book/ch15-06-reference-cycles"],
    ),
    (
        "start a new thread and wait for it to finish",
        &["book/ch16-01-threads"],
    ),
    (
        "send values from one thread to another over a channel",
        &["book/ch16-02-message-passing"],
    ),
    (
        "share a counter between threads with a mutex and atomic reference counting",
        &["book/ch16-03-shared-state"],
    ),
    (
        "which marker traits say a type can move to or be shared between threads",
        &[
            "book/ch16-04-extensible-concurrency-sync-and-send",
            "reference/special-types-and-traits",
        ],
    ),
    (
        "futures do nothing until they are awaited",
        &["book/ch17-01-futures-and-syntax"],
    ),
    (
        "a vector holding values of different types that implement the same trait",
        &["book/ch18-02-trait-objects", "reference/types/trait-object"],
    ),
    (
        "patterns that can fail to match versus patterns that always match",
        &["book/ch19-02-refutability"],
    ),
    ("dereference a raw pointer", &["book/ch20-01-unsafe-rust"]),
    (
        "implement a trait from another crate on a type from another crate with a wrapper",
        &["book/ch20-02-advanced-traits"],
    ),
    (
        "write a macro that takes a variable number of arguments like vec",
        &["book/ch20-05-macros", "reference/macros-by-example"],
    ),
    (
        "limit the number of threads a web server spawns with a pool",
        &["book/ch21-02-multithreaded"],
    ),
    (
        "depend on a crate from a git repository branch",
        &["cargo/reference/specifying-dependencies"],
    ),
    (
        "optional dependency turned on by a feature",
        &["cargo/reference/features"],
    ),
    (
        "link a native C library from a build script",
        &[
            "cargo/reference/build-scripts",
            "cargo/reference/build-script-examples",
        ],
    ),
    (
        "read my package's version at compile time from an environment variable",
        &["cargo/reference/environment-variables"],
    ),
    (
        "should the lock file be committed to version control",
        &["cargo/guide/cargo-toml-vs-cargo-lock", "cargo/faq"],
    ),
    (
        "use a local copy of a dependency instead of the published one with patch",
        &["cargo/reference/overriding-dependencies"],
    ),
    (
        "declare the oldest compiler version my crate supports",
        &["cargo/reference/rust-version"],
    ),
    (
        "which changes to a library need a new major version",
        &["cargo/reference/semver"],
    ),
    (
        "where does cargo keep downloaded crates and installed binaries",
        &["cargo/guide/cargo-home"],
    ),
    (
        "build without network access by keeping dependency sources in the repository",
        &[
            "cargo/commands/cargo-vendor",
            "cargo/reference/source-replacement",
        ],
    ),
    (
        "size and alignment of a struct with repr C",
        &["reference/type-layout"],
    ),
    (
        "list of behaviour that is undefined in unsafe code",
        &["reference/behavior-considered-undefined"],
    ),
    (
        "in which order are local variables dropped at the end of a scope",
        &["reference/destructors"],
    ),
    (
        "compile code only on one operating system with cfg",
        &["reference/conditional-compilation"],
    ),
    (
        "type of an expression that never produces a value such as panic or loop",
        &["reference/types/never"],
    ),
    (
        "rules for leaving out lifetimes in function signatures",
        &["reference/lifetime-elision", "book/ch10-03-lifetime-syntax"],
    ),
    (
        "write assembly instructions inside a rust function",
        &["reference/inline-assembly"],
    ),
    (
        "custom derive written as a procedural macro",
        &["reference/procedural-macros", "book/ch20-05-macros"],
    ),
];

/// How many questions (and their pages) the smoke pass under `cargo test` uses.
const SMOKE_QUESTIONS: usize = 12;
/// Pages besides the answers in the smoke corpus, so there is something to rank against.
const SMOKE_OTHER_PAGES: usize = 24;

/// Pages shorter than this are redirect stubs of renumbered chapters.
const MIN_PAGE_CHARS: usize = 400;

#[derive(Clone, Copy, Default)]
struct Scores {
    at1: f64,
    at5: f64,
    at10: f64,
    mrr: f64,
}

impl Scores {
    /// From the rank (1-based, among the first 10 pages) of each question's answer.
    fn of(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len().max(1) as f64;
        let within =
            |k: usize| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n;
        Self {
            at1: within(1),
            at5: within(5),
            at10: within(10),
            mrr: ranks
                .iter()
                .map(|r| r.map_or(0.0, |r| 1.0 / r as f64))
                .sum::<f64>()
                / n,
        }
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {:.3} | {:.3} | {:.3} | {:.3} |",
            self.at1, self.at5, self.at10, self.mrr
        )
    }
}

/// A page's name in the workspace: `book/ch04-01-x` is `memory/book.ch04-01-x.md` (the
/// default `memory.paths` takes `memory/*.md`, one level).
fn note_name(page: &str) -> String {
    format!("{}.md", page.replace('/', "."))
}

fn page_of_source(source: &str) -> String {
    let name = source.rsplit('/').next().unwrap_or(source);
    name.trim_end_matches(".md").replace('.', "/")
}

/// The pages of the corpus and their text, by name (`book/ch04-01-x`).
fn corpus(root: &Path, smoke: bool) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for part in ["book", "cargo", "reference"] {
        rust_docs::collect_html(&root.join(part), &mut files);
    }
    files.sort();
    let skip = [
        "print",
        "toc",
        "CHANGELOG",
        "test-summary",
        "syntax-index",
        "grammar",
    ];
    let mut pages: Vec<(String, String)> = files
        .iter()
        .filter_map(|file| {
            let rel = file.strip_prefix(root).ok()?.with_extension("");
            let name = rel.to_string_lossy().replace('\\', "/");
            let stem = rel.file_name()?.to_string_lossy().to_string();
            // The book's current chapters only: older editions live in subdirectories.
            if name.starts_with("book/") && name.matches('/').count() > 1 {
                return None;
            }
            if skip.contains(&stem.as_str()) {
                return None;
            }
            let html = std::fs::read_to_string(file).ok()?;
            let text = rust_docs::strip_html(&html);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            (text.len() >= MIN_PAGE_CHARS).then_some((name, text))
        })
        .collect();
    if smoke {
        let wanted: BTreeSet<&str> = QUESTIONS[..SMOKE_QUESTIONS]
            .iter()
            .flat_map(|(_, pages)| pages.iter().copied())
            .collect();
        let mut others = 0;
        pages.retain(|(name, _)| {
            if wanted.contains(name.as_str()) {
                return true;
            }
            // Every seventh other page, for a spread over the three books.
            others += 1;
            others % 7 == 0 && others / 7 <= SMOKE_OTHER_PAGES
        });
    }
    pages
}

fn write_config(state: &Path, settings: &str) {
    std::fs::write(state.join("config.toml"), settings).expect("config.toml");
}

/// Answer ranks for every question under the current `config.toml`.
async fn ranks(
    state: &Path,
    questions: &[(&str, &[&str])],
    index: bool,
) -> (Vec<Option<usize>>, String) {
    let engine = common::engine::start_clean(state);
    let h = engine.handle();
    if index {
        let started = Instant::now();
        let result = h
            .call("memory.index", json!({}))
            .await
            .unwrap_or_else(|e| panic!("memory.index failed: {}", e.message));
        println!(
            "indexed in {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            result
        );
    }
    let mut embedder = String::new();
    let mut out = Vec::new();
    for (question, answers) in questions {
        let result: Value = h
            .call("memory.search", json!({ "query": question, "limit": 40 }))
            .await
            .unwrap_or_else(|e| panic!("memory.search failed for {question:?}: {}", e.message));
        embedder = result["embedder"].as_str().unwrap_or_default().to_string();
        let mut pages: Vec<String> = Vec::new();
        for hit in result["hits"].as_array().into_iter().flatten() {
            let page = page_of_source(hit["source"].as_str().unwrap_or_default());
            if !pages.contains(&page) {
                pages.push(page);
            }
        }
        pages.truncate(10);
        out.push(
            pages
                .iter()
                .position(|p| answers.contains(&p.as_str()))
                .map(|i| i + 1),
        );
    }
    drop(h);
    drop(engine);
    (out, embedder)
}

/// SQLite FTS5 over whole pages, in Python's sqlite3; None when python3 is missing.
fn baseline(dir: &Path, questions: &[(&str, &[&str])]) -> Option<Vec<Option<usize>>> {
    let lines: Vec<String> = questions
        .iter()
        .map(|(q, answers)| json!({ "question": q, "answers": answers }).to_string())
        .collect();
    std::fs::write(dir.join("questions.jsonl"), lines.join("\n")).expect("questions");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench/memory_quality_baseline.py");
    let out = Command::new("python3").arg(script).arg(dir).output().ok()?;
    if !out.status.success() {
        println!("baseline failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let ranks: Vec<Option<usize>> = serde_json::from_slice(&out.stdout).ok()?;
    Some(ranks)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let Some(root) = rust_docs::root() else {
        assert!(
            !full,
            "the full run needs the Rust documentation (rustup component add rust-docs)"
        );
        println!("memory_quality: skipped, the Rust documentation is not installed");
        return;
    };
    let questions = if full {
        QUESTIONS
    } else {
        &QUESTIONS[..SMOKE_QUESTIONS]
    };
    let pages = corpus(&root, !full);
    let names: BTreeSet<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    let missing: Vec<&str> = questions
        .iter()
        .flat_map(|(_, answers)| answers.iter().copied())
        .filter(|a| !names.contains(a))
        .collect();
    assert!(
        missing.is_empty(),
        "answer pages not in the corpus: {missing:?}"
    );
    let chars: usize = pages.iter().map(|(_, t)| t.len()).sum();
    println!(
        "memory_quality: {} pages ({:.1} MB of text), {} questions, docs at {}",
        pages.len(),
        chars as f64 / 1e6,
        questions.len(),
        root.display()
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let pages_dir = tmp.path().join("pages");
    std::fs::create_dir_all(&pages_dir).expect("pages dir");
    let embedders: Vec<String> = std::env::var("MEMORY_QUALITY_EMBEDDERS")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_else(|_| vec!["hash".into()]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    let mut smoke_hybrid = None;
    for embedder in &embedders {
        let state = tmp.path().join(embedder);
        let memory = state.join("workspace/memory");
        std::fs::create_dir_all(&memory).expect("memory dir");
        for (name, text) in &pages {
            std::fs::write(
                memory.join(note_name(name)),
                format!("# {name}\n\n{text}\n"),
            )
            .expect("note");
        }
        let embedder_setting = match embedder.as_str() {
            // Named even for hash: the edge build defaults to minilm.
            "hash" => "embedder = \"hash\"\n".to_string(),
            "minilm" => {
                let dir = std::env::var("OPENCLAW_RS_MINILM_DIR")
                    .expect("minilm needs OPENCLAW_RS_MINILM_DIR (dist/fetch-models.sh)");
                format!("embedder = \"minilm\"\nmodel_dir = \"{dir}\"\n")
            }
            other => panic!("MEMORY_QUALITY_EMBEDDERS: unknown embedder {other}"),
        };
        let settings =
            |search: &str| format!("[memory]\n{embedder_setting}[memory.search]\n{search}");
        let modes = [
            ("BM25 only", "vector_weight = 0.0\ntext_weight = 1.0\n"),
            ("vectors only", "vector_weight = 1.0\ntext_weight = 0.0\n"),
            ("hybrid (defaults: weighted 0.7/0.3, floor 0.2)", ""),
            ("hybrid, rrf", "fusion = \"rrf\"\n"),
        ];
        let mut first = true;
        for (label, search) in modes {
            write_config(&state, &settings(search));
            let (r, used) = runtime.block_on(ranks(&state, questions, first));
            // A missing model would fall back to another embedder: that is not this row.
            assert!(
                used.to_lowercase().contains(embedder.as_str()),
                "embedder in use: {used}"
            );
            first = false;
            let scores = Scores::of(&r);
            if label.starts_with("hybrid (") {
                smoke_hybrid = Some(scores);
            }
            rows.push(scores.row(&format!("{embedder} · {label}")));
        }
        if full {
            // Chunk sizes (memory.chunk_tokens / chunk_overlap): each needs its own index.
            for (tokens, overlap) in [(200, 40), (800, 160)] {
                let sized = tmp.path().join(format!("{embedder}-{tokens}"));
                std::fs::create_dir_all(sized.join("workspace")).expect("sized state");
                std::fs::rename(state.join("workspace"), sized.join("workspace"))
                    .expect("move the notes");
                let chunking = format!("chunk_tokens = {tokens}\nchunk_overlap = {overlap}\n");
                let mut first = true;
                for (label, search) in [modes[0], modes[2]] {
                    write_config(
                        &sized,
                        &format!("[memory]\n{embedder_setting}{chunking}[memory.search]\n{search}"),
                    );
                    let (r, _) = runtime.block_on(ranks(&sized, questions, first));
                    first = false;
                    rows.push(Scores::of(&r).row(&format!(
                        "{embedder} · {label}, chunks of {tokens} tokens ({overlap} overlap)"
                    )));
                }
                std::fs::rename(sized.join("workspace"), state.join("workspace"))
                    .expect("move the notes back");
            }
            for weight in [0.3, 0.5, 0.7, 0.9] {
                for floor in [0.0, 0.2, 0.4] {
                    write_config(
                        &state,
                        &settings(&format!(
                            "vector_weight = {weight}\ntext_weight = {:.1}\nmin_similarity = {floor}\n",
                            1.0 - weight
                        )),
                    );
                    let (r, _) = runtime.block_on(ranks(&state, questions, false));
                    rows.push(Scores::of(&r).row(&format!(
                        "{embedder} · weighted {weight:.1}/{:.1}, floor {floor:.1}",
                        1.0 - weight
                    )));
                }
            }
        }
    }
    for (name, text) in &pages {
        std::fs::write(pages_dir.join(note_name(name)), text).expect("page");
    }
    match baseline(&pages_dir, questions) {
        Some(r) => rows.push(Scores::of(&r).row("SQLite FTS5 bm25(), whole pages")),
        None => println!("baseline skipped: python3 with sqlite3 FTS5 is not available"),
    }
    println!("\n| mode | recall@1 | recall@5 | recall@10 | MRR |\n|---|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    if !full {
        // The answers are among a few dozen pages: a working pipeline finds most of them.
        let hybrid = smoke_hybrid.expect("the hybrid ran");
        assert!(
            hybrid.at10 >= 0.75,
            "the hybrid found only {:.0}% of the smoke questions' pages in its first 10",
            hybrid.at10 * 100.0
        );
    }
}
