//! What the view's membership did since the adapter last asked ([`ViewChange`],
//! [`SecureView::drain_changes`]): the creators whose descriptors entered or left the
//! holdings, whatever call moved them.

use std::hash::Hash;

use super::{Scheme, SecureView};

/// A creator that entered or left the view's holdings since the last
/// [`SecureView::drain_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewChange<I, A> {
    /// The view now holds a descriptor of `peer`, which signed `addresses`.
    Added {
        /// The descriptor's creator.
        peer: I,
        /// The addresses its creator signed.
        addresses: A,
    },
    /// The view holds no descriptor of `peer` any more.
    Removed {
        /// The descriptor's creator.
        peer: I,
    },
}

impl<I, A, S, G> SecureView<I, A, S, G>
where
    I: Clone + Eq + Hash,
    A: Clone,
    S: Scheme<I, A>,
{
    /// The creators that entered or left the holdings since the last call (removals
    /// first), each once: a creator that left and came back between two calls is not
    /// reported. The first call reports every holding as added. A view that never calls it
    /// keeps nothing for it.
    pub fn drain_changes(&mut self) -> Vec<ViewChange<I, A>> {
        let mut changes = Vec::new();
        let holdings = &self.holdings;
        self.reported.retain(|peer| {
            let held = holdings.iter().any(|h| h.token.creator() == peer);
            if !held {
                changes.push(ViewChange::Removed { peer: peer.clone() });
            }
            held
        });
        for h in &self.holdings {
            let peer = h.token.creator();
            if self.reported.insert(peer.clone()) {
                changes.push(ViewChange::Added {
                    peer: peer.clone(),
                    addresses: h.token.body().addresses.clone(),
                });
            }
        }
        changes
    }
}
