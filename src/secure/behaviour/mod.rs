//! SecureCyclon over the network: [`Behaviour`], a [`NetworkBehaviour`] speaking
//! `/cyclon/2.0.0` (the message sequence, fields and limits are in `docs/protocol.md`).
//!
//! It is a behaviour of its own rather than a mode of [`crate::Behaviour`]: the core it drives
//! is another state machine ([`SecureView`], not [`PartialView`](crate::view::PartialView)),
//! an exchange is a conversation of several messages on one stream (not one request and one
//! answer), and a node in this mode speaks only `/cyclon/2.0.0` (the spec keeps the two
//! overlays apart). Sharing a type would have put a second state machine behind every method
//! of the plain behaviour.
//!
//! The core decides every rule: whom to contact ([`SecureView::select`]), what to send
//! ([`SecureView::open`], [`SecureView::answer`], [`SecureView::advance`]), what a failure
//! costs ([`SecureView::fail`], [`SecureView::abandon`]), which proofs to flood
//! ([`SecureView::drain_floods`], [`SecureView::receive_proofs`]). The behaviour carries
//! frames between the core and the handler of each connection (one stream per
//! exchange, each frame handed up and each reply handed down), owns connections, dials,
//! the round and housekeeping timers and deadlines, reads the clock (milliseconds since the
//! Unix epoch), and turns the core's outcomes into [`Event`]s and counters ([`Stats`]). The
//! addresses in the descriptors the view holds were signed by their creators, and are
//! reported to the swarm ([`ToSwarm::NewExternalAddrOfPeer`]); which creators entered or
//! left the holdings comes from the core too ([`SecureView::drain_changes`]).
//!
//! One check stays here because it is about streams, not descriptors: a stream opens with an
//! `Open` or a `ProofPush`, and continues with `Accept`, `Refuse` or `Step`; a frame out of
//! that order is counted as [`Invalid::Unexpected`](crate::secure::Invalid::Unexpected) and
//! the stream is reset (the exchange, if one had begun, is failed through the core).

mod config;
mod event;
mod exchanges;
mod failures;
mod framing;
pub(crate) mod handler;
mod outcomes;

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
    ConnectionClosed, ConnectionDenied, ConnectionId, DialFailure, FromSwarm, NetworkBehaviour,
    NotifyHandler, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    behaviour::ConnectionEstablished,
    dial_opts::{DialOpts, PeerCondition},
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use web_time::{Instant, SystemTime};

use self::handler::{
    Command, Handler, HandlerEvent, HandlerSettings, InEvent, Opening, OutEvent, Reply, StreamKey,
};
pub use self::{
    config::Config,
    event::{Event, ExchangeError, Stats, StreamError},
};
use crate::{
    config::ConfigError,
    handler::InboundLimit,
    local_peer::LocalPeer,
    secure::{
        ExchangeId, Role, SecureView, Selected,
        keys::{KeypairSigner, Libp2pScheme},
    },
};

/// The view a node keeps: real keys, multiaddresses.
pub type NodeView = SecureView<PeerId, Vec<Multiaddr>, Libp2pScheme, KeypairSigner>;

/// An exchange the local node opened.
#[derive(Debug)]
struct Outgoing {
    peer: PeerId,
    connection: Option<ConnectionId>,
    deadline: Instant,
    gained: usize,
    given: usize,
}

/// An exchange another node opened, once answered.
#[derive(Debug)]
struct Answered {
    peer: PeerId,
    id: ExchangeId,
    deadline: Instant,
    gained: usize,
    given: usize,
}

/// The SecureCyclon [`NetworkBehaviour`]: periodic exchanges over `/cyclon/2.0.0`, driven by a
/// [`SecureView`] (the message sequence, fields and limits are in `docs/protocol.md`).
///
/// Every interval the core chooses whom to contact ([`SecureView::select`]); the behaviour
/// opens a stream to it (dialling the addresses the target signed, or a seed's), the core
/// opens the exchange ([`SecureView::open`]), and each frame received goes to the core
/// ([`SecureView::advance`]), whose reply is sent, until it says the exchange is over.
/// Streams other nodes open are answered the same way ([`SecureView::answer`]). Timeouts,
/// stream errors and dial failures fail or abandon the exchange in the core; the proofs the
/// core queues are pushed to its targets on streams of their own, and pushes received go to
/// [`SecureView::receive_proofs`]. The behaviour decides no protocol rule: it owns
/// connections, dials, timers, deadlines and the clock (milliseconds since the Unix epoch),
/// and reports the core's outcomes as [`Event`]s and [`Stats`].
///
/// It is a behaviour of its own, not a mode of [`crate::Behaviour`]: its core is another state
/// machine, an exchange is a conversation of several messages on one stream rather than a
/// request and an answer, and a node in this mode speaks only `/cyclon/2.0.0`. The addresses
/// in the descriptors the view holds were signed by their creators; they are reported to the
/// swarm ([`ToSwarm::NewExternalAddrOfPeer`]) and answered from
/// `handle_pending_outbound_connection`, so that other behaviours can dial those peers.
///
/// ```
/// use libp2p_cyclon::secure;
///
/// let key = libp2p_identity::Keypair::generate_ed25519();
/// let mut behaviour = secure::Behaviour::new(
///     key,
///     secure::Config::default().with_view_size(20).with_shuffle_length(5),
/// );
/// let seed = libp2p_identity::Keypair::generate_ed25519().public().to_peer_id();
/// behaviour.add_seed(seed, "/ip4/192.0.2.1/tcp/4001".parse().unwrap());
/// assert!(behaviour.contacts().is_empty()); // a seed is joined, not held
/// ```
pub struct Behaviour {
    config: Config,
    view: NodeView,
    rng: StdRng,
    local: LocalPeer,
    settings: HandlerSettings,
    events: VecDeque<ToSwarm<Event, InEvent>>,
    /// Fires the next round; `None` while paused.
    round_timer: Option<Delay>,
    housekeeping: Delay,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// Exchanges and pushes waiting for a connection to a peer being dialled.
    waiting: HashMap<PeerId, Vec<Opening>>,
    outgoing: HashMap<ExchangeId, Outgoing>,
    answered: HashMap<(ConnectionId, StreamKey), Answered>,
    /// Bootstrap contacts' addresses (the core keeps their ids as seeds).
    seeds: HashMap<PeerId, Vec<Multiaddr>>,
    stats: Stats,
}

/// Milliseconds since the Unix epoch (a clock before 1970 reads 0).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Behaviour {
    /// Creates the behaviour for the node of `keypair` (its identity key, which signs its
    /// descriptors and hand-overs).
    ///
    /// The key may have minted before (a restart): the first descriptor is dated later than
    /// any it could have minted, so the first exchange waits about a gap and a half.
    ///
    /// # Panics
    ///
    /// If `config` is invalid or the key's peer id does not inline the public key; use
    /// [`Behaviour::try_new`] to get an error instead.
    pub fn new(keypair: Keypair, config: Config) -> Self {
        Self::try_new(keypair, config)
            .unwrap_or_else(|error| panic!("invalid SecureCyclon configuration: {error}"))
    }

    /// [`Behaviour::new`], or says why it cannot be built.
    pub fn try_new(keypair: Keypair, config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let local_peer_id = keypair.public().to_peer_id();
        let signer = KeypairSigner::new(keypair).map_err(|_| ConfigError::KeyNotInlined)?;
        // The anchors' private seeds come from the thread's cryptographically secure
        // generator.
        let view = SecureView::new(
            config.shuffle_params(),
            Libp2pScheme,
            signer,
            now_ms(),
            &mut rand::rng(),
        )?;
        let limits = config.wire_limits();
        let settings = HandlerSettings {
            local: local_peer_id,
            protocol: config.protocol().ok_or_else(|| {
                ConfigError::InvalidProtocolPrefix(config.protocol_prefix().to_owned())
            })?,
            request_timeout: config.request_timeout(),
            limits,
            max_inbound_per_connection: config.max_inbound_streams_per_connection,
            max_outbound_per_connection: config.max_outbound_streams_per_connection,
            inbound_limit: InboundLimit::new(config.max_inbound_streams),
        };
        let mut behaviour = Self {
            view,
            rng: StdRng::seed_from_u64(rand::random()),
            local: LocalPeer::new(
                local_peer_id,
                limits.max_addresses,
                config.address_scope(),
                None,
            ),
            settings,
            events: VecDeque::new(),
            round_timer: None,
            housekeeping: Delay::new(housekeeping_period(&config)),
            connections: HashMap::new(),
            waiting: HashMap::new(),
            outgoing: HashMap::new(),
            answered: HashMap::new(),
            seeds: HashMap::new(),
            stats: Stats::default(),
            config,
        };
        behaviour.resume();
        Ok(behaviour)
    }

    /// The local node.
    pub fn local_peer_id(&self) -> &PeerId {
        self.view.local()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The core: holdings, anchors, blacklist, proofs, counters.
    pub fn view(&self) -> &NodeView {
        &self.view
    }

    /// Counters of what the behaviour did and refused.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The nodes the view can contact (creators of its holdings, then anchors).
    pub fn contacts(&self) -> Vec<PeerId> {
        self.view.contacts().copied().collect()
    }

    /// Adds `peer`, reachable at `address`, as a seed: a bootstrap contact the core joins
    /// while the view is small (this mode takes no unsigned entry into the view).
    pub fn add_seed(&mut self, peer: PeerId, address: Multiaddr) {
        if peer == *self.view.local() {
            return;
        }
        self.view.add_seed(peer);
        let addresses = self.seeds.entry(peer).or_default();
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }

    /// Starts a round now, outside the schedule (also while paused). The core may decline
    /// ([`Event::RoundSkipped`]).
    pub fn exchange_now(&mut self) {
        self.round();
    }

    /// Stops the periodic rounds; inbound exchanges are still answered.
    pub fn pause(&mut self) {
        self.round_timer = None;
    }

    /// Resumes the periodic rounds; the next one comes after a random share of the interval.
    pub fn resume(&mut self) {
        if self.round_timer.is_none() {
            let delay = self.config.interval().mul_f64(self.rng.random::<f64>());
            self.round_timer = Some(Delay::new(delay));
        }
    }

    /// Whether the periodic rounds are paused.
    pub fn is_paused(&self) -> bool {
        self.round_timer.is_none()
    }

    /// Exchanges this node opened that are not over yet.
    pub fn exchanges_in_flight(&self) -> usize {
        self.outgoing.len()
    }

    /// The addresses the local node puts in its descriptors.
    pub fn advertised_addresses(&self) -> Vec<Multiaddr> {
        self.local.advertised()
    }

    // ------------------------------------------------------------------ rounds

    fn round(&mut self) {
        self.stats.rounds += 1;
        if self.local.advertised().is_empty() {
            // A descriptor without an address would name a node nobody can dial.
            self.stats.rounds_skipped += 1;
            return;
        }
        let selected = self.view.select(&mut self.rng, now_ms());
        match selected {
            Ok(selected) => self.start(selected),
            Err(reason) => {
                self.stats.rounds_skipped += 1;
                self.emit(Event::RoundSkipped { reason });
            }
        }
        self.sync_holdings();
    }

    /// Carries a selected exchange to its target: over an open connection, or by dialling it
    /// at the descriptor's (or the seed's) addresses.
    fn start(&mut self, selected: Selected<PeerId, Vec<Multiaddr>>) {
        let Selected {
            id,
            target,
            addresses,
            ..
        } = selected;
        self.stats.exchanges_started += 1;
        let deadline = Instant::now() + 2 * self.config.request_timeout();
        let connection = self.connection_to(&target);
        self.outgoing.insert(
            id,
            Outgoing {
                peer: target,
                connection,
                deadline,
                gained: 0,
                given: 0,
            },
        );
        if let Some(connection) = connection {
            self.notify(target, connection, Command::Open(id));
            return;
        }
        let addresses = addresses
            .map(|a| self.in_scope(&a))
            .filter(|a| !a.is_empty())
            .or_else(|| self.seeds.get(&target).cloned())
            .unwrap_or_default();
        if addresses.is_empty() {
            self.outgoing.remove(&id);
            let out = self.view.abandon(id);
            self.apply(Some(target), out);
            self.failed(
                target,
                Role::Initiator,
                ExchangeError::Dial("no address".into()),
            );
            return;
        }
        self.dial(target, addresses, Opening::Exchange(id));
    }

    fn dial(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, opening: Opening) {
        self.waiting.entry(peer).or_default().push(opening);
        self.events.push_back(ToSwarm::Dial {
            opts: DialOpts::peer_id(peer)
                .addresses(addresses)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build(),
        });
    }

    fn connection_to(&self, peer: &PeerId) -> Option<ConnectionId> {
        self.connections.get(peer).and_then(|c| c.first()).copied()
    }

    fn notify(&mut self, peer: PeerId, connection: ConnectionId, command: Command) {
        self.events.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: InEvent(command),
        });
    }

    fn reply(&mut self, peer: PeerId, connection: ConnectionId, key: StreamKey, reply: Reply) {
        self.notify(peer, connection, Command::Reply(key, reply));
    }

    fn new_handler(&mut self, peer: PeerId, connection: ConnectionId) -> Handler {
        let preloaded = self.waiting.remove(&peer).unwrap_or_default();
        for opening in &preloaded {
            if let Opening::Exchange(id) = opening
                && let Some(exchange) = self.outgoing.get_mut(id)
            {
                exchange.connection = Some(connection);
            }
        }
        Handler::new(self.settings.clone(), peer, preloaded)
    }
}

fn housekeeping_period(config: &Config) -> Duration {
    config.interval().min(Duration::from_secs(1))
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
        Ok(maybe_peer
            .map(|p| self.addresses_of(&p))
            .unwrap_or_default())
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
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => {
                self.connections
                    .entry(peer_id)
                    .or_default()
                    .push(connection_id);
                // Streams asked for after the handler was made, before the swarm said so.
                for opening in self.waiting.remove(&peer_id).unwrap_or_default() {
                    let command = match opening {
                        Opening::Exchange(id) => {
                            if let Some(exchange) = self.outgoing.get_mut(&id) {
                                exchange.connection = Some(connection_id);
                            }
                            Command::Open(id)
                        }
                        Opening::Push(proofs) => Command::Push(proofs),
                    };
                    self.notify(peer_id, connection_id, command);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => self.on_connection_closed(peer_id, connection_id),
            FromSwarm::DialFailure(DialFailure {
                peer_id: Some(peer),
                error,
                ..
            }) => self.on_dial_failure(peer, error),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        OutEvent(event): THandlerOutEvent<Self>,
    ) {
        match event {
            HandlerEvent::Ready(id) => self.on_ready(peer_id, connection_id, id),
            HandlerEvent::Frame(StreamKey::Exchange(id), frame) => {
                self.on_outgoing_frame(peer_id, connection_id, id, frame)
            }
            HandlerEvent::Frame(key @ StreamKey::Inbound(_), frame) => {
                self.on_inbound_frame(peer_id, connection_id, key, frame)
            }
            HandlerEvent::Frame(key @ StreamKey::Push(_), _) => {
                self.unexpected(peer_id, connection_id, key, None, Role::Initiator)
            }
            HandlerEvent::Failed(key, error) => {
                self.on_stream_failed(peer_id, connection_id, key, error)
            }
            HandlerEvent::PushSent => self.stats.pushes_sent += 1,
            HandlerEvent::InboundRefused => {
                self.stats.inbound_refused += 1;
                tracing::debug!(peer = %peer_id, "refused a /cyclon/2.0.0 stream: too many");
            }
        }
    }

    #[tracing::instrument(level = "trace", name = "secure::Behaviour::poll", skip(self, cx))]
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(event);
            }
            if let Some(timer) = self.round_timer.as_mut()
                && timer.poll_unpin(cx).is_ready()
            {
                timer.reset(self.config.interval());
                self.round();
                continue;
            }
            if self.housekeeping.poll_unpin(cx).is_ready() {
                self.housekeeping.reset(housekeeping_period(&self.config));
                self.housekeeping();
                continue;
            }
            return Poll::Pending;
        }
    }
}
