//! [`SenderRatchet`](super::sender_ratchet::SenderRatchet) variant for the
//! `virtual-clients-draft` feature. The ratchet supports both encryption and
//! decryption of own messages, with explicit confirmation-based deletion of
//! emitted encryption secrets for forward secrecy.

use std::collections::BTreeMap;
use std::mem;

use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::Ciphersuite;
use serde::{Deserialize, Serialize};

use crate::ciphersuite::Secret;
use crate::tree::secret_tree::SecretTreeError;
use crate::tree::sender_ratchet::{
    Generation, RatchetKeyMaterial, RatchetSecret, SenderRatchetConfiguration,
};
use crate::utils::vector_converter;

/// [`SenderRatchet`](super::sender_ratchet::SenderRatchet) used for own
/// ratchets when the `virtual-clients-draft` feature is enabled. It supports
/// both encryption and decryption: encryption is needed to send messages, while
/// decryption lets the local member also decrypt their own ciphertexts (e.g.
/// when receiving a message encrypted by another emulating client). Encryption
/// secrets are kept in a past-secrets window like a `DecryptionRatchet` until
/// they are explicitly dropped by confirming the corresponding generation via
/// [`Self::delete_secret_for_generation`].
///
/// Its head may be stored ahead of where it is: see [`Self::store_ahead`].
#[derive(Deserialize)]
#[cfg_attr(any(feature = "test-utils", test), derive(PartialEq, Clone))]
#[cfg_attr(any(feature = "crypto-debug", test), derive(Debug))]
pub(crate) struct DualUseRatchet {
    #[serde(with = "vector_converter")]
    past_secrets: BTreeMap<Generation, DualUsePastSecret>,
    ratchet_head: RatchetSecret,
    /// The head ratcheted some generations ahead, serialized in place of
    /// `ratchet_head` while it is ahead of it (never serialized itself).
    #[serde(skip)]
    stored_head: Option<RatchetSecret>,
}

/// The derived layout of the two stored fields, with the stored head in
/// place of the head while it is ahead of it.
impl Serialize for DualUseRatchet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;

        struct PastSecrets<'a>(&'a BTreeMap<Generation, DualUsePastSecret>);
        impl Serialize for PastSecrets<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                vector_converter::serialize(self.0, serializer)
            }
        }
        let head = match &self.stored_head {
            Some(stored) if stored.generation() > self.ratchet_head.generation() => stored,
            _ => &self.ratchet_head,
        };
        let mut state = serializer.serialize_struct("DualUseRatchet", 2)?;
        state.serialize_field("past_secrets", &PastSecrets(&self.past_secrets))?;
        state.serialize_field("ratchet_head", head)?;
        state.end()
    }
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(any(feature = "test-utils", test), derive(PartialEq, Clone))]
#[cfg_attr(any(feature = "crypto-debug", test), derive(Debug))]
enum DualUsePastSecret {
    AwaitingConfirmation(RatchetKeyMaterial),
    RetainedForDecryption(RetainedDecryptionSecret),
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(any(feature = "test-utils", test), derive(PartialEq, Clone))]
#[cfg_attr(any(feature = "crypto-debug", test), derive(Debug))]
enum RetainedDecryptionSecret {
    Available(RatchetKeyMaterial),
    Consumed,
}

impl DualUsePastSecret {
    fn peek_for_decryption(&self) -> Result<RatchetKeyMaterial, SecretTreeError> {
        match self {
            Self::AwaitingConfirmation(ratchet_secret)
            | Self::RetainedForDecryption(RetainedDecryptionSecret::Available(ratchet_secret)) => {
                Ok(ratchet_secret.clone())
            }
            Self::RetainedForDecryption(RetainedDecryptionSecret::Consumed) => {
                Err(SecretTreeError::SecretReuseError)
            }
        }
    }

    fn take_for_decryption(&mut self) -> Result<RatchetKeyMaterial, SecretTreeError> {
        match mem::replace(
            self,
            Self::RetainedForDecryption(RetainedDecryptionSecret::Consumed),
        ) {
            Self::AwaitingConfirmation(ratchet_secret)
            | Self::RetainedForDecryption(RetainedDecryptionSecret::Available(ratchet_secret)) => {
                Ok(ratchet_secret)
            }
            Self::RetainedForDecryption(RetainedDecryptionSecret::Consumed) => {
                Err(SecretTreeError::SecretReuseError)
            }
        }
    }

    /// A copy (the type is `Clone` only in tests).
    fn duplicate(&self) -> Self {
        match self {
            Self::AwaitingConfirmation(secret) => Self::AwaitingConfirmation(secret.clone()),
            Self::RetainedForDecryption(RetainedDecryptionSecret::Available(secret)) => {
                Self::RetainedForDecryption(RetainedDecryptionSecret::Available(secret.clone()))
            }
            Self::RetainedForDecryption(RetainedDecryptionSecret::Consumed) => {
                Self::RetainedForDecryption(RetainedDecryptionSecret::Consumed)
            }
        }
    }

    fn is_retained_for_decryption(&self) -> bool {
        matches!(self, Self::RetainedForDecryption(_))
    }
}

impl From<RatchetSecret> for DualUseRatchet {
    /// Promotes a plain [`RatchetSecret`] (the state of an `EncryptionRatchet`
    /// persisted before the `virtual-clients-draft` feature was enabled) into
    /// a fresh [`DualUseRatchet`] with no past secrets. This is used to
    /// upgrade own ratchets deserialized from state written by a build
    /// without the feature.
    fn from(ratchet_head: RatchetSecret) -> Self {
        Self {
            past_secrets: BTreeMap::new(),
            ratchet_head,
            stored_head: None,
        }
    }
}

impl DualUseRatchet {
    pub(crate) fn new(secret: Secret) -> Self {
        Self {
            past_secrets: BTreeMap::new(),
            ratchet_head: RatchetSecret::initial_ratchet_secret(secret),
            stored_head: None,
        }
    }

    pub(crate) fn generation(&self) -> Generation {
        self.ratchet_head.generation()
    }

    /// The head, to ratchet it forward past generations sent elsewhere
    /// (`SenderRatchet::advance_own_to`). A stored head it passes is no
    /// longer ahead, so the head is serialized in its place.
    pub(crate) fn head_mut(&mut self) -> &mut RatchetSecret {
        &mut self.ratchet_head
    }

    /// Engine change 28 (review): puts this ratchet, restored from an
    /// earlier state, at least as far as `later`, the same ratchet in a
    /// later state of the group. Below both heads, a generation `later`
    /// no longer holds (confirmed, consumed and pruned, or passed) is
    /// dropped here too, and one it consumed is consumed here: a restore
    /// neither writes back the key of a send the later state confirmed nor
    /// reads a sibling's message twice. The head is ratcheted to `later`'s,
    /// taking over `later`'s entries for the generations it passes (a
    /// sibling's generations retained for decryption, unconfirmed sends a
    /// sibling may win), so a sibling stays readable. Returns whether the
    /// ratchet changed.
    pub(crate) fn catch_up_with(
        &mut self,
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
        later: &DualUseRatchet,
    ) -> Result<bool, SecretTreeError> {
        let own_head = self.ratchet_head.generation();
        let target = later.generation();
        let mut changed = false;
        let below = own_head.min(target);
        let stale: Vec<(Generation, bool)> = self
            .past_secrets
            .range(..below)
            .filter_map(|(generation, entry)| match later.past_secrets.get(generation) {
                None => Some((*generation, false)),
                Some(DualUsePastSecret::RetainedForDecryption(RetainedDecryptionSecret::Consumed))
                    if !matches!(
                        entry,
                        DualUsePastSecret::RetainedForDecryption(RetainedDecryptionSecret::Consumed)
                    ) =>
                {
                    Some((*generation, true))
                }
                Some(_) => None,
            })
            .collect();
        for (generation, consumed) in stale {
            changed = true;
            if consumed {
                self.past_secrets.insert(
                    generation,
                    DualUsePastSecret::RetainedForDecryption(RetainedDecryptionSecret::Consumed),
                );
            } else {
                self.past_secrets.remove(&generation);
            }
        }
        if own_head < target {
            while self.ratchet_head.generation() < target {
                self.ratchet_head.ratchet_forward(crypto, ciphersuite)?;
            }
            for (generation, entry) in later.past_secrets.range(own_head..target) {
                self.past_secrets.insert(*generation, entry.duplicate());
            }
            changed = true;
        }
        Ok(changed)
    }

    /// Discard the cached encryption secret for a previously emitted
    /// generation. Call this to confirm a sent message and drop the
    /// corresponding key material for forward secrecy.
    ///
    /// No-op if the requested generation is at or beyond the ratchet head
    /// (i.e. nothing has been emitted yet for that generation).
    pub(crate) fn delete_secret_for_generation(&mut self, generation: Generation) {
        let head = self.generation();
        if generation >= head {
            return;
        }
        if matches!(
            self.past_secrets.get(&generation),
            Some(DualUsePastSecret::AwaitingConfirmation(_))
        ) {
            self.past_secrets.remove(&generation);
        }
    }

    /// Discard every cached encryption secret still awaiting confirmation:
    /// the messages they encrypted can no longer be processed (their epoch
    /// ended), so they are only kept for an attacker.
    pub(crate) fn drop_unconfirmed(&mut self) {
        self.past_secrets
            .retain(|_, entry| !matches!(entry, DualUsePastSecret::AwaitingConfirmation(_)));
    }

    /// Gets a secret for encryption. The secret is also recorded in the
    /// past-secrets window so the caller can later confirm and drop it. This
    /// requires cloning the [`RatchetKeyMaterial`] with one clone returned and
    /// the other retained until confirmation or use for decryption.
    ///
    /// The cache is not pruned here: emitted encryption secrets are only
    /// cleared by an explicit call to [`Self::delete_secret_for_generation`]
    /// (i.e. confirming the message). Auto-pruning at this point could drop
    /// unconfirmed secrets the caller still intends to confirm.
    pub(crate) fn secret_for_encryption(
        &mut self,
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
    ) -> Result<(Generation, RatchetKeyMaterial), SecretTreeError> {
        let generation = self.ratchet_head.generation();
        let ratchet_secrets = self
            .ratchet_head
            .ratchet_forward(crypto, ciphersuite)
            .map(|(_, key_material)| key_material)?;
        self.past_secrets.insert(
            generation,
            DualUsePastSecret::AwaitingConfirmation(ratchet_secrets.clone()),
        );
        Ok((generation, ratchet_secrets))
    }

    /// Lets the next `ahead` generations be sent without writing the
    /// ratchet: the head is from now on serialized `ahead` generations past
    /// the next one to send, so state read back after any of those sends
    /// goes on after all of them and never uses a generation twice. Returns
    /// whether the ratchet must be written now; not while a stored head
    /// written earlier is still at or past the head.
    ///
    /// The secrets of the skipped generations are never derivable from
    /// storage (it holds only the later head); the receivers skip them.
    /// So `ahead` must not exceed their `maximum_forward_distance`.
    pub(crate) fn store_ahead(
        &mut self,
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
        ahead: Generation,
    ) -> Result<bool, SecretTreeError> {
        let next = self.ratchet_head.generation();
        if self
            .stored_head
            .as_ref()
            .is_some_and(|stored| stored.generation() >= next)
        {
            return Ok(false);
        }
        let mut stored = self.ratchet_head.clone();
        for _ in 0..ahead.min(u32::MAX - next) {
            stored.ratchet_forward(crypto, ciphersuite)?;
        }
        self.stored_head = Some(stored);
        Ok(true)
    }

    /// Returns the secret for decrypting `generation` without changing the
    /// ratchet, together with the change that [`Self::consume`] applies to
    /// mark the generation as used.
    ///
    /// The receive-side retention window is computed only from generations
    /// retained for decryption because encryption also advances the derivation
    /// head. Local sends don't enter this window. Unconfirmed encryption secrets
    /// are retained even if they fall outside the receive window.
    pub(crate) fn peek(
        &self,
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
        generation: Generation,
        configuration: &SenderRatchetConfiguration,
    ) -> Result<(RatchetKeyMaterial, PeekedDualUseGeneration), SecretTreeError> {
        log::debug!("peek decryption secret");
        let head_generation = self.ratchet_head.generation();
        if head_generation < u32::MAX - configuration.maximum_forward_distance()
            && generation > head_generation + configuration.maximum_forward_distance()
        {
            return Err(SecretTreeError::TooDistantInTheFuture);
        }

        if generation >= head_generation {
            let mut ratchet_head = self.ratchet_head.clone();
            // All skipped secrets are kept, oldest first. Consuming prunes
            // the ones outside the window.
            let mut skipped_secrets = Vec::new();
            for _ in head_generation..generation {
                skipped_secrets.push(
                    ratchet_head
                        .ratchet_forward(crypto, ciphersuite)
                        .map(|(_, key_material)| key_material)?,
                );
            }
            let ratchet_secrets = ratchet_head
                .ratchet_forward(crypto, ciphersuite)
                .map(|(_, key_material)| key_material)?;
            Ok((
                ratchet_secrets,
                PeekedDualUseGeneration::Forward {
                    from_head: head_generation,
                    ratchet_head,
                    skipped_secrets,
                },
            ))
        } else {
            let Some(entry) = self.past_secrets.get(&generation) else {
                return Err(self.error_for_missing_past_secret(generation));
            };
            Ok((
                entry.peek_for_decryption()?,
                PeekedDualUseGeneration::Past { generation },
            ))
        }
    }

    /// Marks a generation returned by [`Self::peek`] as used. Returns an error
    /// if the ratchet changed in a way that makes `peeked` stale.
    pub(crate) fn consume(
        &mut self,
        peeked: PeekedDualUseGeneration,
        configuration: &SenderRatchetConfiguration,
    ) -> Result<(), SecretTreeError> {
        match peeked {
            PeekedDualUseGeneration::Forward {
                from_head,
                ratchet_head,
                skipped_secrets,
            } => {
                if from_head != self.ratchet_head.generation() {
                    log::error!("The ratchet moved since the generation was peeked.");
                    return Err(SecretTreeError::LibraryError);
                }
                let generation = ratchet_head.generation() - 1;
                self.ratchet_head = ratchet_head;
                for (skipped_generation, ratchet_secrets) in (from_head..).zip(skipped_secrets) {
                    self.past_secrets.insert(
                        skipped_generation,
                        DualUsePastSecret::RetainedForDecryption(
                            RetainedDecryptionSecret::Available(ratchet_secrets),
                        ),
                    );
                }
                self.past_secrets.insert(
                    generation,
                    DualUsePastSecret::RetainedForDecryption(RetainedDecryptionSecret::Consumed),
                );
            }
            PeekedDualUseGeneration::Past { generation } => {
                self.past_secrets
                    .get_mut(&generation)
                    .ok_or(SecretTreeError::SecretReuseError)?
                    .take_for_decryption()?;
            }
        }
        self.prune_past_secrets(configuration);
        Ok(())
    }

    /// Gets a secret for decryption and marks it as used.
    #[cfg(test)]
    pub(crate) fn secret_for_decryption(
        &mut self,
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
        generation: Generation,
        configuration: &SenderRatchetConfiguration,
    ) -> Result<RatchetKeyMaterial, SecretTreeError> {
        let (ratchet_key_material, peeked) =
            self.peek(ciphersuite, crypto, generation, configuration)?;
        self.consume(peeked, configuration)?;
        Ok(ratchet_key_material)
    }

    fn error_for_missing_past_secret(&self, generation: Generation) -> SecretTreeError {
        if self
            .past_secrets
            .iter()
            .find(|(_, entry)| entry.is_retained_for_decryption())
            .is_some_and(|(oldest_generation, _)| generation < *oldest_generation)
        {
            log::error!("  Generation is too far in the past (not in the window).");
            SecretTreeError::TooDistantInThePast
        } else {
            SecretTreeError::SecretReuseError
        }
    }

    fn prune_past_secrets(&mut self, configuration: &SenderRatchetConfiguration) {
        let excess_retained_decryption_secrets = self
            .past_secrets
            .values()
            .filter(|entry| entry.is_retained_for_decryption())
            .count()
            .saturating_sub(configuration.out_of_order_tolerance() as usize);

        let generations_to_prune = self
            .past_secrets
            .iter()
            .filter_map(|(generation, entry)| {
                entry.is_retained_for_decryption().then_some(*generation)
            })
            .take(excess_retained_decryption_secrets)
            .collect::<Vec<_>>();

        for generation in generations_to_prune {
            self.past_secrets.remove(&generation);
        }
    }
}

/// The change to a [`DualUseRatchet`] that marks one generation as used,
/// computed by [`DualUseRatchet::peek`].
pub(crate) enum PeekedDualUseGeneration {
    /// The generation is at or after the head. The ratchet moves its head to
    /// `ratchet_head` and retains the skipped secrets that fit into its window.
    Forward {
        from_head: Generation,
        ratchet_head: RatchetSecret,
        skipped_secrets: Vec<RatchetKeyMaterial>,
    },
    /// The generation is below the head.
    Past { generation: Generation },
}

#[cfg(test)]
mod stored_head_tests {
    use super::*;
    use crate::test_utils::OpenMlsRustCrypto;
    use openmls_traits::OpenMlsProvider;

    const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

    /// The layout `#[derive(Serialize)]` gave the ratchet before it had a
    /// stored head.
    #[derive(Serialize)]
    #[serde(rename = "DualUseRatchet")]
    struct DerivedLayout {
        #[serde(with = "vector_converter")]
        past_secrets: BTreeMap<Generation, DualUsePastSecret>,
        ratchet_head: RatchetSecret,
    }

    /// Three generations sent, one of them confirmed.
    fn sent_three(provider: &impl OpenMlsProvider) -> DualUseRatchet {
        let mut ratchet = DualUseRatchet::new(Secret::from_slice(&[7; 32]));
        for _ in 0..3 {
            ratchet
                .secret_for_encryption(CIPHERSUITE, provider.crypto())
                .unwrap();
        }
        ratchet.delete_secret_for_generation(1);
        ratchet
    }

    fn layout_of(ratchet: &DualUseRatchet, head: &RatchetSecret) -> DerivedLayout {
        DerivedLayout {
            past_secrets: ratchet.past_secrets.clone(),
            ratchet_head: head.clone(),
        }
    }

    #[test]
    fn without_a_stored_head_the_layout_is_the_derived_one() {
        let provider = OpenMlsRustCrypto::default();
        let ratchet = sent_three(&provider);
        let derived = layout_of(&ratchet, &ratchet.ratchet_head);
        assert_eq!(
            serde_json::to_vec(&ratchet).unwrap(),
            serde_json::to_vec(&derived).unwrap()
        );
        assert_eq!(
            postcard::to_allocvec(&ratchet).unwrap(),
            postcard::to_allocvec(&derived).unwrap()
        );
    }

    #[test]
    fn a_stored_head_is_written_in_place_of_the_head_while_it_is_ahead() {
        let provider = OpenMlsRustCrypto::default();
        let mut ratchet = sent_three(&provider);
        assert!(ratchet
            .store_ahead(CIPHERSUITE, provider.crypto(), 5)
            .unwrap());
        let stored_head = ratchet.stored_head.clone().unwrap();
        assert_eq!(stored_head.generation(), 8);
        let bytes = postcard::to_allocvec(&ratchet).unwrap();
        assert_eq!(
            bytes,
            postcard::to_allocvec(&layout_of(&ratchet, &stored_head)).unwrap()
        );

        // Read back: the head is the stored one, the past secrets are kept,
        // and generation 8 has the key the live ratchet derives for it.
        let mut back: DualUseRatchet = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.generation(), 8);
        assert!(back.stored_head.is_none());
        assert!(back.past_secrets == ratchet.past_secrets);
        let mut live = ratchet.clone();
        for generation in 3..8 {
            assert_eq!(
                live.secret_for_encryption(CIPHERSUITE, provider.crypto())
                    .unwrap()
                    .0,
                generation
            );
            // Up to the stored head, nothing is to be written.
            assert!(!live.store_ahead(CIPHERSUITE, provider.crypto(), 5).unwrap());
        }
        assert!(
            live.secret_for_encryption(CIPHERSUITE, provider.crypto())
                .unwrap()
                == back
                    .secret_for_encryption(CIPHERSUITE, provider.crypto())
                    .unwrap()
        );

        // Past the stored head, the head is written again, stored ahead anew.
        assert!(live.store_ahead(CIPHERSUITE, provider.crypto(), 5).unwrap());
        assert_eq!(live.stored_head.as_ref().unwrap().generation(), 14);
        // With no generations ahead, the head itself is what is written.
        let mut plain = sent_three(&provider);
        assert!(plain
            .store_ahead(CIPHERSUITE, provider.crypto(), 0)
            .unwrap());
        assert_eq!(
            postcard::to_allocvec(&plain).unwrap(),
            postcard::to_allocvec(&layout_of(&plain, &plain.ratchet_head)).unwrap()
        );
    }

    #[test]
    fn stored_state_read_back_after_any_confirmed_send_derives_no_key_of_a_sent_or_skipped_generation() {
        // Review of change 27: the thief's copy (PROTOCOL §4.0) taken after
        // each of 12 confirmed sends stored 3 ahead decrypts none of the
        // generations sent, nor the skipped ones, and goes on at the stored
        // head, whose key is the live ratchet's for that generation.
        let provider = OpenMlsRustCrypto::default();
        let configuration = SenderRatchetConfiguration::default();
        let mut live = DualUseRatchet::new(Secret::from_slice(&[9; 32]));
        for sent in 0..12u32 {
            let (generation, _) = live
                .secret_for_encryption(CIPHERSUITE, provider.crypto())
                .unwrap();
            assert_eq!(generation, sent);
            live.delete_secret_for_generation(generation);
            let wrote = live.store_ahead(CIPHERSUITE, provider.crypto(), 3).unwrap();
            assert_eq!(wrote, sent % 4 == 0, "generation {sent}");
            let copy: DualUseRatchet =
                postcard::from_bytes(&postcard::to_allocvec(&live).unwrap()).unwrap();
            let stored = copy.generation();
            assert_eq!(stored, 4 * (sent / 4) + 4, "generation {sent}");
            for old in 0..stored {
                assert!(
                    copy.peek(CIPHERSUITE, provider.crypto(), old, &configuration)
                        .is_err(),
                    "copy after {sent} derives generation {old}"
                );
            }
            let mut ahead = live.clone();
            let mut copy = copy;
            for _ in sent + 1..stored {
                ahead
                    .secret_for_encryption(CIPHERSUITE, provider.crypto())
                    .unwrap();
            }
            assert!(
                ahead
                    .secret_for_encryption(CIPHERSUITE, provider.crypto())
                    .unwrap()
                    == copy
                        .secret_for_encryption(CIPHERSUITE, provider.crypto())
                        .unwrap()
            );
        }
    }

    #[test]
    fn the_stored_head_stops_at_the_last_generation() {
        let provider = OpenMlsRustCrypto::default();
        let mut ratchet = DualUseRatchet::new(Secret::from_slice(&[7; 32]));
        ratchet.ratchet_head.set_generation(u32::MAX - 2);
        assert!(ratchet
            .store_ahead(CIPHERSUITE, provider.crypto(), 16)
            .unwrap());
        assert_eq!(ratchet.stored_head.unwrap().generation(), u32::MAX);
    }
}
