//! SecureCyclon (A. Antonov, S. Voulgaris, *SecureCyclon: Dependable Peer Sampling*, ICDCS
//! 2023): Cyclon with transferable signed descriptors, as a sans-IO state machine
//! ([`SecureView`]).
//!
//! A node's view holds *descriptors*, each minted and signed by the node it names (its
//! *creator*), at most one per [`mint_gap`](SecureParams::mint_gap). Descriptors are
//! transferred, not copied: handing one on signs a [`HandOver`] to the next owner, and the
//! chain of hand-overs travels with it. To exchange with a node, an initiator *redeems* one
//! of that node's descriptors it owns (its oldest), signing a last hand-over back to the
//! creator; the two then swap up to `l` descriptors, one transfer per message each way
//! (tit-for-tat), the initiator's fresh descriptor first. So an attacker can place its
//! descriptors only at the rate it mints them, and an identity can initiate only once per
//! gap.
//!
//! A node that hands one descriptor to two owners has signed two hand-overs of one position;
//! a node that mints too fast has signed two descriptors closer than the gap. Both are
//! *proofs* ([`Proof`]) that any node checks with [`verify_proof`] alone. Nodes show each
//! other what they hold as digests ([`Samples`]), remember what they saw (the evidence
//! store), build proofs where two conflicting chains meet, *flood* them
//! ([`SecureView::drain_floods`]) and blacklist the offender: its descriptors are dropped
//! and its exchanges refused. An honest node never signs such a pair, so it is never
//! blacklisted (a property test checks this with loss, restarts and clock jitter).
//!
//! Views that lose descriptors repair themselves with *non-swappable* copies of what they
//! handed on, used only to contact the creator once; newcomers *join* a node they know
//! without a descriptor of it, within that node's budget of joins per gap. A
//! few *anchor* slots per view ([`SecureParams::anchors`]) are contacts chosen by a private
//! seeded rank over verified creators, as the seeded defence chooses its slots, so that a
//! coalition cannot choose all of a victim's contacts.
//!
//! The core is generic over the identity `I`, the address payload `A` and the signature
//! scheme ([`Scheme`], [`Signer`]): the simulator runs it with keyed MACs
//! ([`SimScheme`](sim_scheme::SimScheme)), a node with libp2p identity keys
//! ([`Libp2pScheme`](keys::Libp2pScheme)). It reads no clock (every call takes `now` in
//! milliseconds) and draws from the random number generator it is given. The wire format,
//! `/cyclon/2.0.0`, is in [`wire`] and `docs/protocol.md`; [`Behaviour`] carries it over
//! libp2p (its own [`Config`] and [`Event`]s), deciding nothing the core decides.

mod anchors;
mod behaviour;
mod chain;
mod changes;
mod evidence;
mod exchange;
pub mod keys;
pub mod memory;
mod outcome;
mod proof;
mod sample;
mod scheme;
mod signed;
pub mod sim_scheme;
mod snapshot;
#[cfg(test)]
mod tests;
pub mod wire;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt,
    hash::Hash,
};

use rand::{Rng, RngExt};

pub(crate) use self::chain::{ChainRules, verify_chain};
use self::{
    anchors::Anchors,
    evidence::{Evidence, Found},
    exchange::Exchange,
    proof::Blacklist,
};
pub use self::{
    behaviour::{Behaviour, Config, Event, ExchangeError, NodeView, Stats, StreamError},
    chain::{Chain, DescriptorBody, HandOver, HandOverKind, Link, Token},
    changes::ViewChange,
    exchange::{
        Accept, Advance, Answer, ExchangeId, Incoming, Open, OpenError, Refuse, Selected,
        StartExchangeError, Step,
    },
    outcome::{DropReason, ExchangeOutcome, Invalid, InvalidItems, ProofKind, RefuseReason, Role},
    proof::{Proof, ProofError, SignedDescriptor, verify_proof},
    sample::{Sample, Samples},
    scheme::{Scheme, SignError, Signer},
    snapshot::SecureSnapshot,
};
pub use crate::view::secure_params::{MAX_LINKS, MAX_SECURE_VIEW_SIZE, RepairCopies, SecureParams};
use crate::view::{Defence, ParamsError, ShuffleParams, secure_params::TimeError};

/// Checks every signature and the shape of `chain` under `scheme` (the declared gap must be
/// `mint_gap`, at most `max_links` hand-overs, each signed by the previous owner and naming
/// another node, only the last one a redemption); returns it with its digests. Time is not
/// checked.
pub fn check_chain<I, A, S>(
    scheme: &S,
    chain: Chain<I, A, S::Signature>,
    mint_gap: u64,
    max_links: usize,
) -> Result<TokenOf<I, A, S>, Invalid>
where
    I: Clone + PartialEq,
    S: Scheme<I, A>,
{
    verify_chain(
        scheme,
        ChainRules {
            mint_gap,
            max_links,
        },
        chain,
    )
}

/// A token of scheme `S`.
pub type TokenOf<I, A, S> =
    Token<I, A, <S as Scheme<I, A>>::Signature, <S as Scheme<I, A>>::Digest>;
/// A chain of scheme `S`.
pub type ChainOf<I, A, S> = Chain<I, A, <S as Scheme<I, A>>::Signature>;
/// A proof of scheme `S`.
pub type ProofOf<I, A, S> =
    Proof<I, A, <S as Scheme<I, A>>::Signature, <S as Scheme<I, A>>::Digest>;

/// A descriptor the view owns.
#[derive(Debug, Clone)]
pub(crate) struct Holding<I, A, G, D> {
    pub(crate) token: Token<I, A, G, D>,
    /// Non-swappable copies are only redeemed (once), never handed on.
    pub(crate) swappable: bool,
}

/// One holding as [`SecureView::holdings`] shows it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HoldingRef<'a, I, A> {
    /// The creator: the node this holding lets the view contact.
    pub creator: &'a I,
    /// Where the creator said it can be reached (signed by it).
    pub addresses: &'a A,
    /// When the descriptor was minted.
    pub minted_at: u64,
    /// Hand-overs so far.
    pub links: usize,
    /// Whether it may be swapped (a non-swappable copy is only redeemed).
    pub swappable: bool,
}

/// Cumulative counts of one view, since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SecureCounters {
    /// Descriptors minted.
    pub minted: u64,
    /// Exchanges answered (accepted).
    pub answered: u64,
    /// Exchanges refused, as responder.
    pub refused: u64,
    /// Proofs this node built.
    pub proofs_found: u64,
    /// Conflicts seen that the node could not prove (digests only).
    pub unresolved: u64,
    /// Holdings dropped because they expired.
    pub expired: u64,
    /// Non-swappable copies kept.
    pub kept_non_swappable: u64,
}

/// SecureCyclon's sans-IO state machine for one node: its holdings, anchors, exchanges in
/// progress, evidence, blacklist and mint clock. See the [module docs](self).
///
/// Invariants, whatever the input: at most `c - anchors` holdings, at most one per creator,
/// never one of the local node or of a blacklisted creator; it never signs two hand-overs of
/// one position unless one is a non-swappable redemption; the descriptors it mints are at
/// least [`mint_gap`](SecureParams::mint_gap) apart.
#[derive(Clone)]
pub struct SecureView<I, A, S: Scheme<I, A>, G> {
    scheme: S,
    signer: G,
    local: I,
    view_size: usize,
    swap_length: usize,
    params: SecureParams,
    rules: ChainRules,
    holdings: Vec<Holding<I, A, S::Signature, S::Digest>>,
    anchors: Anchors<I, A>,
    exchanges: Vec<Exchange<I, A, S::Signature, S::Digest>>,
    next_id: u64,
    /// The mint clock: the date of the last descriptor minted (or a date no earlier than
    /// any minted before a restart).
    last_minted: u64,
    /// Exchanges selected so far (every `anchor_probe_every`-th contacts an anchor).
    rounds: u64,
    /// Bootstrap contacts, joined while the view is small.
    seeds: VecDeque<I>,
    /// When the view last redeemed a non-swappable copy.
    last_ns_redeem: Option<u64>,
    /// The node's own descriptors accepted in redemptions, by mint date.
    redeemed_at_me: HashMap<u64, Redeemed<I, A, S::Signature, S::Digest>>,
    /// When swappable redemptions were accepted (with a volume limit).
    redeem_window: VecDeque<u64>,
    /// When non-swappable redemptions were accepted.
    ns_window: VecDeque<u64>,
    /// When joins were accepted.
    join_window: VecDeque<u64>,
    /// The last descriptors redeemed, with the redeeming hand-over.
    cache: VecDeque<Token<I, A, S::Signature, S::Digest>>,
    evidence: Evidence<I, A, S::Signature, S::Digest>,
    /// Full chains that conflict with digests seen before, shown to partners.
    suspects: VecDeque<Token<I, A, S::Signature, S::Digest>>,
    blacklist: Blacklist<I, A, S::Signature, S::Digest>,
    floods: VecDeque<(ProofOf<I, A, S>, Vec<I>)>,
    /// The creators last reported by [`SecureView::drain_changes`].
    reported: HashSet<I>,
    counters: SecureCounters,
}

/// The contacts a node accepts a bounded number of per gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    Join,
    NonSwappable,
    Swappable,
}

/// Forgets the times in `window` a gap or more before `now`.
fn trim_window(window: &mut VecDeque<u64>, now: u64, gap: u64) {
    while window
        .front()
        .is_some_and(|&t| now.saturating_sub(t) >= gap)
    {
        window.pop_front();
    }
}

/// What a creator remembers of one of its descriptors redeemed at it.
#[derive(Clone)]
struct Redeemed<I, A, G, D> {
    swappable: Option<Token<I, A, G, D>>,
    non_swappable: bool,
}

impl<I, A, S: Scheme<I, A>, G> fmt::Debug for SecureView<I, A, S, G>
where
    I: fmt::Debug + Clone + Eq + Hash,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureView")
            .field("local", &self.local)
            .field("holdings", &self.holdings.len())
            .field("exchanges", &self.exchanges.len())
            .field("blacklisted", &self.blacklist.len())
            .field("last_minted", &self.last_minted)
            .finish_non_exhaustive()
    }
}

impl<I, A, S, G> SecureView<I, A, S, G>
where
    I: Clone + Eq + Hash,
    A: Clone,
    S: Scheme<I, A>,
    G: Signer<I, A, S>,
{
    /// Creates an empty view for the node of `signer`, whose key may have minted before
    /// (a restart without state): its first descriptor is dated at least `max_skew` plus a
    /// gap after `now`, later than any it could have minted before. `params` must select
    /// [`Defence::Secure`]; the anchors' private seeds are drawn from `rng`.
    pub fn new<R: Rng + ?Sized>(
        params: ShuffleParams,
        scheme: S,
        signer: G,
        now: u64,
        rng: &mut R,
    ) -> Result<Self, ParamsError> {
        let mut view = Self::new_identity(params, scheme, signer, now, rng)?;
        view.last_minted = now.saturating_add(view.params.max_skew);
        Ok(view)
    }

    /// [`new`](Self::new) for a key that has never minted (made just now): its first
    /// descriptor may be dated `now`.
    pub fn new_identity<R: Rng + ?Sized>(
        params: ShuffleParams,
        scheme: S,
        signer: G,
        now: u64,
        rng: &mut R,
    ) -> Result<Self, ParamsError> {
        params.validate()?;
        let Defence::Secure(secure) = params.defence else {
            return Err(ParamsError::Defence("a SecureView needs Defence::Secure"));
        };
        let local = signer.id().clone();
        let anchors = Anchors::new(secure.anchors, secure.anchor_memory, rng);
        // Anchor probes fall on a round drawn at random, so that views do not all probe at
        // once.
        let rounds = rng.random_range(0..u64::from(secure.anchor_probe_every.max(1)));
        Ok(Self {
            anchors,
            evidence: Evidence::new(secure.evidence_capacity, secure.mint_gap, rng.next_u64()),
            blacklist: Blacklist::new(secure.max_blacklist, secure.max_proofs),
            rules: ChainRules {
                mint_gap: secure.mint_gap,
                max_links: secure.max_links,
            },
            scheme,
            signer,
            local,
            view_size: params.view_size,
            swap_length: params.shuffle_length,
            params: secure,
            holdings: Vec::with_capacity(params.view_size - secure.anchors),
            exchanges: Vec::new(),
            next_id: 0,
            last_minted: now.saturating_sub(secure.mint_gap),
            rounds,
            seeds: VecDeque::new(),
            last_ns_redeem: None,
            redeemed_at_me: HashMap::new(),
            redeem_window: VecDeque::new(),
            ns_window: VecDeque::new(),
            join_window: VecDeque::new(),
            cache: VecDeque::new(),
            suspects: VecDeque::new(),
            floods: VecDeque::new(),
            reported: HashSet::new(),
            counters: SecureCounters::default(),
        })
    }

    /// The local node.
    pub fn local(&self) -> &I {
        &self.local
    }

    /// The parameters.
    pub fn params(&self) -> &SecureParams {
        &self.params
    }

    /// The signature scheme.
    pub fn scheme(&self) -> &S {
        &self.scheme
    }

    /// The view size `c` (holdings plus anchors).
    pub fn view_size(&self) -> usize {
        self.view_size
    }

    /// The most holdings the view keeps: `c` minus the anchor slots.
    pub fn capacity(&self) -> usize {
        self.view_size - self.params.anchors
    }

    /// The descriptors the view owns.
    pub fn holdings(&self) -> impl ExactSizeIterator<Item = HoldingRef<'_, I, A>> + '_ {
        self.holdings.iter().map(|h| HoldingRef {
            creator: h.token.creator(),
            addresses: &h.token.body().addresses,
            minted_at: h.token.minted_at(),
            links: h.token.links().len(),
            swappable: h.swappable,
        })
    }

    /// How many descriptors the view owns.
    pub fn len(&self) -> usize {
        self.holdings.len()
    }

    /// Whether the view owns none.
    pub fn is_empty(&self) -> bool {
        self.holdings.is_empty()
    }

    /// The creators in the anchor slots, with the descriptor (verified) that named them.
    pub fn anchors(&self) -> impl Iterator<Item = &DescriptorBody<I, A>> + '_ {
        self.anchors.iter()
    }

    /// Every node the view can contact: the holdings' creators, then the anchors not among
    /// them (each once).
    pub fn contacts(&self) -> impl Iterator<Item = &I> + '_ {
        let held = self.holdings.iter().map(|h| h.token.creator());
        let anchors = self
            .anchors
            .iter()
            .map(|b| &b.creator)
            .filter(|&a| !self.holdings.iter().any(|h| h.token.creator() == a));
        held.chain(anchors)
    }

    /// Remembers `id` as a seed: a node to join while the view is small
    /// ([`seed_join_below`](SecureParams::seed_join_below)), such as a bootstrap contact.
    pub fn add_seed(&mut self, id: I) {
        if id == self.local || self.seeds.contains(&id) || self.params.max_seeds == 0 {
            return;
        }
        if self.seeds.len() >= self.params.max_seeds {
            self.seeds.pop_front();
        }
        self.seeds.push_back(id);
    }

    /// Whether `id` is blacklisted.
    pub fn is_blacklisted(&self, id: &I) -> bool {
        self.blacklist.contains(id)
    }

    /// The blacklisted nodes, oldest first.
    pub fn blacklisted(&self) -> impl Iterator<Item = &I> + '_ {
        self.blacklist.offenders()
    }

    /// How many nodes are blacklisted.
    pub fn blacklist_len(&self) -> usize {
        self.blacklist.len()
    }

    /// The proofs kept to pass on, newest first.
    pub fn proofs(&self) -> impl Iterator<Item = &ProofOf<I, A, S>> + '_ {
        self.blacklist.proofs()
    }

    /// Exchanges in progress.
    pub fn exchanges_in_progress(&self) -> usize {
        self.exchanges.len()
    }

    /// Descriptors the evidence store remembers.
    pub fn evidence_len(&self) -> usize {
        self.evidence.len()
    }

    /// Cumulative counts.
    pub fn counters(&self) -> SecureCounters {
        self.counters
    }

    /// The date the next descriptor minted at `now` would carry.
    pub fn next_mint(&self, now: u64) -> u64 {
        now.max(self.last_minted.saturating_add(self.params.mint_gap))
    }

    /// Mints a descriptor of the local node at `now` (dated [`next_mint`](Self::next_mint),
    /// as in an exchange) and hands it straight to `to`, outside any exchange: an invitation
    /// for a newcomer, or the simulator's initial overlay. `to` takes it with
    /// [`take_handed`](Self::take_handed).
    pub fn hand_out(
        &mut self,
        now: u64,
        to: I,
        addresses: A,
    ) -> Result<ChainOf<I, A, S>, OpenError> {
        if to == self.local {
            return Err(OpenError::UnknownExchange);
        }
        let minted_at = self.next_mint(now);
        let lead = self.params.max_skew / 2;
        if minted_at > now.saturating_add(lead) {
            return Err(OpenError::MintTooSoon {
                retry_at: minted_at - lead,
            });
        }
        let body = DescriptorBody {
            creator: self.local.clone(),
            minted_at,
            mint_gap: self.params.mint_gap,
            addresses,
        };
        let (signature, digest) = self.signer.sign_descriptor(&self.scheme, &body)?;
        let handover = HandOver {
            prev: digest,
            to: to.clone(),
            kind: HandOverKind::Transfer,
        };
        let (link_signature, d) = self.signer.sign_handover(&self.scheme, &handover)?;
        let mut token = Token::minted(body, signature, digest);
        token.push(
            Link {
                to,
                kind: HandOverKind::Transfer,
                signature: link_signature,
            },
            d,
        );
        self.last_minted = minted_at;
        self.counters.minted += 1;
        Ok(token.into_chain())
    }

    /// Takes a descriptor its creator handed straight to the local node
    /// ([`hand_out`](Self::hand_out)): checked like a transfer (one hand-over, from the
    /// creator to us, in time), then kept if there is room.
    pub fn take_handed(&mut self, now: u64, chain: ChainOf<I, A, S>) -> ExchangeOutcome<I> {
        let mut out = ExchangeOutcome {
            finished: true,
            ..ExchangeOutcome::default()
        };
        let token = match self.verify(chain) {
            Ok(t) => t,
            Err(why) => {
                out.invalid.count(why);
                return out;
            }
        };
        if token.links().len() != 1
            || token
                .links()
                .first()
                .is_none_or(|l| l.kind != HandOverKind::Transfer || l.to != self.local)
        {
            out.invalid.count(Invalid::WrongHandOver);
            return out;
        }
        if let Err(why) = self.in_time(token.minted_at(), now) {
            out.invalid.count(why);
            return out;
        }
        self.observe_full(&token, &mut out);
        self.take(token, false, now, &mut out);
        out
    }

    /// Proofs received outside an exchange (a flood). Proofs of offenders
    /// already blacklisted are skipped unchecked; the others are verified, and each new
    /// offender is blacklisted and flooded on.
    pub fn receive_proofs(&mut self, proofs: Vec<ProofOf<I, A, S>>) -> ExchangeOutcome<I> {
        let mut out = ExchangeOutcome::default();
        self.take_proofs(proofs, &mut out);
        out.finished = true;
        out
    }

    /// The floods to send: each new proof, with the nodes to push it to (the creators of the
    /// holdings and anchors when it was found). A `/cyclon/2.0.0` node sends each target one
    /// `ProofPush`; the simulator delivers them at once.
    pub fn drain_floods(&mut self) -> impl Iterator<Item = (ProofOf<I, A, S>, Vec<I>)> + '_ {
        self.floods.drain(..)
    }

    /// Housekeeping at `now`: drops expired holdings, cache entries, suspects, anchors and
    /// logs.
    pub fn tick(&mut self, now: u64) -> ExchangeOutcome<I> {
        let mut out = ExchangeOutcome::default();
        let max_age = self.params.max_age;
        let expired = |t: u64| now.saturating_sub(t) > max_age;
        let mut k = 0;
        while k < self.holdings.len() {
            if expired(self.holdings[k].token.minted_at()) {
                let h = self.holdings.swap_remove(k);
                out.dropped
                    .push((h.token.creator().clone(), DropReason::Expired));
                self.counters.expired += 1;
            } else {
                k += 1;
            }
        }
        self.cache.retain(|t| !expired(t.minted_at()));
        self.suspects.retain(|t| !expired(t.minted_at()));
        self.anchors.expire(now);
        let horizon = max_age.saturating_add(self.params.max_skew);
        self.redeemed_at_me
            .retain(|&t, _| now.saturating_sub(t) <= horizon);
        trim_window(&mut self.redeem_window, now, self.params.mint_gap);
        trim_window(&mut self.ns_window, now, self.params.mint_gap);
        trim_window(&mut self.join_window, now, self.params.mint_gap);
        out.finished = true;
        out
    }

    // ---- helpers shared by the exchange flows

    fn tag(&self, id: &I) -> u64 {
        self.scheme.tag(id)
    }

    fn in_time(&self, minted_at: u64, now: u64) -> Result<(), Invalid> {
        self.params.in_time(minted_at, now).map_err(|e| match e {
            TimeError::FromFuture => Invalid::FromFuture,
            TimeError::Expired => Invalid::Expired,
        })
    }

    fn verify(&self, chain: ChainOf<I, A, S>) -> Result<TokenOf<I, A, S>, Invalid> {
        verify_chain(&self.scheme, self.rules, chain)
    }

    /// Whether one more contact of this kind fits in the gap before `now`; if so, it is
    /// counted.
    fn budget(&mut self, now: u64, kind: Budget) -> bool {
        let (window, max) = match kind {
            Budget::Join => (&mut self.join_window, self.params.joins_per_gap),
            Budget::NonSwappable => (&mut self.ns_window, self.params.ns_redemptions_per_gap),
            Budget::Swappable => {
                if self.params.redemptions_per_gap == 0 {
                    return true;
                }
                (&mut self.redeem_window, self.params.redemptions_per_gap)
            }
        };
        trim_window(window, now, self.params.mint_gap);
        if window.len() < max {
            window.push_back(now);
            true
        } else {
            false
        }
    }

    /// Proofs received in a message: at most `max_proofs_received`; offenders known already
    /// are skipped unchecked.
    fn take_proofs(&mut self, proofs: Vec<ProofOf<I, A, S>>, out: &mut ExchangeOutcome<I>) {
        let max = self.params.max_proofs_received;
        if proofs.len() > max {
            out.invalid
                .add_n(Invalid::Excess, (proofs.len() - max) as u32);
        }
        for proof in proofs.into_iter().take(max) {
            if self.blacklist.contains(proof.offender()) {
                continue;
            }
            match verify_proof(&self.scheme, self.params.mint_gap, &proof) {
                Ok(offender) if offender != self.local => self.punish(offender, proof, out),
                // A valid proof against the local node cannot exist while it follows the
                // rules; one that claims to is ignored.
                _ => out.invalid.count(Invalid::BadProof),
            }
        }
    }

    /// A proof this node built from two verified chains.
    fn found(&mut self, proof: ProofOf<I, A, S>, out: &mut ExchangeOutcome<I>) {
        let offender = proof.offender().clone();
        if offender == self.local || self.blacklist.contains(&offender) {
            return;
        }
        debug_assert!(verify_proof(&self.scheme, self.params.mint_gap, &proof).is_ok());
        self.counters.proofs_found += 1;
        out.proofs_found.push((offender.clone(), proof.kind()));
        self.punish(offender, proof, out);
    }

    /// Blacklists a proven offender: its descriptors leave the holdings, anchors, cache and
    /// evidence, and the proof is queued to flood.
    fn punish(&mut self, offender: I, proof: ProofOf<I, A, S>, out: &mut ExchangeOutcome<I>) {
        let tag = self.tag(&offender);
        if !self.blacklist.insert(offender.clone(), tag, proof.clone()) {
            return;
        }
        out.blacklisted.push(offender.clone());
        let mut k = 0;
        while k < self.holdings.len() {
            if *self.holdings[k].token.creator() == offender {
                self.holdings.swap_remove(k);
                out.dropped
                    .push((offender.clone(), DropReason::Blacklisted));
            } else {
                k += 1;
            }
        }
        self.anchors.remove(&offender);
        self.cache.retain(|t| *t.creator() != offender);
        self.suspects.retain(|t| *t.creator() != offender);
        self.evidence.forget_tag(tag);
        let mut targets: Vec<I> = Vec::with_capacity(self.view_size);
        for id in self.contacts() {
            if *id != offender && !targets.contains(id) {
                targets.push(id.clone());
            }
        }
        if self.params.max_floods > 0 {
            if self.floods.len() >= self.params.max_floods {
                self.floods.pop_front();
            }
            self.floods.push_back((proof, targets));
        }
    }

    /// Records a full verified chain in the evidence store; builds a proof or keeps the chain
    /// as a suspect on a conflict.
    fn observe_full(&mut self, token: &TokenOf<I, A, S>, out: &mut ExchangeOutcome<I>) {
        let tag = self.tag(token.creator());
        let scheme = &self.scheme;
        match self.evidence.observe_full(tag, token, |d| scheme.short(d)) {
            Found::Nothing | Found::Show(_) => {}
            Found::Proof(proof) => self.found(proof, out),
            Found::Unresolved => {
                self.counters.unresolved += 1;
                if self.params.max_suspects > 0 {
                    if self.suspects.len() >= self.params.max_suspects {
                        self.suspects.pop_front();
                    }
                    self.suspects.push_back(token.clone());
                }
            }
        }
    }

    /// Takes a verified descriptor received in a transfer into the holdings, if it may:
    /// never the local node's nor a blacklisted creator's, one per creator (the younger), and
    /// only into a free slot (`displace`: a join's transfer replaces the oldest swappable
    /// holding of a full view).
    fn take(
        &mut self,
        token: TokenOf<I, A, S>,
        displace: bool,
        now: u64,
        out: &mut ExchangeOutcome<I>,
    ) {
        let creator = token.creator().clone();
        if creator == self.local {
            out.dropped.push((creator, DropReason::Own));
            return;
        }
        if self.blacklist.contains(&creator) {
            out.dropped.push((creator, DropReason::Blacklisted));
            return;
        }
        self.anchors.observe(token.body(), now);
        if let Some(k) = self
            .holdings
            .iter()
            .position(|h| *h.token.creator() == creator)
        {
            let held = &self.holdings[k];
            if held.swappable && held.token.minted_at() >= token.minted_at() {
                out.dropped.push((creator, DropReason::Duplicate));
            } else {
                self.holdings[k] = Holding {
                    token,
                    swappable: true,
                };
                out.dropped.push((creator, DropReason::Duplicate));
            }
            return;
        }
        if self.holdings.len() >= self.capacity() {
            // A non-swappable copy only holds a slot that was empty: a swappable descriptor
            // takes its place (the oldest copy's). A join's transfer may also displace the
            // oldest swappable holding.
            let copy = self
                .holdings
                .iter()
                .enumerate()
                .filter(|(_, h)| !h.swappable)
                .min_by_key(|(_, h)| h.token.minted_at())
                .map(|(k, _)| k);
            let oldest = copy.or_else(|| {
                displace
                    .then(|| {
                        self.holdings
                            .iter()
                            .enumerate()
                            .filter(|(_, h)| h.swappable)
                            .min_by_key(|(_, h)| h.token.minted_at())
                            .map(|(k, _)| k)
                    })
                    .flatten()
            });
            match oldest {
                Some(k) => {
                    let old = self.holdings.swap_remove(k);
                    out.dropped
                        .push((old.token.creator().clone(), DropReason::Displaced));
                }
                _ => {
                    out.dropped.push((creator, DropReason::NoRoom));
                    return;
                }
            }
        }
        self.holdings.push(Holding {
            token,
            swappable: true,
        });
        out.gained.push(creator);
    }

    /// The samples of every holding and of the redemption cache (a trailing non-swappable
    /// redemption left out), at most `max_samples`.
    fn samples(&self) -> Samples {
        let mut samples =
            Samples::with_capacity(self.params.max_samples, 8 * self.params.max_samples);
        let cache = self.cache.iter().map(|t| {
            let n = t.digests().len() - usize::from(t.ends_with(HandOverKind::RedeemNonSwappable));
            (t, n)
        });
        let held = self
            .holdings
            .iter()
            .map(|h| (&h.token, h.token.digests().len()));
        for (token, n) in held.chain(cache).take(self.params.max_samples) {
            samples.push(
                self.tag(token.creator()),
                token.minted_at(),
                token.digests()[..n].iter().map(|d| self.scheme.short(d)),
            );
        }
        samples
    }

    /// A random index among the holdings `eligible` accepts, if any.
    fn pick<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        eligible: impl Fn(&Holding<I, A, S::Signature, S::Digest>) -> bool,
    ) -> Option<usize> {
        let count = self.holdings.iter().filter(|h| eligible(h)).count();
        if count == 0 {
            return None;
        }
        let nth = rng.random_range(0..count);
        self.holdings
            .iter()
            .enumerate()
            .filter(|(_, h)| eligible(h))
            .nth(nth)
            .map(|(k, _)| k)
    }

    fn new_id(&mut self) -> ExchangeId {
        self.next_id += 1;
        ExchangeId(self.next_id)
    }
}
