//! The store as a whole: ingestion, search, graph, deletion and repair.

use std::sync::Arc;

use super::embed::HashEmbedder;
use super::*;

pub fn options(root: &Path) -> MemoryOptions {
    MemoryOptions {
        dir: root.join("memory"),
        workspace: root.join("workspace"),
        paths: vec!["MEMORY.md".into(), "memory/*.md".into()],
        chunking: ChunkOptions::default(),
        graph: GraphLimits::default(),
        search: SearchDefaults::default(),
        embedder: Arc::new(HashEmbedder::new(384)),
        embedder_notice: None,
        vector_index: Default::default(),
    }
}

fn note(memory: &Memory, text: &str, tags: &[&str]) -> AddResult {
    memory
        .add(AddParams {
            text: text.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })
        .unwrap()
}

fn search(memory: &Memory, query: &str) -> SearchResult {
    memory
        .search(SearchParams {
            query: query.into(),
            ..Default::default()
        })
        .unwrap()
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join("workspace").join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn notes_are_found_by_keyword_and_meaning_with_both_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let memory = Memory::open(options(tmp.path())).unwrap();
    let db = note(
        &memory,
        "We migrated the Postgres database to version 16 on Friday.",
        &["ops"],
    );
    note(
        &memory,
        "Lunch: tomato soup with basil and fresh bread.",
        &[],
    );
    note(
        &memory,
        "Ada Lovelace wrote the first program for the Analytical Engine.",
        &[],
    );
    let result = search(&memory, "database migration");
    assert_eq!(result.mode, SearchMode::Hybrid);
    let top = &result.hits[0];
    assert_eq!(top.chunk_id, db.chunk_ids[0]);
    assert!(top.text.is_some() && top.vector.is_some(), "{top:?}");
    assert!(top.snippet.contains("«database»"), "{}", top.snippet);
    assert_eq!(top.tags, vec!["ops".to_string()]);
    assert!(result.hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Adding the same note again stores nothing new.
    let again = note(
        &memory,
        "We migrated the Postgres database to version 16 on Friday.",
        &["ops"],
    );
    assert!(again.deduplicated);
    assert_eq!(memory.status().unwrap().chunks, 3);
}

#[test]
fn filters_by_tag_source_and_time() {
    let tmp = tempfile::tempdir().unwrap();
    let memory = Memory::open(options(tmp.path())).unwrap();
    note(&memory, "deploy checklist for the api", &["work"]);
    note(&memory, "deploy the garden irrigation", &["home"]);
    let hits = memory
        .search(SearchParams {
            query: "deploy".into(),
            tag: Some("#home".into()),
            ..Default::default()
        })
        .unwrap()
        .hits;
    assert_eq!(hits.len(), 1);
    assert!(hits[0].snippet.contains("garden"));
    let none = memory
        .search(SearchParams {
            query: "deploy".into(),
            until: Some(0),
            ..Default::default()
        })
        .unwrap();
    assert!(none.hits.is_empty());
    let by_source = memory
        .search(SearchParams {
            query: "deploy".into(),
            source: Some("no-such-source".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(by_source.hits.is_empty());
}

#[test]
fn bad_queries_are_refused_or_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let memory = Memory::open(options(tmp.path())).unwrap();
    note(&memory, "alpha beta gamma", &[]);
    let empty = memory.search(SearchParams {
        query: "   ".into(),
        ..Default::default()
    });
    assert!(matches!(empty, Err(MemoryError::Invalid(_))));
    let huge: String = (0..20_000).map(|i| format!("w{i} ")).collect();
    let result = search(&memory, &(huge + "alpha"));
    assert!(result.notice.unwrap_or_default().contains("shortened"));
    assert!(result.query.chars().count() <= 201);
}

#[test]
fn files_index_incrementally_and_deletions_reach_every_index() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        root,
        "MEMORY.md",
        "# Facts\nThe office wifi password rotates monthly.\n",
    );
    write(
        root,
        "memory/2026-11-01.md",
        "# Standup\nTalked with @grace about #release planning.\n",
    );
    let memory = Memory::open(options(root)).unwrap();
    let first = memory.index(IndexParams::default(), &|_| {}).unwrap();
    assert_eq!((first.scanned_files, first.indexed_files), (2, 2));
    assert_eq!(first.added_chunks, 2);
    let second = memory.index(IndexParams::default(), &|_| {}).unwrap();
    assert_eq!(
        (
            second.indexed_files,
            second.unchanged_files,
            second.added_chunks
        ),
        (0, 2, 0)
    );

    // Edit one section: the other keeps its chunk and vector.
    write(
        root,
        "MEMORY.md",
        "# Facts\nThe office wifi password rotates monthly.\n# New\nBuy milk.\n",
    );
    let third = memory.index(IndexParams::default(), &|_| {}).unwrap();
    assert_eq!(
        (third.indexed_files, third.added_chunks, third.reused_chunks),
        (1, 1, 1)
    );

    let hit = &search(&memory, "release planning").hits[0];
    assert_eq!(hit.source, "memory/2026-11-01.md");
    assert_eq!((hit.line_start, hit.line_end), (2, 2));
    assert_eq!(hit.heading.as_deref(), Some("Standup"));

    std::fs::remove_file(root.join("workspace/memory/2026-11-01.md")).unwrap();
    let fourth = memory.index(IndexParams::default(), &|_| {}).unwrap();
    assert_eq!((fourth.removed_files, fourth.removed_chunks), (1, 1));
    assert!(search(&memory, "release planning").hits.is_empty());
    let status = memory.status().unwrap();
    assert_eq!(
        (status.chunks, status.vectors, status.text_entries),
        (2, 2, 2)
    );
    // The mention and the tag went with the file.
    assert!(matches!(
        memory.node(NodeParams {
            node: NodeRef::Key("tag:release".into()),
            chunk_limit: None
        }),
        Err(MemoryError::NotFound(_))
    ));
}

#[test]
fn binary_and_unreadable_files_are_skipped_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(root, "memory/blob.md", "\0\0\0binary");
    write(root, "memory/ok.md", "fine text here");
    let mut bytes = b"caf".to_vec();
    bytes.extend_from_slice(&[0xe9, b' ', b'o', b'k']);
    std::fs::write(root.join("workspace/memory/latin1.md"), bytes).unwrap();
    let memory = Memory::open(options(root)).unwrap();
    let result = memory.index(IndexParams::default(), &|_| {}).unwrap();
    assert_eq!(result.indexed_files, 2);
    assert_eq!(result.skipped.len(), 1);
    assert!(
        result.skipped[0].reason.contains("binary"),
        "{:?}",
        result.skipped
    );
}

#[test]
fn the_graph_links_names_tags_and_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let memory = Memory::open(options(tmp.path())).unwrap();
    note(
        &memory,
        "Grace Hopper met Ada Lovelace to talk about #compilers.",
        &[],
    );
    note(
        &memory,
        "Grace Hopper wrote the first compiler. #compilers",
        &[],
    );
    memory
        .add(AddParams {
            text: "Ada Lovelace notes from the chat".into(),
            session: Some("s1".into()),
            ..Default::default()
        })
        .unwrap();
    let grace = memory
        .node(NodeParams {
            node: NodeRef::Key("entity:Grace Hopper".into()),
            chunk_limit: None,
        })
        .unwrap();
    assert_eq!(grace.chunks.len(), 2);
    let around = memory
        .neighbors(NeighborsParams {
            node: NodeRef::Key("entity:grace hopper".into()),
            depth: Some(1),
            edge_kinds: vec![EdgeKind::CoOccurs],
            limit: None,
        })
        .unwrap();
    let labels: Vec<_> = around.nodes.iter().map(|n| n.label.as_str()).collect();
    assert!(
        labels.contains(&"Ada Lovelace") && labels.contains(&"compilers"),
        "{labels:?}"
    );
    let co = around
        .edges
        .iter()
        .find(|e| {
            e.kind == EdgeKind::CoOccurs
                && around
                    .nodes
                    .iter()
                    .any(|n| n.id == e.to && n.label == "compilers")
        })
        .unwrap();
    assert_eq!(co.count, 2);
    let path = memory
        .path(PathParams {
            from: NodeRef::Key("session:s1".into()),
            to: NodeRef::Key("tag:compilers".into()),
            max_depth: None,
            edge_kinds: vec![],
        })
        .unwrap();
    assert!(path.found);
    assert_eq!(path.nodes.first().map(|n| n.kind), Some(NodeKind::Session));
    assert_eq!(path.nodes.last().map(|n| n.kind), Some(NodeKind::Tag));
    assert_eq!(path.edges.len() + 1, path.nodes.len());
    let top = memory.top(TopParams::default()).unwrap();
    assert!(top.nodes.windows(2).all(|w| w[0].degree >= w[1].degree));
    assert!(top.nodes.iter().all(|n| n.kind != NodeKind::Chunk));

    // Deleting the notes removes what only they mentioned, and the counts drop.
    let first = memory
        .search(SearchParams {
            query: "first compiler".into(),
            ..Default::default()
        })
        .unwrap()
        .hits[0]
        .chunk_id;
    let deleted = memory
        .delete(DeleteParams {
            chunk_id: Some(first),
            document_id: None,
        })
        .unwrap();
    assert_eq!((deleted.deleted_chunks, deleted.deleted_documents), (1, 1));
    let around = memory
        .neighbors(NeighborsParams {
            node: NodeRef::Key("tag:compilers".into()),
            depth: Some(1),
            edge_kinds: vec![EdgeKind::CoOccurs],
            limit: None,
        })
        .unwrap();
    assert!(
        around.edges.iter().all(|e| e.count == 1),
        "{:?}",
        around.edges
    );
}

#[test]
fn a_missing_text_index_entry_is_repaired_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let memory = Memory::open(options(tmp.path())).unwrap();
        note(&memory, "the lighthouse keeper logs the storms", &[]);
        note(&memory, "a second note about gardens", &[]);
        // Simulate a crash after the LMDB commit and before the text commit.
        let mut writer = memory.text.writer().unwrap();
        writer.delete_all().unwrap();
        writer.commit().unwrap();
    }
    let memory = Memory::open(options(tmp.path())).unwrap();
    let status = memory.status().unwrap();
    assert_eq!(status.consistency.missing_text, 2);
    assert_eq!(status.consistency.repaired, 2);
    assert!(status.consistency.ok);
    assert_eq!(search(&memory, "lighthouse storms").hits.len(), 1);
}

#[test]
fn a_store_from_the_tree_forest_version_is_migrated_and_re_embedded() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let memory = Memory::open(options(tmp.path())).unwrap();
        note(
            &memory,
            "The lighthouse keeper logs the tides at dawn.",
            &[],
        );
        note(&memory, "Sourdough needs a warm kitchen and patience.", &[]);
        // What version 1 left behind: its own bytes in `vectors`, none of the new tables.
        memory
            .store
            .write(|txn| -> std::result::Result<(), StoreError> {
                vectors::clear(&memory.store.dbs, txn)?;
                memory.store.dbs.vectors.put(txn, &7, b"arroy tree node")?;
                memory.store.meta_put(txn, "schema_version", &1u32)
            })
            .unwrap();
    }
    let memory = Memory::open(options(tmp.path())).unwrap();
    let status = memory.status().unwrap();
    assert_eq!(status.schema_version, store::SCHEMA_VERSION);
    assert_eq!((status.chunks, status.vectors), (2, 2));
    assert!(status.consistency.ok, "{:?}", status.consistency);
    let result = search(&memory, "tides at the lighthouse");
    assert_eq!(result.mode, SearchMode::Hybrid);
    assert!(result.hits[0].vector.is_some(), "{:?}", result.hits[0]);
}

#[test]
fn another_embedder_turns_vectors_off_until_a_forced_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let memory = Memory::open(options(tmp.path())).unwrap();
        note(&memory, "kept across the rebuild", &["keep"]);
    }
    let mut other = options(tmp.path());
    other.embedder = Arc::new(HashEmbedder::new(128));
    let memory = Memory::open(other).unwrap();
    let status = memory.status().unwrap();
    assert_eq!(status.embedder_mismatch.map(|m| m.dimensions), Some(384));
    let result = search(&memory, "kept rebuild");
    assert_eq!(result.mode, SearchMode::Keyword);
    assert!(result.notice.unwrap_or_default().contains("--force"));
    drop(memory);

    let mut other = options(tmp.path());
    other.embedder = Arc::new(HashEmbedder::new(128));
    let memory = Memory::open(other).unwrap();
    memory
        .index(
            IndexParams {
                force: true,
                ..Default::default()
            },
            &|_| {},
        )
        .unwrap();
    let status = memory.status().unwrap();
    assert!(status.embedder_mismatch.is_none());
    assert_eq!((status.chunks, status.vectors), (1, 1));
    let result = search(&memory, "kept rebuild");
    assert_eq!(result.mode, SearchMode::Hybrid);
    assert_eq!(result.hits[0].tags, vec!["keep".to_string()]);
}

#[test]
fn a_corrupted_text_index_is_a_clear_error_and_force_rebuilds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(root, "MEMORY.md", "the owl hunts at night");
    {
        let memory = Memory::open(options(root)).unwrap();
        memory.index(IndexParams::default(), &|_| {}).unwrap();
        note(&memory, "a note that must survive", &[]);
    }
    std::fs::write(root.join("memory/text/meta.json"), "{ not json").unwrap();
    let err = Memory::open(options(root)).err().unwrap().to_string();
    assert!(
        err.contains("full-text index") && err.contains("--force"),
        "{err}"
    );
    let memory = Memory::open_for_rebuild(options(root)).unwrap();
    memory
        .index(
            IndexParams {
                force: true,
                ..Default::default()
            },
            &|_| {},
        )
        .unwrap();
    assert_eq!(search(&memory, "owl night").hits.len(), 1);
    assert_eq!(search(&memory, "survive").hits.len(), 1);
}

fn big_workspace(root: &Path, files: usize, sections: usize) {
    for f in 0..files {
        let mut text = String::new();
        for s in 0..sections {
            text.push_str(&format!(
                "## Part {s}\nfile {f} part {s} mentions Grace Hopper, #topic{s} and the harbour \
                 lighthouse number {s} with some more words to make a paragraph.\n\n"
            ));
        }
        write(root, &format!("memory/f{f:03}.md"), &text);
    }
}

#[test]
fn searches_run_while_an_index_is_being_written() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    big_workspace(root, 12, 20);
    let memory = Arc::new(Memory::open(options(root)).unwrap());
    note(&memory, "the lighthouse keeper", &[]);
    let writer = {
        let memory = memory.clone();
        std::thread::spawn(move || memory.index(IndexParams::default(), &|_| {}).unwrap())
    };
    let mut searches_during_index = 0;
    while !writer.is_finished() {
        let result = search(&memory, "harbour lighthouse");
        assert!(!result.hits.is_empty());
        searches_during_index += 1;
    }
    let indexed = writer.join().unwrap();
    assert_eq!(indexed.added_chunks, 12 * 20);
    // Readers were never held up for the length of the ingestion.
    assert!(searches_during_index >= 2, "{searches_during_index}");
}

#[test]
fn a_file_removed_before_it_is_read_is_skipped_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let memory = Memory::open(options(tmp.path())).unwrap();
    let result = memory
        .index(
            IndexParams {
                paths: vec![tmp.path().join("gone.md").display().to_string()],
                ..Default::default()
            },
            &|_| {},
        )
        .unwrap();
    assert_eq!(result.skipped.len(), 1);
    assert!(result.skipped[0].reason.contains("no such file"));
}

/// A hash embedder that, like MiniLM, reads a bounded window of word-piece-like tokens
/// (one per four letters of a word).
struct WindowedHash {
    inner: HashEmbedder,
    window: usize,
}

impl Embedder for WindowedHash {
    fn identity(&self) -> EmbedderIdentity {
        self.inner.identity()
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    fn embed(&self, texts: &[&str]) -> std::result::Result<Vec<Vec<f32>>, embed::EmbedError> {
        self.inner.embed(texts)
    }
    fn window(&self) -> Option<usize> {
        Some(self.window)
    }
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace()
            .map(|w| w.chars().count().div_ceil(4))
            .sum()
    }
}

fn windowed(root: &Path, window: usize) -> MemoryOptions {
    MemoryOptions {
        embedder: Arc::new(WindowedHash {
            inner: HashEmbedder::new(384),
            window,
        }),
        ..options(root)
    }
}

#[test]
fn chunks_fit_the_embedders_window_and_status_counts_the_ones_that_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let memory = Memory::open(windowed(tmp.path(), 40)).unwrap();
    let long: Vec<String> = (0..30)
        .map(|i| format!("sentence{i:02} about the lighthouse keeper and harbour"))
        .collect();
    let added = note(&memory, &long.join("\n"), &[]);
    // 30 lines of 16 tokens: the 400-word budget alone would make one chunk.
    assert!(added.chunk_ids.len() >= 12, "{}", added.chunk_ids.len());
    let embedder = &memory.options().embedder;
    for id in &added.chunk_ids {
        let text = memory.chunk_text(*id).unwrap().unwrap();
        assert!(!embedder.truncates(&text), "{text}");
    }
    let status = memory.status().unwrap();
    assert_eq!(
        (status.embedder_window, status.truncated_chunks),
        (Some(40), 0)
    );

    // One word of 200 letters cannot be cut at a word boundary: it is counted, not hidden.
    let giant = note(&memory, &format!("short words {}", "z".repeat(200)), &[]);
    assert_eq!(memory.status().unwrap().truncated_chunks, 1);
    memory
        .delete(DeleteParams {
            document_id: Some(giant.document_id),
            chunk_id: None,
        })
        .unwrap();
    assert_eq!(memory.status().unwrap().truncated_chunks, 0);
}

#[test]
fn a_store_chunked_before_the_window_mattered_has_its_truncations_counted_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    {
        // The same identity without a window: chunks of up to 400 words, as before.
        let memory = Memory::open(options(tmp.path())).unwrap();
        let long = "the keeper climbed the lighthouse stairs at dusk ".repeat(30);
        note(&memory, &long, &[]);
        assert_eq!(memory.status().unwrap().embedder_window, None);
    }
    let memory = Memory::open(windowed(tmp.path(), 40)).unwrap();
    assert_eq!(memory.status().unwrap().truncated_chunks, 1);
    // A rebuild chunks it again to fit.
    memory
        .index(
            IndexParams {
                force: true,
                ..Default::default()
            },
            &|_| {},
        )
        .unwrap();
    let status = memory.status().unwrap();
    assert_eq!(status.truncated_chunks, 0);
    assert!(status.chunks > 1, "{}", status.chunks);
}

/// The model reads 254 word pieces of a chunk; a chunk of 400 words used to be cut there, so
/// a fact in its second half never reached the vector.
#[cfg(feature = "edge")]
#[test]
fn minilm_finds_a_fact_in_the_second_half_of_a_long_passage() {
    let Some(dir) = std::env::var_os("OPENCLAW_RS_MINILM_DIR") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "OPENCLAW_RS_MINILM_DIR must be set in CI (see .ci/run)"
        );
        eprintln!("skipped: OPENCLAW_RS_MINILM_DIR is not set");
        return;
    };
    let embedder = Arc::new(embed::MiniLmEmbedder::load(Path::new(&dir)).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let memory = Memory::open(MemoryOptions {
        embedder: embedder.clone(),
        ..options(tmp.path())
    })
    .unwrap();
    let garden = [
        "In spring we sowed tomatoes, beans and courgettes in the raised beds by the fence.",
        "The compost heap needs turning every fortnight so that it stays warm and rots evenly.",
        "Slugs ate most of the lettuce seedlings, so next year they go under fleece and copper tape.",
        "Watering early in the morning keeps mildew off the squash leaves in a dry summer.",
        "The apple tree was pruned in February and gave twice the fruit of the year before.",
    ]
    .join(" ");
    let submarine = [
        "Later that night the submarine dived to three hundred metres below the surface.",
        "Sonar operators listened for the propellers of the destroyer hunting them above.",
        "The captain raised the periscope, then ordered the ballast tanks blown, and the boat surfaced at dawn.",
        "Torpedo crews stood by in the forward compartment until the hull stopped creaking.",
    ]
    .join(" ");
    // About 230 words of garden, then about 110 of the one thing asked for: one chunk of the
    // 400-word budget, and more than the 254 word pieces the model reads.
    let passage = format!("{garden}\n{garden}\n{garden}\n\n{submarine}\n{submarine}");
    assert!(embedder.count_tokens(&garden) * 3 > 254);
    assert!(passage.split_whitespace().count() < 400);
    note(&memory, &passage, &[]);
    note(
        &memory,
        "Boil the pasta in salted water, then toss it with garlic, olive oil and parsley.",
        &[],
    );
    note(
        &memory,
        "The football match was postponed because of the storm and rescheduled for Sunday.",
        &[],
    );
    let query = embedder
        .embed(&["a naval vessel travelling underwater, hiding from warships"])
        .unwrap()
        .remove(0);
    let nearest = memory.nearest(&query, 1, true).unwrap();
    let text = memory.chunk_text(nearest[0].0).unwrap().unwrap();
    assert!(text.contains("submarine"), "{:.3}: {text}", nearest[0].1);
    assert!(nearest[0].1 > 0.3, "similarity {}", nearest[0].1);
    assert_eq!(memory.status().unwrap().truncated_chunks, 0);
}

#[test]
fn the_vector_index_setting_decides_which_index_is_built_and_used() {
    let texts = [
        "The lighthouse keeper logs the weather every morning.",
        "Ada Lovelace wrote the first program for the Analytical Engine.",
        "Tomatoes and beans grow in the raised beds by the fence.",
    ];
    let mut seen = Vec::new();
    for choice in [
        VectorIndexChoice::Scan,
        VectorIndexChoice::Arroy,
        VectorIndexChoice::Auto,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let memory = Memory::open(MemoryOptions {
            vector_index: choice,
            ..options(tmp.path())
        })
        .unwrap();
        for text in texts {
            note(&memory, text, &[]);
        }
        let built = memory.build_vector_index(&|_| {}).unwrap();
        let status = memory.status().unwrap().vector_index;
        assert_eq!((status.setting, status.stored), (choice, 3));
        let hits = memory
            .search(SearchParams {
                query: "Analytical Engine program".into(),
                ..Default::default()
            })
            .unwrap()
            .hits;
        assert!(hits[0].text.is_some() && hits[0].vector.is_some());
        seen.push((status.kind, status.indexed, built.is_some()));
    }
    assert_eq!(
        seen,
        [
            (VectorIndexKind::Scan, 0, false),
            (VectorIndexKind::Arroy, 3, true),
            // Three chunks are far below the crossover.
            (VectorIndexKind::Scan, 0, false),
        ]
    );
}

/// A note is stored and searchable when `add` returns; no build runs on its path, and
/// `build_due` says when enough wait for one.
#[test]
fn notes_are_searchable_before_the_build_and_say_when_one_is_due() {
    let tmp = tempfile::tempdir().unwrap();
    let memory = Memory::open(MemoryOptions {
        vector_index: VectorIndexChoice::Arroy,
        ..options(tmp.path())
    })
    .unwrap();
    memory.set_build_after_pending(3);
    note(
        &memory,
        "The lighthouse keeper logs the weather every morning.",
        &[],
    );
    note(&memory, "Tomatoes and beans grow in the raised beds.", &[]);
    assert!(!memory.build_due().unwrap());
    note(&memory, "Ada Lovelace wrote the first program.", &[]);
    let status = memory.status().unwrap().vector_index;
    assert_eq!(
        (status.stored, status.indexed, &status.last_build),
        (3, 0, &None)
    );
    assert!(memory.build_due().unwrap());
    let hits = memory
        .search(SearchParams {
            query: "lighthouse keeper weather".into(),
            ..Default::default()
        })
        .unwrap()
        .hits;
    assert!(hits[0].vector.is_some(), "{hits:?}");
    memory
        .build_vector_index(&|_| {})
        .unwrap()
        .expect("a build");
    assert!(!memory.build_due().unwrap());
    note(&memory, "The ferry leaves at noon.", &[]);
    assert!(!memory.build_due().unwrap(), "one waits, three are needed");
}
