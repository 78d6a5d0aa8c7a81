//! The key store on PostgreSQL. A request whose keys all exist costs one
//! round trip (one `SELECT … = ANY`); a request with new keys is one
//! transaction: insert the new records (`ON CONFLICT DO NOTHING`, in KID
//! order so concurrent batches lock alike); when some KID already existed,
//! lock and read every record of the batch, refuse the whole batch on a
//! binding conflict and add missing IVs; commit. Whichever node inserts a KID first wins and every other
//! node answers with that key.

use super::{Database, DbError};
use crate::crypto::SecureRandom;
use crate::ids::KeyId;
use crate::keys::signing::{self, SigningKey};
use crate::keys::*;
use std::sync::Arc;

/// The PostgreSQL key store.
pub struct PostgresStore {
    db: Database,
    ring: Keyring,
    rng: Arc<dyn SecureRandom>,
}

fn kid_of(bytes: &[u8]) -> Result<KeyId, StoreError> {
    bytes
        .try_into()
        .map(KeyId::from_bytes)
        .map_err(|_| StoreError::Corrupt("a KID in the database is not 16 bytes".into()))
}

fn version_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl PostgresStore {
    /// A store on `db` (whose schema must be current).
    pub fn new(db: Database, ring: Keyring, rng: Arc<dyn SecureRandom>) -> PostgresStore {
        PostgresStore { db, ring, rng }
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Proves that this node's master keys are the ones the other nodes
    /// use: each version leaves a value sealed under it in the database on
    /// first use, and every later node must open it. A node started with
    /// another key of the same version is refused before it writes a record
    /// no other node could read.
    pub async fn check_master_keys(&self) -> Result<(), StoreError> {
        const AAD: &[u8] = b"cpixd-master-key-check-v1";
        for mk in self.ring.all() {
            let version = version_i32(mk.version());
            let sealed = mk.seal(AAD, b"cpixd", &*self.rng);
            let stored: Vec<u8> = self
                .db
                .run("master key check", |client| {
                    let sealed = sealed.clone();
                    async move {
                        client
                            .execute(
                                "INSERT INTO cpixd_master_keys (version, check_value) VALUES ($1, $2)
                                 ON CONFLICT (version) DO NOTHING",
                                &[&version, &sealed],
                            )
                            .await?;
                        Ok(client
                            .query_one(
                                "SELECT check_value FROM cpixd_master_keys WHERE version = $1",
                                &[&version],
                            )
                            .await?
                            .get(0))
                    }
                })
                .await?;
            if mk.open(AAD, &stored).is_none() {
                return Err(StoreError::Config(format!(
                    "master key version {} differs from the one the database was written with: \
                     every node must load the same master key file",
                    mk.version()
                )));
            }
        }
        Ok(())
    }

    /// Decodes `rows` (kid, record) into the keys of `kids` under
    /// `tenant`, in order; `None` for a KID not stored.
    fn keys_in_order(
        &self,
        tenant: &str,
        kids: impl Iterator<Item = KeyId>,
        rows: &[tokio_postgres::Row],
    ) -> Result<Vec<Option<StoredKey>>, StoreError> {
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let kid = kid_of(row.get::<_, &[u8]>(0))?;
            found.insert(kid, row.get::<_, &[u8]>(1));
        }
        kids.map(|kid| {
            found
                .get(&kid)
                .map(|bytes| decode_record(&self.ring, tenant, kid, bytes))
                .transpose()
        })
        .collect()
    }

    /// Decodes the rows of a batch, in request order; `None` for a KID not
    /// stored. A KID of another content id is a conflict.
    fn decode_rows(
        &self,
        batch: &IssueBatch,
        rows: &[tokio_postgres::Row],
    ) -> Result<Vec<Option<StoredKey>>, StoreError> {
        let found = self.keys_in_order(&batch.tenant, batch.specs.iter().map(|s| s.kid), rows)?;
        batch.check_bound(&found)?;
        Ok(found)
    }

    /// The transaction of a batch with something to write.
    async fn create(&self, batch: &IssueBatch) -> Result<Issued, StoreError> {
        let kids: Vec<&[u8]> = batch.specs.iter().map(|s| &s.kid.as_bytes()[..]).collect();
        self.db
            .run("issuing keys", |mut client| {
                let kids = kids.clone();
                async move {
                    // Candidate records for every KID, in KID order; the
                    // database keeps those it did not have.
                    let mut candidates: Vec<(KeyId, StoredKey, Vec<u8>)> = Vec::new();
                    for spec in &batch.specs {
                        if candidates.iter().any(|(k, _, _)| *k == spec.kid) {
                            continue;
                        }
                        let fresh = new_key(&self.ring, &*self.rng, batch, spec);
                        let record = encode_record(
                            &self.ring,
                            &*self.rng,
                            &fresh.meta,
                            &fresh.key,
                            fresh.iv.as_ref(),
                        );
                        candidates.push((spec.kid, fresh, record));
                    }
                    candidates.sort_by_key(|(k, _, _)| *k.as_bytes());
                    let new_kids: Vec<&[u8]> =
                        candidates.iter().map(|(k, _, _)| &k.as_bytes()[..]).collect();
                    let new_records: Vec<&[u8]> =
                        candidates.iter().map(|(_, _, r)| &r[..]).collect();
                    let version = version_i32(self.ring.current().version());
                    let tx = client.transaction().await?;
                    let insert = tx
                        .prepare_cached(
                            "INSERT INTO cpixd_keys (tenant, kid, content_id, master_key_version, record)
                             SELECT $1, k, $2, $3, r FROM unnest($4::bytea[], $5::bytea[]) AS t(k, r)
                             ORDER BY k
                             ON CONFLICT (tenant, kid) DO NOTHING
                             RETURNING kid",
                        )
                        .await?;
                    let inserted = tx
                        .query(
                            &insert,
                            &[&batch.tenant, &batch.content_id, &version, &new_kids, &new_records],
                        )
                        .await?;
                    let inserted: std::collections::HashSet<Vec<u8>> =
                        inserted.iter().map(|r| r.get::<_, Vec<u8>>(0)).collect();
                    let found = if inserted.len() == candidates.len() {
                        // All new (a channel start): the rows are ours.
                        batch
                            .specs
                            .iter()
                            .map(|spec| {
                                candidates
                                    .iter()
                                    .find(|(k, _, _)| *k == spec.kid)
                                    .map(|(_, s, _)| s.clone())
                            })
                            .collect()
                    } else {
                        // Some existed: lock and read them all as stored.
                        let select = tx
                            .prepare_cached(
                                "SELECT kid, record FROM cpixd_keys
                                 WHERE tenant = $1 AND kid = ANY($2) ORDER BY kid FOR UPDATE",
                            )
                            .await?;
                        let rows = tx.query(&select, &[&batch.tenant, &kids]).await?;
                        self.decode_rows(batch, &rows)?
                    };
                    // Keys that exist without the IV this request needs.
                    let mut updates: Vec<(KeyId, StoredKey, Vec<u8>)> = Vec::new();
                    let mut out = Vec::with_capacity(batch.specs.len());
                    for (spec, stored) in batch.specs.iter().zip(found) {
                        let Some(mut stored) = stored else {
                            return Err(DbError::Store(StoreError::Unavailable(format!(
                                "KID {} vanished inside its transaction",
                                spec.kid
                            ))));
                        };
                        if let Some((_, updated, _)) =
                            updates.iter().find(|(k, _, _)| *k == spec.kid)
                        {
                            out.push(updated.clone());
                            continue;
                        }
                        if stored.iv.is_none() && (spec.wants_iv || spec.request_iv.is_some()) {
                            stored.iv = Some(spec.request_iv.unwrap_or_else(|| {
                                crate::crypto::random_iv(&*self.rng, &stored.key)
                            }));
                            stored.meta.has_iv = true;
                            stored.meta.master_key_version = self.ring.current().version();
                            let record = encode_record(
                                &self.ring,
                                &*self.rng,
                                &stored.meta,
                                &stored.key,
                                stored.iv.as_ref(),
                            );
                            updates.push((spec.kid, stored.clone(), record));
                        }
                        out.push(stored);
                    }
                    if !updates.is_empty() {
                        let kids: Vec<&[u8]> =
                            updates.iter().map(|(k, _, _)| &k.as_bytes()[..]).collect();
                        let records: Vec<&[u8]> = updates.iter().map(|(_, _, r)| &r[..]).collect();
                        tx.execute(
                            "UPDATE cpixd_keys AS c SET record = t.r, master_key_version = $2
                             FROM unnest($3::bytea[], $4::bytea[]) AS t(k, r)
                             WHERE c.tenant = $1 AND c.kid = t.k",
                            &[&batch.tenant, &version, &kids, &records],
                        )
                        .await?;
                    }
                    tx.commit().await?;
                    let created = candidates
                        .iter()
                        .filter(|(k, _, _)| inserted.contains(&k.as_bytes()[..]))
                        .count();
                    Ok(Issued { keys: out, created })
                }
            })
            .await
    }

    /// Reads or creates the tenant's signing keys under a row lock and
    /// stores `change(current)` when it differs.
    async fn update_signing_keys(
        &self,
        tenant: &str,
        change: impl Fn(&[SigningKey]) -> Vec<SigningKey>,
    ) -> Result<Vec<SigningKey>, StoreError> {
        let change = &change;
        self.db
            .run("signing keys", |mut client| async move {
                let tx = client.transaction().await?;
                // A row to lock even for a tenant that has none yet.
                let version = version_i32(self.ring.current().version());
                let first = signing::encode(
                    &self.ring,
                    &*self.rng,
                    tenant,
                    &[SigningKey::generate(1, now_ms(), &*self.rng)],
                );
                tx.execute(
                    "INSERT INTO cpixd_signing_keys (tenant, master_key_version, record)
                     VALUES ($1, $2, $3) ON CONFLICT (tenant) DO NOTHING",
                    &[&tenant, &version, &first],
                )
                .await?;
                let row = tx
                    .query_one(
                        "SELECT record FROM cpixd_signing_keys WHERE tenant = $1 FOR UPDATE",
                        &[&tenant],
                    )
                    .await?;
                let current = signing::decode(&self.ring, tenant, row.get::<_, &[u8]>(0))?;
                let keys = change(&current);
                if keys != current {
                    let bytes = signing::encode(&self.ring, &*self.rng, tenant, &keys);
                    tx.execute(
                        "UPDATE cpixd_signing_keys SET record = $2, master_key_version = $3
                         WHERE tenant = $1",
                        &[&tenant, &bytes, &version],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(keys)
            })
            .await
    }
}

impl KeyStore for PostgresStore {
    fn get_or_create(&self, batch: IssueBatch) -> BoxFuture<'_, Result<Issued, StoreError>> {
        Box::pin(async move {
            let found = self.get_many(&batch.tenant, &batch.kids()).await?;
            if let Some(keys) = batch.answer_from(found)? {
                return Ok(Issued { keys, created: 0 });
            }
            self.create(&batch).await
        })
    }

    fn get_many<'a>(
        &'a self,
        tenant: &'a str,
        kids: &'a [KeyId],
    ) -> BoxFuture<'a, Result<Vec<Option<StoredKey>>, StoreError>> {
        Box::pin(async move {
            let raw: Vec<&[u8]> = kids.iter().map(|k| &k.as_bytes()[..]).collect();
            let rows = self
                .db
                .run("reading keys", |client| {
                    let raw = raw.clone();
                    async move {
                        let select = client
                            .prepare_cached(
                                "SELECT kid, record FROM cpixd_keys WHERE tenant = $1 AND kid = ANY($2)",
                            )
                            .await?;
                        Ok(client.query(&select, &[&tenant, &raw]).await?)
                    }
                })
                .await?;
            self.keys_in_order(tenant, kids.iter().copied(), &rows)
        })
    }

    fn list<'a>(
        &'a self,
        tenant: &'a str,
        content_id: Option<&'a str>,
        after: Option<KeyId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KeyMeta>, StoreError>> {
        Box::pin(async move {
            let after: Vec<u8> = after.map(|k| k.as_bytes().to_vec()).unwrap_or_default();
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = self
                .db
                .run("listing keys", |client| {
                    let after = after.clone();
                    async move {
                        Ok(match content_id {
                            Some(cid) => {
                                client
                                    .query(
                                        "SELECT kid, record FROM cpixd_keys
                                         WHERE tenant = $1 AND content_id = $2 AND kid > $3
                                         ORDER BY kid LIMIT $4",
                                        &[&tenant, &cid, &after, &limit],
                                    )
                                    .await?
                            }
                            None => {
                                client
                                    .query(
                                        "SELECT kid, record FROM cpixd_keys
                                         WHERE tenant = $1 AND kid > $2 ORDER BY kid LIMIT $3",
                                        &[&tenant, &after, &limit],
                                    )
                                    .await?
                            }
                        })
                    }
                })
                .await?;
            rows.iter()
                .map(|r| meta_of(tenant, kid_of(r.get::<_, &[u8]>(0))?, r.get::<_, &[u8]>(1)))
                .collect()
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.db.ping())
    }

    fn signing_keys<'a>(
        &'a self,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SigningKey>, StoreError>> {
        Box::pin(async move {
            let row = self
                .db
                .run("signing keys", |client| async move {
                    Ok(client
                        .query_opt(
                            "SELECT record FROM cpixd_signing_keys WHERE tenant = $1",
                            &[&tenant],
                        )
                        .await?)
                })
                .await?;
            match row {
                Some(r) => signing::decode(&self.ring, tenant, r.get::<_, &[u8]>(0)),
                None => self.update_signing_keys(tenant, |k| k.to_vec()).await,
            }
        })
    }

    fn rotate_signing_key<'a>(
        &'a self,
        tenant: &'a str,
        grace: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<SigningKey>, StoreError>> {
        Box::pin(async move {
            self.update_signing_keys(tenant, |existing| {
                signing::rotate(existing, now_ms(), grace, &*self.rng)
            })
            .await
        })
    }

    fn raw_records<'a>(
        &'a self,
        after: Option<RecordId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RawRecord>, StoreError>> {
        Box::pin(async move {
            let limit_i = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut out = Vec::new();
            let (key_after, signing_after) = match &after {
                None => (Some((String::new(), Vec::new())), String::new()),
                Some(RecordId::Key { tenant, kid }) => (
                    Some((tenant.clone(), kid.as_bytes().to_vec())),
                    String::new(),
                ),
                Some(RecordId::Signing { tenant }) => (None, tenant.clone()),
            };
            if let Some((t, k)) = key_after {
                let first = after.is_none();
                let rows = self
                    .db
                    .run("reading records", |client| {
                        let (t, k) = (t.clone(), k.clone());
                        async move {
                            Ok(client
                                .query(
                                    "SELECT tenant, kid, content_id, master_key_version, record
                                     FROM cpixd_keys WHERE $1 OR (tenant, kid) > ($2, $3)
                                     ORDER BY tenant, kid LIMIT $4",
                                    &[&first, &t, &k, &limit_i],
                                )
                                .await?)
                        }
                    })
                    .await?;
                for r in &rows {
                    out.push(RawRecord {
                        id: RecordId::Key {
                            tenant: r.get(0),
                            kid: kid_of(r.get::<_, &[u8]>(1))?,
                        },
                        content_id: r.get(2),
                        master_key_version: u32::try_from(r.get::<_, i32>(3)).unwrap_or(0),
                        bytes: r.get(4),
                    });
                }
                if out.len() == limit {
                    return Ok(out);
                }
            }
            let first = !matches!(after, Some(RecordId::Signing { .. }));
            let rest = i64::try_from(limit - out.len()).unwrap_or(i64::MAX);
            let rows = self
                .db
                .run("reading records", |client| {
                    let t = signing_after.clone();
                    async move {
                        Ok(client
                            .query(
                                "SELECT tenant, master_key_version, record FROM cpixd_signing_keys
                                 WHERE $1 OR tenant > $2 ORDER BY tenant LIMIT $3",
                                &[&first, &t, &rest],
                            )
                            .await?)
                    }
                })
                .await?;
            for r in &rows {
                out.push(RawRecord {
                    id: RecordId::Signing { tenant: r.get(0) },
                    content_id: String::new(),
                    master_key_version: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
                    bytes: r.get(2),
                });
            }
            Ok(out)
        })
    }

    fn put_raw<'a>(
        &'a self,
        records: Vec<RawWrite>,
    ) -> BoxFuture<'a, Result<Vec<RawOutcome>, StoreError>> {
        Box::pin(async move {
            let records = &records;
            self.db
                .run("writing records", |mut client| async move {
                    let tx = client.transaction().await?;
                    let mut out = Vec::with_capacity(records.len());
                    for w in records {
                        let r = &w.record;
                        let version = version_i32(r.master_key_version);
                        let current: Option<Vec<u8>> = match &r.id {
                            RecordId::Key { tenant, kid } => tx
                                .query_opt(
                                    "SELECT record FROM cpixd_keys WHERE tenant = $1 AND kid = $2 FOR UPDATE",
                                    &[tenant, &&kid.as_bytes()[..]],
                                )
                                .await?
                                .map(|row| row.get(0)),
                            RecordId::Signing { tenant } => tx
                                .query_opt(
                                    "SELECT record FROM cpixd_signing_keys WHERE tenant = $1 FOR UPDATE",
                                    &[tenant],
                                )
                                .await?
                                .map(|row| row.get(0)),
                        };
                        let outcome = raw_outcome(current.as_deref(), w);
                        if outcome == RawOutcome::Written {
                            match &r.id {
                                RecordId::Key { tenant, kid } => {
                                    tx.execute(
                                        "INSERT INTO cpixd_keys (tenant, kid, content_id, master_key_version, record)
                                         VALUES ($1, $2, $3, $4, $5)
                                         ON CONFLICT (tenant, kid) DO UPDATE
                                         SET record = excluded.record,
                                             master_key_version = excluded.master_key_version",
                                        &[tenant, &&kid.as_bytes()[..], &r.content_id, &version, &r.bytes],
                                    )
                                    .await?;
                                }
                                RecordId::Signing { tenant } => {
                                    tx.execute(
                                        "INSERT INTO cpixd_signing_keys (tenant, master_key_version, record)
                                         VALUES ($1, $2, $3)
                                         ON CONFLICT (tenant) DO UPDATE
                                         SET record = excluded.record,
                                             master_key_version = excluded.master_key_version",
                                        &[tenant, &version, &r.bytes],
                                    )
                                    .await?;
                                }
                            }
                        }
                        out.push(outcome);
                    }
                    tx.commit().await?;
                    Ok(out)
                })
                .await
        })
    }

    fn shutdown(&self) {
        self.db.close();
    }
}
