//! The initiator's side of an exchange: choosing whom to exchange with (`select`, `join`),
//! giving up before anything is signed (`abandon`), and the opening message (`open`).

use std::hash::Hash;

use rand::Rng;

use super::{Exchange, ExchangeId, Open, OpenError, OpenOf, Phase, Selected, StartExchangeError};
use crate::secure::{
    Holding, SecureView,
    chain::{HandOver, HandOverKind, Link, Token},
    outcome::{DropReason, ExchangeOutcome, Role},
    scheme::{Scheme, Signer},
};

impl<I, A, S, G> SecureView<I, A, S, G>
where
    I: Clone + Eq + Hash,
    A: Clone,
    S: Scheme<I, A>,
    G: Signer<I, A, S>,
{
    /// Chooses whom to exchange with at `now`: the creator of the oldest holding (ties at
    /// random; a non-swappable copy at most once per gap), or every
    /// [`anchor_probe_every`](crate::secure::SecureParams::anchor_probe_every)-th round an
    /// anchor; a seed to join every other round while the view is small, every round while
    /// it is empty. The chosen holding leaves the view. Nothing is signed until
    /// [`open`](Self::open).
    pub fn select<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
    ) -> Result<Selected<I, A>, StartExchangeError> {
        self.can_start(now)?;
        self.rounds += 1;
        let small = self.holdings.len() < self.params.seed_join_below;
        if small
            && (self.holdings.is_empty() || !self.rounds.is_multiple_of(2))
            && let Some(seed) = self.next_seed()
        {
            return Ok(self.start_join(seed, None));
        }
        let every = u64::from(self.params.anchor_probe_every);
        let probe = self.params.anchors > 0 && every > 0 && self.rounds.is_multiple_of(every);
        if probe && let Some(anchor) = self.anchors.next_contact().cloned() {
            let k = self
                .holdings
                .iter()
                .position(|h| *h.token.creator() == anchor.creator && self.redeemable(h, now));
            return Ok(match k {
                Some(k) => self.start_redeem(k),
                None => self.start_join(anchor.creator, Some(anchor.addresses)),
            });
        }
        let max_age = self.params.max_age;
        let ns_ok = self
            .last_ns_redeem
            .is_none_or(|t| now.saturating_sub(t) >= self.params.mint_gap);
        let oldest = self
            .holdings
            .iter()
            .filter(|h| {
                (h.swappable || ns_ok) && now.saturating_sub(h.token.minted_at()) <= max_age
            })
            .map(|h| h.token.minted_at())
            .min();
        match oldest {
            Some(t) => {
                let k = self
                    .pick(rng, |h| h.token.minted_at() == t && (h.swappable || ns_ok))
                    .expect("the oldest is eligible");
                Ok(self.start_redeem(k))
            }
            None => match self.anchors.next_contact().cloned() {
                Some(anchor) => Ok(self.start_join(anchor.creator, Some(anchor.addresses))),
                None => Err(StartExchangeError::Empty),
            },
        }
    }

    /// Chooses to join `target` without a descriptor of it (a newcomer's bootstrap contact):
    /// an exchange of [`join_transfers`](crate::secure::SecureParams::join_transfers) each way,
    /// within the target's budget of joins per gap.
    pub fn join(&mut self, now: u64, target: I) -> Result<Selected<I, A>, StartExchangeError> {
        if target == self.local || self.blacklist.contains(&target) {
            return Err(StartExchangeError::BadTarget);
        }
        self.can_start(now)?;
        Ok(self.start_join(target, None))
    }

    /// The next seed to join (round robin), skipping blacklisted ones.
    fn next_seed(&mut self) -> Option<I> {
        for _ in 0..self.seeds.len() {
            let seed = self.seeds.pop_front()?;
            self.seeds.push_back(seed.clone());
            if !self.blacklist.contains(&seed) {
                return Some(seed);
            }
        }
        None
    }

    fn can_start(&self, now: u64) -> Result<(), StartExchangeError> {
        if self.exchanges.len() >= self.params.max_exchanges {
            return Err(StartExchangeError::Busy);
        }
        let next = self.next_mint(now);
        let lead = self.params.max_skew / 2;
        if next > now.saturating_add(lead) {
            return Err(StartExchangeError::MintTooSoon {
                retry_at: next - lead,
            });
        }
        Ok(())
    }

    fn redeemable(&self, h: &Holding<I, A, S::Signature, S::Digest>, now: u64) -> bool {
        now.saturating_sub(h.token.minted_at()) <= self.params.max_age
            && (h.swappable
                || self
                    .last_ns_redeem
                    .is_none_or(|t| now.saturating_sub(t) >= self.params.mint_gap))
    }

    fn start_redeem(&mut self, k: usize) -> Selected<I, A> {
        let holding = self.holdings.swap_remove(k);
        let id = self.new_id();
        let target = holding.token.creator().clone();
        let addresses = Some(holding.token.body().addresses.clone());
        let mut ex = Exchange::new(
            id,
            Role::Initiator,
            target.clone(),
            Phase::Selected,
            false,
            self.swap_length,
        );
        ex.target = Some(holding);
        self.exchanges.push(ex);
        Selected {
            id,
            target,
            addresses,
            join: false,
        }
    }

    fn start_join(&mut self, target: I, addresses: Option<A>) -> Selected<I, A> {
        let id = self.new_id();
        self.exchanges.push(Exchange::new(
            id,
            Role::Initiator,
            target.clone(),
            Phase::Selected,
            true,
            self.params.join_transfers,
        ));
        Selected {
            id,
            target,
            addresses,
            join: true,
        }
    }

    /// The exchange `id` could not reach its target before anything was sent (a failed
    /// dial): the redeemed holding is dropped, as Cyclon drops a target that does not answer,
    /// and an anchor target leaves its slot. Nothing was signed.
    pub fn abandon(&mut self, id: ExchangeId) -> ExchangeOutcome<I> {
        let mut out = ExchangeOutcome {
            finished: true,
            ..ExchangeOutcome::default()
        };
        let Some(k) = self
            .exchanges
            .iter()
            .position(|e| e.id == id && e.phase == Phase::Selected)
        else {
            return out;
        };
        let ex = self.exchanges.swap_remove(k);
        if let Some(h) = ex.target {
            out.dropped
                .push((h.token.creator().clone(), DropReason::Unreachable));
        }
        self.anchors.remove(&ex.partner);
        out
    }

    /// Opens the selected exchange `id` at `now`, its stream being up: mints the fresh
    /// descriptor (dated [`next_mint`](Self::next_mint)) and signs it over to the target,
    /// signs the redemption, and returns the [`Open`] to send.
    #[allow(clippy::type_complexity)]
    pub fn open<R: Rng + ?Sized>(
        &mut self,
        _rng: &mut R,
        now: u64,
        id: ExchangeId,
        local_addresses: A,
    ) -> Result<(OpenOf<I, A, S>, ExchangeOutcome<I>), OpenError> {
        let Some(k) = self
            .exchanges
            .iter()
            .position(|e| e.id == id && e.phase == Phase::Selected)
        else {
            return Err(OpenError::UnknownExchange);
        };
        let minted_at = self.next_mint(now);
        let lead = self.params.max_skew / 2;
        if minted_at > now.saturating_add(lead) {
            return Err(OpenError::MintTooSoon {
                retry_at: minted_at - lead,
            });
        }
        let partner = self.exchanges[k].partner.clone();
        let body = crate::secure::DescriptorBody {
            creator: self.local.clone(),
            minted_at,
            mint_gap: self.params.mint_gap,
            addresses: local_addresses,
        };
        let (signature, digest) = self.signer.sign_descriptor(&self.scheme, &body)?;
        let mut fresh = Token::minted(body, signature, digest);
        let handover = HandOver {
            prev: digest,
            to: partner.clone(),
            kind: HandOverKind::Transfer,
        };
        let (signature, d) = self.signer.sign_handover(&self.scheme, &handover)?;
        // The redemption is signed before anything is committed, so that a signing failure
        // leaves the view as it was.
        let redeem = match &self.exchanges[k].target {
            Some(h) => {
                let kind = if h.swappable {
                    HandOverKind::Redeem
                } else {
                    HandOverKind::RedeemNonSwappable
                };
                let handover = HandOver {
                    prev: h.token.head(),
                    to: partner.clone(),
                    kind,
                };
                Some((kind, self.signer.sign_handover(&self.scheme, &handover)?))
            }
            None => None,
        };
        fresh.push(
            Link {
                to: partner.clone(),
                kind: HandOverKind::Transfer,
                signature,
            },
            d,
        );
        self.last_minted = minted_at;
        self.counters.minted += 1;
        let mut out = ExchangeOutcome {
            minted: Some(minted_at),
            ..ExchangeOutcome::default()
        };
        let ex = &mut self.exchanges[k];
        ex.phase = Phase::Opened;
        ex.sent = 1;
        let redeem_chain = match (ex.target.take(), redeem) {
            (Some(h), Some((kind, (signature, d)))) => {
                let mut token = h.token;
                if kind == HandOverKind::Redeem {
                    ex.redeemed = Some(token.clone());
                } else {
                    self.last_ns_redeem = Some(now);
                }
                token.push(
                    Link {
                        to: partner.clone(),
                        kind,
                        signature,
                    },
                    d,
                );
                out.redeemed = Some((partner.clone(), kind));
                if self.params.redemption_cache > 0 {
                    if self.cache.len() >= self.params.redemption_cache {
                        self.cache.pop_back();
                    }
                    self.cache.push_front(token.clone());
                }
                Some(token.into_chain())
            }
            _ => None,
        };
        let join = ex.join;
        let suspects = self.suspects_to_send(None);
        let open = Open {
            redeem: redeem_chain,
            fresh: fresh.into_chain(),
            samples: self.samples(),
            suspects,
            proofs: self.proofs_to_send(),
            join,
        };
        Ok((open, out))
    }
}
