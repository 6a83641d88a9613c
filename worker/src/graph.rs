//! The ExCamera\[N,x\] plan as data: a [`JobGraph`] of (chunk, phase) nodes
//! and the edges along which their outputs flow.
//!
//! The video is cut into chunks of N frames; every x-th chunk heads a
//! group and keeps its key frame. Every chunk has a phase-1 node
//! ([`Phase::Encode`], from a key frame). A chunk that does not head its
//! group also has a phase-2 node ([`Phase::EncodeGivenState`]: its first
//! frame again, given its predecessor's phase-1 state) and a phase-3 node
//! ([`Phase::Rebase`]: given its predecessor's true final state). The
//! edges:
//!
//! - `Encode(i) -> GivenState(i)`: phase 2 keeps phase 1's decisions;
//! - `Encode(i-1) -> GivenState(i)`: the predecessor's phase-1 state;
//! - `GivenState(i) -> Rebase(i)`: phase 3 keeps phase 2's decisions;
//! - `final(i-1) -> Rebase(i)`: the predecessor's true final state, where
//!   `final(j)` is `Encode(j)` for a group head and `Rebase(j)` otherwise.
//!
//! Everything that runs or models a job walks this one graph: the local
//! thread pool ([`Frontier`] picks what is ready), the serial reference
//! encoder (`run::encode_serially`, in [`JobGraph::topological`] order),
//! each worker task (`run::run_task`: its chunk's nodes in phase order,
//! each awaiting the hand-off [`JobGraph::awaits`] names), the
//! distributed scheduler (chain order through [`JobGraph::chain_pred`])
//! and the planner's simulator. Every node runs through
//! [`JobGraph::run_node`]. Each node is a pure function of its
//! inputs, so every walk gives the same bytes.

use std::collections::BTreeSet;
use std::ops::Range;

use thiserror::Error;

use excam_codec::encode::encoder::EncoderConfig;
use excam_codec::{DecoderState, Image};

use crate::chunk::{
    encode_chunk, encode_given_state_chunk, rebase_chunk, ChunkError, ChunkPlan, Coded, Phase,
};

/// A job shape that has no graph.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GraphError {
    /// N or x is zero.
    #[error("chunk frames (N) and group chunks (x) must be at least 1, not N={chunk_frames} x={group_chunks}")]
    ZeroSize {
        /// N.
        chunk_frames: usize,
        /// x.
        group_chunks: usize,
    },
    /// The clip is empty.
    #[error("no frames to encode")]
    NoFrames,
}

/// One unit of work: a chunk's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// Chunk index.
    pub chunk: usize,
    /// Phase.
    pub phase: Phase,
}

impl Node {
    /// `Encode(chunk)`.
    pub fn encode(chunk: usize) -> Node {
        Node {
            chunk,
            phase: Phase::Encode,
        }
    }

    /// `GivenState(chunk)`.
    pub fn given_state(chunk: usize) -> Node {
        Node {
            chunk,
            phase: Phase::EncodeGivenState,
        }
    }

    /// `Rebase(chunk)`.
    pub fn rebase(chunk: usize) -> Node {
        Node {
            chunk,
            phase: Phase::Rebase,
        }
    }

    /// Scheduling priority, smallest first: the serial chain (phase 3)
    /// before phase 2 before phase 1, then lower chunks first, so the chain
    /// advances while later chunks still encode.
    fn priority(self) -> (usize, usize) {
        (2 - self.phase.index(), self.chunk)
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chunk {} {}", self.chunk, self.phase)
    }
}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Node {
    /// By `Node::priority`: phase 3 first, then lower chunks.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority().cmp(&other.priority())
    }
}

/// The two states a chunk hands to its successor in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandOff {
    /// Its phase-1 final state (read by the successor's phase 2).
    Phase1 = 0,
    /// Its true final state (read by the successor's phase 3).
    Final = 1,
}

/// The ExCamera\[N,x\] job over `frames` frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobGraph {
    frames: usize,
    chunk_frames: usize,
    group_chunks: usize,
    chunks: usize,
}

impl JobGraph {
    /// The graph of ExCamera[`chunk_frames`, `group_chunks`] over `frames`
    /// frames.
    ///
    /// # Errors
    /// N or x is zero, or there are no frames.
    pub fn new(
        frames: usize,
        chunk_frames: usize,
        group_chunks: usize,
    ) -> Result<JobGraph, GraphError> {
        if chunk_frames == 0 || group_chunks == 0 {
            return Err(GraphError::ZeroSize {
                chunk_frames,
                group_chunks,
            });
        }
        if frames == 0 {
            return Err(GraphError::NoFrames);
        }
        Ok(JobGraph {
            frames,
            chunk_frames,
            group_chunks,
            chunks: frames.div_ceil(chunk_frames),
        })
    }

    /// Frames in the job.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// N.
    pub fn chunk_frames(&self) -> usize {
        self.chunk_frames
    }

    /// x.
    pub fn group_chunks(&self) -> usize {
        self.group_chunks
    }

    /// Chunks in the job.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Where chunk `i` sits, as the phase functions take it.
    pub fn plan(&self, i: usize) -> ChunkPlan {
        ChunkPlan {
            index: i,
            chunks: self.chunks,
            chunk_frames: self.chunk_frames,
            group_chunks: self.group_chunks,
        }
    }

    /// The frames of chunk `i` (the last chunk may be short).
    pub fn frame_range(&self, i: usize) -> Range<usize> {
        let start = (i * self.chunk_frames).min(self.frames);
        start..((i + 1) * self.chunk_frames).min(self.frames)
    }

    /// Whether chunk `i` heads its group (keeps its key frame, has only a
    /// phase-1 node).
    pub fn is_head(&self, i: usize) -> bool {
        i.is_multiple_of(self.group_chunks)
    }

    /// The chunk whose final state chunk `i` starts from: `i - 1` unless
    /// `i` heads its group.
    pub fn chain_pred(&self, i: usize) -> Option<usize> {
        (!self.is_head(i)).then(|| i - 1)
    }

    /// The chunk that continues from chunk `i`'s states, if any.
    pub fn chain_succ(&self, i: usize) -> Option<usize> {
        (i + 1 < self.chunks && !self.is_head(i + 1)).then_some(i + 1)
    }

    /// The order to start chunks in when not all can start at once:
    /// position-major (every group's head, then every group's second
    /// chunk, ...). A chunk's chain predecessor always comes before it, so
    /// a started chunk never waits for one that has not started; and the
    /// chunks a chain reaches last start last, where a slow ramp-up
    /// (Lambda adds 1,000 environments per 10 s) delays the job least.
    pub fn launch_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.chunks).collect();
        order.sort_by_key(|&i| (i % self.group_chunks, i));
        order
    }

    /// The hand-off `node` waits for: (the chunk that sends it, which
    /// one). `None` for phase 1, which needs no state.
    pub fn awaits(&self, node: Node) -> Option<(usize, HandOff)> {
        match node.phase {
            Phase::Encode => None,
            Phase::EncodeGivenState => Some((node.chunk - 1, HandOff::Phase1)),
            Phase::Rebase => Some((node.chunk - 1, HandOff::Final)),
        }
    }

    /// The node whose output is chunk `i`'s frames and final state.
    pub fn final_node(&self, i: usize) -> Node {
        if self.is_head(i) {
            Node::encode(i)
        } else {
            Node::rebase(i)
        }
    }

    /// Whether `node` is part of the job.
    pub fn contains(&self, node: Node) -> bool {
        node.chunk < self.chunks && (node.phase == Phase::Encode || !self.is_head(node.chunk))
    }

    /// Chunk `i`'s nodes, in phase order.
    pub fn chunk_nodes(&self, i: usize) -> impl Iterator<Item = Node> + '_ {
        Phase::ALL
            .into_iter()
            .map(move |phase| Node { chunk: i, phase })
            .filter(move |n| self.contains(*n))
    }

    /// Every node, chunk by chunk.
    pub fn nodes(&self) -> impl Iterator<Item = Node> + '_ {
        (0..self.chunks).flat_map(move |i| self.chunk_nodes(i))
    }

    /// The nodes `node` takes its inputs from (its in-edges).
    pub fn inputs(&self, node: Node) -> Vec<Node> {
        let i = node.chunk;
        match node.phase {
            Phase::Encode => vec![],
            Phase::EncodeGivenState => vec![Node::encode(i), Node::encode(i - 1)],
            Phase::Rebase => vec![Node::given_state(i), self.final_node(i - 1)],
        }
    }

    /// The nodes that take `node`'s output (its out-edges).
    pub fn outputs(&self, node: Node) -> Vec<Node> {
        let i = node.chunk;
        let mut out = Vec::with_capacity(2);
        match node.phase {
            Phase::Encode => {
                if !self.is_head(i) {
                    out.push(Node::given_state(i));
                }
                if let Some(s) = self.chain_succ(i) {
                    out.push(Node::given_state(s));
                }
            }
            Phase::EncodeGivenState => out.push(Node::rebase(i)),
            Phase::Rebase => {}
        }
        if self.final_node(i) == node {
            if let Some(s) = self.chain_succ(i) {
                out.push(Node::rebase(s));
            }
        }
        out
    }

    /// Every edge (from, to).
    pub fn edges(&self) -> Vec<(Node, Node)> {
        self.nodes()
            .flat_map(|n| self.inputs(n).into_iter().map(move |m| (m, n)))
            .collect()
    }

    /// A topological order: every chunk's phase 1, then chunk by chunk
    /// phases 2 and 3 (the order of one serial worker).
    pub fn topological(&self) -> Vec<Node> {
        let mut order: Vec<Node> = (0..self.chunks).map(Node::encode).collect();
        for i in (0..self.chunks).filter(|&i| !self.is_head(i)) {
            order.push(Node::given_state(i));
            order.push(Node::rebase(i));
        }
        order
    }
}

impl JobGraph {
    /// Runs `node` on `frames` (its chunk's, [`JobGraph::frame_range`])
    /// given its inputs: phase 1 needs none; phase 2 its own phase-1
    /// output (`own`) and its predecessor's phase-1 final state (`pred`);
    /// phase 3 its own phase-2 output and its predecessor's true final
    /// state. The one place a node becomes a call of a phase function.
    ///
    /// # Errors
    /// The phase function's error, or a missing input.
    pub fn run_node(
        &self,
        node: Node,
        cfg: &EncoderConfig,
        frames: &[Image],
        own: Option<&Coded>,
        pred: Option<DecoderState>,
    ) -> Result<Coded, ChunkError> {
        let plan = self.plan(node.chunk);
        let missing = |what: &str| ChunkError::Encoder {
            phase: node.phase,
            message: format!("{node} was run without {what}"),
        };
        match node.phase {
            Phase::Encode => encode_chunk(&plan, cfg, frames),
            Phase::EncodeGivenState => encode_given_state_chunk(
                &plan,
                cfg,
                frames,
                own.ok_or_else(|| missing("its phase-1 output"))?,
                pred.ok_or_else(|| missing("its predecessor's phase-1 state"))?,
            ),
            Phase::Rebase => rebase_chunk(
                &plan,
                cfg,
                frames,
                own.ok_or_else(|| missing("its phase-2 output"))?,
                pred.ok_or_else(|| missing("its predecessor's final state"))?,
            ),
        }
    }
}

/// The state of a walk over a [`JobGraph`]: which nodes are done, and
/// which are ready to run (all their inputs done), best first.
#[derive(Clone, Debug)]
pub struct Frontier {
    graph: JobGraph,
    /// Per chunk and phase: inputs still missing.
    missing: Vec<[u8; 3]>,
    ready: BTreeSet<Node>,
    done: usize,
    total: usize,
}

impl Frontier {
    /// A walk with nothing done: every phase-1 node is ready.
    pub fn new(graph: JobGraph) -> Frontier {
        let mut missing = vec![[0u8; 3]; graph.chunks()];
        for n in graph.nodes() {
            missing[n.chunk][n.phase.index()] = graph.inputs(n).len() as u8;
        }
        Frontier {
            ready: graph
                .nodes()
                .filter(|n| graph.inputs(*n).is_empty())
                .collect(),
            total: graph.nodes().count(),
            graph,
            missing,
            done: 0,
        }
    }

    /// The graph walked.
    pub fn graph(&self) -> &JobGraph {
        &self.graph
    }

    /// Takes the best ready node (phase 3 first, then lower chunks), if any.
    pub fn pop(&mut self) -> Option<Node> {
        self.ready.pop_first()
    }

    /// Records `node` as done; its successors whose inputs are now all done
    /// become ready.
    pub fn complete(&mut self, node: Node) {
        self.done += 1;
        for s in self.graph.outputs(node) {
            let m = &mut self.missing[s.chunk][s.phase.index()];
            *m -= 1;
            if *m == 0 {
                self.ready.insert(s);
            }
        }
    }

    /// Whether every node is done.
    pub fn finished(&self) -> bool {
        self.done == self.total
    }

    /// Nodes done so far.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Nodes in the graph.
    pub fn total(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_order_is_position_major_and_predecessors_come_first() {
        // 7 chunks, x = 3: groups {0,1,2} {3,4,5} {6}.
        let g = JobGraph::new(14, 2, 3).unwrap();
        assert_eq!(g.launch_order(), vec![0, 3, 6, 1, 4, 2, 5]);
        for shape in [(100, 6, 16), (37, 2, 5), (10, 1, 1), (9, 4, 100)] {
            let g = JobGraph::new(shape.0, shape.1, shape.2).unwrap();
            let order = g.launch_order();
            let mut seen = vec![false; g.chunks()];
            for &c in &order {
                if let Some(p) = g.chain_pred(c) {
                    assert!(seen[p], "{shape:?}: {c} before its predecessor {p}");
                }
                seen[c] = true;
            }
            assert!(seen.iter().all(|&s| s), "{shape:?}: every chunk once");
            assert_eq!(order.len(), g.chunks());
        }
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert_eq!(
            JobGraph::new(10, 0, 3),
            Err(GraphError::ZeroSize {
                chunk_frames: 0,
                group_chunks: 3
            })
        );
        assert!(JobGraph::new(10, 2, 0).is_err());
        assert_eq!(JobGraph::new(0, 2, 3), Err(GraphError::NoFrames));
    }

    #[test]
    fn excamera_6_16_over_40_chunks_has_the_expected_nodes_and_edges() {
        // 238 frames: 40 chunks, the last one 4 frames long; heads 0, 16, 32.
        let g = JobGraph::new(238, 6, 16).unwrap();
        assert_eq!(g.chunks(), 40);
        assert_eq!(g.frame_range(39), 234..238);
        assert_eq!(g.frame_range(0), 0..6);
        let heads: Vec<usize> = (0..40).filter(|&i| g.is_head(i)).collect();
        assert_eq!(heads, [0, 16, 32]);
        // One node per head, three per other chunk.
        assert_eq!(g.nodes().count(), 3 + 37 * 3);
        let nodes: BTreeSet<Node> = g.nodes().collect();
        assert!(!nodes.contains(&Node::given_state(16)));
        assert!(!nodes.contains(&Node::rebase(0)));
        assert!(nodes.contains(&Node::rebase(17)));
        // Two inputs per phase-2 and phase-3 node.
        let edges = g.edges();
        assert_eq!(edges.len(), 37 * 4);
        for (from, to) in [
            (Node::encode(16), Node::given_state(17)),
            (Node::encode(17), Node::given_state(17)),
            (Node::given_state(17), Node::rebase(17)),
            (Node::encode(16), Node::rebase(17)),
            (Node::rebase(17), Node::rebase(18)),
            (Node::encode(14), Node::given_state(15)),
            (Node::rebase(14), Node::rebase(15)),
        ] {
            assert!(edges.contains(&(from, to)), "{from} -> {to}");
        }
        // No hand-off across a group boundary.
        assert!(!edges.iter().any(|(f, t)| f.chunk == 15 && t.chunk == 16));
        assert_eq!(g.chain_pred(16), None);
        assert_eq!(g.chain_pred(17), Some(16));
        assert_eq!(g.chain_succ(15), None);
        assert_eq!(g.chain_succ(39), None);
        assert_eq!(g.awaits(Node::encode(17)), None);
        assert_eq!(g.awaits(Node::given_state(17)), Some((16, HandOff::Phase1)));
        assert_eq!(g.awaits(Node::rebase(18)), Some((17, HandOff::Final)));
        // Each awaited hand-off is the one in-edge from another chunk.
        for n in g.nodes().filter(|n| n.phase != Phase::Encode) {
            let (c, _) = g.awaits(n).unwrap();
            let across: Vec<Node> = g
                .inputs(n)
                .into_iter()
                .filter(|m| m.chunk != n.chunk)
                .collect();
            assert_eq!(across.len(), 1);
            assert_eq!(across[0].chunk, c);
        }
        // outputs() is inputs() reversed.
        for n in g.nodes() {
            for m in g.outputs(n) {
                assert!(g.inputs(m).contains(&n), "{n} -> {m}");
            }
        }
        let out_edges: usize = g.nodes().map(|n| g.outputs(n).len()).sum();
        assert_eq!(out_edges, edges.len());
    }

    #[test]
    fn excamera_2_3_and_a_single_chunk() {
        let g = JobGraph::new(7, 2, 3).unwrap();
        // Chunks 0..4 (the last has one frame), heads 0 and 3.
        assert_eq!(g.chunks(), 4);
        assert_eq!(
            g.nodes().collect::<Vec<_>>(),
            [
                Node::encode(0),
                Node::encode(1),
                Node::given_state(1),
                Node::rebase(1),
                Node::encode(2),
                Node::given_state(2),
                Node::rebase(2),
                Node::encode(3),
            ]
        );
        assert_eq!(
            g.inputs(Node::rebase(2)),
            [Node::given_state(2), Node::rebase(1)]
        );
        assert_eq!(
            g.inputs(Node::rebase(1)),
            [Node::given_state(1), Node::encode(0)]
        );
        let one = JobGraph::new(5, 8, 16).unwrap();
        assert_eq!(one.nodes().collect::<Vec<_>>(), [Node::encode(0)]);
        assert!(one.edges().is_empty());
    }

    #[test]
    fn topological_order_respects_every_edge() {
        for (frames, n, x) in [(238, 6, 16), (7, 2, 3), (30, 1, 1), (30, 1, 30), (13, 4, 2)] {
            let g = JobGraph::new(frames, n, x).unwrap();
            let order = g.topological();
            assert_eq!(order.len(), g.nodes().count());
            let at = |m: Node| order.iter().position(|o| *o == m).unwrap();
            for (from, to) in g.edges() {
                assert!(at(from) < at(to), "[{n},{x}] {from} -> {to}");
            }
        }
    }

    #[test]
    fn the_frontier_walks_every_node_once_chain_first() {
        let g = JobGraph::new(60, 2, 4).unwrap();
        let mut f = Frontier::new(g);
        // At first only phase-1 nodes, lowest chunk first.
        assert_eq!(f.pop(), Some(Node::encode(0)));
        f.complete(Node::encode(0));
        assert_eq!(f.pop(), Some(Node::encode(1)));
        f.complete(Node::encode(1));
        // Phase 2 of chunk 1 now beats phase 1 of chunk 2.
        assert_eq!(f.pop(), Some(Node::given_state(1)));
        f.complete(Node::given_state(1));
        // And phase 3 beats both.
        assert_eq!(f.pop(), Some(Node::rebase(1)));
        f.complete(Node::rebase(1));
        let mut seen = vec![
            Node::encode(0),
            Node::encode(1),
            Node::given_state(1),
            Node::rebase(1),
        ];
        while let Some(n) = f.pop() {
            // Every input of a popped node is done already.
            for m in g.inputs(n) {
                assert!(seen.contains(&m), "{n} before its input {m}");
            }
            seen.push(n);
            f.complete(n);
        }
        assert!(f.finished());
        assert_eq!(seen.len(), g.nodes().count());
        assert_eq!(f.done(), f.total());
    }

    #[test]
    fn the_frontier_waits_for_every_input() {
        let g = JobGraph::new(6, 2, 3).unwrap();
        let mut f = Frontier::new(g);
        // Encode(2) done but not Encode(1): GivenState(2) is not ready.
        let mut popped = vec![];
        while let Some(n) = f.pop() {
            popped.push(n);
        }
        assert_eq!(popped, [Node::encode(0), Node::encode(1), Node::encode(2)]);
        f.complete(Node::encode(2));
        f.complete(Node::encode(1));
        // GivenState(1) needs Encode(0), which is not done.
        assert_eq!(f.pop(), Some(Node::given_state(2)));
        assert_eq!(f.pop(), None);
        f.complete(Node::encode(0));
        assert_eq!(f.pop(), Some(Node::given_state(1)));
        assert!(!f.finished());
    }
}
