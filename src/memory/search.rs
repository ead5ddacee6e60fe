//! Hybrid search: BM25 from tantivy and nearest neighbours by cosine, fused, optionally
//! diversified (MMR) and decayed by age, with snippets that mark the query terms.

use std::collections::HashMap;
use std::time::Instant;

use roaring::RoaringBitmap;

use super::store::ChunkRecord;
use super::types::*;
use super::{Memory, MemoryError, Result, now_ms};

/// Reciprocal rank fusion's k: the usual 60 flattens the head just enough.
const RRF_K: f32 = 60.0;
pub const MAX_SNIPPET_CHARS: usize = 700;
/// The query is embedded from at most this much text; BM25 sees the first 64 terms.
const MAX_EMBED_QUERY_BYTES: usize = 8 * 1024;
/// Candidates each side contributes before fusion, per hit asked for.
const CANDIDATES_PER_HIT: usize = 5;
const MIN_CANDIDATES: usize = 50;

struct Candidate {
    text: Option<ComponentScore>,
    vector: Option<ComponentScore>,
    fused: f32,
}

pub fn search(memory: &Memory, params: SearchParams) -> Result<SearchResult> {
    let started = Instant::now();
    let query = params.query.trim();
    if query.is_empty() {
        return Err(MemoryError::Invalid(
            "memory.search: the query is empty".into(),
        ));
    }
    let limit = params.limit.unwrap_or(10).clamp(1, 100);
    let defaults = memory.options.search;
    let fusion = params.fusion.unwrap_or(defaults.fusion);
    let mmr = params.mmr.unwrap_or(defaults.mmr).clamp(0.0, 1.0);
    let half_life = params
        .half_life_days
        .unwrap_or(defaults.half_life_days)
        .max(0.0);
    let mut notices = Vec::new();

    let txn = memory.store.read_txn()?;
    let allowed = filter_ids(memory, &txn, &params)?;
    let filtered = allowed.is_some();
    let pool = (limit * CANDIDATES_PER_HIT).max(MIN_CANDIDATES);
    // Filters are applied after BM25; look deeper so enough survive.
    let text_pool = if filtered { pool * 20 } else { pool };

    let (terms, cut) = memory.text.query_terms(query);
    if cut {
        notices.push(format!(
            "query shortened to its first {} distinct terms",
            super::text::MAX_QUERY_TERMS
        ));
    }
    let mut text_hits = memory.text.search(&terms, text_pool)?;
    if let Some(allowed) = &allowed {
        text_hits.retain(|(id, _)| allowed.contains(*id));
    }
    text_hits.truncate(pool);

    let mut mode = SearchMode::Hybrid;
    let mut vector_hits = Vec::new();
    let mut query_vector = None;
    if let Some(stored) = &memory.mismatch() {
        mode = SearchMode::Keyword;
        notices.push(format!(
            "keyword only: the stored vectors come from {} ({}d), not {}; run `openclaw-rs memory index --force`",
            stored.name,
            stored.dimensions,
            memory.options.embedder.identity().name
        ));
    } else {
        let mut cut_at = query.len().min(MAX_EMBED_QUERY_BYTES);
        while !query.is_char_boundary(cut_at) {
            cut_at -= 1;
        }
        match memory.options.embedder.embed(&[&query[..cut_at]]) {
            Ok(mut vectors) if !vectors.is_empty() => {
                let vector = vectors.swap_remove(0);
                if vector.iter().any(|x| *x != 0.0) {
                    let found = memory.vector_index(&txn).and_then(|index| {
                        Ok(index.nearest(
                            &memory.store.dbs,
                            &txn,
                            &vector,
                            pool,
                            allowed.as_ref(),
                        )?)
                    });
                    match found {
                        Ok(hits) => {
                            vector_hits = hits
                                .into_iter()
                                .filter(|(_, similarity)| *similarity >= defaults.min_similarity)
                                .collect();
                            query_vector = Some(vector);
                        }
                        Err(e) => {
                            mode = SearchMode::Keyword;
                            notices.push(format!("keyword only: the vectors cannot be read ({e})"));
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                mode = SearchMode::Keyword;
                notices.push(format!("keyword only: the embedder failed ({e})"));
            }
        }
    }

    let mut candidates = fuse(&text_hits, &vector_hits, fusion, defaults);
    // Load the best few times `limit` records: enough for decay and MMR to reorder.
    let mut ranked: Vec<(ChunkId, Candidate)> = candidates.drain().collect();
    ranked.sort_by(|a, b| b.1.fused.total_cmp(&a.1.fused).then(a.0.cmp(&b.0)));
    ranked.truncate(limit * 3);
    let mut loaded = Vec::with_capacity(ranked.len());
    let now = now_ms();
    for (id, mut candidate) in ranked {
        let Some(chunk) = memory.store.dbs.chunks.get(&txn, &id)? else {
            continue; // deleted since the text index was read
        };
        if half_life > 0.0 && !is_evergreen(&chunk.source) {
            let age_days = (now - chunk.created_at).max(0) as f32 / 86_400_000.0;
            candidate.fused *= 0.5f32.powf(age_days / half_life);
        }
        loaded.push((chunk, candidate));
    }
    loaded.sort_by(|a, b| b.1.fused.total_cmp(&a.1.fused).then(a.0.id.cmp(&b.0.id)));
    if mmr > 0.0 && query_vector.is_some() {
        loaded = diversify(memory, &txn, loaded, limit, mmr)?;
    }
    loaded.truncate(limit);
    let hits = loaded
        .into_iter()
        .map(|(chunk, candidate)| SearchHit {
            chunk_id: chunk.id,
            snippet: snippet(memory, &chunk.text, &terms),
            source: chunk.source,
            line_start: chunk.line_start,
            line_end: chunk.line_end,
            heading: chunk.heading,
            score: candidate.fused,
            text: candidate.text,
            vector: candidate.vector,
            tags: chunk.tags,
            created_at: chunk.created_at,
        })
        .collect();
    Ok(SearchResult {
        query: truncate_chars(query, 200),
        mode,
        fusion,
        embedder: memory.options.embedder.identity().name,
        hits,
        notice: (!notices.is_empty()).then(|| notices.join("; ")),
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

fn fuse(
    text_hits: &[(ChunkId, f32)],
    vector_hits: &[(ChunkId, f32)],
    fusion: Fusion,
    defaults: super::SearchDefaults,
) -> HashMap<ChunkId, Candidate> {
    let mut out: HashMap<ChunkId, Candidate> = HashMap::new();
    let top_text = text_hits.first().map_or(1.0, |h| h.1).max(f32::EPSILON);
    let keyword_only = vector_hits.is_empty();
    for (rank, (id, score)) in text_hits.iter().enumerate() {
        let contribution = match fusion {
            Fusion::Rrf => 1.0 / (RRF_K + rank as f32 + 1.0),
            // BM25 is unbounded: scale by the best hit so it meets cosine on [0, 1].
            Fusion::Weighted if keyword_only => score / top_text,
            Fusion::Weighted => defaults.text_weight * score / top_text,
        };
        let entry = out.entry(*id).or_insert(Candidate {
            text: None,
            vector: None,
            fused: 0.0,
        });
        entry.text = Some(ComponentScore {
            rank: rank as u32 + 1,
            score: *score,
        });
        entry.fused += contribution;
    }
    for (rank, (id, similarity)) in vector_hits.iter().enumerate() {
        let contribution = match fusion {
            Fusion::Rrf => 1.0 / (RRF_K + rank as f32 + 1.0),
            Fusion::Weighted => defaults.vector_weight * similarity.max(0.0),
        };
        let entry = out.entry(*id).or_insert(Candidate {
            text: None,
            vector: None,
            fused: 0.0,
        });
        entry.vector = Some(ComponentScore {
            rank: rank as u32 + 1,
            score: *similarity,
        });
        entry.fused += contribution;
    }
    out
}

/// Maximal marginal relevance: trade a little score for hits that say something new.
fn diversify(
    memory: &Memory,
    txn: &heed::RoTxn<'_>,
    candidates: Vec<(ChunkRecord, Candidate)>,
    limit: usize,
    diversity: f32,
) -> Result<Vec<(ChunkRecord, Candidate)>> {
    let mut vectors = Vec::with_capacity(candidates.len());
    for (chunk, _) in &candidates {
        vectors.push(super::vectors::get(&memory.store.dbs, txn, chunk.id)?);
    }
    let lambda = 1.0 - diversity;
    let mut remaining: Vec<usize> = (0..candidates.len()).collect();
    let mut chosen: Vec<usize> = Vec::new();
    while chosen.len() < limit && !remaining.is_empty() {
        let mut best = (0, f32::NEG_INFINITY);
        for (slot, &i) in remaining.iter().enumerate() {
            let redundancy = chosen
                .iter()
                .filter_map(|&j| Some(dot(vectors[i].as_ref()?, vectors[j].as_ref()?)))
                .fold(0.0f32, f32::max);
            let value = lambda * candidates[i].1.fused - (1.0 - lambda) * redundancy;
            if value > best.1 {
                best = (slot, value);
            }
        }
        chosen.push(remaining.remove(best.0));
    }
    let mut slots: Vec<Option<(ChunkRecord, Candidate)>> =
        candidates.into_iter().map(Some).collect();
    Ok(chosen.into_iter().filter_map(|i| slots[i].take()).collect())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `MEMORY.md` holds what is meant to stay true: it does not age.
fn is_evergreen(source: &str) -> bool {
    source.rsplit('/').next() == Some("MEMORY.md")
}

/// Chunks allowed by the filters, or `None` when there are none.
fn filter_ids(
    memory: &Memory,
    txn: &heed::RoTxn<'_>,
    params: &SearchParams,
) -> Result<Option<RoaringBitmap>> {
    let source = params.source.as_deref().filter(|s| !s.is_empty());
    let tag = params
        .tag
        .as_deref()
        .map(|t| t.trim_start_matches('#').to_lowercase())
        .filter(|t| !t.is_empty());
    if source.is_none() && tag.is_none() && params.since.is_none() && params.until.is_none() {
        return Ok(None);
    }
    let dbs = &memory.store.dbs;
    let mut allowed: Option<RoaringBitmap> = None;
    let mut narrow = |ids: RoaringBitmap| {
        allowed = Some(match allowed.take() {
            Some(current) => current & ids,
            None => ids,
        });
    };
    if let Some(source) = source {
        let mut ids = RoaringBitmap::new();
        for entry in dbs.documents.iter(txn)? {
            let (_, doc) = entry?;
            if doc.source.contains(source) {
                ids.extend(doc.chunk_ids.iter().copied());
            }
        }
        narrow(ids);
    }
    if let Some(tag) = tag {
        let mut ids = RoaringBitmap::new();
        let node = super::graph::resolve(
            &memory.store,
            txn,
            &NodeRef::Key(super::graph::node_key(NodeKind::Tag, &tag)),
        )?;
        if let Some(node) = node {
            for id in super::graph::chunks_of(&memory.store, txn, &node, usize::MAX)? {
                ids.insert(id);
            }
        }
        narrow(ids);
    }
    if params.since.is_some() || params.until.is_some() {
        let since = params.since.unwrap_or(i64::MIN);
        let until = params.until.unwrap_or(i64::MAX);
        let mut ids = RoaringBitmap::new();
        for entry in dbs.chunks.iter(txn)? {
            let (id, chunk) = entry?;
            if chunk.created_at >= since && chunk.created_at < until {
                ids.insert(id);
            }
        }
        narrow(ids);
    }
    Ok(allowed)
}

/// At most [`MAX_SNIPPET_CHARS`] characters around the first match, terms wrapped in « ».
fn snippet(memory: &Memory, text: &str, terms: &[String]) -> String {
    let matches = memory.text.matches(text, terms);
    let budget = MAX_SNIPPET_CHARS;
    // Start a little before the first match, at a word boundary.
    let mut start = matches.first().map_or(0, |m| m.start.saturating_sub(120));
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    if start > 0 {
        start = text[start..]
            .find(char::is_whitespace)
            .map_or(start, |i| start + i + 1)
            .min(matches.first().map_or(start, |m| m.start));
    }
    let mut out = String::new();
    let mut used = 0;
    if start > 0 {
        out.push('…');
        used += 1;
    }
    let mut pos = start;
    let mut next_match = matches.iter().filter(|m| m.start >= start).peekable();
    let mut truncated = false;
    while pos < text.len() {
        let (segment_end, marked) = match next_match.peek() {
            Some(m) if m.start == pos => (m.end, true),
            Some(m) => (m.start, false),
            None => (text.len(), false),
        };
        let segment = &text[pos..segment_end];
        let needed = segment.chars().count() + if marked { 2 } else { 0 };
        if used + needed > budget - 1 {
            if !marked {
                let room = budget - 1 - used;
                out.extend(segment.chars().take(room));
            }
            truncated = true;
            break;
        }
        if marked {
            out.push('«');
            out.push_str(segment);
            out.push('»');
            next_match.next();
        } else {
            out.push_str(segment);
        }
        used += needed;
        pos = segment_end;
    }
    if truncated {
        out.push('…');
    }
    out
}

fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}
