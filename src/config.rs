//! Configuration: the shuffle rules' parameters the sans-IO core takes ([`ShuffleParams`]),
//! the [`Behaviour`](crate::Behaviour)'s [`Config`], and every default, in one place.

use std::time::Duration;

/// Default view size `c`.
pub const DEFAULT_VIEW_SIZE: usize = 20;
/// Default shuffle length `l`.
pub const DEFAULT_SHUFFLE_LENGTH: usize = 5;
/// Default upper bound for ages: received ages and ages grown by ageing are clamped to it.
pub const DEFAULT_MAX_AGE: u32 = 1_000;
/// Default shuffle interval (the paper's "cycle"): 10 s.
pub const DEFAULT_SHUFFLE_INTERVAL: Duration = Duration::from_secs(10);
/// Default request timeout: 10 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default maximum size of one protobuf message on the wire: 8 KiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 * 1024;
/// Default maximum number of addresses kept per entry: 8.
pub const DEFAULT_MAX_ADDRESSES_PER_ENTRY: usize = 8;
/// Default maximum number of inbound shuffles in flight on one connection: 1.
pub const DEFAULT_MAX_INBOUND_STREAMS_PER_CONNECTION: usize = 1;
/// Default maximum number of inbound shuffles in flight over all connections: 64.
pub const DEFAULT_MAX_INBOUND_STREAMS: usize = 64;
/// Default burst of the per-peer inbound rate limit: 5 shuffles.
pub const DEFAULT_INBOUND_BURST: u32 = 5;
/// The smallest accepted [`Config::with_max_message_size`]: room for a few entries.
pub const MIN_MESSAGE_SIZE: usize = 512;
/// Default maximum size of one signed peer record in an entry: 512 bytes. An ed25519 record
/// takes 156 bytes plus 4 to 30 per address (186 with two IPv4 addresses, 372 with eight IPv6
/// QUIC ones); an RSA-2048 one about 620, so a build that verifies RSA keys (libp2p-identity's
/// `rsa` feature) needs a larger limit. With it, messages of `l` ≤ 14 entries fit in the
/// default message size.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 512;
/// The smallest accepted [`Config::with_max_record_size`]: an ed25519 record with a couple of
/// addresses.
pub const MIN_RECORD_SIZE: usize = 256;
/// What an entry takes on the wire beside its signed record, in the message size budget
/// ([`Config::with_max_record_size`]): its peer id, age and protobuf framing.
pub const ENTRY_OVERHEAD: usize = 64;

/// How an initiator chooses the neighbour it shuffles with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ShuffleMode {
    /// Enhanced shuffling (the Cyclon protocol): the oldest entry is the target, ties broken
    /// at random. Dead peers leave views quickly because old entries are contacted first.
    #[default]
    Enhanced,
    /// Basic shuffling (the paper's baseline): the target is a uniformly random entry.
    Basic,
}

/// An opt-in defence against colluding peers that flood views with entries naming themselves
/// (eclipse and hub attacks; see `SECURITY.md`). [`Defence::Off`], the default, is the paper's
/// Cyclon.
///
/// Both defences keep private random keys drawn from the random number generator given to
/// [`PartialView::with_rng`](crate::PartialView::with_rng); nothing about them goes on the
/// wire, and the messages are those of `/cyclon/1.0.0`.
///
/// ```
/// use libp2p_cyclon::{Defence, ShuffleParams};
///
/// let params = ShuffleParams::new(20, 5).with_defence(Defence::seeded());
/// assert!(params.validate().is_ok());
/// assert_eq!(params.message_length(), 10); // l plus 5 extra entries per message
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Defence {
    /// No defence: the paper's Cyclon.
    #[default]
    Off,
    /// Seeded slots, after Basalt (Auvolat et al., 2023): every view slot has a private random
    /// seed and keeps, of all the peers the node has heard of, the one whose keyed hash ranks
    /// lowest under that seed. Hearing of a peer again changes nothing, so flooding buys an
    /// attacker nothing beyond showing each of its identities once. Shuffles copy entries
    /// instead of swapping them: the target stays in its slot (the shuffle checks it is alive),
    /// a peer that fails to answer leaves and is not taken back for a while.
    Seeded(SeededParams),
    /// Anchored samplers, after Brahms (Bortnikov et al., 2009): the view runs Cyclon's rules,
    /// except for a few *anchor* entries filled from private min-wise samplers over the peers
    /// heard of directly (partners and their replies), and a per-cycle budget of inbound
    /// shuffles whose entries are merged ("limited push").
    Anchored(AnchoredParams),
}

impl Defence {
    /// Seeded slots with the recommended parameters ([`SeededParams::default`]).
    pub fn seeded() -> Self {
        Defence::Seeded(SeededParams::default())
    }

    /// Anchored samplers with the recommended parameters ([`AnchoredParams::default`]).
    pub fn anchored() -> Self {
        Defence::Anchored(AnchoredParams::default())
    }

    /// Whether a defence is on.
    pub fn is_on(&self) -> bool {
        !matches!(self, Defence::Off)
    }
}

/// The parameters of [`Defence::Seeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SeededParams {
    /// Entries sent beyond the shuffle length `l` in every request and reply, so that nodes
    /// hear of more peers per shuffle (the slots keep the best-ranked peer *heard of*). The
    /// receiver considers up to `l + extra_entries`. Default: 5 (with `l` = 5, twice the
    /// entries of a plain shuffle).
    pub extra_entries: usize,
    /// Entries of a message taken from the view (the local node's own entry in a request
    /// counts as one); the others are news. Default: 2.
    pub from_view: usize,
    /// News remembered to be passed on: entries received lately for peers the node had not
    /// heard of (a ring). 0: every entry sent comes from the view. Default: 40.
    pub news: usize,
    /// Peers remembered as heard of, in each of the two generations of a Bloom filter
    /// (10 bits per peer): only peers not heard of lately are news. 0: no filter (a peer is
    /// news unless it is in the news ring already). Default: 4,096 (10 KiB).
    pub seen_memory: usize,
    /// One shuffle in this many contacts the oldest view entry (checking it is alive); the
    /// others contact a random peer from the news, so that a node does not only talk to its
    /// fixed slots. 1: every shuffle contacts the oldest entry. Default: 1.
    pub probe_every: u32,
    /// Entries older than this (cycles since the holder last reached the peer, or since it
    /// was heard of) are not passed on, so entries for failed peers stop spreading; a peer
    /// that failed to answer is not taken back for as many cycles. Default: 40.
    pub relay_age: u32,
    /// Failed peers remembered (a ring), each for `relay_age` cycles. Default: 100.
    pub dead_memory: usize,
}

impl Default for SeededParams {
    fn default() -> Self {
        Self {
            extra_entries: 5,
            from_view: 2,
            news: 40,
            seen_memory: 4096,
            probe_every: 1,
            relay_age: 40,
            dead_memory: 100,
        }
    }
}

/// The parameters of [`Defence::Anchored`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AnchoredParams {
    /// View entries held by samplers instead of by Cyclon's swaps. Default: 2.
    pub anchors: usize,
    /// Private min-wise samplers (the first `anchors` fill the anchor entries). Default: 20.
    pub samplers: usize,
    /// Inbound shuffles per cycle (between two shuffles the node starts) whose entries are
    /// merged; later ones are answered but their entries are ignored. 0: no budget. Default: 3.
    pub push_budget: u32,
    /// Failed peers remembered (a ring), each kept out of the samplers for 40 cycles.
    /// Default: 100.
    pub dead_memory: usize,
}

impl SeededParams {
    /// Sets [`extra_entries`](Self::extra_entries).
    pub fn with_extra_entries(mut self, extra_entries: usize) -> Self {
        self.extra_entries = extra_entries;
        self
    }

    /// Sets [`from_view`](Self::from_view).
    pub fn with_from_view(mut self, from_view: usize) -> Self {
        self.from_view = from_view;
        self
    }

    /// Sets [`news`](Self::news).
    pub fn with_news(mut self, news: usize) -> Self {
        self.news = news;
        self
    }

    /// Sets [`seen_memory`](Self::seen_memory).
    pub fn with_seen_memory(mut self, seen_memory: usize) -> Self {
        self.seen_memory = seen_memory;
        self
    }

    /// Sets [`probe_every`](Self::probe_every).
    pub fn with_probe_every(mut self, probe_every: u32) -> Self {
        self.probe_every = probe_every;
        self
    }

    /// Sets [`relay_age`](Self::relay_age).
    pub fn with_relay_age(mut self, relay_age: u32) -> Self {
        self.relay_age = relay_age;
        self
    }

    /// Sets [`dead_memory`](Self::dead_memory).
    pub fn with_dead_memory(mut self, dead_memory: usize) -> Self {
        self.dead_memory = dead_memory;
        self
    }
}

impl Default for AnchoredParams {
    fn default() -> Self {
        Self {
            anchors: 2,
            samplers: 20,
            push_budget: 3,
            dead_memory: 100,
        }
    }
}

/// The parameters of the shuffle rules, as the sans-IO core
/// ([`PartialView`](crate::PartialView)) takes them.
///
/// ```
/// use libp2p_cyclon::{ShuffleMode, ShuffleParams};
///
/// let params = ShuffleParams::new(20, 5).with_mode(ShuffleMode::Basic);
/// assert!(params.validate().is_ok());
/// assert!(ShuffleParams::new(3, 5).validate().is_err()); // l > c
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ShuffleParams {
    /// View (cache) size `c`: the most entries a view holds.
    pub view_size: usize,
    /// Shuffle length `l`: the most entries exchanged in each direction (`1 <= l <= c`).
    pub shuffle_length: usize,
    /// How the shuffle target is chosen.
    pub mode: ShuffleMode,
    /// Ages are clamped to this value, both when growing and when received.
    pub max_age: u32,
    /// The eclipse defence, if any.
    pub defence: Defence,
}

impl AnchoredParams {
    /// Sets [`anchors`](Self::anchors).
    pub fn with_anchors(mut self, anchors: usize) -> Self {
        self.anchors = anchors;
        self
    }

    /// Sets [`samplers`](Self::samplers).
    pub fn with_samplers(mut self, samplers: usize) -> Self {
        self.samplers = samplers;
        self
    }

    /// Sets [`push_budget`](Self::push_budget).
    pub fn with_push_budget(mut self, push_budget: u32) -> Self {
        self.push_budget = push_budget;
        self
    }

    /// Sets [`dead_memory`](Self::dead_memory).
    pub fn with_dead_memory(mut self, dead_memory: usize) -> Self {
        self.dead_memory = dead_memory;
        self
    }
}

impl Default for ShuffleParams {
    fn default() -> Self {
        Self {
            view_size: DEFAULT_VIEW_SIZE,
            shuffle_length: DEFAULT_SHUFFLE_LENGTH,
            mode: ShuffleMode::Enhanced,
            max_age: DEFAULT_MAX_AGE,
            defence: Defence::Off,
        }
    }
}

/// Why a set of [`ShuffleParams`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The view size is 0.
    #[error("view size must be at least 1")]
    ZeroViewSize,
    /// The shuffle length is 0.
    #[error("shuffle length must be at least 1")]
    ZeroShuffleLength,
    /// The shuffle length exceeds the view size.
    #[error("shuffle length {shuffle_length} exceeds view size {view_size}")]
    ShuffleLengthExceedsViewSize {
        /// The configured shuffle length.
        shuffle_length: usize,
        /// The configured view size.
        view_size: usize,
    },
    /// The defence's parameters cannot work with this view size.
    #[error("invalid defence parameters: {0}")]
    Defence(&'static str),
    /// A defence needs private keys: create the view with
    /// [`PartialView::with_rng`](crate::PartialView::with_rng).
    #[error("a defence needs private keys: create the view with PartialView::with_rng")]
    DefenceNeedsRng,
    /// [`Rejoin::probe_every`] is 0.
    #[error("rejoin probes need an interval of at least one round")]
    ZeroProbeInterval,
}

impl ShuffleParams {
    /// Enhanced shuffling with view size `c` and shuffle length `l`, and the default
    /// [`max_age`](Self::max_age).
    pub fn new(view_size: usize, shuffle_length: usize) -> Self {
        Self {
            view_size,
            shuffle_length,
            ..Self::default()
        }
    }

    /// Sets how the shuffle target is chosen.
    pub fn with_mode(mut self, mode: ShuffleMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the largest age kept.
    pub fn with_max_age(mut self, max_age: u32) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets the eclipse defence.
    pub fn with_defence(mut self, defence: Defence) -> Self {
        self.defence = defence;
        self
    }

    /// The most entries one request or reply carries and a receiver considers: `l`, plus
    /// [`SeededParams::extra_entries`] under [`Defence::Seeded`].
    pub fn message_length(&self) -> usize {
        match self.defence {
            Defence::Seeded(seeded) => self.shuffle_length.saturating_add(seeded.extra_entries),
            _ => self.shuffle_length,
        }
    }

    /// Checks `1 <= l <= c` and the defence's parameters.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.view_size == 0 {
            return Err(ParamsError::ZeroViewSize);
        }
        if self.shuffle_length == 0 {
            return Err(ParamsError::ZeroShuffleLength);
        }
        if self.shuffle_length > self.view_size {
            return Err(ParamsError::ShuffleLengthExceedsViewSize {
                shuffle_length: self.shuffle_length,
                view_size: self.view_size,
            });
        }
        match self.defence {
            Defence::Off => {}
            Defence::Seeded(seeded) => {
                if seeded.extra_entries > self.view_size {
                    return Err(ParamsError::Defence("extra entries exceed the view size"));
                }
                if seeded.probe_every == 0 {
                    return Err(ParamsError::Defence("probe_every must be at least 1"));
                }
                if self.view_size > MAX_DEFENDED_VIEW_SIZE {
                    return Err(ParamsError::Defence("view size above 1024"));
                }
            }
            Defence::Anchored(anchored) => {
                if anchored.anchors >= self.view_size {
                    return Err(ParamsError::Defence("anchors must leave Cyclon entries"));
                }
                if anchored.samplers < anchored.anchors {
                    return Err(ParamsError::Defence("fewer samplers than anchors"));
                }
                if anchored.samplers > MAX_DEFENDED_VIEW_SIZE {
                    return Err(ParamsError::Defence("more than 1024 samplers"));
                }
            }
        }
        Ok(())
    }
}

/// The largest view (seeded slots) or sampler set a defence supports: it keeps a few words
/// of private state per slot or sampler.
pub const MAX_DEFENDED_VIEW_SIZE: usize = 1024;
/// Default [`Rejoin::probe_every`]: one probe every 5 periodic rounds.
pub const DEFAULT_REJOIN_PROBE_EVERY: u32 = 5;

/// The opt-in rule that makes an overlay find itself again after a partition, a lost bootstrap
/// peer or heavy loss (off by default: plain Cyclon, the paper's protocol).
///
/// Plain Cyclon forgets a peer for good when a shuffle with it fails. During a long partition
/// each side so purges the other, and after the partition heals nothing crosses again. With
/// `Rejoin`, the core ([`PartialView`](crate::PartialView)) keeps two lists beside the view:
///
/// - **seeds**: peers configured by the application (e.g. its bootstrap peers), never
///   forgotten;
/// - **lost peers**: the last [`remember`](Self::remember) peers that left the view because a
///   shuffle with them failed.
///
/// Every [`probe_every`](Self::probe_every) periodic rounds, and in every round while the view
/// is empty, the node *probes* one of them not in its view, chosen at random: an extra shuffle
/// with it, on top of the regular one. A probe is a normal exchange (a fresh entry for the local
/// node and `l - 1` view entries against up to `l` of the partner's), except that the partner
/// was not in the view, so none leaves it. A probe that fails changes nothing; one that
/// completes forgets the lost peer (it is reachable again, and knows us now).
///
/// In a network without failures no shuffle fails, the lost list stays empty, and with no
/// seeds no probe is ever made: the protocol runs exactly as without `Rejoin`.
///
/// ```
/// use libp2p_cyclon::{Config, Rejoin};
///
/// let config = Config::default().with_rejoin(Rejoin::new(20, 5));
/// assert!(config.validate().is_ok());
/// assert!(Rejoin::new(20, 0).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Rejoin {
    /// How many peers lost to failed shuffles are remembered (the most recent ones).
    pub remember: usize,
    /// One probe every this many periodic rounds (at least 1), and one every round while the
    /// view is empty.
    pub probe_every: u32,
}

impl Default for Rejoin {
    /// Remember [`DEFAULT_VIEW_SIZE`] lost peers, probe every [`DEFAULT_REJOIN_PROBE_EVERY`]
    /// rounds.
    fn default() -> Self {
        Self::new(DEFAULT_VIEW_SIZE, DEFAULT_REJOIN_PROBE_EVERY)
    }
}

impl Rejoin {
    /// Remember `remember` lost peers and probe every `probe_every` rounds.
    pub fn new(remember: usize, probe_every: u32) -> Self {
        Self {
            remember,
            probe_every,
        }
    }

    /// Checks `probe_every >= 1`.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.probe_every == 0 {
            return Err(ParamsError::ZeroProbeInterval);
        }
        Ok(())
    }
}

/// How often one remote peer may make us shuffle (a token bucket per peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub(crate) max_message_size: usize,
    pub(crate) max_addresses_per_entry: usize,
    pub(crate) max_inbound_streams_per_connection: usize,
    pub(crate) max_inbound_streams: usize,
    rate_limit: RateLimitSetting,
    pub(crate) max_record_size: usize,
    pub(crate) require_signed_records: bool,
    pub(crate) signed_records: bool,
    pub(crate) rejoin: Option<Rejoin>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            params: ShuffleParams::default(),
            shuffle_interval: DEFAULT_SHUFFLE_INTERVAL,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_addresses_per_entry: DEFAULT_MAX_ADDRESSES_PER_ENTRY,
            max_inbound_streams_per_connection: DEFAULT_MAX_INBOUND_STREAMS_PER_CONNECTION,
            max_inbound_streams: DEFAULT_MAX_INBOUND_STREAMS,
            rate_limit: RateLimitSetting::TwicePerInterval,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            require_signed_records: false,
            signed_records: true,
            rejoin: None,
        }
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
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
    /// `l` entries with records of the maximum size do not fit in the maximum message size.
    #[error(
        "{shuffle_length} entries with records of up to {max_record_size} bytes (plus \
         {overhead} bytes each) do not fit in messages of {max_message_size} bytes: raise the \
         message size or lower the record size",
        overhead = ENTRY_OVERHEAD
    )]
    RecordsExceedMessageSize {
        /// The shuffle length `l`.
        shuffle_length: usize,
        /// The maximum record size.
        max_record_size: usize,
        /// The maximum message size.
        max_message_size: usize,
    },
    /// Signed records are required but `/cyclon/1.1.0`, the only version that carries them,
    /// is turned off: every received entry would be dropped.
    #[error("signed records are required but /cyclon/1.1.0 is turned off")]
    RecordsRequiredButDisabled,
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
    /// anything is buffered. Default: 8 KiB; at least [`MIN_MESSAGE_SIZE`].
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
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
    /// count in the message size budget: `l` entries with records of this size, plus
    /// [`ENTRY_OVERHEAD`] bytes each, must fit in
    /// [`with_max_message_size`](Self::with_max_message_size) (unless `/cyclon/1.1.0` is off,
    /// [`with_signed_records`](Self::with_signed_records)). Default: 512 bytes
    /// ([`DEFAULT_MAX_RECORD_SIZE`]); at least
    /// [`MIN_RECORD_SIZE`].
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

    /// Maximum message size in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Maximum addresses per entry.
    pub fn max_addresses_per_entry(&self) -> usize {
        self.max_addresses_per_entry
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
        if self.max_message_size < MIN_MESSAGE_SIZE {
            return Err(ConfigError::MessageSizeTooSmall(self.max_message_size));
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
        let budget = self
            .params
            .message_length()
            .saturating_mul(self.max_record_size.saturating_add(ENTRY_OVERHEAD));
        if self.signed_records && budget > self.max_message_size {
            return Err(ConfigError::RecordsExceedMessageSize {
                shuffle_length: self.params.message_length(),
                max_record_size: self.max_record_size,
                max_message_size: self.max_message_size,
            });
        }
        if self.require_signed_records && !self.signed_records {
            return Err(ConfigError::RecordsRequiredButDisabled);
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
        assert_eq!(config.shuffle_params().max_age, DEFAULT_MAX_AGE);
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
        assert!(base.clone().with_shuffle_length(14).validate().is_ok());
        // l = 15 needs 8,640 bytes: too much for 8 KiB, fine with 9 KiB or smaller records.
        let l15 = base.clone().with_shuffle_length(15);
        assert_eq!(
            l15.validate(),
            Err(ConfigError::RecordsExceedMessageSize {
                shuffle_length: 15,
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
}
