//! The openmls provider of one client: Rust crypto compiled to wasm and the
//! journaled key/value storage whose batches the TS layer persists.

use openmls_rust_crypto::RustCrypto;
use openmls_traits::{crypto::OpenMlsCrypto, types::Ciphersuite, OpenMlsProvider};

use crate::storage::JournalStorage;

#[derive(Default)]
pub struct Provider {
    crypto: RustCrypto,
    storage: JournalStorage,
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = JournalStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }
    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}

/// RFC 9420 ciphersuites the Rust crypto provider implements.
pub fn supported_ciphersuites() -> Vec<u16> {
    let crypto = RustCrypto::default();
    crypto
        .supported_ciphersuites()
        .into_iter()
        .map(|cs: Ciphersuite| cs as u16)
        .collect()
}
