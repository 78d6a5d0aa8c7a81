//! `cpixd serve` as a child process: keys survive SIGKILL in the middle of
//! a burst (every key a client received comes back identical, no request
//! is half-stored), SIGTERM shuts down cleanly, the embedded default works
//! from an empty directory, and no content key ever reaches the log.

mod common;

use common::burst::{ask, kid, request, Keys};
use common::child::{self, signal, Server};
use common::http::send;
use common::server::{config_toml, ACME_KEY};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts `cpixd serve` (logging at debug) and waits until it listens.
fn start(dir: &Path, config: Option<&Path>) -> Server {
    child::start(dir, config, &[])
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("cpixd.toml");
    std::fs::write(&p, config_toml()).unwrap();
    p
}

/// KIDs in the store, read with `cpixd keys list` (server stopped).
fn stored_kids(dir: &Path, config: &Path) -> BTreeSet<String> {
    common::burst::stored_kids(
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_burst_loses_no_received_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let server = start(dir.path(), Some(&config));
    let base = server.base.clone();
    let received: Arc<Mutex<BTreeMap<u64, Keys>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..6u64 {
        let (base, received, stop) = (base.clone(), received.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(keys) = ask(&base, &request(n)).await {
                    received.lock().unwrap().insert(n, keys);
                }
                n += 6;
            }
            n
        }));
    }
    // Let the burst run, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().len() < 150 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.sigkill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for w in workers {
        sent = sent.max(w.await.unwrap());
    }
    let received = received.lock().unwrap().clone();
    assert!(
        received.len() >= 150,
        "only {} responses before the kill",
        received.len()
    );
    assert!(
        sent as usize > received.len(),
        "the kill came after the burst"
    );

    // Nothing half-written: each request's two keys are stored together or not at all.
    let stored = stored_kids(dir.path(), &config);
    for n in 0..sent + 6 {
        let (a, b) = (stored.contains(&kid(n, 1)), stored.contains(&kid(n, 2)));
        assert_eq!(a, b, "request {n} is half stored");
        if received.contains_key(&n) {
            assert!(a, "request {n} was answered but not stored");
        }
    }
    // Every key a client received comes back identical after the restart.
    let server = start(dir.path(), Some(&config));
    for (n, keys) in &received {
        let again = ask(&server.base, &request(*n))
            .await
            .expect("answer after restart");
        assert_eq!(&again, keys, "request {n} changed after the crash");
    }
    server.sigterm();
}

#[tokio::test]
async fn embedded_default_and_logs_never_carry_keys() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None);
    let key_file = dir.path().join("default-api-key");
    let api_key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    let mut keys = Vec::new();
    for name in [
        "v2-video5-audio3-widevine-playready-fairplay-live.xml",
        "v1-hls-aes128-fairplay-widevine-playready-live.xml",
        "v2-video1-unencrypted-hls-aes128-vod.xml",
    ] {
        let body = common::read(&common::fixtures().join("requests").join(name));
        let r = send(
            "POST",
            &format!("{}/kms/v1/copyProtection", server.base),
            &[
                ("x-api-key", &api_key),
                ("x-tenant-id", "default"),
                ("content-type", "application/xml"),
            ],
            body,
        )
        .await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        for k in cpixd::cpix::parse(&r.body).unwrap().keys() {
            keys.push(k.plain_value().unwrap().to_vec());
        }
    }
    // The first request again: its keys exist, so it is served, not issued.
    let body = common::read(
        &common::fixtures()
            .join("requests")
            .join("v2-video5-audio3-widevine-playready-fairplay-live.xml"),
    );
    let r = send(
        "POST",
        &format!("{}/kms/v1/copyProtection", server.base),
        &[("x-api-key", &api_key), ("x-tenant-id", "default")],
        body,
    )
    .await;
    assert_eq!(r.status, 200);
    // A refused request too, so error paths are in the log.
    let r = send(
        "POST",
        &format!("{}/kms/v1/speke2", server.base),
        &[
            ("x-api-key", &api_key),
            ("x-tenant-id", "default"),
            ("content-type", "application/xml"),
        ],
        b"<cpix:CPIX xmlns:cpix=\"urn:dashif:org:cpix\"/>".to_vec(),
    )
    .await;
    assert_eq!(r.status, 422);
    let log = server.sigterm();
    assert!(
        log.contains(&key_file.display().to_string()) || log.contains("default-api-key"),
        "{log}"
    );
    assert!(!log.contains(&api_key), "the API key is logged");
    assert!(
        log.contains("keys issued") && log.contains("key store flushed"),
        "{log}"
    );
    assert_eq!(log.matches("keys issued").count(), 3, "{log}");
    assert_eq!(log.matches("keys served").count(), 1, "{log}");
    // Durations are rounded to the microsecond.
    for field in log.split_whitespace().filter_map(|w| w.strip_prefix("ms=")) {
        let decimals = field.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "ms={field}");
    }
    assert!(keys.len() >= 10);
    let lower = log.to_lowercase();
    for k in &keys {
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = cpixd::b64::encode(k);
        let mut url = String::new();
        cpixd::b64::encode_url_into(k, &mut url);
        assert!(!lower.contains(&hex), "hex key in log");
        assert!(
            !log.contains(&b64) && !log.contains(b64.trim_end_matches('=')),
            "base64 key in log"
        );
        assert!(!log.contains(&url), "base64url key in log");
    }
    // Restarting on the same directory keeps the same API key and keys.
    let server = start(dir.path(), None);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), api_key);
    server.sigterm();
}

#[test]
fn sigterm_finishes_a_request_in_flight_then_exits_cleanly() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut server = start(dir.path(), Some(&config));
    let addr = server.base.trim_start_matches("http://").to_owned();
    let body = request(900_001);
    let (head, tail) = body.as_bytes().split_at(body.len() / 2);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /kms/v1/speke2 HTTP/1.1\r\nHost: {addr}\r\nX-Api-Key: {ACME_KEY}\r\nX-Tenant-Id: acme\r\nX-Speke-Version: 2.0\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(head).unwrap();
    conn.flush().unwrap();
    // The server has the headers and half the body when the signal comes.
    std::thread::sleep(Duration::from_millis(300));
    signal(server.child.id(), "TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.still_running(), "exited with a request in flight");
    // It no longer accepts connections.
    let refused =
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2));
    assert!(refused.is_err(), "still accepting after SIGTERM");
    // The rest of the body: the request is answered in full.
    conn.write_all(tail).unwrap();
    conn.flush().unwrap();
    let mut response = Vec::new();
    let _ = conn.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let xml = &text[text.find("<?xml").expect("a CPIX body")..];
    let doc = cpixd::cpix::parse(xml.as_bytes()).unwrap();
    assert_eq!(doc.keys().len(), 2);
    assert!(doc.keys().iter().all(|k| k.plain_value().is_some()));
    // Then the server exits 0 with the store flushed, and the keys are on disk.
    let log = server.wait_for_clean_exit();
    assert!(log.contains("key store flushed"), "{log}");
    let stored = stored_kids(dir.path(), &config);
    assert!(stored.contains(&kid(900_001, 1)) && stored.contains(&kid(900_001, 2)));
}

#[test]
fn sigterm_right_after_the_listening_line_is_a_clean_stop() {
    // The signal handlers are in place before the server says it listens:
    // a SIGTERM at once is a graceful stop (exit 0), never the default
    // action of the signal.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    for _ in 0..5 {
        let log = start(dir.path(), Some(&config)).sigterm();
        assert!(log.contains("key store flushed"), "{log}");
    }
}

/// With `--listen 127.0.0.1:0` and no `public_base_url`, the licence URL in
/// the SPEKE answer and in the settings carries the port actually bound.
#[tokio::test(flavor = "multi_thread")]
async fn signalled_urls_follow_the_port_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None);
    assert!(!server.base.ends_with(":0"), "{}", server.base);
    let api_key = std::fs::read_to_string(dir.path().join("default-api-key")).unwrap();
    let auth = [("x-api-key", api_key.trim()), ("x-tenant-id", "default")];
    let body = common::read(
        &common::fixtures()
            .join("requests")
            .join("v1-clearkey-common-pssh-vod.xml"),
    );
    let r = send(
        "POST",
        &format!("{}/kms/v1/copyProtection", server.base),
        &auth,
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let want = format!("{}/acquire-license/clearkey?brandGuid=default", server.base);
    let text = r.text();
    let cpd: Vec<String> = text
        .split("ContentProtectionData>")
        .skip(1)
        .step_by(2)
        .filter_map(|rest| cpixd::b64::decode(rest.split('<').next()?.trim()))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    assert!(
        cpd.iter().any(|x| x.contains(&format!(">{want}<"))),
        "{want} not in {cpd:?}"
    );
    let r = send(
        "GET",
        &format!("{}/drm/v1/settings", server.base),
        &auth,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&want), "{}", r.text());
    server.sigterm();
}
