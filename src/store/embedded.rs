//! The embedded key store: one redb file in the data directory (pure Rust,
//! ACID, copy-on-write, fsync on commit). Requests whose keys all exist are
//! answered from a read transaction; requests that create keys go to one
//! writer thread that commits every pending request in a single transaction
//! (group commit) and answers each only after that commit is durable.
//!
//! A failed commit (a full disk, an I/O error) leaves redb refusing every
//! later transaction, so the writer then closes the database, opens it
//! again and proves it can commit with a probe write, retrying every
//! second. Until a probe succeeds the store reports itself not ready and
//! refuses new keys at once (503) instead of queueing them; keys that
//! already exist are still served.

use crate::crypto::SecureRandom;
use crate::ids::KeyId;
use crate::keys::signing::{self, SigningKey};
use crate::keys::*;
use redb::{Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// (tenant ‖ 0x00 ‖ KID) → encoded record.
const KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("keys");
/// (tenant ‖ 0x00 ‖ content id) → KIDs.
const BY_CONTENT: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("by_content");
/// tenant → its DRM-token signing keys, sealed ([`signing::encode`]).
const SIGNING: TableDefinition<&str, &[u8]> = TableDefinition::new("signing_keys");
/// `probe` → the last probe: its time (milliseconds, big endian) and
/// [`PROBE_BYTES`] of filler, so that a probe that commits proves the store
/// has room for a real batch of keys, not only for a header update.
const HEALTH: TableDefinition<&str, &[u8]> = TableDefinition::new("health");

/// Size of the probe record (a batch of 8 keys is about 2 KiB).
const PROBE_BYTES: usize = 64 << 10;

/// Page cache of the database file: key records are small, and a bounded
/// cache keeps the server's memory flat.
const CACHE_BYTES: usize = 16 << 20;

/// Most requests committed in one transaction.
const MAX_GROUP: usize = 512;

/// Time between two recovery attempts after a failed commit.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

/// How long recovery waits for readers to let go of the old database.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

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
    reply: tokio::sync::oneshot::Sender<Result<Issued, StoreError>>,
}

/// Opens the database: the file by default, another backend in tests.
pub type Opener = Arc<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// What the request path and the writer share.
struct Shared {
    /// The open database; `None` while the writer reopens it.
    db: RwLock<Option<Arc<Database>>>,
    ring: Keyring,
    /// Randomness for signing keys and their envelopes.
    rng: Arc<dyn SecureRandom>,
    /// Why commits fail, while they do.
    fault: Mutex<Option<String>>,
    opener: Opener,
}

impl Shared {
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db
            .read()
            .map_err(|_| unavailable("database lock poisoned"))?
            .clone()
            .ok_or_else(|| unavailable("the key store is being reopened after an I/O error"))
    }

    fn fault(&self) -> Option<String> {
        self.fault
            .lock()
            .map_or_else(|_| Some("fault lock poisoned".to_owned()), |f| f.clone())
    }

    fn set_fault(&self, reason: Option<String>) {
        if let Ok(mut f) = self.fault.lock() {
            *f = reason;
        }
    }
}

/// Creates the tables (a no-op when they exist) and rewrites the probe
/// record, proving that the database can commit.
fn probe(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(unavailable)?;
    txn.open_table(KEYS).map_err(unavailable)?;
    txn.open_multimap_table(BY_CONTENT).map_err(unavailable)?;
    txn.open_table(SIGNING).map_err(unavailable)?;
    let mut record = vec![0u8; PROBE_BYTES];
    record[..8].copy_from_slice(&now_ms().to_be_bytes());
    txn.open_table(HEALTH)
        .map_err(unavailable)?
        .insert("probe", &record[..])
        .map_err(unavailable)?;
    txn.commit().map_err(unavailable)
}

/// The embedded, crash-safe key store.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
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
        let file: PathBuf = path.to_owned();
        let opener: Opener = Arc::new(move || {
            redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(&file)
        });
        let store = Self::open_with(opener, ring, rng)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(store)
    }

    /// Opens the database that `opener` returns (and returns again after an
    /// I/O error); [`EmbeddedStore::open`] is this over a file.
    pub fn open_with(
        opener: Opener,
        ring: Keyring,
        rng: Arc<dyn SecureRandom>,
    ) -> Result<Self, StoreError> {
        let db = opener().map_err(unavailable)?;
        probe(&db)?;
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            ring,
            rng: rng.clone(),
            fault: Mutex::new(None),
            opener,
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("cpixd-store-writer".into())
                .spawn(move || {
                    Writer {
                        shared,
                        rng,
                        last_recovery: std::cell::Cell::new(None),
                    }
                    .run(rx)
                })
                .map_err(unavailable)?
        };
        Ok(EmbeddedStore {
            shared,
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
}

impl EmbeddedStore {
    /// Replaces the tenant's signing keys with `change(current)` in one
    /// write transaction (concurrent callers see each other's result).
    fn update_signing_keys(
        &self,
        tenant: &str,
        change: impl FnOnce(&[SigningKey]) -> Vec<SigningKey>,
    ) -> Result<Vec<SigningKey>, StoreError> {
        if let Some(reason) = self.shared.fault() {
            return Err(StoreError::Unavailable(format!(
                "the key store cannot commit: {reason}"
            )));
        }
        let db = self.shared.db()?;
        let txn = db.begin_write().map_err(unavailable)?;
        let keys = {
            let mut table = txn.open_table(SIGNING).map_err(unavailable)?;
            let current = match table.get(tenant).map_err(unavailable)? {
                Some(v) => signing::decode(&self.shared.ring, tenant, v.value())?,
                None => Vec::new(),
            };
            let keys = change(&current);
            if keys != current {
                let bytes = signing::encode(&self.shared.ring, &*self.shared.rng, tenant, &keys);
                table.insert(tenant, &bytes[..]).map_err(unavailable)?;
            }
            keys
        };
        txn.commit().map_err(unavailable)?;
        Ok(keys)
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl KeyStore for EmbeddedStore {
    fn get_or_create(&self, batch: IssueBatch) -> BoxFuture<'_, Result<Issued, StoreError>> {
        Box::pin(async move {
            let found = self.get_many(&batch.tenant, &batch.kids()).await?;
            if let Some(keys) = batch.answer_from(found)? {
                return Ok(Issued { keys, created: 0 });
            }
            if let Some(reason) = self.shared.fault() {
                return Err(StoreError::Unavailable(format!(
                    "the key store cannot commit: {reason}"
                )));
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

    fn get_many<'a>(
        &'a self,
        tenant: &'a str,
        kids: &'a [KeyId],
    ) -> BoxFuture<'a, Result<Vec<Option<StoredKey>>, StoreError>> {
        Box::pin(async move {
            let db = self.shared.db()?;
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(KEYS).map_err(unavailable)?;
            kids.iter()
                .map(|&kid| {
                    let value = table.get(&key_of(tenant, kid)[..]).map_err(unavailable)?;
                    value
                        .map(|v| decode_record(&self.shared.ring, tenant, kid, v.value()))
                        .transpose()
                })
                .collect()
        })
    }

    fn list<'a>(
        &'a self,
        tenant: &'a str,
        content_id: Option<&'a str>,
        after: Option<KeyId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyMeta>, StoreError>> {
        Box::pin(async move { self.list_sync(tenant, content_id, after, limit) })
    }

    fn signing_keys<'a>(
        &'a self,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SigningKey>, StoreError>> {
        Box::pin(async move {
            {
                let db = self.shared.db()?;
                let txn = db.begin_read().map_err(unavailable)?;
                let table = txn.open_table(SIGNING).map_err(unavailable)?;
                if let Some(v) = table.get(tenant).map_err(unavailable)? {
                    return signing::decode(&self.shared.ring, tenant, v.value());
                }
            }
            self.update_signing_keys(tenant, |existing| {
                if existing.is_empty() {
                    vec![SigningKey::generate(1, now_ms(), &*self.shared.rng)]
                } else {
                    existing.to_vec()
                }
            })
        })
    }

    fn rotate_signing_key<'a>(
        &'a self,
        tenant: &'a str,
        grace: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<SigningKey>, StoreError>> {
        Box::pin(async move {
            self.update_signing_keys(tenant, |existing| {
                signing::rotate(existing, now_ms(), grace, &*self.shared.rng)
            })
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            match self.shared.fault() {
                Some(reason) => Err(StoreError::Unavailable(format!(
                    "the key store cannot commit: {reason}"
                ))),
                None => self.shared.db().map(drop),
            }
        })
    }

    fn raw_records<'a>(
        &'a self,
        after: Option<RecordId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RawRecord>, StoreError>> {
        Box::pin(async move { self.raw_records_sync(after, limit) })
    }

    fn put_raw<'a>(
        &'a self,
        records: Vec<RawWrite>,
    ) -> BoxFuture<'a, Result<Vec<RawOutcome>, StoreError>> {
        Box::pin(async move { self.put_raw_sync(records) })
    }

    fn shutdown(&self) {
        EmbeddedStore::shutdown(self);
    }
}

impl EmbeddedStore {
    fn list_sync(
        &self,
        tenant: &str,
        content_id: Option<&str>,
        after: Option<KeyId>,
        limit: usize,
    ) -> Result<Vec<KeyMeta>, StoreError> {
        let db = self.shared.db()?;
        let txn = db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(KEYS).map_err(unavailable)?;
        let mut out = Vec::new();
        let mut push = |kid_bytes: &[u8], value: &[u8]| -> Result<(), StoreError> {
            let kid = KeyId::from_bytes(
                kid_bytes
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("bad key id in index".into()))?,
            );
            out.push(meta_of(tenant, kid, value)?);
            Ok(())
        };
        let after_bytes = after.map(|k| *k.as_bytes());
        match content_id {
            Some(cid) => {
                let index = txn.open_multimap_table(BY_CONTENT).map_err(unavailable)?;
                let mut taken = 0;
                for kid in index
                    .get(&content_key_of(tenant, cid)[..])
                    .map_err(unavailable)?
                {
                    let kid = kid.map_err(unavailable)?;
                    let kid = kid.value();
                    if after_bytes.is_some_and(|a| kid <= &a[..]) {
                        continue;
                    }
                    if taken == limit {
                        break;
                    }
                    let full = [tenant.as_bytes(), &[0], kid].concat();
                    if let Some(v) = table.get(&full[..]).map_err(unavailable)? {
                        push(kid, v.value())?;
                        taken += 1;
                    }
                }
            }
            None => {
                let start = match after {
                    Some(k) => [&key_of(tenant, k)[..], &[0]].concat(),
                    None => [tenant.as_bytes(), &[0]].concat(),
                };
                let end = [tenant.as_bytes(), &[1]].concat();
                let prefix = tenant.len() + 1;
                for entry in table
                    .range(&start[..]..&end[..])
                    .map_err(unavailable)?
                    .take(limit)
                {
                    let (k, v) = entry.map_err(unavailable)?;
                    push(&k.value()[prefix..], v.value())?;
                }
            }
        }
        Ok(out)
    }

    fn raw_records_sync(
        &self,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<RawRecord>, StoreError> {
        let db = self.shared.db()?;
        let txn = db.begin_read().map_err(unavailable)?;
        let mut out = Vec::new();
        let signing_after = match &after {
            Some(RecordId::Signing { tenant }) => Some(tenant.clone()),
            _ => None,
        };
        if signing_after.is_none() {
            let table = txn.open_table(KEYS).map_err(unavailable)?;
            let start = match &after {
                Some(RecordId::Key { tenant, kid }) => [&key_of(tenant, *kid)[..], &[0]].concat(),
                _ => Vec::new(),
            };
            for entry in table.range(&start[..]..).map_err(unavailable)? {
                if out.len() == limit {
                    return Ok(out);
                }
                let (k, v) = entry.map_err(unavailable)?;
                let k = k.value();
                let (tenant, kid) = split_key(k)?;
                let meta = meta_of(&tenant, kid, v.value())?;
                out.push(RawRecord {
                    id: RecordId::Key { tenant, kid },
                    content_id: meta.content_id,
                    master_key_version: meta.master_key_version,
                    bytes: v.value().to_vec(),
                });
            }
        }
        let table = txn.open_table(SIGNING).map_err(unavailable)?;
        let range = match &signing_after {
            Some(t) => table.range::<&str>((
                std::ops::Bound::Excluded(t.as_str()),
                std::ops::Bound::Unbounded,
            )),
            None => table.range::<&str>(..),
        }
        .map_err(unavailable)?;
        for entry in range {
            if out.len() == limit {
                break;
            }
            let (k, v) = entry.map_err(unavailable)?;
            out.push(RawRecord {
                id: RecordId::Signing {
                    tenant: k.value().to_owned(),
                },
                content_id: String::new(),
                master_key_version: signing::master_key_version(v.value()).unwrap_or(0),
                bytes: v.value().to_vec(),
            });
        }
        Ok(out)
    }

    fn put_raw_sync(&self, records: Vec<RawWrite>) -> Result<Vec<RawOutcome>, StoreError> {
        if let Some(reason) = self.shared.fault() {
            return Err(StoreError::Unavailable(format!(
                "the key store cannot commit: {reason}"
            )));
        }
        let db = self.shared.db()?;
        let txn = db.begin_write().map_err(unavailable)?;
        let mut out = Vec::with_capacity(records.len());
        {
            let mut keys = txn.open_table(KEYS).map_err(unavailable)?;
            let mut index = txn.open_multimap_table(BY_CONTENT).map_err(unavailable)?;
            let mut signing_table = txn.open_table(SIGNING).map_err(unavailable)?;
            for w in records {
                let current = match &w.record.id {
                    RecordId::Key { tenant, kid } => keys
                        .get(&key_of(tenant, *kid)[..])
                        .map_err(unavailable)?
                        .map(|v| v.value().to_vec()),
                    RecordId::Signing { tenant } => signing_table
                        .get(tenant.as_str())
                        .map_err(unavailable)?
                        .map(|v| v.value().to_vec()),
                };
                let outcome = raw_outcome(current.as_deref(), &w);
                if outcome == RawOutcome::Written {
                    match &w.record.id {
                        RecordId::Key { tenant, kid } => {
                            keys.insert(&key_of(tenant, *kid)[..], &w.record.bytes[..])
                                .map_err(unavailable)?;
                            if current.is_none() {
                                index
                                    .insert(
                                        &content_key_of(tenant, &w.record.content_id)[..],
                                        &kid.as_bytes()[..],
                                    )
                                    .map_err(unavailable)?;
                            }
                        }
                        RecordId::Signing { tenant } => {
                            signing_table
                                .insert(tenant.as_str(), &w.record.bytes[..])
                                .map_err(unavailable)?;
                        }
                    }
                }
                out.push(outcome);
            }
        }
        txn.commit().map_err(unavailable)?;
        Ok(out)
    }
}

/// Splits a `KEYS` table key into tenant and KID.
fn split_key(k: &[u8]) -> Result<(String, KeyId), StoreError> {
    let bad = || StoreError::Corrupt("bad key in the keys table".into());
    if k.len() < 17 {
        return Err(bad());
    }
    let (tenant, rest) = k.split_at(k.len() - 17);
    if rest[0] != 0 {
        return Err(bad());
    }
    let tenant = String::from_utf8(tenant.to_vec()).map_err(|_| bad())?;
    let kid = KeyId::from_bytes(rest[1..].try_into().map_err(|_| bad())?);
    Ok((tenant, kid))
}

/// Applies every job's batch in the group's write transaction, the key
/// table and the content index opened once for all of them. A conflicting
/// or corrupt batch gets its own error; any other error fails the group.
fn apply_group(
    txn: &redb::WriteTransaction,
    ring: &Keyring,
    rng: &dyn SecureRandom,
    jobs: &[Job],
) -> Result<Vec<Result<Issued, StoreError>>, StoreError> {
    let mut table = txn.open_table(KEYS).map_err(unavailable)?;
    let mut index = txn.open_multimap_table(BY_CONTENT).map_err(unavailable)?;
    let mut results = Vec::with_capacity(jobs.len());
    for j in jobs {
        match apply(&mut table, &mut index, ring, rng, &j.batch) {
            Err(e @ (StoreError::Conflict { .. } | StoreError::Corrupt(_))) => results.push(Err(e)),
            Err(e) => return Err(e),
            Ok(keys) => results.push(Ok(keys)),
        }
    }
    Ok(results)
}

/// Applies one batch inside the group's write transaction. Checks every
/// KID first, so a conflicting batch writes nothing.
fn apply(
    table: &mut redb::Table<&[u8], &[u8]>,
    index: &mut redb::MultimapTable<&[u8], &[u8]>,
    ring: &Keyring,
    rng: &dyn SecureRandom,
    batch: &IssueBatch,
) -> Result<Issued, StoreError> {
    let mut existing = Vec::with_capacity(batch.specs.len());
    for spec in &batch.specs {
        let found = match table
            .get(&key_of(&batch.tenant, spec.kid)[..])
            .map_err(unavailable)?
        {
            Some(v) => Some(decode_record(ring, &batch.tenant, spec.kid, v.value())?),
            None => None,
        };
        existing.push(found);
    }
    batch.check_bound(&existing)?;
    let content_key = content_key_of(&batch.tenant, &batch.content_id);
    let mut out = Vec::with_capacity(batch.specs.len());
    let mut created = 0;
    for (spec, found) in batch.specs.iter().zip(existing) {
        // A KID named twice in one request is one key.
        if let Some(earlier) = out.iter().find(|s: &&StoredKey| s.meta.kid == spec.kid) {
            out.push(earlier.clone());
            continue;
        }
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
                let fresh = new_key(ring, rng, batch, spec);
                index
                    .insert(&content_key[..], &spec.kid.as_bytes()[..])
                    .map_err(unavailable)?;
                created += 1;
                (fresh, true)
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
    Ok(Issued { keys: out, created })
}

/// The writer thread: group commits, and recovery after a failed one.
struct Writer {
    shared: Arc<Shared>,
    rng: Arc<dyn SecureRandom>,
    /// When recovery was last tried (at most once per interval).
    last_recovery: std::cell::Cell<Option<Instant>>,
}

impl Writer {
    fn run(self, rx: mpsc::Receiver<Job>) {
        loop {
            let first = if self.shared.fault().is_some() {
                match rx.recv_timeout(RECOVERY_INTERVAL) {
                    Ok(j) => Some(j),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(j) => Some(j),
                    Err(_) => return,
                }
            };
            if self.shared.fault().is_some() {
                self.recover();
            }
            let Some(first) = first else { continue };
            let mut jobs = vec![first];
            while jobs.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            if let Some(reason) = self.shared.fault() {
                let e = StoreError::Unavailable(format!("the key store cannot commit: {reason}"));
                for j in jobs {
                    let _ = j.reply.send(Err(e.clone()));
                }
                continue;
            }
            self.commit_group(jobs);
        }
    }

    /// Commits every job of the group in one transaction, then answers
    /// each. A failure of the transaction itself marks the store faulty.
    fn commit_group(&self, jobs: Vec<Job>) {
        // A new key draws its bytes, its IV and the record's nonce: fetched
        // for the whole group in one system call (`BatchRandom`).
        let expected: usize = jobs
            .iter()
            .map(|j| j.batch.specs.len() * NEW_KEY_RANDOM_BYTES)
            .sum();
        let rng = crate::crypto::BatchRandom::new(&*self.rng, expected);
        let outcome = self.shared.db().and_then(|db| {
            let txn = db.begin_write().map_err(unavailable)?;
            // A failing batch must leave no trace, so conflicts are detected
            // before anything is written (see `apply`); other errors abort
            // the whole group.
            match apply_group(&txn, &self.shared.ring, &rng, &jobs) {
                Ok(results) => {
                    txn.commit().map_err(unavailable)?;
                    Ok(results)
                }
                Err(e) => {
                    let _ = txn.abort();
                    Err(e)
                }
            }
        });
        match outcome {
            Ok(results) => {
                for (j, r) in jobs.into_iter().zip(results) {
                    let _ = j.reply.send(r);
                }
            }
            Err(e) => {
                let reason = match &e {
                    StoreError::Unavailable(m) => m.clone(),
                    other => other.to_string(),
                };
                tracing::error!(error = %reason, "key store commit failed; nothing of this group was stored; reopening the store");
                self.shared.set_fault(Some(reason));
                for j in jobs {
                    let _ = j.reply.send(Err(e.clone()));
                }
                self.last_recovery.set(None);
                self.recover();
            }
        }
    }

    /// Closes the database, opens it again and probes it; clears the fault
    /// when the probe commits.
    fn recover(&self) {
        let now = Instant::now();
        if self
            .last_recovery
            .get()
            .is_some_and(|t| now.duration_since(t) < RECOVERY_INTERVAL)
        {
            return;
        }
        self.last_recovery.set(Some(now));
        let old = self.shared.db.write().ok().and_then(|mut g| g.take());
        if let Some(old) = old {
            // Readers hold the database for one transaction at most.
            let deadline = Instant::now() + RELEASE_WAIT;
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(old);
        }
        let db = match (self.shared.opener)() {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(error = %e, "key store: reopening failed; retrying");
                return;
            }
        };
        let probed = probe(&db);
        // Reads are served again even if commits still fail.
        if let Ok(mut g) = self.shared.db.write() {
            *g = Some(Arc::new(db));
        }
        match probed {
            Ok(()) => {
                tracing::info!("key store recovered: commits succeed again");
                self.shared.set_fault(None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "key store still cannot commit; retrying");
                self.shared.set_fault(Some(e.to_string()));
            }
        }
    }
}
