//! One exchange, both roles: the messages ([`Open`], [`Accept`], [`Step`], [`Refuse`]), the
//! per-exchange state, and the flows of [`SecureView`](crate::secure::SecureView): `select`/`join`
//! and `open` (initiator), `answer` (responder), `advance` (every later message), `fail` and
//! `abandon`.
//!
//! On one stream: I → R `Open` (the redemption, I's fresh descriptor as transfer 1, samples);
//! R → I `Accept` (R's transfer 1, samples) or `Refuse`; then `Step`s, each side's transfer
//! `k` answering the other's: I's transfer `k + 1` only after R's transfer `k`, R's transfer
//! `k` only after I's. A `Step` without a transfer ends the exchange from its sender's side;
//! the initiator always sends the last message, a `Step` without a transfer. So neither side
//! ever gives more than one descriptor it was not paid for. Every signed hand-over is final,
//! whether or not its message arrives.
//!
//! The initiator's moves are in `initiator.rs`, the responder's in `responder.rs`, what both
//! do from then on in `steps.rs`; this file holds the messages and the state they share.

mod initiator;
mod responder;
mod steps;

use crate::secure::{
    Holding,
    chain::{Chain, Token},
    outcome::{Invalid, RefuseReason, Role},
    proof::Proof,
    sample::Samples,
    scheme::{Scheme, SignError},
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

/// A message received in an exchange in progress
/// ([`SecureView::advance`](crate::secure::SecureView::advance)).
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
    /// Send this acceptance; later messages go to
    /// [`SecureView::advance`](crate::secure::SecureView::advance) with `id`.
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

/// The target of an exchange the view chose
/// ([`SecureView::select`](crate::secure::SecureView::select),
/// [`SecureView::join`](crate::secure::SecureView::join)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selected<I, A> {
    /// The exchange, to [`open`](crate::secure::SecureView::open) once a stream to the target is up
    /// (or to [`abandon`](crate::secure::SecureView::abandon)).
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
