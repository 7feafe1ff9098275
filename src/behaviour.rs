//! The Cyclon [`NetworkBehaviour`]: a thin adapter between the swarm and the sans-IO
//! [`PartialView`].

use std::{
    collections::{HashMap, VecDeque},
    io,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::FutureExt;
use futures_timer::Delay;
use libp2p_core::{Endpoint, Multiaddr, transport::PortUse};
use libp2p_identity::PeerId;
use libp2p_swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, DialError, DialFailure, ExternalAddresses,
    FromSwarm, ListenAddresses, NetworkBehaviour, NotifyHandler, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
    behaviour::{ConnectionEstablished, NewExternalAddrOfPeer},
    dial_opts::{DialOpts, PeerCondition},
};
use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::{
    Config, ConfigError, ShuffleId, ViewEntry,
    handler::{
        FromBehaviour, Handler, HandlerSettings, InboundId, InboundLimit, OutboundShuffle,
        ToBehaviour,
    },
    protocol::{self, EntryLimits, InvalidEntries},
    rate_limit::{MAX_RATE_LIMITED_PEERS, RateLimiter},
    view::{IgnoredEntries, InsertOutcome, MergeOutcome, PartialView},
};

/// Why a shuffle could not be started or did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShuffleError {
    /// The view is empty: there is nobody to shuffle with.
    #[error("the view is empty: there is no peer to shuffle with")]
    EmptyView,
    /// No connection to the target could be established.
    #[error("could not connect to the peer: {0}")]
    Dial(String),
    /// The target does not speak `/cyclon/1.0.0`.
    #[error("the peer does not support {}", crate::PROTOCOL_NAME)]
    UnsupportedProtocol,
    /// Opening the stream or the exchange took longer than allowed.
    #[error("the shuffle timed out")]
    Timeout,
    /// The connection closed before the exchange completed.
    #[error("the connection closed during the shuffle")]
    ConnectionClosed,
    /// The stream failed, or the peer sent something that is not a valid message.
    #[error("stream error: {0}")]
    Io(#[from] io::Error),
}

/// Why a peer left the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemovalReason {
    /// It was the target of one of our shuffles: our link to it turned into its link to us.
    /// If the shuffle then fails ([`Event::ShuffleFailed`]), it is not put back: that is how
    /// dead peers leave views.
    ShuffleTarget,
    /// It was sent to a shuffle partner and replaced by an entry received from it.
    Replaced,
    /// [`Behaviour::remove_peer`] removed it.
    Manual,
}

/// What [`Behaviour::add_address`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddAddressResult {
    /// The peer entered the view.
    PeerAdded,
    /// The peer was in the view; the address was added to its entry.
    AddressAdded,
    /// The peer was in the view with this address (or its entry is full of addresses).
    Unchanged,
    /// The peer is not in the view and the view is full.
    ViewFull,
    /// The peer is the local peer, or the address ends in `/p2p/` of another peer.
    Rejected,
}

/// Events of the Cyclon [`Behaviour`].
#[derive(Debug)]
pub enum Event {
    /// A peer entered the view.
    PeerAdded {
        /// The peer.
        peer_id: PeerId,
        /// Its addresses, as stored in the view.
        addresses: Vec<Multiaddr>,
    },
    /// A peer left the view.
    PeerRemoved {
        /// The peer.
        peer_id: PeerId,
        /// Why it left.
        reason: RemovalReason,
    },
    /// A shuffle we initiated completed.
    ShuffleCompleted {
        /// The shuffle.
        id: ShuffleId,
        /// The peer we shuffled with.
        peer_id: PeerId,
        /// Entries sent, our own fresh entry included.
        sent: usize,
        /// Valid entries received.
        received: usize,
    },
    /// A shuffle we initiated failed; its target stays out of the view.
    ShuffleFailed {
        /// The shuffle.
        id: ShuffleId,
        /// The peer we tried to shuffle with.
        peer_id: PeerId,
        /// Why it failed.
        error: ShuffleError,
    },
    /// We answered a shuffle another peer initiated.
    ShuffleAnswered {
        /// The initiator.
        peer_id: PeerId,
        /// Valid entries received.
        received: usize,
        /// Entries sent back.
        sent: usize,
    },
}

impl ShuffleError {
    /// A short, stable name for the kind of error (used as a metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            ShuffleError::EmptyView => "empty_view",
            ShuffleError::Dial(_) => "dial",
            ShuffleError::UnsupportedProtocol => "unsupported_protocol",
            ShuffleError::Timeout => "timeout",
            ShuffleError::ConnectionClosed => "connection_closed",
            ShuffleError::Io(_) => "io",
        }
    }
}

/// Failed shuffles by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShuffleFailures {
    /// No connection to the target could be established.
    pub dial: u64,
    /// The target does not speak `/cyclon/1.0.0`.
    pub unsupported_protocol: u64,
    /// Opening the stream or the exchange timed out.
    pub timeout: u64,
    /// The connection closed during the exchange.
    pub connection_closed: u64,
    /// The stream failed or the response was invalid.
    pub io: u64,
}

impl ShuffleFailures {
    /// All failed shuffles.
    pub fn total(&self) -> u64 {
        self.dial + self.unsupported_protocol + self.timeout + self.connection_closed + self.io
    }

    fn count(&mut self, error: &ShuffleError) {
        match error {
            ShuffleError::Dial(_) => self.dial += 1,
            ShuffleError::UnsupportedProtocol => self.unsupported_protocol += 1,
            ShuffleError::Timeout => self.timeout += 1,
            ShuffleError::ConnectionClosed => self.connection_closed += 1,
            ShuffleError::Io(_) | ShuffleError::EmptyView => self.io += 1,
        }
    }
}

/// Counters of what the behaviour did and refused, since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Shuffles started (periodic and manual).
    pub shuffles_started: u64,
    /// Shuffles completed.
    pub shuffles_completed: u64,
    /// Shuffles failed, by reason.
    pub shuffles_failed: ShuffleFailures,
    /// Inbound shuffles answered.
    pub inbound_answered: u64,
    /// Inbound shuffle streams refused because too many were in flight.
    pub inbound_refused: u64,
    /// Inbound shuffles refused because the peer asked too often (see
    /// [`Config::with_inbound_rate_limit`]).
    pub inbound_rate_limited: u64,
    /// Inbound shuffle streams that failed (bad message, timeout, IO error).
    pub inbound_failed: u64,
    /// Received entries and addresses dropped by validation.
    pub invalid: InvalidEntries,
    /// Valid received entries the shuffle rules did not take.
    pub ignored: IgnoredEntries,
}

#[derive(Debug)]
struct InFlight {
    peer: PeerId,
    /// The connection the shuffle was handed to, once there is one.
    connection: Option<ConnectionId>,
    deadline: Instant,
}

/// Shuffles waiting for a connection to their target.
#[derive(Debug, Default)]
struct AwaitingConnection {
    addresses: Vec<Multiaddr>,
    shuffles: Vec<OutboundShuffle>,
}

/// The Cyclon [`NetworkBehaviour`].
///
/// Keeps a partial view of at most `c` peers and shuffles it with the oldest neighbour every
/// interval. See the [crate docs](crate) for an example.
pub struct Behaviour {
    local_peer_id: PeerId,
    config: Config,
    view: PartialView<PeerId, Vec<Multiaddr>>,
    rng: StdRng,
    listen_addresses: ListenAddresses,
    external_addresses: ExternalAddresses,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    awaiting_connection: HashMap<PeerId, AwaitingConnection>,
    in_flight: HashMap<ShuffleId, InFlight>,
    handler_settings: HandlerSettings,
    events: VecDeque<ToSwarm<Event, FromBehaviour>>,
    /// Fires the next periodic shuffle; `None` while paused.
    shuffle_timer: Option<Delay>,
    /// Fires at the earliest in-flight deadline; `None` when nothing is in flight.
    deadline_timer: Option<Delay>,
    /// The per-peer inbound rate limit; its clock starts at `created`.
    rate_limiter: RateLimiter<PeerId>,
    created: Instant,
    stats: Stats,
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::Metrics>,
}

impl Behaviour {
    /// Creates the behaviour for the local peer.
    ///
    /// # Panics
    ///
    /// If `config` is invalid (see [`Config::validate`]); use [`Behaviour::try_new`] to get an
    /// error instead.
    pub fn new(local_peer_id: PeerId, config: Config) -> Self {
        match Self::try_new(local_peer_id, config) {
            Ok(behaviour) => behaviour,
            Err(error) => panic!("invalid Cyclon configuration: {error}"),
        }
    }

    /// Creates the behaviour for the local peer, or says why `config` is invalid.
    pub fn try_new(local_peer_id: PeerId, config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let view = PartialView::new(local_peer_id, config.shuffle_params())?;
        let mut rng = StdRng::seed_from_u64(rand::random());
        let first_shuffle = config.shuffle_interval.mul_f64(rng.random::<f64>());
        let handler_settings = HandlerSettings {
            request_timeout: config.request_timeout,
            max_message_size: config.max_message_size,
            max_inbound_streams: config.max_inbound_streams_per_connection,
            limits: EntryLimits {
                max_entries: config.shuffle_length(),
                max_addresses: config.max_addresses_per_entry,
                max_age: config.params.max_age,
            },
            inbound_limit: InboundLimit::new(config.max_inbound_streams),
        };
        Ok(Self {
            local_peer_id,
            view,
            rng,
            listen_addresses: ListenAddresses::default(),
            external_addresses: ExternalAddresses::default(),
            connections: HashMap::new(),
            awaiting_connection: HashMap::new(),
            in_flight: HashMap::new(),
            handler_settings,
            events: VecDeque::new(),
            shuffle_timer: Some(Delay::new(first_shuffle)),
            deadline_timer: None,
            rate_limiter: RateLimiter::new(MAX_RATE_LIMITED_PEERS),
            created: Instant::now(),
            stats: Stats::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
            config,
        })
    }

    /// The local peer.
    pub fn local_peer_id(&self) -> &PeerId {
        &self.local_peer_id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds `address` for `peer`: bootstraps the view, or teaches it an address. A peer new to
    /// a view with room enters it with age 0 ([`Event::PeerAdded`]); the address is also
    /// reported to the swarm so other behaviours can dial it.
    pub fn add_address(&mut self, peer: &PeerId, address: Multiaddr) -> AddAddressResult {
        if *peer == self.local_peer_id {
            return AddAddressResult::Rejected;
        }
        let Some(address) = protocol::strip_own_peer_id(address, peer) else {
            return AddAddressResult::Rejected;
        };
        let max_addresses = self.config.max_addresses_per_entry;
        let result = if let Some(addresses) = self.view.addresses_mut(peer) {
            if addresses.contains(&address) || addresses.len() >= max_addresses {
                return AddAddressResult::Unchanged;
            }
            addresses.push(address.clone());
            AddAddressResult::AddressAdded
        } else {
            match self
                .view
                .insert(ViewEntry::new(*peer, vec![address.clone()], 0))
            {
                InsertOutcome::Added => {
                    self.emit(Event::PeerAdded {
                        peer_id: *peer,
                        addresses: vec![address.clone()],
                    });
                    AddAddressResult::PeerAdded
                }
                InsertOutcome::ViewFull => return AddAddressResult::ViewFull,
                InsertOutcome::AlreadyPresent | InsertOutcome::LocalNode => {
                    return AddAddressResult::Unchanged;
                }
            }
        };
        self.events.push_back(ToSwarm::NewExternalAddrOfPeer {
            peer_id: *peer,
            address,
        });
        result
    }

    /// Removes `peer` from the view. Returns whether it was there.
    pub fn remove_peer(&mut self, peer: &PeerId) -> bool {
        let removed = self.view.remove(peer).is_some();
        if removed {
            self.emit(Event::PeerRemoved {
                peer_id: *peer,
                reason: RemovalReason::Manual,
            });
        }
        removed
    }

    /// The entries of the view, in no particular order.
    pub fn view(&self) -> impl Iterator<Item = &ViewEntry> {
        self.view.iter()
    }

    /// Number of peers in the view.
    pub fn view_len(&self) -> usize {
        self.view.len()
    }

    /// The view's entry for `peer`, if any.
    pub fn get(&self, peer: &PeerId) -> Option<&ViewEntry> {
        self.view.get(peer)
    }

    /// Starts a shuffle now, outside the periodic schedule (also while paused, and also while
    /// the local peer has no address to advertise, which holds periodic shuffles back). Its outcome is
    /// reported as [`Event::ShuffleCompleted`] or [`Event::ShuffleFailed`] with the returned id.
    pub fn shuffle_now(&mut self) -> Result<ShuffleId, ShuffleError> {
        self.start_shuffle()
    }

    /// Stops periodic shuffling. Inbound shuffles are still answered and
    /// [`shuffle_now`](Self::shuffle_now) still works.
    pub fn pause(&mut self) {
        self.shuffle_timer = None;
    }

    /// Resumes periodic shuffling; the next shuffle comes after a random share of the
    /// interval.
    pub fn resume(&mut self) {
        if self.shuffle_timer.is_none() {
            let delay = self
                .config
                .shuffle_interval
                .mul_f64(self.rng.random::<f64>());
            self.shuffle_timer = Some(Delay::new(delay));
        }
    }

    /// Whether periodic shuffling is paused.
    pub fn is_paused(&self) -> bool {
        self.shuffle_timer.is_none()
    }

    /// Number of shuffles started and not yet completed or failed.
    pub fn shuffles_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Counters of what the behaviour did and refused.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Exports this behaviour's counters and gauges to `registry` (see [`crate::metrics`]).
    /// They are brought up to date every time the swarm polls the behaviour.
    #[cfg(feature = "metrics")]
    pub fn enable_metrics(&mut self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics = Some(crate::metrics::Metrics::new(registry));
        self.export_metrics();
    }

    #[cfg(feature = "metrics")]
    fn export_metrics(&mut self) {
        if let Some(metrics) = self.metrics.as_mut() {
            let ages: u64 = self.view.iter().map(|e| u64::from(e.age())).sum();
            let mean_age = if self.view.is_empty() {
                0.0
            } else {
                ages as f64 / self.view.len() as f64
            };
            metrics.update(&self.stats, self.view.len(), mean_age, self.in_flight.len());
        }
    }

    /// The addresses the local peer advertises in its own entry: confirmed external addresses,
    /// or the listen addresses when there are none.
    pub fn advertised_addresses(&self) -> Vec<Multiaddr> {
        let external = self.external_addresses.as_slice();
        let candidates: Vec<&Multiaddr> = if external.is_empty() {
            self.listen_addresses.iter().collect()
        } else {
            external.iter().collect()
        };
        let mut addresses: Vec<Multiaddr> = Vec::new();
        for address in candidates {
            if addresses.len() >= self.config.max_addresses_per_entry {
                break;
            }
            if let Some(address) = protocol::strip_own_peer_id(address.clone(), &self.local_peer_id)
                && !addresses.contains(&address)
            {
                addresses.push(address);
            }
        }
        addresses
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(ToSwarm::GenerateEvent(event));
    }

    fn start_shuffle(&mut self) -> Result<ShuffleId, ShuffleError> {
        let own_addresses = self.advertised_addresses();
        let shuffle = self
            .view
            .start_shuffle(&mut self.rng, own_addresses)
            .ok_or(ShuffleError::EmptyView)?;
        let id = shuffle.id;
        let (peer, addresses, _) = shuffle.target.into_parts();
        self.stats.shuffles_started += 1;
        tracing::debug!(%peer, %id, "starting a shuffle");
        self.emit(Event::PeerRemoved {
            peer_id: peer,
            reason: RemovalReason::ShuffleTarget,
        });
        let outbound = OutboundShuffle {
            id,
            entries: protocol::encode_entries(
                &shuffle.request,
                self.config.max_addresses_per_entry,
            ),
        };
        // A shuffle that needs a dial gets one timeout for the dial and one for the exchange.
        let deadline = Instant::now() + 2 * self.config.request_timeout;
        let connection = self.connections.get(&peer).and_then(|c| c.first()).copied();
        match connection {
            Some(connection) => self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(connection),
                event: FromBehaviour::Shuffle(outbound),
            }),
            None => {
                let waiting = self.awaiting_connection.entry(peer).or_default();
                waiting.shuffles.push(outbound);
                for address in &addresses {
                    if !waiting.addresses.contains(address) {
                        waiting.addresses.push(address.clone());
                    }
                }
                self.events.push_back(ToSwarm::Dial {
                    opts: DialOpts::peer_id(peer)
                        .addresses(addresses)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build(),
                });
            }
        }
        self.in_flight.insert(
            id,
            InFlight {
                peer,
                connection,
                deadline,
            },
        );
        if self.deadline_timer.is_none() {
            self.deadline_timer = Some(Delay::new(2 * self.config.request_timeout));
        }
        Ok(id)
    }

    fn complete_shuffle(&mut self, id: ShuffleId, entries: Vec<ViewEntry>) {
        if self.in_flight.remove(&id).is_none() {
            return; // Already failed, e.g. by its deadline.
        }
        let received = entries.len();
        let before = self.view_peers();
        let Some(done) = self.view.complete_shuffle(id, entries) else {
            return;
        };
        self.stats.shuffles_completed += 1;
        tracing::debug!(peer = %done.target, %id, received, "shuffle completed");
        self.report_merge(&before, done.merge);
        self.emit(Event::ShuffleCompleted {
            id,
            peer_id: done.target,
            sent: done.sent,
            received,
        });
    }

    fn fail_shuffle(&mut self, id: ShuffleId, error: ShuffleError) {
        let Some(in_flight) = self.in_flight.remove(&id) else {
            return;
        };
        if let Some(waiting) = self.awaiting_connection.get_mut(&in_flight.peer) {
            waiting.shuffles.retain(|s| s.id != id);
            if waiting.shuffles.is_empty() {
                self.awaiting_connection.remove(&in_flight.peer);
            }
        }
        self.view.fail_shuffle(id);
        self.stats.shuffles_failed.count(&error);
        tracing::debug!(peer = %in_flight.peer, %id, %error, "shuffle failed");
        self.emit(Event::ShuffleFailed {
            id,
            peer_id: in_flight.peer,
            error,
        });
    }

    fn fail_shuffles(
        &mut self,
        which: impl Fn(&InFlight) -> bool,
        error: impl Fn() -> ShuffleError,
    ) {
        let mut failed: Vec<ShuffleId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| which(f))
            .map(|(id, _)| *id)
            .collect();
        failed.sort_unstable();
        for id in failed {
            self.fail_shuffle(id, error());
        }
    }

    fn answer_shuffle(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        id: InboundId,
        entries: Vec<ViewEntry>,
    ) {
        if let Some(limit) = self.config.inbound_rate_limit()
            && !self.rate_limiter.allow(peer, limit, self.created.elapsed())
        {
            self.stats.inbound_rate_limited += 1;
            tracing::debug!(%peer, "refusing a shuffle: the peer asks too often");
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(connection),
                event: FromBehaviour::Refuse { id },
            });
            return;
        }
        let received = entries.len();
        let before = self.view_peers();
        let (reply, merge) = self.view.answer_shuffle(&mut self.rng, &peer, entries);
        self.stats.inbound_answered += 1;
        self.events.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: FromBehaviour::Answer {
                id,
                entries: protocol::encode_entries(&reply, self.config.max_addresses_per_entry),
            },
        });
        self.report_merge(&before, merge);
        self.emit(Event::ShuffleAnswered {
            peer_id: peer,
            received,
            sent: reply.len(),
        });
    }

    /// The peers in the view.
    fn view_peers(&self) -> Vec<PeerId> {
        self.view.iter().map(|e| *e.peer_id()).collect()
    }

    /// Turns a merge's changes into events and tells the swarm the new peers' addresses.
    ///
    /// Events report the net change from `before` (the view's peers before the merge): one
    /// merge can replace a sent entry and then take the same peer back from later in the
    /// response, which is no change of the view and yields no event.
    fn report_merge(&mut self, before: &[PeerId], merge: MergeOutcome<PeerId>) {
        let ignored = &mut self.stats.ignored;
        ignored.local += merge.ignored.local;
        ignored.duplicate += merge.ignored.duplicate;
        ignored.excess += merge.ignored.excess;
        ignored.no_room += merge.ignored.no_room;
        let mut reported: Vec<PeerId> = Vec::new();
        for peer_id in merge.replaced {
            if before.contains(&peer_id)
                && self.view.get(&peer_id).is_none()
                && !reported.contains(&peer_id)
            {
                reported.push(peer_id);
                self.emit(Event::PeerRemoved {
                    peer_id,
                    reason: RemovalReason::Replaced,
                });
            }
        }
        for peer_id in merge.added {
            let Some(entry) = self.view.get(&peer_id) else {
                continue;
            };
            if reported.contains(&peer_id) {
                continue;
            }
            reported.push(peer_id);
            let addresses = entry.addresses().clone();
            for address in &addresses {
                self.events.push_back(ToSwarm::NewExternalAddrOfPeer {
                    peer_id,
                    address: address.clone(),
                });
            }
            if !before.contains(&peer_id) {
                self.emit(Event::PeerAdded { peer_id, addresses });
            }
        }
    }

    fn new_handler(&mut self, peer: PeerId, connection: ConnectionId) -> Handler {
        let preloaded = self
            .awaiting_connection
            .remove(&peer)
            .map(|w| w.shuffles)
            .unwrap_or_default();
        for shuffle in &preloaded {
            if let Some(in_flight) = self.in_flight.get_mut(&shuffle.id) {
                in_flight.connection = Some(connection);
            }
        }
        Handler::new(self.handler_settings.clone(), preloaded)
    }

    fn expire_shuffles(&mut self) {
        let now = Instant::now();
        self.fail_shuffles(|f| f.deadline <= now, || ShuffleError::Timeout);
        self.deadline_timer = self
            .in_flight
            .values()
            .map(|f| f.deadline)
            .min()
            .map(|next| {
                Delay::new(
                    next.saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                )
            });
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.new_handler(peer, connection_id))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        let Some(peer) = maybe_peer else {
            return Ok(Vec::new());
        };
        let mut addresses = self
            .view
            .get(&peer)
            .map(|e| e.addresses().clone())
            .unwrap_or_default();
        if let Some(waiting) = self.awaiting_connection.get(&peer) {
            for address in &waiting.addresses {
                if !addresses.contains(address) {
                    addresses.push(address.clone());
                }
            }
        }
        Ok(addresses)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.new_handler(peer, connection_id))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.listen_addresses.on_swarm_event(&event);
        self.external_addresses.on_swarm_event(&event);
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => self
                .connections
                .entry(peer_id)
                .or_default()
                .push(connection_id),
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                if let Some(connections) = self.connections.get_mut(&peer_id) {
                    connections.retain(|c| *c != connection_id);
                    if connections.is_empty() {
                        self.connections.remove(&peer_id);
                    }
                }
                self.fail_shuffles(
                    |f| f.connection == Some(connection_id),
                    || ShuffleError::ConnectionClosed,
                );
            }
            FromSwarm::DialFailure(DialFailure {
                peer_id,
                error,
                connection_id,
            }) => {
                // A connection that got our handler and was then denied.
                self.fail_shuffles(
                    |f| f.connection == Some(connection_id),
                    || ShuffleError::Dial(error.to_string()),
                );
                // Our dial was skipped because another one is under way: wait for that one.
                if matches!(error, DialError::DialPeerConditionFalse(_)) {
                    return;
                }
                if let Some(peer) = peer_id
                    && self.awaiting_connection.contains_key(&peer)
                {
                    self.fail_shuffles(
                        |f| f.peer == peer && f.connection.is_none(),
                        || ShuffleError::Dial(error.to_string()),
                    );
                }
            }
            FromSwarm::NewExternalAddrOfPeer(NewExternalAddrOfPeer { peer_id, addr }) => {
                let max = self.config.max_addresses_per_entry;
                if let Some(addresses) = self.view.addresses_mut(&peer_id)
                    && let Some(addr) = protocol::strip_own_peer_id(addr.clone(), &peer_id)
                    && addresses.len() < max
                    && !addresses.contains(&addr)
                {
                    addresses.push(addr);
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            ToBehaviour::ShuffleResponse {
                id,
                entries,
                invalid,
            } => {
                self.stats.invalid.add(&invalid);
                self.complete_shuffle(id, entries);
            }
            ToBehaviour::ShuffleFailed { id, error } => self.fail_shuffle(id, error),
            ToBehaviour::InboundRequest {
                id,
                entries,
                invalid,
            } => {
                self.stats.invalid.add(&invalid);
                self.answer_shuffle(peer_id, connection_id, id, entries);
            }
            ToBehaviour::InboundFailed { error } => {
                self.stats.inbound_failed += 1;
                tracing::debug!(peer = %peer_id, %error, "inbound shuffle failed");
            }
            ToBehaviour::InboundRefused => {
                self.stats.inbound_refused += 1;
                tracing::debug!(peer = %peer_id, "inbound shuffle refused");
            }
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        #[cfg(feature = "metrics")]
        self.export_metrics();
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(event);
            }
            if let Some(timer) = self.shuffle_timer.as_mut()
                && timer.poll_unpin(cx).is_ready()
            {
                timer.reset(self.config.shuffle_interval);
                // Without an address to advertise, the partner would drop our own entry and
                // the shuffle would only cost us a link (possibly our only one).
                if self.advertised_addresses().is_empty() {
                    tracing::debug!("no periodic shuffle: no address to advertise yet");
                } else if let Err(error) = self.start_shuffle() {
                    tracing::trace!(%error, "no periodic shuffle");
                }
                continue;
            }
            if let Some(timer) = self.deadline_timer.as_mut()
                && timer.poll_unpin(cx).is_ready()
            {
                self.expire_shuffles();
                continue;
            }
            return Poll::Pending;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use futures::task::noop_waker_ref;

    use super::*;

    fn entry(peer: PeerId, age: u32) -> ViewEntry {
        ViewEntry::new(peer, vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()], age)
    }

    /// The behaviour's events so far, as the view changes they report.
    fn view_events(behaviour: &mut Behaviour) -> Vec<(PeerId, bool)> {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut changes = Vec::new();
        while let Poll::Ready(event) = behaviour.poll(&mut cx) {
            match event {
                ToSwarm::GenerateEvent(Event::PeerAdded { peer_id, .. }) => {
                    changes.push((peer_id, true))
                }
                ToSwarm::GenerateEvent(Event::PeerRemoved { peer_id, .. }) => {
                    changes.push((peer_id, false))
                }
                _ => {}
            }
        }
        changes
    }

    fn respond(behaviour: &mut Behaviour, from: PeerId, id: ShuffleId, entries: Vec<ViewEntry>) {
        behaviour.on_connection_handler_event(
            from,
            ConnectionId::new_unchecked(0),
            ToBehaviour::ShuffleResponse {
                id,
                entries,
                invalid: InvalidEntries::default(),
            },
        );
    }

    /// A peer sent in a request, lost meanwhile and returned in the reply: the events still
    /// replay to the view.
    #[test]
    fn events_replay_to_the_view_when_a_sent_peer_returns() {
        let [q, a, x, s, y] = std::array::from_fn(|_| PeerId::random());
        let config = Config::default().with_view_size(2).with_shuffle_length(2);
        let mut behaviour = Behaviour::new(PeerId::random(), config);
        behaviour.pause();
        let mut replayed = std::collections::HashSet::new();
        let mut replay = |behaviour: &mut Behaviour| {
            for (peer, added) in view_events(behaviour) {
                if added {
                    assert!(replayed.insert(peer), "added a peer already in the view");
                } else {
                    assert!(replayed.remove(&peer), "removed a peer not in the view");
                }
            }
            let view: std::collections::HashSet<PeerId> =
                behaviour.view().map(|e| *e.peer_id()).collect();
            assert_eq!(replayed, view, "the events do not replay to the view");
        };

        // View {a (old), x}: the next shuffle targets a and sends x.
        behaviour.add_address(&q, "/ip4/127.0.0.1/tcp/1".parse().unwrap());
        let first = behaviour.shuffle_now().unwrap();
        respond(&mut behaviour, q, first, vec![entry(a, 10), entry(x, 0)]);
        replay(&mut behaviour);
        let second = behaviour.shuffle_now().unwrap();
        assert!(behaviour.get(&a).is_none(), "a, the oldest, is the target");
        // x leaves meanwhile, s comes in: one slot is free.
        assert!(behaviour.remove_peer(&x));
        behaviour.add_address(&s, "/ip4/127.0.0.1/tcp/2".parse().unwrap());
        replay(&mut behaviour);

        // a returns x and y: x fills the free slot; the x we sent is gone, so y finds no
        // sent entry to replace (the returned x is a new entry, not the one we sent).
        respond(&mut behaviour, a, second, vec![entry(x, 0), entry(y, 0)]);
        replay(&mut behaviour);
        assert!(behaviour.get(&x).is_some());
        assert!(behaviour.get(&y).is_none());
    }
}
