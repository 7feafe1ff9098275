//! The configuration of the SecureCyclon behaviour ([`Config`]).

use std::time::Duration;

use libp2p_swarm::StreamProtocol;

use crate::{
    address_scope::AddressScope,
    config::ConfigError,
    secure::{SecureParams, wire::WireLimits},
    view::{Defence, ParamsError, ShuffleParams},
};

/// The smallest message size accepted: an `Open` with a fresh descriptor and a redemption.
const MIN_MESSAGE_SIZE: usize = 2048;

/// The configuration of [`Behaviour`](super::Behaviour): the view size `c`, the shuffle length
/// `l`, SecureCyclon's [`SecureParams`], and what the adapter owns (the round interval,
/// timeouts, stream bounds, protocol prefix, address scope).
#[derive(Debug, Clone)]
pub struct Config {
    view_size: usize,
    shuffle_length: usize,
    params: SecureParams,
    interval: Option<Duration>,
    request_timeout: Duration,
    max_message_size: usize,
    pub(crate) max_inbound_streams_per_connection: usize,
    pub(crate) max_inbound_streams: usize,
    pub(crate) max_outbound_streams_per_connection: usize,
    protocol_prefix: String,
    address_scope: AddressScope,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            view_size: 20,
            shuffle_length: 5,
            params: SecureParams::default(),
            interval: None,
            request_timeout: Duration::from_secs(10),
            max_message_size: 24 * 1024,
            max_inbound_streams_per_connection: 8,
            max_inbound_streams: 64,
            max_outbound_streams_per_connection: 8,
            protocol_prefix: String::new(),
            address_scope: AddressScope::Any,
        }
    }
}

impl Config {
    /// Sets the view size `c` (holdings plus anchor slots). Default: 20.
    pub fn with_view_size(mut self, view_size: usize) -> Self {
        self.view_size = view_size;
        self
    }

    /// Sets the shuffle length `l`: transfers each way in an exchange. Default: 5.
    pub fn with_shuffle_length(mut self, shuffle_length: usize) -> Self {
        self.shuffle_length = shuffle_length;
        self
    }

    /// Sets SecureCyclon's parameters (mint gap, clock skew, lifetimes, budgets; see
    /// [`SecureParams`], e.g. [`SecureParams::scaled`]). Default: [`SecureParams::default`]
    /// (a 10 s mint gap).
    pub fn with_params(mut self, params: SecureParams) -> Self {
        self.params = params;
        self
    }

    /// Sets the interval between two rounds (one exchange each). It must be at least the
    /// mint gap, since each exchange mints a descriptor. The first round comes after a
    /// random share of it. Default: the mint gap.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Sets the time allowed for each stream, from its negotiation to its last message; an
    /// exchange this node opens gets twice this from its selection (a dial, then its stream).
    /// Default: 10 s.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the largest message accepted, checked from the length prefix. Default: 24 KiB.
    pub fn with_max_message_size(mut self, size: usize) -> Self {
        self.max_message_size = size;
        self
    }

    /// Sets the most inbound streams in flight per connection (more are refused).
    /// Default: 8.
    pub fn with_max_inbound_streams_per_connection(mut self, n: usize) -> Self {
        self.max_inbound_streams_per_connection = n;
        self
    }

    /// Sets the most inbound streams in flight over all connections. Default: 64.
    pub fn with_max_inbound_streams(mut self, n: usize) -> Self {
        self.max_inbound_streams = n;
        self
    }

    /// Sets the most outbound streams (exchanges and proof pushes) at once per connection.
    /// Default: 8.
    pub fn with_max_outbound_streams_per_connection(mut self, n: usize) -> Self {
        self.max_outbound_streams_per_connection = n;
        self
    }

    /// Puts `prefix` before the protocol name (`<prefix>/cyclon/2.0.0`), a separate overlay.
    /// Default: none.
    pub fn with_protocol_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.protocol_prefix = prefix.into();
        self
    }

    /// Sets which of the local addresses go into the node's descriptors (and which received
    /// addresses are reported to the swarm). Default: [`AddressScope::Any`].
    pub fn with_address_scope(mut self, scope: AddressScope) -> Self {
        self.address_scope = scope;
        self
    }

    /// SecureCyclon's parameters.
    pub fn params(&self) -> &SecureParams {
        &self.params
    }

    /// The view size `c`.
    pub fn view_size(&self) -> usize {
        self.view_size
    }

    /// The shuffle length `l`.
    pub fn shuffle_length(&self) -> usize {
        self.shuffle_length
    }

    /// The round interval.
    pub fn interval(&self) -> Duration {
        self.interval
            .unwrap_or(Duration::from_millis(self.params.mint_gap))
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The protocol prefix (empty for none).
    pub fn protocol_prefix(&self) -> &str {
        &self.protocol_prefix
    }

    /// The address scope.
    pub fn address_scope(&self) -> AddressScope {
        self.address_scope
    }

    /// The core's parameters.
    pub(crate) fn shuffle_params(&self) -> ShuffleParams {
        ShuffleParams::new(self.view_size, self.shuffle_length)
            .with_defence(Defence::Secure(self.params))
    }

    /// The codec's limits.
    pub(crate) fn wire_limits(&self) -> WireLimits {
        WireLimits {
            max_message_size: self.max_message_size,
            ..WireLimits::from_params(&self.params)
        }
    }

    /// The protocol name spoken, or `None` if the prefix makes an invalid one.
    pub(crate) fn protocol(&self) -> Option<StreamProtocol> {
        let name = crate::secure::wire::PROTOCOL_NAME;
        if self.protocol_prefix.is_empty() {
            return Some(name);
        }
        let prefix = &self.protocol_prefix;
        if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains(char::is_whitespace)
        {
            return None;
        }
        StreamProtocol::try_from_owned(format!("{prefix}{name}")).ok()
    }

    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.shuffle_params().validate()?;
        let interval = self.interval();
        if interval.is_zero() {
            return Err(ConfigError::ZeroShuffleInterval);
        }
        if interval < Duration::from_millis(self.params.mint_gap) {
            return Err(ConfigError::Params(ParamsError::Defence(
                "the round interval must be at least the mint gap",
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::ZeroRequestTimeout);
        }
        if self.max_message_size < MIN_MESSAGE_SIZE {
            return Err(ConfigError::MessageSizeTooSmall(self.max_message_size));
        }
        if self.max_inbound_streams_per_connection == 0
            || self.max_inbound_streams == 0
            || self.max_outbound_streams_per_connection == 0
        {
            return Err(ConfigError::ZeroInboundStreams);
        }
        if self.protocol().is_none() {
            return Err(ConfigError::InvalidProtocolPrefix(
                self.protocol_prefix.clone(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_settings_are_refused() {
        let config = Config::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.interval(), Duration::from_secs(10));
        assert_eq!(config.protocol().unwrap().as_ref(), "/cyclon/2.0.0");
        let app = config.clone().with_protocol_prefix("/app");
        assert_eq!(app.protocol().unwrap().as_ref(), "/app/cyclon/2.0.0");
        for bad in [
            config.clone().with_protocol_prefix("app"),
            config.clone().with_protocol_prefix("/app/"),
            config.clone().with_interval(Duration::from_secs(5)),
            config.clone().with_request_timeout(Duration::ZERO),
            config.clone().with_max_message_size(100),
            config.clone().with_max_inbound_streams(0),
            config.clone().with_shuffle_length(30),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
