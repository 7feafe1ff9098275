//! Prometheus metrics of the Cyclon [`Behaviour`](crate::Behaviour) (feature `metrics`), in the
//! style of `libp2p-metrics`: the names and labels are listed in the [crate docs](crate#metrics).
//! Each counter is recorded where its event happens ([`Record`]).

use std::{hash::Hash, sync::atomic::AtomicU64};

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{
    stats::Record,
    view::{EntryPayload, PartialView},
};

type Reason = [(&'static str, &'static str); 1];

/// The Cyclon metrics registered in a Prometheus [`Registry`].
#[derive(Debug)]
pub(crate) struct Metrics {
    shuffles_started: Counter,
    probes_started: Counter,
    shuffles_completed: Counter,
    shuffles_failed: Family<Reason, Counter>,
    inbound_answered: Counter,
    inbound_refused: Family<Reason, Counter>,
    inbound_failed: Counter,
    exchanges: Family<Reason, Counter>,
    entries_ignored: Family<Reason, Counter>,
    addresses_dropped: Family<Reason, Counter>,
    view_size: Gauge,
    view_mean_age: Gauge<f64, AtomicU64>,
    shuffles_in_flight: Gauge,
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
            inbound_answered: Counter::default(),
            inbound_refused: Family::default(),
            inbound_failed: Counter::default(),
            exchanges: Family::default(),
            entries_ignored: Family::default(),
            addresses_dropped: Family::default(),
            view_size: Gauge::default(),
            view_mean_age: Gauge::default(),
            shuffles_in_flight: Gauge::default(),
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
        let families = [
            (
                "shuffles_failed",
                "Shuffles this peer initiated that failed, by reason",
                &metrics.shuffles_failed,
            ),
            (
                "inbound_refused",
                "Inbound shuffles refused, by reason",
                &metrics.inbound_refused,
            ),
            (
                "exchanges",
                "Shuffle messages received, by protocol version",
                &metrics.exchanges,
            ),
            (
                "entries_ignored",
                "Received entries not taken into the view, by reason",
                &metrics.entries_ignored,
            ),
            (
                "addresses_dropped",
                "Received addresses dropped by validation, by reason",
                &metrics.addresses_dropped,
            ),
        ];
        for (name, help, family) in families {
            registry.register(name, help, family.clone());
        }
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
        metrics
    }

    /// Counts one thing the behaviour did.
    pub(crate) fn record(&self, record: &Record<'_>) {
        let add = |family: &Family<Reason, Counter>, reason: &'static str, n: usize| {
            if n > 0 {
                family.get_or_create(&[("reason", reason)]).inc_by(n as u64);
            }
        };
        match record {
            Record::ShuffleStarted => _ = self.shuffles_started.inc(),
            Record::ProbeStarted => _ = self.probes_started.inc(),
            Record::ShuffleCompleted => _ = self.shuffles_completed.inc(),
            Record::ShuffleFailed(error) => add(&self.shuffles_failed, error.kind(), 1),
            Record::InboundAnswered => _ = self.inbound_answered.inc(),
            Record::InboundRefused => add(&self.inbound_refused, "capacity", 1),
            Record::InboundRateLimited => add(&self.inbound_refused, "rate_limit", 1),
            Record::InboundFailed => _ = self.inbound_failed.inc(),
            Record::Exchange(version) => {
                let label = [("protocol", version.as_str())];
                self.exchanges.get_or_create(&label).inc();
            }
            Record::Invalid(invalid) => {
                let ignored = &self.entries_ignored;
                add(ignored, "excess", invalid.excess_entries);
                add(ignored, "invalid_peer_id", invalid.invalid_peer_id);
                add(ignored, "no_address", invalid.no_address);
                add(ignored, "unsigned", invalid.unsigned);
                add(ignored, "record_too_large", invalid.record_too_large);
                add(ignored, "record_malformed", invalid.record_malformed);
                add(
                    ignored,
                    "record_bad_signature",
                    invalid.record_bad_signature,
                );
                add(ignored, "record_wrong_peer", invalid.record_wrong_peer);
                let dropped = &self.addresses_dropped;
                add(dropped, "invalid", invalid.invalid_address);
                add(dropped, "foreign_peer", invalid.foreign_peer_address);
                add(dropped, "excess", invalid.excess_addresses);
            }
            Record::Ignored(ignored) => {
                let family = &self.entries_ignored;
                add(family, "excess", ignored.excess);
                add(family, "local", ignored.local);
                add(family, "duplicate", ignored.duplicate);
                add(family, "no_room", ignored.no_room);
                add(family, "dead", ignored.dead);
                add(family, "over_budget", ignored.over_budget);
            }
        }
    }

    /// Sets the gauges: entries in `view`, their mean age, shuffles in flight.
    pub(crate) fn sample<I: Clone + PartialEq + Hash, A: EntryPayload>(
        &self,
        view: &PartialView<I, A>,
        in_flight: usize,
    ) {
        let ages: u64 = view.iter().map(|e| u64::from(e.age())).sum();
        self.view_size.set(view.len() as i64);
        self.view_mean_age
            .set(ages as f64 / view.len().max(1) as f64);
        self.shuffles_in_flight.set(in_flight as i64);
    }
}
