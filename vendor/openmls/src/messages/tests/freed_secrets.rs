//! paired-mls engine changes 33-34: the HPKE plaintexts of a path secret
//! (RFC 9420 §7.6) and of a Welcome's GroupSecrets (§12.4.3.1) are wiped
//! before their memory is freed, on the side that seals them and on the
//! side that opens them.
use std::slice::from_ref;

use crate::{
    ciphersuite::{hpke, Secret},
    group::{mls_group::tests_and_kats::utils::setup_client, MlsGroup, MlsGroupCreateConfig},
    messages::{GroupSecrets, PathSecret},
    schedule::JoinerSecret,
    test_utils::freed_memory::freed_during,
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

// Decrypting a Welcome's GroupSecrets frees no unwiped copy of the joiner
// secret or the path secret (the HPKE plaintext, parsed).
#[openmls_test::openmls_test]
fn decrypted_group_secrets_leave_no_freed_copy() {
    let provider = &Provider::default();
    let crypto = provider.crypto();
    let joiner_secret = JoinerSecret::random(ciphersuite, provider.rand());
    let path_secret = PathSecret::from(Secret::random(ciphersuite, provider.rand()).unwrap());
    let encoded = GroupSecrets::new_encoded(&joiner_secret, Some(&path_secret), &[]).unwrap();
    let key_pair = EncryptionKeyPair::random(provider.rand(), crypto, ciphersuite).unwrap();
    let ciphertext = hpke::encrypt_with_label(
        key_pair.public_key().as_slice(),
        "Welcome",
        b"encrypted group info",
        &encoded,
        ciphersuite,
        crypto,
    )
    .unwrap();

    let (group_secrets, freed) = freed_during(|| {
        GroupSecrets::try_from_ciphertext(
            key_pair.private_key().key(),
            &ciphertext,
            b"encrypted group info",
            ciphersuite,
            crypto,
        )
    });
    let group_secrets = group_secrets.unwrap();
    assert_eq!(
        group_secrets.joiner_secret.as_slice(),
        joiner_secret.as_slice()
    );
    assert_eq!(
        group_secrets.path_secret.unwrap().secret_bytes(),
        path_secret.secret_bytes()
    );
    assert!(!freed.holds(joiner_secret.as_slice()));
    assert!(!freed.holds(path_secret.secret_bytes()));
}

// Adding a member frees no unwiped copy of the GroupSecrets sealed to it
// (their encoding, the HPKE plaintext).
#[openmls_test::openmls_test]
fn sealed_group_secrets_leave_no_freed_copy() {
    let alice_provider = &Provider::default();
    let bob_provider = &Provider::default();
    let (alice_credential, _, alice_signer, _) = setup_client("Alice", ciphersuite, alice_provider);
    let (_, bob_key_package_bundle, _, _) = setup_client("Bob", ciphersuite, bob_provider);
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(ciphersuite)
        .build();
    let mut alice_group =
        MlsGroup::new(alice_provider, &alice_signer, &config, alice_credential).unwrap();

    // With an UpdatePath: Bob's GroupSecrets hold the root's path secret.
    let (added, freed) = freed_during(|| {
        alice_group.add_members(
            alice_provider,
            &alice_signer,
            from_ref(bob_key_package_bundle.key_package()),
        )
    });
    let welcome = added.unwrap().1.into_welcome().unwrap();
    let group_secrets = GroupSecrets::try_from_ciphertext(
        bob_key_package_bundle.init_private_key(),
        welcome.secrets()[0].encrypted_group_secrets(),
        welcome.encrypted_group_info(),
        ciphersuite,
        bob_provider.crypto(),
    )
    .unwrap();
    assert!(!freed.holds(group_secrets.joiner_secret.as_slice()));
    assert!(!freed.holds(group_secrets.path_secret.unwrap().secret_bytes()));
}
