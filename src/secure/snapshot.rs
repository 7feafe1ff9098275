//! Saving and restoring a view across restarts ([`SecureSnapshot`]): the holdings, the mint
//! clock and the proofs. Restored holdings come back *non-swappable*: the node may have handed
//! them on after the snapshot was taken, and a non-swappable redemption is the one hand-over
//! that may legally repeat one, so a stale snapshot can never make an honest node sign a
//! fork. The mint clock comes back no earlier than `now + max_skew`, so that no descriptor is
//! minted within a gap of one minted after the snapshot.

use std::hash::Hash;

use crate::secure::{
    Holding, SecureView,
    chain::{Chain, HandOverKind},
    outcome::{DropReason, ExchangeOutcome},
    proof::Proof,
    scheme::{Scheme, Signer},
};

/// What [`SecureView::export`] saves and [`SecureView::import`] restores.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecureSnapshot<I, A, G, D> {
    /// The chains the view owned (ending with a hand-over to the local node).
    pub holdings: Vec<Chain<I, A, G>>,
    /// The mint clock.
    pub last_minted: u64,
    /// The proofs kept, newest first.
    pub proofs: Vec<Proof<I, A, G, D>>,
}

impl<I, A, S, G> SecureView<I, A, S, G>
where
    I: Clone + Eq + Hash,
    A: Clone,
    S: Scheme<I, A>,
    G: Signer<I, A, S>,
{
    /// The state worth keeping across a restart: the holdings (and the target of an exchange
    /// selected but not opened), the mint clock and the proofs.
    pub fn export(&self) -> SecureSnapshot<I, A, S::Signature, S::Digest> {
        let targets = self.exchanges.iter().filter_map(|e| e.target());
        SecureSnapshot {
            holdings: self
                .holdings
                .iter()
                .chain(targets)
                .map(|h| h.token.chain().clone())
                .collect(),
            last_minted: self.last_minted,
            proofs: self.blacklist.proofs().cloned().collect(),
        }
    }

    /// Restores a snapshot at `now`: the proofs are verified and their offenders
    /// blacklisted; the holdings are verified and come back non-swappable, as room allows;
    /// the mint clock moves to the snapshot's or to `now + max_skew`, whichever is later.
    pub fn import(
        &mut self,
        now: u64,
        snapshot: SecureSnapshot<I, A, S::Signature, S::Digest>,
    ) -> ExchangeOutcome<I> {
        let mut out = ExchangeOutcome::default();
        self.last_minted = self
            .last_minted
            .max(snapshot.last_minted)
            .max(now.saturating_add(self.params.max_skew));
        for proof in snapshot.proofs.into_iter().rev() {
            self.take_proofs(vec![proof], &mut out);
        }
        for chain in snapshot.holdings {
            let token = match self.verify(chain) {
                Ok(t) => t,
                Err(why) => {
                    out.invalid.count(why);
                    continue;
                }
            };
            let creator = token.creator().clone();
            if *token.owner() != self.local
                || token
                    .links()
                    .last()
                    .is_none_or(|l| l.kind != HandOverKind::Transfer)
            {
                out.invalid.count(crate::secure::Invalid::WrongHandOver);
                continue;
            }
            if let Err(why) = self.in_time(token.minted_at(), now) {
                out.invalid.count(why);
                continue;
            }
            let reason = if creator == self.local {
                Some(DropReason::Own)
            } else if self.blacklist.contains(&creator) {
                Some(DropReason::Blacklisted)
            } else if self.holdings.iter().any(|h| *h.token.creator() == creator) {
                Some(DropReason::Duplicate)
            } else if self.holdings.len() >= self.capacity() {
                Some(DropReason::NoRoom)
            } else {
                None
            };
            if let Some(reason) = reason {
                out.dropped.push((creator, reason));
                continue;
            }
            self.anchors.observe(token.body(), now);
            self.holdings.push(Holding {
                token,
                swappable: false,
            });
            out.gained.push(creator);
        }
        out.finished = true;
        out
    }
}
