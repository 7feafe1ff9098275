//! The responder's side of an exchange: checking an `Open` and answering it with an
//! `Accept` or a `Refuse` (`answer`).

use std::hash::Hash;

use rand::Rng;

use super::{Accept, Answer, AnswerOf, Exchange, Open, OpenOf, Phase, Refuse};
use crate::secure::{
    Budget, Redeemed, SecureView, TokenOf,
    chain::{Chain, HandOverKind},
    outcome::{DropReason, ExchangeOutcome, Invalid, RefuseReason, Role},
    scheme::{Scheme, Signer},
};

impl<I, A, S, G> SecureView<I, A, S, G>
where
    I: Clone + Eq + Hash,
    A: Clone,
    S: Scheme<I, A>,
    G: Signer<I, A, S>,
{
    /// Answers an [`Open`] from `from` at `now`: checks the redemption (or the join's
    /// budget) and the fresh descriptor, learns from the samples, suspects and proofs, and
    /// either accepts, handing over transfer 1, or refuses.
    pub fn answer<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        from: &I,
        open: OpenOf<I, A, S>,
    ) -> (AnswerOf<I, A, S>, ExchangeOutcome<I>) {
        let mut out = ExchangeOutcome::default();
        let Open {
            redeem,
            fresh,
            samples,
            suspects,
            proofs,
            join,
        } = open;
        self.take_proofs(proofs, &mut out);
        let verdict = self.check_open(now, from, redeem, fresh, join, &mut out);
        let fresh = match verdict {
            Ok(fresh) => fresh,
            Err(reason) => return self.refuse(reason, from, out),
        };
        let mut ex = Exchange::new(
            self.new_id(),
            Role::Responder,
            from.clone(),
            Phase::Running,
            join,
            if join {
                self.params.join_transfers
            } else {
                self.swap_length
            },
        );
        self.ingest_samples(&mut ex, &samples, now, &mut out);
        self.ingest_suspects(suspects, now, &mut out);
        if self.blacklist.contains(from) {
            return self.refuse(RefuseReason::Blacklisted, from, out);
        }
        self.counters.answered += 1;
        ex.received = 1;
        ex.received_from.push(from.clone());
        // A join only pulls: the joiner's fresh descriptor enters a view that had a free
        // slot, never one that was full, so that joins cannot push descriptors into a victim.
        let room = self.holdings.len() < self.capacity();
        let transfer = self.give(rng, &mut ex, now, &mut out);
        self.observe_full(&fresh, &mut out);
        if join && !room {
            self.anchors.observe(fresh.body(), now);
            out.dropped.push((from.clone(), DropReason::NoRoom));
        } else {
            self.take(fresh, false, now, &mut out);
        }
        if transfer.is_none() {
            ex.ended = true;
        }
        let accept = Accept {
            transfer,
            samples: self.samples(),
            suspects: self.suspects_to_send(Some(&mut ex)),
            proofs: self.proofs_to_send(),
        };
        let id = ex.id;
        self.exchanges.push(ex);
        (Answer::Accept { id, accept }, out)
    }

    fn refuse(
        &mut self,
        reason: RefuseReason,
        from: &I,
        mut out: ExchangeOutcome<I>,
    ) -> (AnswerOf<I, A, S>, ExchangeOutcome<I>) {
        self.counters.refused += 1;
        out.refused = Some(reason);
        out.finished = true;
        let proofs = match reason {
            RefuseReason::Blacklisted => {
                self.blacklist.proof_of(from).cloned().into_iter().collect()
            }
            _ => self.proofs_to_send(),
        };
        (Answer::Refuse(Refuse { reason, proofs }), out)
    }

    /// The responder's checks of an `Open`; returns the verified fresh descriptor.
    fn check_open(
        &mut self,
        now: u64,
        from: &I,
        redeem: Option<Chain<I, A, S::Signature>>,
        fresh: Chain<I, A, S::Signature>,
        join: bool,
        out: &mut ExchangeOutcome<I>,
    ) -> Result<TokenOf<I, A, S>, RefuseReason> {
        let invalid = |out: &mut ExchangeOutcome<I>, why: Invalid| {
            out.invalid.count(why);
            Err(match why {
                Invalid::GapMismatch => RefuseReason::GapMismatch,
                Invalid::StaleFresh => RefuseReason::StaleFresh,
                _ => RefuseReason::Invalid,
            })
        };
        if *from == self.local {
            return invalid(out, Invalid::Unexpected);
        }
        if self.blacklist.contains(from) {
            return Err(RefuseReason::Blacklisted);
        }
        if self.exchanges.len() >= self.params.max_exchanges {
            return Err(RefuseReason::Busy);
        }
        // The fresh descriptor: the initiator's, handed to us, minted just now, never seen.
        let fresh = match self.verify(fresh) {
            Ok(t) => t,
            Err(why) => return invalid(out, why),
        };
        let first = fresh.links().first();
        if fresh.creator() != from
            || fresh.links().len() != 1
            || first.is_none_or(|l| l.kind != HandOverKind::Transfer || l.to != self.local)
        {
            return invalid(out, Invalid::WrongHandOver);
        }
        if fresh.minted_at() > now.saturating_add(self.params.max_skew) {
            return invalid(out, Invalid::FromFuture);
        }
        if now.saturating_sub(fresh.minted_at()) > self.params.fresh_window {
            return invalid(out, Invalid::StaleFresh);
        }
        if self.evidence.seen(self.tag(from), fresh.minted_at()) {
            // Seen before: a replay, or the initiator handed its fresh descriptor to two.
            self.observe_full(&fresh, out);
            if self.blacklist.contains(from) {
                return Err(RefuseReason::Blacklisted);
            }
            return invalid(out, Invalid::Replay);
        }
        if join {
            if redeem.is_some() {
                return invalid(out, Invalid::Unexpected);
            }
            if !self.budget(now, Budget::Join) {
                return Err(RefuseReason::Busy);
            }
            return Ok(fresh);
        }
        let Some(redeem) = redeem else {
            return invalid(out, Invalid::Unexpected);
        };
        let token = match self.verify(redeem) {
            Ok(t) => t,
            Err(why) => return invalid(out, why),
        };
        let last = token.links().len();
        let kind = match token.links().last() {
            Some(l) if l.kind.is_redeem() && l.to == self.local => l.kind,
            _ => return invalid(out, Invalid::WrongHandOver),
        };
        if *token.creator() != self.local || token.chain().signer(last - 1) != from {
            return Err(RefuseReason::NotOwned);
        }
        match self.in_time(token.minted_at(), now) {
            Ok(()) => {}
            Err(Invalid::Expired) => return Err(RefuseReason::Expired),
            Err(why) => return invalid(out, why),
        }
        self.observe_full(&token, out);
        let t = token.minted_at();
        let mut record = self.redeemed_at_me.remove(&t).unwrap_or(Redeemed {
            swappable: None,
            non_swappable: false,
        });
        let verdict = match kind {
            HandOverKind::Redeem => match &record.swappable {
                Some(earlier) => {
                    if let Some(proof) =
                        crate::secure::proof::conflict(earlier, &token, self.params.mint_gap)
                    {
                        self.found(proof, out);
                    }
                    Err(if self.blacklist.contains(from) {
                        RefuseReason::Blacklisted
                    } else {
                        RefuseReason::AlreadyRedeemed
                    })
                }
                None if !self.budget(now, Budget::Swappable) => Err(RefuseReason::Busy),
                None => {
                    record.swappable = Some(token);
                    Ok(())
                }
            },
            _ => {
                if record.non_swappable {
                    Err(RefuseReason::AlreadyRedeemed)
                } else if !self.budget(now, Budget::NonSwappable) {
                    Err(RefuseReason::Busy)
                } else {
                    record.non_swappable = true;
                    Ok(())
                }
            }
        };
        self.redeemed_at_me.insert(t, record);
        verdict.map(|()| fresh)
    }
}
