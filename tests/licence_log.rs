//! The licence request log as the player endpoints fill it: every licence,
//! certificate, key and token request becomes an entry with the KIDs the
//! request format gives (ClearKey JSON, the WRMHEADER of a PlayReady
//! challenge, the PSSH data of a Widevine licence request), the client
//! address (a trusted proxy's X-Forwarded-For only), the user agent and the
//! sizes; never a token, a signature or a key. The log survives a clean
//! stop and a SIGKILL (up to the last batch interval) of a real process.

mod common;

use common::fake::{Auth, Fake};
use common::http::send;
use common::server::{config_toml, TestServer, ACME_KEY, METRICS_AUTH};
use cpixd::drm::widevine::WidevinePsshData;
use cpixd::ids::KeyId;
use serde_json::Value;
use std::time::Duration;

const KID: &str = "0f083e4e-b831-4a3d-917e-ce78076e54aa";
const KID2: &str = "7e4d1c97-1a42-5710-80c5-b16272252e7f";

/// `RequestTimeStart` an hour ago, `RequestTimeEnd` a minute ahead.
fn last_hour() -> String {
    let now = cpixd::licence::token::now_secs();
    format!(
        "RequestTimeStart={}&RequestTimeEnd={}",
        cpixd::clock::rfc3339(now - 3600),
        cpixd::clock::rfc3339(now + 60)
    )
}

fn acme() -> Vec<(&'static str, &'static str)> {
    vec![("x-api-key", ACME_KEY), ("x-tenant-id", "acme")]
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field(num: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(num << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A Widevine `SignedMessage { type LICENSE_REQUEST, msg LicenseRequest {
/// content_id { widevine_pssh_data { pssh_data } }, type RENEWAL } }`.
fn widevine_renewal(kids: &[KeyId]) -> Vec<u8> {
    let data = WidevinePsshData {
        key_ids: kids.to_vec(),
        ..Default::default()
    }
    .encode();
    let mut cenc = Vec::new();
    field(1, &data, &mut cenc);
    let mut content = Vec::new();
    field(1, &cenc, &mut content);
    let mut request = Vec::new();
    field(2, &content, &mut request);
    varint(3 << 3, &mut request);
    varint(2, &mut request); // RENEWAL
    let mut signed = vec![0x08, 0x01]; // type = LICENSE_REQUEST
    field(2, &request, &mut signed);
    field(3, &[0xAA; 32], &mut signed); // signature
    signed
}

/// A PlayReady SOAP challenge carrying a WRMHEADER 4.3 with two KIDs.
fn playready_challenge(kids: &[KeyId]) -> Vec<u8> {
    let kid_elems: String = kids
        .iter()
        .map(|k| {
            format!(
                r#"<KID ALGID="AESCTR" VALUE="{}"></KID>"#,
                cpixd::b64::encode(&k.to_guid_le())
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge><Challenge xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols/messages"><LA xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols" Id="SignedData"><Version>4</Version><ContentHeader><WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.3.0.0"><DATA><PROTECTINFO><KIDS>{kid_elems}</KIDS></PROTECTINFO></DATA></WRMHEADER></ContentHeader></LA></Challenge></challenge></AcquireLicense></soap:Body></soap:Envelope>"#
    )
    .into_bytes()
}

/// The common test configuration, with acme's Widevine and PlayReady
/// licence servers at `fake` and loopback as a trusted proxy.
fn config(fake: &str) -> String {
    let servers = format!(
        "[tenant.license.widevine]\nurl = \"{fake}/wv\"\n[tenant.license.playready]\nurl = \"{fake}/pr\"\n\n[[tenant]]\nid = \"globex\""
    );
    let base = config_toml();
    assert!(base.contains("[[tenant]]\nid = \"globex\""));
    format!(
        "trusted_proxies = [\"127.0.0.1\"]\n{}",
        base.replace("[[tenant]]\nid = \"globex\"", &servers)
    )
}

#[tokio::test]
async fn player_requests_become_entries_with_their_kids() {
    let fake = Fake::start(Auth::None).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(&fake.base)).await;
    let kids = [
        KeyId::parse_uuid(KID).unwrap(),
        KeyId::parse_uuid(KID2).unwrap(),
    ];
    // A token, then a licence of each kind.
    let r = send(
        "GET",
        &s.url("/drm/v1/token/movie-1?userId=viewer-9"),
        &acme(),
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    let token: Value = serde_json::from_slice(&r.body).unwrap();
    let jwt = token["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {jwt}");
    let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15";
    let headers = [
        ("authorization", bearer.as_str()),
        ("user-agent", ua),
        ("x-forwarded-for", "203.0.113.77, 127.0.0.1"),
    ];
    let r = send(
        "POST",
        &s.url("/acquire-license/widevine"),
        &headers,
        widevine_renewal(&kids),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(
        "POST",
        &s.url("/acquire-license/playready"),
        &headers,
        playready_challenge(&kids),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ck = br#"{"kids":["Dwg-TrgxSj2Rfs54B25Uqg"],"type":"temporary"}"#;
    let r = send(
        "POST",
        &s.url(&format!("/acquire-license/clearkey?token={jwt}")),
        &[("user-agent", ua)],
        ck.to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    let ck_len = r.body.len();
    let r = send(
        "POST",
        &s.url("/acquire-license/clearkey?brandGuid=acme"),
        &[],
        ck.to_vec(),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(
        "POST",
        &s.url("/acquire-license/widevine"),
        &headers,
        b"not a protobuf".to_vec(),
    )
    .await;
    assert_eq!(r.status, 200, "an unparseable challenge is still forwarded");

    let r = send(
        "GET",
        &s.url(&format!("/drm/v1/list-requests?{}&Limit=100", last_hour())),
        &acme(),
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let items = v["items"].as_array().unwrap();
    let kinds: Vec<(String, String, u64)> = items
        .iter()
        .map(|i| {
            (
                i["system"].as_str().unwrap_or("-").to_owned(),
                i["requestType"].as_str().unwrap().to_owned(),
                i["httpStatus"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("-".into(), "Token".into(), 200),
            ("Widevine".into(), "Renewal".into(), 200),
            ("PlayReady".into(), "License".into(), 200),
            ("ClearKey".into(), "License".into(), 200),
            ("ClearKey".into(), "License".into(), 401),
            ("Widevine".into(), "License".into(), 200),
        ]
    );
    let kid_strings = |i: &Value| -> Vec<String> {
        i["kids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kid_strings(&items[1]), [KID, KID2]);
    assert_eq!(kid_strings(&items[2]), [KID, KID2]);
    assert_eq!(kid_strings(&items[3]), [KID]);
    assert!(kid_strings(&items[5]).is_empty());
    assert_eq!(items[1]["ip"], "203.0.113.77", "the trusted proxy's client");
    assert_eq!(items[1]["tokenUserId"], "viewer-9");
    assert_eq!(items[1]["tokenContentId"], "movie-1");
    assert_eq!(items[1]["userAgent"], ua);
    assert_eq!(items[1]["os"], "Mac");
    assert_eq!(items[1]["payloadLength"], widevine_renewal(&kids).len());
    assert_eq!(
        items[3]["licenseUrl"].as_str().unwrap(),
        format!(
            "{}/acquire-license/clearkey",
            s.state.config.public_base_url
        )
    );
    assert_eq!(items[4]["errorCode"], "INVALID_TOKEN");
    assert_eq!(items[3]["responseLength"], ck_len);
    // No token, signature or key in the answer or in the file.
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let signature = jwt.rsplit('.').next().unwrap();
    assert!(!text.contains(signature));
    s.state
        .log_writer
        .as_ref()
        .unwrap()
        .flush(Duration::from_secs(2));
    let file = std::fs::read(dir.path().join("licences.redb")).unwrap();
    assert!(
        !file
            .windows(signature.len())
            .any(|w| w == signature.as_bytes()),
        "a token signature is in the log file"
    );
    assert!(
        !file.windows(16).any(|w| w == b"Dwg-TrgxSj2Rfs54"),
        "base64 KIDs only, and no keys"
    );
    // The metrics count them.
    let m = send("GET", &s.url("/metrics"), &[METRICS_AUTH], vec![])
        .await
        .text();
    assert!(m.contains(r#"cpixd_licence_requests_total{tenant="acme",system="widevine",type="Renewal",class="2xx"} 1"#), "{m}");
    assert!(m.contains(r#"cpixd_licence_log_entries_total{outcome="written"}"#));
    s.stop().await;
}

#[test]
fn the_log_survives_a_clean_stop_and_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cpixd.toml");
    std::fs::write(&config, config_toml()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ask = |base: &str, n: usize| {
        rt.block_on(async {
            for i in 0..n {
                let r = send(
                    "GET",
                    &format!("{base}/drm/v1/token/asset-{i}"),
                    &acme(),
                    vec![],
                )
                .await;
                assert_eq!(r.status, 200);
            }
        })
    };
    let count = |base: &str| -> u64 {
        rt.block_on(async {
            let r = send(
                "GET",
                &format!(
                    "{base}/drm/v1/list-requests?{}&RequestType=Token&Limit=1",
                    last_hour()
                ),
                &acme(),
                vec![],
            )
            .await;
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v["totalCount"].as_u64().unwrap()
        })
    };
    // A clean stop writes everything queued, even right after the requests.
    let server = common::child::start(dir.path(), Some(&config), &[("CPIXD_LOG", "info")]);
    ask(&server.base, 25);
    let log = server.sigterm();
    assert!(log.contains("licence log flushed"), "{log}");
    let server = common::child::start(dir.path(), Some(&config), &[("CPIXD_LOG", "info")]);
    assert_eq!(count(&server.base), 25);
    // A SIGKILL loses at most the last batch interval (50 ms).
    ask(&server.base, 25);
    std::thread::sleep(Duration::from_millis(500));
    server.sigkill();
    let server = common::child::start(dir.path(), Some(&config), &[("CPIXD_LOG", "info")]);
    assert_eq!(count(&server.base), 50);
    server.sigterm();
    // The same log from the command line, stopped.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cpixd"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = cli(&["licences", "list", "--tenant", "acme", "--type", "Token"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 50);
    assert!(lines
        .iter()
        .all(|l| l["requestType"] == "Token" && l["tenantId"] == "acme"));
    let out = cli(&["licences", "stats", "--tenant", "acme", "--by", "hour"]);
    assert!(out.status.success());
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    // 24 hours from an arbitrary minute touch 25 hour buckets.
    assert_eq!(rows.as_array().unwrap().len(), 25);
    let out = cli(&["licences", "stats", "--tenant", "acme", "--by", "week"]);
    assert_eq!(out.status.code(), Some(2));
}
