//! Entry points for the fuzz targets under `fuzz/`, compiled only with `--cfg fuzzing` (which
//! `cargo fuzz` sets), as quinn-proto does. Not part of the public API.

use std::io;

use crate::{
    config::Config,
    protocol::{self, EntryLimits, InvalidEntries, Version, ViewEntry},
};

/// Reads one shuffle request from `bytes` exactly as an inbound stream is read (framing,
/// size limit, message type), then validates its entries with `config`'s limits as they
/// arrived over `/cyclon/1.1.0` (`signed_records`: records verified) or `/cyclon/1.0.0`.
pub fn read_request(
    bytes: &[u8],
    config: &Config,
    signed_records: bool,
) -> io::Result<(Vec<ViewEntry>, InvalidEntries)> {
    let (_, entries) = futures::executor::block_on(protocol::read_request(
        futures::io::Cursor::new(bytes.to_vec()),
        config.max_message_size(),
    ))?;
    let version = if signed_records {
        Version::V1_1
    } else {
        Version::V1_0
    };
    Ok(protocol::decode_entries(
        entries,
        &EntryLimits::new(config),
        version,
    ))
}
