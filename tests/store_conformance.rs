//! One conformance suite for every store backend: each check below runs
//! against the embedded store, against PostgreSQL (a fresh database on the
//! server of `CPIXD_TEST_PG_URL`; skipped with the reason when there is
//! none, failed under CI=true), and against PostgreSQL with serializable
//! transactions (where concurrent writers get SQLSTATE 40001, as on
//! CockroachDB, and are retried). "Two nodes" are two store instances on
//! the same storage.

mod common;

use cpixd::crypto::{MasterKey, OsRandom, SeededRandom};
use cpixd::ids::KeyId;
use cpixd::keys::{
    IssueBatch, KeySpec, KeyStore, Keyring, RawOutcome, RawRecord, RawWrite, RecordId, StoreError,
};
use cpixd::licence::log::{LicenceLog, LogEntry, RequestType};
use cpixd::licence::DrmSystem;
use std::sync::Arc;
use std::time::Duration;

/// Where a backend keeps its data.
enum Backend {
    Embedded(tempfile::TempDir),
    Postgres(String),
}

fn master(version: u32) -> MasterKey {
    MasterKey::generate(version, &SeededRandom::new(u64::from(version) * 7))
}

fn ring(versions: &[u32]) -> Keyring {
    Keyring::new(versions.iter().map(|&v| master(v)).collect()).unwrap()
}

impl Backend {
    fn embedded() -> Backend {
        Backend::Embedded(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Option<Backend> {
        common::pg::database().map(Backend::Postgres)
    }

    /// PostgreSQL with every transaction SERIALIZABLE, as distributed
    /// PostgreSQL-compatible databases run them: concurrent first requests
    /// then fail with SQLSTATE 40001 and must be retried.
    fn postgres_serializable() -> Option<Backend> {
        common::pg::database().map(|url| {
            Backend::Postgres(format!(
                "{url}?options=-c%20default_transaction_isolation%3Dserializable"
            ))
        })
    }

    fn config(&self) -> cpixd::config::Config {
        let mut text = format!(
            "[[tenant]]\nid = \"t\"\napi_key_sha256 = [\"{}\"]\n",
            "ab".repeat(32)
        );
        let data_dir = match self {
            Backend::Embedded(d) => d.path().to_owned(),
            Backend::Postgres(url) => {
                text.push_str(&format!("[store]\nbackend = \"postgres\"\nurl = {url:?}\n"));
                std::env::temp_dir()
            }
        };
        let file = cpixd::config::parse_file(&text).unwrap();
        let over = cpixd::config::Overrides {
            listen: None,
            data_dir: Some(data_dir),
        };
        cpixd::config::validate(file, &over).unwrap()
    }

    /// A node: a store instance on this storage (must run in a
    /// multi-threaded runtime).
    async fn open_with(&self, ring: Keyring) -> Result<cpixd::store::Backends, StoreError> {
        cpixd::store::open(
            &self.config(),
            ring,
            Arc::new(OsRandom),
            true,
            cpixd::store::Purpose::Serve,
        )
        .await
    }

    async fn open(&self) -> Arc<dyn KeyStore> {
        self.open_with(ring(&[1])).await.unwrap().keys
    }

    /// A second node. The embedded store is single-process: its second
    /// "node" is the same instance.
    async fn second(&self, first: &Arc<dyn KeyStore>) -> Arc<dyn KeyStore> {
        match self {
            Backend::Embedded(_) => first.clone(),
            Backend::Postgres(_) => self.open().await,
        }
    }
}

fn batch(cid: &str, kids: &[u8], wants_iv: bool) -> IssueBatch {
    IssueBatch {
        tenant: "t".into(),
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

fn kid(b: u8) -> KeyId {
    KeyId::from_bytes([b; 16])
}

/// Runs a check against both backends.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(super::Backend::embedded()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(b) = super::Backend::postgres() {
                    super::$name(b).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_serializable() {
                if let Some(b) = super::Backend::postgres_serializable() {
                    super::$name(b).await
                }
            }
        }
    )*};
}

conformance!(
    keys_are_stable_scoped_and_survive_reopen,
    a_conflicting_batch_writes_nothing,
    concurrent_first_requests_get_one_key,
    listing_is_ordered_paged_and_keyless,
    corrupt_and_unreadable_records_are_errors,
    master_key_versions_and_rewrap,
    signing_keys_are_shared_and_rotate,
    raw_writes_report_what_they_did,
    import_follows_the_binding_rules,
);

async fn keys_are_stable_scoped_and_survive_reopen(b: Backend) {
    let first = {
        let store = b.open().await;
        let a = store
            .get_or_create(batch("c1", &[1, 2], false))
            .await
            .unwrap();
        assert_eq!(a.created, 2);
        let again = store
            .get_or_create(batch("c1", &[1, 2], false))
            .await
            .unwrap();
        assert_eq!(again.created, 0);
        assert_eq!(a.keys, again.keys);
        assert_ne!(a.keys[0].key, a.keys[1].key);
        // Another tenant: an unrelated key for the same KID.
        let mut other = batch("c9", &[1], false);
        other.tenant = "t2".into();
        let other = store.get_or_create(other).await.unwrap().keys;
        assert_ne!(other[0].key, a.keys[0].key);
        // An IV is added once, to the same key, and then kept.
        let with_iv = store
            .get_or_create(batch("c1", &[1], true))
            .await
            .unwrap()
            .keys;
        assert!(with_iv[0].iv.is_some());
        assert_eq!(with_iv[0].key, a.keys[0].key);
        let again = store
            .get_or_create(batch("c1", &[1], true))
            .await
            .unwrap()
            .keys;
        assert_eq!(again, with_iv);
        // A request's own IV is stored when the key has none.
        let mut own = batch("c1", &[2], false);
        own.specs[0].request_iv = Some([9; 16]);
        let own = store.get_or_create(own).await.unwrap().keys;
        assert_eq!(own[0].iv, Some([9; 16]));
        assert_eq!(own[0].key, a.keys[1].key);
        // The same KID twice in one request is one key.
        let twice = store
            .get_or_create(batch("c3", &[5, 5], false))
            .await
            .unwrap();
        assert_eq!(twice.keys[0], twice.keys[1]);
        assert_eq!(twice.created, 1);
        store.shutdown();
        with_iv
    };
    let store = b.open().await;
    let reread = store
        .get_or_create(batch("c1", &[1], true))
        .await
        .unwrap()
        .keys;
    assert_eq!(reread, first);
    let got = store.get("t", kid(1)).await.unwrap().unwrap();
    assert_eq!(got, first[0]);
    assert!(store.get("t", kid(77)).await.unwrap().is_none());
    // Several at once (a licence): in the order asked, `None` where none
    // was issued, a KID asked twice answered twice, the tenant's own keys.
    let many = store
        .get_many("t", &[kid(77), kid(2), kid(1), kid(2)])
        .await
        .unwrap();
    assert_eq!(many.len(), 4);
    assert!(many[0].is_none());
    assert_eq!(many[1], store.get("t", kid(2)).await.unwrap());
    assert!(many[1].is_some());
    assert_eq!(many[2].as_ref(), Some(&first[0]));
    assert_eq!(many[3], many[1]);
    let other = store.get_many("t2", &[kid(1), kid(2)]).await.unwrap();
    assert!(other[0].as_ref().is_some_and(|k| k.key != first[0].key));
    assert!(other[1].is_none());
    assert!(store.get_many("t", &[]).await.unwrap().is_empty());
    store.shutdown();
}

async fn a_conflicting_batch_writes_nothing(b: Backend) {
    let store = b.open().await;
    store.get_or_create(batch("c1", &[1], false)).await.unwrap();
    // KID 1 belongs to c1: the batch (3, 1) for c2 is refused whole.
    let err = store
        .get_or_create(batch("c2", &[3, 1], false))
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict {
            kid: k,
            existing,
            requested,
        } => {
            assert_eq!(
                (k, existing.as_str(), requested.as_str()),
                (kid(1), "c1", "c2")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(store.get("t", kid(3)).await.unwrap().is_none());
    // From another node too.
    let other = b.second(&store).await;
    assert!(matches!(
        other.get_or_create(batch("c2", &[1], false)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(other
        .list("t", Some("c2"), None, 100)
        .await
        .unwrap()
        .is_empty());
    store.shutdown();
    other.shutdown();
}

async fn concurrent_first_requests_get_one_key(b: Backend) {
    let one = b.open().await;
    let two = b.second(&one).await;
    // 48 identical first requests for new KIDs (in both orders) on two nodes.
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let s = if i % 2 == 0 { one.clone() } else { two.clone() };
            let kids: &[u8] = if i % 3 == 0 { &[7, 8, 9] } else { &[9, 8, 7] };
            tokio::spawn(async move { s.get_or_create(batch("c", kids, i % 4 == 0)).await })
        })
        .collect();
    let mut seen = std::collections::HashMap::new();
    let mut created = 0;
    for t in tasks {
        let issued = t.await.unwrap().unwrap();
        created += issued.created;
        for k in issued.keys {
            let prev = seen.insert(k.meta.kid, k.key.clone());
            assert!(
                prev.is_none_or(|p| p == k.key),
                "two keys for {}",
                k.meta.kid
            );
        }
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(created, 3, "each KID created exactly once");
    // And every node reads the winner.
    for (k, key) in &seen {
        assert_eq!(&one.get("t", *k).await.unwrap().unwrap().key, key);
        assert_eq!(&two.get("t", *k).await.unwrap().unwrap().key, key);
    }
    one.shutdown();
    two.shutdown();
}

async fn listing_is_ordered_paged_and_keyless(b: Backend) {
    let store = b.open().await;
    store
        .get_or_create(batch("a", &[9, 3, 5], false))
        .await
        .unwrap();
    store.get_or_create(batch("b", &[4], true)).await.unwrap();
    let all = store.list("t", None, None, 100).await.unwrap();
    let kids: Vec<KeyId> = all.iter().map(|m| m.kid).collect();
    assert_eq!(kids, [kid(3), kid(4), kid(5), kid(9)]);
    assert!(all
        .iter()
        .all(|m| m.tenant == "t" && m.master_key_version == 1));
    assert_eq!(all[1].content_id, "b");
    assert!(all[1].has_iv && !all[0].has_iv);
    let a: Vec<KeyId> = store
        .list("t", Some("a"), None, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.kid)
        .collect();
    assert_eq!(a, [kid(3), kid(5), kid(9)]);
    // Pages.
    let p1 = store.list("t", Some("a"), None, 2).await.unwrap();
    let p2 = store
        .list("t", Some("a"), Some(p1[1].kid), 2)
        .await
        .unwrap();
    assert_eq!(p1.len(), 2);
    assert_eq!(p2.iter().map(|m| m.kid).collect::<Vec<_>>(), [kid(9)]);
    let q = store.list("t", None, Some(kid(4)), 1).await.unwrap();
    assert_eq!(q[0].kid, kid(5));
    assert!(store
        .list("nobody", None, None, 10)
        .await
        .unwrap()
        .is_empty());
    store.shutdown();
}

async fn corrupt_and_unreadable_records_are_errors(b: Backend) {
    let store = b.open().await;
    store.get_or_create(batch("c", &[1], false)).await.unwrap();
    let good = store.raw_records(None, 10).await.unwrap();
    let rec = good
        .iter()
        .find(|r| matches!(r.id, RecordId::Key { .. }))
        .unwrap()
        .clone();
    // Flip a byte of the sealed part: the envelope no longer authenticates.
    let mut bad = rec.clone();
    let last = bad.bytes.len() - 1;
    bad.bytes[last] ^= 1;
    let out = store
        .put_raw(vec![RawWrite {
            record: bad,
            expected: Some(rec.bytes.clone()),
        }])
        .await
        .unwrap();
    assert_eq!(out, [RawOutcome::Written]);
    assert!(matches!(
        store.get("t", kid(1)).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.get_or_create(batch("c", &[1], false)).await,
        Err(StoreError::Corrupt(_))
    ));
    // Listing reads metadata only: still fine.
    assert_eq!(store.list("t", None, None, 10).await.unwrap().len(), 1);
    store.shutdown();
    drop(store);
    // A record whose master key is not loaded.
    let b2 = match &b {
        Backend::Embedded(_) => Backend::embedded(),
        Backend::Postgres(_) => Backend::postgres().unwrap(),
    };
    let v2 = b2.open_with(ring(&[2])).await.unwrap().keys;
    v2.get_or_create(batch("c", &[2], false)).await.unwrap();
    v2.shutdown();
    drop(v2);
    match b2.open_with(ring(&[1])).await {
        // PostgreSQL refuses a node without the key that wrote the data...
        Err(e) => assert!(matches!(b2, Backend::Postgres(_)), "{e}"),
        // ...the embedded store opens and reports the record unreadable.
        Ok(v1) => {
            let e = v1.keys.get("t", kid(2)).await.unwrap_err();
            assert!(e.to_string().contains("master key version 2"), "{e}");
            v1.keys.shutdown();
        }
    }
}

async fn master_key_versions_and_rewrap(b: Backend) {
    {
        let v1 = b.open_with(ring(&[1])).await.unwrap().keys;
        v1.get_or_create(batch("c", &[1, 2], true)).await.unwrap();
        v1.signing_keys("t").await.unwrap();
        v1.shutdown();
    }
    // A new version joins the ring: old records still open, new ones use it.
    let both = ring(&[1, 2]);
    let node = b.open_with(both.clone()).await.unwrap().keys;
    let before = node.get("t", kid(1)).await.unwrap().unwrap();
    assert_eq!(before.meta.master_key_version, 1);
    node.get_or_create(batch("c", &[3], false)).await.unwrap();
    assert_eq!(
        node.get("t", kid(3))
            .await
            .unwrap()
            .unwrap()
            .meta
            .master_key_version,
        2
    );
    // Rewrap, in pages, compare-and-swap.
    let mut after = None;
    let mut rewrapped = 0;
    loop {
        let page = node.raw_records(after.clone(), 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let writes: Vec<RawWrite> = page
            .iter()
            .filter_map(|r| {
                cpixd::keys::rewrap(&both, &OsRandom, r)
                    .unwrap()
                    .map(|new| RawWrite {
                        record: new,
                        expected: Some(r.bytes.clone()),
                    })
            })
            .collect();
        rewrapped += writes.len();
        for o in node.put_raw(writes).await.unwrap() {
            assert_eq!(o, RawOutcome::Written);
        }
    }
    assert_eq!(rewrapped, 3, "two keys and the signing keys were under v1");
    node.shutdown();
    drop(node);
    // Version 1 leaves the ring: everything still opens, unchanged.
    let v2 = b.open_with(ring(&[2])).await.unwrap().keys;
    let after = v2.get("t", kid(1)).await.unwrap().unwrap();
    assert_eq!(after.key, before.key);
    assert_eq!(after.iv, before.iv);
    assert_eq!(after.meta.master_key_version, 2);
    assert_eq!(v2.signing_keys("t").await.unwrap().len(), 1);
    for r in v2.raw_records(None, 100).await.unwrap() {
        cpixd::keys::verify_raw(&ring(&[2]), &r).unwrap();
    }
    v2.shutdown();
}

async fn signing_keys_are_shared_and_rotate(b: Backend) {
    let one = b.open().await;
    let two = b.second(&one).await;
    let (a, c) = tokio::join!(one.signing_keys("t"), two.signing_keys("t"));
    let (a, c) = (a.unwrap(), c.unwrap());
    assert_eq!(a, c, "both nodes see the one first key");
    assert_eq!(a.len(), 1);
    let rotated = one
        .rotate_signing_key("t", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(rotated.len(), 2);
    assert_eq!(rotated[0].version, 2);
    assert!(rotated[1].retires_ms.is_some());
    assert_eq!(two.signing_keys("t").await.unwrap(), rotated);
    assert_ne!(
        one.signing_keys("other").await.unwrap()[0].secret,
        rotated[0].secret
    );
    one.shutdown();
    two.shutdown();
}

async fn raw_writes_report_what_they_did(b: Backend) {
    let store = b.open().await;
    store.get_or_create(batch("c", &[1], false)).await.unwrap();
    let existing = store.raw_records(None, 10).await.unwrap();
    assert_eq!(existing.len(), 1);
    let mut fresh = existing[0].clone();
    fresh.id = RecordId::Key {
        tenant: "u".into(),
        kid: kid(1),
    };
    let insert = |r: RawRecord| RawWrite {
        record: r,
        expected: None,
    };
    let out = store
        .put_raw(vec![
            insert(existing[0].clone()),
            // Another tenant: the record is bound to tenant t, so it is
            // stored but cannot be opened as u's key.
            insert(fresh.clone()),
            RawWrite {
                record: existing[0].clone(),
                expected: Some(b"not what is there".to_vec()),
            },
        ])
        .await
        .unwrap();
    assert_eq!(out[0], RawOutcome::Identical);
    assert_eq!(out[1], RawOutcome::Written);
    assert_eq!(out[2], RawOutcome::Identical);
    assert!(matches!(
        store.get("u", kid(1)).await,
        Err(StoreError::Corrupt(_))
    ));
    let mut other = existing[0].clone();
    other.bytes.push(0);
    let out = store.put_raw(vec![insert(other)]).await.unwrap();
    assert_eq!(out, [RawOutcome::Differs]);
    // Paging walks keys in (tenant, KID) order, then signing keys.
    store.signing_keys("t").await.unwrap();
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store.raw_records(after.clone(), 1).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        ids.push(last.id.clone());
    }
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(matches!(ids[2], RecordId::Signing { .. }));
    store.shutdown();
}

async fn import_follows_the_binding_rules(b: Backend) {
    use cpixd::portability::{import, ImportKey, ImportOutcome};
    let store = b.open().await;
    let issued = store
        .get_or_create(batch("c", &[1], false))
        .await
        .unwrap()
        .keys;
    let key = |k: &[u8; 16]| cpixd::crypto::ContentKey::from_slice(k).unwrap();
    let keys = [
        ImportKey {
            kid: kid(1),
            key: issued[0].key.clone(),
            iv: None,
            scheme: None,
        },
        ImportKey {
            kid: kid(2),
            key: key(&[2; 16]),
            iv: Some([3; 16]),
            scheme: Some("cbcs".into()),
        },
    ];
    let r = ring(&[1]);
    let out = import(&*store, &r, &OsRandom, "t", "c", "test", &keys)
        .await
        .unwrap();
    assert_eq!(out[0], (kid(1), ImportOutcome::Identical));
    assert_eq!(out[1], (kid(2), ImportOutcome::New));
    let got = store.get("t", kid(2)).await.unwrap().unwrap();
    assert_eq!((got.key, got.iv), (key(&[2; 16]), Some([3; 16])));
    assert_eq!(got.meta.scheme.as_deref(), Some("cbcs"));
    // Again: identical. Another key or content id: conflict, nothing changes.
    let again = import(&*store, &r, &OsRandom, "t", "c", "test", &keys[1..])
        .await
        .unwrap();
    assert_eq!(again[0].1, ImportOutcome::Identical);
    let other = ImportKey {
        kid: kid(2),
        key: key(&[5; 16]),
        iv: None,
        scheme: None,
    };
    let out = import(&*store, &r, &OsRandom, "t", "c", "test", &[other])
        .await
        .unwrap();
    assert!(matches!(out[0].1, ImportOutcome::Conflict(_)));
    let moved = ImportKey {
        kid: kid(2),
        key: key(&[2; 16]),
        iv: None,
        scheme: None,
    };
    let out = import(&*store, &r, &OsRandom, "t", "d", "test", &[moved])
        .await
        .unwrap();
    assert!(matches!(out[0].1, ImportOutcome::Conflict(_)));
    assert_eq!(
        store.get("t", kid(2)).await.unwrap().unwrap().key,
        key(&[2; 16])
    );
    store.shutdown();
}

// The licence log: written by a writer thread, read on the blocking pool,
// so the checks call it from plain threads.

fn entry(tenant: &str, time_ms: u64, status: u16) -> LogEntry {
    LogEntry {
        time_ms,
        tenant: tenant.into(),
        system: Some(DrmSystem::ClearKey),
        request_type: RequestType::License,
        token_user_id: Some("viewer".into()),
        token_content_id: Some("c".into()),
        http_status: status,
        error_code: None,
        error_message: None,
        ip: None,
        user_agent: None,
        payload_length: 1,
        response_length: 2,
        duration_us: 3,
        kids: vec![kid(4)],
        license_url: "u".into(),
    }
}

fn times(log: &dyn LicenceLog, tenant: &str, newest_first: bool) -> Vec<u64> {
    let mut out = Vec::new();
    log.scan(tenant, 0, u64::MAX >> 17, newest_first, &mut |v| {
        out.push(v.time_ms);
        true
    })
    .unwrap();
    out
}

fn licence_log_check(b: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opened = rt.block_on(b.open_with(ring(&[1]))).unwrap();
    let log = opened.licence_log.unwrap();
    log.append(&[
        entry("a", 30, 200),
        entry("b", 10, 200),
        entry("a", 10, 403),
        entry("a", 10, 200),
    ])
    .unwrap();
    log.append(&[entry("a", 20, 200), entry("ab", 15, 200)])
        .unwrap();
    // Another node's log on the same storage sees the same entries.
    let second = match &b {
        Backend::Embedded(_) => log.clone(),
        Backend::Postgres(_) => rt
            .block_on(b.open_with(ring(&[1])))
            .unwrap()
            .licence_log
            .unwrap(),
    };
    for l in [&log, &second] {
        assert_eq!(times(&**l, "a", false), [10, 10, 20, 30]);
        assert_eq!(times(&**l, "a", true), [30, 20, 10, 10]);
        assert_eq!(times(&**l, "b", false), [10]);
        assert_eq!(times(&**l, "ab", false), [15]);
    }
    let mut seen = Vec::new();
    log.scan("a", 10, 30, false, &mut |v| {
        seen.push((v.time_ms, v.id, v.http_status, v.kid_list().len()));
        seen.len() < 2
    })
    .unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].3, 1);
    let mut statuses: Vec<u16> = seen.iter().map(|s| s.2).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 403]);
    let mut got = Vec::new();
    second
        .get("a", &[seen[1].1, 999 << 16], &mut |v| got.push(v.time_ms))
        .unwrap();
    assert_eq!(got, [10]);
    // Retention: age, then count per tenant.
    assert_eq!(log.prune(15, 100).unwrap(), 3);
    assert_eq!(times(&*log, "a", false), [20, 30]);
    assert!(times(&*log, "b", false).is_empty());
    assert_eq!(log.prune(0, 1).unwrap(), 1);
    assert_eq!(times(&*log, "a", false), [30]);
    assert_eq!(times(&*log, "ab", false), [15]);
    // A scan longer than one page of the backend.
    let many: Vec<LogEntry> = (0..25_000).map(|i| entry("m", 1000 + i, 200)).collect();
    log.append(&many).unwrap();
    let all = times(&*log, "m", false);
    assert_eq!(all.len(), 25_000);
    assert!(all.windows(2).all(|w| w[0] <= w[1]));
    let back = times(&*log, "m", true);
    assert_eq!(back.len(), 25_000);
    assert_eq!(back[0], 1000 + 24_999);
    opened.keys.shutdown();
}

#[test]
fn licence_log_embedded() {
    licence_log_check(Backend::embedded());
}

#[test]
fn licence_log_postgres() {
    if let Some(b) = Backend::postgres() {
        licence_log_check(b);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_schema_newer_than_it_knows() {
    let Some(b) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres(url) = &b else {
        unreachable!()
    };
    // Migrated once; a later version then appears in the database.
    b.open().await.shutdown();
    common::pg::execute(
        url,
        &["INSERT INTO cpixd_schema_migrations (version) VALUES (9999)".to_owned()],
    );
    let e = b.open_with(ring(&[1])).await.err().expect("refused");
    assert!(e.to_string().contains("newer than this cpixd knows"), "{e}");
}
