//! The [`Behaviour`](crate::Behaviour)'s [`Config`]: the shuffle rules' parameters, which it
//! hands to the sans-IO core ([`ShuffleParams`]), and what only the behaviour uses (interval,
//! timeouts, message and stream bounds, signed records, the inbound rate limit).

use std::time::Duration;

use libp2p_swarm::StreamProtocol;

use crate::{
    address_scope::AddressScope,
    protocol::{self, EntryLimits, ProtocolId, StreamKind, Version},
    view::{Defence, ParamsError, Rejoin, ShuffleMode, ShuffleParams},
};

/// Default shuffle interval (the paper's "cycle"): 10 s.
pub(crate) const DEFAULT_SHUFFLE_INTERVAL: Duration = Duration::from_secs(10);
/// Default request timeout: 10 s.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default maximum size of one protobuf message on the wire: 8 KiB.
const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 * 1024;
/// Default maximum number of addresses kept per entry: 8.
const DEFAULT_MAX_ADDRESSES_PER_ENTRY: usize = 8;
/// Default maximum number of inbound shuffles in flight on one connection: 1.
const DEFAULT_MAX_INBOUND_STREAMS_PER_CONNECTION: usize = 1;
/// Default maximum number of inbound shuffles in flight over all connections: 64.
const DEFAULT_MAX_INBOUND_STREAMS: usize = 64;
/// Default burst of the per-peer inbound rate limit: 5 shuffles.
const DEFAULT_INBOUND_BURST: u32 = 5;
/// The smallest accepted [`Config::with_max_message_size`]: room for a few entries.
pub(crate) const MIN_MESSAGE_SIZE: usize = 512;
/// Default maximum size of one signed peer record in an entry: 512 bytes. An ed25519 record
/// takes 156 bytes plus 4 to 30 per address (186 with two IPv4 addresses, 372 with eight IPv6
/// QUIC ones); an RSA-2048 one about 620, so a build that verifies RSA keys (libp2p-identity's
/// `rsa` feature) needs a larger limit. With it, messages of `l` ≤ 14 entries fit in the
/// default message size.
const DEFAULT_MAX_RECORD_SIZE: usize = 512;
/// The smallest accepted [`Config::with_max_record_size`]: an ed25519 record with a couple of
/// addresses.
const MIN_RECORD_SIZE: usize = 256;
/// What an entry takes on the wire beside its signed record, in the message size budget
/// ([`Config::with_max_record_size`]): its peer id, age and protobuf framing.
const ENTRY_OVERHEAD: usize = 64;

/// How often one remote peer may make us shuffle (a token bucket per peer):
/// [`Config::inbound_rate_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboundRateLimit {
    /// Shuffles a peer may ask for in a row.
    pub burst: u32,
    /// One more shuffle is allowed after each period of this length.
    pub refill_every: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateLimitSetting {
    /// Burst [`DEFAULT_INBOUND_BURST`], refilled twice per shuffle interval.
    TwicePerInterval,
    Custom(InboundRateLimit),
    Disabled,
}

/// Configuration of the Cyclon [`Behaviour`](crate::Behaviour).
///
/// Build it from [`Config::default`] with the `with_*` methods. Invalid combinations (such as
/// a shuffle length above the view size) are reported by [`Config::validate`] and
/// [`Behaviour::try_new`](crate::Behaviour::try_new).
///
/// ```
/// use std::time::Duration;
/// use libp2p_cyclon::Config;
///
/// let config = Config::default()
///     .with_view_size(30)
///     .with_shuffle_length(8)
///     .with_shuffle_interval(Duration::from_secs(5));
/// assert!(config.validate().is_ok());
/// assert!(Config::default().with_view_size(3).validate().is_err()); // l = 5 > c = 3
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) params: ShuffleParams,
    pub(crate) shuffle_interval: Duration,
    pub(crate) request_timeout: Duration,
    /// `None`: large enough for the message length's entries with records of the maximum
    /// size, and at least the default.
    max_message_size: Option<usize>,
    pub(crate) max_addresses_per_entry: usize,
    pub(crate) max_inbound_streams_per_connection: usize,
    pub(crate) max_inbound_streams: usize,
    rate_limit: RateLimitSetting,
    pub(crate) max_record_size: usize,
    pub(crate) require_signed_records: bool,
    pub(crate) signed_records: bool,
    pub(crate) rejoin: Option<Rejoin>,
    address_scope: AddressScope,
    /// Put before every protocol name; empty: the protocol's own names.
    protocol_prefix: String,
    /// The neighbour links kept (0: none).
    neighbours: usize,
    /// Close the connections dialled for shuffles once they ended.
    close_shuffle_connections: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            params: ShuffleParams::default(),
            shuffle_interval: DEFAULT_SHUFFLE_INTERVAL,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_message_size: None,
            max_addresses_per_entry: DEFAULT_MAX_ADDRESSES_PER_ENTRY,
            max_inbound_streams_per_connection: DEFAULT_MAX_INBOUND_STREAMS_PER_CONNECTION,
            max_inbound_streams: DEFAULT_MAX_INBOUND_STREAMS,
            rate_limit: RateLimitSetting::TwicePerInterval,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            require_signed_records: false,
            signed_records: true,
            rejoin: None,
            address_scope: AddressScope::Any,
            protocol_prefix: String::new(),
            neighbours: 0,
            close_shuffle_connections: false,
        }
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// View size or shuffle length out of range.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The shuffle interval is zero.
    #[error("shuffle interval must be greater than zero")]
    ZeroShuffleInterval,
    /// The request timeout is zero.
    #[error("request timeout must be greater than zero")]
    ZeroRequestTimeout,
    /// The maximum message size cannot hold a single entry.
    #[error("max message size {0} is below the minimum of {min}", min = MIN_MESSAGE_SIZE)]
    MessageSizeTooSmall(usize),
    /// Entries would have no room for an address.
    #[error("max addresses per entry must be at least 1")]
    ZeroAddressesPerEntry,
    /// No inbound shuffle could ever be answered.
    #[error("max inbound streams (per connection and in total) must be at least 1")]
    ZeroInboundStreams,
    /// The inbound rate limit has a zero burst or a zero refill period.
    #[error("the inbound rate limit needs a burst and a refill period above zero")]
    InvalidRateLimit,
    /// The maximum record size cannot hold a signed peer record.
    #[error("max record size {0} is below the minimum of {min}", min = MIN_RECORD_SIZE)]
    RecordSizeTooSmall(usize),
    /// A message's entries with records of the maximum size do not fit in the maximum message
    /// size set with [`Config::with_max_message_size`].
    #[error(
        "{message_length} entries with records of up to {max_record_size} bytes (plus \
         {overhead} bytes each) do not fit in messages of {max_message_size} bytes: raise the \
         message size or lower the record size",
        overhead = ENTRY_OVERHEAD
    )]
    RecordsExceedMessageSize {
        /// The most entries a message carries: the shuffle length `l`, plus the seeded
        /// defence's extra entries ([`ShuffleParams::message_length`]).
        message_length: usize,
        /// The maximum record size.
        max_record_size: usize,
        /// The maximum message size.
        max_message_size: usize,
    },
    /// Signed records are required but `/cyclon/1.1.0`, the only version that carries them,
    /// is turned off: every received entry would be dropped.
    #[error("signed records are required but /cyclon/1.1.0 is turned off")]
    RecordsRequiredButDisabled,
    /// The protocol prefix does not make valid protocol names: it must start with `/`, not
    /// end with one, and hold no whitespace.
    #[error(
        "invalid protocol prefix {0:?}: it must start with '/', not end with one, and hold no whitespace"
    )]
    InvalidProtocolPrefix(String),
    /// SecureCyclon needs an identity key that its peer id inlines (ed25519, secp256k1):
    /// others check every signature with the key taken from the signer's peer id.
    #[error("the key's peer id does not inline the public key (use ed25519 or secp256k1)")]
    KeyNotInlined,
    /// More neighbours than the view holds peers to draw them from.
    #[error("{neighbours} neighbours exceed the view size {view_size}")]
    TooManyNeighbours {
        /// The neighbours asked for.
        neighbours: usize,
        /// The view size `c`.
        view_size: usize,
    },
}

impl Config {
    /// Sets the view size `c`, the most entries a view holds. Default: 20.
    pub fn with_view_size(mut self, view_size: usize) -> Self {
        self.params.view_size = view_size;
        self
    }

    /// Sets the shuffle length `l`, the most entries exchanged in each direction
    /// (`1 <= l <= c`). Requests and responses carrying more are truncated to `l`, the rest
    /// counted as ignored. Default: 5.
    pub fn with_shuffle_length(mut self, shuffle_length: usize) -> Self {
        self.params.shuffle_length = shuffle_length;
        self
    }

    /// Sets the interval between two periodic shuffles (the paper's cycle). The first one
    /// happens after a random share of the interval, so peers do not shuffle in lock-step.
    /// A periodic shuffle is skipped while the local peer has no address to advertise (no
    /// listen and no confirmed external address): partners would drop its own entry.
    /// Default: 10 s.
    pub fn with_shuffle_interval(mut self, interval: Duration) -> Self {
        self.shuffle_interval = interval;
        self
    }

    /// Sets how long opening a stream, or one request/response exchange, may take. A shuffle
    /// that needs a dial is given twice this time in all. Default: 10 s.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the largest protobuf message accepted, checked from the length prefix before
    /// anything is buffered; at least 512 bytes. Default: 8 KiB, or more when a message's
    /// entries ([`ShuffleParams::message_length`]) with signed records of the
    /// [maximum size](Self::with_max_record_size) need more (64 bytes per entry beside its
    /// record), so that any valid shuffle length works without this setting.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Selects enhanced (default) or basic shuffling.
    pub fn with_shuffle_mode(mut self, mode: ShuffleMode) -> Self {
        self.params.mode = mode;
        self
    }

    /// Turns on an eclipse defence (see [`Defence`] and `SECURITY.md`). Default:
    /// [`Defence::Off`], the paper's Cyclon. Under [`Defence::Seeded`], requests and replies
    /// carry up to `l + extra_entries` entries, and as many are read from a peer's message.
    pub fn with_defence(mut self, defence: Defence) -> Self {
        self.params.defence = defence;
        self
    }

    /// The eclipse defence in force.
    pub fn defence(&self) -> Defence {
        self.params.defence
    }

    /// Sets the largest age kept; received ages are clamped to it. Default: 1000.
    pub fn with_max_age(mut self, max_age: u32) -> Self {
        self.params.max_age = max_age;
        self
    }

    /// Sets how many addresses are kept per entry; further ones are ignored. Default: 8.
    pub fn with_max_addresses_per_entry(mut self, max: usize) -> Self {
        self.max_addresses_per_entry = max;
        self
    }

    /// Sets how many inbound shuffles may be in flight on one connection; further streams are
    /// refused. Default: 1.
    pub fn with_max_inbound_streams_per_connection(mut self, max: usize) -> Self {
        self.max_inbound_streams_per_connection = max;
        self
    }

    /// Sets how many inbound shuffles may be in flight over all connections; further streams
    /// are refused. Default: 64.
    pub fn with_max_inbound_streams(mut self, max: usize) -> Self {
        self.max_inbound_streams = max;
        self
    }

    /// Limits how often one remote peer may make us shuffle: `burst` shuffles in a row, then
    /// one more per `refill_every`. Requests beyond it are refused (the stream is reset) and
    /// counted, so one peer cannot churn the whole view. An honest peer asks at most once
    /// per its own interval. Default: a burst of 5, refilled twice per shuffle interval.
    pub fn with_inbound_rate_limit(mut self, burst: u32, refill_every: Duration) -> Self {
        self.rate_limit = RateLimitSetting::Custom(InboundRateLimit {
            burst,
            refill_every,
        });
        self
    }

    /// Answers every inbound shuffle, however often a peer asks (within the stream bounds).
    pub fn without_inbound_rate_limit(mut self) -> Self {
        self.rate_limit = RateLimitSetting::Disabled;
        self
    }

    /// Sets the largest signed peer record accepted in an entry, checked before the record is
    /// decoded; an entry with a larger one is dropped and counted
    /// ([`InvalidEntries::record_too_large`](crate::InvalidEntries::record_too_large)). Records
    /// count in the message size budget: a message's entries with records of this size, plus
    /// 64 bytes each, must fit in the message size
    /// ([`with_max_message_size`](Self::with_max_message_size), when set; unless
    /// `/cyclon/1.1.0` is off, [`with_signed_records`](Self::with_signed_records)).
    /// Default: 512 bytes (an ed25519 record takes 156 bytes plus 4 to 30 per address; an
    /// RSA-2048 one about 620, so a build that verifies RSA keys needs more); at least 256.
    pub fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// Requires every received entry to carry a signed peer record that verifies: entries
    /// without one (all entries from `/cyclon/1.0.0` peers, and unsigned entries over
    /// `/cyclon/1.1.0`) are dropped and counted
    /// ([`InvalidEntries::unsigned`](crate::InvalidEntries::unsigned)), and only verified
    /// addresses learned from the network are reported to the swarm. Addresses the application
    /// adds itself ([`Behaviour::add_address`](crate::Behaviour::add_address)) still enter the
    /// view, unverified. Default: off (unsigned entries are accepted and marked unverified, so
    /// mixed networks keep working).
    pub fn with_require_signed_records(mut self, required: bool) -> Self {
        self.require_signed_records = required;
        self
    }

    /// Whether to speak `/cyclon/1.1.0` (entries with signed peer records) beside
    /// `/cyclon/1.0.0`. When off, the peer listens and dials on `/cyclon/1.0.0` only, as versions
    /// before signed records did, and neither sends nor reads records. Default: on.
    pub fn with_signed_records(mut self, enabled: bool) -> Self {
        self.signed_records = enabled;
        self
    }

    /// Sets which addresses travel in entries ([`AddressScope`]): the local peer advertises
    /// (and signs) only its addresses within the scope, and only received addresses within it
    /// are kept, forwarded and reported to the swarm (as are addresses other behaviours report
    /// for peers of the view). A received entry left with no address within the scope is
    /// dropped and counted
    /// ([`InvalidEntries::out_of_scope`](crate::InvalidEntries::out_of_scope)); a peer
    /// with no address within the scope skips its periodic shuffles, as a peer without any
    /// address does. A signed record is forwarded as its signer made it: its addresses out of
    /// the scope are not used, but stay in it. Addresses the application adds itself
    /// ([`Behaviour::add_address`](crate::Behaviour::add_address)) are taken as they are.
    /// Default: [`AddressScope::Any`], so that loopback tests and LANs work; a node on the
    /// public internet should use [`AddressScope::Global`].
    pub fn with_address_scope(mut self, scope: AddressScope) -> Self {
        self.address_scope = scope;
        self
    }

    /// Which addresses travel in entries.
    pub fn address_scope(&self) -> AddressScope {
        self.address_scope
    }

    /// Puts `prefix` before every protocol name (`<prefix>/cyclon/1.1.0`,
    /// `<prefix>/cyclon/1.0.0`), so that the overlays of separate applications on the same
    /// hosts never exchange entries: a peer of another overlay does not speak this peer's
    /// protocols, so a shuffle with it fails and it leaves the view, as any peer that does not
    /// speak Cyclon does (as kad's `Config::new(StreamProtocol)` keeps networks apart). It must
    /// start with `/`, not end with one, and hold no whitespace, e.g. `/myapp`. Default: none,
    /// the protocol's own names, which other implementations speak.
    pub fn with_protocol_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.protocol_prefix = prefix.into();
        self
    }

    /// Keeps open connections to `degree` neighbours drawn from the view, for a broadcast
    /// layer (gossipsub, say) to mesh over: a small, stable, random set of connected peers.
    /// Links are symmetric (a peer that accepts a request counts the link among its own, so a
    /// peer has at most `degree` links, each one connection both ends keep open, over the
    /// stream protocol `/cyclon/neighbour/1.0.0`); a link is replaced only when it goes down
    /// (its last stream or the connection it stands on closes, a shuffle with its peer fails,
    /// or a peer with no neighbour at all takes its place, at most once per round), never
    /// because the peer left the view. At most the view size. Reported as [`Event::NeighbourUp`](crate::Event::NeighbourUp) and
    /// [`Event::NeighbourDown`](crate::Event::NeighbourDown);
    /// [`Behaviour::neighbours`](crate::Behaviour::neighbours) lists them. Default: 0, none
    /// (Cyclon itself needs no standing connection), and the neighbour protocol is not
    /// spoken.
    pub fn with_neighbours(mut self, degree: usize) -> Self {
        self.neighbours = degree;
        self
    }

    /// The neighbour links kept (0: none).
    pub fn neighbours(&self) -> usize {
        self.neighbours
    }

    /// Closes each connection the behaviour dialled for a shuffle as soon as the shuffles on
    /// it ended, unless its peer is (or is being asked to be) a neighbour, instead of leaving
    /// it to close when idle. Beside protocols that hold a stream open on every connection
    /// (gossipsub does), such connections are never idle, so every peer ever shuffled with
    /// would stay connected; with this setting and [neighbours](Self::with_neighbours), a
    /// broadcast layer's mesh forms over the neighbour links. It also closes a connection
    /// that another protocol started to use meanwhile. Default: off (the connections close
    /// when idle).
    pub fn with_close_shuffle_connections(mut self, close: bool) -> Self {
        self.close_shuffle_connections = close;
        self
    }

    /// Whether connections dialled for shuffles are closed once they ended.
    pub fn close_shuffle_connections(&self) -> bool {
        self.close_shuffle_connections
    }

    /// The protocol prefix (empty for none).
    pub fn protocol_prefix(&self) -> &str {
        &self.protocol_prefix
    }

    /// The protocol names this configuration speaks, preferred first (the neighbour
    /// protocol last, when [neighbours](Self::with_neighbours) are on).
    pub fn protocol_names(&self) -> Vec<StreamProtocol> {
        self.protocol_ids()
            .into_iter()
            .chain(self.neighbour_protocol_id())
            .filter_map(|id| StreamProtocol::try_from_owned(id.as_ref().to_owned()).ok())
            .collect()
    }

    /// The shuffle versions spoken under their names, preferred first (empty if the prefix
    /// is invalid, which [`validate`](Self::validate) reports).
    pub(crate) fn protocol_ids(&self) -> Vec<ProtocolId> {
        let versions = if self.signed_records {
            Version::ALL
        } else {
            Version::V1_0_ONLY
        };
        let kinds = versions.iter().map(|&v| StreamKind::Shuffle(v));
        protocol::protocol_ids(&self.protocol_prefix, kinds).unwrap_or_default()
    }

    /// The name of neighbour streams, when neighbours are on.
    pub(crate) fn neighbour_protocol_id(&self) -> Option<ProtocolId> {
        if self.neighbours == 0 {
            return None;
        }
        protocol::protocol_ids(&self.protocol_prefix, [StreamKind::Neighbour])?.pop()
    }

    /// Maximum size of a signed peer record in bytes.
    pub fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// Whether received entries must carry a signed peer record that verifies.
    pub fn require_signed_records(&self) -> bool {
        self.require_signed_records
    }

    /// Whether `/cyclon/1.1.0` (signed records) is spoken beside `/cyclon/1.0.0`.
    pub fn signed_records(&self) -> bool {
        self.signed_records
    }

    /// Turns on the [`Rejoin`] rule: remember peers lost to failed shuffles and the seeds
    /// given to [`Behaviour::add_seed`](crate::Behaviour::add_seed), and probe one of them
    /// every few rounds, so that the overlay finds itself again after a partition. Default:
    /// off (plain Cyclon).
    pub fn with_rejoin(mut self, rejoin: Rejoin) -> Self {
        self.rejoin = Some(rejoin);
        self
    }

    /// The [`Rejoin`] rule, if on.
    pub fn rejoin(&self) -> Option<Rejoin> {
        self.rejoin
    }

    /// The per-peer inbound rate limit in force, if any.
    pub fn inbound_rate_limit(&self) -> Option<InboundRateLimit> {
        match self.rate_limit {
            RateLimitSetting::TwicePerInterval => Some(InboundRateLimit {
                burst: DEFAULT_INBOUND_BURST,
                refill_every: self.shuffle_interval / 2,
            }),
            RateLimitSetting::Custom(limit) => Some(limit),
            RateLimitSetting::Disabled => None,
        }
    }

    /// View size `c`.
    pub fn view_size(&self) -> usize {
        self.params.view_size
    }

    /// Shuffle length `l`.
    pub fn shuffle_length(&self) -> usize {
        self.params.shuffle_length
    }

    /// Shuffle mode.
    pub fn shuffle_mode(&self) -> ShuffleMode {
        self.params.mode
    }

    /// Shuffle interval.
    pub fn shuffle_interval(&self) -> Duration {
        self.shuffle_interval
    }

    /// Request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Maximum message size in bytes: the one set with
    /// [`with_max_message_size`](Self::with_max_message_size), or the default for this
    /// configuration's message length and record size.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
            .unwrap_or_else(|| self.records_budget().max(DEFAULT_MAX_MESSAGE_SIZE))
    }

    /// What a message's entries take with records of the maximum size.
    fn records_budget(&self) -> usize {
        self.params
            .message_length()
            .saturating_mul(self.max_record_size.saturating_add(ENTRY_OVERHEAD))
    }

    /// Maximum addresses per entry.
    pub fn max_addresses_per_entry(&self) -> usize {
        self.max_addresses_per_entry
    }

    /// The largest age kept.
    pub fn max_age(&self) -> u32 {
        self.params.max_age
    }

    /// Maximum inbound shuffles in flight on one connection.
    pub fn max_inbound_streams_per_connection(&self) -> usize {
        self.max_inbound_streams_per_connection
    }

    /// Maximum inbound shuffles in flight over all connections.
    pub fn max_inbound_streams(&self) -> usize {
        self.max_inbound_streams
    }

    /// The bounds this configuration applies to the entries a remote peer sends.
    pub(crate) fn entry_limits(&self) -> EntryLimits {
        EntryLimits {
            message_length: self.shuffle_params().message_length(),
            max_addresses: self.max_addresses_per_entry(),
            max_age: self.shuffle_params().max_age,
            max_record_size: self.max_record_size(),
            require_signed: self.require_signed_records(),
            scope: self.address_scope(),
        }
    }

    /// The shuffle rules' parameters, as the sans-IO core takes them.
    pub fn shuffle_params(&self) -> ShuffleParams {
        self.params
    }

    /// Checks that the configuration is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.params.validate()?;
        if let Some(rejoin) = self.rejoin {
            rejoin.validate()?;
        }
        if self.shuffle_interval.is_zero() {
            return Err(ConfigError::ZeroShuffleInterval);
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::ZeroRequestTimeout);
        }
        let max_message_size = self.max_message_size();
        if max_message_size < MIN_MESSAGE_SIZE {
            return Err(ConfigError::MessageSizeTooSmall(max_message_size));
        }
        if self.max_addresses_per_entry == 0 {
            return Err(ConfigError::ZeroAddressesPerEntry);
        }
        if self.max_inbound_streams_per_connection == 0 || self.max_inbound_streams == 0 {
            return Err(ConfigError::ZeroInboundStreams);
        }
        if let Some(limit) = self.inbound_rate_limit()
            && (limit.burst == 0 || limit.refill_every.is_zero())
        {
            return Err(ConfigError::InvalidRateLimit);
        }
        if self.max_record_size < MIN_RECORD_SIZE {
            return Err(ConfigError::RecordSizeTooSmall(self.max_record_size));
        }
        if self.signed_records && self.records_budget() > max_message_size {
            return Err(ConfigError::RecordsExceedMessageSize {
                message_length: self.params.message_length(),
                max_record_size: self.max_record_size,
                max_message_size,
            });
        }
        if self.require_signed_records && !self.signed_records {
            return Err(ConfigError::RecordsRequiredButDisabled);
        }
        let prefix = &self.protocol_prefix;
        let prefix_valid = prefix.is_empty()
            || (prefix.starts_with('/')
                && !prefix.ends_with('/')
                && !prefix.chars().any(char::is_whitespace)
                && protocol::protocol_ids(prefix, [StreamKind::Neighbour]).is_some());
        if !prefix_valid {
            return Err(ConfigError::InvalidProtocolPrefix(prefix.clone()));
        }
        if self.neighbours > self.params.view_size {
            return Err(ConfigError::TooManyNeighbours {
                neighbours: self.neighbours,
                view_size: self.params.view_size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_the_paper() {
        let config = Config::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.view_size(), 20);
        assert_eq!(config.shuffle_length(), 5);
        assert_eq!(
            config.shuffle_params().max_age,
            crate::view::DEFAULT_MAX_AGE
        );
    }

    #[test]
    fn invalid_combinations_are_errors() {
        let base = Config::default();
        assert_eq!(
            base.clone().with_view_size(0).validate(),
            Err(ConfigError::Params(ParamsError::ZeroViewSize))
        );
        assert!(matches!(
            base.clone().with_shuffle_length(21).validate(),
            Err(ConfigError::Params(
                ParamsError::ShuffleLengthExceedsViewSize { .. }
            ))
        ));
        assert_eq!(
            base.clone()
                .with_shuffle_interval(Duration::ZERO)
                .validate(),
            Err(ConfigError::ZeroShuffleInterval)
        );
        assert_eq!(
            base.clone().with_request_timeout(Duration::ZERO).validate(),
            Err(ConfigError::ZeroRequestTimeout)
        );
        assert_eq!(
            base.clone().with_max_message_size(10).validate(),
            Err(ConfigError::MessageSizeTooSmall(10))
        );
        assert_eq!(
            base.clone().with_max_addresses_per_entry(0).validate(),
            Err(ConfigError::ZeroAddressesPerEntry)
        );
        assert_eq!(
            base.clone().with_max_inbound_streams(0).validate(),
            Err(ConfigError::ZeroInboundStreams)
        );
        assert_eq!(
            base.clone()
                .with_inbound_rate_limit(0, Duration::from_secs(1))
                .validate(),
            Err(ConfigError::InvalidRateLimit)
        );
        assert!(base.clone().without_inbound_rate_limit().validate().is_ok());
        assert_eq!(
            base.clone().with_max_record_size(100).validate(),
            Err(ConfigError::RecordSizeTooSmall(100))
        );
        assert_eq!(
            base.clone()
                .with_require_signed_records(true)
                .with_signed_records(false)
                .validate(),
            Err(ConfigError::RecordsRequiredButDisabled)
        );
        assert!(
            base.clone()
                .with_require_signed_records(true)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn records_count_in_the_message_budget() {
        // Defaults: 5 × (512 + 64) = 2,880 bytes of an 8 KiB message; l = 14 takes 8,064.
        let base = Config::default();
        assert!(base.validate().is_ok());
        assert_eq!(base.max_message_size(), 8 * 1024);
        assert!(base.clone().with_shuffle_length(14).validate().is_ok());
        // l = 15 needs 8,640 bytes: the default message size grows to that.
        let l15 = base.clone().with_shuffle_length(15);
        assert!(l15.validate().is_ok());
        assert_eq!(l15.max_message_size(), 15 * 576);
        // A message size set too small for it is an error; 9 KiB or smaller records fit.
        let l15 = l15.with_max_message_size(8 * 1024);
        assert_eq!(
            l15.validate(),
            Err(ConfigError::RecordsExceedMessageSize {
                message_length: 15,
                max_record_size: 512,
                max_message_size: 8192,
            })
        );
        assert!(
            l15.clone()
                .with_max_message_size(9 * 1024)
                .validate()
                .is_ok()
        );
        assert!(l15.clone().with_max_record_size(480).validate().is_ok());
        assert!(
            base.with_max_record_size(1024).validate().is_ok(),
            "5 × 1,088 bytes fit"
        );
        // Without /cyclon/1.1.0 no record is ever read: no budget for them.
        assert!(l15.with_signed_records(false).validate().is_ok());
    }

    #[test]
    fn default_rate_limit_follows_the_interval() {
        let config = Config::default().with_shuffle_interval(Duration::from_secs(4));
        assert_eq!(
            config.inbound_rate_limit(),
            Some(InboundRateLimit {
                burst: DEFAULT_INBOUND_BURST,
                refill_every: Duration::from_secs(2)
            })
        );
    }

    #[test]
    fn a_protocol_prefix_names_every_version_and_is_checked() {
        let names = |config: &Config| -> Vec<String> {
            config
                .protocol_names()
                .iter()
                .map(|p| p.as_ref().to_owned())
                .collect()
        };
        let base = Config::default();
        assert_eq!(names(&base), ["/cyclon/1.1.0", "/cyclon/1.0.0"]);
        let app = base.clone().with_protocol_prefix("/myapp/v2");
        assert!(app.validate().is_ok());
        assert_eq!(
            names(&app),
            ["/myapp/v2/cyclon/1.1.0", "/myapp/v2/cyclon/1.0.0"]
        );
        assert_eq!(
            names(&app.with_signed_records(false)),
            ["/myapp/v2/cyclon/1.0.0"]
        );
        for bad in ["myapp", "/myapp/", "/my app", "/"] {
            assert_eq!(
                base.clone().with_protocol_prefix(bad).validate(),
                Err(ConfigError::InvalidProtocolPrefix(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn neighbours_are_at_most_the_view_size() {
        let config = Config::default().with_view_size(8).with_shuffle_length(4);
        assert!(config.clone().with_neighbours(8).validate().is_ok());
        assert_eq!(
            config.with_neighbours(1_000_000_000).validate(),
            Err(ConfigError::TooManyNeighbours {
                neighbours: 1_000_000_000,
                view_size: 8
            })
        );
    }
}
