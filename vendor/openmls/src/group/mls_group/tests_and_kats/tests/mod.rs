//! Test and Known Answer Test (KAT) modules for the MLS group.

mod commit_builder_leaf_node_validation;
#[cfg(feature = "virtual-clients-draft")]
mod confirmed_message;
mod decryption_ratchet_updates;
mod external_init;
mod mls_group;
mod past_secrets;
// Pulls in `openmls_sqlite_storage` and `openmls_libcrux_crypto`
// directly, so it is only compiled when both providers are enabled.
#[cfg(all(feature = "sqlite-provider", feature = "libcrux-provider"))]
mod past_secrets_storage_compatibility;
#[cfg(feature = "virtual-clients-draft")]
mod own_ratchets;
#[cfg(feature = "virtual-clients-draft")]
mod own_ratchets_review;
mod proposals;
mod reinit;
mod secret_tree_persistence;
#[cfg(feature = "virtual-clients-draft")]
mod stored_ahead;
#[cfg(feature = "virtual-clients-draft")]
mod unconfirmed_commit;
mod welcome_ratchet_tree;
