//! Saved views for warm restarts: the bytes [`Behaviour::export_view`](crate::Behaviour::export_view)
//! writes and [`Behaviour::import_view`](crate::Behaviour::import_view) reads.
//!
//! A snapshot is the protobuf message `ViewSnapshot` of `proto/cyclon.proto`: the peer id of
//! the peer whose view it is and the view's entries in the wire's own `Entry` encoding, so
//! whatever an entry carries on the wire (addresses, age, and the fields later versions add)
//! it carries in a snapshot, and reading one validates entries exactly as received ones are.

use libp2p_identity::PeerId;
use prost::Message as _;

use crate::protocol::{self, EntryLimits, InvalidEntries, Version, ViewEntry, proto};

/// Why a snapshot cannot be imported. Nothing in the view changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes are not a protobuf `ViewSnapshot`.
    #[error("not a Cyclon view snapshot: {0}")]
    Malformed(String),
    /// The bytes decode, but name no valid peer: not a snapshot (e.g. an empty file).
    #[error("not a Cyclon view snapshot: it names no peer")]
    NoPeer,
    /// The snapshot is another peer's view.
    #[error("the snapshot is the view of peer {found}, not of this peer")]
    ForeignPeer {
        /// The peer the snapshot belongs to.
        found: PeerId,
    },
}

/// What [`Behaviour::import_view`](crate::Behaviour::import_view) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportedView {
    /// Entries that entered the view.
    pub added: usize,
    /// Valid entries not taken: already in the view, naming the local peer, or no room left.
    pub not_taken: usize,
    /// What validation dropped (the same checks as for received entries; entries beyond the
    /// view size count as excess).
    pub invalid: InvalidEntries,
}

/// Encodes `entries` as the view of `local`.
pub(crate) fn encode(local: &PeerId, entries: &[ViewEntry], max_addresses: usize) -> Vec<u8> {
    proto::ViewSnapshot {
        peer_id: local.to_bytes(),
        // Snapshots keep signed records: the entries are encoded as `/cyclon/1.1.0` sends them.
        entries: protocol::encode_entries(entries, Version::V1_1, max_addresses),
    }
    .encode_to_vec()
}

/// Decodes a snapshot of `local`'s view: its valid entries (at most `limits.message_length`) and
/// what validation dropped.
pub(crate) fn decode(
    bytes: &[u8],
    local: &PeerId,
    limits: &EntryLimits,
) -> Result<(Vec<ViewEntry>, InvalidEntries), SnapshotError> {
    let snapshot =
        proto::ViewSnapshot::decode(bytes).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
    let found = PeerId::from_bytes(&snapshot.peer_id).map_err(|_| SnapshotError::NoPeer)?;
    if found != *local {
        return Err(SnapshotError::ForeignPeer { found });
    }
    // Records are verified again, as received ones are: a file is input like any other.
    Ok(protocol::decode_entries(
        snapshot.entries,
        limits,
        Version::V1_1,
    ))
}

#[cfg(test)]
mod tests {
    use libp2p_core::Multiaddr;
    use libp2p_identity::Keypair;

    use super::*;
    use crate::{
        config::Config,
        record::{PeerAddresses, SignedPeerRecord},
    };

    fn limits(message_length: usize) -> EntryLimits {
        EntryLimits {
            message_length,
            max_addresses: 2,
            max_age: 100,
            ..Config::default().entry_limits()
        }
    }

    fn unsigned(address: Multiaddr) -> PeerAddresses {
        PeerAddresses::unverified(vec![address])
    }

    #[test]
    fn round_trip_keeps_peers_addresses_and_ages() {
        let local = PeerId::random();
        let address: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
        let entries = vec![
            ViewEntry::new(PeerId::random(), unsigned(address.clone()), 7),
            ViewEntry::new(PeerId::random(), unsigned(address), 0),
        ];
        let bytes = encode(&local, &entries, 2);
        let (decoded, invalid) = decode(&bytes, &local, &limits(5)).unwrap();
        assert_eq!(decoded, entries);
        assert_eq!(invalid, InvalidEntries::default());
        let (decoded, invalid) = decode(&bytes, &local, &limits(1)).unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!(invalid.excess_entries, 1);
    }

    #[test]
    fn garbage_empty_and_foreign_snapshots_are_errors() {
        let local = PeerId::random();
        let other = PeerId::random();
        assert_eq!(
            decode(&[], &local, &limits(5)).unwrap_err(),
            SnapshotError::NoPeer
        );
        assert!(matches!(
            decode(b"{\"view\": []}\n", &local, &limits(5)).unwrap_err(),
            SnapshotError::Malformed(_)
        ));
        assert!(matches!(
            decode(&[0xff; 64], &local, &limits(5)).unwrap_err(),
            SnapshotError::Malformed(_)
        ));
        let foreign = encode(&other, &[], 2);
        assert_eq!(
            decode(&foreign, &local, &limits(5)).unwrap_err(),
            SnapshotError::ForeignPeer { found: other }
        );
        // A truncated snapshot is refused, not half read.
        let entries = vec![ViewEntry::new(
            PeerId::random(),
            unsigned("/ip4/10.0.0.1/tcp/1".parse().unwrap()),
            1,
        )];
        let bytes = encode(&local, &entries, 2);
        assert!(decode(&bytes[..bytes.len() - 3], &local, &limits(5)).is_err());
    }

    #[test]
    fn signed_records_survive_a_round_trip_and_are_verified_again() {
        let local = PeerId::random();
        let key = Keypair::generate_ed25519();
        let address: Multiaddr = "/ip4/10.0.0.2/tcp/4001".parse().unwrap();
        let record = SignedPeerRecord::sign(&key, std::slice::from_ref(&address), 9).unwrap();
        let signed = ViewEntry::new(
            key.public().to_peer_id(),
            PeerAddresses::signed(record, vec![address.clone()]),
            3,
        );
        let bytes = encode(&local, std::slice::from_ref(&signed), 2);
        let (decoded, invalid) = decode(&bytes, &local, &limits(5)).unwrap();
        assert_eq!(invalid, InvalidEntries::default());
        assert_eq!(decoded, vec![signed.clone()]);
        assert!(decoded[0].addresses().is_verified());
        // A record that does not name the entry's peer is dropped, as on the wire.
        let impostor = ViewEntry::new(PeerId::random(), signed.addresses().clone(), 3);
        let bytes = encode(&local, &[impostor], 2);
        let (decoded, invalid) = decode(&bytes, &local, &limits(5)).unwrap();
        assert!(decoded.is_empty());
        assert_eq!(invalid.records_refused(), 1);
    }
}
