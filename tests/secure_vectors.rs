//! `/cyclon/2.0.0` test vectors (`tests/vectors/cyclon_v2.txt`, specified in
//! `docs/protocol.md`): decoded, verified and re-encoded byte for byte, and every one-bit
//! flip of every encoded object fails to decode or to verify.
//!
//! Keys: `Keypair::ed25519_from_bytes([seed, 0, ..., 0])` for seeds 1 (A), 2 (B), 3 (C) and
//! 4 (D). `CYCLON_WRITE_VECTORS=1 cargo test --test secure_vectors` rewrites the file from the
//! code below; the test fails if the file and the code disagree.

use libp2p::{Multiaddr, PeerId, identity::Keypair};
use libp2p_core::SignedEnvelope;
use libp2p_cyclon::secure::{
    Chain, DescriptorBody, HandOver, HandOverKind, Link, Proof, ProofError, Scheme,
    SignedDescriptor, Signer, check_chain,
    keys::{KeypairSigner, Libp2pScheme},
    verify_proof,
    wire::{self, Frame, Peers, WireLimits},
};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/cyclon_v2.txt");
const T: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const GAP: u64 = 10_000;

fn signer(seed: u8) -> KeypairSigner {
    let mut bytes = [0u8; 32];
    bytes[0] = seed;
    KeypairSigner::new(Keypair::ed25519_from_bytes(bytes).unwrap()).unwrap()
}

fn keypair(seed: u8) -> Keypair {
    let mut bytes = [0u8; 32];
    bytes[0] = seed;
    Keypair::ed25519_from_bytes(bytes).unwrap()
}

fn address() -> Multiaddr {
    "/ip4/192.0.2.1/tcp/4001".parse().unwrap()
}

fn body(creator: PeerId, t: u64) -> DescriptorBody<PeerId, Vec<Multiaddr>> {
    DescriptorBody {
        creator,
        minted_at: t,
        mint_gap: GAP,
        addresses: vec![address()],
    }
}

fn link(
    by: &KeypairSigner,
    prev: [u8; 32],
    to: PeerId,
    kind: HandOverKind,
) -> (Link<PeerId, Vec<u8>>, [u8; 32]) {
    let (signature, digest) = by
        .sign_handover(&Libp2pScheme, &HandOver { prev, to, kind })
        .unwrap();
    (
        Link {
            to,
            kind,
            signature,
        },
        digest,
    )
}

/// Every vector, in file order.
fn build() -> Vec<(&'static str, Vec<u8>)> {
    let (a, b, c, d) = (signer(1), signer(2), signer(3), signer(4));
    let (ia, ib, ic, id) = (*a.id(), *b.id(), *c.id(), *d.id());
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        ("key.a.peer_id", ia.to_bytes()),
        ("key.b.peer_id", ib.to_bytes()),
        ("key.c.peer_id", ic.to_bytes()),
        ("key.d.peer_id", id.to_bytes()),
    ];
    // 1. A's descriptor.
    let descriptor = body(ia, T);
    let (signature, digest) = a.sign_descriptor(&Libp2pScheme, &descriptor).unwrap();
    let envelope = SignedEnvelope::new(
        &keypair(1),
        wire::DESCRIPTOR_DOMAIN.to_owned(),
        wire::DESCRIPTOR_PAYLOAD_TYPE.to_vec(),
        wire::descriptor_payload(&descriptor),
    )
    .unwrap();
    v.push(("descriptor.payload", wire::descriptor_payload(&descriptor)));
    v.push((
        "descriptor.signature_input",
        wire::descriptor_signature_input(&descriptor),
    ));
    v.push(("descriptor.signature", signature.clone()));
    v.push(("descriptor.digest", digest.to_vec()));
    v.push(("descriptor.envelope", envelope.into_protobuf_encoding()));
    // 2. A hands it to B, B to C.
    let (l1, d1) = link(&a, digest, ib, HandOverKind::Transfer);
    let (l2, d2) = link(&b, d1, ic, HandOverKind::Transfer);
    let handover = |prev, to, kind| wire::handover_payload(&HandOver { prev, to, kind });
    v.push((
        "chain.link1.payload",
        handover(digest, ib, HandOverKind::Transfer),
    ));
    v.push(("chain.link1.digest", d1.to_vec()));
    v.push((
        "chain.link2.payload",
        handover(d1, ic, HandOverKind::Transfer),
    ));
    v.push(("chain.link2.digest", d2.to_vec()));
    let chain = Chain {
        body: descriptor.clone(),
        signature: signature.clone(),
        links: vec![l1.clone(), l2.clone()],
    };
    v.push(("chain.explicit", wire::encode_chain(&chain)));
    let step = Frame::Step(step_with(chain.clone()));
    v.push((
        "chain.step_b_to_c",
        wire::encode_frame(
            &step,
            &Peers {
                sender: ib,
                receiver: ic,
            },
        ),
    ));
    // 3. B also hands A's descriptor to D: a fork.
    let (l2d, _) = link(&b, d1, id, HandOverKind::Transfer);
    let fork = Proof::Fork {
        offender: ib,
        prev: d1,
        a: l2,
        b: l2d,
    };
    v.push(("fork_proof", wire::encode_proof(&fork)));
    // 4. A mints twice within a gap.
    let later = body(ia, T + GAP - 1);
    let (later_signature, _) = a.sign_descriptor(&Libp2pScheme, &later).unwrap();
    let frequency = Proof::Frequency {
        a: SignedDescriptor {
            body: descriptor,
            signature,
        },
        b: SignedDescriptor {
            body: later,
            signature: later_signature,
        },
    };
    v.push(("frequency_proof", wire::encode_proof(&frequency)));
    // 5. B hands A's descriptor on and redeems a non-swappable copy of it: allowed.
    let (ns, _) = link(&b, d1, ia, HandOverKind::RedeemNonSwappable);
    let (to_c, _) = link(&b, d1, ic, HandOverKind::Transfer);
    let exempt = Proof::Fork {
        offender: ib,
        prev: d1,
        a: to_c,
        b: ns,
    };
    v.push(("exempt_pair", wire::encode_proof(&exempt)));
    v
}

/// A step carrying `chain` and nothing else, as decoded from its hand-written encoding
/// (message values are made by the decoder outside the crate).
fn step_with(
    chain: Chain<PeerId, Vec<Multiaddr>, Vec<u8>>,
) -> libp2p_cyclon::secure::Step<PeerId, Vec<Multiaddr>, Vec<u8>, [u8; 32]> {
    let peers = Peers {
        sender: chain.links[0].to,
        receiver: chain.links[1].to,
    };
    let encoded = encode_step(&chain, &peers);
    match wire::decode_frame(&encoded, &peers, &WireLimits::default()).unwrap() {
        Frame::Step(step) => step,
        other => panic!("{other:?}"),
    }
}

/// The canonical `Message{step{transfer}}` bytes for `chain` sent by `peers.sender`: every
/// `to` explicit except the two the position implies.
fn encode_step(chain: &Chain<PeerId, Vec<Multiaddr>, Vec<u8>>, peers: &Peers) -> Vec<u8> {
    let n = chain.links.len();
    let mut chain_bytes = Vec::new();
    let descriptor = wire::descriptor_payload(&chain.body);
    field_bytes(&mut chain_bytes, 1, &descriptor);
    field_bytes(&mut chain_bytes, 2, &chain.signature);
    for (k, l) in chain.links.iter().enumerate() {
        let implied =
            (k + 1 == n && l.to == peers.receiver) || (k + 2 == n && l.to == peers.sender);
        let mut link = Vec::new();
        if !implied {
            field_bytes(&mut link, 1, &l.to.to_bytes());
        }
        if l.kind != HandOverKind::Transfer {
            link.push(0x10);
            prost::encoding::encode_varint(l.kind as u64, &mut link);
        }
        field_bytes(&mut link, 3, &l.signature);
        field_bytes(&mut chain_bytes, 3, &link);
    }
    let mut step = Vec::new();
    field_bytes(&mut step, 1, &chain_bytes);
    let mut message = Vec::new();
    field_bytes(&mut message, 4, &step);
    message
}

fn field_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    prost::encoding::encode_varint(u64::from(field << 3 | 2), out);
    prost::encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn render(vectors: &[(&str, Vec<u8>)]) -> String {
    let mut out = String::from(
        "# /cyclon/2.0.0 test vectors (docs/protocol.md, section \"Test vectors\").\n\
         # Keys: Keypair::ed25519_from_bytes([seed, 0, ..., 0]), seeds 1 (A), 2 (B), 3 (C), 4 (D).\n\
         # Descriptors: minted_at 1767225600000 (2026-01-01T00:00:00Z), mint_gap 10000,\n\
         # addrs [/ip4/192.0.2.1/tcp/4001]. Each line: name, a colon, lower-case hex.\n",
    );
    for (name, bytes) in vectors {
        out.push_str(&format!("{name}: {}\n", hex(bytes)));
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn load() -> Vec<(String, Vec<u8>)> {
    std::fs::read_to_string(PATH)
        .expect("the vectors file")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, hex) = l.split_once(": ").expect("name: hex");
            (name.to_owned(), unhex(hex))
        })
        .collect()
}

fn get<'a>(vectors: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &vectors
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("vector {name}"))
        .1
}

#[test]
fn the_file_is_what_the_code_produces() {
    let built = render(&build());
    if std::env::var_os("CYCLON_WRITE_VECTORS").is_some() {
        std::fs::write(PATH, &built).unwrap();
    }
    assert_eq!(std::fs::read_to_string(PATH).unwrap(), built);
}

/// Decodes, verifies and re-encodes every vector from the file alone.
fn check(vectors: &[(String, Vec<u8>)]) -> Result<(), String> {
    let limits = WireLimits::default();
    let err = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let peer = |name: &str| PeerId::from_bytes(get(vectors, name)).map_err(|e| err(&e));
    let (a, b, c, d) = (
        peer("key.a.peer_id")?,
        peer("key.b.peer_id")?,
        peer("key.c.peer_id")?,
        peer("key.d.peer_id")?,
    );
    // 1. The descriptor.
    let payload = get(vectors, "descriptor.payload");
    let body = wire::decode_descriptor(payload, &limits).map_err(|e| err(&e))?;
    if body.creator != a || body.minted_at != T || body.mint_gap != GAP {
        return Err("descriptor fields".into());
    }
    if wire::descriptor_payload(&body) != payload {
        return Err("descriptor re-encoding".into());
    }
    if wire::descriptor_signature_input(&body) != get(vectors, "descriptor.signature_input") {
        return Err("signature input".into());
    }
    let signature = get(vectors, "descriptor.signature").to_vec();
    let digest = Libp2pScheme
        .verify_descriptor(&body, &signature)
        .ok_or("descriptor signature")?;
    if digest.as_slice() != get(vectors, "descriptor.digest") {
        return Err("descriptor digest".into());
    }
    let envelope = SignedEnvelope::from_protobuf_encoding(get(vectors, "descriptor.envelope"))
        .map_err(|e| err(&e))?;
    let (inner, key) = envelope
        .payload_and_signing_key(
            wire::DESCRIPTOR_DOMAIN.to_owned(),
            &wire::DESCRIPTOR_PAYLOAD_TYPE,
        )
        .map_err(|e| err(&e))?;
    if inner != payload || key.to_peer_id() != a {
        return Err("envelope".into());
    }
    // 2. The chain, explicit and as B's step to C.
    let explicit = get(vectors, "chain.explicit");
    let chain = wire::decode_chain(explicit, &limits).map_err(|e| err(&e))?;
    if wire::encode_chain(&chain) != explicit {
        return Err("chain re-encoding".into());
    }
    let token = check_chain(&Libp2pScheme, chain.clone(), GAP, 32).map_err(|e| err(&e))?;
    let digests: Vec<&[u8]> = token.digests().iter().map(|d| d.as_slice()).collect();
    if digests
        != [
            get(vectors, "descriptor.digest"),
            get(vectors, "chain.link1.digest"),
            get(vectors, "chain.link2.digest"),
        ]
    {
        return Err("chain digests".into());
    }
    if (token.links()[0].to, token.links()[1].to) != (b, c) {
        return Err("chain owners".into());
    }
    for (k, name) in [(0, "chain.link1.payload"), (1, "chain.link2.payload")] {
        let h = HandOver {
            prev: token.digests()[k],
            to: token.links()[k].to,
            kind: token.links()[k].kind,
        };
        if wire::handover_payload(&h) != get(vectors, name) {
            return Err(name.to_string());
        }
    }
    let peers = Peers {
        sender: b,
        receiver: c,
    };
    let step_bytes = get(vectors, "chain.step_b_to_c");
    let frame = wire::decode_frame(step_bytes, &peers, &limits).map_err(|e| err(&e))?;
    let Frame::Step(step) = &frame else {
        return Err("not a step".into());
    };
    if step.transfer.as_ref() != Some(&chain) {
        return Err("step transfer".into());
    }
    if wire::encode_frame(&frame, &peers) != step_bytes {
        return Err("step re-encoding".into());
    }
    check_chain(&Libp2pScheme, step.transfer.clone().unwrap(), GAP, 32).map_err(|e| err(&e))?;
    // 3-5. The proofs.
    for (name, expected) in [
        ("fork_proof", Ok(b)),
        ("frequency_proof", Ok(a)),
        ("exempt_pair", Err(ProofError::Exempt)),
    ] {
        let bytes = get(vectors, name);
        let proof = wire::decode_proof(bytes, &limits).map_err(|e| err(&e))?;
        if wire::encode_proof(&proof) != bytes {
            return Err(format!("{name} re-encoding"));
        }
        let verdict = verify_proof(&Libp2pScheme, GAP, &proof);
        if verdict != expected {
            return Err(format!("{name}: {verdict:?}"));
        }
    }
    let _ = d;
    Ok(())
}

#[test]
fn vectors_decode_verify_and_reencode_byte_for_byte() {
    check(&load()).unwrap();
}

#[test]
fn every_one_bit_flip_fails() {
    let vectors = load();
    let flippable = [
        "descriptor.payload",
        "descriptor.signature",
        "descriptor.envelope",
        "chain.explicit",
        "chain.step_b_to_c",
        "fork_proof",
        "frequency_proof",
    ];
    for name in flippable {
        let len = get(&vectors, name).len();
        for bit in 0..8 * len {
            let mut spoiled = vectors.clone();
            let bytes = &mut spoiled.iter_mut().find(|(n, _)| n == name).unwrap().1;
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(
                check(&spoiled).is_err(),
                "flipping bit {bit} of {name} went unnoticed"
            );
        }
    }
}
