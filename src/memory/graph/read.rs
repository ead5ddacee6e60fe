//! Reading the graph: a node's edges in either direction, resolving a node given by id or
//! key, its neighbourhood (breadth first, bounded), the shortest path between two nodes,
//! the chunks under a node, and the most connected nodes.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use heed::RoTxn;

use crate::memory::store::{NodeRecord, Result, Store, lmdb_key, parse_edge_key};
use crate::memory::types::{ChunkId, EdgeKind, EdgeView, NodeId, NodeKind, NodeRef, NodeView};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
}

/// `(kind, other node, count)` for every edge of `node` in one direction.
pub fn edges_of(
    store: &Store,
    txn: &RoTxn<'_>,
    node: NodeId,
    direction: Direction,
) -> Result<Vec<(EdgeKind, NodeId, u32)>> {
    let db = match direction {
        Direction::Out => store.dbs.edges_out,
        Direction::In => store.dbs.edges_in,
    };
    let prefix = node.to_be_bytes();
    let mut edges = Vec::new();
    for entry in db.prefix_iter(txn, &prefix)? {
        let (key, count) = entry?;
        if let Some((_, kind, other)) = parse_edge_key(key) {
            edges.push((kind, other, count));
        }
    }
    Ok(edges)
}

pub fn node_view(record: &NodeRecord, depth: Option<u32>) -> NodeView {
    NodeView {
        id: record.id,
        kind: record.kind,
        key: record.key.clone(),
        label: record.label.clone(),
        degree: record.degree,
        depth,
    }
}

pub fn resolve(store: &Store, txn: &RoTxn<'_>, node: &NodeRef) -> Result<Option<NodeRecord>> {
    let id = match node {
        NodeRef::Id(id) => Some(*id),
        NodeRef::Key(key) => {
            let exact = store.dbs.node_by_key.get(txn, &lmdb_key(key))?;
            match exact {
                Some(id) => Some(id),
                // `entity:Ada Lovelace` finds `entity:ada lovelace`.
                None => match key.split_once(':') {
                    Some((kind, label)) => {
                        let folded = format!("{kind}:{}", label.to_lowercase());
                        store.dbs.node_by_key.get(txn, &lmdb_key(&folded))?
                    }
                    None => None,
                },
            }
        }
    };
    match id {
        Some(id) => Ok(store.dbs.nodes.get(txn, &id)?),
        None => Ok(None),
    }
}

/// Both directions, merged: an undirected view for traversal.
fn adjacent(
    store: &Store,
    txn: &RoTxn<'_>,
    node: NodeId,
    kinds: &[EdgeKind],
) -> Result<Vec<EdgeView>> {
    let allowed = |k: &EdgeKind| kinds.is_empty() || kinds.contains(k);
    let mut edges = Vec::new();
    for (kind, to, count) in edges_of(store, txn, node, Direction::Out)? {
        if allowed(&kind) {
            edges.push(EdgeView {
                from: node,
                to,
                kind,
                count,
            });
        }
    }
    for (kind, from, count) in edges_of(store, txn, node, Direction::In)? {
        // co_occurs is stored both ways; its incoming twin adds nothing.
        if allowed(&kind) && kind != EdgeKind::CoOccurs {
            edges.push(EdgeView {
                from,
                to: node,
                kind,
                count,
            });
        }
    }
    Ok(edges)
}

pub struct Neighborhood {
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
    pub truncated: bool,
}

/// Breadth-first to `depth` hops; nodes nearer the centre come first.
pub fn neighbors(
    store: &Store,
    txn: &RoTxn<'_>,
    center: NodeId,
    depth: u32,
    kinds: &[EdgeKind],
    limit: usize,
) -> Result<Neighborhood> {
    let mut depth_of: HashMap<NodeId, u32> = HashMap::from([(center, 0)]);
    let mut order = Vec::new();
    let mut edges = Vec::new();
    let mut edge_seen = HashSet::new();
    let mut queue = VecDeque::from([center]);
    let mut truncated = false;
    while let Some(node) = queue.pop_front() {
        let d = depth_of[&node];
        if d >= depth {
            continue;
        }
        for edge in adjacent(store, txn, node, kinds)? {
            let other = if edge.from == node {
                edge.to
            } else {
                edge.from
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = depth_of.entry(other) {
                if order.len() >= limit {
                    truncated = true;
                    continue;
                }
                slot.insert(d + 1);
                order.push(other);
                queue.push_back(other);
            }
            if edge_seen.insert((edge.from, edge.kind, edge.to)) {
                edges.push(edge);
            }
        }
    }
    let mut nodes = Vec::with_capacity(order.len());
    for id in order {
        if let Some(record) = store.dbs.nodes.get(txn, &id)? {
            nodes.push(node_view(&record, depth_of.get(&id).copied()));
        }
    }
    Ok(Neighborhood {
        nodes,
        edges,
        truncated,
    })
}

/// The shortest undirected path, as nodes and the edges between them.
pub fn shortest_path(
    store: &Store,
    txn: &RoTxn<'_>,
    from: NodeId,
    to: NodeId,
    max_depth: u32,
    kinds: &[EdgeKind],
) -> Result<Option<(Vec<NodeId>, Vec<EdgeView>)>> {
    let mut parent: HashMap<NodeId, (NodeId, EdgeView)> = HashMap::new();
    let mut depth_of: HashMap<NodeId, u32> = HashMap::from([(from, 0)]);
    let mut queue = VecDeque::from([from]);
    // Bounded so a dense graph cannot make one query walk everything.
    let mut budget = 200_000usize;
    while let Some(node) = queue.pop_front() {
        if node == to {
            break;
        }
        let d = depth_of[&node];
        if d >= max_depth {
            continue;
        }
        for edge in adjacent(store, txn, node, kinds)? {
            budget = budget.saturating_sub(1);
            let other = if edge.from == node {
                edge.to
            } else {
                edge.from
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = depth_of.entry(other) {
                slot.insert(d + 1);
                parent.insert(other, (node, edge));
                queue.push_back(other);
            }
        }
        if budget == 0 {
            break;
        }
    }
    if !depth_of.contains_key(&to) {
        return Ok(None);
    }
    let mut nodes = vec![to];
    let mut edges = Vec::new();
    let mut at = to;
    while at != from {
        let Some((prev, edge)) = parent.get(&at) else {
            return Ok(None);
        };
        edges.push(edge.clone());
        nodes.push(*prev);
        at = *prev;
    }
    nodes.reverse();
    edges.reverse();
    Ok(Some((nodes, edges)))
}

/// Chunks a node is about, in id order.
pub fn chunks_of(
    store: &Store,
    txn: &RoTxn<'_>,
    node: &NodeRecord,
    limit: usize,
) -> Result<Vec<ChunkId>> {
    let chunk_id = |record: &NodeRecord| {
        record
            .key
            .strip_prefix("chunk:")
            .and_then(|id| id.parse::<ChunkId>().ok())
    };
    if node.kind == NodeKind::Chunk {
        return Ok(chunk_id(node).into_iter().collect());
    }
    let mut ids = BTreeSet::new();
    let mut frontier = vec![node.id];
    // Documents reach chunks through headings: two hops of `contains` at most.
    for _ in 0..2 {
        let mut next = Vec::new();
        for id in frontier {
            for edge in adjacent(store, txn, id, &[])? {
                if edge.kind == EdgeKind::CoOccurs {
                    continue;
                }
                let other = if edge.from == id { edge.to } else { edge.from };
                if let Some(record) = store.dbs.nodes.get(txn, &other)? {
                    match record.kind {
                        NodeKind::Chunk => {
                            ids.extend(chunk_id(&record));
                        }
                        NodeKind::Heading if edge.kind == EdgeKind::Contains => next.push(other),
                        _ => {}
                    }
                }
            }
        }
        frontier = next;
    }
    Ok(ids.into_iter().take(limit).collect())
}

pub fn top(
    store: &Store,
    txn: &RoTxn<'_>,
    kind: Option<NodeKind>,
    limit: usize,
) -> Result<Vec<NodeView>> {
    let mut best: Vec<NodeRecord> = Vec::new();
    for entry in store.dbs.nodes.iter(txn)? {
        let (_, record) = entry?;
        let wanted = match kind {
            Some(k) => record.kind == k,
            None => record.kind != NodeKind::Chunk,
        };
        if wanted {
            best.push(record);
            if best.len() > limit * 4 + 64 {
                best.sort_by(|a, b| b.degree.cmp(&a.degree).then(a.id.cmp(&b.id)));
                best.truncate(limit);
            }
        }
    }
    best.sort_by(|a, b| b.degree.cmp(&a.degree).then(a.id.cmp(&b.id)));
    best.truncate(limit);
    Ok(best.iter().map(|r| node_view(r, None)).collect())
}
