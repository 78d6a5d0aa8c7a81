//! A bounded cache of recent SPEKE responses. A repeated request (same
//! tenant, endpoint, version header and body bytes) for keys that already
//! exist has exactly the same answer — keys never change once issued and
//! signalling is deterministic — so it is served without parsing again.
//! Only clear-key responses to requests without recipients are cached; the
//! entries are zeroized when evicted.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// A cached answer.
#[derive(Clone)]
pub struct Cached {
    /// The response body.
    pub body: std::sync::Arc<Zeroizing<Vec<u8>>>,
    /// Keys in it (for the metrics).
    pub keys: usize,
    /// Its content id (for the log).
    pub content_id: String,
    /// True for SPEKE 2 (headers differ).
    pub v2: bool,
    /// `X-Speke-Version` to echo.
    pub version: String,
}

#[derive(Default)]
struct Inner {
    map: HashMap<[u8; 32], Cached>,
    order: VecDeque<[u8; 32]>,
    bytes: usize,
}

/// Response cache with a byte budget; the oldest entries go first.
pub struct ResponseCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl ResponseCache {
    /// A cache holding at most `max_bytes` of bodies (0 disables it).
    pub fn new(max_bytes: usize) -> Self {
        ResponseCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The cache key of a request.
    pub fn key(tenant: &str, endpoint: &str, version: Option<&str>, body: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            tenant.as_bytes(),
            endpoint.as_bytes(),
            version.unwrap_or("").as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.update(body);
        h.finalize().into()
    }

    /// The cached answer for `key`, if any.
    pub fn get(&self, key: &[u8; 32]) -> Option<Cached> {
        if self.max_bytes == 0 {
            return None;
        }
        self.inner.lock().ok()?.map.get(key).cloned()
    }

    /// Remembers an answer, evicting the oldest ones beyond the budget.
    pub fn put(&self, key: [u8; 32], value: Cached) {
        let size = value.body.len();
        if size > self.max_bytes / 4 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.map.insert(key, value).is_some() {
            return;
        }
        inner.order.push_back(key);
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.map.remove(&old) {
                inner.bytes -= gone.body.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Cached {
        Cached {
            body: std::sync::Arc::new(Zeroizing::new(vec![1; n])),
            keys: 1,
            content_id: "c".into(),
            v2: true,
            version: "2.0".into(),
        }
    }

    #[test]
    fn keys_separate_tenants_and_versions_and_budget_evicts_oldest() {
        let a = ResponseCache::key("t1", "speke2", Some("2.0"), b"body");
        assert_ne!(a, ResponseCache::key("t2", "speke2", Some("2.0"), b"body"));
        assert_ne!(a, ResponseCache::key("t1", "speke2", Some("2.1"), b"body"));
        assert_ne!(a, ResponseCache::key("t1", "cpix", Some("2.0"), b"body"));
        let c = ResponseCache::new(1000);
        for i in 0..10u8 {
            c.put([i; 32], entry(200));
        }
        assert!(c.get(&[0; 32]).is_none(), "oldest evicted");
        assert!(c.get(&[9; 32]).is_some());
        c.put([99; 32], entry(900));
        assert!(
            c.get(&[99; 32]).is_none(),
            "larger than a quarter of the budget"
        );
        let off = ResponseCache::new(0);
        off.put([1; 32], entry(1));
        assert!(off.get(&[1; 32]).is_none());
    }
}
