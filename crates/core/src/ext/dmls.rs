//! Distributed MLS derivations (docs/PROTOCOL.md §6.4): the values a send
//! group exports so other send groups can import its epoch as an external
//! PSK. Two profiles:
//!
//! - `multi-mls` (1): draft-xue-multi-mls (seed 003) §4/§5 to the letter —
//!   `exportPSK = MLS-Exporter("exportPSK", universe_id, L)`,
//!   `exportPskId = MLS-Exporter("exportPskId", universe_id, L)`, the PSK
//!   proposal's id is `psk_group_id = uint64(epoch) || group_id`;
//! - `distributed-mls` (2): the later draft-xue-distributed-mls as its public
//!   implementations read it — `MLS-Exporter("exporter_psk", psk_id, 32)`
//!   with `psk_id = uint64(epoch) || group_id`.
//!
//! Both: `derived groupid = MLS-Exporter("derivedGroupId", signing_key, L)`.
//!
//! Exporting and storing the PSK is one call so the secret never leaves
//! the core. The committed test data (test/vectors/dmls) is checked here.

use openmls::prelude::*;
use openmls::schedule::PreSharedKeyId;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::client::{credential_with_key, serialize, Client};
use crate::error::{Code, CoreError, CoreResult};

/// Why a DMLS derivation refuses its arguments (seed 003 §4–5).
#[derive(Debug, thiserror::Error)]
enum DmlsError {
    #[error("unknown DMLS profile {0}")]
    UnknownProfile(u8),
    #[error("export length must be 1..255")]
    ExportLength,
    #[error("the multi-mls profile needs the universe identifier")]
    MissingUniverse,
    #[error("the distributed-mls profile exports 32 bytes")]
    DistributedLength,
}

impl crate::error::ErrorCode for DmlsError {
    fn code(&self) -> Code {
        match self {
            Self::UnknownProfile(_) | Self::ExportLength | Self::MissingUniverse | Self::DistributedLength => Code::InvalidArgument,
        }
    }
}

/// A DMLS profile (the code carried in the universe definition).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Profile {
    MultiMls,
    DistributedMls,
}

impl Profile {
    fn from_code(code: u8) -> CoreResult<Self> {
        match code {
            1 => Ok(Profile::MultiMls),
            2 => Ok(Profile::DistributedMls),
            _ => Err(DmlsError::UnknownProfile(code).into()),
        }
    }
}

/// What a send group's epoch contributes, for one profile.
struct Derived {
    psk_id: Vec<u8>,
    /// multi-mls only: the §4 exporter value.
    export_psk_id: Option<Vec<u8>>,
    export_psk: Zeroizing<Vec<u8>>,
    derived_group_id: Vec<u8>,
}

/// `psk_group_id = uint64(epoch) || group_id` (seed 003 §5 COMMIT).
fn psk_group_id(epoch: u64, group_id: &[u8]) -> Vec<u8> {
    let mut id = epoch.to_be_bytes().to_vec();
    id.extend_from_slice(group_id);
    id
}

/// The derivations over any MLS-Exporter (a live group's, or one computed
/// from a given exporter secret for test data).
fn derive(
    exporter: &dyn Fn(&str, &[u8], usize) -> CoreResult<Vec<u8>>,
    profile: Profile,
    group_id: &[u8],
    epoch: u64,
    universe_id: &[u8],
    signing_key: &[u8],
    length: usize,
) -> CoreResult<Derived> {
    if length == 0 || length > 255 {
        return Err(DmlsError::ExportLength.into());
    }
    let psk_id = psk_group_id(epoch, group_id);
    let (export_psk_id, export_psk) = match profile {
        Profile::MultiMls => {
            if universe_id.is_empty() {
                return Err(DmlsError::MissingUniverse.into());
            }
            (Some(exporter("exportPskId", universe_id, length)?), Zeroizing::new(exporter("exportPSK", universe_id, length)?))
        }
        Profile::DistributedMls => {
            if length != 32 {
                return Err(DmlsError::DistributedLength.into());
            }
            (None, Zeroizing::new(exporter("exporter_psk", &psk_id, 32)?))
        }
    };
    let derived_group_id = exporter("derivedGroupId", signing_key, length)?;
    Ok(Derived { psk_id, export_psk_id, export_psk, derived_group_id })
}

#[wasm_bindgen]
impl Client {
    /// DMLS COMMIT input (seed 003 §5): export the PSK of the send group's
    /// current epoch under `profile` (1 multi-mls, 2 distributed-mls) and
    /// register it as an external PSK under `psk_id = uint64(epoch) ‖
    /// group_id`; the secret never leaves the core. Returns the epoch's
    /// public values for `signing_key` (a leaf's public signature key),
    /// concatenated: `psk_id ‖ [exportPskId (length), multi-mls only] ‖
    /// derivedGroupId (length)`.
    #[wasm_bindgen(js_name = dmlsEpoch)]
    pub fn dmls_epoch(&mut self, group_id: &[u8], profile: u8, universe_id: &[u8], length: usize, signing_key: &[u8]) -> Result<Vec<u8>, JsValue> {
        let profile = Profile::from_code(profile)?;
        Ok(self.mutate(|client| {
            let derived = client.read_group(group_id, |group, provider| {
                let exporter = |label: &str, context: &[u8], len: usize| {
                    group.export_secret(provider.crypto(), label, context, len).map_err(|e| CoreError::from_mls("exporter", e))
                };
                derive(&exporter, profile, group_id, group.epoch().as_u64(), universe_id, signing_key, length)
            })?;
            let id = PreSharedKeyId::external(derived.psk_id.clone(), Vec::new());
            id.store(&client.provider, &derived.export_psk).map_err(|e| CoreError::from_mls("storing PSK", e))?;
            let mut out = derived.psk_id;
            out.extend(derived.export_psk_id.unwrap_or_default());
            out.extend(derived.derived_group_id);
            Ok(out)
        })?)
    }

    /// UPDATE with credential rotation (seed 003 §5): an Update proposal in
    /// someone else's send group whose new leaf carries the credential
    /// `identity` with signature key `new_public_key` (an identity of this
    /// client). The envelope is signed with the current leaf's key.
    #[wasm_bindgen(js_name = dmlsProposeCredentialUpdate)]
    pub fn dmls_propose_credential_update(&mut self, group_id: &[u8], identity: &[u8], new_public_key: &[u8]) -> Result<Vec<u8>, JsValue> {
        // A new key equal to the current one would still be a valid Update (no rotation).
        self.prepare_group(group_id, true)?;
        let group = self.groups.get(group_id).ok_or_else(|| CoreError::from(crate::group::GroupLookupError::NotLoaded))?;
        let scheme = group.ciphersuite().signature_algorithm();
        // A leaf's identity stays (RFC 9420 §5.3.1): refused before anything is built.
        crate::credential_succession::check_own(group, &credential_with_key(identity, new_public_key).credential)?;
        self.load_signer(new_public_key, scheme)?;
        let pair = self
            .signers
            .remove(new_public_key)
            .ok_or_else(|| CoreError::new(Code::UnknownSignatureKey, "signature key pair not loaded"))?;
        let credential = credential_with_key(identity, new_public_key);
        let result = self.with_group(group_id, |group, provider, signer| {
            let bundle = NewSignerBundle { signer: &pair, credential_with_key: credential.clone() };
            let (message, _, confirmation) = group
                .propose_self_update_with_new_signer_unconfirmed(provider, signer, bundle, LeafNodeParameters::default())
                .map_err(|e| CoreError::from_mls("creating update proposal", e))?;
            if let Some(c) = confirmation {
                group
                    .confirm_handshake_message(provider.storage(), c.epoch, c.generation)
                    .map_err(|e| CoreError::from_mls("confirming proposal secret", e))?;
            }
            serialize("proposal", &message)
        });
        self.signers.insert(pair.to_public_vec(), pair);
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::invalid_argument;
    use crate::config::ciphersuite;

    /// A TLS variable-length vector (RFC 9420 §2.1.2), for the short ones here.
    fn vl(bytes: &[u8]) -> Vec<u8> {
        let n = bytes.len();
        let mut out = if n < 64 { vec![n as u8] } else { vec![0x40 | (n >> 8) as u8, n as u8] };
        out.extend_from_slice(bytes);
        out
    }

    /// ExpandWithLabel (RFC 9420 §8).
    fn expand_with_label(provider_crypto: &impl openmls_traits::crypto::OpenMlsCrypto, cs: Ciphersuite, secret: &[u8], label: &[u8], context: &[u8], length: usize) -> CoreResult<Zeroizing<Vec<u8>>> {
        let length16 = u16::try_from(length).map_err(|_| invalid_argument("length too large"))?;
        let mut info = length16.to_be_bytes().to_vec();
        info.extend(vl(&[b"MLS 1.0 ".as_slice(), label].concat()));
        info.extend(vl(context));
        let out = provider_crypto
            .hkdf_expand(cs.hash_algorithm(), secret, &info, length)
            .map_err(|e| CoreError::new(Code::Internal, format!("expand: {e:?}")))?;
        Ok(Zeroizing::new(out.as_slice().to_vec()))
    }

    /// MLS-Exporter from a bare exporter secret (RFC 9420 §8.5): the test data
    /// is computed from fixed exporter secrets, not from live groups.
    fn exporter_from_secret(crypto: &impl openmls_traits::crypto::OpenMlsCrypto, cs: Ciphersuite, exporter_secret: &[u8], label: &[u8], context: &[u8], length: usize) -> CoreResult<Vec<u8>> {
        let derived = expand_with_label(crypto, cs, exporter_secret, label, &[], cs.hash_length())?;
        let hashed = crypto.hash(cs.hash_algorithm(), context).map_err(|e| CoreError::new(Code::Internal, format!("hash: {e:?}")))?;
        Ok(expand_with_label(crypto, cs, &derived, b"exported", &hashed, length)?.to_vec())
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The exporter used for test data is RFC 9420's: mlswg key-schedule
    /// vector, ciphersuite 1, epoch 0 (mls-implementations, test-vectors).
    #[test]
    fn exporter_from_secret_matches_mlswg_key_schedule() {
        let crypto = *crate::randomness::seeded_rust_crypto().unwrap();
        let cs = ciphersuite(1).unwrap();
        let got = exporter_from_secret(
            &crypto,
            cs,
            &hex("5a097e149f2a375d0b9e1d1f4dc3a9c6c1788df888e5441f41a8791f4dc56cea"),
            // The vector's label is used as the text it is (as openmls' KAT does).
            b"9ba13d54ecdec7cbefcb47b4268d7b1990fabc6d6e67681e167959389d84e4e4",
            &hex("884f1af892ab002f5be4c5d5081ade9e0e6418c6ea7a9a92e90534f19dcef785"),
            32,
        )
        .unwrap();
        assert_eq!(got, hex("dbce4e25e59ab4dfa6f6200f113ed08393cf6e7286d024811141c6a4dd11c0cb"));
    }

    #[test]
    fn psk_group_id_layout() {
        assert_eq!(psk_group_id(0x0102, b"g"), vec![0, 0, 0, 0, 0, 0, 1, 2, b'g']);
    }

    #[test]
    fn profiles_differ_and_check_lengths() {
        let exp = |label: &str, ctx: &[u8], len: usize| -> CoreResult<Vec<u8>> { Ok([label.as_bytes(), ctx].concat().into_iter().cycle().take(len).collect()) };
        let a = derive(&exp, Profile::MultiMls, b"g", 3, b"u", b"k", 32).unwrap();
        let b = derive(&exp, Profile::DistributedMls, b"g", 3, b"u", b"k", 32).unwrap();
        assert_eq!(a.psk_id, b.psk_id);
        assert_ne!(*a.export_psk, *b.export_psk);
        assert!(a.export_psk_id.is_some() && b.export_psk_id.is_none());
        assert!(derive(&exp, Profile::DistributedMls, b"g", 3, b"u", b"k", 48).is_err());
        assert!(derive(&exp, Profile::MultiMls, b"g", 3, b"", b"k", 32).is_err());
    }

    fn vectors_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/vectors/dmls/dmls-derivations.json")
    }

    /// The group states of the test data: epochs 0 and 1 of the first
    /// ciphersuite-1 case of mlswg's key-schedule.json.
    const GROUP_ID: &str = "a897b53575b4dd35fed4466e4e714bfa949eaa72e616a9c68a47b39cb7a60d2e";
    const EXPORTER_SECRETS: [&str; 2] = ["5a097e149f2a375d0b9e1d1f4dc3a9c6c1788df888e5441f41a8791f4dc56cea", "047d983048b132b79ea4e2e578afd02a0f4717d166cefe46e43e2e965b5c9f4e"];
    /// RFC 8032 §7.1 test 1's public key: any leaf signature key will do.
    const SIGNING_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn to_hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn vector_cases() -> serde_json::Value {
        let crypto = *crate::randomness::seeded_rust_crypto().unwrap();
        let cs = ciphersuite(1).unwrap();
        let mut cases = Vec::new();
        for (epoch, secret) in EXPORTER_SECRETS.iter().enumerate() {
            for (profile, name, length) in [(Profile::MultiMls, "multi-mls", 32), (Profile::MultiMls, "multi-mls", 48), (Profile::DistributedMls, "distributed-mls", 32)] {
                let secret = hex(secret);
                let exporter = |label: &str, context: &[u8], len: usize| exporter_from_secret(&crypto, cs, &secret, label.as_bytes(), context, len);
                // seed 003 §6.1: this group is taken to be the founder's, so universe_id = group_id.
                let d = derive(&exporter, profile, &hex(GROUP_ID), epoch as u64, &hex(GROUP_ID), &hex(SIGNING_KEY), length).unwrap();
                let mut case = serde_json::json!({
                    "profile": name, "cipher_suite": 1, "exporter_secret": to_hex(&secret), "group_id": GROUP_ID, "epoch": epoch,
                    "universe_id": GROUP_ID, "signing_key": SIGNING_KEY, "export_length": length,
                    "psk_id": to_hex(&d.psk_id), "export_psk": to_hex(&d.export_psk), "derived_group_id": to_hex(&d.derived_group_id),
                });
                if let Some(id) = &d.export_psk_id {
                    case["export_psk_id"] = to_hex(id).into();
                }
                cases.push(case);
            }
        }
        serde_json::Value::Array(cases)
    }

    /// The committed test data reproduces.
    #[test]
    fn committed_test_data_reproduces() {
        let text = std::fs::read_to_string(vectors_path()).unwrap();
        let committed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(committed, vector_cases());
    }

    /// `cargo test -p paired-mls-core write_dmls_test_data -- --ignored` (re)writes the test data.
    #[test]
    #[ignore]
    fn write_dmls_test_data() {
        std::fs::write(vectors_path(), serde_json::to_string_pretty(&vector_cases()).unwrap() + "\n").unwrap();
    }
}
