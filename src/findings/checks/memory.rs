//! Doctor checks of the memory store: it opens, its three indexes agree, and its vectors
//! came from the embedder configured now. Both checks share one look at the store per run
//! (see [`MemoryAccess`](crate::findings::MemoryAccess) for how it is reached).

use std::path::PathBuf;

use crate::findings::{Context, Finding, Severity, show, state_paths};
use crate::memory::inspect::{Differences, Inspection, identities_match, inspect_dir};
use crate::memory::store::StoreError;
use crate::memory::types::EmbedderIdentity;
use crate::memory::{MemoryError, Result};

pub(crate) enum Look {
    /// Memory is off, or nothing has been stored yet.
    Nothing,
    /// Written by an older version; the next normal open upgrades it.
    Outdated { dir: PathBuf, error: String },
    Unreadable {
        dir: PathBuf,
        error: String,
        /// Only the full-text index is damaged: `memory index --force` rebuilds it from LMDB.
        text_only: bool,
    },
    Inspected {
        dir: PathBuf,
        inspection: Inspection,
        expected: EmbedderIdentity,
    },
}

const FORCE: &str = "openclaw-rs memory index --force";

fn look<'c>(ctx: &'c Context<'_>) -> &'c Look {
    ctx.memory.look.get_or_init(|| {
        let snapshot = ctx.snapshot;
        if !snapshot.config().memory.enabled {
            return Look::Nothing;
        }
        let expected = crate::memory::embed::configured_identity(snapshot);
        let (dir, outcome) = ctx.memory.with_store(|open| {
            let dir = match open {
                Some(memory) => memory.options().dir.clone(),
                None => state_paths(snapshot).memory,
            };
            let inspect = || -> Result<Option<Inspection>> {
                match open {
                    Some(memory) => memory.inspect().map(Some),
                    None => inspect_dir(&dir, Some(&expected)),
                }
            };
            // A damaged store must become a finding, never take the whole run down with it.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(inspect))
                .unwrap_or_else(|_| {
                    Err(MemoryError::Invalid(
                        "reading it failed unexpectedly (the files may be damaged)".into(),
                    ))
                });
            (dir, outcome)
        });
        match outcome {
            Ok(None) => Look::Nothing,
            Ok(Some(inspection)) => Look::Inspected {
                dir,
                inspection,
                expected,
            },
            Err(e @ MemoryError::Store(StoreError::Outdated { .. })) => Look::Outdated {
                error: e.to_string(),
                dir,
            },
            Err(e) => Look::Unreadable {
                text_only: matches!(e, MemoryError::Text(_)),
                error: e.to_string(),
                dir,
            },
        }
    })
}

/// `memory.store.unreadable` and `memory.store.inconsistent`.
pub fn store(ctx: &Context<'_>) -> Vec<Finding> {
    match look(ctx) {
        Look::Nothing => Vec::new(),
        Look::Outdated { dir, error } => vec![
            Finding::new(
                "memory.store.outdated",
                Severity::Info,
                "The memory store is from an older version",
            )
            .detail(format!(
                "{error}: its chunks are kept and their vectors are made again, which takes \
                 a moment on a large store. Nothing to do by hand."
            ))
            .path(show(dir)),
        ],
        Look::Unreadable {
            dir,
            error,
            text_only,
        } => {
            let what_to_do = if *text_only {
                format!(
                    "Run `{FORCE}`: it rebuilds the full-text index from the chunks kept in \
                     LMDB."
                )
            } else {
                format!(
                    "Run `{FORCE}`. If that fails too, the LMDB file itself is damaged: move \
                     {} aside and run it again (workspace files are indexed again; notes \
                     added with `memory add` stay only in the moved copy).",
                    show(dir)
                )
            };
            vec![
                Finding::new(
                    "memory.store.unreadable",
                    Severity::Critical,
                    "The memory store cannot be opened",
                )
                .detail(format!(
                    "{error}. Memory search and the memory tools fail until it is repaired. \
                     {what_to_do}"
                ))
                .path(show(dir)),
            ]
        }
        Look::Inspected {
            dir, inspection, ..
        } => match &inspection.consistency {
            Some(differences) if !differences.is_consistent() => vec![
                Finding::new(
                    "memory.store.inconsistent",
                    Severity::Warn,
                    "The memory indexes disagree",
                )
                .detail(format!(
                    "{}. Search misses or mis-ranks those chunks until the indexes agree \
                     again. The store repairs what it can the next time it opens; to rebuild \
                     everything now, run `{FORCE}`. (An index run in another process makes \
                     them differ until it commits: if one is running, check again when it is \
                     done.)",
                    describe(differences)
                ))
                .path(show(dir)),
            ],
            _ => Vec::new(),
        },
    }
}

fn describe(d: &Differences) -> String {
    let mut parts = Vec::new();
    let mut count = |n: u64, what: &str| {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    };
    count(d.missing_text, "chunk(s) missing from the full-text index");
    count(
        d.orphan_text,
        "full-text entr(ies) with no chunk behind them",
    );
    count(d.missing_vectors.unwrap_or(0), "chunk(s) without a vector");
    count(d.stray_vectors, "vector(s) with no chunk behind them");
    let mut text = parts.join(", ");
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    text
}

fn show_identity(identity: &EmbedderIdentity) -> String {
    let dimensions = match identity.dimensions {
        0 => "dimensions known once the endpoint answers".to_string(),
        n => format!("{n} dimensions"),
    };
    format!("{} ({dimensions}, {})", identity.name, identity.model_hash)
}

/// `memory.embedder.mismatch`: the store's vectors came from another embedder than the one
/// the configuration (profile, config, and the build's fallbacks) resolves to now.
pub fn embedder(ctx: &Context<'_>) -> Vec<Finding> {
    let Look::Inspected {
        dir,
        inspection,
        expected,
    } = look(ctx)
    else {
        return Vec::new();
    };
    // An empty store records whatever embedder opens it next.
    let Some(recorded) = inspection
        .recorded_embedder
        .as_ref()
        .filter(|_| inspection.chunks > 0)
    else {
        return Vec::new();
    };
    if identities_match(expected, recorded) {
        return Vec::new();
    }
    vec![
        Finding::new(
            "memory.embedder.mismatch",
            Severity::Warn,
            format!(
                "Memory vectors were made by {}, but {} is configured",
                recorded.name, expected.name
            ),
        )
        .detail(format!(
            "The store's {} chunks were embedded by {}; the configuration now resolves to {}. \
             Vectors from two embedders cannot be compared: searching with one would mix \
             meaningless neighbours into the results, so vector search stays off and search \
             is keyword-only. Run `{FORCE}` to re-embed every chunk with {} (or set \
             memory.embedder back).",
            inspection.chunks,
            show_identity(recorded),
            show_identity(expected),
            expected.name
        ))
        .path(show(dir)),
    ]
}

/// The forest may lag the store by this many vectors, or this share of them, whichever is
/// more, before the doctor says so: below it the pending scan costs little.
pub const STALE_VECTORS: u64 = 10_000;
pub const STALE_SHARE: f64 = 0.05;

/// `memory.index.stale`: arroy answers searches (by setting or by size) but many vectors
/// written since its last build are scanned at every query instead.
pub fn index_stale(ctx: &Context<'_>) -> Vec<Finding> {
    let Look::Inspected {
        dir, inspection, ..
    } = look(ctx)
    else {
        return Vec::new();
    };
    // The store's own record says what its vectors are; a store not yet written has none.
    let crossover = inspection.recorded_embedder.as_ref().map_or(
        Some(crate::memory::index::AUTO_CROSSOVER),
        crate::memory::index::auto_crossover,
    );
    stale(
        inspection.ann,
        ctx.snapshot.config().memory.vector_index,
        crossover,
        dir,
    )
    .into_iter()
    .collect()
}

fn stale(
    lag: crate::memory::inspect::AnnLag,
    setting: crate::memory::types::VectorIndexChoice,
    crossover: Option<u64>,
    dir: &std::path::Path,
) -> Option<Finding> {
    if crate::memory::index::resolve(setting, lag.stored, crossover)
        != crate::memory::types::VectorIndexKind::Arroy
    {
        return None;
    }
    let behind = lag.behind();
    let threshold = STALE_VECTORS.max((lag.stored as f64 * STALE_SHARE) as u64);
    if behind <= threshold {
        return None;
    }
    Some(
        Finding::new(
            "memory.index.stale",
            Severity::Warn,
            "The approximate vector index lags the memory store",
        )
        .detail(format!(
            "{behind} of {} stored vectors are not in the arroy forest ({} indexed): every \
             search scores them one by one, which gets slower as they grow (more than {threshold} \
             is reported). An index run that was killed or cancelled during its build leaves \
             this. Run `openclaw-rs memory index`: it builds only what changed.",
            lag.stored, lag.indexed
        ))
        .path(show(dir)),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::Snapshot;
    use crate::config::{LoadOptions, load};
    use crate::findings::MemoryAccess;
    use crate::memory::embed::HashEmbedder;
    use crate::memory::types::AddParams;
    use crate::memory::{Memory, MemoryOptions};

    /// A state dir whose config asks for the `hash` embedder at 384 dimensions, whatever
    /// the build's profile prefers.
    fn state() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.toml"),
            "[memory]\nembedder = \"hash\"\ndimensions = 384\n",
        )
        .unwrap();
        tmp
    }

    fn snapshot(dir: &Path) -> Arc<Snapshot> {
        let loaded = load(&LoadOptions {
            state_dir: dir.to_path_buf(),
            ..Default::default()
        });
        crate::engine::Engine::start(loaded, Vec::new())
            .handle()
            .snapshot()
    }

    /// The options the engine would open the store with, with another embedder if given.
    fn options(snapshot: &Snapshot, dimensions: Option<usize>) -> MemoryOptions {
        let mut options = crate::engine::memory::memory_options(snapshot);
        if let Some(dimensions) = dimensions {
            options.embedder = Arc::new(HashEmbedder::new(dimensions));
        }
        options
    }

    fn fill(memory: &Memory) {
        for text in [
            "The lighthouse keeper logs the weather every morning.",
            "Ada Lovelace wrote the first program for the Analytical Engine.",
        ] {
            memory
                .add(AddParams {
                    text: text.into(),
                    ..Default::default()
                })
                .unwrap();
        }
    }

    /// Both memory checks, as one run of the doctor makes them.
    fn run(snapshot: &Snapshot, open: Option<Arc<Memory>>) -> Vec<Finding> {
        let ctx = Context {
            snapshot,
            deep: false,
            terminal: None,
            memory: open.map_or_else(MemoryAccess::default, MemoryAccess::open),
        };
        let mut found = store(&ctx);
        found.extend(embedder(&ctx));
        found.extend(index_stale(&ctx));
        found
    }

    #[test]
    fn a_forest_far_behind_the_store_is_stale_only_when_arroy_answers() {
        use crate::memory::inspect::AnnLag;
        use crate::memory::types::VectorIndexChoice as C;
        const DENSE: Option<u64> = Some(crate::memory::index::AUTO_CROSSOVER);
        let dir = Path::new("/state/memory");
        let lag = |stored, indexed, pending| AnnLag {
            stored,
            indexed,
            pending,
        };
        // Killed during a build: 50,000 new vectors wait.
        let found = stale(lag(500_000, 450_000, 50_000), C::Arroy, DENSE, dir).expect("stale");
        assert_eq!(
            (found.check_id.as_str(), found.severity),
            ("memory.index.stale", Severity::Warn)
        );
        assert!(found.detail.contains("memory index"), "{}", found.detail);
        // Never built at all.
        assert!(stale(lag(300_000, 0, 0), C::Arroy, DENSE, dir).is_some());
        // Within the threshold, or the scan answers.
        assert!(stale(lag(500_000, 490_000, 10_000), C::Arroy, DENSE, dir).is_none());
        // `auto` answers with arroy above the crossover only.
        assert!(stale(lag(2_000_000, 1_000_000, 0), C::Auto, DENSE, dir).is_some());
        assert!(stale(lag(500_000, 0, 0), C::Auto, DENSE, dir).is_none());
        assert!(stale(lag(500_000, 0, 0), C::Scan, DENSE, dir).is_none());
        assert!(stale(lag(20_000, 0, 0), C::Auto, DENSE, dir).is_none());
        // `auto` never answers hash vectors with arroy, however many there are.
        assert!(stale(lag(5_000_000, 0, 0), C::Auto, None, dir).is_none());
        assert!(stale(lag(5_000_000, 0, 0), C::Arroy, None, dir).is_some());
    }

    fn ids(found: &[Finding]) -> Vec<(&str, Severity)> {
        found
            .iter()
            .map(|f| (f.check_id.as_str(), f.severity))
            .collect()
    }

    #[test]
    fn the_vector_index_setting_reaches_the_store_options() {
        let tmp = state();
        let default = options(&snapshot(tmp.path()), None);
        assert_eq!(
            default.vector_index,
            crate::memory::types::VectorIndexChoice::Auto
        );
        std::fs::write(
            tmp.path().join("config.toml"),
            "[memory]\nembedder = \"hash\"\nvector_index = \"arroy\"\n",
        )
        .unwrap();
        let chosen = options(&snapshot(tmp.path()), None);
        assert_eq!(
            chosen.vector_index,
            crate::memory::types::VectorIndexChoice::Arroy
        );
    }

    #[test]
    fn no_memory_dir_means_no_finding() {
        let tmp = state();
        let snap = snapshot(tmp.path());
        assert!(run(&snap, None).is_empty());
        assert!(
            !tmp.path().join("memory").exists(),
            "the doctor creates nothing"
        );
    }

    #[test]
    fn a_healthy_store_gives_no_finding_read_only_or_through_the_open_handle() {
        let tmp = state();
        let snap = snapshot(tmp.path());
        let memory = Arc::new(Memory::open(options(&snap, None)).unwrap());
        fill(&memory);
        assert!(run(&snap, Some(memory.clone())).is_empty());
        drop(memory);
        let data = tmp.path().join("memory/data.mdb");
        let before = std::fs::read(&data).unwrap();
        assert_eq!(run(&snap, None), Vec::new());
        assert_eq!(
            std::fs::read(&data).unwrap(),
            before,
            "the read-only look writes nothing"
        );
    }

    #[test]
    fn a_store_from_another_embedder_is_a_mismatch_finding() {
        let tmp = state();
        let snap = snapshot(tmp.path());
        // Built with 64-dimensional hash vectors; the config asks for 384.
        let memory = Arc::new(Memory::open(options(&snap, Some(64))).unwrap());
        fill(&memory);

        let through_handle = run(&snap, Some(memory.clone()));
        assert_eq!(
            ids(&through_handle),
            [("memory.embedder.mismatch", Severity::Warn)]
        );
        drop(memory);
        let found = run(&snap, None);
        assert_eq!(ids(&found), [("memory.embedder.mismatch", Severity::Warn)]);
        let detail = &found[0].detail;
        assert!(
            detail.contains("64 dimensions")
                && detail.contains("384 dimensions")
                && detail.contains("memory index --force")
                && detail.contains("mix"),
            "{detail}"
        );
        assert_eq!(
            found[0].path.as_deref(),
            Some(show(&tmp.path().join("memory")).as_str())
        );

        // After a forced rebuild with the configured embedder, the doctor is satisfied.
        let memory = Memory::open(options(&snap, None)).unwrap();
        memory
            .index(
                crate::memory::types::IndexParams {
                    force: true,
                    ..Default::default()
                },
                &|_| {},
            )
            .unwrap();
        drop(memory);
        assert!(run(&snap, None).is_empty());
    }

    #[test]
    fn an_empty_store_from_another_embedder_is_not_a_mismatch() {
        let tmp = state();
        let snap = snapshot(tmp.path());
        drop(Memory::open(options(&snap, Some(64))).unwrap());
        assert!(run(&snap, None).is_empty());
    }

    #[test]
    fn a_corrupted_text_index_is_critical_and_names_the_fix() {
        let tmp = state();
        let snap = snapshot(tmp.path());
        let memory = Memory::open(options(&snap, None)).unwrap();
        fill(&memory);
        drop(memory);
        std::fs::write(tmp.path().join("memory/text/meta.json"), b"\0garbage").unwrap();
        let found = run(&snap, None);
        assert_eq!(
            ids(&found),
            [("memory.store.unreadable", Severity::Critical)]
        );
        assert!(
            found[0].detail.contains("full-text index")
                && found[0].detail.contains("memory index --force"),
            "{}",
            found[0].detail
        );
    }

    #[test]
    fn a_garbage_lmdb_file_is_critical_not_a_crash() {
        let tmp = state();
        let snap = snapshot(tmp.path());
        let memory = Memory::open(options(&snap, None)).unwrap();
        fill(&memory);
        drop(memory);
        let data = tmp.path().join("memory/data.mdb");
        let len = std::fs::metadata(&data).unwrap().len() as usize;
        std::fs::write(&data, vec![0x5a; len]).unwrap();
        let found = run(&snap, None);
        assert_eq!(
            ids(&found),
            [("memory.store.unreadable", Severity::Critical)]
        );
        assert!(
            found[0].detail.contains("move") && found[0].detail.contains("--force"),
            "{}",
            found[0].detail
        );
    }

    #[test]
    fn indexes_that_disagree_are_reported_and_the_next_open_repairs_them() {
        let tmp = state();
        let snap = snapshot(tmp.path());
        let memory = Memory::open(options(&snap, None)).unwrap();
        fill(&memory);
        drop(memory);
        // A full-text index that lost its entries (as after a crash between commits).
        let text = tmp.path().join("memory/text");
        std::fs::remove_dir_all(&text).unwrap();
        drop(crate::memory::text::TextIndex::open(&text).unwrap());

        let found = run(&snap, None);
        assert_eq!(ids(&found), [("memory.store.inconsistent", Severity::Warn)]);
        assert!(
            found[0]
                .detail
                .starts_with("2 chunk(s) missing from the full-text index"),
            "{}",
            found[0].detail
        );
        drop(Memory::open(options(&snap, None)).unwrap());
        assert!(run(&snap, None).is_empty(), "repaired at open");
    }

    /// The engine's open store is looked at through its handle: a second opening in this
    /// process would fail (heed refuses it) and show up as a false "unreadable".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_doctor_uses_the_engines_open_store_and_leaves_it_usable() {
        use crate::engine::methods::{DoctorRun, ScanParams};
        let tmp = state();
        let engine = crate::engine::Engine::start(
            load(&LoadOptions {
                state_dir: tmp.path().to_path_buf(),
                ..Default::default()
            }),
            Vec::new(),
        );
        let handle = engine.handle();
        let memory_only = || ScanParams {
            only: vec!["memory".into()],
            ..Default::default()
        };
        let add = |text: &str| {
            handle.call(
                "memory.add",
                serde_json::json!({ "text": text, "source": "test" }),
            )
        };
        {
            let snap = handle.snapshot();
            let memory = Memory::open(options(&snap, None)).unwrap();
            fill(&memory);
        }
        // Nothing open in the engine: the doctor opens the store read-only and closes it.
        let report = handle.request::<DoctorRun>(memory_only()).await.unwrap();
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        // The engine can open it afterwards (a leaked read-only opening would stop it) ...
        add("the engine opens the store now").await.unwrap();
        // ... and the doctor then looks through the engine's handle.
        let report = handle.request::<DoctorRun>(memory_only()).await.unwrap();
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert!(report.ok);
        add("and still usable after the doctor").await.unwrap();
    }
}
