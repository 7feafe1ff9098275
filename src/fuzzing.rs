//! Entry points for the fuzz targets under `fuzz/`, compiled only with `--cfg fuzzing` (which
//! `cargo fuzz` sets), as quinn-proto does. Not part of the public API.

use std::io;

use crate::{
    config::Config,
    protocol::{self, EntryLimits, InvalidEntries, Version, ViewEntry},
};

/// Reads one shuffle request from `bytes` exactly as an inbound stream is read (framing,
/// size limit, message type), then validates its entries with `config`'s limits as they
/// arrived over `/cyclon/1.1.0` (`signed_records`: records verified) or `/cyclon/1.0.0`.
pub fn read_request(
    bytes: &[u8],
    config: &Config,
    signed_records: bool,
) -> io::Result<(Vec<ViewEntry>, InvalidEntries)> {
    let (_, entries) = futures::executor::block_on(protocol::read_request(
        futures::io::Cursor::new(bytes.to_vec()),
        config.max_message_size(),
    ))?;
    let version = if signed_records {
        Version::V1_1
    } else {
        Version::V1_0
    };
    Ok(protocol::decode_entries(
        entries,
        &config.entry_limits(),
        version,
    ))
}

/// SecureCyclon's core under arbitrary input (the fuzz target `secure_core`): honest views
/// exchange over the simulator's scheme while the input chooses who initiates, which
/// messages are lost, and how messages are spoiled (signatures, owners, dates, kinds, chain
/// lengths, sample sets, proofs). Nothing may panic, views keep their invariants, and no
/// honest node is ever blacklisted.
pub fn secure_core(data: &[u8]) {
    secure_fuzz::run(data);
}

mod secure_fuzz {
    use std::collections::HashSet;

    use rand::{SeedableRng, rngs::StdRng};

    use crate::secure::{
        Advance, Answer, Incoming, Proof, SecureParams, SecureView,
        memory::exchange,
        sim_scheme::{SimAuthority, SimScheme, SimSigner},
    };
    use crate::view::{Defence, ShuffleParams};

    type View = SecureView<u32, (), SimScheme, SimSigner>;
    const GAP: u64 = 1_000;
    const T0: u64 = 1_000_000;
    const N: u32 = 5;

    struct Bytes<'a>(&'a [u8]);

    impl Bytes<'_> {
        fn byte(&mut self) -> Option<u8> {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            Some(b)
        }
    }

    fn spoil(chain: &mut crate::secure::Chain<u32, (), u64>, how: u8, arg: u8) {
        let n = chain.links.len().max(1);
        let k = arg as usize % n;
        match how % 9 {
            0 => chain.signature ^= 1 << (arg % 64),
            1 => {
                if let Some(l) = chain.links.get_mut(k) {
                    l.signature ^= 1 << (arg % 64);
                }
            }
            2 => {
                if let Some(l) = chain.links.get_mut(k) {
                    l.to = u32::from(arg) % (N + 2);
                }
            }
            3 => {
                if !chain.links.is_empty() {
                    chain.links.remove(k);
                }
            }
            4 => {
                if let Some(l) = chain.links.first().cloned() {
                    chain.links.extend(std::iter::repeat_n(l, arg as usize));
                }
            }
            5 => chain.body.minted_at = chain.body.minted_at.wrapping_add(u64::from(arg) * GAP),
            6 => chain.body.minted_at = chain.body.minted_at.wrapping_sub(u64::from(arg) * GAP),
            7 => chain.body.mint_gap ^= u64::from(arg),
            _ => {
                if let Some(l) = chain.links.get_mut(k) {
                    l.kind =
                        crate::secure::HandOverKind::from_number(i32::from(arg % 3)).expect("0..3");
                }
            }
        }
    }

    fn check(views: &[View]) {
        for v in views {
            assert_eq!(v.blacklist_len(), 0, "an honest node was blacklisted");
            let creators: HashSet<u32> = v.holdings().map(|h| *h.creator).collect();
            assert_eq!(creators.len(), v.len());
            assert!(v.len() <= v.capacity());
            assert!(!creators.contains(v.local()));
        }
    }

    pub(super) fn run(data: &[u8]) {
        let mut input = Bytes(data);
        let authority = SimAuthority::new((1, 2), (3, 4));
        let params = ShuffleParams::new(4, 2).with_defence(Defence::Secure(
            SecureParams::scaled(4, GAP).with_evidence_capacity(16),
        ));
        let mut rng = StdRng::seed_from_u64(0);
        let mut views: Vec<View> = (0..N)
            .map(|id| {
                View::new_identity(
                    params,
                    authority.scheme(),
                    authority.signer(id),
                    0,
                    &mut rng,
                )
                .expect("valid")
            })
            .collect();
        for step in 1..=3u32 {
            for i in 0..N {
                let at = T0 - u64::from(5 - step) * GAP;
                let creator = (i + step) % N;
                if let Ok(chain) = views[creator as usize].hand_out(at, i, ()) {
                    views[i as usize].take_handed(at, chain);
                }
            }
        }
        let mut now = T0;
        while let (Some(op), Some(p), Some(how), Some(arg)) =
            (input.byte(), input.byte(), input.byte(), input.byte())
        {
            let p = u32::from(p) % N;
            now += u64::from(op >> 4) * GAP / 4;
            let Ok(sel) = views[p as usize].select(&mut rng, now) else {
                continue;
            };
            let q = sel.target;
            if q >= N || q == p {
                views[p as usize].abandon(sel.id);
                continue;
            }
            let [vp, vq] = views
                .get_disjoint_mut([p as usize, q as usize])
                .expect("distinct");
            match op % 4 {
                0 => {
                    let mut bits = u32::from(how) << 8 | u32::from(arg);
                    exchange(vp, vq, &sel, (), &mut rng, now, || {
                        bits >>= 1;
                        bits & 1 == 1
                    });
                }
                1 => {
                    let Ok((mut open, _)) = vp.open(&mut rng, now, sel.id, ()) else {
                        vp.abandon(sel.id);
                        continue;
                    };
                    match arg % 3 {
                        0 => spoil(&mut open.fresh, how, arg),
                        1 => {
                            if let Some(r) = open.redeem.as_mut() {
                                spoil(r, how, arg)
                            }
                        }
                        _ => {
                            for k in 0..u32::from(how) {
                                open.samples.push(u64::from(k % N), now, [k; 3]);
                            }
                        }
                    }
                    let (answer, _) = vq.answer(&mut rng, now, &p, open);
                    match answer {
                        Answer::Accept { id, .. } => {
                            vq.fail(id);
                        }
                        _ => {}
                    }
                    vp.fail(sel.id);
                }
                2 => {
                    let Ok((open, _)) = vp.open(&mut rng, now, sel.id, ()) else {
                        vp.abandon(sel.id);
                        continue;
                    };
                    let (answer, _) = vq.answer(&mut rng, now, &p, open);
                    if let Answer::Accept { id, mut accept } = answer {
                        if let Some(t) = accept.transfer.as_mut() {
                            spoil(t, how, arg);
                        }
                        let (next, _) = vp.advance(&mut rng, now, sel.id, Incoming::Accept(accept));
                        match next {
                            Advance::Send(step) | Advance::SendAndFinish(step) => {
                                vq.advance(&mut rng, now, id, Incoming::Step(step));
                            }
                            _ => {}
                        }
                        vq.fail(id);
                    }
                    vp.fail(sel.id);
                }
                _ => {
                    vp.abandon(sel.id);
                    // Proofs made of honest signatures that prove nothing.
                    let scheme = authority.scheme();
                    let signer = authority.signer(q);
                    let body = crate::secure::DescriptorBody {
                        creator: q,
                        minted_at: now,
                        mint_gap: GAP,
                        addresses: (),
                    };
                    use crate::secure::{Scheme, Signer};
                    let (signature, digest) =
                        signer.sign_descriptor(&scheme, &body).expect("own body");
                    let far = crate::secure::DescriptorBody {
                        minted_at: now + u64::from(arg).max(1) * GAP,
                        ..body.clone()
                    };
                    let (far_signature, _) = signer.sign_descriptor(&scheme, &far).expect("own");
                    let mut proofs = vec![Proof::Frequency {
                        a: crate::secure::SignedDescriptor { body, signature },
                        b: crate::secure::SignedDescriptor {
                            body: far,
                            signature: far_signature ^ u64::from(how & 1),
                        },
                    }];
                    let h = crate::secure::HandOver {
                        prev: digest ^ u64::from(how),
                        to: p,
                        kind: crate::secure::HandOverKind::Transfer,
                    };
                    let _ = scheme.handover_digest(&h);
                    if let Ok((s, _)) = signer.sign_handover(&scheme, &h) {
                        let link = crate::secure::Link {
                            to: p,
                            kind: crate::secure::HandOverKind::Transfer,
                            signature: s,
                        };
                        proofs.push(Proof::Fork {
                            offender: q,
                            prev: h.prev,
                            a: link.clone(),
                            b: link,
                        });
                    }
                    vp.receive_proofs(proofs);
                }
            }
            for v in &mut views {
                v.tick(now);
            }
            check(&views);
        }
    }
}

/// Decodes arbitrary bytes as one `/cyclon/2.0.0` frame (the fuzz target `v2_frames`); what
/// decodes must re-encode to the very same bytes (the canonical form), and a decoded proof
/// or chain never panics the verifier.
pub fn v2_frame(data: &[u8]) {
    use crate::secure::{
        check_chain,
        keys::Libp2pScheme,
        verify_proof,
        wire::{self, Frame, Peers, WireLimits},
    };
    let peers = Peers {
        sender: libp2p_identity::PeerId::from_bytes(&[0, 2, 8, 1]).unwrap_or_else(|_| {
            libp2p_identity::Keypair::ed25519_from_bytes([1; 32])
                .expect("32 bytes")
                .public()
                .to_peer_id()
        }),
        receiver: libp2p_identity::Keypair::ed25519_from_bytes([2; 32])
            .expect("32 bytes")
            .public()
            .to_peer_id(),
    };
    let limits = WireLimits::default();
    let Ok(frame) = wire::decode_frame(data, &peers, &limits) else {
        return;
    };
    assert_eq!(wire::encode_frame(&frame, &peers), data, "not canonical");
    let (chains, proofs) = match frame {
        Frame::Open(o) => (
            o.redeem
                .into_iter()
                .chain([o.fresh])
                .chain(o.suspects)
                .collect(),
            o.proofs,
        ),
        Frame::Accept(a) => (a.transfer.into_iter().chain(a.suspects).collect(), a.proofs),
        Frame::Step(s) => (s.transfer.into_iter().chain(s.suspects).collect(), s.proofs),
        Frame::Refuse(r) => (Vec::new(), r.proofs),
        Frame::Push(p) => (Vec::new(), p),
    };
    for chain in chains {
        let _ = check_chain(&Libp2pScheme, chain, 10_000, limits.max_links);
    }
    for proof in proofs {
        let _ = verify_proof(&Libp2pScheme, 10_000, &proof);
    }
}
