//! The addresses the local peer advertises in its own entry, followed from the swarm's events.

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;
use libp2p_swarm::{ExternalAddresses, FromSwarm, ListenAddresses};

use crate::protocol;

/// The local peer's listen and confirmed external addresses.
#[derive(Debug, Default)]
pub(crate) struct LocalAddresses {
    listen: ListenAddresses,
    external: ExternalAddresses,
}

impl LocalAddresses {
    pub(crate) fn on_swarm_event(&mut self, event: &FromSwarm) {
        self.listen.on_swarm_event(event);
        self.external.on_swarm_event(event);
    }

    /// What the local peer advertises: its confirmed external addresses, or its listen
    /// addresses when there are none; without a trailing `/p2p/`, without repeats, at most
    /// `max` of them.
    pub(crate) fn advertised(&self, local_peer_id: &PeerId, max: usize) -> Vec<Multiaddr> {
        let external = self.external.as_slice();
        let candidates: Vec<&Multiaddr> = if external.is_empty() {
            self.listen.iter().collect()
        } else {
            external.iter().collect()
        };
        let mut addresses: Vec<Multiaddr> = Vec::new();
        for address in candidates {
            if addresses.len() >= max {
                break;
            }
            if let Some(address) = protocol::strip_own_peer_id(address.clone(), local_peer_id)
                && !addresses.contains(&address)
            {
                addresses.push(address);
            }
        }
        addresses
    }
}
