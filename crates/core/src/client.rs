//! `Client`: one device's MLS state — its provider (crypto + journaled
//! storage), the groups it is in, and its signature keys. The TS layer owns
//! one `Client` per device and persists the storage batch after every
//! mutating call.

use std::collections::HashMap;

use openmls::prelude::*;
use openmls::schedule::{ExternalPsk, PreSharedKeyId, Psk};
use openmls_traits::storage::StorageProvider as _;
use openmls_basic_credential::SignatureKeyPair;

use crate::signer::ClientSigner;
use openmls_traits::OpenMlsProvider;
use wasm_bindgen::prelude::*;

use crate::batch;
pub(crate) use crate::codec::{parse_message, serialize};
use crate::config::{ciphersuite, CapabilitiesSpec};
use crate::error::{invalid_argument, Code, CoreError, CoreResult};
use crate::hooks::Hooks;
use crate::lifetime::{lifetime_from_now, DEFAULT_LIFETIME_SECONDS};
use crate::provider::Provider;

const MAX_LIFETIME_SECONDS: u64 = 100 * 365 * 24 * 3600;

#[wasm_bindgen]
pub struct Client {
    pub(crate) provider: Provider,
    /// Groups loaded from storage, by group id.
    pub(crate) groups: HashMap<Vec<u8>, MlsGroup>,
    /// Node tree hashes of groups taken out of `groups` (after a staged
    /// commit is discarded, or a failed call), by group id: a group loaded
    /// again takes them if its tree is the same (engine change 13), instead
    /// of hashing the whole tree again for its next commit.
    pub(crate) tree_hashes: HashMap<Vec<u8>, openmls::treesync::TreeHashes>,
    /// The public group `publicRemovedLeaves` last built, with the exact
    /// GroupInfo bytes it was built from (public_group.rs): a DS checking
    /// many intents against one epoch's GroupInfo verifies its tree once.
    /// A `Cell`, taken out for the call, so that the check stays a read
    /// (`&self`): the association hook it runs may call this client again.
    pub(crate) intent_check_group: std::cell::Cell<Option<(Vec<u8>, openmls::prelude::PublicGroup)>>,
    /// Signature key pairs loaded from storage, by public key.
    pub(crate) signers: HashMap<Vec<u8>, ClientSigner>,
    /// VC operation trees saved by `pinVcOperationTree`, by epoch id.
    /// This client's id among the live clients of the instance; extensions
    /// keep per-client state (e.g. the association hook) under it.
    pub(crate) association_slot: u32,
    /// The protocol extensions' hooks (hooks.rs, set by ext/mod.rs).
    pub(crate) hooks: &'static Hooks,
    /// The last batch handed to JS by `takeBatch` (a view of it), reused
    /// by the next one; JS wipes it once decoded, and so does a drop.
    batch_buffer: zeroize::Zeroizing<Vec<u8>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        (self.hooks.client_dropped)(self.association_slot);
    }
}

/// Build a `CredentialWithKey` for a basic credential.
pub(crate) fn credential_with_key(identity: &[u8], signature_key: &[u8]) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(identity.to_vec()).into(),
        signature_key: signature_key.to_vec().into(),
    }
}

thread_local! {
    static NEXT_CLIENT_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Which cached groups a mutating operation can change in memory, so
/// which ones a failure must drop (`Client::mutate_reaching`).
#[derive(Clone, Copy)]
pub(crate) enum Reach<'a> {
    /// Any of them (the operation holds the whole client).
    Any,
    /// Only this group (the operation was handed `&mut` to it alone).
    Group(&'a [u8]),
    /// Only this group, and only if the operation wrote to storage:
    /// openmls' `process_message` changes nothing in memory that it does
    /// not also write.
    GroupUnlessUnwritten(&'a [u8]),
    /// None: the operation caches only the groups it creates, as its last,
    /// infallible step.
    NewGroups,
}

/// Largest batch buffer kept between `takeBatch` calls (bytes).
const BATCH_BUFFER_KEPT: usize = 1 << 16;

impl Client {
    /// A client with empty storage and these extension hooks; a typed
    /// `INTERNAL` error when its provider's generator cannot be seeded
    /// (no randomness: `provider::seeded_rust_crypto`).
    pub(crate) fn with_hooks(hooks: &'static Hooks) -> CoreResult<Client> {
        Ok(Client::with_provider(Provider::new()?, hooks))
    }

    /// A client with `provider` (empty storage) and `hooks`.
    fn with_provider(provider: Provider, hooks: &'static Hooks) -> Client {
        let association_slot = NEXT_CLIENT_ID.with(|next| {
            let id = next.get();
            next.set(id.wrapping_add(1));
            id
        });
        Client { provider, groups: HashMap::new(), tree_hashes: HashMap::new(), intent_check_group: Default::default(), signers: HashMap::new(), association_slot, hooks, batch_buffer: Default::default() }
    }

    /// The proposal expander of this client's groups.
    pub(crate) fn expander(&self) -> std::sync::Arc<dyn openmls::group::ProposalExpander> {
        (self.hooks.expander)(self.association_slot)
    }

    /// Run a mutating operation: on error, storage goes back to its last
    /// checkpoint and cached groups are dropped (they are reloaded from
    /// storage on next use), so a failed call leaves no half-applied state.
    pub(crate) fn mutate<T>(&mut self, op: impl FnOnce(&mut Self) -> CoreResult<T>) -> CoreResult<T> {
        self.mutate_reaching(Reach::Any, op)
    }

    /// `mutate` for an operation that can change no cached group but the
    /// ones `reach` names: on error only those are dropped. A reload puts
    /// a sender's ratchet at its stored head (engine change 27), and a
    /// large group costs a full decode, so a failure one party can cause
    /// (a tampered message, a bad Welcome) must not reload every group.
    pub(crate) fn mutate_reaching<T>(&mut self, reach: Reach<'_>, op: impl FnOnce(&mut Self) -> CoreResult<T>) -> CoreResult<T> {
        let writes_before = self.provider.storage().write_count();
        let result = op(self);
        if result.is_err() {
            let wrote = self.provider.storage().write_count() != writes_before;
            self.provider.storage().rollback();
            match reach {
                Reach::Any => {
                    for (group_id, group) in std::mem::take(&mut self.groups) {
                        self.keep_tree_hashes(group_id, group);
                    }
                }
                Reach::Group(group_id) => self.drop_cached(group_id),
                // openmls' processing changes the group in memory only as
                // it writes it (the ratchet step of a decrypted message,
                // applied last, `MlsGroup::process_unverified_message`),
                // so a refusal that wrote nothing left the group as stored.
                Reach::GroupUnlessUnwritten(group_id) if wrote => self.drop_cached(group_id),
                Reach::GroupUnlessUnwritten(_) | Reach::NewGroups => {}
            }
        }
        result
    }

    /// Drop one cached group, keeping its tree hashes for the reload.
    fn drop_cached(&mut self, group_id: &[u8]) {
        if let Some(group) = self.groups.remove(group_id) {
            self.keep_tree_hashes(group_id.to_vec(), group);
        }
    }

    /// Drop `group` (no longer in `groups`) but keep its node tree hashes
    /// for the next load of the group; `MlsGroup::adopt_tree_hashes` takes
    /// them only for the same tree (same tree hash), so hashes of a tree
    /// that storage no longer holds are never used.
    pub(crate) fn keep_tree_hashes(&mut self, group_id: Vec<u8>, mut group: MlsGroup) {
        self.tree_hashes.insert(group_id, group.take_tree_hashes());
    }

    /// Find (loading from storage when needed) the signature key pair.
    pub(crate) fn load_signer(&mut self, public_key: &[u8], scheme: SignatureScheme) -> CoreResult<()> {
        if self.signers.contains_key(public_key) {
            return Ok(());
        }
        let pair = SignatureKeyPair::read(self.provider.storage(), public_key, scheme)
            .ok_or_else(|| CoreError::new(Code::UnknownSignatureKey, "no signature key pair stored for this public key"))?;
        self.signers.insert(public_key.to_vec(), ClientSigner::new(pair));
        Ok(())
    }

    /// Store a signature key pair and cache it; returns its public key.
    pub(crate) fn keep_signer(&mut self, pair: SignatureKeyPair) -> CoreResult<Vec<u8>> {
        pair.store(self.provider.storage())
            .map_err(|e| CoreError::new(Code::Storage, format!("storing signature keys: {e}")))?;
        let public = pair.to_public_vec();
        self.signers.insert(public.clone(), ClientSigner::new(pair));
        Ok(public)
    }

    /// Generate, store and cache a signature key pair; returns its public
    /// key. Through the provider, so Ed25519 keys come from the native
    /// curves when installed. Out of line: two callers, one copy in the wasm.
    #[inline(never)]
    pub(crate) fn generate_signer(&mut self, scheme: SignatureScheme) -> CoreResult<Vec<u8>> {
        let (private, public) = self
            .provider
            .crypto()
            .signature_key_gen(scheme)
            .map_err(|e| CoreError::from_mls("generating signature keys", e))?;
        self.keep_signer(SignatureKeyPair::from_raw(scheme, private, public))
    }

    pub(crate) fn signer(&self, public_key: &[u8]) -> CoreResult<&ClientSigner> {
        self.signers
            .get(public_key)
            .ok_or_else(|| CoreError::new(Code::UnknownSignatureKey, "signature key pair not loaded"))
    }
}

#[wasm_bindgen]
impl Client {
    /// A new, empty client with this one's hooks, its random generator
    /// seeded from this one's own (`randomness::forked_rust_crypto`), not
    /// from the system source: the core a transaction's rollback reloads
    /// into (ts/mls/client.ts `#atomically`), which a failing
    /// `getRandomValues` must not refuse. Nothing else is carried over:
    /// the caller sets the leaf association and restores storage.
    #[wasm_bindgen(js_name = forkEmpty)]
    pub fn fork_empty(&self) -> Result<Client, JsValue> {
        Ok(Client::with_provider(self.provider.fork_empty()?, self.hooks))
    }

    /// Load persisted entries (the flat encoding of `batch.rs`) into this
    /// client's storage. Used on a fresh instance before any other call.
    pub fn restore(&mut self, entries: &[u8]) -> Result<(), JsValue> {
        let entries = batch::decode_puts(entries)?;
        self.provider.storage().load_entries(entries);
        self.groups.clear();
        Ok(())
    }

    /// Net storage changes since the previous call, flat-encoded. The TS
    /// layer calls this after every successful mutating call and writes the
    /// batch atomically to its storage adapter.
    ///
    /// The result is a view of this client's batch buffer in wasm memory,
    /// not a copy: valid only until the next call into the core, and
    /// holding secrets (epoch secrets, private keys), so the caller copies
    /// out what it needs and then zero-fills it (`decodeBatch`, then
    /// `fill(0)`). A returned copy would leave the encoding behind in freed
    /// wasm memory; the buffer is wiped again before its next use.
    #[wasm_bindgen(js_name = takeBatch)]
    pub fn take_batch(&mut self) -> js_sys::Uint8Array {
        // A buffer grown by a large batch (a join at n = 10,000: MBs) is not kept.
        if self.batch_buffer.capacity() > BATCH_BUFFER_KEPT {
            self.batch_buffer = zeroize::Zeroizing::new(Vec::new()); // the old one is wiped as it drops
        }
        self.provider.storage().take_batch_encoded(&mut self.batch_buffer);
        // SAFETY: the view is read and wiped by the caller before it calls
        // into the core again (nothing else can grow memory or touch the buffer meanwhile).
        unsafe { js_sys::Uint8Array::view(&self.batch_buffer) }
    }

    /// Generate and store a signature key pair for `ciphersuite`'s scheme.
    /// Returns the public key.
    #[wasm_bindgen(js_name = generateSignatureKeyPair)]
    pub fn generate_signature_key_pair(&mut self, ciphersuite_code: u16) -> Result<Vec<u8>, JsValue> {
        Ok(self.mutate(|client| {
            let cs = ciphersuite(ciphersuite_code)?;
            client.generate_signer(cs.signature_algorithm())
        })?)
    }

    /// Create `count` KeyPackages (RFC 9420 §10) for the basic credential
    /// `identity` and signature key `public_key`. Private keys stay in
    /// storage until a Welcome consumes them (last-resort ones are kept).
    /// Returns each KeyPackage as a serialized MLSMessage.
    #[wasm_bindgen(js_name = createKeyPackages)]
    pub fn create_key_packages(
        &mut self,
        identity: &[u8],
        public_key: &[u8],
        ciphersuite_code: u16,
        count: u32,
        last_resort: bool,
        lifetime_seconds: Option<u64>,
        capabilities: JsValue,
    ) -> Result<Vec<js_sys::Uint8Array>, JsValue> {
        if count == 0 || count > 10_000 {
            return Err(invalid_argument("count must be between 1 and 10000").into());
        }
        // openmls adds the lifetime to the current time unchecked.
        if lifetime_seconds.is_some_and(|s| s == 0 || s > MAX_LIFETIME_SECONDS) {
            return Err(invalid_argument("lifetime must be between 1 second and 100 years").into());
        }
        let capabilities: CapabilitiesSpec = if capabilities.is_undefined() || capabilities.is_null() {
            CapabilitiesSpec::default()
        } else {
            serde_wasm_bindgen::from_value(capabilities).map_err(|e| invalid_argument(format!("capabilities: {e}")))?
        };
        let packages = self.mutate(|client| {
            let cs = ciphersuite(ciphersuite_code)?;
            client.load_signer(public_key, cs.signature_algorithm())?;
            let signer = client.signer(public_key)?;
            let mut out = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let mut builder = KeyPackage::builder()
                    .leaf_node_capabilities(capabilities.to_capabilities())
                    .leaf_node_extensions(capabilities.leaf_extensions()?)
                    .key_package_lifetime(lifetime_from_now(lifetime_seconds.unwrap_or(DEFAULT_LIFETIME_SECONDS))?);
                if last_resort {
                    builder = builder.mark_as_last_resort();
                }
                let bundle = builder
                    .build(cs, &client.provider, signer, credential_with_key(identity, public_key))
                    .map_err(|e| CoreError::from_mls("building key package", e))?;
                let message = MlsMessageOut::from(bundle.key_package().clone());
                out.push(js_sys::Uint8Array::from(serialize("key package", &message)?.as_slice()));
            }
            Ok(out)
        })?;
        Ok(packages)
    }

    /// Register an external PSK (RFC 9420 §8.4) under `psk_id`.
    #[wasm_bindgen(js_name = storeExternalPsk)]
    pub fn store_external_psk(&mut self, psk_id: &[u8], secret: &[u8]) -> Result<(), JsValue> {
        if psk_id.is_empty() || secret.is_empty() {
            return Err(invalid_argument("PSK id and secret must be non-empty").into());
        }
        Ok(self.mutate(|client| {
            // The nonce is irrelevant for storage (the PSK is stored by id);
            // a fresh one is drawn when the PSK is proposed.
            let id = PreSharedKeyId::external(psk_id.to_vec(), Vec::new());
            id.store(&client.provider, secret).map_err(|e| CoreError::from_mls("storing PSK", e))
        })?)
    }

    /// Forget an external PSK.
    #[wasm_bindgen(js_name = deleteExternalPsk)]
    pub fn delete_external_psk(&mut self, psk_id: &[u8]) -> Result<(), JsValue> {
        Ok(self.mutate(|client| {
            let psk = Psk::External(ExternalPsk::new(psk_id.to_vec()));
            client
                .provider
                .storage()
                .delete_psk(&psk)
                .map_err(|e| CoreError::new(Code::Storage, format!("deleting PSK: {e}")))
        })?)
    }

    /// Parse an MLSMessage and report its wire format, without processing it.
    #[wasm_bindgen(js_name = inspectWireFormat)]
    pub fn inspect_wire_format(bytes: &[u8]) -> Result<InspectedWireFormat, JsValue> {
        let message = parse_message(bytes)?;
        Ok(match message.extract() {
            MlsMessageBodyIn::PublicMessage(_) => InspectedWireFormat::Public,
            MlsMessageBodyIn::PrivateMessage(_) => InspectedWireFormat::Private,
            MlsMessageBodyIn::Welcome(_) => InspectedWireFormat::Welcome,
            MlsMessageBodyIn::GroupInfo(_) => InspectedWireFormat::GroupInfo,
            MlsMessageBodyIn::KeyPackage(_) => InspectedWireFormat::KeyPackage,
            #[allow(unreachable_patterns)]
            _ => InspectedWireFormat::Other,
        })
    }

    /// Decode an MLSMessage and encode it again (RFC 9420 §6). Equal bytes
    /// show the message is in canonical TLS encoding.
    #[wasm_bindgen(js_name = reencodeMessage)]
    pub fn reencode_message(bytes: &[u8]) -> Result<Vec<u8>, JsValue> {
        Ok(serialize("MLS message", &parse_message(bytes)?)?)
    }

    /// Validate a serialized KeyPackage (signature, lifetime, ciphersuite)
    /// and return its identity and signature key.
    #[wasm_bindgen(js_name = inspectKeyPackage, unchecked_return_type = "KeyPackageInfo")]
    pub fn inspect_key_package(&self, bytes: &[u8]) -> Result<JsValue, JsValue> {
        let key_package = validate_key_package(&self.provider, bytes)?;
        let key_package_ref = key_package
            .hash_ref(self.provider.crypto())
            .map_err(|e| CoreError::from_mls("key package reference", e))?;
        Ok(crate::inspect::key_package(&key_package, key_package_ref.as_slice().to_vec())?)
    }
}

pub(crate) fn validate_key_package(provider: &Provider, bytes: &[u8]) -> CoreResult<KeyPackage> {
    match parse_message(bytes)?.extract() {
        MlsMessageBodyIn::KeyPackage(kp) => kp
            .validate(provider.crypto(), ProtocolVersion::Mls10)
            .map_err(|e| CoreError::new(Code::InvalidKeyPackage, format!("invalid key package: {e}"))),
        _ => Err(invalid_argument("expected a KeyPackage message")),
    }
}

/// Wire format of an MLSMessage (RFC 9420 §6), as `inspectWireFormat`
/// reports it (a string enum: TypeScript sees the union of its values).
#[wasm_bindgen]
#[derive(Clone, Copy)]
pub enum InspectedWireFormat {
    Public = "public",
    Private = "private",
    Welcome = "welcome",
    GroupInfo = "group_info",
    KeyPackage = "key_package",
    /// A wire format this engine decodes but does not name.
    Other = "other",
}
