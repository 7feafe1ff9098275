//! The Prometheus metrics (feature `metrics`) follow what the behaviour does.

use libp2p::{Swarm, swarm::dummy};
use libp2p_cyclon::{Behaviour, Config, Event};
use libp2p_swarm_test::SwarmExt;
use prometheus_client::{encoding::text::encode, registry::Registry};

fn exported(registry: &Registry) -> String {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    text
}

#[tokio::test]
async fn metrics_count_shuffles_failures_and_the_view() {
    let mut registry = Registry::default();
    let config = Config::default().with_view_size(4).with_shuffle_length(2);
    let mut a = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = Behaviour::new(key.public().to_peer_id(), config.clone());
        behaviour.pause();
        behaviour
    });
    a.behaviour_mut().enable_metrics(&mut registry);
    a.listen().with_memory_addr_external().await;
    let mut b = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = Behaviour::new(key.public().to_peer_id(), config.clone());
        behaviour.pause();
        behaviour
    });
    let (b_addr, _) = b.listen().with_memory_addr_external().await;
    let b_id = *b.local_peer_id();
    tokio::spawn(b.loop_on_next());
    let mut other = Swarm::new_ephemeral_tokio(|_| dummy::Behaviour);
    let (other_addr, _) = other.listen().with_memory_addr_external().await;
    let other_id = *other.local_peer_id();
    tokio::spawn(other.loop_on_next());

    // One completed shuffle with B.
    a.behaviour_mut().add_address(&b_id, b_addr.clone());
    a.behaviour_mut().shuffle_now().unwrap();
    loop {
        if let Event::ShuffleCompleted { .. } = a.next_behaviour_event().await {
            break;
        }
    }
    // One failed shuffle with a peer that does not speak Cyclon.
    a.behaviour_mut().add_address(&other_id, other_addr);
    a.behaviour_mut().shuffle_now().unwrap();
    loop {
        if let Event::ShuffleFailed { .. } = a.next_behaviour_event().await {
            break;
        }
    }
    // Bring the metrics up to date (they are exported when the swarm polls the behaviour).
    a.behaviour_mut().add_address(&b_id, b_addr);
    a.next_behaviour_event().await;

    let text = exported(&registry);
    for line in [
        "cyclon_shuffles_started_total 2",
        "cyclon_shuffles_completed_total 1",
        "cyclon_shuffles_failed_total{reason=\"unsupported_protocol\"} 1",
        "cyclon_view_size 1",
        "cyclon_shuffles_in_flight 0",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}
