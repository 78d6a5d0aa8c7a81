//! Keys moving in and out of cpixd: `keys export` in every format (the
//! encrypted CPIX read back by the independent Python decryptor), `keys
//! import` into a second cpixd that then serves the same keys, `keys
//! rewrap` to a new master key after which the old one can go, `store copy`
//! from a data directory to PostgreSQL and back, and the HTTP inventory
//! and import (`GET /kms/v1/keys`, `POST /kms/v1/keys/import`).

mod common;

use common::burst::{ask, request, Keys};
use common::child;
use common::http::send;
use common::server::{config_toml, ACME_KEY};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ADMIN_KEY: &str = "acme-admin-key";

/// A data directory with its config (tenant acme has an admin key too).
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cpixd.toml");
    let admin = cpixd::crypto::sha256_hex(ADMIN_KEY.as_bytes());
    let text = config_toml().replacen(
        "[[tenant]]\nid = \"acme\"\n",
        &format!("[[tenant]]\nid = \"acme\"\nadmin_api_key_sha256 = [\"{admin}\"]\n"),
        1,
    );
    assert!(text.contains("admin_api_key_sha256"));
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

/// `cpixd ARGS` with extra environment variables.
fn cpixd_raw(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpixd"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `cpixd ARGS --config CONFIG --data-dir DIR`.
fn cpixd(dir: &Path, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = args.to_vec();
    all.extend([
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    cpixd_raw(&all, env)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Issues request `n` on a server over `dir`, then stops it.
async fn issue(dir: &Path, config: &Path, n: u64) -> Keys {
    let server = child::start(dir, Some(config), &[("CPIXD_LOG", "info")]);
    let keys = ask(&server.base, &request(n)).await.expect("keys");
    server.sigterm();
    keys
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn b64url(b: &[u8]) -> String {
    let mut s = String::new();
    cpixd::b64::encode_url_into(b, &mut s);
    s
}

fn kid_bytes(kid: &str) -> [u8; 16] {
    *cpixd::ids::KeyId::parse_uuid(kid).unwrap().as_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_export_reads_back_independently_and_imports_into_another_cpixd() {
    let (a, a_config) = data_dir();
    let keys = issue(a.path(), &a_config, 1).await;
    let r = &common::certs::pair()[0];
    let work = tempfile::tempdir().unwrap();
    let cert = work.path().join("recipient.pem");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        cpixd::b64::encode(&r.cert_der)
    );
    std::fs::write(&cert, pem).unwrap();
    let private = work.path().join("recipient.key");
    std::fs::write(&private, &r.key_pem).unwrap();
    let exported = work.path().join("export.xml");
    let cert_s = cert.to_str().unwrap();
    let out = ok(cpixd(
        a.path(),
        &a_config,
        &[
            "keys",
            "export",
            "--tenant",
            "acme",
            "--content-id",
            "burst-1",
            "--format",
            "cpix",
            "--recipient",
            cert_s,
        ],
        &[],
    ));
    assert!(
        !out.contains("PlainValue"),
        "no clear key in an encrypted export"
    );
    std::fs::write(&exported, &out).unwrap();
    // Read back by a decryptor we did not write (MACs first, then keys).
    if let Some(py) = common::python() {
        let expected: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|(k, v)| (k.clone(), cpixd::b64::encode(v).into()))
            .collect();
        let expect = work.path().join("expected.json");
        std::fs::write(&expect, serde_json::to_string(&expected).unwrap()).unwrap();
        let out = Command::new(py)
            .arg(common::root().join("tests/py/decrypt_check.py"))
            .args([&exported, &private, &expect])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("OK 2 keys"), "{text}");
    }
    // Imported into a second cpixd, which then answers with the same keys.
    let (b, b_config) = data_dir();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "keys",
            "import",
            exported.to_str().unwrap(),
            "--tenant",
            "acme",
            "--key",
            private.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cpixd(b.path(), &b_config, &args, &[])
    };
    // A fresh data directory needs its store and master key first.
    issue(b.path(), &b_config, 99).await;
    let first = ok(import(&[]));
    assert_eq!(first.matches(" new").count(), 2, "{first}");
    let again = ok(import(&[]));
    assert_eq!(again.matches(" identical").count(), 2, "{again}");
    let moved = import(&["--content-id", "another"]);
    assert_eq!(moved.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&moved.stdout)
            .matches(" conflict")
            .count(),
        2
    );
    // A tampered document is refused before anything is stored.
    let original = std::fs::read_to_string(&exported).unwrap();
    let tampered = original.replacen(":ValueMAC>", ":ValueMAC>AAAA", 1);
    assert_ne!(tampered, original);
    let bad = work.path().join("tampered.xml");
    std::fs::write(&bad, tampered).unwrap();
    let out = cpixd(
        b.path(),
        &b_config,
        &[
            "keys",
            "import",
            bad.to_str().unwrap(),
            "--tenant",
            "acme",
            "--key",
            private.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = child::start(b.path(), Some(&b_config), &[("CPIXD_LOG", "info")]);
    assert_eq!(ask(&server.base, &request(1)).await.unwrap(), keys);
    server.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_formats_need_reveal_and_carry_the_stored_keys() {
    let (a, config) = data_dir();
    let keys = issue(a.path(), &config, 2).await;
    let export = |format: &str, extra: &[&str]| {
        let mut args = vec!["keys", "export", "--tenant", "acme", "--format", format];
        args.extend_from_slice(extra);
        cpixd(a.path(), &config, &args, &[])
    };
    let refused = export("clearkey-jwk", &["--content-id", "burst-2"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--reveal"));
    let jwk: serde_json::Value = serde_json::from_str(&ok(export(
        "clearkey-jwk",
        &["--content-id", "burst-2", "--reveal"],
    )))
    .unwrap();
    for (i, (kid, key)) in keys.iter().enumerate() {
        assert_eq!(jwk["keys"][i]["kid"], b64url(&kid_bytes(kid)).as_str());
        assert_eq!(jwk["keys"][i]["k"], b64url(key).as_str());
    }
    let mp4 = ok(export(
        "mp4decrypt",
        &["--content-id", "burst-2", "--reveal"],
    ));
    for (kid, key) in &keys {
        assert!(
            mp4.contains(&format!("--key {}:{}", hex(&kid_bytes(kid)), hex(key))),
            "{mp4}"
        );
    }
    let ff = ok(export("ffmpeg", &["--kid", &keys[1].0, "--reveal"]));
    assert_eq!(ff.trim(), format!("-decryption_key {}", hex(&keys[1].1)));
    assert_eq!(
        export("ffmpeg", &["--content-id", "burst-2", "--reveal"])
            .status
            .code(),
        Some(2),
        "ffmpeg takes one key"
    );
    let clear = ok(export("cpix-clear", &["--kid", &keys[0].0, "--reveal"]));
    let doc = cpixd::cpix::parse(clear.as_bytes()).unwrap();
    assert_eq!(doc.content_id(), Some("burst-2"));
    assert_eq!(doc.keys()[0].plain_value().unwrap(), &keys[0].1[..]);
    let unknown = export(
        "mp4decrypt",
        &["--kid", "00000000-0000-0000-0000-000000000001", "--reveal"],
    );
    assert_eq!(unknown.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_moves_every_record_to_the_new_master_key() {
    let (a, config) = data_dir();
    let keys = issue(a.path(), &config, 3).await;
    // The token signing keys are records too.
    let server = child::start(a.path(), Some(&config), &[("CPIXD_LOG", "info")]);
    let r = send(
        "GET",
        &format!("{}/drm/v1/token/burst-3", server.base),
        &[("x-api-key", ACME_KEY), ("x-tenant-id", "acme")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    server.sigterm();
    let mk = a.path().join("master.key");
    let old = std::fs::read_to_string(&mk).unwrap();
    let v1 = old
        .lines()
        .find(|l| l.starts_with("1:"))
        .unwrap()
        .to_owned();
    let v2 = cpixd::crypto::MasterKey::generate(2, &cpixd::crypto::OsRandom);
    let v2 = format!("2:{}", cpixd::b64::encode(v2.expose()));
    let write = |lines: &[&str]| {
        std::fs::remove_file(&mk).unwrap();
        std::fs::write(&mk, format!("{}\n", lines.join("\n"))).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&mk, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    };
    write(&[&v1, &v2]);
    let out = cpixd(a.path(), &config, &["keys", "rewrap"], &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("3 re-sealed under master key v2"), "{err}");
    // Resumable: a second run has nothing left to do.
    let again = cpixd(a.path(), &config, &["keys", "rewrap"], &[]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 re-sealed"));
    // Version 1 leaves the key file; the keys and tokens still work.
    write(&[&v2]);
    let listed = ok(cpixd(
        a.path(),
        &config,
        &["keys", "list", "--tenant", "acme"],
        &[],
    ));
    assert!(
        listed.lines().all(|l| l.contains("master_key=v2")),
        "{listed}"
    );
    let server = child::start(a.path(), Some(&config), &[("CPIXD_LOG", "info")]);
    assert_eq!(ask(&server.base, &request(3)).await.unwrap(), keys);
    server.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_a_data_directory_into_postgres_and_back() {
    let Some(url) = common::pg::database() else {
        return;
    };
    let (a, config) = data_dir();
    let mut issued = Vec::new();
    for n in 10..14 {
        issued.push((n, issue(a.path(), &config, n).await));
    }
    let config_s = config.to_str().unwrap();
    let copy = |from: &str, to: &str| {
        cpixd_raw(
            &[
                "store", "copy", "--from", from, "--to", to, "--config", config_s,
            ],
            &[],
        )
    };
    let dir = a.path().to_str().unwrap();
    let out = copy(dir, &url);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("8 record(s) copied"), "{err}");
    // Idempotent.
    let again = copy(dir, &url);
    let err = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(
        again.status.success() && err.contains("0 record(s) copied, 8 already there"),
        "{err}"
    );
    // A node on PostgreSQL with the same master key serves the same keys.
    let mk = a.path().join("master.key");
    let node_dir = tempfile::tempdir().unwrap();
    let server = child::start(
        node_dir.path(),
        Some(&config),
        &[
            ("CPIXD_LOG", "info"),
            ("CPIXD_STORE_URL", &url),
            ("CPIXD_MASTER_KEY_FILE", mk.to_str().unwrap()),
        ],
    );
    for (n, keys) in &issued {
        assert_eq!(&ask(&server.base, &request(*n)).await.unwrap(), keys);
    }
    server.sigterm();
    // And back into a new data directory.
    let back = tempfile::tempdir().unwrap();
    let out = cpixd_raw(
        &[
            "store",
            "copy",
            "--from",
            &url,
            "--to",
            back.path().to_str().unwrap(),
            "--config",
            config_s,
        ],
        &[("CPIXD_MASTER_KEY_FILE", mk.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(&mk, back.path().join("master.key")).unwrap();
    let listed = ok(cpixd(
        back.path(),
        &config,
        &["keys", "list", "--tenant", "acme"],
        &[],
    ));
    assert_eq!(listed.lines().count(), 8, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_inventory_pages_and_import_needs_an_admin_key() {
    let (a, config) = data_dir();
    let server = child::start(a.path(), Some(&config), &[("CPIXD_LOG", "info")]);
    let mut kids = Vec::new();
    for n in 20..23 {
        let keys = ask(&server.base, &request(n)).await.unwrap();
        kids.extend(keys.into_iter().map(|(k, _)| k));
    }
    kids.sort();
    let acme = [("x-api-key", ACME_KEY), ("x-tenant-id", "acme")];
    let base = server.base.clone();
    let get = |q: String| {
        let url = format!("{base}/kms/v1/keys{q}");
        async move { send("GET", &url, &acme, vec![]).await }
    };
    let mut seen = Vec::new();
    let mut q = "?limit=4".to_owned();
    loop {
        let r = get(q.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains("\"key\""), "never key bytes");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        for i in v["items"].as_array().unwrap() {
            seen.push(i["kid"].as_str().unwrap().to_owned());
            assert_eq!(i["scheme"], "cenc");
        }
        match v["next"].as_str() {
            Some(n) => q = format!("?limit=4&after={n}"),
            None => break,
        }
    }
    assert_eq!(seen, kids);
    let one: serde_json::Value =
        serde_json::from_slice(&get("?contentId=burst-21".into()).await.body).unwrap();
    assert_eq!(one["items"].as_array().unwrap().len(), 2);
    assert_eq!(get("?limit=0".into()).await.status, 400);
    assert_eq!(get("?colour=red".into()).await.status, 400);
    assert_eq!(
        send("GET", &format!("{}/kms/v1/keys", server.base), &[], vec![])
            .await
            .status,
        401
    );
    // Import: a clear CPIX document, admin key only.
    let doc = format!(
        r#"<cpix:CPIX contentId="imported" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"><cpix:ContentKeyList><cpix:ContentKey kid="11111111-2222-4333-8444-555555555555" commonEncryptionScheme="cbcs"><cpix:Data><pskc:Secret><pskc:PlainValue>{}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey></cpix:ContentKeyList></cpix:CPIX>"#,
        cpixd::b64::encode(&[7u8; 16])
    );
    let url = format!("{}/kms/v1/keys/import", server.base);
    let r = send("POST", &url, &acme, doc.clone().into_bytes()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let admin = [("x-api-key", ADMIN_KEY), ("x-tenant-id", "acme")];
    let r = send("POST", &url, &admin, doc.clone().into_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["results"][0]["outcome"], "new");
    let r = send("POST", &url, &admin, doc.clone().into_bytes()).await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["results"][0]["outcome"],
        "identical"
    );
    let moved = send(
        "POST",
        &format!("{url}?contentId=elsewhere"),
        &admin,
        doc.into_bytes(),
    )
    .await;
    assert_eq!(moved.status, 409, "{}", moved.text());
    let r = send("POST", &url, &admin, b"<not-cpix/>".to_vec()).await;
    assert_eq!(r.status, 400);
    // The imported key is served to players like any other.
    let got = get("?contentId=imported".into()).await;
    assert!(got.text().contains("11111111-2222-4333-8444-555555555555"));
    server.sigterm();
    let shown = ok(cpixd(
        a.path(),
        &config,
        &[
            "keys",
            "show",
            "--tenant",
            "acme",
            "--kid",
            "11111111-2222-4333-8444-555555555555",
            "--reveal",
        ],
        &[],
    ));
    assert!(shown.contains(&hex(&[7u8; 16])), "{shown}");
}
