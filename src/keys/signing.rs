//! DRM-token signing keys: each tenant has a current HS256 key and, after a
//! rotation, the keys it replaced until their grace period ends. Stored
//! sealed under the master key like content keys, so a store dump alone
//! reveals none of them.

use super::{Keyring, StoreError};
use crate::crypto::SecureRandom;
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// Record format of a tenant's signing keys.
const FORMAT: u8 = 1;

/// One signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// 1 for the first key, then one more per rotation.
    pub version: u32,
    /// The 32-byte HMAC key.
    pub secret: Zeroizing<[u8; 32]>,
    /// When it was made, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When it stops verifying tokens (set by the rotation that replaced
    /// it); `None` for the current key.
    pub retires_ms: Option<u64>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey(v{}, ***, retires {:?})",
            self.version, self.retires_ms
        )
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate(version: u32, now_ms: u64, rng: &dyn SecureRandom) -> SigningKey {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(&mut secret[..]);
        SigningKey {
            version,
            secret,
            created_ms: now_ms,
            retires_ms: None,
        }
    }

    /// True while tokens signed with it verify.
    pub fn usable(&self, now_ms: u64) -> bool {
        self.retires_ms.is_none_or(|r| now_ms < r)
    }
}

/// The keys after a rotation at `now_ms`: a new current key, and every key
/// still usable retiring at the latest `grace` from now.
pub fn rotate(
    keys: &[SigningKey],
    now_ms: u64,
    grace: Duration,
    rng: &dyn SecureRandom,
) -> Vec<SigningKey> {
    let retire = now_ms.saturating_add(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX));
    let next = keys.iter().map(|k| k.version).max().unwrap_or(0) + 1;
    let mut out = vec![SigningKey::generate(next, now_ms, rng)];
    for k in keys.iter().filter(|k| k.usable(now_ms)) {
        let mut old = k.clone();
        old.retires_ms = Some(old.retires_ms.map_or(retire, |r| r.min(retire)));
        out.push(old);
    }
    out
}

fn aad(tenant: &str) -> Vec<u8> {
    let mut a = b"cpixd-signing-v1\0".to_vec();
    a.extend_from_slice(tenant.as_bytes());
    a
}

/// Serialises a tenant's keys, sealed with the current master key.
pub fn encode(
    ring: &Keyring,
    rng: &dyn SecureRandom,
    tenant: &str,
    keys: &[SigningKey],
) -> Vec<u8> {
    let mut clear = Zeroizing::new(Vec::with_capacity(keys.len() * 52));
    for k in keys {
        clear.extend_from_slice(&k.version.to_be_bytes());
        clear.extend_from_slice(&k.created_ms.to_be_bytes());
        clear.extend_from_slice(&k.retires_ms.unwrap_or(0).to_be_bytes());
        clear.extend_from_slice(&k.secret[..]);
    }
    let mk = ring.current();
    let mut out = vec![FORMAT];
    out.extend_from_slice(&mk.version().to_be_bytes());
    out.extend_from_slice(&mk.seal(&aad(tenant), &clear, rng));
    out
}

/// The master key version that seals a record written by [`encode`].
pub fn master_key_version(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [FORMAT, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Reads what [`encode`] wrote.
pub fn decode(ring: &Keyring, tenant: &str, bytes: &[u8]) -> Result<Vec<SigningKey>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("signing keys of {tenant}: {what}"));
    let (format, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    if *format != FORMAT || rest.len() < 4 {
        return Err(corrupt("unknown format"));
    }
    let (version, sealed) = rest.split_at(4);
    let version = u32::from_be_bytes(version.try_into().map_err(|_| corrupt("truncated"))?);
    let mk = ring
        .get(version)
        .ok_or_else(|| corrupt(&format!("master key version {version} is not loaded")))?;
    let clear = mk
        .open(&aad(tenant), sealed)
        .ok_or_else(|| corrupt("envelope does not authenticate"))?;
    let mut keys = Vec::new();
    for chunk in clear.chunks(52) {
        if chunk.len() != 52 {
            return Err(corrupt("truncated"));
        }
        let word = |r: std::ops::Range<usize>| chunk.get(r).unwrap_or_default();
        let version = u32::from_be_bytes(word(0..4).try_into().map_err(|_| corrupt("bad"))?);
        let created_ms = u64::from_be_bytes(word(4..12).try_into().map_err(|_| corrupt("bad"))?);
        let retires = u64::from_be_bytes(word(12..20).try_into().map_err(|_| corrupt("bad"))?);
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(word(20..52));
        keys.push(SigningKey {
            version,
            secret,
            created_ms,
            retires_ms: (retires != 0).then_some(retires),
        });
    }
    keys.sort_by_key(|k| std::cmp::Reverse(k.version));
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{MasterKey, SeededRandom};

    #[test]
    fn keys_round_trip_sealed_and_rotation_keeps_a_grace_period() {
        let rng = SeededRandom::new(1);
        let ring = Keyring::new(vec![MasterKey::generate(1, &rng)]).unwrap();
        let first = vec![SigningKey::generate(1, 1_000, &rng)];
        let rotated = rotate(&first, 5_000, Duration::from_secs(10), &rng);
        assert_eq!(rotated.len(), 2);
        assert_eq!(rotated[0].version, 2);
        assert_eq!(rotated[0].retires_ms, None);
        assert_eq!(rotated[1].retires_ms, Some(15_000));
        assert!(rotated[1].usable(14_999) && !rotated[1].usable(15_000));
        let bytes = encode(&ring, &rng, "acme", &rotated);
        assert!(!bytes
            .windows(32)
            .any(|w| w == &rotated[0].secret[..] || w == &first[0].secret[..]));
        assert_eq!(decode(&ring, "acme", &bytes).unwrap(), rotated);
        // Bound to the tenant.
        assert!(decode(&ring, "other", &bytes).is_err());
        // A key already retired is dropped by the next rotation after it.
        let again = rotate(&rotated, 20_000, Duration::from_secs(10), &rng);
        assert_eq!(
            again.iter().map(|k| k.version).collect::<Vec<_>>(),
            vec![3, 2]
        );
        assert!(format!("{:?}", again[0]).contains("***"));
    }
}
