//! What the core reported, turned into events, counts, addresses for the swarm and proof
//! pushes.

use std::collections::HashMap;

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;
use libp2p_swarm::ToSwarm;

use super::{
    Behaviour, ExchangeError,
    event::Event,
    handler::{Command, Opening},
};
use crate::secure::{ExchangeOutcome, InvalidItems, Role, ViewChange, wire::WireProof};

impl Behaviour {
    /// Turns what one call of the core reported into events and counts, then sends the
    /// floods it queued.
    pub(super) fn apply(&mut self, peer: Option<PeerId>, out: ExchangeOutcome<PeerId>) {
        if let Some(peer) = peer
            && out.invalid.total() > 0
        {
            self.invalid(peer, out.invalid);
        }
        for (offender, kind) in out.proofs_found {
            self.stats.proofs_found += 1;
            self.emit(Event::ProofFound { offender, kind });
        }
        for offender in out.blacklisted {
            self.stats.blacklisted += 1;
            self.emit(Event::Blacklisted { peer_id: offender });
        }
        self.sync_holdings();
        self.send_floods();
    }

    pub(super) fn invalid(&mut self, peer: PeerId, items: InvalidItems) {
        self.stats.invalid.add(&items);
        self.emit(Event::InvalidItems {
            peer_id: peer,
            items,
        });
    }

    pub(super) fn failed(&mut self, peer: PeerId, role: Role, error: ExchangeError) {
        self.stats.exchanges_failed += 1;
        tracing::debug!(%peer, ?role, %error, "exchange failed");
        self.emit(Event::ExchangeFailed {
            peer_id: peer,
            role,
            error,
        });
    }

    /// Reports what the core says entered or left the holdings: added peers with their
    /// signed addresses (within the address scope, also given to the swarm), removed ones.
    pub(super) fn sync_holdings(&mut self) {
        for change in self.view.drain_changes() {
            match change {
                ViewChange::Removed { peer } => self.emit(Event::PeerRemoved { peer_id: peer }),
                ViewChange::Added { peer, addresses } => {
                    let addresses = self.in_scope(&addresses);
                    for address in &addresses {
                        self.events.push_back(ToSwarm::NewExternalAddrOfPeer {
                            peer_id: peer,
                            address: address.clone(),
                        });
                    }
                    self.emit(Event::PeerAdded {
                        peer_id: peer,
                        addresses,
                    });
                }
            }
        }
    }

    /// Sends each proof the core queued to its targets, one `ProofPush` per target (at most
    /// the proofs a receiver accepts per push).
    pub(super) fn send_floods(&mut self) {
        let mut per_target: HashMap<PeerId, Vec<WireProof>> = HashMap::new();
        for (proof, targets) in self.view.drain_floods() {
            for target in targets {
                per_target.entry(target).or_default().push(proof.clone());
            }
        }
        let max = self.view.params().max_proofs_received.max(1);
        for (target, proofs) in per_target {
            for chunk in proofs.chunks(max) {
                self.push(target, chunk.to_vec());
            }
        }
    }

    pub(super) fn push(&mut self, target: PeerId, proofs: Vec<WireProof>) {
        if let Some(connection) = self.connection_to(&target) {
            self.notify(target, connection, Command::Push(proofs));
            return;
        }
        let addresses = self.addresses_of(&target);
        if addresses.is_empty() {
            self.stats.pushes_failed += 1;
            return;
        }
        self.dial(target, addresses, Opening::Push(proofs));
    }

    /// Where `peer` said it can be reached: its descriptor in the holdings or anchors, else
    /// a seed's address.
    /// The signed ones outside the address scope are left out.
    pub(super) fn addresses_of(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let signed = match self.view.holdings().find(|h| h.creator == peer) {
            Some(h) => Some(h.addresses),
            None => self
                .view
                .anchors()
                .find(|a| a.creator == *peer)
                .map(|a| &a.addresses),
        };
        match signed {
            Some(addresses) => self.in_scope(addresses),
            None => self.seeds.get(peer).cloned().unwrap_or_default(),
        }
    }

    /// The addresses within the configured scope.
    pub(super) fn in_scope(&self, addresses: &[Multiaddr]) -> Vec<Multiaddr> {
        let scope = self.config.address_scope();
        addresses
            .iter()
            .filter(|a| scope.allows(a))
            .cloned()
            .collect()
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.events.push_back(ToSwarm::GenerateEvent(event));
    }
}
