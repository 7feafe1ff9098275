//! Entry points for the fuzz targets under `fuzz/`, compiled only with `--cfg fuzzing` (which
//! `cargo fuzz` sets), as quinn-proto does. Not part of the public API.

use std::io;

use crate::{
    config::Config,
    protocol::{self, EntryLimits, InvalidEntries, ViewEntry},
};

/// Reads one shuffle request from `bytes` exactly as an inbound stream is read (framing,
/// size limit, message type), then validates its entries with `config`'s limits.
pub fn read_request(bytes: &[u8], config: &Config) -> io::Result<(Vec<ViewEntry>, InvalidEntries)> {
    let (_, entries) = futures::executor::block_on(protocol::read_request(
        futures::io::Cursor::new(bytes.to_vec()),
        config.max_message_size(),
    ))?;
    Ok(protocol::decode_entries(entries, &EntryLimits::new(config)))
}
