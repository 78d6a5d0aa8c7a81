//! Stored content keys: the [`KeyStore`] trait the server issues keys
//! through, the record kept for every (tenant, KID), the master-key ring and
//! the envelope encryption that keeps keys encrypted at rest.
//!
//! Semantics every backend keeps: (tenant, KID) maps to exactly one key
//! forever; the first content id binds it, and the same KID under another
//! content id of the same tenant is a conflict; all keys of one request are
//! created together or not at all.

pub mod signing;

use crate::crypto::{ContentKey, MasterKey, SecureRandom};
use crate::ids::KeyId;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so backends can live behind `dyn KeyStore`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The master keys: the newest wraps new records, every version can open
/// the records it wrapped.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl Keyring {
    /// A ring from master keys (at least one; versions unique).
    pub fn new(mut keys: Vec<MasterKey>) -> Result<Keyring, StoreError> {
        keys.sort_by_key(MasterKey::version);
        if keys.is_empty() {
            return Err(StoreError::Config("no master key".into()));
        }
        if keys.windows(2).any(|w| w[0].version() == w[1].version()) {
            return Err(StoreError::Config("two master keys share a version".into()));
        }
        Ok(Keyring { keys })
    }

    /// The key that wraps new records.
    pub fn current(&self) -> &MasterKey {
        // `new` refuses an empty ring.
        &self.keys[self.keys.len() - 1]
    }

    /// Every key, oldest version first.
    pub fn all(&self) -> &[MasterKey] {
        &self.keys
    }

    /// The key of a given version.
    pub fn get(&self, version: u32) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.version() == version)
    }
}

/// One key a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// The key id.
    pub kid: KeyId,
    /// The scheme it is issued for (`cenc`, `cbcs`, …), recorded on creation.
    pub scheme: Option<String>,
    /// An IV the request carries; stored when the key has none yet.
    pub request_iv: Option<[u8; 16]>,
    /// Create an IV (16 random bytes, never the key) when the key has none.
    pub wants_iv: bool,
}

/// All keys of one request, with who asked and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueBatch {
    /// The tenant.
    pub tenant: String,
    /// The content id the keys protect.
    pub content_id: String,
    /// Protocol name (`speke-1.0`, `speke-2.0`, `cpix`, …).
    pub protocol: String,
    /// The authenticated caller (`api-key:…`, `basic:user`).
    pub requester: String,
    /// The keys, in request order.
    pub specs: Vec<KeySpec>,
}

impl IssueBatch {
    /// The batch's KIDs, in request order.
    pub fn kids(&self) -> Vec<KeyId> {
        self.specs.iter().map(|s| s.kid).collect()
    }

    /// Refuses the batch when one of `found` (the stored keys of its KIDs,
    /// in request order) was issued for another content id.
    pub fn check_bound(&self, found: &[Option<StoredKey>]) -> Result<(), StoreError> {
        for (spec, stored) in self.specs.iter().zip(found) {
            if let Some(stored) = stored {
                if stored.meta.content_id != self.content_id {
                    return Err(StoreError::Conflict {
                        kid: spec.kid,
                        existing: stored.meta.content_id.clone(),
                        requested: self.content_id.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The answer from the keys already stored (`found`, as
    /// [`KeyStore::get_many`] reads the batch's KIDs): every key, when all
    /// exist and none lacks an IV the batch needs; `None` when the batch
    /// must be written; an error when a KID belongs to other content.
    pub fn answer_from(
        &self,
        found: Vec<Option<StoredKey>>,
    ) -> Result<Option<Vec<StoredKey>>, StoreError> {
        self.check_bound(&found)?;
        let needs_iv = |spec: &KeySpec| spec.wants_iv || spec.request_iv.is_some();
        let complete = self.specs.iter().zip(&found).all(|(spec, f)| {
            f.as_ref()
                .is_some_and(|s| s.iv.is_some() || !needs_iv(spec))
        });
        Ok(complete.then(|| found.into_iter().flatten().collect()))
    }
}

/// What is known about a stored key, without the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMeta {
    /// The tenant.
    pub tenant: String,
    /// The key id.
    pub kid: KeyId,
    /// The content id the key was first issued for.
    pub content_id: String,
    /// Protocol of the first request.
    pub protocol: String,
    /// Scheme of the first request.
    pub scheme: Option<String>,
    /// When it was first issued, milliseconds since the Unix epoch.
    pub first_issued_ms: u64,
    /// Who asked first.
    pub requester: String,
    /// Version of the master key that wraps it.
    pub master_key_version: u32,
    /// Whether an IV is stored with it.
    pub has_iv: bool,
}

/// A stored key with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Metadata.
    pub meta: KeyMeta,
    /// The content key.
    pub key: ContentKey,
    /// The IV stored with it.
    pub iv: Option<[u8; 16]>,
}

/// What [`KeyStore::get_or_create`] hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Every key of the batch, in request order.
    pub keys: Vec<StoredKey>,
    /// How many of them this call created (0: all existed).
    pub created: usize,
}

/// Why the store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The KID already belongs to another content id of the tenant.
    #[error("KID {kid} is already bound to content id {existing:?}, not {requested:?}")]
    Conflict {
        /// The key id.
        kid: KeyId,
        /// The content id it was first issued for.
        existing: String,
        /// The content id of this request.
        requested: String,
    },
    /// Storage failed (I/O, shutdown); nothing was written for the request.
    #[error("key storage unavailable: {0}")]
    Unavailable(String),
    /// A stored record cannot be read (corrupt, or its master key is missing).
    #[error("stored key record unreadable: {0}")]
    Corrupt(String),
    /// The store is misconfigured.
    #[error("key store configuration: {0}")]
    Config(String),
}

/// Durable, tenant-scoped key storage.
pub trait KeyStore: Send + Sync {
    /// Returns every key of `batch` in order, creating the missing ones;
    /// resolves only once the created keys are durable.
    fn get_or_create(&self, batch: IssueBatch) -> BoxFuture<'_, Result<Issued, StoreError>>;

    /// The keys of (tenant, KID) for each of `kids`, in order, `None`
    /// where none was issued: one read transaction (one query), however
    /// many KIDs a licence asks for.
    fn get_many<'a>(
        &'a self,
        tenant: &'a str,
        kids: &'a [KeyId],
    ) -> BoxFuture<'a, Result<Vec<Option<StoredKey>>, StoreError>>;

    /// The key of (tenant, KID), if issued.
    fn get<'a>(
        &'a self,
        tenant: &'a str,
        kid: KeyId,
    ) -> BoxFuture<'a, Result<Option<StoredKey>, StoreError>> {
        Box::pin(async move {
            let mut one = self.get_many(tenant, std::slice::from_ref(&kid)).await?;
            Ok(one.pop().flatten())
        })
    }

    /// Metadata of a tenant's keys, optionally only those of one content id,
    /// ordered by KID, starting after `after` (paging), at most `limit`.
    fn list<'a>(
        &'a self,
        tenant: &'a str,
        content_id: Option<&'a str>,
        after: Option<KeyId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyMeta>, StoreError>>;

    /// Ok while the store can commit new keys; the reason otherwise
    /// (`/readyz`).
    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The tenant's DRM-token signing keys, newest first; the first one is
    /// created (and committed) when the tenant has none.
    fn signing_keys<'a>(
        &'a self,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<Vec<signing::SigningKey>, StoreError>>;

    /// Makes a new signing key current; the keys it replaces verify tokens
    /// for `grace` more. Returns the keys, newest first.
    fn rotate_signing_key<'a>(
        &'a self,
        tenant: &'a str,
        grace: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<signing::SigningKey>, StoreError>>;

    /// Every stored record, raw (metadata in clear, key sealed), in a
    /// stable order, starting after `after`, at most `limit`: what
    /// `store copy` and `keys rewrap` walk.
    fn raw_records<'a>(
        &'a self,
        after: Option<RecordId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RawRecord>, StoreError>>;

    /// Stores raw records that are not there yet, and replaces those whose
    /// current bytes are `expected` (a rewrap). Returns, per record, what
    /// happened.
    fn put_raw<'a>(
        &'a self,
        records: Vec<RawWrite>,
    ) -> BoxFuture<'a, Result<Vec<RawOutcome>, StoreError>>;

    /// Finishes pending writes and lets go of the storage (blocking; the
    /// server calls it on the blocking pool when it stops).
    fn shutdown(&self) {}
}

/// Where a raw record belongs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordId {
    /// A content key.
    Key {
        /// The tenant.
        tenant: String,
        /// The key id.
        kid: KeyId,
    },
    /// A tenant's DRM-token signing keys.
    Signing {
        /// The tenant.
        tenant: String,
    },
}

/// A stored record as bytes: what moves between backends unchanged (the
/// envelope binds it to its tenant, KID and content id, not to a backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Where it belongs.
    pub id: RecordId,
    /// The content id (keys only; empty for signing keys).
    pub content_id: String,
    /// Master key version that seals it.
    pub master_key_version: u32,
    /// The record.
    pub bytes: Vec<u8>,
}

/// One write of [`KeyStore::put_raw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawWrite {
    /// The new record.
    pub record: RawRecord,
    /// `None`: insert when absent. `Some(old)`: replace only while the
    /// stored bytes are still `old`.
    pub expected: Option<Vec<u8>>,
}

/// What [`KeyStore::put_raw`] did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawOutcome {
    /// Stored (inserted or replaced).
    Written,
    /// Already there with the same bytes.
    Identical,
    /// Something else is stored there (another key, or a record changed
    /// since it was read); nothing was written for it.
    Differs,
}

/// Random bytes issuing one new key draws at most: the key, its IV and
/// the nonce that seals its record.
pub const NEW_KEY_RANDOM_BYTES: usize = 16 + 16 + crate::crypto::SEAL_NONCE_BYTES;

/// A fresh key for `spec` of `batch`: random key, the request's IV or (when
/// wanted) a random one, metadata naming the batch.
pub fn new_key(
    ring: &Keyring,
    rng: &dyn SecureRandom,
    batch: &IssueBatch,
    spec: &KeySpec,
) -> StoredKey {
    let key = ContentKey::generate(rng);
    let iv = match spec.request_iv {
        Some(iv) => Some(iv),
        None if spec.wants_iv => Some(crate::crypto::random_iv(rng, &key)),
        None => None,
    };
    let meta = KeyMeta {
        tenant: batch.tenant.clone(),
        kid: spec.kid,
        content_id: batch.content_id.clone(),
        protocol: batch.protocol.clone(),
        scheme: spec.scheme.clone(),
        first_issued_ms: now_ms(),
        requester: batch.requester.clone(),
        master_key_version: ring.current().version(),
        has_iv: iv.is_some(),
    };
    StoredKey { meta, key, iv }
}

/// The next page of [`KeyStore::raw_records`] after `after`, moving `after`
/// to its last record; empty when the walk is over.
pub async fn next_records(
    store: &dyn KeyStore,
    after: &mut Option<RecordId>,
    limit: usize,
) -> Result<Vec<RawRecord>, StoreError> {
    let page = store.raw_records(after.clone(), limit).await?;
    if let Some(last) = page.last() {
        *after = Some(last.id.clone());
    }
    Ok(page)
}

/// Current time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Record format version written by [`encode_record`].
const RECORD_FORMAT: u8 = 1;

fn aad(tenant: &str, kid: KeyId, content_id: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(16 + tenant.len() + 17 + content_id.len());
    a.extend_from_slice(b"cpixd-key-v1\0");
    a.extend_from_slice(tenant.as_bytes());
    a.push(0);
    a.extend_from_slice(kid.as_bytes());
    a.extend_from_slice(content_id.as_bytes());
    a
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

/// Serialises a record: metadata in clear, key (and IV) sealed with the
/// current master key, bound to tenant, KID and content id.
pub fn encode_record(
    ring: &Keyring,
    rng: &dyn SecureRandom,
    meta: &KeyMeta,
    key: &ContentKey,
    iv: Option<&[u8; 16]>,
) -> Vec<u8> {
    let mk = ring.current();
    let mut secret = zeroize::Zeroizing::new(Vec::with_capacity(32));
    secret.extend_from_slice(key.expose());
    if let Some(iv) = iv {
        secret.extend_from_slice(iv);
    }
    let sealed = mk.seal(&aad(&meta.tenant, meta.kid, &meta.content_id), &secret, rng);
    let mut out =
        Vec::with_capacity(64 + meta.content_id.len() + meta.requester.len() + sealed.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&mk.version().to_be_bytes());
    out.extend_from_slice(&meta.first_issued_ms.to_be_bytes());
    put_str(&mut out, &meta.content_id);
    put_str(&mut out, &meta.protocol);
    put_str(&mut out, meta.scheme.as_deref().unwrap_or(""));
    put_str(&mut out, &meta.requester);
    out.extend_from_slice(&sealed);
    out
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn str(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// The clear part of a record and the sealed rest.
fn split_record<'a>(
    tenant: &str,
    kid: KeyId,
    bytes: &'a [u8],
) -> Result<(KeyMeta, &'a [u8]), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("{tenant}/{kid}: {what}"));
    let mut c = Cursor(bytes);
    if c.take(1) != Some(&[RECORD_FORMAT][..]) {
        return Err(corrupt("unknown record format"));
    }
    let version = c.u32().ok_or_else(|| corrupt("truncated"))?;
    let first_issued_ms = c.u64().ok_or_else(|| corrupt("truncated"))?;
    let content_id = c.str().ok_or_else(|| corrupt("truncated"))?;
    let protocol = c.str().ok_or_else(|| corrupt("truncated"))?;
    let scheme = c.str().ok_or_else(|| corrupt("truncated"))?;
    let requester = c.str().ok_or_else(|| corrupt("truncated"))?;
    // Key alone: 16 bytes plus the envelope; key and IV: 32 plus it.
    let has_iv = c.0.len() > 16 + crate::crypto::SEAL_OVERHEAD;
    let meta = KeyMeta {
        tenant: tenant.to_owned(),
        kid,
        content_id,
        protocol,
        scheme: (!scheme.is_empty()).then_some(scheme),
        first_issued_ms,
        requester,
        master_key_version: version,
        has_iv,
    };
    Ok((meta, c.0))
}

/// The metadata of a record, without opening its envelope (no master key
/// needed).
pub fn meta_of(tenant: &str, kid: KeyId, bytes: &[u8]) -> Result<KeyMeta, StoreError> {
    split_record(tenant, kid, bytes).map(|(meta, _)| meta)
}

/// Reads a record written by [`encode_record`].
pub fn decode_record(
    ring: &Keyring,
    tenant: &str,
    kid: KeyId,
    bytes: &[u8],
) -> Result<StoredKey, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("{tenant}/{kid}: {what}"));
    let (mut meta, sealed) = split_record(tenant, kid, bytes)?;
    let version = meta.master_key_version;
    let mk = ring
        .get(version)
        .ok_or_else(|| corrupt(&format!("master key version {version} is not loaded")))?;
    let secret = mk
        .open(&aad(tenant, kid, &meta.content_id), sealed)
        .ok_or_else(|| corrupt("envelope does not authenticate"))?;
    let key = ContentKey::from_slice(secret.get(..16).ok_or_else(|| corrupt("short key"))?)
        .ok_or_else(|| corrupt("short key"))?;
    let iv = match secret.len() {
        16 => None,
        32 => secret.get(16..32).and_then(|s| s.try_into().ok()),
        _ => return Err(corrupt("bad secret length")),
    };
    meta.has_iv = iv.is_some();
    Ok(StoredKey { meta, key, iv })
}

/// What a raw write does to a slot holding `current`.
pub fn raw_outcome(current: Option<&[u8]>, write: &RawWrite) -> RawOutcome {
    match (current, &write.expected) {
        (Some(c), _) if c == write.record.bytes => RawOutcome::Identical,
        (None, None) => RawOutcome::Written,
        (Some(c), Some(e)) if c == e.as_slice() => RawOutcome::Written,
        _ => RawOutcome::Differs,
    }
}

/// Re-seals a raw record under the ring's current master key; `None` when
/// it already is.
pub fn rewrap(
    ring: &Keyring,
    rng: &dyn SecureRandom,
    record: &RawRecord,
) -> Result<Option<RawRecord>, StoreError> {
    if record.master_key_version == ring.current().version() {
        return Ok(None);
    }
    let bytes = match &record.id {
        RecordId::Key { tenant, kid } => {
            let k = decode_record(ring, tenant, *kid, &record.bytes)?;
            encode_record(ring, rng, &k.meta, &k.key, k.iv.as_ref())
        }
        RecordId::Signing { tenant } => {
            let keys = signing::decode(ring, tenant, &record.bytes)?;
            signing::encode(ring, rng, tenant, &keys)
        }
    };
    Ok(Some(RawRecord {
        id: record.id.clone(),
        content_id: record.content_id.clone(),
        master_key_version: ring.current().version(),
        bytes,
    }))
}

/// Opens a raw record with the ring, proving it readable: what `store copy`
/// and `keys rewrap` check after writing.
pub fn verify_raw(ring: &Keyring, record: &RawRecord) -> Result<(), StoreError> {
    match &record.id {
        RecordId::Key { tenant, kid } => {
            let k = decode_record(ring, tenant, *kid, &record.bytes)?;
            if k.meta.content_id != record.content_id {
                return Err(StoreError::Corrupt(format!(
                    "{tenant}/{kid}: record names content id {:?}, index {:?}",
                    k.meta.content_id, record.content_id
                )));
            }
            Ok(())
        }
        RecordId::Signing { tenant } => signing::decode(ring, tenant, &record.bytes).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;

    fn meta(kid: KeyId) -> KeyMeta {
        KeyMeta {
            tenant: "t1".into(),
            kid,
            content_id: "channel-1".into(),
            protocol: "speke-2.0".into(),
            scheme: Some("cbcs".into()),
            first_issued_ms: 1_700_000_000_000,
            requester: "api-key:ab12".into(),
            master_key_version: 2,
            has_iv: true,
        }
    }

    #[test]
    fn records_round_trip_and_are_bound_to_their_identity() {
        let rng = SeededRandom::new(1);
        let ring = Keyring::new(vec![
            MasterKey::generate(1, &rng),
            MasterKey::generate(2, &rng),
        ])
        .unwrap();
        let kid = KeyId::from_bytes([9; 16]);
        let key = ContentKey::from_bytes([7; 16]);
        let iv = [5u8; 16];
        let bytes = encode_record(&ring, &rng, &meta(kid), &key, Some(&iv));
        // The key bytes are not in the record in clear.
        assert!(!bytes.windows(16).any(|w| w == key.expose()));
        let back = decode_record(&ring, "t1", kid, &bytes).unwrap();
        assert_eq!(back.meta, meta(kid));
        assert_eq!(back.key, key);
        assert_eq!(back.iv, Some(iv));
        // Another tenant or KID cannot read it.
        assert!(decode_record(&ring, "t2", kid, &bytes).is_err());
        assert!(decode_record(&ring, "t1", KeyId::from_bytes([8; 16]), &bytes).is_err());
        // Without master key 2 it is unreadable, with a message saying why.
        let old = Keyring::new(vec![MasterKey::generate(1, &SeededRandom::new(1))]).unwrap();
        let err = decode_record(&old, "t1", kid, &bytes).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        // Truncation is corruption, not a panic.
        for n in 0..bytes.len() {
            assert!(decode_record(&ring, "t1", kid, &bytes[..n]).is_err());
        }
    }

    #[test]
    fn keyring_rules() {
        assert!(Keyring::new(vec![]).is_err());
        let rng = SeededRandom::new(2);
        assert!(Keyring::new(vec![
            MasterKey::generate(1, &rng),
            MasterKey::generate(1, &rng)
        ])
        .is_err());
        let ring = Keyring::new(vec![
            MasterKey::generate(3, &rng),
            MasterKey::generate(1, &rng),
        ])
        .unwrap();
        assert_eq!(ring.current().version(), 3);
        assert!(ring.get(1).is_some() && ring.get(2).is_none());
    }
}
