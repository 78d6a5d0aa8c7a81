//! Key store backends. `embedded` is the default: a crash-safe redb file in
//! the data directory, pure Rust, no server to run.

pub mod embedded;
pub mod licence_log;

pub use embedded::EmbeddedStore;
