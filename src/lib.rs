//! cpixd: a DRM key server speaking SPEKE 1.0/2.0 and DASH-IF CPIX.
//!
//! The pure core (`ids`, `cpix`, `crypto`, `drm`, `speke`) turns the bytes of
//! a key request into the bytes of a filled response without any I/O.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Test helpers shared with the integration tests name the crate `cpixd`.
#[cfg(test)]
extern crate self as cpixd;

pub mod b64;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cpix;
pub mod crypto;
pub mod delivery;
pub mod drm;
pub mod ids;
pub mod keys;
pub mod licence;
pub mod portability;
pub mod prom;
pub mod proxy;
pub mod server;
pub mod sorted;
pub mod speke;
pub mod store;
