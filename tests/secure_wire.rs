//! SecureCyclon with real keys over the `/cyclon/2.0.0` codec: every message of every exchange
//! is encoded by its sender and decoded by its receiver (implied owners, canonical form), and
//! the cores never see an invalid item nor find a proof. Prints the bytes per exchange
//! (`cargo test --test secure_wire -- --nocapture`).

use libp2p::{Multiaddr, PeerId, identity::Keypair};
use libp2p_cyclon::{
    secure::{
        Advance, Answer, Incoming, SecureParams, SecureView,
        keys::{KeypairSigner, Libp2pScheme},
        wire::{self, Frame, Peers, WireLimits},
    },
    view::{Defence, ShuffleParams},
};
use rand::{SeedableRng, rngs::StdRng};

type View = SecureView<PeerId, Vec<Multiaddr>, Libp2pScheme, KeypairSigner>;

const GAP: u64 = 10_000;
const T0: u64 = 1_767_225_600_000;

fn keypair(seed: u8) -> Keypair {
    let mut bytes = [0u8; 32];
    bytes[0] = seed;
    Keypair::ed25519_from_bytes(bytes).unwrap()
}

fn addresses(k: u8) -> Vec<Multiaddr> {
    vec![
        format!("/ip4/192.0.2.{k}/tcp/4001").parse().unwrap(),
        format!("/ip4/192.0.2.{k}/udp/4001/quic-v1")
            .parse()
            .unwrap(),
    ]
}

/// Sends `frame` from `sender` to `receiver` through the codec.
fn carry(frame: Frame, sender: PeerId, receiver: PeerId, bytes: &mut usize) -> Frame {
    let peers = Peers { sender, receiver };
    let encoded = wire::encode_frame(&frame, &peers);
    *bytes += encoded.len() + 2; // and a varint length prefix
    let decoded = wire::decode_frame(&encoded, &peers, &WireLimits::default()).unwrap();
    assert_eq!(decoded, frame, "the codec round-trips");
    decoded
}

#[test]
fn real_keys_exchange_through_the_codec() {
    let (n, c, l) = (16u8, 6, 3);
    let params = ShuffleParams::new(c, l).with_defence(Defence::Secure(
        SecureParams::scaled(c, GAP).with_anchors(0),
    ));
    let mut rng = StdRng::seed_from_u64(1);
    let start = T0 - 20 * GAP;
    let mut views: Vec<View> = (1..=n)
        .map(|seed| {
            let signer = KeypairSigner::new(keypair(seed)).unwrap();
            View::new_identity(params, Libp2pScheme, signer, start, &mut rng).unwrap()
        })
        .collect();
    let ids: Vec<PeerId> = views.iter().map(|v| *v.local()).collect();
    for step in 1..=(c - 1) as u8 {
        for i in 0..n {
            let creator = (i + step) % n;
            let at = T0 - u64::from(c as u8 - step) * GAP;
            let chain = views[creator as usize]
                .hand_out(at, ids[i as usize], addresses(creator + 1))
                .unwrap();
            views[i as usize].take_handed(at, chain);
        }
    }
    let (mut exchanges, mut bytes, mut messages, mut refused) = (0, 0, 0, 0);
    for cycle in 0..12u64 {
        let now = T0 + cycle * GAP;
        for p in 0..n as usize {
            let Ok(sel) = views[p].select(&mut rng, now) else {
                continue;
            };
            let q = ids.iter().position(|id| *id == sel.target).unwrap();
            let (pi, qi) = (ids[p], ids[q]);
            let [vp, vq] = views.get_disjoint_mut([p, q]).unwrap();
            let (open, _) = vp
                .open(&mut rng, now, sel.id, addresses(p as u8 + 1))
                .unwrap();
            let Frame::Open(open) = carry(Frame::Open(open), pi, qi, &mut bytes) else {
                unreachable!()
            };
            messages += 1;
            let (answer, out) = vq.answer(&mut rng, now, &pi, open);
            assert_eq!(out.invalid.total(), 0, "{out:?}");
            let (id, accept) = match answer {
                Answer::Accept { id, accept } => (id, accept),
                Answer::Refuse(refuse) => {
                    // Busy (a second non-swappable redemption in a gap) happens; carry it.
                    let frame = carry(Frame::Refuse(refuse), qi, pi, &mut bytes);
                    let Frame::Refuse(refuse) = frame else {
                        unreachable!()
                    };
                    let (next, _) = vp.advance(&mut rng, now, sel.id, Incoming::Refuse(refuse));
                    assert_eq!(next, Advance::Finished);
                    refused += 1;
                    continue;
                }
                other => panic!("{other:?}"),
            };
            let Frame::Accept(accept) = carry(Frame::Accept(accept), qi, pi, &mut bytes) else {
                unreachable!()
            };
            messages += 1;
            let mut to_initiator = Incoming::Accept(accept);
            loop {
                let (next, out) = vp.advance(&mut rng, now, sel.id, to_initiator);
                assert_eq!(out.invalid.total(), 0, "{out:?}");
                let (step, last) = match next {
                    Advance::Send(step) => (step, false),
                    Advance::SendAndFinish(step) => (step, true),
                    other => panic!("{other:?}"),
                };
                let Frame::Step(step) = carry(Frame::Step(step), pi, qi, &mut bytes) else {
                    unreachable!()
                };
                messages += 1;
                let (next, out) = vq.advance(&mut rng, now, id, Incoming::Step(step));
                assert_eq!(out.invalid.total(), 0, "{out:?}");
                if last {
                    assert_eq!(next, Advance::Finished);
                    break;
                }
                let Advance::Send(step) = next else {
                    panic!("{next:?}")
                };
                let Frame::Step(step) = carry(Frame::Step(step), qi, pi, &mut bytes) else {
                    unreachable!()
                };
                messages += 1;
                to_initiator = Incoming::Step(step);
            }
            exchanges += 1;
        }
    }
    assert!(
        exchanges >= 160 && refused <= 20,
        "{exchanges} exchanges, {refused} refused"
    );
    for v in &views {
        assert_eq!(v.blacklist_len(), 0);
        assert!(v.len() >= c - 2, "views stay full: {}", v.len());
    }
    println!(
        "{exchanges} exchanges at c = {c}, l = {l}: {} bytes and {:.1} messages per exchange",
        bytes / exchanges,
        messages as f64 / exchanges as f64
    );
}
