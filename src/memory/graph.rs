//! The memory graph: documents contain headings and chunks; chunks mention entities, link to
//! targets, carry tags and come from sessions; entities named together co-occur.
//!
//! Edges live in LMDB next to the chunks they come from and change in the same transaction,
//! so the graph never points at a chunk that is not there. Queries over it are in graph/read.rs.

use std::collections::HashSet;
use std::sync::LazyLock;

use heed::{RoTxn, RwTxn};
use regex::Regex;

use super::store::{ChunkRecord, NodeRecord, Result, Store, edge_key, lmdb_key};
use super::types::{ChunkId, EdgeKind, NodeId, NodeKind};

mod read;
pub use read::{
    Direction, Neighborhood, chunks_of, edges_of, neighbors, node_view, resolve, shortest_path, top,
};

/// Bounds that keep one pathological document from flooding the graph.
#[derive(Debug, Clone, Copy)]
pub struct GraphLimits {
    pub max_nodes_per_document: usize,
    pub max_edges_per_chunk: usize,
}

impl Default for GraphLimits {
    fn default() -> Self {
        Self {
            max_nodes_per_document: 256,
            max_edges_per_chunk: 48,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub kind: NodeKind,
    pub edge: EdgeKind,
    pub label: String,
}

impl Mention {
    pub fn key(&self) -> String {
        node_key(self.kind, &self.label)
    }
}

/// The key a node is found by: `kind:label`, lower-cased for names and tags.
pub fn node_key(kind: NodeKind, label: &str) -> String {
    let label = match kind {
        NodeKind::Entity | NodeKind::Tag => label.to_lowercase(),
        _ => label.to_string(),
    };
    format!("{}:{label}", kind.as_str())
}

static WIKI_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[([^\[\]|#\n]{1,120})(?:[|#][^\]\n]*)?\]\]").expect("regex"));
static MD_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[[^\]\n]*\]\(([^)\s]{1,300})(?:\s[^)]*)?\)").expect("regex"));
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[\s(,])#([\p{L}][\p{L}\p{N}_/-]{0,60})").expect("regex"));
static MENTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s(,])@([\p{L}\p{N}_][\p{L}\p{N}_.-]{0,60})").expect("regex")
});
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    // Latin letters only, with ASCII word boundaries: Unicode letter classes and
    // boundaries push the regex engine off its fast DFA onto a path ten times slower,
    // and this runs on every chunk.
    Regex::new(r"(?-u:\b)[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’]+(?:[ \t]+(?:(?:de|van|von|der|da|di|le|la)[ \t]+)?[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’]+){1,3}")
        .expect("regex")
});

/// Words that start sentences in title case without being part of a name.
const NAME_STOPWORDS: &[&str] = &[
    "The",
    "A",
    "An",
    "This",
    "That",
    "These",
    "Those",
    "In",
    "On",
    "At",
    "For",
    "From",
    "With",
    "And",
    "But",
    "Or",
    "If",
    "When",
    "Then",
    "We",
    "I",
    "It",
    "Our",
    "My",
    "Your",
    "To",
    "By",
    "Of",
    "As",
    "Is",
    "Are",
    "Was",
    "Next",
    "Last",
    "Today",
    "Yesterday",
    "Tomorrow",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Names, tags and links in `text`, in order of first appearance, without repeats.
pub fn extract(text: &str) -> Vec<Mention> {
    let mut found: Vec<(usize, Mention)> = Vec::new();
    let mut taken: Vec<std::ops::Range<usize>> = Vec::new();
    let mut push = |start: usize, kind, edge, label: &str| {
        let label = label.trim().trim_end_matches(['.', ',', ';', ':']);
        if !label.is_empty() {
            found.push((
                start,
                Mention {
                    kind,
                    edge,
                    label: label.to_string(),
                },
            ));
        }
    };
    // Each pattern needs a marker that most prose lacks; checking for it first (memchr)
    // skips a full regex pass per pattern. The regexes cannot find these literals
    // themselves because of their leading alternations.
    let has = |marker: &str| text.contains(marker);
    for cap in has("[[")
        .then(|| WIKI_LINK.captures_iter(text))
        .into_iter()
        .flatten()
    {
        if let (Some(all), Some(target)) = (cap.get(0), cap.get(1)) {
            taken.push(all.range());
            push(
                all.start(),
                NodeKind::Entity,
                EdgeKind::LinksTo,
                target.as_str(),
            );
        }
    }
    for cap in has("](")
        .then(|| MD_LINK.captures_iter(text))
        .into_iter()
        .flatten()
    {
        if let (Some(all), Some(target)) = (cap.get(0), cap.get(1)) {
            taken.push(all.range());
            push(
                all.start(),
                NodeKind::Link,
                EdgeKind::LinksTo,
                target.as_str(),
            );
        }
    }
    let inside_link = |pos: usize| taken.iter().any(|r| r.contains(&pos));
    for cap in has("#")
        .then(|| TAG.captures_iter(text))
        .into_iter()
        .flatten()
    {
        if let Some(tag) = cap.get(1).filter(|m| !inside_link(m.start())) {
            push(tag.start(), NodeKind::Tag, EdgeKind::Tagged, tag.as_str());
        }
    }
    for cap in has("@")
        .then(|| MENTION.captures_iter(text))
        .into_iter()
        .flatten()
    {
        if let Some(name) = cap.get(1).filter(|m| !inside_link(m.start())) {
            push(
                name.start(),
                NodeKind::Entity,
                EdgeKind::Mentions,
                &format!("@{}", name.as_str()),
            );
        }
    }
    for m in NAME.find_iter(text).filter(|m| !inside_link(m.start())) {
        let mut words: Vec<&str> = m.as_str().split_whitespace().collect();
        while words.first().is_some_and(|w| NAME_STOPWORDS.contains(w)) {
            words.remove(0);
        }
        // At the start of a sentence the first capital may be just grammar ("Met Ada
        // Lovelace"); two words there are kept as a name, a longer run loses its first.
        if words.len() >= 3 && at_sentence_start(text, m.start()) {
            words.remove(0);
        }
        if words.len() >= 2 {
            push(
                m.start(),
                NodeKind::Entity,
                EdgeKind::Mentions,
                &words.join(" "),
            );
        }
    }
    found.sort_by_key(|(start, _)| *start);
    let mut seen = HashSet::new();
    found
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| seen.insert(m.key()))
        .collect()
}

fn at_sentence_start(text: &str, pos: usize) -> bool {
    let before = text[..pos].trim_end_matches([' ', '\t']);
    before.is_empty() || before.ends_with(['.', '!', '?', '\n', ':', '-', '*', '>'])
}

// ---- writing --------------------------------------------------------------------------------

pub fn ensure_node(
    store: &Store,
    txn: &mut RwTxn<'_>,
    kind: NodeKind,
    key: &str,
    label: &str,
) -> Result<(NodeId, bool)> {
    let key = lmdb_key(key);
    if let Some(id) = store.dbs.node_by_key.get(txn, &key)? {
        return Ok((id, false));
    }
    let id = store.next_id(txn, "next_node_id")?;
    let label: String = label.chars().take(200).collect();
    store.dbs.nodes.put(
        txn,
        &id,
        &NodeRecord {
            id,
            kind,
            key: key.to_string(),
            label,
            degree: 0,
        },
    )?;
    store.dbs.node_by_key.put(txn, &key, &id)?;
    Ok((id, true))
}

fn bump_degree(store: &Store, txn: &mut RwTxn<'_>, id: NodeId, delta: i32) -> Result<()> {
    if let Some(mut node) = store.dbs.nodes.get(txn, &id)? {
        node.degree = node.degree.saturating_add_signed(delta);
        if node.degree == 0 && !matches!(node.kind, NodeKind::Document | NodeKind::Chunk) {
            // Nothing refers to it any more.
            store.dbs.nodes.delete(txn, &id)?;
            store.dbs.node_by_key.delete(txn, &node.key)?;
        } else {
            store.dbs.nodes.put(txn, &id, &node)?;
        }
    }
    Ok(())
}

/// Add `count` to the edge, creating it (and counting it in both degrees) if new.
pub fn add_edge(
    store: &Store,
    txn: &mut RwTxn<'_>,
    from: NodeId,
    kind: EdgeKind,
    to: NodeId,
    count: u32,
) -> Result<()> {
    let out_key = edge_key(from, kind, to);
    let existing = store.dbs.edges_out.get(txn, &out_key)?;
    let total = existing.unwrap_or(0).saturating_add(count);
    store.dbs.edges_out.put(txn, &out_key, &total)?;
    store
        .dbs
        .edges_in
        .put(txn, &edge_key(to, kind, from), &total)?;
    if existing.is_none() {
        bump_degree(store, txn, from, 1)?;
        bump_degree(store, txn, to, 1)?;
    }
    Ok(())
}

/// Take `count` from the edge, removing it when nothing is left.
fn remove_edge(
    store: &Store,
    txn: &mut RwTxn<'_>,
    from: NodeId,
    kind: EdgeKind,
    to: NodeId,
    count: u32,
) -> Result<()> {
    let out_key = edge_key(from, kind, to);
    let Some(existing) = store.dbs.edges_out.get(txn, &out_key)? else {
        return Ok(());
    };
    let left = existing.saturating_sub(count);
    if left > 0 {
        store.dbs.edges_out.put(txn, &out_key, &left)?;
        store
            .dbs
            .edges_in
            .put(txn, &edge_key(to, kind, from), &left)?;
        return Ok(());
    }
    store.dbs.edges_out.delete(txn, &out_key)?;
    store.dbs.edges_in.delete(txn, &edge_key(to, kind, from))?;
    bump_degree(store, txn, from, -1)?;
    bump_degree(store, txn, to, -1)?;
    Ok(())
}

/// Pairs of co-occurring targets, in a fixed order so removal undoes exactly what was added.
fn co_occurrence_pairs(mut targets: Vec<NodeId>, budget: usize) -> Vec<(NodeId, NodeId)> {
    targets.sort_unstable();
    targets.dedup();
    let mut pairs = Vec::new();
    'outer: for (i, a) in targets.iter().enumerate() {
        for b in &targets[i + 1..] {
            if pairs.len() >= budget {
                break 'outer;
            }
            pairs.push((*a, *b));
        }
    }
    pairs
}

pub fn chunk_node_key(id: ChunkId) -> String {
    format!("chunk:{id}")
}

pub fn document_node_key(source: &str) -> String {
    format!("document:{source}")
}

/// Put a chunk into the graph. `new_nodes` counts the names this document has added so far,
/// against `limits.max_nodes_per_document`.
pub fn add_chunk(
    store: &Store,
    txn: &mut RwTxn<'_>,
    chunk: &ChunkRecord,
    limits: GraphLimits,
    new_nodes: &mut usize,
) -> Result<()> {
    let doc_label = chunk.source.rsplit('/').next().unwrap_or(&chunk.source);
    let (doc, _) = ensure_node(
        store,
        txn,
        NodeKind::Document,
        &document_node_key(&chunk.document_key),
        doc_label,
    )?;
    let label = chunk_label(chunk);
    let (node, _) = ensure_node(
        store,
        txn,
        NodeKind::Chunk,
        &chunk_node_key(chunk.id),
        &label,
    )?;
    let parent = match &chunk.heading {
        Some(heading) => {
            let title = heading.rsplit(" › ").next().unwrap_or(heading);
            let key = format!("heading:{}#{heading}", chunk.document_key);
            let (heading_node, _) = ensure_node(store, txn, NodeKind::Heading, &key, title)?;
            add_edge(store, txn, doc, EdgeKind::Contains, heading_node, 1)?;
            heading_node
        }
        None => doc,
    };
    add_edge(store, txn, parent, EdgeKind::Contains, node, 1)?;
    if let Some(session) = &chunk.session {
        let (s, _) = ensure_node(
            store,
            txn,
            NodeKind::Session,
            &format!("session:{session}"),
            session,
        )?;
        add_edge(store, txn, node, EdgeKind::FromSession, s, 1)?;
    }
    let mut mentions = extract(&chunk.text);
    mentions.extend(chunk.tags.iter().map(|t| Mention {
        kind: NodeKind::Tag,
        edge: EdgeKind::Tagged,
        label: t.clone(),
    }));
    let mut budget = limits.max_edges_per_chunk;
    let mut targets = Vec::new();
    let mut seen = HashSet::new();
    for mention in mentions {
        if budget == 0 {
            break;
        }
        let key = mention.key();
        if !seen.insert(key.clone()) {
            continue;
        }
        let exists = store.dbs.node_by_key.get(txn, &lmdb_key(&key))?.is_some();
        if !exists {
            if *new_nodes >= limits.max_nodes_per_document {
                continue;
            }
            *new_nodes += 1;
        }
        let (target, _) = ensure_node(store, txn, mention.kind, &key, &mention.label)?;
        add_edge(store, txn, node, mention.edge, target, 1)?;
        targets.push(target);
        budget -= 1;
    }
    for (a, b) in co_occurrence_pairs(targets, budget) {
        add_edge(store, txn, a, EdgeKind::CoOccurs, b, 1)?;
        add_edge(store, txn, b, EdgeKind::CoOccurs, a, 1)?;
    }
    Ok(())
}

/// Take a chunk out of the graph, with its co-occurrence counts and any node left orphaned.
pub fn remove_chunk(store: &Store, txn: &mut RwTxn<'_>, chunk: ChunkId) -> Result<()> {
    let key = chunk_node_key(chunk);
    let Some(node) = store.dbs.node_by_key.get(txn, &key)? else {
        return Ok(());
    };
    let outgoing = edges_of(store, txn, node, Direction::Out)?;
    let incoming = edges_of(store, txn, node, Direction::In)?;
    let mut targets = Vec::new();
    let mut used = 0;
    for (kind, to, _) in &outgoing {
        if matches!(
            kind,
            EdgeKind::Mentions | EdgeKind::LinksTo | EdgeKind::Tagged
        ) {
            targets.push(*to);
            used += 1;
        }
    }
    // The same budget `add_chunk` had left for pairs, so exactly its pairs come off.
    let budget = store_limits_budget(store, txn)?.saturating_sub(used);
    for (a, b) in co_occurrence_pairs(targets, budget) {
        remove_edge(store, txn, a, EdgeKind::CoOccurs, b, 1)?;
        remove_edge(store, txn, b, EdgeKind::CoOccurs, a, 1)?;
    }
    for (kind, to, count) in outgoing {
        remove_edge(store, txn, node, kind, to, count)?;
    }
    for (kind, from, count) in incoming {
        let parent = store.dbs.nodes.get(txn, &from)?;
        if kind == EdgeKind::Contains && parent.is_some_and(|p| p.kind == NodeKind::Heading) {
            // The document's edge to the heading counts the chunks under it.
            for (up_kind, doc, _) in edges_of(store, txn, from, Direction::In)? {
                if up_kind == EdgeKind::Contains {
                    remove_edge(store, txn, doc, EdgeKind::Contains, from, 1)?;
                }
            }
        }
        remove_edge(store, txn, from, kind, node, count)?;
    }
    store.dbs.nodes.delete(txn, &node)?;
    store.dbs.node_by_key.delete(txn, &key)?;
    Ok(())
}

/// The per-chunk edge budget the graph was built with (recorded at build time, so changing
/// the setting later does not unbalance removals).
fn store_limits_budget(store: &Store, txn: &RoTxn<'_>) -> Result<usize> {
    Ok(store
        .meta_get::<usize>(txn, "graph_max_edges_per_chunk")?
        .unwrap_or(GraphLimits::default().max_edges_per_chunk))
}

pub fn remove_document_node(store: &Store, txn: &mut RwTxn<'_>, document_key: &str) -> Result<()> {
    let key = document_node_key(document_key);
    let key = lmdb_key(&key);
    if let Some(node) = store.dbs.node_by_key.get(txn, &key)? {
        for (kind, to, count) in edges_of(store, txn, node, Direction::Out)? {
            remove_edge(store, txn, node, kind, to, count)?;
        }
        store.dbs.nodes.delete(txn, &node)?;
        store.dbs.node_by_key.delete(txn, &key)?;
    }
    Ok(())
}

fn chunk_label(chunk: &ChunkRecord) -> String {
    let first_line = chunk
        .text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut label: String = first_line.chars().take(60).collect();
    if first_line.chars().count() > 60 {
        label.push('…');
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str) -> Vec<(NodeKind, String)> {
        extract(text)
            .into_iter()
            .map(|m| (m.kind, m.label))
            .collect()
    }

    #[test]
    fn finds_links_tags_mentions_and_names() {
        let found = labels(
            "Met Ada Lovelace with @grace about [[Analytical Engine]] and #history, \
             see [notes](https://example.org/notes). The Difference Engine too.",
        );
        assert_eq!(
            found,
            vec![
                (NodeKind::Entity, "Ada Lovelace".into()),
                (NodeKind::Entity, "@grace".into()),
                (NodeKind::Entity, "Analytical Engine".into()),
                (NodeKind::Tag, "history".into()),
                (NodeKind::Link, "https://example.org/notes".into()),
                (NodeKind::Entity, "Difference Engine".into()),
            ]
        );
    }

    #[test]
    fn ignores_emails_headings_and_sentence_starts() {
        let found = labels("# Heading\nmail bob@example.com now. The Cat sat. Rust is #1");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn co_occurrence_pairs_are_ordered_and_bounded() {
        assert_eq!(
            co_occurrence_pairs(vec![3, 1, 2, 1], 10),
            vec![(1, 2), (1, 3), (2, 3)]
        );
        assert_eq!(co_occurrence_pairs(vec![1, 2, 3, 4], 2).len(), 2);
    }
}
