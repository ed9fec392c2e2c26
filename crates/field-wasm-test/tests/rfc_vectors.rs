//! Ed25519 and X25519 through the patched curve25519-dalek in wasm (its
//! field multiplication is the SIMD one there) against the RFCs' own
//! vectors, so the whole chain (SIMD products, dalek's reduce, the curve
//! formulas on top) is checked against an independent reference.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use wasm_bindgen_test::wasm_bindgen_test;
use x25519_dalek::{x25519, PublicKey, StaticSecret, X25519_BASEPOINT_BYTES};

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn hex32(text: &str) -> [u8; 32] {
    hex(text).try_into().expect("32 bytes")
}

/// RFC 8032 §7.1: secret key, public key, message, signature.
const ED25519: [(&str, &str, &str, &str); 4] = [
    (
        // TEST 1
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        // TEST 2
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        // TEST 3
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        // TEST SHA(abc)
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
];

#[wasm_bindgen_test]
fn ed25519_rfc8032_keys_and_signatures() {
    for (secret, public, message, signature) in ED25519 {
        let key = SigningKey::from_bytes(&hex32(secret));
        assert_eq!(key.verifying_key().to_bytes().to_vec(), hex(public), "public key of {secret}");
        let message = hex(message);
        let signed = key.sign(&message);
        assert_eq!(signed.to_bytes().to_vec(), hex(signature), "signature by {secret}");
    }
}

#[wasm_bindgen_test]
fn ed25519_rfc8032_signatures_verify_strictly_and_altered_ones_do_not() {
    for (_, public, message, signature) in ED25519 {
        let key = VerifyingKey::from_bytes(&hex32(public)).expect("valid public key");
        let message = hex(message);
        let bytes: [u8; 64] = hex(signature).try_into().expect("64 bytes");
        key.verify_strict(&message, &Signature::from_bytes(&bytes)).expect("RFC signature verifies");

        let mut other_message = message.clone();
        other_message.push(0);
        assert!(key.verify_strict(&other_message, &Signature::from_bytes(&bytes)).is_err());
        let mut altered = bytes;
        altered[0] ^= 1; // R no longer matches
        assert!(key.verify_strict(&message, &Signature::from_bytes(&altered)).is_err());
    }
}

/// RFC 7748 §5.2: scalar, u-coordinate, result.
const X25519: [(&str, &str, &str); 2] = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
];

#[wasm_bindgen_test]
fn x25519_rfc7748_vectors() {
    for (scalar, u, result) in X25519 {
        assert_eq!(x25519(hex32(scalar), hex32(u)), hex32(result), "scalar {scalar}");
    }
}

#[wasm_bindgen_test]
fn x25519_rfc7748_iterations_1_and_1000() {
    // k = u = 9; each round: k, u = x25519(k, u), k.
    let (mut k, mut u) = (X25519_BASEPOINT_BYTES, X25519_BASEPOINT_BYTES);
    let mut round = || {
        let result = x25519(k, u);
        u = k;
        k = result;
        k
    };
    assert_eq!(round(), hex32("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"));
    let mut last = [0u8; 32];
    for _ in 1..1000 {
        last = round();
    }
    assert_eq!(last, hex32("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"));
}

#[wasm_bindgen_test]
fn x25519_rfc7748_diffie_hellman() {
    // RFC 7748 §6.1.
    let alice = StaticSecret::from(hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    let bob = StaticSecret::from(hex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
    let alice_public = PublicKey::from(&alice);
    let bob_public = PublicKey::from(&bob);
    assert_eq!(alice_public.to_bytes(), hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
    assert_eq!(bob_public.to_bytes(), hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
    let shared = hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(alice.diffie_hellman(&bob_public).to_bytes(), shared);
    assert_eq!(bob.diffie_hellman(&alice_public).to_bytes(), shared);
}
