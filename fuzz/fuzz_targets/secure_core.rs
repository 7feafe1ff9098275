//! SecureCyclon's core driven by arbitrary input: who initiates, which messages are lost, how
//! chains, samples and proofs are spoiled. Nothing may panic, views keep their invariants, and
//! no honest node is ever blacklisted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use libp2p_cyclon::fuzzing;

fuzz_target!(|data: &[u8]| {
    fuzzing::secure_core(data);
});
