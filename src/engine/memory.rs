//! The `memory.*` methods: the engine opens the store on first use (so commands that never
//! touch memory never pay for it) and runs every store operation on the blocking pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::methods::{Method, NoParams};
use super::{EngineError, EngineEvent, EngineHandle, ErrorCode, Snapshot};
use crate::config::EmbedderKind;
use crate::memory::embed::{Embedder, HashEmbedder, RemoteEmbedder};
use crate::memory::types::*;
use crate::memory::{
    IndexProgress, Memory, MemoryError, MemoryOptions, SearchDefaults, chunk::ChunkOptions,
    graph::GraphLimits,
};

/// Progress events at most this often: a pane redraws on each.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// The `task` of the progress events `memory.index` sends while it runs.
pub const INDEX_TASK: &str = MemoryIndex::NAME;

impl From<MemoryError> for EngineError {
    fn from(e: MemoryError) -> Self {
        let code = match &e {
            MemoryError::Invalid(_) => ErrorCode::InvalidRequest,
            MemoryError::NotFound(_) => ErrorCode::NotFound,
            MemoryError::Store(_) | MemoryError::Text(_) | MemoryError::Embed(_) => {
                ErrorCode::Unavailable
            }
            MemoryError::Io(_) => ErrorCode::Internal,
            MemoryError::Cancelled(_) => ErrorCode::Cancelled,
        };
        EngineError::new(code, e.to_string())
    }
}

/// The embedder the configuration asks for, or `hash` with the reason when it cannot run.
fn embedder(snapshot: &Snapshot) -> (Arc<dyn Embedder>, Option<String>) {
    let config = snapshot.config();
    let hash =
        || Arc::new(HashEmbedder::new(config.memory.dimensions as usize)) as Arc<dyn Embedder>;
    match snapshot.embedder.in_use {
        EmbedderKind::Hash => (hash(), snapshot.embedder.fallback_reason.clone()),
        EmbedderKind::Minilm => minilm(snapshot).unwrap_or_else(|reason| (hash(), Some(reason))),
        EmbedderKind::Remote => match RemoteEmbedder::connect(&config.memory.remote) {
            Ok(remote) => (Arc::new(remote), None),
            Err(e) => (
                hash(),
                Some(format!(
                    "the remote embedder is unavailable ({e}); using hash, so search is \
                     keyword-only on a store built with it (set memory.remote.dimensions to \
                     keep its vectors while the endpoint is down)"
                )),
            ),
        },
    }
}

#[cfg(not(feature = "edge"))]
fn minilm(_snapshot: &Snapshot) -> Result<(Arc<dyn Embedder>, Option<String>), String> {
    Err("the minilm embedder needs the edge build; using hash".into())
}

/// Load MiniLM from the first model dir that has the files, its decluttered graph from the
/// state's cache; the embedder is built once per store opening.
#[cfg(feature = "edge")]
fn minilm(snapshot: &Snapshot) -> Result<(Arc<dyn Embedder>, Option<String>), String> {
    let dirs = crate::memory::embed::model_dirs(snapshot);
    let Some(dir) = dirs.iter().find(|dir| dir.join("model.onnx").is_file()) else {
        let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(format!(
            "no MiniLM model found (looked in {}); run dist/fetch-models.sh or set \
             memory.model_dir; using hash",
            looked.join(", ")
        ));
    };
    let cache = crate::memory::embed::minilm_cache_dir(&snapshot.loaded.paths.state_dir);
    crate::memory::embed::MiniLmEmbedder::load_cached(dir, &cache)
        .map(|embedder| (Arc::new(embedder) as Arc<dyn Embedder>, None))
        .map_err(|e| format!("{e}; using hash"))
}

pub fn memory_options(snapshot: &Snapshot) -> MemoryOptions {
    let config = snapshot.config();
    let state_dir = &snapshot.loaded.paths.state_dir;
    let (embedder, embedder_notice) = embedder(snapshot);
    if let Some(notice) = &embedder_notice {
        tracing::warn!("{notice}");
    }
    let memory = &config.memory;
    MemoryOptions {
        dir: state_dir.join("memory"),
        workspace: crate::memory::workspace_dir(state_dir, config.workspace.as_deref()),
        paths: memory.paths.clone(),
        chunking: ChunkOptions {
            tokens: memory.chunk_tokens as usize,
            overlap: memory.chunk_overlap as usize,
        },
        graph: GraphLimits {
            max_nodes_per_document: memory.graph.max_nodes_per_document as usize,
            max_edges_per_chunk: memory.graph.max_edges_per_chunk as usize,
        },
        search: SearchDefaults {
            fusion: memory.search.fusion,
            vector_weight: memory.search.vector_weight,
            text_weight: memory.search.text_weight,
            mmr: memory.search.mmr,
            half_life_days: memory.search.half_life_days,
            min_similarity: memory.search.min_similarity,
        },
        embedder,
        embedder_notice,
        vector_index: memory.vector_index,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MemoryError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::internal(format!("memory task failed: {e}")))?
        .map_err(EngineError::from)
}

impl EngineHandle {
    /// The memory store, opened (and checked) on first use.
    pub async fn memory(&self) -> Result<Arc<Memory>, EngineError> {
        self.open_memory(false).await
    }

    /// The engine's memory slot, for checks that read the store while it may be open.
    pub(crate) fn memory_slot(&self) -> crate::memory::MemorySlot {
        self.inner.memory.clone()
    }

    async fn open_memory(&self, for_rebuild: bool) -> Result<Arc<Memory>, EngineError> {
        let snapshot = self.snapshot();
        if !snapshot.config().memory.enabled {
            return Err(EngineError::new(
                ErrorCode::Unavailable,
                "memory is disabled (memory.enabled = false in the configuration)",
            ));
        }
        let mut slot = self.inner.memory.lock().await;
        if let Some(memory) = slot.as_ref() {
            return Ok(memory.clone());
        }
        let options = memory_options(&snapshot);
        let memory = blocking(move || {
            if for_rebuild {
                Memory::open_for_rebuild(options)
            } else {
                Memory::open(options)
            }
        })
        .await?;
        let memory = Arc::new(memory);
        *slot = Some(memory.clone());
        Ok(memory)
    }
}

/// A method that runs one blocking call on the store.
macro_rules! memory_method {
    ($ty:ident, $wire:literal, $doc:literal, $params:ty, $output:ty, $op:ident) => {
        pub struct $ty;

        impl Method for $ty {
            const NAME: &'static str = $wire;
            const DESCRIPTION: &'static str = $doc;
            type Params = $params;
            type Output = $output;

            async fn run(engine: &EngineHandle, params: $params) -> Result<$output, EngineError> {
                let memory = engine.memory().await?;
                blocking(move || memory.$op(params)).await
            }
        }
    };
}

pub struct MemoryAdd;

impl Method for MemoryAdd {
    const NAME: &'static str = "memory.add";
    const DESCRIPTION: &'static str = "Remember text (markdown) with tags and a source; the \
        same text twice is stored once. Returns when the note is stored and searchable; once \
        enough notes wait for the vector index, its build follows in the background (progress \
        as `memory.index` events, stopped by `memory.cancel`).";
    type Params = AddParams;
    type Output = AddResult;

    async fn run(engine: &EngineHandle, params: AddParams) -> Result<AddResult, EngineError> {
        let memory = engine.memory().await?;
        let store = memory.clone();
        let added = blocking(move || store.add(params)).await?;
        build_in_background(engine, memory);
        Ok(added)
    }
}

/// The vector index build that follows notes, when enough wait for it: off the add's path,
/// so the caller has its answer when the note is stored. One build at a time holds the
/// store's writer; a build started meanwhile finds nothing left to do. It reports like an
/// index run's build and `memory.cancel` stops it (the previous forest keeps answering).
fn build_in_background(engine: &EngineHandle, memory: Arc<Memory>) {
    let events = engine.clone();
    tokio::task::spawn_blocking(move || {
        match memory.build_due() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!("cannot tell whether the vector index needs a build: {e}");
                return;
            }
        }
        let report = progress_events(&events);
        let built = memory.build_vector_index(&|p: crate::memory::index::BuildProgress| {
            report(IndexProgress {
                done: p.done,
                total: p.total,
                message: format!("vector index: {}", p.message),
            })
        });
        match built {
            Ok(_) => {}
            Err(MemoryError::Cancelled(_)) => {
                tracing::info!("the vector index build was cancelled; the notes wait for the next")
            }
            Err(e) => tracing::warn!("building the vector index after new notes failed: {e}"),
        }
        super::allocator::release_free_memory();
    });
}

/// `Progress` events of task `memory.index`, at most one per [`PROGRESS_INTERVAL`] (and the
/// last step always).
fn progress_events(events: &EngineHandle) -> impl Fn(IndexProgress) + '_ {
    let last = std::sync::Mutex::new(None::<Instant>);
    move |p: IndexProgress| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        let finished = p.total > 0 && p.done == p.total;
        if finished || last.is_none_or(|t| t.elapsed() >= PROGRESS_INTERVAL) {
            *last = Some(Instant::now());
            events.emit(EngineEvent::Progress {
                task: INDEX_TASK.into(),
                done: p.done,
                total: (p.total > 0).then_some(p.total),
                message: p.message,
            });
        }
    }
}
memory_method!(
    MemorySearch,
    "memory.search",
    "Hybrid search: BM25 and vector neighbours fused, with filters by source, tag and time.",
    SearchParams,
    SearchResult,
    search
);
memory_method!(
    MemoryGet,
    "memory.get",
    "A chunk (by chunkId) and its document, or a document (by documentId).",
    GetParams,
    GetResult,
    get
);
memory_method!(
    MemoryDelete,
    "memory.delete",
    "Forget a chunk or a whole document, in every index and the graph.",
    DeleteParams,
    DeleteResult,
    delete
);
memory_method!(
    MemoryGraphNeighbors,
    "memory.graph.neighbors",
    "A node's neighbourhood to a depth, optionally only some edge kinds.",
    NeighborsParams,
    NeighborsResult,
    neighbors
);
memory_method!(
    MemoryGraphPath,
    "memory.graph.path",
    "The shortest path between two nodes.",
    PathParams,
    PathResult,
    path
);
memory_method!(
    MemoryGraphNode,
    "memory.graph.node",
    "A node with its edge counts and the chunks it is about.",
    NodeParams,
    NodeResult,
    node
);
memory_method!(
    MemoryGraphTop,
    "memory.graph.top",
    "The most connected nodes.",
    TopParams,
    TopResult,
    top
);

pub struct MemoryStatus;

impl Method for MemoryStatus {
    const NAME: &'static str = "memory.status";
    const DESCRIPTION: &'static str =
        "Counts, sizes, embedder, last index run and the consistency of the three indexes.";
    type Params = NoParams;
    type Output = StatusResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<StatusResult, EngineError> {
        let memory = engine.memory().await?;
        blocking(move || memory.status()).await
    }
}

/// Stops the store's running index or build when dropped armed: a `memory.index` whose
/// caller went away (a timeout, a closed TUI, an aborted request) does not go on building
/// on the blocking pool for nobody.
struct CancelOnDrop(Option<Arc<Memory>>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(memory) = self.0.take()
            && memory.cancel_build()
        {
            tracing::info!("memory.index was dropped; its vector index build is cancelled");
        }
    }
}

pub struct MemoryCancel;

impl Method for MemoryCancel {
    const NAME: &'static str = "memory.cancel";
    const DESCRIPTION: &'static str = "Stop the running `memory.index` (or a build `memory.add` \
        started): files indexed so far stay, the vector index build is discarded and the \
        previous index answers. `cancelled` is how many runs it stopped (0: none was running).";
    type Params = NoParams;
    type Output = CancelResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<CancelResult, EngineError> {
        // The store is not opened just to find nothing running in it.
        let memory = engine.inner.memory.lock().await.clone();
        Ok(CancelResult {
            cancelled: memory.map_or(0, |m| u32::from(m.cancel_build())),
        })
    }
}

pub struct MemoryIndex;

impl Method for MemoryIndex {
    const NAME: &'static str = "memory.index";
    const DESCRIPTION: &'static str = "Index the workspace files (incremental; `force` rebuilds \
        every index, also after changing embedders). Progress arrives as events; \
        `memory.cancel` stops it.";
    type Params = IndexParams;
    type Output = IndexResult;

    async fn run(engine: &EngineHandle, params: IndexParams) -> Result<IndexResult, EngineError> {
        let memory = match engine.memory().await {
            Ok(memory) => memory,
            // A damaged text index cannot be opened, but a forced rebuild needs no old one.
            Err(e) if params.force && e.code == ErrorCode::Unavailable => {
                tracing::warn!("{}", e.message);
                engine.open_memory(true).await?
            }
            Err(e) => return Err(e),
        };
        let events = engine.clone();
        let guard = CancelOnDrop(Some(memory.clone()));
        let result = blocking(move || {
            let report = progress_events(&events);
            let indexed = memory.index(params, &report);
            // The writer's arenas and buffers were just freed: give the pages back now rather
            // than keep them resident until the next index.
            super::allocator::release_free_memory();
            indexed
        })
        .await;
        guard.disarm();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LoadOptions, load};
    use crate::engine::Engine;

    fn notes(state: &std::path::Path, files: usize, sections: usize, from: usize) -> usize {
        let dir = state.join("workspace/memory");
        std::fs::create_dir_all(&dir).unwrap();
        for f in from..from + files {
            let text: String = (0..sections)
                .map(|s| {
                    format!(
                        "## Part {s}\nentry {f}-{s}: the cargo of hold {f} weighs {s} tons.\n\n"
                    )
                })
                .collect();
            std::fs::write(dir.join(format!("n{f:04}.md")), text).unwrap();
        }
        files * sections
    }

    /// A caller that goes away (a timeout, a closed face) takes its build with it: the
    /// previous forest stays and what was written waits, found by the scan.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_index_request_cancels_its_build() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.toml"),
            "[memory]\nembedder = \"hash\"\nvector_index = \"arroy\"\n",
        )
        .unwrap();
        let loaded = load(&LoadOptions {
            state_dir: tmp.path().to_path_buf(),
            ..Default::default()
        });
        let engine = Engine::start(loaded, Vec::new());
        let handle = engine.handle();
        let first = notes(tmp.path(), 10, 10, 0);
        handle
            .request::<MemoryIndex>(IndexParams::default())
            .await
            .unwrap();
        let before = handle.request::<MemoryStatus>(NoParams {}).await.unwrap();
        assert_eq!(before.vector_index.indexed, first as u64);
        let total = first + notes(tmp.path(), 200, 25, 10);

        let mut events = handle.subscribe();
        // Boxed, so that dropping it drops the future itself.
        let mut request = Box::pin(handle.request::<MemoryIndex>(IndexParams::default()));
        // Run it until its build reports, then drop it there.
        loop {
            tokio::select! {
                result = &mut request => panic!("the run ended before its build: {result:?}"),
                event = events.recv() => {
                    if let Ok(EngineEvent::Progress { message, .. }) = event
                        && message.starts_with("vector index")
                    {
                        break;
                    }
                }
            }
        }
        let memory = handle.memory().await.unwrap();
        assert!(memory.status().unwrap().vector_index.build.is_some());
        drop(request);
        // The build stops within moments and reports that it ended.
        let deadline = Instant::now() + Duration::from_secs(60);
        while memory.status().unwrap().vector_index.build.is_some() {
            assert!(Instant::now() < deadline, "the build went on");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let after = memory.status().unwrap();
        let index = &after.vector_index;
        assert_eq!(index.indexed, first as u64, "{index:?}");
        assert_eq!(index.last_build, before.vector_index.last_build);
        assert_eq!(after.vectors, total as u64);
        assert_eq!(index.pending, (total - first) as u64);
        // A chunk written after the forest is found through the pending scan.
        let probe = crate::memory::embed::HashEmbedder::new(384)
            .embed_one("entry 150-7: the cargo of hold 150 weighs 7 tons.");
        let top = memory.nearest(&probe, 1, false).unwrap();
        let exact = memory.nearest(&probe, 1, true).unwrap();
        assert_eq!(top[0].0, exact[0].0);
        assert!(top[0].0 > first as u32, "{top:?}");
    }
    /// `memory.add` answers when the note is stored and searchable; the build that enough
    /// waiting notes call for follows in the background, reporting as it goes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notes_return_before_the_build_that_follows_them() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.toml"),
            "[memory]\nembedder = \"hash\"\nvector_index = \"arroy\"\n",
        )
        .unwrap();
        let loaded = load(&LoadOptions {
            state_dir: tmp.path().to_path_buf(),
            ..Default::default()
        });
        let engine = Engine::start(loaded, Vec::new());
        let handle = engine.handle();
        let memory = handle.memory().await.unwrap();
        memory.set_build_after_pending(3);
        let mut events = handle.subscribe();
        let add = |text: &str| AddParams {
            text: text.into(),
            ..Default::default()
        };
        for text in ["the ferry leaves at noon", "lantern oil is in the shed"] {
            handle.request::<MemoryAdd>(add(text)).await.unwrap();
        }
        // Two notes wait: no build, and both are found (the pending scan).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = memory.status().unwrap().vector_index;
        assert_eq!(
            (status.indexed, &status.last_build),
            (0, &None),
            "{status:?}"
        );
        let hits = handle
            .request::<MemorySearch>(SearchParams {
                query: "lantern oil".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .hits;
        assert!(hits[0].vector.is_some(), "{hits:?}");

        handle
            .request::<MemoryAdd>(add("the kitten sleeps on the rug"))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = memory.status().unwrap().vector_index;
            if status.indexed == 3 && status.build.is_none() {
                assert_eq!(status.pending, 0);
                break;
            }
            assert!(Instant::now() < deadline, "no build followed: {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut reported = false;
        while let Ok(event) = events.try_recv() {
            if let EngineEvent::Progress { task, message, .. } = event {
                reported |= task == INDEX_TASK && message.starts_with("vector index");
            }
        }
        assert!(reported, "the background build sent no progress");
    }
}
