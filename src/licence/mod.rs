//! The player side of DRM: DRM tokens and the signing keys that verify
//! them ([`token`], [`Signers`]), the ClearKey licence and HLS AES-128 key
//! built from the tenant's stored keys ([`clearkey`]), and the licence
//! servers behind cpixd to which Widevine, PlayReady and FairPlay
//! challenges are forwarded unchanged ([`servers`]).

pub mod clearkey;
pub mod log;
pub mod servers;
pub mod stats;
pub mod token;

use crate::ids::SystemId;
use crate::keys::signing::SigningKey;
use crate::keys::{KeyStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A DRM system of the player side, as named in URLs, tokens and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DrmSystem {
    /// W3C ClearKey (licences served by cpixd).
    ClearKey,
    /// Google Widevine (licences proxied).
    Widevine,
    /// Microsoft PlayReady (licences proxied).
    PlayReady,
    /// Apple FairPlay Streaming (licences proxied).
    FairPlay,
    /// HLS AES-128 (raw keys served by cpixd).
    Aes128,
}

impl DrmSystem {
    /// Every system.
    pub const ALL: [DrmSystem; 5] = [
        DrmSystem::ClearKey,
        DrmSystem::Widevine,
        DrmSystem::PlayReady,
        DrmSystem::FairPlay,
        DrmSystem::Aes128,
    ];

    /// The systems whose licences cpixd forwards to a licence server.
    pub const PROXIED: [DrmSystem; 3] = [
        DrmSystem::Widevine,
        DrmSystem::PlayReady,
        DrmSystem::FairPlay,
    ];

    /// The lower-case name used in URLs and tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            DrmSystem::ClearKey => "clearkey",
            DrmSystem::Widevine => "widevine",
            DrmSystem::PlayReady => "playready",
            DrmSystem::FairPlay => "fairplay",
            DrmSystem::Aes128 => "aes128",
        }
    }

    /// The name the Cloud Video Kit API shows (`Widevine`, `PlayReady`,
    /// `Fairplay`, …).
    pub fn display_name(self) -> &'static str {
        match self {
            DrmSystem::ClearKey => "ClearKey",
            DrmSystem::Widevine => "Widevine",
            DrmSystem::PlayReady => "PlayReady",
            DrmSystem::FairPlay => "Fairplay",
            DrmSystem::Aes128 => "AES-128",
        }
    }

    /// The DASH-IF system id.
    pub fn system_id(self) -> SystemId {
        match self {
            DrmSystem::ClearKey => SystemId::DASHIF_CLEARKEY,
            DrmSystem::Widevine => SystemId::WIDEVINE,
            DrmSystem::PlayReady => SystemId::PLAYREADY,
            DrmSystem::FairPlay => SystemId::FAIRPLAY,
            DrmSystem::Aes128 => SystemId::HLS_AES128,
        }
    }

    /// Parses a name, ignoring case.
    pub fn parse(name: &str) -> Option<DrmSystem> {
        DrmSystem::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// How long a node trusts its copy of a tenant's signing keys before it
/// reads them again (another node may have rotated them).
const SIGNERS_TTL: Duration = Duration::from_secs(30);

/// Least time between two reads of a tenant's signing keys prompted by a
/// token naming a version not known here.
const REFRESH_MIN: Duration = Duration::from_secs(1);

/// A tenant's signing keys and when they were read.
type Cached = (Instant, Arc<Vec<SigningKey>>);

/// The tenants' signing keys, read from the store and kept for a while.
#[derive(Default)]
pub struct Signers {
    cache: RwLock<HashMap<String, Cached>>,
    /// When a token last made a tenant's keys be read again.
    refreshed: std::sync::Mutex<HashMap<String, Instant>>,
}

impl Signers {
    /// The tenant's keys, newest first (created on first use).
    pub async fn keys(
        &self,
        store: &dyn KeyStore,
        tenant: &str,
    ) -> Result<Arc<Vec<SigningKey>>, StoreError> {
        if let Ok(cache) = self.cache.read() {
            if let Some((at, keys)) = cache.get(tenant) {
                if at.elapsed() < SIGNERS_TTL {
                    return Ok(keys.clone());
                }
            }
        }
        let keys = Arc::new(store.signing_keys(tenant).await?);
        self.put(tenant, keys.clone());
        Ok(keys)
    }

    /// The keys to verify a token with that names key version `wanted`:
    /// the kept ones, read again from the store when they lack it (a
    /// rotation on another node), at most once a second per tenant.
    pub async fn keys_for_token(
        &self,
        store: &dyn KeyStore,
        tenant: &str,
        wanted: Option<u32>,
    ) -> Result<Arc<Vec<SigningKey>>, StoreError> {
        let keys = self.keys(store, tenant).await?;
        let Some(wanted) = wanted else {
            return Ok(keys);
        };
        if keys.iter().any(|k| k.version == wanted) {
            return Ok(keys);
        }
        {
            let Ok(mut refreshed) = self.refreshed.lock() else {
                return Ok(keys);
            };
            if refreshed
                .get(tenant)
                .is_some_and(|at| at.elapsed() < REFRESH_MIN)
            {
                return Ok(keys);
            }
            refreshed.insert(tenant.to_owned(), Instant::now());
        }
        let keys = Arc::new(store.signing_keys(tenant).await?);
        self.put(tenant, keys.clone());
        Ok(keys)
    }

    /// Rotates the tenant's key in the store and keeps the result.
    pub async fn rotate(
        &self,
        store: &dyn KeyStore,
        tenant: &str,
        grace: Duration,
    ) -> Result<Arc<Vec<SigningKey>>, StoreError> {
        let keys = Arc::new(store.rotate_signing_key(tenant, grace).await?);
        self.put(tenant, keys.clone());
        Ok(keys)
    }

    fn put(&self, tenant: &str, keys: Arc<Vec<SigningKey>>) {
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(tenant.to_owned(), (Instant::now(), keys));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in DrmSystem::ALL {
            assert_eq!(DrmSystem::parse(s.as_str()), Some(s));
            assert_eq!(DrmSystem::parse(&s.as_str().to_uppercase()), Some(s));
        }
        assert_eq!(DrmSystem::parse("vmx"), None);
        assert_eq!(DrmSystem::FairPlay.display_name(), "Fairplay");
    }
}
