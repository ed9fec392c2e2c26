//! paired-mls engine change 32: the HPKE plaintext of a path secret (RFC
//! 9420 §7.6) is wiped before its memory is freed.
use crate::{
    ciphersuite::Secret, messages::PathSecret, test_utils::freed_memory::freed_during,
    treesync::node::encryption_keys::EncryptionKeyPair,
};

// Decrypting an UpdatePath's path secret frees no unwiped copy of it (the
// HPKE plaintext, copied into the `Secret`).
#[openmls_test::openmls_test]
fn a_decrypted_path_secret_leaves_no_freed_copy() {
    let provider = &Provider::default();
    let crypto = provider.crypto();
    let path_secret = PathSecret::from(Secret::random(ciphersuite, provider.rand()).unwrap());
    let key_pair = EncryptionKeyPair::random(provider.rand(), crypto, ciphersuite).unwrap();
    let ciphertext = path_secret
        .encrypt(crypto, ciphersuite, key_pair.public_key(), b"group context")
        .unwrap();

    let (decrypted, freed) = freed_during(|| {
        PathSecret::decrypt(
            crypto,
            ciphersuite,
            &ciphertext,
            key_pair.private_key(),
            b"group context",
        )
    });
    assert_eq!(
        decrypted.unwrap().secret_bytes(),
        path_secret.secret_bytes()
    );
    assert!(!freed.holds(path_secret.secret_bytes()));
}
