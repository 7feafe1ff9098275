//! The flags the example programs share, with one name and one meaning each, and the one way
//! they all handle bad flags: one line on stderr, exit status 2.

use std::{error::Error, process::ExitCode, str::FromStr, time::Duration};

use clap::{Parser, ValueEnum};
use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use libp2p_cyclon::{
    self as cyclon, AnchoredParams, Defence, Rejoin, SeededParams, ShuffleMode,
    secure::SecureParams, view::ShuffleParams,
};

/// Exit status for bad flags and unusable settings (as clap uses).
pub const USAGE_ERROR: u8 = 2;

/// Parses the flags. `--help` and `--version` print in full and end with status 0; a bad flag
/// prints one line on stderr and ends with status 2. `Err` is the status to exit with at once.
pub fn parse<A: Parser>() -> Result<A, ExitCode> {
    match A::try_parse() {
        Ok(args) => Ok(args),
        Err(error) if !error.use_stderr() => {
            let _ = error.print(); // --help, --version
            Err(ExitCode::SUCCESS)
        }
        Err(error) => {
            let rendered = error.to_string();
            let line = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            eprintln!("{line} (see --help)");
            Err(ExitCode::from(USAGE_ERROR))
        }
    }
}

/// Prints `error: {message}` on one line and returns the usage-error status, for settings that
/// parse but cannot be used.
pub fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(USAGE_ERROR)
}

/// The exit status for how a program ended: 0, or 1 with the error on stderr.
pub fn exit_status(result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Enhanced (Cyclon's oldest-first target) or basic (random target) shuffling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Mode {
    /// The oldest entry is the shuffle target (the Cyclon protocol).
    #[default]
    Enhanced,
    /// A random entry is the target (the paper's baseline).
    Basic,
}

impl From<Mode> for ShuffleMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Enhanced => ShuffleMode::Enhanced,
            Mode::Basic => ShuffleMode::Basic,
        }
    }
}

/// An eclipse defence (`--defence`; see the crate's `Defence` and SECURITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefenceKind {
    /// Seeded slots, after Basalt: each slot keeps the peer ranking lowest under a private
    /// seed (the recommended defence).
    Seeded,
    /// Cyclon with a few sampler-held anchor entries and limited push, after Brahms.
    Anchored,
    /// SecureCyclon: transferable signed descriptors (`/cyclon/2.0.0`), run by the simulator
    /// and, in `node`, by `libp2p_cyclon::secure::Behaviour`.
    Secure,
}

impl DefenceKind {
    /// The defence with its recommended parameters, fitted to a view of `view_size` entries:
    /// the seeded defence sends at most `view_size` extra entries, the anchored one keeps at
    /// most `view_size - 1` anchors.
    pub fn defence(self, view_size: usize) -> Defence {
        match self {
            DefenceKind::Seeded => {
                let params = SeededParams::default();
                let extra = params.extra_entries.min(view_size);
                Defence::Seeded(params.with_extra_entries(extra))
            }
            DefenceKind::Anchored => {
                let params = AnchoredParams::default();
                let anchors = params.anchors.min(view_size.saturating_sub(1));
                Defence::Anchored(params.with_anchors(anchors))
            }
            DefenceKind::Secure => {
                let gap = cyclon::Config::default().shuffle_interval().as_millis() as u64;
                Defence::Secure(SecureParams::scaled(view_size, gap))
            }
        }
    }
}

/// How the first peers (or nodes) learn about each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Topology {
    /// A ring: peer i knows peer i + 1 (mod N); in the simulator, its c successors.
    #[default]
    Ring,
    /// A star: every peer knows the first one only.
    #[value(alias = "seed")]
    Star,
    /// Every peer knows c peers chosen at random.
    Random,
    /// Peers join one by one, each knowing one random peer that joined before it.
    Growing,
}

impl Topology {
    /// Whom peer `i` of `n` knows at the start: indices of other peers, for a view of size
    /// `view_size`. `random(k)` draws a number in `0..k`. (The simulator builds its own
    /// overlays, with these meanings.)
    pub fn contacts(
        self,
        i: usize,
        n: usize,
        view_size: usize,
        mut random: impl FnMut(usize) -> usize,
    ) -> Vec<usize> {
        match self {
            Topology::Ring if n > 1 => vec![(i + 1) % n],
            Topology::Star if i > 0 => vec![0],
            Topology::Random if n > 1 => {
                let mut contacts = Vec::new();
                while contacts.len() < view_size.min(n - 1) {
                    let j = random(n);
                    if j != i && !contacts.contains(&j) {
                        contacts.push(j);
                    }
                }
                contacts
            }
            Topology::Growing if i > 0 => vec![random(i)],
            _ => Vec::new(),
        }
    }
}

/// The shuffle rules' flags, for every program: `-c/--view-size`, `-l/--shuffle-length`,
/// `--mode`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShuffleFlags {
    /// View size c: the most peers a view holds.
    #[arg(short = 'c', long, value_name = "C", default_value_t = ShuffleParams::default().view_size)]
    pub view_size: usize,
    /// Shuffle length l: the most entries exchanged each way per shuffle (1 <= l <= c).
    #[arg(short = 'l', long, value_name = "L", default_value_t = ShuffleParams::default().shuffle_length)]
    pub shuffle_length: usize,
    /// Shuffle target: enhanced (the oldest entry, the Cyclon protocol) or basic (a random
    /// entry, the paper's baseline).
    #[arg(long, value_enum, default_value_t = Mode::Enhanced)]
    pub mode: Mode,
    /// Defend against colluding peers that flood views with their own entries: seeded (the
    /// default when the flag has no value), anchored, or secure (SecureCyclon over
    /// /cyclon/2.0.0: signed, transferable descriptors). Without the flag: the paper's Cyclon.
    #[arg(
        long,
        value_enum,
        value_name = "DEFENCE",
        num_args = 0..=1,
        default_missing_value = "seeded",
        require_equals = false
    )]
    pub defence: Option<DefenceKind>,
}

impl ShuffleFlags {
    /// The core's parameters.
    pub fn params(&self) -> ShuffleParams {
        ShuffleParams::new(self.view_size, self.shuffle_length)
            .with_mode(self.mode.into())
            .with_defence(
                self.defence
                    .map_or(Defence::Off, |kind| kind.defence(self.view_size)),
            )
    }
}

/// The flags of the opt-in rejoin rule (`node`, `simulate`): `--rejoin-every`,
/// `--rejoin-memory`.
#[derive(Debug, Clone, clap::Args)]
pub struct RejoinFlags {
    /// Rejoin rule: every K shuffle rounds (and every round while the view is empty), also
    /// shuffle with one remembered peer not in the view: a seed (node: the --bootstrap peers)
    /// or a peer lost to a failed shuffle. Heals partitions. 0: off (plain Cyclon).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub rejoin_every: u32,
    /// Rejoin rule: how many peers lost to failed shuffles are remembered [default: the view
    /// size].
    #[arg(long, value_name = "N")]
    pub rejoin_memory: Option<usize>,
}

impl RejoinFlags {
    /// The rule these flags ask for, with views of `view_size` entries; `None` when off.
    pub fn rule(&self, view_size: usize) -> Option<Rejoin> {
        (self.rejoin_every > 0)
            .then(|| Rejoin::new(self.rejoin_memory.unwrap_or(view_size), self.rejoin_every))
    }
}

/// The flags of programs that run real peers: the shuffle rules and `--interval-ms`,
/// `--request-timeout-ms`.
#[derive(Debug, Clone, clap::Args)]
pub struct CyclonFlags {
    #[command(flatten)]
    pub shuffle: ShuffleFlags,
    /// Shuffle interval in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(cyclon::Config::default().shuffle_interval()))]
    pub interval_ms: u64,
    /// How long opening a stream or one shuffle exchange may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(cyclon::Config::default().request_timeout()))]
    pub request_timeout_ms: u64,
    /// Which addresses are advertised and accepted: any (loopback and LANs too), lan (no
    /// loopback or link-local addresses) or global (publicly routable only).
    #[arg(long, value_enum, value_name = "SCOPE", default_value_t = Scope::Any)]
    pub address_scope: Scope,
    /// Put PREFIX before the protocol names (PREFIX/cyclon/1.1.0): a separate overlay that
    /// never exchanges entries with peers of another prefix (or of none).
    #[arg(long, value_name = "PREFIX")]
    pub protocol_prefix: Option<String>,
    /// Keep open connections to D neighbours drawn from the view (symmetric links, replaced
    /// only when they close or their peer is found dead), for a broadcast layer. 0: none.
    #[arg(long, value_name = "D", default_value_t = 0)]
    pub neighbours: usize,
}

/// `--address-scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scope {
    /// Every address.
    Any,
    /// No loopback or link-local addresses.
    Lan,
    /// Publicly routable addresses only.
    Global,
}

impl From<Scope> for cyclon::AddressScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Any => cyclon::AddressScope::Any,
            Scope::Lan => cyclon::AddressScope::Lan,
            Scope::Global => cyclon::AddressScope::Global,
        }
    }
}

impl CyclonFlags {
    /// The shuffle interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The behaviour's configuration these flags ask for (not validated).
    pub fn config(&self) -> cyclon::Config {
        let shuffle = &self.shuffle;
        cyclon::Config::default()
            .with_view_size(shuffle.view_size)
            .with_shuffle_length(shuffle.shuffle_length)
            .with_shuffle_mode(shuffle.mode.into())
            .with_defence(shuffle.params().defence)
            .with_shuffle_interval(self.interval())
            .with_request_timeout(Duration::from_millis(self.request_timeout_ms))
            .with_address_scope(self.address_scope.into())
            .with_protocol_prefix(self.protocol_prefix.clone().unwrap_or_default())
            .with_neighbours(self.neighbours)
    }

    /// Whether `--defence secure` asks for SecureCyclon (`secure::Behaviour`).
    pub fn is_secure(&self) -> bool {
        self.shuffle.defence == Some(DefenceKind::Secure)
    }

    /// SecureCyclon's configuration from these flags, validated: the mint gap is the
    /// interval, the rest as for the plain behaviour. `--neighbours` does not combine with it.
    pub fn secure_config(&self) -> Result<cyclon::secure::Config, String> {
        if self.neighbours > 0 {
            return Err("--defence secure does not combine with --neighbours".into());
        }
        let c = self.shuffle.view_size;
        let config = cyclon::secure::Config::default()
            .with_view_size(c)
            .with_shuffle_length(self.shuffle.shuffle_length)
            .with_params(SecureParams::scaled(c, self.interval_ms))
            .with_interval(self.interval())
            .with_request_timeout(Duration::from_millis(self.request_timeout_ms))
            .with_address_scope(self.address_scope.into())
            .with_protocol_prefix(self.protocol_prefix.clone().unwrap_or_default());
        config
            .validate()
            .map_err(|error| format!("invalid SecureCyclon configuration: {error}"))?;
        Ok(config)
    }
}

/// A duration in whole milliseconds, for flag defaults.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The flags of programs that run one peer per process (`node`, `chat`): `--listen`,
/// `--bootstrap`, `--secret-key-seed`.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerFlags {
    /// Address to listen on; repeatable. Default: /ip4/0.0.0.0/tcp/0 and
    /// /ip4/0.0.0.0/udp/0/quic-v1.
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// A peer to bootstrap from, ending in `/p2p/<peer id>`; repeatable.
    #[arg(
        long = "bootstrap",
        value_name = "MULTIADDR",
        help = "A peer to bootstrap from, ending in /p2p/<peer id>; repeatable"
    )]
    pub bootstrap: Vec<BootstrapPeer>,
    /// Derive a deterministic ed25519 identity from this number (0-255) instead of a random
    /// one, as rust-libp2p's examples do.
    #[arg(long, value_name = "N")]
    pub secret_key_seed: Option<u8>,
}

/// A `--bootstrap` address: a multiaddr ending in `/p2p/<peer id>`.
#[derive(Debug, Clone)]
pub struct BootstrapPeer {
    /// The peer.
    pub peer_id: PeerId,
    /// Its address, `/p2p/` included.
    pub address: Multiaddr,
}

impl FromStr for BootstrapPeer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let address: Multiaddr = s.parse().map_err(|e| format!("{e}"))?;
        match address.iter().last() {
            Some(Protocol::P2p(peer_id)) => Ok(BootstrapPeer { peer_id, address }),
            _ => Err("the address must end in /p2p/<peer id>".to_string()),
        }
    }
}
