//! One exchange, both roles: the messages ([`Open`], [`Accept`], [`Step`], [`Refuse`]), the
//! per-exchange state, and the flows of [`SecureView`]: `select`/`join` and `open`
//! (initiator), `answer` (responder), `advance` (every later message), `fail` and `abandon`.
//!
//! On one stream: I → R `Open` (the redemption, I's fresh descriptor as transfer 1, samples);
//! R → I `Accept` (R's transfer 1, samples) or `Refuse`; then `Step`s, each side's transfer
//! `k` answering the other's: I's transfer `k + 1` only after R's transfer `k`, R's transfer
//! `k` only after I's. A `Step` without a transfer ends the exchange from its sender's side;
//! the initiator always sends the last message, a `Step` without a transfer. So neither side
//! ever gives more than one descriptor it was not paid for. Every signed hand-over is final,
//! whether or not its message arrives.

use std::hash::Hash;

use rand::Rng;

use crate::secure::{
    Budget, Holding, ProofOf, Redeemed, RepairCopies, SecureView, TokenOf,
    chain::{Chain, HandOver, HandOverKind, Link, Token},
    evidence::Found,
    outcome::{DropReason, ExchangeOutcome, Invalid, RefuseReason, Role},
    proof::Proof,
    sample::Samples,
    scheme::{Scheme, SignError, Signer},
};

/// Names one exchange of one view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExchangeId(pub(crate) u64);

/// The first message, initiator to responder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Open<I, A, G, D> {
    /// A descriptor of the responder, owned by the initiator, ending with the initiator's
    /// redeeming hand-over to the responder; `None` in a join.
    pub redeem: Option<Chain<I, A, G>>,
    /// The initiator's fresh descriptor, handed to the responder: transfer 1.
    pub fresh: Chain<I, A, G>,
    /// What the initiator holds and redeemed lately, as digests.
    pub samples: Samples,
    /// Full chains that conflict with something seen before.
    pub suspects: Vec<Chain<I, A, G>>,
    /// Proofs of misbehaviour.
    pub proofs: Vec<Proof<I, A, G, D>>,
    /// A join: contact without a redemption, within the responder's budget of joins per gap.
    pub join: bool,
}

/// The responder's acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accept<I, A, G, D> {
    /// The responder's transfer 1; `None` ends the exchange from its side.
    pub transfer: Option<Chain<I, A, G>>,
    /// What the responder holds and redeemed lately, as digests.
    pub samples: Samples,
    /// Full chains: the responder's side of conflicts with the initiator's samples first.
    pub suspects: Vec<Chain<I, A, G>>,
    /// Proofs of misbehaviour.
    pub proofs: Vec<Proof<I, A, G, D>>,
}

/// The responder's refusal; the exchange is over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refuse<I, A, G, D> {
    /// Why.
    pub reason: RefuseReason,
    /// Proofs (the one against the initiator when it is blacklisted).
    pub proofs: Vec<Proof<I, A, G, D>>,
}

/// Every later message, both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step<I, A, G, D> {
    /// The sender's next transfer; `None` ends the exchange from its side.
    pub transfer: Option<Chain<I, A, G>>,
    /// Full chains: the sender's side of conflicts with the receiver's samples first.
    pub suspects: Vec<Chain<I, A, G>>,
    /// Proofs of misbehaviour.
    pub proofs: Vec<Proof<I, A, G, D>>,
}

/// A message received in an exchange in progress ([`SecureView::advance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming<I, A, G, D> {
    /// The responder accepted (initiator only).
    Accept(Accept<I, A, G, D>),
    /// The responder refused (initiator only).
    Refuse(Refuse<I, A, G, D>),
    /// A step (both roles).
    Step(Step<I, A, G, D>),
}

/// The responder's answer to an [`Open`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer<I, A, G, D> {
    /// Send this acceptance; later messages go to [`SecureView::advance`] with `id`.
    Accept {
        /// The exchange.
        id: ExchangeId,
        /// The message.
        accept: Accept<I, A, G, D>,
    },
    /// Send this refusal and close.
    Refuse(Refuse<I, A, G, D>),
}

/// What to do after a message of an exchange in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Advance<I, A, G, D> {
    /// Send this step and wait for the next message.
    Send(Step<I, A, G, D>),
    /// Send this step; the exchange is over.
    SendAndFinish(Step<I, A, G, D>),
    /// The exchange is over; send nothing.
    Finished,
    /// The message was invalid: the exchange is over, send nothing more.
    Abort(Invalid),
}

/// The target of an exchange the view chose ([`SecureView::select`], [`SecureView::join`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selected<I, A> {
    /// The exchange, to [`open`](SecureView::open) once a stream to the target is up (or to
    /// [`abandon`](SecureView::abandon)).
    pub id: ExchangeId,
    /// The node to contact.
    pub target: I,
    /// Where it said it can be reached (`None` for a join to a node known only by id).
    pub addresses: Option<A>,
    /// A join (no redemption).
    pub join: bool,
}

/// Why no exchange can start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartExchangeError {
    /// The mint clock: the next descriptor cannot be dated within half of `max_skew` of now.
    #[error("the next descriptor may be minted at {retry_at} ms")]
    MintTooSoon {
        /// When to try again.
        retry_at: u64,
    },
    /// Nothing to redeem and no anchor to join.
    #[error("no descriptor to redeem and no anchor to join")]
    Empty,
    /// Too many exchanges in progress.
    #[error("too many exchanges in progress")]
    Busy,
    /// The node to join is the local node or blacklisted.
    #[error("this node cannot be joined")]
    BadTarget,
}

/// Why an exchange could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No selected exchange has this id.
    #[error("no selected exchange with this id")]
    UnknownExchange,
    /// The mint clock moved on: a descriptor was minted since the exchange was selected.
    #[error("the next descriptor may be minted at {retry_at} ms")]
    MintTooSoon {
        /// When to try again.
        retry_at: u64,
    },
    /// The signer failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Initiator: chosen, nothing signed yet.
    Selected,
    /// Initiator: `Open` sent.
    Opened,
    /// Either side: waiting for a `Step`.
    Running,
}

/// A descriptor handed on in this exchange, as it was before the hand-over (for a
/// non-swappable copy).
#[derive(Debug, Clone)]
struct Given<I, A, G, D> {
    token: Token<I, A, G, D>,
    answered: bool,
}

/// One exchange in progress.
#[derive(Debug, Clone)]
pub(crate) struct Exchange<I, A, G, D> {
    id: ExchangeId,
    role: Role,
    partner: I,
    phase: Phase,
    join: bool,
    /// Transfers each way.
    limit: usize,
    sent: usize,
    received: usize,
    /// The partner sent a message without a transfer.
    peer_ended: bool,
    /// We sent a message without a transfer (responder).
    ended: bool,
    /// Initiator: the holding to redeem, until `open`.
    target: Option<Holding<I, A, G, D>>,
    /// Initiator: the descriptor redeemed swappably, as it was before the redemption.
    redeemed: Option<Token<I, A, G, D>>,
    /// The partner's sample tags, sorted: we avoid sending it creators it holds.
    partner_tags: Vec<u64>,
    /// Creators received in this exchange: never handed back in it.
    received_from: Vec<I>,
    given: Vec<Given<I, A, G, D>>,
    /// Our full side of conflicts with the partner's samples, for our next message.
    show: Vec<Token<I, A, G, D>>,
}

impl<I, A, G, D> Exchange<I, A, G, D> {
    /// The holding an initiator selected and has not redeemed yet.
    pub(crate) fn target(&self) -> Option<&Holding<I, A, G, D>> {
        self.target.as_ref()
    }

    fn new(id: ExchangeId, role: Role, partner: I, phase: Phase, join: bool, limit: usize) -> Self {
        Self {
            id,
            role,
            partner,
            phase,
            join,
            limit,
            sent: 0,
            received: 0,
            peer_ended: false,
            ended: false,
            target: None,
            redeemed: None,
            partner_tags: Vec::new(),
            received_from: Vec::new(),
            given: Vec::new(),
            show: Vec::new(),
        }
    }
}

type Ex<I, A, S> = Exchange<I, A, <S as Scheme<I, A>>::Signature, <S as Scheme<I, A>>::Digest>;
type OpenOf<I, A, S> = Open<I, A, <S as Scheme<I, A>>::Signature, <S as Scheme<I, A>>::Digest>;
type AnswerOf<I, A, S> = Answer<I, A, <S as Scheme<I, A>>::Signature, <S as Scheme<I, A>>::Digest>;
type AdvanceOf<I, A, S> =
    Advance<I, A, <S as Scheme<I, A>>::Signature, <S as Scheme<I, A>>::Digest>;
type IncomingOf<I, A, S> =
    Incoming<I, A, <S as Scheme<I, A>>::Signature, <S as Scheme<I, A>>::Digest>;

impl<I, A, S, G> SecureView<I, A, S, G>
where
    I: Clone + Eq + Hash,
    A: Clone,
    S: Scheme<I, A>,
    G: Signer<I, A, S>,
{
    // ---------------------------------------------------------------- initiator

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

    // ---------------------------------------------------------------- responder

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

    // ---------------------------------------------------------------- both roles

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
    fn give<R: Rng + ?Sized>(
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
    fn ingest_samples(
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
    fn ingest_suspects(
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
    fn suspects_to_send(&mut self, ex: Option<&mut Ex<I, A, S>>) -> Vec<Chain<I, A, S::Signature>> {
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

    fn proofs_to_send(&mut self) -> Vec<ProofOf<I, A, S>> {
        self.blacklist
            .next_proofs(self.params.proofs_per_message)
            .cloned()
            .collect()
    }
}
