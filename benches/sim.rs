//! The cost of one shuffle in the simulator: one cycle of a converged overlay (N shuffles,
//! each through the sans-IO core), reported per shuffle.
//!
//! ```sh
//! cargo bench --bench sim --features sim
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use libp2p_cyclon::sim::{Bootstrap, Simulation};
use libp2p_cyclon::view::ShuffleParams;

fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_cycle");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for nodes in [10_000usize, 100_000] {
        let mut sim = Simulation::new(nodes, ShuffleParams::default(), Bootstrap::Random, 1);
        // Reach the steady state first: full, aged, random-like views.
        for _ in 0..20 {
            sim.step();
        }
        group.throughput(Throughput::Elements(nodes as u64));
        group.bench_with_input(BenchmarkId::new("shuffles", nodes), &nodes, |b, _| {
            b.iter(|| {
                sim.step();
                black_box(sim.counters().completed)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cycle);
criterion_main!(benches);
