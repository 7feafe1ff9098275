//! Arbitrary bytes as one `/cyclon/2.0.0` message: the strict decoder (canonical encoding,
//! every limit, implied owners) never panics, what it accepts re-encodes to the same bytes,
//! and verifying what it accepts never panics either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use libp2p_cyclon::fuzzing;

fuzz_target!(|data: &[u8]| {
    fuzzing::v2_frame(data);
});
