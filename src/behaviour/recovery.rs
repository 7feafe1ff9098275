//! What lets a peer find the overlay again: seeds and lost peers of the opt-in
//! [`Rejoin`](crate::Rejoin) rule, and view snapshots for warm restarts.

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;

use super::{AddAddressResult, Behaviour, Event};
use crate::{
    protocol::{self, EntryLimits, ViewEntry},
    snapshot::{self, ImportedView, SnapshotError},
    view::InsertOutcome,
};

impl Behaviour {
    /// Keeps `peer`, reachable at `address`, as a seed of the [`Rejoin`](crate::Rejoin) rule
    /// ([`Config::with_rejoin`](crate::Config::with_rejoin)): never forgotten, and probed every few rounds while it is not
    /// in the view, so the local peer finds the overlay again after a partition or after
    /// losing every neighbour. Also bootstraps the view with it, as
    /// [`add_address`](Self::add_address) does, and returns what that did. Without the rule,
    /// this is [`add_address`](Self::add_address).
    pub fn add_seed(&mut self, peer: &PeerId, address: Multiaddr) -> AddAddressResult {
        if *peer != self.local_peer_id
            && let Some(stripped) = protocol::strip_own_peer_id(address.clone(), peer)
        {
            let max = self.config.max_addresses_per_entry;
            self.view.add_seed_address(*peer, stripped, max);
        }
        self.add_address(peer, address)
    }

    /// The seeds of the [`Rejoin`](crate::Rejoin) rule ([`add_seed`](Self::add_seed)).
    pub fn seeds(&self) -> impl Iterator<Item = &ViewEntry> {
        self.view.seeds().iter()
    }

    /// The peers the [`Rejoin`](crate::Rejoin) rule remembers as lost to failed shuffles, the
    /// oldest loss first.
    pub fn lost_peers(&self) -> impl Iterator<Item = &ViewEntry> {
        self.view.lost_peers().iter()
    }

    /// The view as bytes, for a warm restart with [`import_view`](Self::import_view): the
    /// protobuf message `ViewSnapshot` of `proto/cyclon.proto`, which names the local peer and
    /// holds the entries in the wire's `Entry` encoding (peer, addresses, age).
    ///
    /// A peer out of the view only because a shuffle with it is in flight is saved too, at
    /// the age it had when the shuffle started (while there is room: at most the view size
    /// of entries): nobody has found it dead, and a node stopped mid-shuffle would otherwise
    /// forget it (with a single bootstrap peer, every peer it had). The entries sent in that
    /// shuffle are still in the view, so they are saved as well. See
    /// [`PartialView::export`](crate::view::PartialView::export).
    pub fn export_view(&self) -> Vec<u8> {
        let entries: Vec<ViewEntry> = self.view.export().cloned().collect();
        snapshot::encode(
            &self.local_peer_id,
            &entries,
            self.config.max_addresses_per_entry,
        )
    }

    /// Restores a view saved by [`export_view`](Self::export_view): its entries enter the view
    /// with their ages, as far as there is room ([`Event::PeerAdded`] for each, and their
    /// addresses are reported to the swarm). Entries are validated as received ones are (at
    /// most the view size of them, addresses bounded and checked). Bytes that are not a
    /// snapshot, or the snapshot of another peer, are an error and change nothing.
    pub fn import_view(&mut self, bytes: &[u8]) -> Result<ImportedView, SnapshotError> {
        let limits = EntryLimits {
            message_length: self.config.view_size(),
            ..self.config.entry_limits()
        };
        let (entries, invalid) = snapshot::decode(bytes, &self.local_peer_id, &limits)?;
        let mut imported = ImportedView {
            invalid,
            ..ImportedView::default()
        };
        for entry in entries {
            let peer_id = *entry.peer_id();
            let verified = entry.addresses().is_verified();
            let addresses = entry.addresses().to_vec();
            if self.view.insert(entry) != InsertOutcome::Added {
                imported.not_taken += 1;
                continue;
            }
            imported.added += 1;
            self.report_addresses(peer_id, &addresses, verified);
            self.emit(Event::PeerAdded {
                peer_id,
                addresses,
                verified,
            });
        }
        Ok(imported)
    }
}
