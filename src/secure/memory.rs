//! One whole exchange between two views in memory ([`exchange`]): the transport of the
//! simulator and of the tests, with message loss injected by the caller. The rules are the
//! views' own; this only carries messages.

use std::hash::Hash;

use rand::Rng;

use crate::secure::{
    Advance, Answer, ExchangeOutcome, Incoming, SecureView, Selected,
    scheme::{Scheme, Signer},
};

/// How an exchange in memory ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exchanged<I> {
    /// What the initiator's calls reported, merged.
    pub initiator: ExchangeOutcome<I>,
    /// What the responder's calls reported, merged (empty if the opening message was lost).
    pub responder: ExchangeOutcome<I>,
    /// Messages delivered.
    pub messages: usize,
    /// Whether a message was lost (both sides then failed the exchange, as on a timeout).
    pub lost: bool,
}

/// Runs the exchange `selected` of `initiator` with `responder` (its target) at `now`, to its
/// end: `open`, `answer`, then `advance` on each side in turn. `lose()` is asked before each
/// message is delivered; a lost message fails the exchange on both sides.
pub fn exchange<I, A, S, G, R>(
    initiator: &mut SecureView<I, A, S, G>,
    responder: &mut SecureView<I, A, S, G>,
    selected: &Selected<I, A>,
    local_addresses: A,
    rng: &mut R,
    now: u64,
    mut lose: impl FnMut() -> bool,
) -> Exchanged<I>
where
    I: Clone + Eq + Hash,
    A: Clone,
    S: Scheme<I, A>,
    G: Signer<I, A, S>,
    R: Rng + ?Sized,
{
    let mut done = Exchanged {
        initiator: ExchangeOutcome::default(),
        responder: ExchangeOutcome::default(),
        messages: 0,
        lost: false,
    };
    let id = selected.id;
    let open = match initiator.open(rng, now, id, local_addresses) {
        Ok((open, out)) => {
            done.initiator.merge(out);
            open
        }
        Err(_) => {
            done.initiator.merge(initiator.abandon(id));
            return done;
        }
    };
    if lose() {
        done.lost = true;
        done.initiator.merge(initiator.fail(id));
        return done;
    }
    done.messages += 1;
    let from = initiator.local().clone();
    let (answer, out) = responder.answer(rng, now, &from, open);
    done.responder.merge(out);
    let (rid, first) = match answer {
        Answer::Accept { id, accept } => (id, Incoming::Accept(accept)),
        Answer::Refuse(refuse) => {
            if lose() {
                done.lost = true;
                done.initiator.merge(initiator.fail(id));
            } else {
                done.messages += 1;
                let (_, out) = initiator.advance(rng, now, id, Incoming::Refuse(refuse));
                done.initiator.merge(out);
            }
            return done;
        }
    };
    let mut to_initiator = first;
    loop {
        if lose() {
            done.lost = true;
            done.initiator.merge(initiator.fail(id));
            done.responder.merge(responder.fail(rid));
            return done;
        }
        done.messages += 1;
        let (next, out) = initiator.advance(rng, now, id, to_initiator);
        done.initiator.merge(out);
        let (step, last) = match next {
            Advance::Send(step) => (step, false),
            Advance::SendAndFinish(step) => (step, true),
            _ => {
                done.responder.merge(responder.fail(rid));
                return done;
            }
        };
        if lose() {
            done.lost = true;
            if !last {
                done.initiator.merge(initiator.fail(id));
            }
            done.responder.merge(responder.fail(rid));
            return done;
        }
        done.messages += 1;
        let (next, out) = responder.advance(rng, now, rid, Incoming::Step(step));
        done.responder.merge(out);
        match next {
            Advance::Send(step) if !last => to_initiator = Incoming::Step(step),
            _ => {
                if !last {
                    done.initiator.merge(initiator.fail(id));
                }
                if !done.responder.finished {
                    done.responder.merge(responder.fail(rid));
                }
                return done;
            }
        }
    }
}
