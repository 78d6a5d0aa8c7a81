//! A bounded cache of recent SPEKE responses. A repeated request (same
//! tenant, endpoint, version header and body bytes) for keys that already
//! exist has exactly the same answer — keys never change once issued and
//! signalling is deterministic — so it is served without parsing again.
//! Only clear-key responses to requests without recipients are cached; the
//! entries are zeroized when evicted.

use crate::crypto::SecretBytes;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// A cached answer.
#[derive(Clone)]
pub struct Cached {
    /// The response body.
    pub body: Arc<SecretBytes>,
    /// Keys in it (for the metrics).
    pub keys: usize,
    /// Its content id (for the log).
    pub content_id: String,
    /// SPEKE 2 headers?
    pub v2: bool,
    /// The `X-Speke-Version` to echo (SPEKE 2 answers only).
    pub version: Option<String>,
}

impl Cached {
    /// The body as `Bytes` sharing the cached buffer (no copy).
    pub fn body_bytes(&self) -> Bytes {
        Bytes::from_owner(Shared(self.body.clone()))
    }
}

/// A cached body lent to a response.
struct Shared(Arc<SecretBytes>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.expose()
    }
}

/// What identifies a request: tenant, endpoint and version header framed
/// together, and the body bytes. Looked up by a fast 128-bit hash and
/// compared in full on a hit, so a hash collision can never serve another
/// request's answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    hash: u128,
    scope: String,
    body: Bytes,
}

impl Key {
    fn size(&self) -> usize {
        self.scope.len() + self.body.len()
    }
}

struct Entry {
    key: Key,
    value: Cached,
}

#[derive(Default)]
struct Inner {
    map: HashMap<u128, Entry>,
    order: VecDeque<u128>,
    bytes: usize,
}

/// The cache: at most `max_bytes` of requests and responses, oldest out first.
pub struct ResponseCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl ResponseCache {
    /// A cache holding at most `max_bytes` (0 disables it).
    pub fn new(max_bytes: usize) -> Self {
        ResponseCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The key of a request.
    pub fn key(tenant: &str, endpoint: &str, version: Option<&str>, body: &Bytes) -> Key {
        let mut scope = String::with_capacity(tenant.len() + endpoint.len() + 16);
        for part in [tenant, endpoint, version.unwrap_or("")] {
            scope.push_str(&part.len().to_string());
            scope.push(':');
            scope.push_str(part);
        }
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(scope.as_bytes());
        h.update(body);
        Key {
            hash: h.digest128(),
            scope,
            body: body.clone(),
        }
    }

    /// The cached answer to exactly this request.
    pub fn get(&self, key: &Key) -> Option<Cached> {
        if self.max_bytes == 0 {
            return None;
        }
        let inner = self.inner.lock().ok()?;
        let entry = inner.map.get(&key.hash)?;
        (entry.key == *key).then(|| entry.value.clone())
    }

    /// Remembers an answer; entries over a quarter of the budget are not kept.
    pub fn put(&self, key: Key, value: Cached) {
        let size = value.body.expose().len() + key.size();
        if size > self.max_bytes / 4 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let hash = key.hash;
        if inner.map.contains_key(&hash) {
            return;
        }
        inner.map.insert(hash, Entry { key, value });
        inner.order.push_back(hash);
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.map.remove(&old) {
                inner.bytes -= gone.value.body.expose().len() + gone.key.size();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Cached {
        Cached {
            body: Arc::new(SecretBytes::new(vec![1; n])),
            keys: 1,
            content_id: "c".into(),
            v2: true,
            version: Some("2.0".into()),
        }
    }

    fn key(n: u8) -> Key {
        ResponseCache::key("t", "speke2", None, &Bytes::from(vec![n; 8]))
    }

    #[test]
    fn keys_separate_tenants_and_versions_and_budget_evicts_oldest() {
        let body = Bytes::from_static(b"body");
        let a = ResponseCache::key("t1", "speke2", Some("2.0"), &body);
        assert!(a != ResponseCache::key("t2", "speke2", Some("2.0"), &body));
        assert!(a != ResponseCache::key("t1", "speke2", Some("2.1"), &body));
        assert!(a != ResponseCache::key("t1", "cpix", Some("2.0"), &body));
        // Framing: moving a character between parts changes the key.
        assert!(
            ResponseCache::key("ab", "c", None, &body)
                != ResponseCache::key("a", "bc", None, &body)
        );
        let c = ResponseCache::new(1000);
        for i in 0..10u8 {
            c.put(key(i), entry(180));
        }
        assert!(c.get(&key(0)).is_none(), "oldest evicted");
        assert!(c.get(&key(9)).is_some());
        c.put(key(99), entry(900));
        assert!(
            c.get(&key(99)).is_none(),
            "larger than a quarter of the budget"
        );
        let off = ResponseCache::new(0);
        off.put(key(1), entry(1));
        assert!(off.get(&key(1)).is_none());
    }

    #[test]
    fn a_hash_match_alone_never_serves_another_request() {
        let c = ResponseCache::new(1 << 20);
        let real = key(1);
        c.put(real.clone(), entry(10));
        // Same hash, different request bytes (a forged collision).
        let forged = Key {
            body: Bytes::from_static(b"other request"),
            ..real.clone()
        };
        assert!(c.get(&forged).is_none());
        let hit = c.get(&real).unwrap();
        assert_eq!(&hit.body_bytes()[..], &[1u8; 10][..]);
    }
}
