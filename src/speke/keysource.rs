//! Where filled requests get their key material: the [`KeySource`] trait
//! (one batched get-or-create call per request) and an in-memory
//! implementation for offline use and tests.

use crate::crypto::{ContentKey, SecureRandom};
use crate::drm::Scheme;
use crate::ids::{ContentId, KeyId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The protocol a key was issued through (kept with stored keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// SPEKE 1.0.
    SpekeV1,
    /// SPEKE 2.0.
    SpekeV2_0,
    /// SPEKE 2.1.
    SpekeV2_1,
    /// Generic CPIX.
    Cpix,
}

impl Protocol {
    /// Short stable name, e.g. `speke-2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::SpekeV1 => "speke-1.0",
            Protocol::SpekeV2_0 => "speke-2.0",
            Protocol::SpekeV2_1 => "speke-2.1",
            Protocol::Cpix => "cpix",
        }
    }
}

/// One key asked for by a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    /// The key id chosen by the encryptor.
    pub kid: KeyId,
    /// The scheme the key will be used with, when known.
    pub scheme: Option<Scheme>,
    /// The IV the request carries (`ContentKey@explicitIV`), if any.
    pub request_iv: Option<[u8; 16]>,
    /// True when the signalling needs an IV (FairPlay) and the request
    /// carries none: the source returns the stored IV or creates one.
    pub wants_iv: bool,
}

/// All keys of one request.
#[derive(Debug, Clone, Copy)]
pub struct KeyBatch<'a> {
    /// The content the keys protect.
    pub content_id: &'a ContentId,
    /// The protocol of the request.
    pub protocol: Protocol,
    /// The keys, in request order.
    pub requests: &'a [KeyRequest],
}

/// A key as handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    /// The key id.
    pub kid: KeyId,
    /// The content key.
    pub key: ContentKey,
    /// The IV stored with the key (created when asked for, or the first IV
    /// a request carried).
    pub iv: Option<[u8; 16]>,
}

/// Why keys could not be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySourceError {
    /// The KID already belongs to another content id of the same tenant.
    #[error("KID {kid} is already bound to content id {existing:?}, not {requested:?}")]
    Conflict {
        /// The key id.
        kid: KeyId,
        /// The content id the key was first issued for.
        existing: String,
        /// The content id of this request.
        requested: String,
    },
    /// The source cannot serve keys right now (storage failure).
    #[error("key storage unavailable: {0}")]
    Unavailable(String),
}

/// Source of content keys: the same KID always yields the same key.
pub trait KeySource {
    /// Returns (creating where needed) every key of `batch`, in request
    /// order. Either all keys are returned or none is created.
    fn get_or_create(&self, batch: &KeyBatch<'_>) -> Result<Vec<IssuedKey>, KeySourceError>;
}

struct Entry {
    content_id: ContentId,
    key: ContentKey,
    iv: Option<[u8; 16]>,
}

/// Keys held in memory only: for offline answers (`cpixd speke answer`) and
/// tests. Lost when dropped.
pub struct MemoryKeySource {
    rng: Arc<dyn SecureRandom>,
    entries: Mutex<HashMap<KeyId, Entry>>,
}

impl MemoryKeySource {
    /// An empty source drawing new keys from `rng`.
    pub fn new(rng: Arc<dyn SecureRandom>) -> Self {
        MemoryKeySource {
            rng,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl KeySource for MemoryKeySource {
    fn get_or_create(&self, batch: &KeyBatch<'_>) -> Result<Vec<IssuedKey>, KeySourceError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| KeySourceError::Unavailable("key map lock poisoned".into()))?;
        // Check every KID first so that a conflict creates nothing.
        for r in batch.requests {
            if let Some(e) = map.get(&r.kid) {
                if &e.content_id != batch.content_id {
                    return Err(KeySourceError::Conflict {
                        kid: r.kid,
                        existing: e.content_id.to_string(),
                        requested: batch.content_id.to_string(),
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(batch.requests.len());
        for r in batch.requests {
            let rng = &*self.rng;
            let e = map.entry(r.kid).or_insert_with(|| Entry {
                content_id: batch.content_id.clone(),
                key: ContentKey::generate(rng),
                iv: r.request_iv,
            });
            if e.iv.is_none() {
                e.iv = match r.request_iv {
                    Some(iv) => Some(iv),
                    None if r.wants_iv => Some(crate::crypto::random_iv(rng, &e.key)),
                    None => None,
                };
            }
            out.push(IssuedKey {
                kid: r.kid,
                key: e.key.clone(),
                iv: e.iv,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;

    fn req(kid: &str, wants_iv: bool) -> KeyRequest {
        KeyRequest {
            kid: KeyId::parse_uuid(kid).unwrap(),
            scheme: None,
            request_iv: None,
            wants_iv,
        }
    }

    #[test]
    fn same_kid_same_key_and_conflicts_create_nothing() {
        let src = MemoryKeySource::new(Arc::new(SeededRandom::new(1)));
        let a = ContentId::new("a").unwrap();
        let b = ContentId::new("b").unwrap();
        let k1 = "11111111-1111-1111-1111-111111111111";
        let k2 = "22222222-2222-2222-2222-222222222222";
        let first = src
            .get_or_create(&KeyBatch {
                content_id: &a,
                protocol: Protocol::SpekeV1,
                requests: &[req(k1, true)],
            })
            .unwrap();
        let again = src
            .get_or_create(&KeyBatch {
                content_id: &a,
                protocol: Protocol::SpekeV1,
                requests: &[req(k1, true)],
            })
            .unwrap();
        assert_eq!(first, again);
        assert!(first[0].iv.is_some());
        assert_ne!(first[0].iv.as_ref(), Some(first[0].key.expose()));
        let err = src
            .get_or_create(&KeyBatch {
                content_id: &b,
                protocol: Protocol::SpekeV1,
                requests: &[req(k2, false), req(k1, false)],
            })
            .unwrap_err();
        assert!(matches!(err, KeySourceError::Conflict { ref existing, .. } if existing == "a"));
        assert_eq!(src.len(), 1, "the conflicting batch created no key");
    }
}
