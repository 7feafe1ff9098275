//! The Cyclon [`NetworkBehaviour`]: carries the decisions of the sans-IO core
//! ([`PartialView`]) to the swarm.
//!
//! The core decides what the view becomes and whom to shuffle with; this adapter turns its
//! outcomes into [`Event`]s and [`ToSwarm`] actions, and owns what the core has no notion of:
//! connections, dials, the shuffle timer, deadlines, the addresses the local peer advertises
//! (and its signed record of them, re-signed when they change) and the clocks of the per-peer
//! inbound rate limit and of the record's sequence number.

mod event;
mod recovery;

pub use self::event::{AddAddressResult, Event, RemovalReason};

use std::{
    collections::VecDeque,
    task::{Context, Poll},
    time::Duration,
};

use futures::FutureExt;
use futures_timer::Delay;
use libp2p_core::{Endpoint, Multiaddr, transport::PortUse};
use libp2p_identity::{Keypair, PeerId};
use libp2p_swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, behaviour::NewExternalAddrOfPeer,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use web_time::Instant;

use crate::{
    config::{Config, ConfigError},
    handler::{
        Command, Handler, HandlerSettings, InEvent, InboundId, OutEvent, OutboundShuffle, Report,
        ShuffleError,
    },
    local_peer::LocalPeer,
    outbound::Outbound,
    protocol::{self, ViewEntry},
    rate_limit::{MAX_RATE_LIMITED_PEERS, RateLimiter},
    record::{LocalRecord, PeerAddresses, SignedPeerRecord},
    stats::{Record, Stats},
    view::{
        InsertOutcome, MergeOutcome, OutgoingShuffle, PartialView, ShuffleId, StartShuffleError,
    },
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
            local: LocalPeer::new(local_peer_id, config.max_addresses_per_entry, local_record),
            outbound: Outbound::default(),
            handler_settings: HandlerSettings::new(&config),
            events: VecDeque::new(),
            shuffle_timer: None,
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
    /// the local peer has no address to advertise, which holds periodic shuffles back). Its
    /// outcome is reported as [`Event::ShuffleCompleted`] or [`Event::ShuffleFailed`] with the
    /// returned id. Fails at once, with nothing changed, when the view is empty.
    pub fn shuffle_now(&mut self) -> Result<ShuffleId, StartShuffleError> {
        let own = self.local.payload();
        let shuffle = self.view.start_shuffle(&mut self.rng, own)?;
        Ok(self.send_shuffle(shuffle))
    }

    /// Stops periodic shuffling. Inbound shuffles are still answered and
    /// [`shuffle_now`](Self::shuffle_now) still works.
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

    /// The addresses the local peer advertises in its own entry: confirmed external addresses,
    /// or the listen addresses when there are none.
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

    /// Counts `record` in the stats and, when enabled, in the metrics.
    fn record(&mut self, record: Record<'_>) {
        self.stats.record(&record);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.record(&record);
        }
    }

    #[cfg(feature = "metrics")]
    fn sample_gauges(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.sample(&self.view, self.outbound.len());
        }
    }

    /// Sends a shuffle the core started to its target: on a connection if there is one,
    /// otherwise after dialling it with the view's addresses.
    fn send_shuffle(&mut self, shuffle: OutgoingShuffle<PeerId, PeerAddresses>) -> ShuffleId {
        let id = shuffle.id;
        let (peer, addresses, _) = shuffle.target.into_parts();
        self.record(Record::ShuffleStarted);
        if shuffle.probe {
            self.record(Record::ProbeStarted);
            tracing::debug!(%peer, %id, "probing a seed or a lost peer");
        } else {
            tracing::debug!(%peer, %id, "starting a shuffle");
        }
        if shuffle.target_left {
            self.emit(Event::PeerRemoved {
                peer_id: peer,
                reason: RemovalReason::ShuffleTarget,
            });
        }
        let outbound = OutboundShuffle::new(id, shuffle.request);
        // A shuffle that needs a dial gets one timeout for the dial and one for the exchange.
        let timeout = 2 * self.config.request_timeout;
        let action = self
            .outbound
            .send(peer, addresses.to_vec(), outbound, timeout);
        self.events.push_back(action);
        id
    }

    fn complete_shuffle(&mut self, id: ShuffleId, entries: Vec<ViewEntry>) {
        let Some(peer) = self.view.pending_target(id).copied() else {
            return; // Already failed, e.g. by its deadline.
        };
        self.outbound.end(id, &peer);
        let received = entries.len();
        let Some(done) = self.view.complete_shuffle(id, entries) else {
            return;
        };
        self.record(Record::ShuffleCompleted);
        tracing::debug!(peer = %done.target, %id, received, "shuffle completed");
        self.report_merge(done.merge);
        self.emit(Event::ShuffleCompleted {
            id,
            peer_id: done.target,
            sent: done.sent,
            received,
        });
    }

    fn fail_shuffle(&mut self, id: ShuffleId, error: ShuffleError) {
        let Some(failed) = self.view.fail_shuffle(id) else {
            return; // Already ended.
        };
        let peer = failed.target;
        if failed.removed {
            self.emit(Event::PeerRemoved {
                peer_id: peer,
                reason: RemovalReason::ShuffleTarget,
            });
        }
        self.outbound.end(id, &peer);
        self.record(Record::ShuffleFailed(&error));
        tracing::debug!(%peer, %id, %error, "shuffle failed");
        self.emit(Event::ShuffleFailed {
            id,
            peer_id: peer,
            error,
        });
    }

    fn answer_shuffle(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        id: InboundId,
        entries: Vec<ViewEntry>,
    ) {
        let notify = |command| ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: InEvent(command),
        };
        if let Some(limit) = self.config.inbound_rate_limit()
            && !self.rate_limiter.allow(peer, limit, self.created.elapsed())
        {
            self.record(Record::InboundRateLimited);
            tracing::debug!(%peer, "refusing a shuffle: the peer asks too often");
            self.events.push_back(notify(Command::Refuse { id }));
            return;
        }
        let received = entries.len();
        let (reply, merge) = self.view.answer_shuffle(&mut self.rng, &peer, entries);
        self.record(Record::InboundAnswered);
        let sent = reply.len();
        self.events
            .push_back(notify(Command::Answer { id, entries: reply }));
        self.report_merge(merge);
        self.emit(Event::ShuffleAnswered {
            peer_id: peer,
            received,
            sent,
        });
    }

    /// Reports how a merge changed the view: events for the peers that left and entered it,
    /// and the addresses of the entries it took or updated to the swarm (only verified ones
    /// when signed records are required).
    fn report_merge(&mut self, merge: MergeOutcome<PeerId>) {
        self.record(Record::Ignored(&merge.ignored));
        for peer_id in merge.removed {
            self.emit(Event::PeerRemoved {
                peer_id,
                reason: RemovalReason::Replaced,
            });
        }
        let taken = merge.added.iter().map(|peer| (peer, true));
        let kept = merge.refreshed.iter().chain(&merge.updated);
        for (&peer_id, entered) in taken.chain(kept.map(|peer| (peer, false))) {
            let Some(entry) = self.view.get(&peer_id) else {
                continue;
            };
            let verified = entry.addresses().is_verified();
            let addresses = entry.addresses().to_vec();
            self.report_addresses(peer_id, &addresses, verified);
            if entered {
                self.emit(Event::PeerAdded {
                    peer_id,
                    addresses,
                    verified,
                });
            }
        }
    }

    fn new_handler(&mut self, peer: PeerId, connection: ConnectionId) -> Handler {
        let preloaded = self.outbound.on_new_connection(&peer, connection);
        Handler::new(self.handler_settings.clone(), preloaded)
    }

    /// The periodic shuffle, when the timer fires: the core decides whether this round runs,
    /// and whether a [`Rejoin`](crate::Rejoin) probe follows it.
    fn periodic_shuffle(&mut self) {
        let own = self.local.payload();
        let own = (!own.is_empty()).then_some(own);
        match self.view.periodic_shuffle(&mut self.rng, own.clone()) {
            Ok(shuffle) => _ = self.send_shuffle(shuffle),
            Err(reason) => tracing::debug!(%reason, "no periodic shuffle"),
        }
        if let Some(probe) = self.view.periodic_probe(&mut self.rng, own) {
            self.send_shuffle(probe);
        }
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
        Ok(self.new_handler(peer, connection_id))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.local.on_swarm_event(&event);
        for (id, error) in self.outbound.on_swarm_event(&event) {
            self.fail_shuffle(id, error);
        }
        // Addresses other behaviours learned, for peers in the view (they do not bootstrap it).
        if let FromSwarm::NewExternalAddrOfPeer(NewExternalAddrOfPeer { peer_id, addr }) = event
            && self.view.contains(&peer_id)
            && let Some(addr) = protocol::strip_own_peer_id(addr.clone(), &peer_id)
        {
            let max = self.config.max_addresses_per_entry;
            self.view.add_address(peer_id, addr, max);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        OutEvent(report): THandlerOutEvent<Self>,
    ) {
        match report {
            Report::ShuffleResponse {
                id,
                entries,
                invalid,
                version,
            } => {
                self.record(Record::Exchange(version));
                self.record(Record::Invalid(&invalid));
                self.complete_shuffle(id, entries);
            }
            Report::ShuffleFailed { id, error } => self.fail_shuffle(id, error),
            Report::InboundRequest {
                id,
                entries,
                invalid,
                version,
            } => {
                self.record(Record::Exchange(version));
                self.record(Record::Invalid(&invalid));
                self.answer_shuffle(peer_id, connection_id, id, entries);
            }
            Report::InboundFailed { error } => {
                self.record(Record::InboundFailed);
                tracing::debug!(peer = %peer_id, %error, "inbound shuffle failed");
            }
            Report::InboundRefused => {
                self.record(Record::InboundRefused);
                tracing::debug!(peer = %peer_id, "inbound shuffle refused");
            }
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

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use futures::task::noop_waker_ref;

    use super::*;
    use crate::snapshot::SnapshotError;

    fn entry(peer: PeerId, age: u32) -> ViewEntry {
        let addresses = vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()];
        ViewEntry::new(peer, PeerAddresses::unverified(addresses), age)
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
            OutEvent(Report::ShuffleResponse {
                id,
                entries,
                invalid: Default::default(),
                version: crate::protocol::Version::V1_1,
            }),
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

    #[test]
    fn only_verified_addresses_reach_the_swarm_when_records_are_required() {
        let unverified: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let signed: Multiaddr = "/ip4/127.0.0.1/tcp/2".parse().unwrap();
        for strict in [false, true] {
            let config = Config::default()
                .with_view_size(4)
                .with_shuffle_length(2)
                .with_require_signed_records(strict);
            let mut behaviour = Behaviour::new(PeerId::random(), config);
            behaviour.pause();
            let q = PeerId::random();
            behaviour.add_address(&q, unverified.clone());
            let id = behaviour.shuffle_now().unwrap();
            let key = Keypair::generate_ed25519();
            let v = key.public().to_peer_id();
            let record = SignedPeerRecord::sign(&key, std::slice::from_ref(&signed), 1).unwrap();
            let payload = PeerAddresses::signed(record, vec![signed.clone()]);
            respond(&mut behaviour, q, id, vec![ViewEntry::new(v, payload, 0)]);

            let mut cx = Context::from_waker(noop_waker_ref());
            let (mut reported, mut added) = (Vec::new(), Vec::new());
            while let Poll::Ready(event) = behaviour.poll(&mut cx) {
                match event {
                    ToSwarm::NewExternalAddrOfPeer { peer_id, address } => {
                        reported.push((peer_id, address))
                    }
                    ToSwarm::GenerateEvent(Event::PeerAdded {
                        peer_id, verified, ..
                    }) => added.push((peer_id, verified)),
                    _ => {}
                }
            }
            assert_eq!(added, vec![(q, false), (v, true)]);
            let mut expected = vec![(v, signed.clone())];
            if !strict {
                expected.insert(0, (q, unverified.clone()));
            }
            assert_eq!(reported, expected, "strict: {strict}");
        }
    }

    #[test]
    fn a_behaviour_with_a_key_signs_its_own_entry() {
        let key = Keypair::generate_ed25519();
        let mut behaviour = Behaviour::with_keypair(key.clone(), Config::default());
        assert_eq!(behaviour.local_peer_id(), &key.public().to_peer_id());
        assert!(behaviour.local_record().is_none());
        let address: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        behaviour.on_swarm_event(FromSwarm::NewListenAddr(
            libp2p_swarm::behaviour::NewListenAddr {
                listener_id: libp2p_core::transport::ListenerId::next(),
                addr: &address,
            },
        ));
        let record = behaviour.local_record().expect("signed").clone();
        let own = behaviour.local.payload();
        assert_eq!(own.signed_record(), Some(&record));
        let mut unkeyed = Behaviour::new(PeerId::random(), Config::default());
        unkeyed.on_swarm_event(FromSwarm::NewListenAddr(
            libp2p_swarm::behaviour::NewListenAddr {
                listener_id: libp2p_core::transport::ListenerId::next(),
                addr: &address,
            },
        ));
        assert_eq!(unkeyed.local.payload().to_vec(), vec![address]);
        assert!(!unkeyed.local.payload().is_verified());
    }

    #[test]
    fn a_view_exported_and_imported_comes_back_with_its_ages() {
        let local = PeerId::random();
        let mut behaviour = Behaviour::new(local, Config::default());
        behaviour.pause();
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        for peer in &peers {
            behaviour.add_address(peer, "/ip4/10.0.0.1/tcp/1".parse().unwrap());
        }
        let first = behaviour.shuffle_now().unwrap(); // ages the other two
        respond(&mut behaviour, peers[0], first, Vec::new());
        let saved = behaviour.export_view();

        let mut restarted = Behaviour::new(local, Config::default());
        let imported = restarted.import_view(&saved).unwrap();
        assert_eq!(imported.added, behaviour.view_len());
        let ages = |b: &Behaviour| {
            let mut v: Vec<(PeerId, u32)> = b.view().map(|e| (*e.peer_id(), e.age())).collect();
            v.sort();
            v
        };
        assert_eq!(ages(&restarted), ages(&behaviour));
        assert_eq!(
            view_events(&mut restarted).len(),
            imported.added,
            "one PeerAdded per entry"
        );
        // Again: nothing new. Another peer's snapshot or garbage: an error, nothing changed.
        assert_eq!(
            restarted.import_view(&saved).unwrap().not_taken,
            imported.added
        );
        let mut other = Behaviour::new(PeerId::random(), Config::default());
        assert!(matches!(
            other.import_view(&saved),
            Err(SnapshotError::ForeignPeer { .. })
        ));
        assert!(other.import_view(b"garbage").is_err());
        assert_eq!(other.view_len(), 0);
    }

    #[test]
    fn a_probe_takes_nobody_out_of_the_view() {
        use crate::view::Rejoin;
        let config = Config::default().with_rejoin(Rejoin::new(4, 1));
        let mut behaviour = Behaviour::new(PeerId::random(), config);
        behaviour.pause();
        let seed = PeerId::random();
        assert_eq!(
            behaviour.add_seed(&seed, "/ip4/10.0.0.1/tcp/1".parse().unwrap()),
            AddAddressResult::PeerAdded
        );
        assert_eq!(behaviour.seeds().count(), 1);
        let id = behaviour.shuffle_now().unwrap();
        behaviour.fail_shuffle(id, ShuffleError::Timeout);
        assert_eq!(behaviour.view_len(), 0);
        assert_eq!(behaviour.lost_peers().count(), 0, "a seed is not lost");
        view_events(&mut behaviour);
        // No address to advertise: no probe; with one, the empty view probes the seed.
        behaviour.periodic_shuffle();
        assert_eq!(behaviour.stats().probes_started, 0);
        behaviour
            .local
            .on_swarm_event(&FromSwarm::NewListenAddr(libp2p_swarm::NewListenAddr {
                listener_id: libp2p_core::transport::ListenerId::next(),
                addr: &"/ip4/10.0.0.2/tcp/1".parse().unwrap(),
            }));
        behaviour.periodic_shuffle();
        assert_eq!(behaviour.stats().probes_started, 1);
        assert!(
            view_events(&mut behaviour).is_empty(),
            "no PeerRemoved for a probe's target"
        );
        assert_eq!(behaviour.shuffles_in_flight(), 1);
    }

    #[test]
    fn the_interval_changes_at_run_time() {
        let mut behaviour = Behaviour::new(PeerId::random(), Config::default());
        let error = behaviour.set_shuffle_interval(Duration::ZERO).unwrap_err();
        assert!(matches!(error, ConfigError::ZeroShuffleInterval));
        behaviour.pause();
        behaviour
            .set_shuffle_interval(Duration::from_millis(500))
            .unwrap();
        assert!(behaviour.is_paused(), "a new interval does not resume");
        assert_eq!(
            behaviour.config().shuffle_interval(),
            Duration::from_millis(500)
        );
        let limit = behaviour.config().inbound_rate_limit().unwrap();
        assert_eq!(limit.refill_every, Duration::from_millis(250));
        behaviour.resume();
        behaviour
            .set_shuffle_interval(Duration::from_secs(1))
            .unwrap();
        assert!(!behaviour.is_paused());
    }
}
