//! The embedded store through a full disk: commits fail, the store says it
//! is not ready and refuses new keys at once, keys already issued are still
//! served, and once space is back the store recovers by itself — no
//! restart, no key lost or changed. Run twice: in process over a storage
//! backend that fails on demand, and (where the machine lets the test mount
//! one) a real `cpixd serve` on a 4 MiB tmpfs data directory.

mod common;

use cpixd::crypto::{MasterKey, OsRandom, SeededRandom};
use cpixd::ids::KeyId;
use cpixd::keys::{IssueBatch, KeySpec, KeyStore, Keyring, StoreError};
use cpixd::store::embedded::{EmbeddedStore, Opener};
use redb::backends::FileBackend;
use redb::StorageBackend;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A file backend on a disk that fills up while `full` is set: the file
/// cannot grow, and only the space it already has can be written (what a
/// full file system does to a database file).
#[derive(Debug)]
struct Flaky {
    inner: FileBackend,
    full: Arc<AtomicBool>,
}

fn no_space() -> std::io::Error {
    std::io::Error::from_raw_os_error(28) // ENOSPC
}

impl StorageBackend for Flaky {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) && len > self.inner.len()? {
            return Err(no_space());
        }
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) && offset + data.len() as u64 > self.inner.len()? {
            return Err(no_space());
        }
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }
}

fn batch(content: &str, kids: &[u8]) -> IssueBatch {
    IssueBatch {
        tenant: "t".into(),
        content_id: content.into(),
        protocol: "speke-2.0".into(),
        requester: "test".into(),
        specs: kids
            .iter()
            .map(|&b| KeySpec {
                kid: KeyId::from_bytes([b; 16]),
                scheme: Some("cenc".into()),
                request_iv: None,
                wants_iv: false,
            })
            .collect(),
    }
}

/// A batch of 100 new keys for content `big-n`.
fn big_batch(n: u128) -> IssueBatch {
    let mut b = batch(&format!("big-{n}"), &[]);
    b.specs = (0..100u128)
        .map(|i| KeySpec {
            kid: KeyId::from_bytes(((n << 64) | i | (1 << 127)).to_be_bytes()),
            scheme: Some("cenc".into()),
            request_iv: None,
            wants_iv: false,
        })
        .collect();
    b
}

async fn wait_ready(store: &EmbeddedStore, ready: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.ready().await.is_ok() != ready {
        assert!(
            Instant::now() < deadline,
            "store never became ready={ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_full_disk_is_survived_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let full = Arc::new(AtomicBool::new(false));
    let opener: Opener = {
        let (path, full) = (path.clone(), full.clone());
        Arc::new(move || {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(redb::DatabaseError::from)?;
            redb::Builder::new().create_with_backend(Flaky {
                inner: FileBackend::new(file)?,
                full: full.clone(),
            })
        })
    };
    let ring = Keyring::new(vec![MasterKey::generate(1, &SeededRandom::new(3))]).unwrap();
    let store = EmbeddedStore::open_with(opener, ring, Arc::new(OsRandom)).unwrap();
    let before = store.get_or_create(batch("c1", &[1, 2])).await.unwrap();
    assert_eq!(before.created, 2);
    assert!(store.ready().await.is_ok());

    full.store(true, Ordering::SeqCst);
    // Requests for new keys fail once the file has to grow (never a key
    // handed out without its commit).
    let mut n = 0u128;
    let err = loop {
        match store.get_or_create(big_batch(n)).await {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 1000, "the full disk never refused a commit");
    };
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    wait_ready(&store, false).await;
    // New keys are refused at once while the disk is full...
    let t = Instant::now();
    assert!(store.get_or_create(batch("c2", &[3])).await.is_err());
    assert!(t.elapsed() < Duration::from_secs(1));
    // ...and keys already issued are served unchanged where the database
    // could be reopened on the full disk, or refused (503), never changed.
    match store.get_or_create(batch("c1", &[1, 2])).await {
        Ok(again) => {
            assert_eq!(again.keys, before.keys);
            assert_eq!(again.created, 0);
        }
        Err(e) => assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}"),
    }

    // Space comes back: the store recovers by itself.
    full.store(false, Ordering::SeqCst);
    wait_ready(&store, true).await;
    let new = store.get_or_create(batch("c2", &[3])).await.unwrap();
    assert_eq!(new.created, 1);
    let again = store.get_or_create(batch("c1", &[1, 2])).await.unwrap();
    assert_eq!(again.keys, before.keys);
    store.shutdown();

    // Everything is on disk: a fresh open sees the same keys.
    let ring = Keyring::new(vec![MasterKey::generate(1, &SeededRandom::new(3))]).unwrap();
    let reopened = EmbeddedStore::open(&path, ring, Arc::new(OsRandom)).unwrap();
    let all = reopened
        .get_or_create(batch("c1", &[1, 2]))
        .await
        .unwrap()
        .keys;
    assert_eq!(all, before.keys);
    assert_eq!(
        reopened
            .get_or_create(batch("c2", &[3]))
            .await
            .unwrap()
            .keys,
        new.keys
    );
}

/// Mounts a tmpfs of `size` on `dir`; `false` (with the reason printed)
/// where the machine does not allow it.
fn mount_tmpfs(dir: &std::path::Path, size: &str) -> bool {
    let out = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "SKIP: cannot mount a tmpfs here ({}); the in-process test covers the full disk",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("SKIP: cannot run mount ({e}); the in-process test covers the full disk");
            false
        }
    }
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_real_server_on_a_full_tmpfs_recovers_when_space_returns() {
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if !mount_tmpfs(&data, "4m") {
        return;
    }
    let _unmount = Unmount(data.clone());
    let config = outer.path().join("cpixd.toml");
    std::fs::write(&config, common::server::config_toml()).unwrap();
    let server = common::child::start(&data, Some(&config), &[("CPIXD_LOG", "info")]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = server.base.clone();
    let get = |path: &str| {
        rt.block_on(common::http::send(
            "GET",
            &format!("{base}{path}"),
            &[],
            vec![],
        ))
        .status
    };
    let speke = |n: u32| {
        let body = format!(
            r#"<cpix:CPIX id="c{n}" xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList><cpix:ContentKey kid="{n:08x}-0000-4000-8000-000000000000"/></cpix:ContentKeyList><cpix:DRMSystemList><cpix:DRMSystem kid="{n:08x}-0000-4000-8000-000000000000" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH/></cpix:DRMSystem></cpix:DRMSystemList></cpix:CPIX>"#
        );
        rt.block_on(common::http::send(
            "POST",
            &format!("{base}/kms/v1/speke"),
            &[
                ("x-api-key", common::server::ACME_KEY),
                ("x-tenant-id", "acme"),
            ],
            body.into_bytes(),
        ))
    };
    let first = speke(1);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(get("/readyz"), 200);
    // Fill the disk.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // New keys now fail (never a 200 without a commit) and readiness says so.
    let mut refused = None;
    for n in 2..2000 {
        let r = speke(n);
        if r.status != 200 {
            refused = Some((n, r.status));
            break;
        }
    }
    let (n, status) = refused.expect("the full disk never refused a new key");
    assert_eq!(status, 503);
    assert_eq!(get("/readyz"), 503);
    // Issued keys are served unchanged, or refused while the store cannot
    // be reopened; never changed.
    let again = speke(1);
    assert!(
        (again.status == 200 && again.body == first.body) || again.status == 503,
        "{} {}",
        again.status,
        again.text()
    );
    // Space returns: the server recovers without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while get("/readyz") != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = speke(n);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(speke(1).body, first.body);
    server.sigterm();
}
