//! Prometheus metrics of the Cyclon [`Behaviour`](crate::Behaviour) (feature `metrics`), in the
//! style of `libp2p-metrics`: the names and labels are listed in the [crate docs](crate#metrics).
//! Each counter is recorded where its event happens ([`Count`]).
//!
//! Every label is a type ([`EncodeLabelSet`] of [`EncodeLabelValue`] enums, as gossipsub's
//! metrics do), so a family can only ever carry the label values its type lists.

use std::{fmt::Write as _, hash::Hash, sync::atomic::AtomicU64};

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{
    handler::ShuffleError,
    protocol::{InvalidEntries, Version},
    stats::Count,
    view::{EntryPayload, IgnoredEntries, PartialView},
};

/// Label value enums, each written as its snake-case name.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $value:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        enum $name {
            $($variant,)*
        }

        impl $name {
            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)*
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_values! {
    /// Why a shuffle this peer started failed.
    FailureReason {
        Dial => "dial",
        RefusedLocally => "refused_locally",
        UnsupportedProtocol => "unsupported_protocol",
        Timeout => "timeout",
        ConnectionClosed => "connection_closed",
        Io => "io",
    }
}

label_values! {
    /// Why an inbound shuffle was refused.
    RefusalReason {
        Capacity => "capacity",
        RateLimit => "rate_limit",
    }
}

label_values! {
    /// Why validation dropped a received entry.
    InvalidReason {
        Excess => "excess",
        InvalidPeerId => "invalid_peer_id",
        NoAddress => "no_address",
        OutOfScope => "out_of_scope",
        Unsigned => "unsigned",
        RecordTooLarge => "record_too_large",
        RecordMalformed => "record_malformed",
        RecordBadSignature => "record_bad_signature",
        RecordWrongPeer => "record_wrong_peer",
    }
}

label_values! {
    /// Why the shuffle rules did not take a valid received entry.
    IgnoredReason {
        Excess => "excess",
        Local => "local",
        Duplicate => "duplicate",
        NoRoom => "no_room",
        Dead => "dead",
        OverBudget => "over_budget",
    }
}

label_values! {
    /// Why validation dropped one address of a received entry.
    AddressReason {
        Invalid => "invalid",
        ForeignPeer => "foreign_peer",
        Excess => "excess",
        OutOfScope => "out_of_scope",
    }
}

impl EncodeLabelValue for Version {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Failure {
    reason: FailureReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Refusal {
    reason: RefusalReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Invalid {
    reason: InvalidReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Ignored {
    reason: IgnoredReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DroppedAddress {
    reason: AddressReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Protocol {
    protocol: Version,
}

/// The Cyclon metrics registered in a Prometheus [`Registry`].
#[derive(Debug)]
pub(crate) struct Metrics {
    shuffles_started: Counter,
    probes_started: Counter,
    shuffles_completed: Counter,
    shuffles_failed: Family<Failure, Counter>,
    rounds_without_reachable_peer: Counter,
    inbound_answered: Counter,
    inbound_refused: Family<Refusal, Counter>,
    inbound_failed: Counter,
    exchanges: Family<Protocol, Counter>,
    entries_invalid: Family<Invalid, Counter>,
    entries_ignored: Family<Ignored, Counter>,
    addresses_dropped: Family<DroppedAddress, Counter>,
    view_size: Gauge,
    view_mean_age: Gauge<f64, AtomicU64>,
    shuffles_in_flight: Gauge,
    neighbours: Gauge,
}

impl Metrics {
    /// Registers the metrics in `registry`, under the prefix `cyclon`.
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("cyclon");
        let metrics = Self {
            shuffles_started: Counter::default(),
            probes_started: Counter::default(),
            shuffles_completed: Counter::default(),
            shuffles_failed: Family::default(),
            rounds_without_reachable_peer: Counter::default(),
            inbound_answered: Counter::default(),
            inbound_refused: Family::default(),
            inbound_failed: Counter::default(),
            exchanges: Family::default(),
            entries_invalid: Family::default(),
            entries_ignored: Family::default(),
            addresses_dropped: Family::default(),
            view_size: Gauge::default(),
            view_mean_age: Gauge::default(),
            shuffles_in_flight: Gauge::default(),
            neighbours: Gauge::default(),
        };
        let counters = [
            (
                "shuffles_started",
                "Shuffles this peer initiated",
                &metrics.shuffles_started,
            ),
            (
                "probes_started",
                "Rejoin probes this peer initiated (shuffles with a seed or a lost peer)",
                &metrics.probes_started,
            ),
            (
                "shuffles_completed",
                "Shuffles this peer initiated that completed",
                &metrics.shuffles_completed,
            ),
            (
                "rounds_without_reachable_peer",
                "Periodic rounds skipped: the local swarm refused new dials and no peer of the view was connected",
                &metrics.rounds_without_reachable_peer,
            ),
            (
                "inbound_answered",
                "Shuffles other peers initiated that this peer answered",
                &metrics.inbound_answered,
            ),
            (
                "inbound_failed",
                "Inbound shuffle streams that failed (bad message, timeout, IO error)",
                &metrics.inbound_failed,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "shuffles_failed",
            "Shuffles this peer initiated that failed, by reason",
            metrics.shuffles_failed.clone(),
        );
        registry.register(
            "inbound_refused",
            "Inbound shuffles refused, by reason",
            metrics.inbound_refused.clone(),
        );
        registry.register(
            "exchanges",
            "Shuffle messages received, by protocol version",
            metrics.exchanges.clone(),
        );
        registry.register(
            "entries_invalid",
            "Received entries dropped by validation, by reason",
            metrics.entries_invalid.clone(),
        );
        registry.register(
            "entries_ignored",
            "Valid received entries the shuffle rules did not take, by reason",
            metrics.entries_ignored.clone(),
        );
        registry.register(
            "addresses_dropped",
            "Received addresses dropped by validation, by reason",
            metrics.addresses_dropped.clone(),
        );
        registry.register(
            "view_size",
            "Entries in the partial view",
            metrics.view_size.clone(),
        );
        registry.register(
            "view_mean_age",
            "Mean age of the partial view's entries, in shuffle rounds",
            metrics.view_mean_age.clone(),
        );
        registry.register(
            "shuffles_in_flight",
            "Shuffles started and not yet ended",
            metrics.shuffles_in_flight.clone(),
        );
        registry.register(
            "neighbours",
            "Neighbour links up (Config::with_neighbours)",
            metrics.neighbours.clone(),
        );
        metrics
    }

    /// Counts one thing the behaviour did.
    pub(crate) fn count(&self, count: &Count<'_>) {
        match count {
            Count::ShuffleStarted => _ = self.shuffles_started.inc(),
            Count::ProbeStarted => _ = self.probes_started.inc(),
            Count::ShuffleCompleted => _ = self.shuffles_completed.inc(),
            Count::ShuffleFailed(error) => {
                let reason = failure_reason(error);
                self.shuffles_failed
                    .get_or_create(&Failure { reason })
                    .inc();
            }
            Count::NoReachablePeer => _ = self.rounds_without_reachable_peer.inc(),
            Count::InboundAnswered => _ = self.inbound_answered.inc(),
            Count::InboundRefused => self.refused(RefusalReason::Capacity),
            Count::InboundRateLimited => self.refused(RefusalReason::RateLimit),
            Count::InboundFailed => _ = self.inbound_failed.inc(),
            Count::Exchange(version) => {
                let label = Protocol { protocol: *version };
                self.exchanges.get_or_create(&label).inc();
            }
            Count::Invalid(invalid) => {
                for (reason, n) in invalid_by_reason(invalid) {
                    add(&self.entries_invalid, Invalid { reason }, n);
                }
                for (reason, n) in addresses_by_reason(invalid) {
                    add(&self.addresses_dropped, DroppedAddress { reason }, n);
                }
            }
            Count::Ignored(ignored) => {
                for (reason, n) in ignored_by_reason(ignored) {
                    add(&self.entries_ignored, Ignored { reason }, n);
                }
            }
        }
    }

    fn refused(&self, reason: RefusalReason) {
        self.inbound_refused
            .get_or_create(&Refusal { reason })
            .inc();
    }

    /// Sets the gauges: entries in `view`, their mean age, shuffles in flight, neighbours.
    pub(crate) fn sample<I: Clone + PartialEq + Hash, A: EntryPayload>(
        &self,
        view: &PartialView<I, A>,
        in_flight: usize,
        neighbours: usize,
    ) {
        self.neighbours.set(neighbours as i64);
        let ages: u64 = view.entries().iter().map(|e| u64::from(e.age())).sum();
        self.view_size.set(view.len() as i64);
        self.view_mean_age
            .set(ages as f64 / view.len().max(1) as f64);
        self.shuffles_in_flight.set(in_flight as i64);
    }
}

/// Adds `n` to the counter of `labels` (a counter appears once it counted something).
fn add<L: EncodeLabelSet + Clone + Eq + Hash>(family: &Family<L, Counter>, labels: L, n: usize) {
    if n > 0 {
        family.get_or_create(&labels).inc_by(n as u64);
    }
}

fn failure_reason(error: &ShuffleError) -> FailureReason {
    match error {
        ShuffleError::Dial(_) => FailureReason::Dial,
        ShuffleError::DialRefusedLocally(_) => FailureReason::RefusedLocally,
        ShuffleError::UnsupportedProtocol => FailureReason::UnsupportedProtocol,
        ShuffleError::Timeout => FailureReason::Timeout,
        ShuffleError::ConnectionClosed => FailureReason::ConnectionClosed,
        ShuffleError::Io(_) => FailureReason::Io,
    }
}

fn invalid_by_reason(invalid: &InvalidEntries) -> [(InvalidReason, usize); 9] {
    [
        (InvalidReason::Excess, invalid.excess_entries),
        (InvalidReason::InvalidPeerId, invalid.invalid_peer_id),
        (InvalidReason::NoAddress, invalid.no_address),
        (InvalidReason::OutOfScope, invalid.out_of_scope),
        (InvalidReason::Unsigned, invalid.unsigned),
        (InvalidReason::RecordTooLarge, invalid.record_too_large),
        (InvalidReason::RecordMalformed, invalid.record_malformed),
        (
            InvalidReason::RecordBadSignature,
            invalid.record_bad_signature,
        ),
        (InvalidReason::RecordWrongPeer, invalid.record_wrong_peer),
    ]
}

fn addresses_by_reason(invalid: &InvalidEntries) -> [(AddressReason, usize); 4] {
    [
        (AddressReason::Invalid, invalid.invalid_address),
        (AddressReason::ForeignPeer, invalid.foreign_peer_address),
        (AddressReason::Excess, invalid.excess_addresses),
        (AddressReason::OutOfScope, invalid.out_of_scope_address),
    ]
}

fn ignored_by_reason(ignored: &IgnoredEntries) -> [(IgnoredReason, usize); 6] {
    [
        (IgnoredReason::Excess, ignored.excess),
        (IgnoredReason::Local, ignored.local),
        (IgnoredReason::Duplicate, ignored.duplicate),
        (IgnoredReason::NoRoom, ignored.no_room),
        (IgnoredReason::Dead, ignored.dead),
        (IgnoredReason::OverBudget, ignored.over_budget),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use prometheus_client::encoding::text::encode;

    use super::*;

    /// Each family's label values, from the registry's text: `family -> {label="value"}`.
    fn labels(registry: &Registry) -> BTreeMap<String, BTreeSet<String>> {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        let mut families: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some((name, rest)) = line.split_once('{') {
                let labels = rest.split_once('}').unwrap().0;
                families
                    .entry(name.to_owned())
                    .or_default()
                    .insert(labels.to_owned());
            }
        }
        families
    }

    fn set<const N: usize>(label: &str, values: [&str; N]) -> BTreeSet<String> {
        values.iter().map(|v| format!("{label}=\"{v}\"")).collect()
    }

    /// Every reason of every struct reaches its own family under its own label, and nothing
    /// else does: an invalid entry is never counted as an ignored one, nor the other way.
    #[test]
    fn every_count_lands_under_its_own_family_and_label() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let invalid = InvalidEntries {
            excess_entries: 1,
            invalid_peer_id: 1,
            no_address: 1,
            invalid_address: 1,
            foreign_peer_address: 1,
            excess_addresses: 1,
            out_of_scope_address: 1,
            out_of_scope: 1,
            unsigned: 1,
            record_too_large: 1,
            record_malformed: 1,
            record_bad_signature: 1,
            record_wrong_peer: 1,
        };
        let ignored = IgnoredEntries {
            local: 1,
            duplicate: 1,
            excess: 1,
            no_room: 1,
            dead: 1,
            over_budget: 1,
        };
        metrics.count(&Count::Invalid(&invalid));
        metrics.count(&Count::Ignored(&ignored));
        for error in [
            ShuffleError::Dial(String::new()),
            ShuffleError::DialRefusedLocally(String::new()),
            ShuffleError::UnsupportedProtocol,
            ShuffleError::Timeout,
            ShuffleError::ConnectionClosed,
            ShuffleError::Io(std::io::ErrorKind::Other.into()),
        ] {
            metrics.count(&Count::ShuffleFailed(&error));
        }
        metrics.count(&Count::InboundRefused);
        metrics.count(&Count::InboundRateLimited);
        metrics.count(&Count::Exchange(Version::V1_0));
        metrics.count(&Count::Exchange(Version::V1_1));

        let families = labels(&registry);
        let expected: BTreeMap<String, BTreeSet<String>> = [
            (
                "cyclon_entries_invalid_total",
                set(
                    "reason",
                    [
                        "excess",
                        "invalid_peer_id",
                        "no_address",
                        "out_of_scope",
                        "unsigned",
                        "record_too_large",
                        "record_malformed",
                        "record_bad_signature",
                        "record_wrong_peer",
                    ],
                ),
            ),
            (
                "cyclon_entries_ignored_total",
                set(
                    "reason",
                    [
                        "excess",
                        "local",
                        "duplicate",
                        "no_room",
                        "dead",
                        "over_budget",
                    ],
                ),
            ),
            (
                "cyclon_addresses_dropped_total",
                set(
                    "reason",
                    ["invalid", "foreign_peer", "excess", "out_of_scope"],
                ),
            ),
            (
                "cyclon_shuffles_failed_total",
                set(
                    "reason",
                    [
                        "dial",
                        "refused_locally",
                        "unsupported_protocol",
                        "timeout",
                        "connection_closed",
                        "io",
                    ],
                ),
            ),
            (
                "cyclon_inbound_refused_total",
                set("reason", ["capacity", "rate_limit"]),
            ),
            (
                "cyclon_exchanges_total",
                set("protocol", ["/cyclon/1.0.0", "/cyclon/1.1.0"]),
            ),
        ]
        .into_iter()
        .map(|(name, labels)| (name.to_owned(), labels))
        .collect();
        assert_eq!(families, expected);
    }
}
