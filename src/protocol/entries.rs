//! The view entries the wire carries ([`ViewEntry`]): their encoding for each version, and the
//! validation of what remote peers send ([`EntryLimits`], [`InvalidEntries`]).

use libp2p_core::{Multiaddr, multiaddr::Protocol};
use libp2p_identity::PeerId;

use super::{Version, proto};
use crate::{
    address_scope::AddressScope,
    record::{PeerAddresses, RecordError, SignedPeerRecord},
    view::Entry,
};

/// An entry of the [`Behaviour`](crate::Behaviour)'s view: a peer, its addresses (verified by
/// the peer's signed record, or not: [`PeerAddresses`]) and the entry's age, as the wire
/// carries it.
pub type ViewEntry = Entry<PeerId, PeerAddresses>;

/// Bounds applied to the entries a remote peer sends (the
/// [`Config`](crate::Config) fills them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryLimits {
    /// Entries beyond this count are ignored (the shuffle length `l`, plus the seeded
    /// defence's extra entries).
    pub(crate) message_length: usize,
    /// Addresses beyond this count, per entry, are ignored.
    pub(crate) max_addresses: usize,
    /// Ages are clamped to this value.
    pub(crate) max_age: u32,
    /// Signed records larger than this are dropped undecoded.
    pub(crate) max_record_size: usize,
    /// Whether entries without a signed record are dropped.
    pub(crate) require_signed: bool,
    /// Addresses outside it are dropped.
    pub(crate) scope: AddressScope,
}

/// Counts of what was dropped while validating the entries of one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidEntries {
    /// Entries beyond the shuffle length, ignored unread.
    pub excess_entries: usize,
    /// Entries whose `peer_id` is not a valid peer id (entry dropped).
    pub invalid_peer_id: usize,
    /// Entries left with no usable address (entry dropped).
    pub no_address: usize,
    /// Addresses that are not valid multiaddrs (address dropped).
    pub invalid_address: usize,
    /// Addresses whose `/p2p/` names another peer than the entry's (address dropped).
    pub foreign_peer_address: usize,
    /// Addresses beyond the per-entry maximum, or repeated (address dropped).
    pub excess_addresses: usize,
    /// Addresses outside the [address scope](crate::Config::with_address_scope) (address
    /// dropped; a signed record keeps it, unused).
    pub out_of_scope_address: usize,
    /// Entries left with no address within the
    /// [address scope](crate::Config::with_address_scope) (entry dropped).
    pub out_of_scope: usize,
    /// Entries without a signed record, while records are required
    /// ([`Config::with_require_signed_records`](crate::Config::with_require_signed_records))
    /// (entry dropped).
    pub unsigned: usize,
    /// Entries whose signed record is larger than
    /// [`Config::with_max_record_size`](crate::Config::with_max_record_size) (entry dropped,
    /// the record not decoded): [`RecordError::TooLarge`].
    pub record_too_large: usize,
    /// Entries whose signed record is not a standard signed peer record
    /// ([`RecordError::Malformed`]; entry dropped).
    pub record_malformed: usize,
    /// Entries whose signed record's signature does not verify ([`RecordError::BadSignature`];
    /// entry dropped).
    pub record_bad_signature: usize,
    /// Entries carrying a record signed by, or naming, another peer than the entry's
    /// ([`RecordError::WrongPeer`]; entry dropped).
    pub record_wrong_peer: usize,
}

impl InvalidEntries {
    /// Entries dropped or ignored as a whole.
    pub fn entries_dropped(&self) -> usize {
        self.excess_entries
            + self.invalid_peer_id
            + self.no_address
            + self.out_of_scope
            + self.unsigned
            + self.records_refused()
    }

    /// Entries dropped because of their signed record, whatever the reason.
    pub fn records_refused(&self) -> usize {
        self.record_too_large
            + self.record_malformed
            + self.record_bad_signature
            + self.record_wrong_peer
    }

    fn count_record(&mut self, error: &RecordError) {
        let counter = match error {
            RecordError::TooLarge { .. } => &mut self.record_too_large,
            RecordError::Malformed(_) => &mut self.record_malformed,
            RecordError::BadSignature => &mut self.record_bad_signature,
            RecordError::WrongPeer => &mut self.record_wrong_peer,
        };
        *counter += 1;
    }

    /// Single addresses dropped from entries that were otherwise kept or dropped.
    pub fn addresses_dropped(&self) -> usize {
        self.invalid_address
            + self.foreign_peer_address
            + self.excess_addresses
            + self.out_of_scope_address
    }

    /// Adds `other`'s counts to `self`.
    pub fn add(&mut self, other: &InvalidEntries) {
        self.excess_entries += other.excess_entries;
        self.invalid_peer_id += other.invalid_peer_id;
        self.no_address += other.no_address;
        self.invalid_address += other.invalid_address;
        self.foreign_peer_address += other.foreign_peer_address;
        self.excess_addresses += other.excess_addresses;
        self.out_of_scope_address += other.out_of_scope_address;
        self.out_of_scope += other.out_of_scope;
        self.unsigned += other.unsigned;
        self.record_too_large += other.record_too_large;
        self.record_malformed += other.record_malformed;
        self.record_bad_signature += other.record_bad_signature;
        self.record_wrong_peer += other.record_wrong_peer;
    }
}

/// Validates the entries of a received message, which arrived over `version`: at most
/// `message_length` are read, so at most that many records are verified; invalid peer ids drop
/// the entry. On `/cyclon/1.1.0` an entry with a signed record is kept only if the record
/// verifies as its peer's own ([`SignedPeerRecord::verify`]), and its addresses are the
/// record's (its unsigned ones are ignored); otherwise the entry is dropped and counted by
/// reason. On `/cyclon/1.0.0` records are ignored. An entry without a record is dropped when
/// records are required, and otherwise keeps its unsigned addresses. Addresses that are
/// invalid, name another peer or exceed `max_addresses` are dropped; a trailing `/p2p/<own
/// id>` is stripped; an entry left without addresses is dropped; ages are clamped. Duplicates
/// and entries naming the local peer are left to the core, which counts them.
pub(crate) fn decode_entries(
    entries: Vec<proto::Entry>,
    limits: &EntryLimits,
    version: Version,
) -> (Vec<ViewEntry>, InvalidEntries) {
    let mut invalid = InvalidEntries {
        excess_entries: entries.len().saturating_sub(limits.message_length),
        ..InvalidEntries::default()
    };
    let mut decoded = Vec::with_capacity(entries.len().min(limits.message_length));
    for entry in entries.into_iter().take(limits.message_length) {
        let Ok(peer_id) = PeerId::from_bytes(&entry.peer_id) else {
            invalid.invalid_peer_id += 1;
            continue;
        };
        let has_record = version.carries_records() && !entry.signed_peer_record.is_empty();
        // The candidate addresses (`None`: not a valid multiaddr) and the verified record.
        let (candidates, record): (Vec<Option<Multiaddr>>, _) = if has_record {
            let bytes = &entry.signed_peer_record;
            match SignedPeerRecord::verify(bytes, &peer_id, limits.max_record_size) {
                Ok((record, addresses)) => {
                    (addresses.into_iter().map(Some).collect(), Some(record))
                }
                Err(error) => {
                    invalid.count_record(&error);
                    continue;
                }
            }
        } else if limits.require_signed {
            invalid.unsigned += 1;
            continue;
        } else {
            let parsed = entry.addrs.into_iter().map(|b| Multiaddr::try_from(b).ok());
            (parsed.collect(), None)
        };
        let mut addresses: Vec<Multiaddr> = Vec::new();
        let mut dropped_for_scope = false;
        for address in candidates {
            if addresses.len() >= limits.max_addresses {
                invalid.excess_addresses += 1;
                continue;
            }
            let Some(address) = address else {
                invalid.invalid_address += 1;
                continue;
            };
            let Some(address) = strip_own_peer_id(address, &peer_id) else {
                invalid.foreign_peer_address += 1;
                continue;
            };
            if !limits.scope.allows(&address) {
                invalid.out_of_scope_address += 1;
                dropped_for_scope = true;
                continue;
            }
            if addresses.contains(&address) {
                invalid.excess_addresses += 1;
                continue;
            }
            addresses.push(address);
        }
        if addresses.is_empty() {
            if dropped_for_scope {
                invalid.out_of_scope += 1;
            } else {
                invalid.no_address += 1;
            }
            continue;
        }
        let age = u32::try_from(entry.age)
            .unwrap_or(u32::MAX)
            .min(limits.max_age);
        let payload = match record {
            Some(record) => PeerAddresses::signed(record, addresses),
            None => PeerAddresses::unverified(addresses),
        };
        decoded.push(ViewEntry::new(peer_id, payload, age));
    }
    (decoded, invalid)
}

/// Returns `address` without a trailing `/p2p/<peer>`, or `None` if it names another peer or
/// is empty.
pub(crate) fn strip_own_peer_id(mut address: Multiaddr, peer: &PeerId) -> Option<Multiaddr> {
    if let Some(Protocol::P2p(named)) = address.iter().last() {
        if named != *peer {
            return None;
        }
        address.pop();
    }
    (!address.is_empty()).then_some(address)
}

/// Encodes view entries for the wire in `version`, with at most `max_addresses` addresses
/// each. On `/cyclon/1.1.0` an entry with a signed record carries the record's bytes exactly as
/// received and no unsigned addresses; on `/cyclon/1.0.0` no entry ever carries a record (the
/// encoding is byte for byte that of `/cyclon/1.0.0` before records existed).
pub(crate) fn encode_entries(
    entries: &[ViewEntry],
    version: Version,
    max_addresses: usize,
) -> Vec<proto::Entry> {
    entries
        .iter()
        .map(|entry| {
            let record = entry
                .addresses()
                .signed_record()
                .filter(|_| version.carries_records());
            let addrs = match record {
                Some(_) => Vec::new(),
                None => entry
                    .addresses()
                    .iter()
                    .take(max_addresses)
                    .map(|a| a.to_vec())
                    .collect(),
            };
            proto::Entry {
                peer_id: entry.peer_id().to_bytes(),
                addrs,
                age: u64::from(entry.age()),
                signed_peer_record: record.map_or_else(Vec::new, |r| r.as_bytes().to_vec()),
            }
        })
        .collect()
}
