//! Negotiating the protocol version of a shuffle stream: one upgrade offers every version the
//! peer speaks, in order of preference, and hands the stream over with the version agreed on.
//!
//! A dialler's multistream-select proposes the versions one by one (`/cyclon/1.1.0` first,
//! then `/cyclon/1.0.0` after a refusal); a listener accepts any version in its list.

use std::{convert::Infallible, future, iter};

use libp2p_core::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};

use crate::protocol::Version;

/// Offers `versions` (preferred first) and yields the stream with the version negotiated
/// (reachable through the `NetworkBehaviour` trait's handler types, opaque).
#[derive(Debug, Clone, Copy)]
pub struct Upgrade {
    versions: &'static [Version],
}

impl Upgrade {
    pub(crate) fn new(versions: &'static [Version]) -> Self {
        Self { versions }
    }
}

impl UpgradeInfo for Upgrade {
    type Info = Version;
    type InfoIter = iter::Copied<std::slice::Iter<'static, Version>>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.versions.iter().copied()
    }
}

impl<S> InboundUpgrade<S> for Upgrade {
    type Output = (S, Version);
    type Error = Infallible;
    type Future = future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: S, version: Version) -> Self::Future {
        future::ready(Ok((stream, version)))
    }
}

impl<S> OutboundUpgrade<S> for Upgrade {
    type Output = (S, Version);
    type Error = Infallible;
    type Future = future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, stream: S, version: Version) -> Self::Future {
        future::ready(Ok((stream, version)))
    }
}
