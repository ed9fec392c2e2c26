//! Unit tests for messages

mod codec;
mod export_group_info;
mod freed_secrets;
mod proposals;
mod welcome;
