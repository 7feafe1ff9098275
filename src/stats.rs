//! What the [`Behaviour`](crate::Behaviour) counts: [`Stats`], and the [`Count`]s it counts
//! them from, which the Prometheus metrics (feature `metrics`) count too.

use crate::{
    handler::ShuffleError,
    protocol::{InvalidEntries, Version},
    view::IgnoredEntries,
};

/// Failed shuffles by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShuffleFailures {
    /// No connection to the target could be established.
    pub dial: u64,
    /// The local swarm refused or aborted the dial to the target (its connection limits,
    /// say): nothing is known of the target, which went back into the view. Not a failure of
    /// the peer; counted apart from the others, and not in [`total`](Self::total).
    pub refused_locally: u64,
    /// The target speaks no version of the Cyclon protocol this peer speaks.
    pub unsupported_protocol: u64,
    /// Opening the stream or the exchange timed out.
    pub timeout: u64,
    /// The connection closed during the exchange.
    pub connection_closed: u64,
    /// The stream failed or the response was invalid.
    pub io: u64,
}

impl ShuffleFailures {
    /// All shuffles that failed for a reason of the peer or the network (not
    /// [`refused_locally`](Self::refused_locally)).
    pub fn total(&self) -> u64 {
        self.dial + self.unsupported_protocol + self.timeout + self.connection_closed + self.io
    }

    fn count(&mut self, error: &ShuffleError) {
        let counter = match error {
            ShuffleError::Dial(_) => &mut self.dial,
            ShuffleError::DialRefusedLocally(_) => &mut self.refused_locally,
            ShuffleError::UnsupportedProtocol => &mut self.unsupported_protocol,
            ShuffleError::Timeout => &mut self.timeout,
            ShuffleError::ConnectionClosed => &mut self.connection_closed,
            ShuffleError::Io(_) => &mut self.io,
        };
        *counter += 1;
    }
}

/// Counters of what the behaviour did and refused, since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Shuffles started (periodic and manual), [`Rejoin`](crate::Rejoin) probes included.
    pub shuffles_started: u64,
    /// Of those, [`Rejoin`](crate::Rejoin) probes: shuffles with a seed or a lost peer.
    pub probes_started: u64,
    /// Shuffles completed.
    pub shuffles_completed: u64,
    /// Periodic rounds skipped because the local swarm was refusing new dials and no peer of
    /// the view was connected ([`StartShuffleError::NoReachablePeer`](crate::StartShuffleError::NoReachablePeer)).
    pub rounds_without_reachable_peer: u64,
    /// Shuffles failed, by reason.
    pub shuffles_failed: ShuffleFailures,
    /// Inbound shuffles answered.
    pub inbound_answered: u64,
    /// Inbound shuffle streams refused because too many were in flight.
    pub inbound_refused: u64,
    /// Inbound shuffles refused because the peer asked too often (see
    /// [`Config::with_inbound_rate_limit`](crate::Config::with_inbound_rate_limit)).
    pub inbound_rate_limited: u64,
    /// Inbound shuffle streams that failed (bad message, timeout, IO error).
    pub inbound_failed: u64,
    /// Messages received (responses to our shuffles and requests of others) over
    /// `/cyclon/1.0.0`, which carries no signed records.
    pub exchanges_v1_0: u64,
    /// Messages received over `/cyclon/1.1.0`, which carries signed records.
    pub exchanges_v1_1: u64,
    /// Received entries and addresses dropped by validation (signed records that do not
    /// verify included).
    pub invalid: InvalidEntries,
    /// Valid received entries the shuffle rules did not take.
    pub ignored: IgnoredEntries,
}

/// One thing the behaviour counts, recorded where it happens: into [`Stats`] and, when they
/// are enabled, into the Prometheus metrics.
#[derive(Debug)]
pub(crate) enum Count<'a> {
    ShuffleStarted,
    /// A [`Rejoin`](crate::Rejoin) probe started (also recorded as `ShuffleStarted`).
    ProbeStarted,
    ShuffleCompleted,
    ShuffleFailed(&'a ShuffleError),
    /// A periodic round skipped: dials are refused and no peer of the view is connected.
    NoReachablePeer,
    InboundAnswered,
    /// Refused: too many inbound streams in flight.
    InboundRefused,
    /// Refused: the peer asks too often.
    InboundRateLimited,
    InboundFailed,
    /// A message arrived over this version.
    Exchange(Version),
    /// What validation dropped from one received message.
    Invalid(&'a InvalidEntries),
    /// What one merge did not take.
    Ignored(&'a IgnoredEntries),
}

impl Stats {
    pub(crate) fn count(&mut self, count: &Count<'_>) {
        match count {
            Count::ShuffleStarted => self.shuffles_started += 1,
            Count::ProbeStarted => self.probes_started += 1,
            Count::ShuffleCompleted => self.shuffles_completed += 1,
            Count::ShuffleFailed(error) => self.shuffles_failed.count(error),
            Count::NoReachablePeer => self.rounds_without_reachable_peer += 1,
            Count::InboundAnswered => self.inbound_answered += 1,
            Count::InboundRefused => self.inbound_refused += 1,
            Count::InboundRateLimited => self.inbound_rate_limited += 1,
            Count::InboundFailed => self.inbound_failed += 1,
            Count::Exchange(Version::V1_0) => self.exchanges_v1_0 += 1,
            Count::Exchange(Version::V1_1) => self.exchanges_v1_1 += 1,
            Count::Invalid(invalid) => self.invalid.add(invalid),
            Count::Ignored(ignored) => self.ignored.add(ignored),
        }
    }
}
