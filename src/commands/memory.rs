//! `openclaw-rs memory ...`: the memory methods as commands, human text or `--json`.

use std::fmt::Write as _;
use std::io::Read as _;

use color_eyre::eyre::{Result, WrapErr};
use serde::Serialize;

use super::{emit, exit, print_json};
use crate::cli::{GraphAction, MemoryAction};
use crate::engine::memory::{
    MemoryAdd, MemoryCancel, MemoryDelete, MemoryGet, MemoryGraphNeighbors, MemoryGraphNode,
    MemoryGraphPath, MemoryGraphTop, MemoryIndex, MemorySearch, MemoryStatus,
};
use crate::engine::methods::Method;
use crate::engine::{Engine, EngineError, EngineEvent, EngineHandle, ErrorCode};
use crate::memory::types::*;

pub async fn run(engine: &Engine, action: MemoryAction) -> Result<i32> {
    let handle = engine.handle();
    match action {
        MemoryAction::Add {
            text,
            tags,
            source,
            json,
        } => {
            let text = if text == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .wrap_err("reading the text from stdin")?;
                buf
            } else {
                text
            };
            let params = AddParams {
                text,
                tags,
                source,
                session: None,
            };
            finish::<MemoryAdd>(&handle, params, json, |r| {
                let mut out = if r.deduplicated {
                    format!("already remembered as document {}\n", r.document_id)
                } else {
                    format!(
                        "remembered as document {} ({} chunk(s): {})\n",
                        r.document_id,
                        r.chunk_ids.len(),
                        join(&r.chunk_ids)
                    )
                };
                if let Some(notice) = &r.notice {
                    let _ = writeln!(out, "note: {notice}");
                }
                out
            })
            .await
        }
        MemoryAction::Search {
            query,
            limit,
            tag,
            source,
            since,
            until,
            fusion,
            mmr,
            json,
        } => {
            let fusion = match fusion.as_deref() {
                None => None,
                Some("rrf") => Some(Fusion::Rrf),
                Some("weighted") => Some(Fusion::Weighted),
                Some(other) => {
                    eprintln!("openclaw-rs: --fusion is `weighted` or `rrf`, not `{other}`");
                    return Ok(exit::USAGE);
                }
            };
            let params = SearchParams {
                query,
                limit,
                fusion,
                mmr,
                half_life_days: None,
                source,
                tag,
                since,
                until,
            };
            finish::<MemorySearch>(&handle, params, json, search_text).await
        }
        MemoryAction::Get { chunk_id, json } => {
            let params = GetParams {
                chunk_id: Some(chunk_id),
                document_id: None,
            };
            finish::<MemoryGet>(&handle, params, json, |r| {
                let mut out = String::new();
                if let Some(c) = &r.chunk {
                    let _ = writeln!(
                        out,
                        "chunk {} · {}:{}-{}{}{}",
                        c.chunk_id,
                        c.source,
                        c.line_start,
                        c.line_end,
                        c.heading
                            .as_ref()
                            .map(|h| format!(" · {h}"))
                            .unwrap_or_default(),
                        tags_suffix(&c.tags)
                    );
                    let _ = writeln!(out, "\n{}", c.text);
                }
                out
            })
            .await
        }
        MemoryAction::Delete { id, document, json } => {
            let params = if document {
                DeleteParams {
                    chunk_id: None,
                    document_id: Some(id),
                }
            } else {
                DeleteParams {
                    chunk_id: Some(id),
                    document_id: None,
                }
            };
            finish::<MemoryDelete>(&handle, params, json, |r| {
                format!(
                    "forgot {} chunk(s){}\n",
                    r.deleted_chunks,
                    if r.deleted_documents > 0 {
                        " and their document"
                    } else {
                        ""
                    }
                )
            })
            .await
        }
        MemoryAction::Index { paths, force, json } => index(&handle, paths, force, json).await,
        MemoryAction::Status { json } => {
            finish::<MemoryStatus>(&handle, Default::default(), json, status_text).await
        }
        MemoryAction::Graph { action } => graph(&handle, action).await,
    }
}

async fn graph(handle: &EngineHandle, action: GraphAction) -> Result<i32> {
    match action {
        GraphAction::Neighbors {
            node,
            depth,
            edges,
            limit,
            json,
        } => {
            let mut edge_kinds = Vec::new();
            for edge in &edges {
                match parse_edge_kind(edge) {
                    Some(kind) => edge_kinds.push(kind),
                    None => {
                        eprintln!(
                            "openclaw-rs: unknown edge kind `{edge}`; use contains, mentions, \
                             links_to, tagged, co_occurs or from_session"
                        );
                        return Ok(exit::USAGE);
                    }
                }
            }
            let params = NeighborsParams {
                node: node_ref(&node),
                depth: Some(depth),
                edge_kinds,
                limit,
            };
            finish::<MemoryGraphNeighbors>(handle, params, json, |r| {
                let mut out = format!("{}\n", node_line(&r.center));
                for edge in &r.edges {
                    let (arrow, other) = if edge.from == r.center.id {
                        ("→", edge.to)
                    } else if edge.to == r.center.id {
                        ("←", edge.from)
                    } else {
                        continue;
                    };
                    if let Some(n) = r.nodes.iter().find(|n| n.id == other) {
                        let count = if edge.count > 1 {
                            format!(" ×{}", edge.count)
                        } else {
                            String::new()
                        };
                        let _ = writeln!(
                            out,
                            "  {arrow} {:<12} {}{count}",
                            edge.kind.as_str(),
                            node_line(n)
                        );
                    }
                }
                let further = r.nodes.iter().filter(|n| n.depth.unwrap_or(0) > 1).count();
                if further > 0 {
                    let _ = writeln!(out, "  (+{further} node(s) further out; --json lists them)");
                }
                if r.truncated {
                    out.push_str("  (more neighbours than --limit)\n");
                }
                out
            })
            .await
        }
        GraphAction::Path {
            from,
            to,
            max_depth,
            json,
        } => {
            let params = PathParams {
                from: node_ref(&from),
                to: node_ref(&to),
                max_depth,
                edge_kinds: Vec::new(),
            };
            finish::<MemoryGraphPath>(handle, params, json, |r| {
                if !r.found {
                    return "no path\n".into();
                }
                let mut out = String::new();
                for (i, node) in r.nodes.iter().enumerate() {
                    if let Some(edge) = i.checked_sub(1).and_then(|e| r.edges.get(e)) {
                        let _ = writeln!(out, "  │ {}", edge.kind.as_str());
                    }
                    let _ = writeln!(out, "{}", node_line(node));
                }
                out
            })
            .await
        }
        GraphAction::Node { node, json } => {
            let params = NodeParams {
                node: node_ref(&node),
                chunk_limit: None,
            };
            finish::<MemoryGraphNode>(handle, params, json, |r| {
                let mut out = format!("{}\n", node_line(&r.node));
                for count in &r.edge_counts {
                    let _ = writeln!(out, "  {:<12} {}", count.kind.as_str(), count.count);
                }
                for chunk in &r.chunks {
                    let first = chunk.text.lines().next().unwrap_or("");
                    let _ = writeln!(
                        out,
                        "  chunk {:<6} {}:{}-{}  {}",
                        chunk.chunk_id,
                        chunk.source,
                        chunk.line_start,
                        chunk.line_end,
                        first.chars().take(60).collect::<String>()
                    );
                }
                out
            })
            .await
        }
        GraphAction::Top { kind, limit, json } => {
            let kind = match kind.as_deref() {
                None => None,
                Some(name) => match NodeKind::ALL.into_iter().find(|k| k.as_str() == name) {
                    Some(kind) => Some(kind),
                    None => {
                        eprintln!(
                            "openclaw-rs: unknown node kind `{name}`; use document, chunk, \
                             session, tag, entity, link or heading"
                        );
                        return Ok(exit::USAGE);
                    }
                },
            };
            finish::<MemoryGraphTop>(handle, TopParams { limit, kind }, json, |r| {
                let mut out = String::new();
                for node in &r.nodes {
                    let _ = writeln!(out, "{:>5}  {}", node.degree, node_line(node));
                }
                if r.nodes.is_empty() {
                    out.push_str(
                        "the graph is empty: add notes or run `openclaw-rs memory index`\n",
                    );
                }
                out
            })
            .await
        }
    }
}

/// Index with a progress bar on stderr (drawn only when stderr is a terminal).
async fn index(handle: &EngineHandle, paths: Vec<String>, force: bool, json: bool) -> Result<i32> {
    let mut events = handle.subscribe();
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let bar_for_events = bar.clone();
    let progress = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let EngineEvent::Progress {
                task,
                done,
                total,
                message,
            } = event
                && task == crate::engine::memory::INDEX_TASK
            {
                if let Some(total) = total {
                    bar_for_events.set_length(total);
                }
                bar_for_events.set_position(done);
                bar_for_events.set_message(message);
            }
        }
    });
    let params = IndexParams { force, paths };
    let request = handle.request::<MemoryIndex>(params);
    tokio::pin!(request);
    let result = tokio::select! {
        result = &mut request => result,
        // Ctrl-C stops the run where it is: files indexed so far stay, a vector index build
        // is discarded (the previous index answers). A second Ctrl-C leaves at once, which
        // is safe too: nothing half-written is ever committed.
        Ok(()) = tokio::signal::ctrl_c() => {
            bar.set_message("cancelling (ctrl-c again to leave at once)");
            let _ = handle.request::<MemoryCancel>(Default::default()).await;
            tokio::select! {
                result = &mut request => result,
                Ok(()) = tokio::signal::ctrl_c() => {
                    bar.finish_and_clear();
                    eprintln!("openclaw-rs: interrupted");
                    return Ok(exit::FAILED);
                }
            }
        }
    };
    progress.abort();
    bar.finish_and_clear();
    report(result, json, |r| {
        let mut out = format!(
            "{} file(s) scanned: {} indexed, {} unchanged, {} removed · {} chunk(s) added, {} kept, \
             {} removed · {} ms{}\n",
            r.scanned_files,
            r.indexed_files,
            r.unchanged_files,
            r.removed_files,
            r.added_chunks,
            r.reused_chunks,
            r.removed_chunks,
            r.took_ms,
            if r.forced { " (rebuilt)" } else { "" }
        );
        for skipped in &r.skipped {
            let _ = writeln!(out, "skipped {}: {}", skipped.path, skipped.reason);
        }
        if r.scanned_files == 0 {
            out.push_str(
                "no files matched memory.paths in the workspace; put notes in MEMORY.md or \
                 memory/*.md there, or pass paths\n",
            );
        }
        out
    })
}

async fn finish<M: Method>(
    handle: &EngineHandle,
    params: M::Params,
    json: bool,
    text: impl Fn(&M::Output) -> String,
) -> Result<i32>
where
    M::Output: Serialize,
{
    report(handle.request::<M>(params).await, json, text)
}

/// Print a method's result as text or JSON; map its error to the exit status (shared by
/// the command modules).
pub(super) fn report<T: Serialize>(
    result: Result<T, EngineError>,
    json: bool,
    text: impl Fn(&T) -> String,
) -> Result<i32> {
    match result {
        Ok(value) if json => {
            print_json(&value)?;
            Ok(exit::OK)
        }
        Ok(value) => {
            emit(&text(&value))?;
            Ok(exit::OK)
        }
        Err(error) => {
            if json {
                print_json(&serde_json::json!({ "ok": false, "error": error }))?;
            }
            eprintln!("openclaw-rs: {}", error.message);
            Ok(if error.code == ErrorCode::InvalidRequest {
                exit::USAGE
            } else {
                exit::FAILED
            })
        }
    }
}

pub fn search_text(r: &SearchResult) -> String {
    let mut out = String::new();
    if let Some(notice) = &r.notice {
        let _ = writeln!(out, "note: {notice}");
    }
    if r.hits.is_empty() {
        out.push_str("no matches\n");
        return out;
    }
    for (i, hit) in r.hits.iter().enumerate() {
        let parts: Vec<String> = [
            hit.text
                .as_ref()
                .map(|t| format!("text #{} {:.2}", t.rank, t.score)),
            hit.vector
                .as_ref()
                .map(|v| format!("vector #{} {:.2}", v.rank, v.score)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let _ = writeln!(
            out,
            "{:>2}. {:.3}  {}:{}-{}{}  [{}]{}",
            i + 1,
            hit.score,
            hit.source,
            hit.line_start,
            hit.line_end,
            hit.heading
                .as_ref()
                .map(|h| format!(" · {h}"))
                .unwrap_or_default(),
            parts.join(" · "),
            tags_suffix(&hit.tags)
        );
        for line in hit.snippet.lines().filter(|l| !l.trim().is_empty()).take(4) {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(
        out,
        "{} hit(s) · {} · {} · {:.1} ms",
        r.hits.len(),
        match r.mode {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Keyword => "keyword only",
        },
        r.embedder,
        r.took_ms
    );
    out
}

pub fn status_text(s: &StatusResult) -> String {
    let mut out = String::new();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let _ = writeln!(out, "store       {}", s.dir);
    let _ = writeln!(out, "workspace   {}", s.workspace);
    let _ = writeln!(
        out,
        "contents    {} document(s), {} chunk(s), {} vector(s), {} text entries",
        s.documents, s.chunks, s.vectors, s.text_entries
    );
    let _ = writeln!(out, "graph       {} node(s), {} edge(s)", s.nodes, s.edges);
    let _ = writeln!(
        out,
        "size        {:.1} MiB LMDB (map {:.0} MiB), {:.1} MiB full text",
        mib(s.lmdb_bytes),
        mib(s.map_size_bytes),
        mib(s.text_bytes)
    );
    let _ = writeln!(
        out,
        "embedder    {} ({} dimensions, {})",
        s.embedder.name, s.embedder.dimensions, s.embedder.model_hash
    );
    if let Some(window) = s.embedder_window {
        let _ = writeln!(
            out,
            "            reads {window} tokens a chunk; {} chunk(s) longer, truncated",
            s.truncated_chunks
        );
    }
    if let Some(notice) = &s.embedder_notice {
        let _ = writeln!(out, "            {notice}");
    }
    if let Some(stored) = &s.embedder_mismatch {
        let _ = writeln!(
            out,
            "mismatch    stored vectors come from {} ({}d): vector search is off until \
             `openclaw-rs memory index --force`",
            stored.name, stored.dimensions
        );
    }
    match &s.last_index {
        Some(last) => {
            let _ = writeln!(
                out,
                "last index  {} file(s), {} chunk(s) added, {} ms",
                last.indexed_files, last.added_chunks, last.took_ms
            );
        }
        None => out.push_str("last index  never (run `openclaw-rs memory index`)\n"),
    }
    let v = &s.vector_index;
    let setting = match v.setting {
        VectorIndexChoice::Auto => "auto",
        VectorIndexChoice::Scan => "scan",
        VectorIndexChoice::Arroy => "arroy",
    };
    match v.kind {
        VectorIndexKind::Scan => {
            let _ = writeln!(
                out,
                "vector idx  scan (setting {setting}): all {} vector(s), exact, no build",
                v.stored
            );
        }
        VectorIndexKind::Arroy => {
            let _ = writeln!(
                out,
                "vector idx  arroy (setting {setting}): {} of {} vector(s) indexed, {} pending \
                 (scanned until the next build)",
                v.indexed, v.stored, v.pending
            );
        }
    }
    match &v.last_build {
        Some(b) => {
            let _ = writeln!(
                out,
                "last build  {} ({} ms, {} tree(s), {} added, {} removed)",
                format_ms(b.at),
                b.took_ms,
                b.trees,
                b.added,
                b.removed
            );
        }
        None if v.kind == VectorIndexKind::Arroy => {
            out.push_str("last build  never (`openclaw-rs memory index` builds it)\n");
        }
        None => {}
    }
    if let Some(build) = &v.build {
        out.push_str(&build_line(build));
        out.push('\n');
    }
    let c = &s.consistency;
    let _ = writeln!(
        out,
        "consistency {} (missing text {}, missing vectors {}, orphan text {}, repaired {})",
        if c.ok { "ok" } else { "NOT ok" },
        c.missing_text,
        c.missing_vectors,
        c.orphan_text,
        c.repaired
    );
    out
}

/// A build under way (or interrupted), for `memory status`.
fn build_line(b: &BuildState) -> String {
    let stage = if b.total > 0 {
        format!("{}/{} {}", b.done, b.total, b.message)
    } else {
        b.message.clone()
    };
    match b.state {
        BuildPhase::Running => format!(
            "building    since {} (process {}): {stage}",
            format_ms(b.started_at),
            b.pid
        ),
        BuildPhase::Interrupted => format!(
            "building    interrupted: process {} stopped at {stage} ({}); nothing of it was \
             kept, the previous index answers and the next index run builds again",
            b.pid,
            format_ms(b.updated_at)
        ),
    }
}

/// Unix milliseconds as an HTTP date (UTC), the one date format the project already prints.
fn format_ms(ms: i64) -> String {
    let at = u64::try_from(ms).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(at))
}

fn node_ref(text: &str) -> NodeRef {
    match text.parse::<NodeId>() {
        Ok(id) => NodeRef::Id(id),
        Err(_) => NodeRef::Key(text.to_string()),
    }
}

fn parse_edge_kind(text: &str) -> Option<EdgeKind> {
    EdgeKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text || k.as_str().replace('_', "-") == text)
}

fn node_line(node: &NodeView) -> String {
    format!("[{}] {} ({} edge(s))", node.id, node.key, node.degree)
}

fn tags_suffix(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(
            "  {}",
            tags.iter()
                .map(|t| format!("#{t}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

fn join(ids: &[u32]) -> String {
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
