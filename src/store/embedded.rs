//! The embedded key store: one redb file in the data directory (pure Rust,
//! ACID, copy-on-write, fsync on commit). Requests whose keys all exist are
//! answered from a read transaction; requests that create keys go to one
//! writer thread that commits every pending request in a single transaction
//! (group commit) and answers each only after that commit is durable.

use crate::crypto::{ContentKey, SecureRandom};
use crate::ids::KeyId;
use crate::keys::*;
use redb::{Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// (tenant ‖ 0x00 ‖ KID) → encoded record.
const KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("keys");
/// (tenant ‖ 0x00 ‖ content id) → KIDs.
const BY_CONTENT: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("by_content");

/// Page cache of the database file: key records are small, and a bounded
/// cache keeps the server's memory flat.
const CACHE_BYTES: usize = 16 << 20;

/// Most requests committed in one transaction.
const MAX_GROUP: usize = 512;

fn key_of(tenant: &str, kid: KeyId) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 17);
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.extend_from_slice(kid.as_bytes());
    k
}

fn content_key_of(tenant: &str, content_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 1 + content_id.len());
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.extend_from_slice(content_id.as_bytes());
    k
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

struct Job {
    batch: IssueBatch,
    reply: tokio::sync::oneshot::Sender<Result<Vec<StoredKey>, StoreError>>,
}

/// The embedded, crash-safe key store.
pub struct EmbeddedStore {
    db: Arc<Database>,
    ring: Arc<Keyring>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl EmbeddedStore {
    /// Opens (or creates) `path`, recovering it if the last run crashed.
    pub fn open(
        path: &Path,
        ring: Keyring,
        rng: Arc<dyn SecureRandom>,
    ) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        {
            let txn = db.begin_write().map_err(unavailable)?;
            txn.open_table(KEYS).map_err(unavailable)?;
            txn.open_multimap_table(BY_CONTENT).map_err(unavailable)?;
            txn.commit().map_err(unavailable)?;
        }
        let db = Arc::new(db);
        let ring = Arc::new(ring);
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = {
            let (db, ring) = (db.clone(), ring.clone());
            std::thread::Builder::new()
                .name("cpixd-store-writer".into())
                .spawn(move || writer_loop(&db, &ring, &*rng, rx))
                .map_err(unavailable)?
        };
        Ok(EmbeddedStore {
            db,
            ring,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Stops taking new writes, lets the writer finish every queued request
    /// and waits for it. Later writes fail with `Unavailable`.
    pub fn shutdown(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }

    /// Reads every key of the batch when all exist, are bound to the batch's
    /// content id and need nothing new (no IV to add).
    fn read_existing(&self, batch: &IssueBatch) -> Result<Option<Vec<StoredKey>>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(KEYS).map_err(unavailable)?;
        let mut out = Vec::with_capacity(batch.specs.len());
        for spec in &batch.specs {
            let Some(v) = table
                .get(&key_of(&batch.tenant, spec.kid)[..])
                .map_err(unavailable)?
            else {
                return Ok(None);
            };
            let stored = decode_record(&self.ring, &batch.tenant, spec.kid, v.value())?;
            if stored.meta.content_id != batch.content_id {
                return Err(StoreError::Conflict {
                    kid: spec.kid,
                    existing: stored.meta.content_id,
                    requested: batch.content_id.clone(),
                });
            }
            if stored.iv.is_none() && (spec.wants_iv || spec.request_iv.is_some()) {
                return Ok(None);
            }
            out.push(stored);
        }
        Ok(Some(out))
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl KeyStore for EmbeddedStore {
    fn get_or_create(
        &self,
        batch: IssueBatch,
    ) -> BoxFuture<'_, Result<Vec<StoredKey>, StoreError>> {
        Box::pin(async move {
            if let Some(keys) = self.read_existing(&batch)? {
                return Ok(keys);
            }
            let (reply, rx) = tokio::sync::oneshot::channel();
            {
                let jobs = self
                    .jobs
                    .lock()
                    .map_err(|_| unavailable("writer lock poisoned"))?;
                let sender = jobs
                    .as_ref()
                    .ok_or_else(|| unavailable("store is shutting down"))?;
                sender
                    .send(Job { batch, reply })
                    .map_err(|_| unavailable("store writer stopped"))?;
            }
            rx.await.map_err(|_| unavailable("store writer stopped"))?
        })
    }

    fn get(&self, tenant: &str, kid: KeyId) -> Result<Option<StoredKey>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(KEYS).map_err(unavailable)?;
        let value = table.get(&key_of(tenant, kid)[..]).map_err(unavailable)?;
        value
            .map(|v| decode_record(&self.ring, tenant, kid, v.value()))
            .transpose()
    }

    fn list(&self, tenant: &str, content_id: Option<&str>) -> Result<Vec<KeyMeta>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(KEYS).map_err(unavailable)?;
        let mut out = Vec::new();
        let mut push = |kid_bytes: &[u8], value: &[u8]| -> Result<(), StoreError> {
            let kid = KeyId::from_bytes(
                kid_bytes
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("bad key id in index".into()))?,
            );
            out.push(decode_record(&self.ring, tenant, kid, value)?.meta);
            Ok(())
        };
        match content_id {
            Some(cid) => {
                let index = txn.open_multimap_table(BY_CONTENT).map_err(unavailable)?;
                for kid in index
                    .get(&content_key_of(tenant, cid)[..])
                    .map_err(unavailable)?
                {
                    let kid = kid.map_err(unavailable)?;
                    let kid = kid.value();
                    let full = [tenant.as_bytes(), &[0], kid].concat();
                    if let Some(v) = table.get(&full[..]).map_err(unavailable)? {
                        push(kid, v.value())?;
                    }
                }
            }
            None => {
                let start = [tenant.as_bytes(), &[0]].concat();
                let end = [tenant.as_bytes(), &[1]].concat();
                for entry in table.range(&start[..]..&end[..]).map_err(unavailable)? {
                    let (k, v) = entry.map_err(unavailable)?;
                    push(&k.value()[start.len()..], v.value())?;
                }
            }
        }
        Ok(out)
    }
}

/// Applies one batch inside the group's write transaction. Checks every
/// KID first, so a conflicting batch writes nothing.
fn apply(
    txn: &redb::WriteTransaction,
    ring: &Keyring,
    rng: &dyn SecureRandom,
    batch: &IssueBatch,
) -> Result<Vec<StoredKey>, StoreError> {
    let mut table = txn.open_table(KEYS).map_err(unavailable)?;
    let mut existing = Vec::with_capacity(batch.specs.len());
    for spec in &batch.specs {
        let found = match table
            .get(&key_of(&batch.tenant, spec.kid)[..])
            .map_err(unavailable)?
        {
            Some(v) => Some(decode_record(ring, &batch.tenant, spec.kid, v.value())?),
            None => None,
        };
        if let Some(s) = &found {
            if s.meta.content_id != batch.content_id {
                return Err(StoreError::Conflict {
                    kid: spec.kid,
                    existing: s.meta.content_id.clone(),
                    requested: batch.content_id.clone(),
                });
            }
        }
        existing.push(found);
    }
    let mut index = txn.open_multimap_table(BY_CONTENT).map_err(unavailable)?;
    let content_key = content_key_of(&batch.tenant, &batch.content_id);
    let mut out = Vec::with_capacity(batch.specs.len());
    for (spec, found) in batch.specs.iter().zip(existing) {
        let (stored, changed) = match found {
            Some(mut s) if s.iv.is_none() && (spec.wants_iv || spec.request_iv.is_some()) => {
                s.iv = Some(
                    spec.request_iv
                        .unwrap_or_else(|| crate::crypto::random_iv(rng, &s.key)),
                );
                s.meta.has_iv = true;
                s.meta.master_key_version = ring.current().version();
                (s, true)
            }
            Some(s) => (s, false),
            None => {
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
                index
                    .insert(&content_key[..], &spec.kid.as_bytes()[..])
                    .map_err(unavailable)?;
                (StoredKey { meta, key, iv }, true)
            }
        };
        if changed {
            let record = encode_record(ring, rng, &stored.meta, &stored.key, stored.iv.as_ref());
            table
                .insert(&key_of(&batch.tenant, spec.kid)[..], &record[..])
                .map_err(unavailable)?;
        }
        out.push(stored);
    }
    Ok(out)
}

fn writer_loop(db: &Database, ring: &Keyring, rng: &dyn SecureRandom, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                for j in jobs {
                    let _ = j.reply.send(Err(unavailable(&e)));
                }
                continue;
            }
        };
        // Each batch runs in a savepoint-free way: a failing batch must leave
        // no trace, so conflicts are detected before anything is written
        // (see `apply`); other errors abort the whole group.
        let mut results = Vec::with_capacity(jobs.len());
        let mut fatal = None;
        for j in &jobs {
            match apply(&txn, ring, rng, &j.batch) {
                Err(e @ (StoreError::Conflict { .. } | StoreError::Corrupt(_))) => {
                    results.push(Err(e))
                }
                Err(e) => {
                    fatal = Some(e);
                    break;
                }
                Ok(keys) => results.push(Ok(keys)),
            }
        }
        let outcome = match fatal {
            Some(e) => {
                let _ = txn.abort();
                Err(e)
            }
            None => txn.commit().map_err(unavailable),
        };
        match outcome {
            Ok(()) => {
                for (j, r) in jobs.into_iter().zip(results) {
                    let _ = j.reply.send(r);
                }
            }
            Err(e) => {
                for j in jobs {
                    let _ = j.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{MasterKey, OsRandom, SeededRandom};

    fn ring() -> Keyring {
        Keyring::new(vec![MasterKey::generate(1, &SeededRandom::new(4))]).unwrap()
    }

    fn batch(tenant: &str, cid: &str, kids: &[u8], wants_iv: bool) -> IssueBatch {
        IssueBatch {
            tenant: tenant.into(),
            content_id: cid.into(),
            protocol: "speke-2.0".into(),
            requester: "test".into(),
            specs: kids
                .iter()
                .map(|&b| KeySpec {
                    kid: KeyId::from_bytes([b; 16]),
                    scheme: Some("cenc".into()),
                    request_iv: None,
                    wants_iv,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn keys_are_stable_scoped_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.redb");
        let first = {
            let store = EmbeddedStore::open(&path, ring(), Arc::new(OsRandom)).unwrap();
            let a = store
                .get_or_create(batch("t1", "c1", &[1, 2], false))
                .await
                .unwrap();
            let again = store
                .get_or_create(batch("t1", "c1", &[1, 2], false))
                .await
                .unwrap();
            assert_eq!(a, again);
            assert_ne!(a[0].key, a[1].key);
            // Another tenant: unrelated key for the same KID.
            let other = store
                .get_or_create(batch("t2", "c9", &[1], false))
                .await
                .unwrap();
            assert_ne!(other[0].key, a[0].key);
            // Same KID, other content id, same tenant: conflict, nothing written.
            let err = store
                .get_or_create(batch("t1", "c2", &[3, 1], false))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict { ref existing, .. } if existing == "c1"));
            assert!(store
                .get("t1", KeyId::from_bytes([3; 16]))
                .unwrap()
                .is_none());
            // An IV is added once and then kept.
            let with_iv = store
                .get_or_create(batch("t1", "c1", &[1], true))
                .await
                .unwrap();
            assert!(with_iv[0].iv.is_some());
            assert_eq!(with_iv[0].key, a[0].key);
            let metas = store.list("t1", None).unwrap();
            assert_eq!(metas.len(), 2);
            assert_eq!(store.list("t1", Some("c1")).unwrap().len(), 2);
            assert!(store.list("t1", Some("c2")).unwrap().is_empty());
            with_iv
        };
        let store = EmbeddedStore::open(&path, ring(), Arc::new(OsRandom)).unwrap();
        let reread = store
            .get_or_create(batch("t1", "c1", &[1], true))
            .await
            .unwrap();
        assert_eq!(reread, first);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_for_the_same_new_kid_get_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            EmbeddedStore::open(&dir.path().join("k.redb"), ring(), Arc::new(OsRandom)).unwrap(),
        );
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.get_or_create(batch("t", "c", &[7], false)).await })
            })
            .collect();
        let mut keys = Vec::new();
        for t in tasks {
            keys.push(t.await.unwrap().unwrap()[0].key.clone());
        }
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
    }
}
