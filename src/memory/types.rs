//! The wire shapes of the `memory.*` methods: what `--batch`, the CLI and the memory pane see.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::config::{Fusion, VectorIndexChoice};

pub type ChunkId = u32;
pub type DocumentId = u32;
pub type NodeId = u32;

// ---- add / get / delete ---------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddParams {
    /// The text to remember (markdown is understood).
    pub text: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where it came from (free text, e.g. `chat`, `clipboard`); defaults to `note`.
    #[serde(default)]
    pub source: Option<String>,
    /// Session the text belongs to (adds a `from_session` edge).
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddResult {
    pub document_id: DocumentId,
    pub chunk_ids: Vec<ChunkId>,
    /// The same text from the same source was already stored; nothing new was written.
    pub deduplicated: bool,
    /// Stored without a vector (the embedder failed); keyword search still finds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetParams {
    #[serde(default)]
    pub chunk_id: Option<ChunkId>,
    #[serde(default)]
    pub document_id: Option<DocumentId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChunkView {
    pub chunk_id: ChunkId,
    pub document_id: DocumentId,
    pub source: String,
    pub line_start: u32,
    pub line_end: u32,
    /// Headings above the chunk, outermost first, joined with " › ".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    pub text: String,
    pub tags: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub has_vector: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentView {
    pub document_id: DocumentId,
    pub source: String,
    pub kind: DocumentKind,
    pub chunk_ids: Vec<ChunkId>,
    pub bytes: u64,
    pub indexed_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DocumentKind {
    /// A markdown file from the workspace or an extra path.
    File,
    /// Text given to `memory.add`.
    Note,
    /// A conversation turn.
    Turn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<ChunkView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentView>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteParams {
    #[serde(default)]
    pub chunk_id: Option<ChunkId>,
    #[serde(default)]
    pub document_id: Option<DocumentId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResult {
    pub deleted_chunks: u32,
    pub deleted_documents: u32,
}

// ---- search ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchParams {
    pub query: String,
    /// Hits to return (1..=100, default 10).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Overrides `memory.search.fusion`.
    #[serde(default)]
    pub fusion: Option<Fusion>,
    /// MMR diversity, 0 (off) to 1 (most diverse); overrides `memory.search.mmr`.
    #[serde(default)]
    pub mmr: Option<f32>,
    /// Temporal decay half-life in days, 0 = off; overrides `memory.search.half_life_days`.
    #[serde(default)]
    pub half_life_days: Option<f32>,
    /// Only chunks whose source contains this text.
    #[serde(default)]
    pub source: Option<String>,
    /// Only chunks with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only chunks created at or after this time (ms since the Unix epoch).
    #[serde(default)]
    pub since: Option<i64>,
    /// Only chunks created before this time (ms since the Unix epoch).
    #[serde(default)]
    pub until: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    Hybrid,
    /// BM25 only: the vector side was unavailable (see `notice`).
    Keyword,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentScore {
    /// 1-based rank within this component's own list.
    pub rank: u32,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub chunk_id: ChunkId,
    /// At most 700 characters; query terms are wrapped in `«` and `»`.
    pub snippet: String,
    pub source: String,
    pub line_start: u32,
    pub line_end: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    /// The fused score the list is ordered by.
    pub score: f32,
    /// BM25 side; absent when the chunk did not match any query term.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<ComponentScore>,
    /// Vector side (cosine similarity); absent when not among the nearest neighbours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<ComponentScore>,
    pub tags: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub query: String,
    pub mode: SearchMode,
    pub fusion: Fusion,
    pub embedder: String,
    pub hits: Vec<SearchHit>,
    /// Why the search was degraded or the query shortened, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    pub took_ms: f64,
}

// ---- index / status -------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IndexParams {
    /// Drop every index and rebuild from the files and the stored notes; also the way to
    /// switch embedders.
    #[serde(default)]
    pub force: bool,
    /// Extra files or directories to index this time, besides `memory.paths`.
    #[serde(default)]
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexResult {
    pub scanned_files: u32,
    pub indexed_files: u32,
    pub unchanged_files: u32,
    pub removed_files: u32,
    pub added_chunks: u32,
    pub removed_chunks: u32,
    /// Chunks whose text was unchanged and kept their vector.
    pub reused_chunks: u32,
    pub skipped: Vec<SkippedFile>,
    pub took_ms: u64,
    pub forced: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbedderIdentity {
    pub name: String,
    pub dimensions: u32,
    /// sha256 of the model files, or the algorithm version for `hash`.
    pub model_hash: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Consistency {
    pub ok: bool,
    /// Chunks that were missing from the full-text index at the last check.
    pub missing_text: u32,
    /// Chunks without a vector (embedder failures, or a crash before they were built).
    pub missing_vectors: u32,
    /// Full-text entries with no chunk behind them.
    pub orphan_text: u32,
    /// How many of the above the check repaired.
    pub repaired: u32,
    pub checked_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastIndex {
    pub at: i64,
    pub took_ms: u64,
    pub indexed_files: u32,
    pub added_chunks: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    pub enabled: bool,
    pub dir: String,
    pub workspace: String,
    pub schema_version: u32,
    pub documents: u64,
    pub chunks: u64,
    pub vectors: u64,
    pub text_entries: u64,
    pub nodes: u64,
    pub edges: u64,
    pub lmdb_bytes: u64,
    pub text_bytes: u64,
    pub map_size_bytes: u64,
    /// The embedder this run uses.
    pub embedder: EmbedderIdentity,
    /// Tokens of a chunk the embedder reads (chunks are cut to fit); none for embedders that
    /// read any length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedder_window: Option<u32>,
    /// Chunks longer than that window, part of whose text never reached their vector
    /// (target 0; a store chunked before chunks fitted the window needs `index --force`).
    #[serde(default)]
    pub truncated_chunks: u64,
    /// Why the configured embedder is not the one in use, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedder_notice: Option<String>,
    /// The embedder the stored vectors were made with, when it differs from `embedder`:
    /// vector search is off until `memory index --force`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedder_mismatch: Option<EmbedderIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_index: Option<LastIndex>,
    pub consistency: Consistency,
    /// Which vector index answers searches and how far it has caught up with the store.
    pub vector_index: VectorIndexStatus,
}

/// The index in effect (what `auto` resolved to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VectorIndexKind {
    Scan,
    Arroy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VectorIndexStatus {
    /// The setting.
    pub setting: VectorIndexChoice,
    /// The index that answers searches now.
    pub kind: VectorIndexKind,
    /// Vectors stored (the scan always covers them all).
    pub stored: u64,
    /// Vectors in the arroy forest as of its last build; 0 when it was never built.
    pub indexed: u64,
    /// Vectors written or deleted since that build: scanned exactly and merged until the
    /// next build.
    pub pending: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_build: Option<AnnBuild>,
    /// A build under way, in this process or another; absent when none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildState>,
}

/// What `memory.cancel` stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelResult {
    pub cancelled: u32,
}

/// A vector index build as it goes: what `memory status` shows while one runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildState {
    /// `running`, or `interrupted`: the process building stopped reporting without
    /// finishing (killed); nothing of that build was kept and the previous index answers.
    pub state: BuildPhase,
    /// The process building.
    pub pid: u32,
    /// Unix milliseconds when the build started, and of its latest report.
    pub started_at: i64,
    pub updated_at: i64,
    /// Steps done of `total` in the current stage (`message`).
    pub done: u64,
    pub total: u64,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BuildPhase {
    Running,
    Interrupted,
}

/// One arroy build, as recorded in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnnBuild {
    /// Unix milliseconds when it was committed.
    pub at: i64,
    pub took_ms: u64,
    /// Items in the forest after it.
    pub items: u64,
    pub trees: u32,
    /// Vectors added or replaced, and removed, by it.
    pub added: u64,
    pub removed: u64,
}

// ---- graph ----------------------------------------------------------------------------------

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Document,
    Chunk,
    Session,
    Tag,
    /// A name found in text: `[[wiki link]]`, `@mention` or a capitalised multi-word name.
    Entity,
    /// A markdown link target.
    Link,
    Heading,
}

impl NodeKind {
    pub const ALL: [NodeKind; 7] = [
        NodeKind::Document,
        NodeKind::Chunk,
        NodeKind::Session,
        NodeKind::Tag,
        NodeKind::Entity,
        NodeKind::Link,
        NodeKind::Heading,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Document => "document",
            NodeKind::Chunk => "chunk",
            NodeKind::Session => "session",
            NodeKind::Tag => "tag",
            NodeKind::Entity => "entity",
            NodeKind::Link => "link",
            NodeKind::Heading => "heading",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// document → heading → chunk.
    Contains,
    /// chunk → entity.
    Mentions,
    /// chunk → link, or chunk → entity for a wiki link.
    LinksTo,
    /// chunk → tag.
    Tagged,
    /// entity ↔ entity named in the same chunk; `count` says how often.
    CoOccurs,
    /// chunk → session.
    FromSession,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 6] = [
        EdgeKind::Contains,
        EdgeKind::Mentions,
        EdgeKind::LinksTo,
        EdgeKind::Tagged,
        EdgeKind::CoOccurs,
        EdgeKind::FromSession,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Contains => "contains",
            EdgeKind::Mentions => "mentions",
            EdgeKind::LinksTo => "links_to",
            EdgeKind::Tagged => "tagged",
            EdgeKind::CoOccurs => "co_occurs",
            EdgeKind::FromSession => "from_session",
        }
    }
}

/// A node named by id or by key (`kind:label`, e.g. `tag:rust`, `entity:ada lovelace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NodeRef {
    Id(NodeId),
    Key(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub id: NodeId,
    pub kind: NodeKind,
    pub key: String,
    pub label: String,
    pub degree: u32,
    /// Hops from the node asked about (neighbour and path results only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeView {
    pub from: NodeId,
    pub to: NodeId,
    pub kind: EdgeKind,
    pub count: u32,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NeighborsParams {
    pub node: NodeRef,
    /// Hops to follow (1..=4, default 1).
    #[serde(default)]
    pub depth: Option<u32>,
    /// Only these edge kinds (default: all).
    #[serde(default)]
    pub edge_kinds: Vec<EdgeKind>,
    /// Most nodes to return besides the centre (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NeighborsResult {
    pub center: NodeView,
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
    /// More neighbours exist than `limit` allowed.
    pub truncated: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathParams {
    pub from: NodeRef,
    pub to: NodeRef,
    /// Longest path to look for (default 6, at most 12).
    #[serde(default)]
    pub max_depth: Option<u32>,
    #[serde(default)]
    pub edge_kinds: Vec<EdgeKind>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathResult {
    pub found: bool,
    /// From `from` to `to`, in order.
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeParams {
    pub node: NodeRef,
    /// Most chunks to include (default 20).
    #[serde(default)]
    pub chunk_limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeCount {
    pub kind: EdgeKind,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeResult {
    pub node: NodeView,
    /// Edges by kind, both directions.
    pub edge_counts: Vec<EdgeCount>,
    /// The chunks this node is about: itself for a chunk, the chunks that contain, mention,
    /// link to or are tagged with it otherwise.
    pub chunks: Vec<ChunkView>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TopParams {
    /// Default 20, at most 500.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only nodes of this kind (default: every kind but chunks).
    #[serde(default)]
    pub kind: Option<NodeKind>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopResult {
    pub nodes: Vec<NodeView>,
}
