//! Prometheus metrics of the Cyclon [`Behaviour`](crate::Behaviour) (feature `metrics`), in the
//! style of `libp2p-metrics`.
//!
//! Enable them with [`Behaviour::enable_metrics`](crate::Behaviour::enable_metrics), giving the
//! same [`Registry`] as the rest of the application (`libp2p-metrics` 0.18 uses the same
//! `prometheus-client` version, so one registry serves both). All names carry the prefix
//! `cyclon_`:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `cyclon_shuffles_started_total` | counter | |
//! | `cyclon_shuffles_completed_total` | counter | |
//! | `cyclon_shuffles_failed_total` | counter | `reason`: `dial`, `unsupported_protocol`, `timeout`, `connection_closed`, `io` |
//! | `cyclon_inbound_answered_total` | counter | |
//! | `cyclon_inbound_refused_total` | counter | `reason`: `capacity`, `rate_limit` |
//! | `cyclon_inbound_failed_total` | counter | |
//! | `cyclon_entries_ignored_total` | counter | `reason`: `excess`, `invalid_peer_id`, `no_address`, `local`, `duplicate`, `no_room` |
//! | `cyclon_addresses_dropped_total` | counter | `reason`: `invalid`, `foreign_peer`, `excess` |
//! | `cyclon_view_size` | gauge | |
//! | `cyclon_view_mean_age` | gauge | |
//! | `cyclon_shuffles_in_flight` | gauge | |

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::Stats;

type Reason = [(&'static str, &'static str); 1];

fn reason(value: &'static str) -> Reason {
    [("reason", value)]
}

/// The Cyclon metrics registered in a Prometheus [`Registry`].
#[derive(Debug)]
pub struct Metrics {
    shuffles_started: Counter,
    shuffles_completed: Counter,
    shuffles_failed: Family<Reason, Counter>,
    inbound_answered: Counter,
    inbound_refused: Family<Reason, Counter>,
    inbound_failed: Counter,
    entries_ignored: Family<Reason, Counter>,
    addresses_dropped: Family<Reason, Counter>,
    view_size: Gauge,
    view_mean_age: Gauge<f64, AtomicU64>,
    shuffles_in_flight: Gauge,
    /// The counters as last exported, to export only their increase.
    exported: Stats,
}

impl Metrics {
    /// Registers the metrics in `registry`, under the prefix `cyclon`.
    pub fn new(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("cyclon");
        let metrics = Self {
            shuffles_started: Counter::default(),
            shuffles_completed: Counter::default(),
            shuffles_failed: Family::default(),
            inbound_answered: Counter::default(),
            inbound_refused: Family::default(),
            inbound_failed: Counter::default(),
            entries_ignored: Family::default(),
            addresses_dropped: Family::default(),
            view_size: Gauge::default(),
            view_mean_age: Gauge::default(),
            shuffles_in_flight: Gauge::default(),
            exported: Stats::default(),
        };
        let counters: [(&str, &str, &Counter); 4] = [
            (
                "shuffles_started",
                "Shuffles this peer initiated",
                &metrics.shuffles_started,
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
        let families: [(&str, &str, &Family<Reason, Counter>); 4] = [
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

    /// Exports the increase of `stats` since the last call, and the current gauges.
    pub(crate) fn update(
        &mut self,
        stats: &Stats,
        view_size: usize,
        mean_age: f64,
        in_flight: usize,
    ) {
        if *stats != self.exported {
            let old = std::mem::replace(&mut self.exported, stats.clone());
            let new = &self.exported;
            let add = |counter: &Counter, new: u64, old: u64| {
                counter.inc_by(new.saturating_sub(old));
            };
            let add_to = |family: &Family<Reason, Counter>, label: &'static str, new, old| {
                add(&family.get_or_create(&reason(label)), new, old);
            };
            add(
                &self.shuffles_started,
                new.shuffles_started,
                old.shuffles_started,
            );
            add(
                &self.shuffles_completed,
                new.shuffles_completed,
                old.shuffles_completed,
            );
            add(
                &self.inbound_answered,
                new.inbound_answered,
                old.inbound_answered,
            );
            add(&self.inbound_failed, new.inbound_failed, old.inbound_failed);
            let (f, o) = (&new.shuffles_failed, &old.shuffles_failed);
            let failed = &self.shuffles_failed;
            add_to(failed, "dial", f.dial, o.dial);
            add_to(
                failed,
                "unsupported_protocol",
                f.unsupported_protocol,
                o.unsupported_protocol,
            );
            add_to(failed, "timeout", f.timeout, o.timeout);
            add_to(
                failed,
                "connection_closed",
                f.connection_closed,
                o.connection_closed,
            );
            add_to(failed, "io", f.io, o.io);
            let refused = &self.inbound_refused;
            add_to(
                refused,
                "capacity",
                new.inbound_refused,
                old.inbound_refused,
            );
            add_to(
                refused,
                "rate_limit",
                new.inbound_rate_limited,
                old.inbound_rate_limited,
            );
            let (n, o) = (&new.invalid, &old.invalid);
            let (ni, oi) = (&new.ignored, &old.ignored);
            let ignored = &self.entries_ignored;
            let count = |n: usize| n as u64;
            add_to(
                ignored,
                "excess",
                count(n.excess_entries + ni.excess),
                count(o.excess_entries + oi.excess),
            );
            add_to(
                ignored,
                "invalid_peer_id",
                count(n.invalid_peer_id),
                count(o.invalid_peer_id),
            );
            add_to(
                ignored,
                "no_address",
                count(n.no_address),
                count(o.no_address),
            );
            add_to(ignored, "local", count(ni.local), count(oi.local));
            add_to(
                ignored,
                "duplicate",
                count(ni.duplicate),
                count(oi.duplicate),
            );
            add_to(ignored, "no_room", count(ni.no_room), count(oi.no_room));
            let dropped = &self.addresses_dropped;
            add_to(
                dropped,
                "invalid",
                count(n.invalid_address),
                count(o.invalid_address),
            );
            add_to(
                dropped,
                "foreign_peer",
                count(n.foreign_peer_address),
                count(o.foreign_peer_address),
            );
            add_to(
                dropped,
                "excess",
                count(n.excess_addresses),
                count(o.excess_addresses),
            );
        }
        self.view_size.set(view_size as i64);
        self.view_mean_age.set(mean_age);
        self.shuffles_in_flight.set(in_flight as i64);
    }
}
