//! Measured and verified boot: SHA-256, the signed boot manifest, the
//! measurement log and the configuration digest (docs/measured-boot.md).

pub mod config_digest;
pub mod manifest;
pub mod mlog;
pub mod sha256;

pub use config_digest::config_digest;
