//! Overlay graphs and the metrics the Cyclon paper measures on them.
//!
//! A [`Graph`] is a directed graph over dense node indices `0..n` (each node's out-links are
//! the entries of its view). Degree statistics are taken on the directed graph; clustering,
//! path lengths and connected components on the undirected graph it induces
//! ([`Undirected`]), as in the paper.

use rand::{Rng, RngExt, seq::SliceRandom};

use super::prefetch::prefetch;

/// A directed graph in compressed sparse row form: the out-links of node `v` are
/// `targets[offsets[v]..offsets[v + 1]]`.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    offsets: Vec<usize>,
    targets: Vec<u32>,
}

impl Graph {
    /// Builds a graph from each node's out-links, in node order. Every target must be below
    /// the number of lists.
    pub fn from_out_links<L>(lists: impl IntoIterator<Item = L>) -> Self
    where
        L: IntoIterator<Item = u32>,
    {
        let mut offsets = vec![0];
        let mut targets = Vec::new();
        for list in lists {
            targets.extend(list);
            offsets.push(targets.len());
        }
        let n = offsets.len() - 1;
        assert!(
            targets.iter().all(|&t| (t as usize) < n),
            "link to a node outside the graph"
        );
        Self { offsets, targets }
    }

    /// A uniform random `c`-out graph: every node links to `c` distinct other nodes chosen
    /// uniformly at random (all other nodes when `n <= c`). This is the paper's reference.
    pub fn random_out<R: Rng + ?Sized>(rng: &mut R, n: usize, c: usize) -> Self {
        let out = c.min(n.saturating_sub(1));
        let mut offsets = Vec::with_capacity(n + 1);
        let mut targets = Vec::with_capacity(n * out);
        offsets.push(0);
        for v in 0..n {
            let start = targets.len();
            while targets.len() - start < out {
                // Rejection sampling: `out` is tiny compared with `n` in every useful case.
                let t = rng.random_range(0..n as u32);
                if t as usize != v && !targets[start..].contains(&t) {
                    targets.push(t);
                }
            }
            offsets.push(targets.len());
        }
        Self { offsets, targets }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of directed links.
    pub fn link_count(&self) -> usize {
        self.targets.len()
    }

    /// The out-links of `v`.
    pub fn out_links(&self, v: usize) -> &[u32] {
        &self.targets[self.offsets[v]..self.offsets[v + 1]]
    }

    /// Every directed link as `(source, target)`.
    pub fn links(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.node_count())
            .flat_map(move |v| self.out_links(v).iter().map(move |&t| (v as u32, t)))
    }

    /// The in-degree of every node.
    pub fn in_degrees(&self) -> Vec<u32> {
        let mut degrees = vec![0u32; self.node_count()];
        for &t in &self.targets {
            degrees[t as usize] += 1;
        }
        degrees
    }

    /// Statistics of the in-degree distribution.
    pub fn in_degree_stats(&self) -> DegreeStats {
        DegreeStats::from_degrees(&self.in_degrees())
    }

    /// The undirected graph: `u — v` when `u → v` or `v → u`, without duplicates.
    pub fn undirected(&self) -> Undirected {
        let n = self.node_count();
        let mut degree = vec![0usize; n + 1];
        for (u, v) in self.links() {
            degree[u as usize] += 1;
            degree[v as usize] += 1;
        }
        let mut offsets = Vec::with_capacity(n + 1);
        let mut total = 0;
        offsets.push(0);
        for d in &degree[..n] {
            total += d;
            offsets.push(total);
        }
        let mut fill = offsets[..n].to_vec();
        let mut adjacency = vec![0u32; total];
        for (u, v) in self.links() {
            adjacency[fill[u as usize]] = v;
            fill[u as usize] += 1;
            adjacency[fill[v as usize]] = u;
            fill[v as usize] += 1;
        }
        // Sort and deduplicate each list (mutual links appear twice), compacting in place.
        let mut write = 0;
        let mut compact_offsets = Vec::with_capacity(n + 1);
        compact_offsets.push(0);
        for v in 0..n {
            let (start, end) = (offsets[v], offsets[v + 1]);
            adjacency[start..end].sort_unstable();
            let mut last = None;
            for i in start..end {
                let x = adjacency[i];
                if last != Some(x) {
                    adjacency[write] = x;
                    write += 1;
                    last = Some(x);
                }
            }
            compact_offsets.push(write);
        }
        adjacency.truncate(write);
        adjacency.shrink_to_fit();
        Undirected {
            offsets: compact_offsets,
            adjacency,
        }
    }
}

/// Mean, standard deviation, extremes and histogram of a degree distribution.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DegreeStats {
    /// Mean degree.
    pub mean: f64,
    /// Standard deviation (of the population: all nodes are counted).
    pub std_dev: f64,
    /// Smallest degree.
    pub min: u32,
    /// Largest degree.
    pub max: u32,
    /// `histogram[d]` nodes have degree `d`.
    pub histogram: Vec<u64>,
}

impl DegreeStats {
    /// Statistics of the given degrees (all zero for an empty slice).
    pub fn from_degrees(degrees: &[u32]) -> Self {
        if degrees.is_empty() {
            return Self::default();
        }
        let max = degrees.iter().copied().max().unwrap_or(0);
        let min = degrees.iter().copied().min().unwrap_or(0);
        let mut histogram = vec![0u64; max as usize + 1];
        let mut sum = 0u64;
        for &d in degrees {
            histogram[d as usize] += 1;
            sum += u64::from(d);
        }
        let n = degrees.len() as f64;
        let mean = sum as f64 / n;
        let variance = histogram
            .iter()
            .enumerate()
            .map(|(d, &count)| count as f64 * (d as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        Self {
            mean,
            std_dev: variance.sqrt(),
            min,
            max,
            histogram,
        }
    }
}

/// Average shortest path length estimated by breadth-first search from sampled sources.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PathStats {
    /// Number of BFS sources.
    pub sources: usize,
    /// Mean hop distance over all (source, reachable other node) pairs.
    pub mean: f64,
    /// Largest distance seen from any source (a lower bound on the diameter).
    pub max: u32,
    /// (source, node) pairs with no path between them.
    pub unreachable: u64,
}

/// Number and size of connected components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComponentStats {
    /// Number of connected components (isolated nodes included).
    pub count: usize,
    /// Nodes in the largest one.
    pub largest: usize,
}

/// The share of surviving nodes in the largest connected component after removing a fraction
/// of nodes at random (no healing).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RobustnessPoint {
    /// Fraction of nodes removed.
    pub removed: f64,
    /// Nodes left.
    pub survivors: usize,
    /// Largest component's share of the survivors (1 when none survive).
    pub largest_share: f64,
}

/// One bit per breadth-first search run together by [`Undirected::path_lengths`].
type Lanes = u128;

/// Searches run together by [`Undirected::path_lengths`] (the paper's 100 sources take one
/// pass).
const SOURCES_PER_PASS: usize = Lanes::BITS as usize;

/// An undirected simple graph in compressed sparse row form (sorted adjacency lists).
#[derive(Debug, Clone, Default)]
pub struct Undirected {
    offsets: Vec<usize>,
    adjacency: Vec<u32>,
}

impl Undirected {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of undirected edges.
    pub fn edge_count(&self) -> usize {
        self.adjacency.len() / 2
    }

    /// The neighbours of `v`, sorted.
    pub fn neighbours(&self, v: usize) -> &[u32] {
        &self.adjacency[self.offsets[v]..self.offsets[v + 1]]
    }

    /// The average local clustering coefficient over all nodes: for a node of degree `k`, the
    /// share of the `k(k-1)/2` pairs of its neighbours that are linked (0 when `k < 2`).
    /// Exact: every node and every pair is counted.
    pub fn clustering(&self) -> f64 {
        let n = self.node_count();
        if n == 0 {
            return 0.0;
        }
        // Each triangle v < u < w is found once, from its lowest node v: w is a higher
        // neighbour of both v and u. `triangles[x]` counts the triangles at x. The higher
        // neighbours are copied into their own compact lists first (half the links, so more
        // of them stay in the cache), and v's are marked in a bit set (n bits, which fits in
        // the cache where a per-node array would not).
        let mut offsets = Vec::with_capacity(n + 1);
        let mut higher = Vec::with_capacity(self.adjacency.len() / 2);
        offsets.push(0);
        for v in 0..n {
            let neighbours = self.neighbours(v);
            higher
                .extend_from_slice(&neighbours[neighbours.partition_point(|&u| u as usize <= v)..]);
            offsets.push(higher.len());
        }
        let higher_of = |v: usize| &higher[offsets[v]..offsets[v + 1]];
        let mut triangles = vec![0u32; n];
        let mut marked = vec![0u64; n.div_ceil(64)];
        for v in 0..n {
            let above = higher_of(v);
            if above.len() < 2 {
                continue;
            }
            for &w in above {
                marked[w as usize / 64] |= 1 << (w % 64);
            }
            for (i, &u) in above.iter().enumerate() {
                if let Some(&ahead) = above.get(i + 2) {
                    prefetch(higher.as_ptr().wrapping_add(offsets[ahead as usize]));
                }
                for &w in higher_of(u as usize) {
                    if marked[w as usize / 64] & (1 << (w % 64)) != 0 {
                        triangles[v] += 1;
                        triangles[u as usize] += 1;
                        triangles[w as usize] += 1;
                    }
                }
            }
            for &w in above {
                marked[w as usize / 64] = 0;
            }
        }
        let sum: f64 = (0..n)
            .map(|v| {
                let k = self.neighbours(v).len() as f64;
                if k < 2.0 {
                    0.0
                } else {
                    f64::from(2 * triangles[v]) / (k * (k - 1.0))
                }
            })
            .sum();
        sum / n as f64
    }

    /// The average shortest path length, by breadth-first search from `sources` nodes chosen
    /// uniformly at random without replacement (all nodes if `sources >= n`).
    ///
    /// Each search is exact. The searches run 128 at a time, level by level, as one
    /// multi-source BFS: each node holds one bit per search (reached, on the frontier), so one
    /// scan of a frontier node's links advances every search that has reached it at that level
    /// (MS-BFS, Then et al. 2014).
    pub fn path_lengths<R: Rng + ?Sized>(&self, rng: &mut R, sources: usize) -> PathStats {
        let n = self.node_count();
        let sources = sources.min(n);
        if sources == 0 {
            return PathStats::default();
        }
        let picked = rand::seq::index::sample(rng, n, sources).into_vec();
        // `seen[v]`: the searches that have reached v; `frontier[v]`: those that reached it at
        // the current level; `next[v]`: those whose frontier links to v (before removing
        // `seen[v]`).
        let mut seen = vec![0 as Lanes; n];
        let mut frontier = vec![0 as Lanes; n];
        let mut next = vec![0 as Lanes; n];
        let mut active: Vec<u32> = Vec::new();
        let mut touched: Vec<u32> = Vec::new();
        // `reached`: (source, node) pairs joined by a path, sources themselves included.
        let (mut total, mut reached, mut max) = (0u64, 0u64, 0u32);
        for batch in picked.chunks(SOURCES_PER_PASS) {
            seen.fill(0);
            active.clear();
            for (bit, &source) in batch.iter().enumerate() {
                seen[source] |= 1 << bit;
                frontier[source] |= 1 << bit;
                active.push(source as u32);
            }
            reached += batch.len() as u64;
            let mut level = 0u32;
            while !active.is_empty() {
                touched.clear();
                for &v in &active {
                    let lanes = std::mem::take(&mut frontier[v as usize]);
                    for &u in self.neighbours(v as usize) {
                        let next = &mut next[u as usize];
                        if *next == 0 {
                            touched.push(u);
                        }
                        *next |= lanes;
                    }
                }
                active.clear();
                for &u in &touched {
                    let u = u as usize;
                    let new = std::mem::take(&mut next[u]) & !seen[u];
                    if new != 0 {
                        seen[u] |= new;
                        frontier[u] = new;
                        active.push(u as u32);
                    }
                }
                if !active.is_empty() {
                    level += 1;
                    let count: u64 = active
                        .iter()
                        .map(|&u| u64::from(frontier[u as usize].count_ones()))
                        .sum();
                    reached += count;
                    total += u64::from(level) * count;
                }
            }
            max = max.max(level);
        }
        let pairs = reached - sources as u64;
        PathStats {
            sources,
            mean: if pairs == 0 {
                0.0
            } else {
                total as f64 / pairs as f64
            },
            max,
            unreachable: (sources * n) as u64 - reached,
        }
    }

    /// Number and size of the connected components.
    pub fn components(&self) -> ComponentStats {
        let n = self.node_count();
        let mut sets = DisjointSets::new(n);
        for v in 0..n {
            for &u in self.neighbours(v) {
                if (u as usize) > v {
                    sets.union(v, u as usize);
                }
            }
        }
        ComponentStats {
            count: sets.count,
            largest: sets.largest,
        }
    }

    /// Removes nodes in a random order without healing and reports, for each fraction in
    /// `fractions` (each in `[0, 1]`), the largest component's share of the survivors.
    ///
    /// One random order serves every fraction (the survivors of a larger removal are a subset
    /// of those of a smaller one), and the components are computed for all fractions in a
    /// single pass by adding the nodes back in that order (Newman–Ziff).
    pub fn robustness<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        fractions: &[f64],
    ) -> Vec<RobustnessPoint> {
        self.robustness_in_order(&self.removal_order(rng), fractions)
    }

    /// A random order of the nodes: [`robustness`](Self::robustness) adds them back in it.
    pub(super) fn removal_order<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.node_count() as u32).collect();
        order.shuffle(rng);
        order
    }

    /// [`robustness`](Self::robustness) for the given removal order (a permutation of the
    /// nodes, from [`removal_order`](Self::removal_order)).
    pub(super) fn robustness_in_order(
        &self,
        order: &[u32],
        fractions: &[f64],
    ) -> Vec<RobustnessPoint> {
        let n = self.node_count();
        // `largest_after[k]`: largest component when the first k nodes of `order` are present.
        let mut largest_after = vec![0usize; n + 1];
        let mut present = vec![false; n];
        let mut sets = DisjointSets::new(n);
        for (k, &v) in order.iter().enumerate() {
            let v = v as usize;
            present[v] = true;
            for &u in self.neighbours(v) {
                if present[u as usize] {
                    sets.union(v, u as usize);
                }
            }
            largest_after[k + 1] = largest_after[k].max(sets.size_of(v));
        }
        fractions
            .iter()
            .map(|&removed| {
                let survivors = n - ((removed.clamp(0.0, 1.0) * n as f64).round() as usize);
                RobustnessPoint {
                    removed,
                    survivors,
                    largest_share: if survivors == 0 {
                        1.0
                    } else {
                        largest_after[survivors] as f64 / survivors as f64
                    },
                }
            })
            .collect()
    }
}

/// Union–find with union by size and path halving.
struct DisjointSets {
    parent: Vec<u32>,
    size: Vec<u32>,
    count: usize,
    largest: usize,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
            count: n,
            largest: usize::from(n > 0),
        }
    }

    fn find(&mut self, mut v: usize) -> usize {
        while self.parent[v] as usize != v {
            let grandparent = self.parent[self.parent[v] as usize];
            self.parent[v] = grandparent;
            v = grandparent as usize;
        }
        v
    }

    fn size_of(&mut self, v: usize) -> usize {
        let root = self.find(v);
        self.size[root] as usize
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a as u32;
        self.size[a] += self.size[b];
        self.count -= 1;
        self.largest = self.largest.max(self.size[a] as usize);
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::Xoshiro256PlusPlus};

    use super::*;

    /// 0 → 1 → 2 → 0 (a triangle), 3 → 4, node 5 isolated.
    fn small() -> Graph {
        Graph::from_out_links(vec![vec![1], vec![2], vec![0], vec![4], vec![], vec![]])
    }

    #[test]
    fn degrees_and_undirected_view() {
        let g = small();
        assert_eq!(g.node_count(), 6);
        assert_eq!(g.link_count(), 4);
        assert_eq!(g.in_degrees(), vec![1, 1, 1, 0, 1, 0]);
        let stats = g.in_degree_stats();
        assert_eq!((stats.min, stats.max), (0, 1));
        assert!((stats.mean - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(stats.histogram, vec![2, 4]);
        let u = g.undirected();
        assert_eq!(u.edge_count(), 4);
        assert_eq!(u.neighbours(0), &[1, 2]);
        assert_eq!(u.neighbours(4), &[3]);
    }

    #[test]
    fn mutual_links_are_one_edge() {
        let g = Graph::from_out_links(vec![vec![1], vec![0]]);
        assert_eq!(g.undirected().edge_count(), 1);
    }

    #[test]
    fn clustering_of_triangle_and_star() {
        // Triangle nodes have C = 1; nodes 3, 4, 5 have degree < 2.
        assert!((small().undirected().clustering() - 0.5).abs() < 1e-12);
        let star = Graph::from_out_links(vec![vec![1, 2, 3], vec![], vec![], vec![]]);
        assert_eq!(star.undirected().clustering(), 0.0);
    }

    #[test]
    fn path_lengths_on_a_line() {
        // 0 - 1 - 2 - 3: all sources, distances 1,2,3,1,1,2,2,1,1,3,2,1 → 20 / 12.
        let line = Graph::from_out_links(vec![vec![1], vec![2], vec![3], vec![]]).undirected();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let stats = line.path_lengths(&mut rng, 10);
        assert_eq!(stats.sources, 4);
        assert!((stats.mean - 20.0 / 12.0).abs() < 1e-12);
        assert_eq!(stats.max, 3);
        assert_eq!(stats.unreachable, 0);
        let stats = small().undirected().path_lengths(&mut rng, 6);
        // Sources in the triangle miss 3 nodes each, in {3, 4} miss 4, node 5 misses 5.
        assert_eq!(stats.unreachable, 3 * 3 + 2 * 4 + 5);
    }

    #[test]
    fn clustering_matches_the_definition() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let graph = Graph::random_out(&mut rng, 60, 6).undirected();
        let n = graph.node_count();
        let mut sum = 0.0;
        for v in 0..n {
            let nb = graph.neighbours(v);
            let k = nb.len();
            let mut linked = 0;
            for (i, &a) in nb.iter().enumerate() {
                for &b in &nb[i + 1..] {
                    linked += usize::from(graph.neighbours(a as usize).contains(&b));
                }
            }
            if k >= 2 {
                sum += linked as f64 / (k * (k - 1) / 2) as f64;
            }
        }
        assert!((graph.clustering() - sum / n as f64).abs() < 1e-12);
        assert!(graph.clustering() > 0.0);
    }

    #[test]
    fn multi_source_bfs_matches_plain_bfs() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        // Small world and a ring lattice (many levels), several passes of searches each.
        let random = Graph::random_out(&mut rng, 1_200, 4).undirected();
        let ring = Graph::from_out_links((0..500u32).map(|v| vec![(v + 1) % 500])).undirected();
        for graph in [random, ring] {
            let n = graph.node_count();
            let stats = graph.path_lengths(&mut rng, n);
            let (mut total, mut pairs, mut max) = (0u64, 0u64, 0u32);
            for s in 0..n {
                let mut distance = vec![u32::MAX; n];
                let mut queue = std::collections::VecDeque::from([s]);
                distance[s] = 0;
                while let Some(v) = queue.pop_front() {
                    for &u in graph.neighbours(v) {
                        if distance[u as usize] == u32::MAX {
                            distance[u as usize] = distance[v] + 1;
                            total += u64::from(distance[u as usize]);
                            pairs += 1;
                            max = max.max(distance[u as usize]);
                            queue.push_back(u as usize);
                        }
                    }
                }
            }
            assert!((stats.mean - total as f64 / pairs as f64).abs() < 1e-12);
            assert_eq!(stats.max, max);
        }
    }

    #[test]
    fn components_and_robustness() {
        let u = small().undirected();
        assert_eq!(
            u.components(),
            ComponentStats {
                count: 3,
                largest: 3
            }
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let points = u.robustness(&mut rng, &[0.0, 1.0]);
        assert_eq!(points[0].survivors, 6);
        assert!((points[0].largest_share - 0.5).abs() < 1e-12);
        assert_eq!(points[1].survivors, 0);
        assert_eq!(points[1].largest_share, 1.0);
    }

    #[test]
    fn random_out_graph_has_c_distinct_links_per_node() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let g = Graph::random_out(&mut rng, 500, 20);
        assert_eq!(g.link_count(), 500 * 20);
        for v in 0..500 {
            let mut links = g.out_links(v).to_vec();
            links.sort_unstable();
            links.dedup();
            assert_eq!(links.len(), 20);
            assert!(!links.contains(&(v as u32)));
        }
        assert!((g.in_degree_stats().mean - 20.0).abs() < 1e-12);
        let tiny = Graph::random_out(&mut rng, 3, 20);
        assert_eq!(tiny.link_count(), 6);
    }
}
