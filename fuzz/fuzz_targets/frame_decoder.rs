//! Arbitrary bytes on an inbound stream, read as `/cyclon/1.0.0` and as `/cyclon/1.1.0`
//! (whose entries may carry signed peer records, verified): framing, size limit, protobuf
//! decoding, validation of entries and records, then the merge into a view. Nothing may panic,
//! and the view keeps its invariants.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use libp2p_cyclon::{Config, fuzzing, view::PartialView};
use libp2p_identity::PeerId;
use rand::{SeedableRng, rngs::StdRng};

fuzz_target!(|data: &[u8]| {
    for signed_records in [false, true] {
        read_and_merge(data, signed_records);
    }
});

fn read_and_merge(data: &[u8], signed_records: bool) {
    let config = Config::default().with_max_message_size(4096);
    let Ok((entries, invalid)) = fuzzing::read_request(data, &config, signed_records) else {
        return;
    };
    // At most l records are verified, and nothing verifies over 1.0.0.
    assert!(invalid.records_refused() + entries.len() <= config.shuffle_length());
    assert!(signed_records || entries.iter().all(|e| !e.addresses().is_verified()));
    assert!(entries.len() <= config.shuffle_length());
    assert!(invalid.entries_dropped() <= usize::MAX);
    for entry in &entries {
        assert!(!entry.addresses().is_empty());
        assert!(entry.addresses().len() <= config.max_addresses_per_entry());
        assert!(entry.age() <= config.shuffle_params().max_age);
    }
    // Feed the entries to a responder, as the behaviour does.
    let local = PeerId::from_bytes(&[0, 2, 8, 1]).unwrap_or(PeerId::random());
    let mut view = PartialView::new(local, config.shuffle_params()).unwrap();
    let sender = entries.first().map(|e| *e.peer_id()).unwrap_or(local);
    let mut rng = StdRng::seed_from_u64(data.len() as u64);
    let (reply, _) = view.answer_shuffle(&mut rng, &sender, entries);
    assert!(reply.is_empty(), "the view was empty before the merge");
    let ids: HashSet<&PeerId> = view.entries().iter().map(|e| e.peer_id()).collect();
    assert_eq!(ids.len(), view.len());
    assert!(!ids.contains(&local));
    assert!(view.len() <= config.view_size());
}
