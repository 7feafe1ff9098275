//! What both sides of an exchange do after its first two messages: every later message
//! (`advance`), failure (`fail`), the end (`finish`), and the helpers every message uses:
//! handing a descriptor on, taking one, and the samples, suspects and proofs that ride along.

use std::hash::Hash;

use rand::Rng;

use super::{
    Advance, AdvanceOf, Ex, Exchange, ExchangeId, Given, Incoming, IncomingOf, Phase, Step,
};
use crate::secure::{
    Holding, ProofOf, RepairCopies, SecureView, TokenOf,
    chain::{Chain, HandOver, HandOverKind, Link, Token},
    evidence::Found,
    outcome::{ExchangeOutcome, Invalid, Role},
    sample::Samples,
    scheme::{Scheme, Signer},
};

impl<I, A, S, G> SecureView<I, A, S, G>
where
    I: Clone + Eq + Hash,
    A: Clone,
    S: Scheme<I, A>,
    G: Signer<I, A, S>,
{
    /// A message of the exchange `id` at `now`: takes the partner's transfer, if any, and
    /// says what to send next.
    pub fn advance<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        id: ExchangeId,
        message: IncomingOf<I, A, S>,
    ) -> (AdvanceOf<I, A, S>, ExchangeOutcome<I>) {
        let mut out = ExchangeOutcome::default();
        let Some(k) = self
            .exchanges
            .iter()
            .position(|e| e.id == id && e.phase != Phase::Selected)
        else {
            out.invalid.count(Invalid::Unexpected);
            out.finished = true;
            return (Advance::Abort(Invalid::Unexpected), out);
        };
        let mut ex = self.exchanges.swap_remove(k);
        let (phase, role) = (ex.phase, ex.role);
        let (transfer, suspects, proofs) = match (message, phase, role) {
            (Incoming::Accept(a), Phase::Opened, Role::Initiator) => {
                self.ingest_samples(&mut ex, &a.samples, now, &mut out);
                (a.transfer, a.suspects, a.proofs)
            }
            (Incoming::Refuse(r), Phase::Opened, Role::Initiator) => {
                self.take_proofs(r.proofs, &mut out);
                out.refused = Some(r.reason);
                self.anchors.remove(&ex.partner);
                self.finish(ex, &mut out);
                return (Advance::Finished, out);
            }
            (Incoming::Step(s), Phase::Running, _) => (s.transfer, s.suspects, s.proofs),
            _ => return self.abort(ex, Invalid::Unexpected, out),
        };
        ex.phase = Phase::Running;
        self.take_proofs(proofs, &mut out);
        self.ingest_suspects(suspects, now, &mut out);
        let mut received = None;
        match transfer {
            Some(chain) => {
                // The partner's transfer k answers ours (initiator), or asks for our k
                // (responder): never more than the limit, never after an end.
                let allowed = match role {
                    Role::Initiator => ex.received < ex.sent,
                    Role::Responder => {
                        !ex.ended && ex.received < ex.limit && ex.received == ex.sent
                    }
                };
                if !allowed || ex.peer_ended {
                    return self.abort(ex, Invalid::Excess, out);
                }
                match self.receive_transfer(&mut ex, chain, now, &mut out) {
                    Ok(token) => received = Some(token),
                    Err(why) => return self.abort(ex, why, out),
                }
            }
            None => ex.peer_ended = true,
        }
        if self.blacklist.contains(&ex.partner) {
            if let Some(token) = received {
                self.take(token, false, now, &mut out);
            }
            out.invalid.count(Invalid::Unexpected);
            self.finish(ex, &mut out);
            return (Advance::Finished, out);
        }
        match role {
            Role::Initiator => {
                let transfer = if !ex.peer_ended && ex.sent < ex.limit {
                    self.give(rng, &mut ex, now, &mut out)
                } else {
                    None
                };
                if let Some(token) = received {
                    self.take(token, ex.join, now, &mut out);
                }
                let more = transfer.is_some();
                let step = Step {
                    transfer,
                    suspects: self.suspects_to_send(Some(&mut ex)),
                    proofs: self.proofs_to_send(),
                };
                if more {
                    self.exchanges.push(ex);
                    (Advance::Send(step), out)
                } else {
                    self.finish(ex, &mut out);
                    (Advance::SendAndFinish(step), out)
                }
            }
            Role::Responder => {
                if ex.peer_ended {
                    self.finish(ex, &mut out);
                    return (Advance::Finished, out);
                }
                let transfer = if ex.sent < ex.limit {
                    self.give(rng, &mut ex, now, &mut out)
                } else {
                    None
                };
                if let Some(token) = received {
                    self.take(token, false, now, &mut out);
                }
                if transfer.is_none() {
                    ex.ended = true;
                }
                let step = Step {
                    transfer,
                    suspects: self.suspects_to_send(Some(&mut ex)),
                    proofs: self.proofs_to_send(),
                };
                self.exchanges.push(ex);
                (Advance::Send(step), out)
            }
        }
    }

    /// The exchange `id` failed at `now` (timeout, closed stream, lost message): it is over;
    /// what was signed stays signed.
    pub fn fail(&mut self, id: ExchangeId) -> ExchangeOutcome<I> {
        let mut out = ExchangeOutcome::default();
        let Some(k) = self.exchanges.iter().position(|e| e.id == id) else {
            out.finished = true;
            return out;
        };
        if self.exchanges[k].phase == Phase::Selected {
            return self.abandon(id);
        }
        let ex = self.exchanges.swap_remove(k);
        if ex.role == Role::Initiator && ex.received == 0 {
            self.anchors.remove(&ex.partner);
        }
        self.finish(ex, &mut out);
        out
    }

    fn abort(
        &mut self,
        ex: Ex<I, A, S>,
        why: Invalid,
        mut out: ExchangeOutcome<I>,
    ) -> (AdvanceOf<I, A, S>, ExchangeOutcome<I>) {
        out.invalid.count(why);
        self.finish(ex, &mut out);
        (Advance::Abort(why), out)
    }

    /// Ends an exchange: empty slots take non-swappable copies of what it handed on, the
    /// un-reciprocated first, then the redeemed descriptor, then the others, as far as
    /// [`repair_copies`](crate::secure::SecureParams::repair_copies) allows. Not after a join:
    /// the responder of a join keeps a copy of nothing it gave, or every anchor probe would
    /// leave a triangle (prober, anchor, creator) in the overlay.
    fn finish(&mut self, ex: Ex<I, A, S>, out: &mut ExchangeOutcome<I>) {
        out.finished = true;
        let Exchange {
            mut given,
            redeemed,
            join,
            ..
        } = ex;
        let redeemed = match self.params.repair_copies {
            RepairCopies::GivenAndRedeemed => redeemed,
            RepairCopies::Given => None,
            RepairCopies::Off => return,
        };
        let room = self.capacity().saturating_sub(self.holdings.len());
        if join || room == 0 || (given.is_empty() && redeemed.is_none()) {
            return;
        }
        given.sort_by_key(|g| g.answered);
        let mut copies: Vec<TokenOf<I, A, S>> = Vec::with_capacity(given.len() + 1);
        let mut rest = given.into_iter().map(|g| (g.token, g.answered)).peekable();
        while let Some((token, _)) = rest.next_if(|(_, answered)| !answered) {
            copies.push(token);
        }
        copies.extend(redeemed);
        copies.extend(rest.map(|(t, _)| t));
        for token in copies {
            if self.holdings.len() >= self.capacity() {
                break;
            }
            let creator = token.creator();
            if self.blacklist.contains(creator)
                || self.holdings.iter().any(|h| h.token.creator() == creator)
            {
                continue;
            }
            out.kept_non_swappable.push(creator.clone());
            self.counters.kept_non_swappable += 1;
            self.holdings.push(Holding {
                token,
                swappable: false,
            });
        }
    }

    /// Signs our next transfer to the partner, if a holding is eligible: swappable, with room
    /// for one more hand-over, not the partner's own descriptor, preferably none of the
    /// creators its samples show.
    pub(super) fn give<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        ex: &mut Ex<I, A, S>,
        now: u64,
        out: &mut ExchangeOutcome<I>,
    ) -> Option<Chain<I, A, S::Signature>> {
        let (max_links, max_age) = (self.params.max_links, self.params.max_age);
        let scheme = &self.scheme;
        let partner = &ex.partner;
        let tags = &ex.partner_tags;
        let received = &ex.received_from;
        let k = self.pick(rng, |h| {
            h.swappable
                && h.token.links().len() < max_links
                && h.token.creator() != partner
                && now.saturating_sub(h.token.minted_at()) <= max_age
                && !received.contains(h.token.creator())
                && tags.binary_search(&scheme.tag(h.token.creator())).is_err()
        })?;
        let handover = HandOver {
            prev: self.holdings[k].token.head(),
            to: ex.partner.clone(),
            kind: HandOverKind::Transfer,
        };
        let (signature, digest) = match self.signer.sign_handover(&self.scheme, &handover) {
            Ok(signed) => signed,
            // Nothing was handed on: the exchange ends from our side.
            Err(_) => return None,
        };
        let holding = self.holdings.swap_remove(k);
        let mut token = holding.token;
        ex.given.push(Given {
            token: token.clone(),
            answered: ex.role == Role::Responder,
        });
        ex.sent += 1;
        out.given.push(token.creator().clone());
        token.push(
            Link {
                to: ex.partner.clone(),
                kind: HandOverKind::Transfer,
                signature,
            },
            digest,
        );
        Some(token.into_chain())
    }

    /// Checks the partner's transfer; it enters the holdings once our answer to it, if any,
    /// has left them.
    fn receive_transfer(
        &mut self,
        ex: &mut Ex<I, A, S>,
        chain: Chain<I, A, S::Signature>,
        now: u64,
        out: &mut ExchangeOutcome<I>,
    ) -> Result<TokenOf<I, A, S>, Invalid> {
        let token = self.verify(chain)?;
        let n = token.links().len();
        let last = token.links().last();
        if last.is_none_or(|l| l.kind != HandOverKind::Transfer || l.to != self.local)
            || *token.chain().signer(n - 1) != ex.partner
        {
            return Err(Invalid::WrongHandOver);
        }
        self.in_time(token.minted_at(), now)?;
        ex.received += 1;
        if ex.role == Role::Initiator
            && let Some(g) = ex.given.last_mut()
        {
            g.answered = true;
        }
        self.observe_full(&token, out);
        ex.received_from.push(token.creator().clone());
        Ok(token)
    }

    /// Learns from a partner's samples: conflicts with a chain we saw in full are shown to the
    /// partner in our next message; the tags are kept so that we do not send it creators it
    /// holds.
    pub(super) fn ingest_samples(
        &mut self,
        ex: &mut Ex<I, A, S>,
        samples: &Samples,
        now: u64,
        out: &mut ExchangeOutcome<I>,
    ) {
        let max = self.params.max_samples;
        if samples.len() > max {
            out.invalid
                .add_n(Invalid::Excess, (samples.len() - max) as u32);
        }
        ex.partner_tags.clear();
        for sample in samples.iter().take(max) {
            ex.partner_tags.push(sample.tag);
            if self.blacklist.contains_tag(sample.tag)
                || self.params.in_time(sample.minted_at, now).is_err()
                || sample.path.len() > self.params.max_links + 1
            {
                continue;
            }
            match self.evidence.observe_sample(sample) {
                Found::Show(token) => {
                    if ex.show.len() < self.params.suspects_per_message {
                        ex.show.push(token);
                    }
                }
                Found::Unresolved => self.counters.unresolved += 1,
                Found::Nothing | Found::Proof(_) => {}
            }
        }
        ex.partner_tags.sort_unstable();
    }

    /// Suspects a partner showed us: verified chains that may complete a proof.
    pub(super) fn ingest_suspects(
        &mut self,
        suspects: Vec<Chain<I, A, S::Signature>>,
        now: u64,
        out: &mut ExchangeOutcome<I>,
    ) {
        let max = self.params.suspects_per_message;
        if suspects.len() > max {
            out.invalid
                .add_n(Invalid::Excess, (suspects.len() - max) as u32);
        }
        for chain in suspects.into_iter().take(max) {
            let token = match self.verify(chain) {
                Ok(t) => t,
                Err(why) => {
                    out.invalid.count(why);
                    continue;
                }
            };
            if let Err(why) = self.in_time(token.minted_at(), now) {
                out.invalid.count(why);
                continue;
            }
            if self.blacklist.contains(token.creator()) || *token.creator() == self.local {
                continue;
            }
            self.anchors.observe(token.body(), now);
            let tag = self.tag(token.creator());
            let scheme = &self.scheme;
            if let Found::Proof(proof) =
                self.evidence.observe_full(tag, &token, |d| scheme.short(d))
            {
                self.found(proof, out);
            }
        }
    }

    /// The chains for our next message: our side of the partner's conflicts first, then
    /// our suspects in turn, at most `suspects_per_message`.
    pub(super) fn suspects_to_send(
        &mut self,
        ex: Option<&mut Ex<I, A, S>>,
    ) -> Vec<Chain<I, A, S::Signature>> {
        let max = self.params.suspects_per_message;
        let mut chains: Vec<_> = match ex {
            Some(ex) => ex.show.drain(..).take(max).map(Token::into_chain).collect(),
            None => Vec::new(),
        };
        let n = (max - chains.len()).min(self.suspects.len());
        for _ in 0..n {
            if let Some(t) = self.suspects.pop_front() {
                chains.push(t.chain().clone());
                self.suspects.push_back(t);
            }
        }
        chains
    }

    pub(super) fn proofs_to_send(&mut self) -> Vec<ProofOf<I, A, S>> {
        self.blacklist
            .next_proofs(self.params.proofs_per_message)
            .cloned()
            .collect()
    }
}
