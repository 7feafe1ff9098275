//! Negotiating the protocol version of a shuffle stream: one upgrade offers every version the
//! peer speaks, in order of preference, and hands the stream over with the version agreed on.
//!
//! A dialler's multistream-select proposes the versions one by one (`/cyclon/1.1.0` first,
//! then `/cyclon/1.0.0` after a refusal); a listener accepts any version in its list.

use std::{convert::Infallible, future, sync::Arc};

use libp2p_core::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};

use crate::protocol::{ProtocolId, StreamKind};

/// Offers protocol names (preferred first) and yields the stream with what it was negotiated
/// for: a shuffle version, or a neighbour link (reachable through the `NetworkBehaviour`
/// trait's handler types, opaque).
#[derive(Debug, Clone)]
pub struct Upgrade {
    offered: Arc<[ProtocolId]>,
}

impl Upgrade {
    pub(crate) fn new(offered: Arc<[ProtocolId]>) -> Self {
        Self { offered }
    }
}

impl UpgradeInfo for Upgrade {
    type Info = ProtocolId;
    type InfoIter = std::vec::IntoIter<ProtocolId>;

    // The iterator must own its items (the trait's `InfoIter` outlives `&self`).
    #[allow(clippy::unnecessary_to_owned)]
    fn protocol_info(&self) -> Self::InfoIter {
        self.offered.to_vec().into_iter()
    }
}

impl<S> InboundUpgrade<S> for Upgrade {
    type Output = (S, StreamKind);
    type Error = Infallible;
    type Future = future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: S, id: ProtocolId) -> Self::Future {
        future::ready(Ok((stream, id.kind())))
    }
}

impl<S> OutboundUpgrade<S> for Upgrade {
    type Output = (S, StreamKind);
    type Error = Infallible;
    type Future = future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, stream: S, id: ProtocolId) -> Self::Future {
        future::ready(Ok((stream, id.kind())))
    }
}
