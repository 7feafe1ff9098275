//! The local peer as its own entry shows it: the addresses it advertises, followed from the
//! swarm's events, and, when the behaviour has its key, its signed record of them, re-signed
//! whenever they change.

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;
use libp2p_swarm::{ExternalAddresses, FromSwarm, ListenAddresses};
use web_time::SystemTime;

use crate::{
    address_scope::AddressScope,
    protocol,
    record::{LocalRecord, PeerAddresses, SignedPeerRecord},
};

/// The local peer's addresses and signed record.
#[derive(Debug)]
pub(crate) struct LocalPeer {
    peer_id: PeerId,
    /// The most addresses advertised.
    max_addresses: usize,
    /// Only addresses within it are advertised.
    scope: AddressScope,
    listen: ListenAddresses,
    external: ExternalAddresses,
    /// The signed record, when the behaviour has the key.
    record: Option<LocalRecord>,
}

impl LocalPeer {
    pub(crate) fn new(
        peer_id: PeerId,
        max_addresses: usize,
        scope: AddressScope,
        record: Option<LocalRecord>,
    ) -> Self {
        Self {
            peer_id,
            max_addresses,
            scope,
            listen: ListenAddresses::default(),
            external: ExternalAddresses::default(),
            record,
        }
    }

    /// Follows the swarm's listen and external addresses; re-signs the record when the
    /// advertised ones change.
    pub(crate) fn on_swarm_event(&mut self, event: &FromSwarm) {
        let listen = self.listen.on_swarm_event(event);
        let external = self.external.on_swarm_event(event);
        if listen || external {
            self.update_record();
        }
    }

    /// What the local peer advertises: its confirmed external addresses within the address
    /// scope, or its listen addresses within it when there are none; without a trailing
    /// `/p2p/`, without repeats, at most `max_addresses` of them.
    pub(crate) fn advertised(&self) -> Vec<Multiaddr> {
        let in_scope = |address: &&Multiaddr| self.scope.allows(address);
        let external: Vec<&Multiaddr> = self.external.iter().filter(in_scope).collect();
        let candidates: Vec<&Multiaddr> = if external.is_empty() {
            self.listen.iter().filter(in_scope).collect()
        } else {
            external
        };
        let mut addresses: Vec<Multiaddr> = Vec::new();
        for address in candidates {
            if addresses.len() >= self.max_addresses {
                break;
            }
            if let Some(address) = protocol::strip_own_peer_id(address.clone(), &self.peer_id)
                && !addresses.contains(&address)
            {
                addresses.push(address);
            }
        }
        addresses
    }

    /// The signed record of the advertised addresses, if there is one.
    pub(crate) fn record(&self) -> Option<&SignedPeerRecord> {
        self.record.as_ref().and_then(LocalRecord::record)
    }

    /// The payload of the local peer's own entry: the advertised addresses, signed when the
    /// record says exactly these.
    pub(crate) fn payload(&self) -> PeerAddresses {
        let addresses = self.advertised();
        match &self.record {
            Some(record) => record.payload(addresses),
            None => PeerAddresses::unverified(addresses),
        }
    }

    /// Re-signs the record if the advertised addresses changed.
    fn update_record(&mut self) {
        if self.record.is_none() {
            return;
        }
        let addresses = self.advertised();
        // Unix time in milliseconds (a clock before 1970 counts as 0: the seq still grows).
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        if let Some(record) = self.record.as_mut()
            && record.update(&addresses, now_ms)
        {
            let seq = record.record().map(|r| r.seq());
            tracing::debug!(?addresses, ?seq, "signed the local record");
        }
    }
}
