//! The Cyclon [`NetworkBehaviour`]: carries the decisions of the sans-IO core
//! ([`PartialView`]) to the swarm.
//!
//! The core decides what the view becomes and whom to shuffle with; this adapter turns its
//! outcomes into [`Event`]s and [`ToSwarm`] actions, and owns what the core has no notion of:
//! connections, dials, the shuffle timer, deadlines, the addresses the local peer advertises
//! (and its signed record of them, re-signed when they change) and the clocks of the per-peer
//! inbound rate limit and of the record's sequence number.

mod event;
mod neighbours;
mod recovery;
mod shuffles;
#[cfg(test)]
mod tests;

pub use self::event::{AddAddressResult, Event, RemovalReason};

use std::{
    collections::{HashMap, VecDeque},
    task::{Context, Poll},
    time::Duration,
};

use futures::FutureExt;
use futures_timer::Delay;
use libp2p_core::{Endpoint, Multiaddr, transport::PortUse};
use libp2p_identity::{Keypair, PeerId};
use libp2p_swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, behaviour::NewExternalAddrOfPeer,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use web_time::Instant;

use crate::{
    config::{Config, ConfigError},
    handler::{Handler, HandlerEvent, HandlerSettings, InEvent, OutEvent, ShuffleError},
    local_peer::LocalPeer,
    neighbours::Neighbours,
    outbound::Outbound,
    protocol::{self, ViewEntry},
    rate_limit::{MAX_RATE_LIMITED_PEERS, RateLimiter},
    record::{LocalRecord, PeerAddresses, SignedPeerRecord},
    stats::{Count, Stats},
    view::{InsertOutcome, PartialView, ShuffleId, StartShuffleError},
};

/// The Cyclon [`NetworkBehaviour`].
///
/// Keeps a partial view of at most `c` peers and shuffles it with the oldest neighbour every
/// interval. See the [crate docs](crate) for an example.
pub struct Behaviour {
    local_peer_id: PeerId,
    config: Config,
    view: PartialView<PeerId, PeerAddresses>,
    rng: StdRng,
    /// The local peer's advertised addresses and signed record.
    local: LocalPeer,
    /// Where the shuffles we started run, and until when.
    outbound: Outbound,
    handler_settings: HandlerSettings,
    events: VecDeque<ToSwarm<Event, InEvent>>,
    /// Fires the next periodic shuffle; `None` while paused.
    shuffle_timer: Option<Delay>,
    /// Periodic rounds since the last one that could dial, while dials are refused.
    rounds_without_dial: u32,
    /// Dials refused since dials were last allowed: the retry period grows with them.
    refused_retries: u32,
    /// The neighbour links, when the configuration asks for some.
    neighbours: Option<Neighbours<PeerId>>,
    /// The neighbour streams held per peer and connection (a link may have two, when requests
    /// crossed, possibly on two connections).
    neighbour_streams: HashMap<PeerId, HashMap<ConnectionId, usize>>,
    /// The per-peer inbound rate limit; its clock starts at `created`.
    rate_limiter: RateLimiter<PeerId>,
    created: Instant,
    stats: Stats,
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::Metrics>,
}

impl Behaviour {
    /// Creates the behaviour for the local peer, which sends its own entry unsigned (use
    /// [`Behaviour::with_keypair`] to sign it). It still verifies and forwards the signed
    /// records of others.
    ///
    /// # Panics
    ///
    /// If `config` is invalid (see [`Config::validate`]); use [`Behaviour::try_new`] to get an
    /// error instead.
    pub fn new(local_peer_id: PeerId, config: Config) -> Self {
        Self::try_new(local_peer_id, config).unwrap_or_else(|error| invalid(error))
    }

    /// Creates the behaviour for the local peer, or says why `config` is invalid.
    pub fn try_new(local_peer_id: PeerId, config: Config) -> Result<Self, ConfigError> {
        Self::build(local_peer_id, None, config)
    }

    /// Creates the behaviour for the peer of `keypair` (its identity key, the one the swarm
    /// authenticates connections with), which signs the local peer's own record: its entry in
    /// a `/cyclon/1.1.0` shuffle carries a signed peer record of the addresses it advertises,
    /// re-signed whenever they change, which other peers can verify.
    ///
    /// # Panics
    ///
    /// If `config` is invalid (see [`Config::validate`]); use
    /// [`Behaviour::try_with_keypair`] to get an error instead.
    pub fn with_keypair(keypair: Keypair, config: Config) -> Self {
        Self::try_with_keypair(keypair, config).unwrap_or_else(|error| invalid(error))
    }

    /// [`Behaviour::with_keypair`], or says why `config` is invalid.
    pub fn try_with_keypair(keypair: Keypair, config: Config) -> Result<Self, ConfigError> {
        let local_peer_id = keypair.public().to_peer_id();
        Self::build(local_peer_id, Some(LocalRecord::new(keypair)), config)
    }

    fn build(
        local_peer_id: PeerId,
        local_record: Option<LocalRecord>,
        config: Config,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        // A defence's private keys come from the thread's cryptographically secure generator.
        let mut view =
            PartialView::with_rng(local_peer_id, config.shuffle_params(), &mut rand::rng())?;
        if let Some(rejoin) = config.rejoin() {
            view.set_rejoin(rejoin)?;
        }
        let mut behaviour = Self {
            local_peer_id,
            view,
            rng: StdRng::seed_from_u64(rand::random()),
            local: LocalPeer::new(
                local_peer_id,
                config.max_addresses_per_entry,
                config.address_scope(),
                local_record,
            ),
            outbound: Outbound::default(),
            handler_settings: HandlerSettings::new(&config),
            events: VecDeque::new(),
            shuffle_timer: None,
            rounds_without_dial: 0,
            refused_retries: 0,
            neighbours: (config.neighbours() > 0).then(|| Neighbours::new(config.neighbours())),
            neighbour_streams: HashMap::new(),
            rate_limiter: RateLimiter::new(MAX_RATE_LIMITED_PEERS),
            created: Instant::now(),
            stats: Stats::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
            config,
        };
        behaviour.resume();
        Ok(behaviour)
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
    /// a view with room enters it with age 0 ([`Event::PeerAdded`], unverified); the address is
    /// also reported to the swarm so other behaviours can dial it (unless signed records are
    /// required, [`Config::with_require_signed_records`]: then the swarm hears only verified
    /// addresses). An entry whose addresses are verified takes no other address
    /// ([`AddAddressResult::Unchanged`]).
    pub fn add_address(&mut self, peer: &PeerId, address: Multiaddr) -> AddAddressResult {
        if *peer == self.local_peer_id {
            return AddAddressResult::Rejected;
        }
        let Some(address) = protocol::strip_own_peer_id(address, peer) else {
            return AddAddressResult::Rejected;
        };
        let max = self.config.max_addresses_per_entry;
        let result = match self.view.add_address(*peer, address.clone(), max) {
            InsertOutcome::Added => {
                self.emit(Event::PeerAdded {
                    peer_id: *peer,
                    addresses: vec![address.clone()],
                    verified: false,
                });
                AddAddressResult::PeerAdded
            }
            InsertOutcome::AddressAdded => AddAddressResult::AddressAdded,
            InsertOutcome::ViewFull => return AddAddressResult::ViewFull,
            _ => return AddAddressResult::Unchanged,
        };
        self.report_addresses(*peer, &[address], false);
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

    /// `n` distinct peers of the view chosen uniformly at random (all of them if the view holds
    /// fewer): a sample of the overlay, as a peer-sampling service gives it.
    pub fn sample(&mut self, n: usize) -> Vec<PeerId> {
        self.view
            .sample(&mut self.rng, n)
            .map(|entry| *entry.peer_id())
            .collect()
    }

    /// The entries of the view, in no particular order.
    pub fn view(&self) -> impl Iterator<Item = &ViewEntry> {
        self.view.entries().iter()
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
    /// the local peer has no address to advertise, which holds periodic shuffles back). Its
    /// outcome is reported as [`Event::ShuffleCompleted`] or [`Event::ShuffleFailed`] with the
    /// returned id. Fails at once, with nothing changed, when the view is empty.
    pub fn shuffle_now(&mut self) -> Result<ShuffleId, StartShuffleError> {
        let own = self.local.payload();
        let shuffle = self.view.start_shuffle(&mut self.rng, own)?;
        Ok(self.send_shuffle(shuffle))
    }

    /// Stops periodic shuffling. Inbound shuffles are still answered and
    /// [`shuffle_now`](Self::shuffle_now) still works. The neighbour set's rounds stop too:
    /// links stand, but one that goes down is not replaced until [`resume`](Self::resume).
    pub fn pause(&mut self) {
        self.shuffle_timer = None;
    }

    /// Resumes periodic shuffling; the next shuffle comes after a random share of the
    /// interval, so that peers do not shuffle in lock-step.
    pub fn resume(&mut self) {
        if self.shuffle_timer.is_none() {
            self.schedule_first_shuffle();
        }
    }

    /// Whether periodic shuffling is paused.
    pub fn is_paused(&self) -> bool {
        self.shuffle_timer.is_none()
    }

    /// Changes the shuffle interval of a running behaviour. Unless paused, the next periodic
    /// shuffle comes after a random share of the new interval, and then one every interval.
    /// The default inbound rate limit follows the interval (see
    /// [`Config::with_inbound_rate_limit`]). A zero interval is refused.
    pub fn set_shuffle_interval(&mut self, interval: Duration) -> Result<(), ConfigError> {
        if interval.is_zero() {
            return Err(ConfigError::ZeroShuffleInterval);
        }
        self.config.shuffle_interval = interval;
        if self.shuffle_timer.is_some() {
            self.schedule_first_shuffle();
        }
        Ok(())
    }

    fn schedule_first_shuffle(&mut self) {
        let delay = self
            .config
            .shuffle_interval
            .mul_f64(self.rng.random::<f64>());
        self.shuffle_timer = Some(Delay::new(delay));
    }

    /// Number of shuffles started and not yet completed or failed.
    pub fn shuffles_in_flight(&self) -> usize {
        self.outbound.len()
    }

    /// Counters of what the behaviour did and refused.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Exports this behaviour's counters and gauges to `registry`, under the prefix `cyclon`
    /// (the metrics are listed in the [crate docs](crate#metrics)). Counters count from now
    /// on; gauges are sampled every time the swarm polls the behaviour.
    #[cfg(feature = "metrics")]
    pub fn enable_metrics(&mut self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics = Some(crate::metrics::Metrics::new(registry));
        self.sample_gauges();
    }

    /// The addresses the local peer advertises in its own entry: confirmed external addresses
    /// within the [address scope](Config::with_address_scope), or the listen addresses within
    /// it when there are none.
    pub fn advertised_addresses(&self) -> Vec<Multiaddr> {
        self.local.advertised()
    }

    /// The local peer's signed record of its [advertised
    /// addresses](Self::advertised_addresses), which its own entry carries over
    /// `/cyclon/1.1.0`: `None` without the key ([`Behaviour::new`]) or while there is no
    /// address to advertise. Re-signed, with a higher sequence number, whenever the advertised
    /// addresses change.
    pub fn local_record(&self) -> Option<&SignedPeerRecord> {
        self.local.record()
    }

    /// Reports addresses of `peer` to the swarm, so other behaviours can dial it: all of them,
    /// or only verified ones when signed records are required.
    fn report_addresses(&mut self, peer: PeerId, addresses: &[Multiaddr], verified: bool) {
        if self.config.require_signed_records && !verified {
            return;
        }
        for address in addresses {
            self.events.push_back(ToSwarm::NewExternalAddrOfPeer {
                peer_id: peer,
                address: address.clone(),
            });
        }
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(ToSwarm::GenerateEvent(event));
    }

    /// Counts `count` in the stats and, when enabled, in the metrics.
    fn count(&mut self, count: Count<'_>) {
        self.stats.count(&count);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.count(&count);
        }
    }

    #[cfg(feature = "metrics")]
    fn sample_gauges(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.sample(&self.view, self.outbound.len(), self.neighbours().len());
        }
    }

    fn new_handler(&mut self, peer: PeerId, connection: ConnectionId, dialer: bool) -> Handler {
        let (preloaded, neighbour) = self.outbound.on_new_connection(&peer, connection, dialer);
        Handler::new(self.handler_settings.clone(), preloaded, neighbour)
    }
}

/// The panic of the constructors that take a configuration as valid.
fn invalid(error: ConfigError) -> ! {
    panic!("invalid Cyclon configuration: {error}")
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
        Ok(self.new_handler(peer, connection_id, false))
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
        let known = self
            .view
            .get(&peer)
            .map_or(&[][..], |e| e.addresses().as_slice());
        Ok(self.outbound.dial_addresses(&peer, known))
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.new_handler(peer, connection_id, true))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.local.on_swarm_event(&event);
        for (id, error) in self.outbound.on_swarm_event(&event) {
            self.fail_shuffle(id, error);
        }
        for peer in self.outbound.take_failed_neighbours() {
            self.neighbour_not_accepted(&peer);
        }
        if let FromSwarm::ConnectionClosed(closed) = &event {
            self.neighbour_connection_closed(closed.peer_id, closed.connection_id);
        }
        // Addresses other behaviours learned, for peers in the view (they do not bootstrap it).
        if let FromSwarm::NewExternalAddrOfPeer(NewExternalAddrOfPeer { peer_id, addr }) = event
            && let Some(addr) = protocol::strip_own_peer_id(addr.clone(), &peer_id)
            && self.config.address_scope().allows(&addr)
        {
            let max = self.config.max_addresses_per_entry;
            self.view.learn_address(&peer_id, addr, max);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        OutEvent(report): THandlerOutEvent<Self>,
    ) {
        match report {
            HandlerEvent::ShuffleResponse {
                id,
                entries,
                invalid,
                version,
            } => {
                self.count(Count::Exchange(version));
                self.count(Count::Invalid(&invalid));
                self.complete_shuffle(id, entries);
            }
            HandlerEvent::ShuffleFailed { id, error } => self.fail_shuffle(id, error),
            HandlerEvent::InboundRequest {
                id,
                entries,
                invalid,
                version,
            } => {
                self.count(Count::Exchange(version));
                self.count(Count::Invalid(&invalid));
                self.answer_shuffle(peer_id, connection_id, id, entries);
            }
            HandlerEvent::InboundFailed { error } => {
                self.count(Count::InboundFailed);
                tracing::debug!(peer = %peer_id, %error, "inbound shuffle failed");
            }
            HandlerEvent::InboundRefused => {
                self.count(Count::InboundRefused);
                tracing::debug!(peer = %peer_id, "inbound shuffle refused");
            }
            HandlerEvent::NeighbourRequest { id, priority } => {
                self.neighbour_request(peer_id, connection_id, id, priority)
            }
            HandlerEvent::NeighbourAnswered { accepted } => {
                self.neighbour_answered(peer_id, connection_id, accepted)
            }
            HandlerEvent::NeighbourClosed => self.neighbour_stream_closed(peer_id, connection_id),
            HandlerEvent::Idle => self.close_if_released(peer_id, connection_id),
        }
    }

    #[tracing::instrument(level = "trace", name = "NetworkBehaviour::poll", skip(self, cx))]
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        #[cfg(feature = "metrics")]
        self.sample_gauges();
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(event);
            }
            if let Some(timer) = self.shuffle_timer.as_mut()
                && timer.poll_unpin(cx).is_ready()
            {
                timer.reset(self.config.shuffle_interval);
                self.periodic_shuffle();
                self.neighbour_round();
                continue;
            }
            if let Poll::Ready(expired) = self.outbound.poll_expired(cx) {
                for id in expired {
                    self.fail_shuffle(id, ShuffleError::Timeout);
                }
                continue;
            }
            return Poll::Pending;
        }
    }
}
