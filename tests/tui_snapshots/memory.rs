//! The memory explorer: an empty store, search results (hybrid and keyword only), and the
//! graph walk.

use super::*;

use openclaw_rs::memory::types::{
    ChunkView, ComponentScore, Consistency, EdgeCount, EdgeKind, EdgeView, EmbedderIdentity,
    Fusion, GetResult, NeighborsResult, NodeKind, NodeResult, NodeView, SearchHit, SearchMode,
    SearchResult, StatusResult as MemoryStatus, TopResult, VectorIndexChoice, VectorIndexKind,
    VectorIndexStatus,
};
use openclaw_rs::tui::app::Command;

fn identity(name: &str, dimensions: u32) -> EmbedderIdentity {
    EmbedderIdentity {
        name: name.into(),
        dimensions,
        model_hash: "hash-v1".into(),
    }
}

pub fn status(chunks: u64, mismatch: bool) -> MemoryStatus {
    MemoryStatus {
        enabled: true,
        dir: format!("{STATE_DIR}/memory"),
        workspace: "/home/ada/notes".into(),
        schema_version: 1,
        documents: if chunks == 0 { 0 } else { 56 },
        chunks,
        vectors: chunks,
        text_entries: chunks,
        nodes: if chunks == 0 { 0 } else { 789 },
        edges: if chunks == 0 { 0 } else { 2345 },
        lmdb_bytes: 0,
        text_bytes: 0,
        map_size_bytes: 1 << 30,
        embedder: identity("hash", 384),
        embedder_window: None,
        truncated_chunks: 0,
        embedder_notice: None,
        embedder_mismatch: mismatch.then(|| identity("minilm", 384)),
        last_index: None,
        consistency: Consistency {
            ok: true,
            checked_at: 0,
            ..Consistency::default()
        },
        vector_index: VectorIndexStatus {
            setting: VectorIndexChoice::Auto,
            kind: VectorIndexKind::Scan,
            stored: chunks,
            indexed: 0,
            pending: 0,
            last_build: None,
            build: None,
        },
    }
}

pub fn node(id: u32, kind: NodeKind, label: &str, degree: u32) -> NodeView {
    let key = match kind {
        NodeKind::Chunk => format!("chunk:{label}"),
        other => format!("{}:{label}", other.as_str()),
    };
    NodeView {
        id,
        kind,
        key,
        label: label.into(),
        degree,
        depth: None,
    }
}

/// A chunk node: key `chunk:<id>`, labelled by its first words.
fn chunk_node(id: u32, chunk_id: u32, words: &str) -> NodeView {
    NodeView {
        key: format!("chunk:{chunk_id}"),
        label: words.into(),
        ..node(id, NodeKind::Chunk, words, 4)
    }
}

fn top() -> TopResult {
    TopResult {
        nodes: vec![
            node(2, NodeKind::Document, "MEMORY.md", 41),
            node(9, NodeKind::Entity, "ada lovelace", 17),
            node(10, NodeKind::Entity, "charles babbage", 11),
            node(11, NodeKind::Tag, "history", 8),
            node(12, NodeKind::Heading, "Projects › Engines", 6),
        ],
    }
}

fn hit(
    chunk_id: u32,
    score: f32,
    text: Option<(u32, f32)>,
    vector: Option<(u32, f32)>,
    snippet: &str,
    lines: (u32, u32),
) -> SearchHit {
    SearchHit {
        chunk_id,
        snippet: snippet.into(),
        source: "MEMORY.md".into(),
        line_start: lines.0,
        line_end: lines.1,
        heading: Some("People › Ada".into()),
        score,
        text: text.map(|(rank, score)| ComponentScore { rank, score }),
        vector: vector.map(|(rank, score)| ComponentScore { rank, score }),
        tags: if chunk_id == 12 {
            vec!["history".into()]
        } else {
            Vec::new()
        },
        created_at: 0,
    }
}

pub fn results(mode: SearchMode) -> SearchResult {
    SearchResult {
        query: "ada lovelace".into(),
        mode,
        fusion: Fusion::Weighted,
        embedder: "hash".into(),
        hits: vec![
            hit(
                12,
                0.91,
                Some((1, 7.42)),
                Some((2, 0.71)),
                "«Ada» «Lovelace» wrote the first published program, for Babbage's Analytical Engine, in her notes of 1843.",
                (12, 18),
            ),
            hit(
                15,
                0.77,
                Some((2, 5.10)),
                Some((1, 0.74)),
                "Met «Ada» at the museum talk: the Difference Engine model still runs.",
                (31, 33),
            ),
            hit(
                31,
                0.52,
                Some((3, 3.33)),
                None,
                "Reading list: a biography of «Lovelace»; Babbage's passages on the engine.",
                (54, 57),
            ),
            hit(
                40,
                0.31,
                None,
                Some((3, 0.48)),
                "Poetical science: imagination applied to mathematics.",
                (80, 82),
            ),
        ],
        notice: match mode {
            SearchMode::Keyword => {
                Some("stored vectors were made by minilm (384d); run memory index --force".into())
            }
            SearchMode::Hybrid => None,
        },
        took_ms: 3.2,
    }
}

pub fn chunk(chunk_id: u32, lines: (u32, u32), text: &str) -> ChunkView {
    ChunkView {
        chunk_id,
        document_id: 1,
        source: "MEMORY.md".into(),
        line_start: lines.0,
        line_end: lines.1,
        heading: Some("People › Ada".into()),
        text: text.into(),
        tags: vec!["history".into()],
        created_at: 0,
        has_vector: true,
    }
}

const CHUNK_12: &str = "## Ada\nAda Lovelace wrote the first published program, for Babbage's Analytical\nEngine, in her notes of 1843. She saw that the engine could work on more than\nnumbers: music, symbols, anything with rules.\nSee [[charles babbage]] and #history.";

fn edge(from: u32, to: u32, kind: EdgeKind, count: u32) -> EdgeView {
    EdgeView {
        from,
        to,
        kind,
        count,
    }
}

/// Around chunk #12: its document, what it mentions, its tag.
fn around_chunk() -> NeighborsResult {
    let center = chunk_node(40, 12, "Ada Lovelace wrote the first published…");
    NeighborsResult {
        nodes: vec![
            node(2, NodeKind::Document, "MEMORY.md", 41),
            node(9, NodeKind::Entity, "ada lovelace", 17),
            node(10, NodeKind::Entity, "charles babbage", 11),
            node(11, NodeKind::Tag, "history", 8),
        ],
        edges: vec![
            edge(2, 40, EdgeKind::Contains, 1),
            edge(40, 9, EdgeKind::Mentions, 1),
            edge(40, 10, EdgeKind::LinksTo, 1),
            edge(40, 10, EdgeKind::Mentions, 1),
            edge(40, 11, EdgeKind::Tagged, 1),
        ],
        center,
        truncated: false,
    }
}

/// Around the entity `ada lovelace`: the chunks that name her, who she co-occurs with.
fn around_ada() -> NeighborsResult {
    NeighborsResult {
        center: node(9, NodeKind::Entity, "ada lovelace", 17),
        nodes: vec![
            chunk_node(40, 12, "Ada Lovelace wrote the first published…"),
            chunk_node(41, 15, "Met Ada at the museum talk…"),
            chunk_node(42, 31, "Reading list: a biography of Lovelace…"),
            node(10, NodeKind::Entity, "charles babbage", 11),
            node(13, NodeKind::Entity, "analytical engine", 5),
        ],
        edges: vec![
            edge(40, 9, EdgeKind::Mentions, 1),
            edge(41, 9, EdgeKind::Mentions, 1),
            edge(42, 9, EdgeKind::Mentions, 1),
            edge(9, 10, EdgeKind::CoOccurs, 3),
            edge(9, 13, EdgeKind::CoOccurs, 2),
        ],
        truncated: true,
    }
}

fn ada_node() -> NodeResult {
    NodeResult {
        node: node(9, NodeKind::Entity, "ada lovelace", 17),
        edge_counts: vec![
            EdgeCount {
                kind: EdgeKind::Mentions,
                count: 12,
            },
            EdgeCount {
                kind: EdgeKind::CoOccurs,
                count: 5,
            },
        ],
        chunks: vec![
            chunk(12, (12, 18), CHUNK_12),
            chunk(
                15,
                (31, 33),
                "Met Ada at the museum talk: the Difference Engine model still runs.",
            ),
            chunk(
                31,
                (54, 57),
                "Reading list: a biography of Lovelace; Babbage's passages on the engine.",
            ),
        ],
    }
}

pub fn tag(commands: &[Command], wanted: &str) -> u64 {
    commands
        .iter()
        .find_map(|c| match c {
            Command::CallTagged { method, tag, .. } if *method == wanted => Some(*tag),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {wanted} in {commands:?}"))
}

pub fn reply<T: serde::Serialize>(app: &mut App, method: &str, tag: u64, value: T) -> Vec<Command> {
    app.handle(Msg::TaggedDone {
        method: method.into(),
        tag,
        result: Ok(serde_json::to_value(value).unwrap()),
    })
}

pub fn done<T: serde::Serialize>(app: &mut App, method: &str, value: T) {
    app.handle(Msg::CallDone {
        method: method.into(),
        result: Ok(serde_json::to_value(value).unwrap()),
    });
}

/// The memory pane focused with a store of `chunks` chunks.
pub fn opened(chunks: u64, mismatch: bool) -> App {
    let mut app = first_run();
    focus(&mut app, PaneId::Memory);
    done(&mut app, "memory.status", status(chunks, mismatch));
    let nodes = if chunks == 0 {
        TopResult { nodes: Vec::new() }
    } else {
        top()
    };
    done(&mut app, "memory.graph.top", nodes);
    app
}

/// "ada lovelace" typed and answered, the full first chunk fetched.
pub fn searched(mode: SearchMode) -> App {
    let mut app = opened(1234, mode == SearchMode::Keyword);
    key(&mut app, KeyCode::Char('/'));
    for c in "ada lovelace".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let due = app.next_deadline().unwrap();
    let sent = app.handle(Msg::Tick(due));
    let after = reply(
        &mut app,
        "memory.search",
        tag(&sent, "memory.search"),
        results(mode),
    );
    reply(
        &mut app,
        "memory.get",
        tag(&after, "memory.get"),
        GetResult {
            chunk: Some(chunk(12, (12, 18), CHUNK_12)),
            document: None,
        },
    );
    key(&mut app, KeyCode::Esc);
    app
}

/// From the first hit to its chunk node, then to the entity `ada lovelace`.
pub fn walked() -> App {
    let mut app = searched(SearchMode::Hybrid);
    let sent = app.handle(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    reply(
        &mut app,
        "memory.graph.neighbors",
        tag(&sent, "memory.graph.neighbors"),
        around_chunk(),
    );
    reply(
        &mut app,
        "memory.graph.node",
        tag(&sent, "memory.graph.node"),
        NodeResult {
            node: around_chunk().center,
            edge_counts: Vec::new(),
            chunks: vec![chunk(12, (12, 18), CHUNK_12)],
        },
    );
    // Rows: contains ← doc, links_to → babbage, mentions → ada, mentions → babbage, …
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let sent = app.handle(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    reply(
        &mut app,
        "memory.graph.neighbors",
        tag(&sent, "memory.graph.neighbors"),
        around_ada(),
    );
    reply(
        &mut app,
        "memory.graph.node",
        tag(&sent, "memory.graph.node"),
        ada_node(),
    );
    key(&mut app, KeyCode::Down);
    app
}

#[test]
fn memory_empty_store() {
    let app = memory::opened(0, false);
    snapshot("memory_empty_80x24", &app, 80, 24);
    snapshot("memory_empty_160x48", &app, 160, 48);
}

#[test]
fn memory_search_results() {
    let app = memory::searched(openclaw_rs::memory::types::SearchMode::Hybrid);
    snapshot("memory_results_80x24", &app, 80, 24);
    snapshot("memory_results_160x48", &app, 160, 48);
    // One pane at full width: hits and preview side by side.
    snapshot("memory_results_140x30", &app, 140, 30);
}

#[test]
fn memory_keyword_only_search_warns() {
    let app = memory::searched(openclaw_rs::memory::types::SearchMode::Keyword);
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("keyword search only"), "{text}");
    assert!(text.contains("≠ stored minilm"), "{text}");
    assert!(text.contains("I rebuild vectors"), "{text}");
    assert!(
        !text.contains('«'),
        "marks are drawn as highlights, not shown"
    );
}

#[test]
fn memory_index_gauge() {
    // Search results on screen while an index run builds the vector index.
    let mut app = searched(openclaw_rs::memory::types::SearchMode::Hybrid);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('i'));
    app.handle(Msg::Engine(openclaw_rs::engine::EngineEvent::Progress {
        task: "memory.index".into(),
        done: 1_024,
        total: Some(3_000),
        message: "vector index: loading vectors into the forest".into(),
    }));
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("34% 1,024/3,000"), "{text}");
    assert!(text.contains("x cancel"), "{text}");
    snapshot("memory_index_gauge_80x24", &app, 80, 24);
    snapshot("memory_index_gauge_160x48", &app, 160, 48);
    // Cancelling: the key is spent, the gauge says so until the run ends.
    key(&mut app, KeyCode::Char('x'));
    let text = render(&app, 80, 24).backend().to_string();
    assert!(text.contains("cancelling…"), "{text}");
}

#[test]
fn memory_graph_view() {
    let app = memory::walked();
    let trail: Vec<_> = app
        .memory
        .graph
        .trail
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(trail, vec!["chunk #12", "entity:ada lovelace"]);
    snapshot("memory_graph_80x24", &app, 80, 24);
    snapshot("memory_graph_160x48", &app, 160, 48);
    let mut app = app;
    key(&mut app, KeyCode::Char('c'));
    snapshot("memory_graph_chunks_80x24", &app, 80, 24);
}
