//! The simulator under [`Defence::Secure`](crate::view::Defence::Secure): every node runs the
//! crate's SecureCyclon core, [`SecureView`], with the simulator's keyed-MAC scheme, and
//! every exchange runs message by message through [`secure::memory::exchange`]: the same
//! rules as a real node, only the transport is memory.
//!
//! Time is `cycle × mint_gap` milliseconds (the same for every event of a cycle), so that the
//! descriptors a node mints in consecutive cycles are exactly one gap apart. The initial
//! overlay is made of descriptors minted in the cycles before the first, each handed once by
//! its creator to its holder, so the run starts without any violation. Proofs found in a
//! cycle are flooded at its end, hop by hop over the nodes each floods to (the creators of its
//! holdings and anchors), until no node learns anything new: flooding on real links takes
//! seconds, a cycle is a shuffle interval.

use rand::{RngExt, seq::SliceRandom};

use super::graph::Graph;
use super::secure_attack::Coalition;
use super::secure_engine::{SecureCounters, SecureEngine, SimView};
use super::{AttackMeasurement, NodeId, NodeState, Overlay, Simulation};
use crate::secure::memory::exchange;

impl Simulation {
    /// The secure engine, if the run is under [`Defence::Secure`](crate::view::Defence::Secure).
    pub(super) fn secure(&self) -> Option<&SecureEngine> {
        self.secure.as_deref()
    }

    /// Node `id`'s SecureCyclon view, under [`Defence::Secure`](crate::view::Defence::Secure)
    /// (`None` otherwise).
    pub fn secure_view(&self, id: NodeId) -> Option<&SimView> {
        self.secure
            .as_deref()
            .and_then(|e| e.views.get(id as usize))
    }

    /// What SecureCyclon did so far (`None` unless under
    /// [`Defence::Secure`](crate::view::Defence::Secure)).
    pub fn secure_counters(&self) -> Option<SecureCounters> {
        self.secure.as_deref().map(|e| e.counters)
    }

    /// One cycle under [`Defence::Secure`](crate::view::Defence::Secure): joins, churn, one
    /// exchange initiated by every live
    /// node in a random order (the coalition's as its attack says), the floods, housekeeping.
    pub(super) fn secure_step(&mut self) {
        let mut engine = self.secure.take().expect("under Defence::Secure");
        let now = engine.time(self.cycle);
        for id in self.growth() {
            self.secure_join(&mut engine, id as NodeId, now);
        }
        for _ in 0..self.churn_leaving() {
            let id = self.state.len() as NodeId;
            self.state.push(NodeState::Absent);
            self.faults.on_new_node(id);
            self.secure_join(&mut engine, id, now);
        }
        let mut coalition = self.secure_coalition.take();
        let attacking = coalition.as_ref().is_some_and(|c| c.attacking(self.cycle));
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        match coalition.as_mut() {
            Some(c) if attacking => {
                if !c.started() {
                    c.begin(&mut engine, &self.live, &self.state, now);
                }
                c.order(&self.live, &mut order);
            }
            _ => order.extend_from_slice(&self.live),
        }
        order.shuffle(&mut self.rng);
        for (i, &p) in order.iter().enumerate() {
            match coalition.as_mut() {
                Some(c) if attacking && c.is_member(p) => {
                    let repeat = order[..i].iter().filter(|&&q| q == p).count();
                    c.initiate(&mut engine, p, repeat, self, now);
                }
                _ => self.secure_initiate(&mut engine, coalition.as_deref_mut(), attacking, p, now),
            }
        }
        self.order = order;
        self.secure_coalition = coalition;
        self.flood(&mut engine);
        for &id in &self.live {
            if self
                .secure_coalition
                .as_ref()
                .is_some_and(|c| c.started() && c.is_member(id))
            {
                continue;
            }
            let out = engine.views[id as usize].tick(now);
            engine.counters.expired += out.dropped.len() as u64;
        }
        if let Some(c) = self.secure_coalition.as_mut() {
            c.expire(now, engine.secure.max_age);
        }
        self.secure = Some(engine);
    }

    /// Node `id` joins the network through a random live node.
    fn secure_join(&mut self, engine: &mut SecureEngine, id: NodeId, now: u64) {
        let contact =
            (!self.live.is_empty()).then(|| self.live[self.rng.random_range(0..self.live.len())]);
        engine.add_node(id, contact, now);
        self.state[id as usize] = NodeState::Live;
        self.live.push(id);
    }

    /// Honest node `p` initiates one exchange, as its view selects: with the creator of its
    /// oldest holding, an anchor, or by joining its contact while its view is small.
    fn secure_initiate(
        &mut self,
        engine: &mut SecureEngine,
        coalition: Option<&mut Coalition>,
        attacking: bool,
        p: NodeId,
        now: u64,
    ) {
        let view = &mut engine.views[p as usize];
        let Ok(sel) = view.select(&mut self.rng, now) else {
            self.counters.idle += 1;
            return;
        };
        engine.counters.joins += u64::from(sel.join);
        let q = sel.target;
        if self.state.get(q as usize) != Some(&NodeState::Live) || self.faults.cut(p, q) {
            let out = engine.views[p as usize].abandon(sel.id);
            engine.count(p, &out);
            self.counters.failed += 1;
            return;
        }
        if let Some(c) = coalition
            && attacking
            && c.is_member(q)
        {
            c.answer(engine, p, q, &sel, &mut self.rng, now);
            self.counters.completed += 1;
            return;
        }
        let [vp, vq] = engine
            .views
            .get_disjoint_mut([p as usize, q as usize])
            .expect("a node never selects itself");
        let faults = &mut self.faults;
        let done = exchange(vp, vq, &sel, (), &mut self.rng, now, || {
            faults.lose_message()
        });
        self.counters.entries_sent += (done.initiator.given.len() + done.responder.given.len())
            as u64
            + u64::from(done.initiator.minted.is_some());
        if done.lost {
            self.counters.failed += 1;
            self.counters.lost += 1;
        } else if done.initiator.refused.is_some() {
            self.counters.failed += 1;
        } else {
            self.counters.completed += 1;
        }
        if done.responder.refused.is_some() {
            engine.counters.refused += 1;
        }
        engine.count(p, &done.initiator);
        engine.count(q, &done.responder);
    }

    /// Delivers the cycle's floods, hop by hop, until no node learns anything new.
    fn flood(&mut self, engine: &mut SecureEngine) {
        let mut flooding = std::mem::take(&mut engine.flooding);
        while !flooding.is_empty() {
            flooding.sort_unstable();
            flooding.dedup();
            let mut next = Vec::new();
            for &id in &flooding {
                let floods: Vec<_> = engine.views[id as usize].drain_floods().collect();
                for (proof, targets) in floods {
                    for t in targets {
                        let honest_live = self.state.get(t as usize) == Some(&NodeState::Live)
                            && !self
                                .secure_coalition
                                .as_ref()
                                .is_some_and(|c| c.started() && c.is_member(t));
                        if !honest_live || engine.views[t as usize].is_blacklisted(proof.offender())
                        {
                            continue;
                        }
                        engine.counters.flood_pushes += 1;
                        let out = engine.views[t as usize].receive_proofs(vec![proof.clone()]);
                        engine.counters.blacklistings += out.blacklisted.len() as u64;
                        if !out.blacklisted.is_empty() {
                            next.push(t);
                        }
                    }
                }
            }
            flooding = next;
        }
        engine.flooding = flooding;
    }

    /// Entries of live nodes' views pointing to failed nodes, under
    /// [`Defence::Secure`](crate::view::Defence::Secure).
    pub(super) fn secure_dead_links(&self, engine: &SecureEngine) -> u64 {
        self.live
            .iter()
            .flat_map(|&id| engine.links(id))
            .filter(|&t| self.state[t as usize] == NodeState::Dead)
            .count() as u64
    }

    /// The live overlay under [`Defence::Secure`](crate::view::Defence::Secure): a node links to
    /// its holdings' creators and
    /// its anchors.
    pub(super) fn secure_overlay(&self, engine: &SecureEngine) -> Overlay {
        let mut index = vec![u32::MAX; self.state.len()];
        let mut ids = Vec::with_capacity(self.live.len());
        for (id, state) in self.state.iter().enumerate() {
            if *state == NodeState::Live {
                index[id] = ids.len() as u32;
                ids.push(id as NodeId);
            }
        }
        let mut dead_links = 0;
        let mut full_views = 0;
        let lists: Vec<Vec<u32>> = ids
            .iter()
            .map(|&id| {
                let links: Vec<u32> = engine.links(id).collect();
                full_views += usize::from(links.len() >= engine.params.view_size);
                links
                    .into_iter()
                    .filter_map(|t| match index.get(t as usize).copied() {
                        Some(u32::MAX) | None => {
                            dead_links += 1;
                            None
                        }
                        Some(k) => Some(k),
                    })
                    .collect()
            })
            .collect();
        Overlay {
            graph: Graph::from_out_links(lists),
            ids,
            dead_links,
            full_views,
        }
    }

    /// [`Simulation::measure_attack`] under [`Defence::Secure`](crate::view::Defence::Secure).
    pub(super) fn secure_measure_attack(
        &self,
        engine: &SecureEngine,
        components: bool,
    ) -> Option<AttackMeasurement> {
        let coalition = self.secure_coalition.as_deref()?;
        Some(coalition.measure(self, engine, components))
    }
}
