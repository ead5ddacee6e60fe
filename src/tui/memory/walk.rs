//! The memory pane's graph walk: the centre's neighbour rows, walking to a hit, a top node,
//! a neighbour or a chunk (each step a breadcrumb), going back, and the edge-kind filter.

use std::time::Instant;

use serde_json::json;

use super::{
    CHUNK_LIMIT, Command, Crumb, GraphFocus, MemoryState, Mode, NEIGHBOR_LIMIT, NeighborRow,
    next_filter, node_label,
};
use crate::engine::Method;
use crate::engine::memory::{MemoryGraphNeighbors, MemoryGraphNode};
use crate::memory::types::{NodeRef, NodeView};

fn node_key(node: &NodeView) -> NodeRef {
    NodeRef::Id(node.id)
}

impl MemoryState {
    /// The centre's neighbours, grouped by edge kind and direction, then by label.
    pub fn neighbor_rows(&self) -> Vec<NeighborRow<'_>> {
        let Some(result) = &self.graph.neighbors else {
            return Vec::new();
        };
        let center = result.center.id;
        let mut rows: Vec<NeighborRow<'_>> = Vec::new();
        for edge in &result.edges {
            let (other, outgoing) = if edge.from == center {
                (edge.to, true)
            } else if edge.to == center {
                (edge.from, false)
            } else {
                continue;
            };
            let Some(node) = result.nodes.iter().find(|n| n.id == other) else {
                continue;
            };
            if rows
                .iter()
                .any(|r| r.kind == edge.kind && r.outgoing == outgoing && r.node.id == other)
            {
                continue;
            }
            rows.push(NeighborRow {
                kind: edge.kind,
                outgoing,
                count: edge.count,
                node,
            });
        }
        rows.sort_by(|a, b| {
            (a.kind, !a.outgoing, a.node.kind, &a.node.label).cmp(&(
                b.kind,
                !b.outgoing,
                b.node.kind,
                &b.node.label,
            ))
        });
        rows
    }

    /// Ask for a node's neighbourhood and its chunks.
    pub(super) fn load_node(&mut self, node: NodeRef) -> Vec<Command> {
        let edge_kinds: Vec<&str> = self.graph.filter.iter().map(|k| k.as_str()).collect();
        let (tag, neighbors) = self.tagged(
            MemoryGraphNeighbors::NAME,
            json!({ "node": node, "depth": 1, "edgeKinds": edge_kinds, "limit": NEIGHBOR_LIMIT }),
        );
        self.tags.neighbors = tag;
        let (tag, details) = self.tagged(
            MemoryGraphNode::NAME,
            json!({ "node": node, "chunkLimit": CHUNK_LIMIT }),
        );
        self.tags.node = tag;
        self.graph.loading = true;
        vec![neighbors, details]
    }

    /// Walk to a node: it becomes the centre and the last crumb.
    fn go_to(&mut self, node: NodeRef, label: String) -> Vec<Command> {
        if let Some(current) = self.graph.trail.last_mut() {
            current.selected = self.graph.selected;
        }
        self.mode = Mode::Graph;
        self.graph.trail.push(Crumb {
            node: node.clone(),
            label,
            selected: 0,
        });
        self.graph.focus = GraphFocus::Neighbors;
        self.graph.selected = 0;
        self.graph.chunk_selected = 0;
        self.graph.neighbors = None;
        self.graph.node = None;
        self.load_node(node)
    }

    /// Enter: open the hit or top node in the graph, follow the edge to the neighbour, or
    /// open the chunk under the cursor.
    pub fn open(&mut self, _now: Instant) -> Vec<Command> {
        match self.mode {
            Mode::Search => {
                if self.query.trim().is_empty() {
                    return self.open_top();
                }
                let Some(id) = self.selected_hit().map(|h| h.chunk_id) else {
                    return Vec::new();
                };
                self.go_to(NodeRef::Key(format!("chunk:{id}")), format!("chunk #{id}"))
            }
            Mode::Graph if self.graph.trail.is_empty() => self.open_top(),
            Mode::Graph => match self.graph.focus {
                GraphFocus::Neighbors => {
                    let rows = self.neighbor_rows();
                    let Some(row) = rows.get(self.graph.selected.min(rows.len().saturating_sub(1)))
                    else {
                        return Vec::new();
                    };
                    let (node, label) = (node_key(row.node), node_label(row.node));
                    self.go_to(node, label)
                }
                GraphFocus::Chunks => {
                    let Some(chunk) = self.graph.node.as_ref().and_then(|n| {
                        n.chunks.get(
                            self.graph
                                .chunk_selected
                                .min(n.chunks.len().saturating_sub(1)),
                        )
                    }) else {
                        return Vec::new();
                    };
                    let id = chunk.chunk_id;
                    self.go_to(NodeRef::Key(format!("chunk:{id}")), format!("chunk #{id}"))
                }
            },
        }
    }

    fn open_top(&mut self) -> Vec<Command> {
        let nodes = self.top_nodes();
        let Some(node) = nodes.get(self.selected.min(nodes.len().saturating_sub(1))) else {
            return Vec::new();
        };
        let (node, label) = (node_key(node), node_label(node));
        self.go_to(node, label)
    }

    /// Back along the breadcrumbs; from the first crumb, back to the search.
    pub fn back(&mut self) -> Vec<Command> {
        if self.mode != Mode::Graph {
            return Vec::new();
        }
        if self.graph.focus == GraphFocus::Chunks {
            self.graph.focus = GraphFocus::Neighbors;
            return Vec::new();
        }
        self.graph.trail.pop();
        self.graph.neighbors = None;
        self.graph.node = None;
        self.graph.chunk_selected = 0;
        match self.graph.trail.last().cloned() {
            Some(crumb) => {
                self.graph.selected = crumb.selected;
                self.load_node(crumb.node)
            }
            None => {
                self.graph.selected = 0;
                self.graph.loading = false;
                self.tags.neighbors = 0;
                self.tags.node = 0;
                self.mode = Mode::Search;
                Vec::new()
            }
        }
    }

    /// Next edge-kind filter; the centre's neighbourhood is asked for again.
    pub fn cycle_filter(&mut self) -> Vec<Command> {
        self.graph.filter = next_filter(self.graph.filter);
        self.graph.selected = 0;
        match self.graph.trail.last().cloned() {
            Some(crumb) if self.mode == Mode::Graph => {
                // The chunks do not depend on the filter: keep those we have (or the
                // answer still on its way), ask only for the neighbours.
                let node_tag = self.tags.node;
                let mut commands = self.load_node(crumb.node);
                commands.truncate(1);
                self.tags.node = node_tag;
                commands
            }
            _ => Vec::new(),
        }
    }

    /// Into the centre's chunks and back out.
    pub fn toggle_chunks(&mut self) {
        if self.mode == Mode::Graph && !self.graph.trail.is_empty() {
            self.graph.focus = match self.graph.focus {
                GraphFocus::Neighbors => GraphFocus::Chunks,
                GraphFocus::Chunks => GraphFocus::Neighbors,
            };
        }
    }
}
