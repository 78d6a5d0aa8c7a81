//! The HTTP server on 127.0.0.1:0: every endpoint, the auth matrix, tenant
//! isolation, idempotency across restarts, and bad input refused with a 4xx
//! in bounded time with nothing stored.

mod common;

use common::http::{send, Resp};
use common::server::{config_toml, TestServer, ACME_KEY, ACME_USER, GLOBEX_KEY, METRICS_AUTH};
use cpixd::cpix;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Vec<u8> {
    common::read(&common::fixtures().join("requests").join(name))
}

const V2: &str = "v2-video2-audio2-playready-live.xml";
const V1: &str = "v1-widevine-playready-fairplay-live.xml";

fn acme() -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-api-key", ACME_KEY),
        ("x-tenant-id", "acme"),
        ("content-type", "application/xml"),
    ]
}

async fn post(s: &TestServer, path: &str, extra: &[(&str, &str)], body: Vec<u8>) -> Resp {
    let mut h = acme();
    h.extend_from_slice(extra);
    send("POST", &s.url(path), &h, body).await
}

fn keys_of(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let doc =
        cpix::parse(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
    doc.keys()
        .iter()
        .map(|k| (k.kid.to_string(), k.plain_value().unwrap().to_vec()))
        .collect()
}

#[tokio::test]
async fn every_endpoint_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config_toml()).await;

    let r = post(&s, "/kms/v1/speke", &[], fixture(V1)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").unwrap(),
        "application/xml; charset=utf-8"
    );
    assert!(r.header("speke-user-agent").unwrap().starts_with("cpixd/"));
    assert!(r.header("x-speke-version").is_none());
    assert_eq!(keys_of(&r.body).len(), 1);

    let r = post(
        &s,
        "/kms/v1/speke2",
        &[("x-speke-version", "2.0")],
        fixture(V2),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-speke-version").as_deref(), Some("2.0"));
    assert!(r
        .header("x-speke-user-agent")
        .unwrap()
        .starts_with("cpixd/"));
    let doc = cpix::parse(&r.body).unwrap();
    assert!(common::check::problems(&doc, true).is_empty());
    // The tenant's PlayReady LA_URL is in the header.
    let pro = doc.systems()[0].pssh.as_ref().unwrap().value().to_owned();
    let described = cpixd::drm::describe_pssh(&cpix::decode_base64(&pro).unwrap()).unwrap();
    assert!(
        described.contains("https://pr.acme.example/rightsmanager.asmx"),
        "{described}"
    );

    // SPEKE 2.1 (CPIX 2.4): the version header is echoed as sent, and the
    // period start/end of the request come back.
    let v21 = fixture("v2.1-video2-audio1-widevine-fairplay-live.xml");
    let r = post(
        &s,
        "/kms/v1/speke2",
        &[("x-speke-version", "2.1")],
        v21.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-speke-version").as_deref(), Some("2.1"));
    assert!(r.header("x-speke-user-agent").is_some());
    let doc = cpix::parse(&r.body).unwrap();
    assert_eq!(doc.version(), Some("2.4"));
    assert!(common::check::problems(&doc, true).is_empty());
    assert_eq!(
        doc.period_items(),
        cpix::parse(&v21).unwrap().period_items(),
        "periods echoed"
    );
    let r = post(
        &s,
        "/kms/v1/copyProtection",
        &[("x-speke-version", "2.1")],
        v21,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-speke-version").as_deref(), Some("2.1"));

    // copyProtection follows the header; cpix follows the document.
    let r = post(
        &s,
        "/kms/v1/copyProtection",
        &[("x-speke-version", "2.0")],
        fixture(V2),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-speke-version").as_deref(), Some("2.0"));
    let r = post(&s, "/kms/v1/copyProtection", &[], fixture(V1)).await;
    assert_eq!(r.status, 200);
    assert!(r.header("speke-user-agent").is_some());
    // /cpix with a SPEKE header applies SPEKE 2; without one it is generic CPIX.
    let r = post(
        &s,
        "/kms/v1/cpix",
        &[("x-speke-version", "2.0")],
        fixture(V2),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-speke-version").as_deref(), Some("2.0"));
    let generic = r#"<CPIX xmlns="urn:dashif:org:cpix" id="asset-9" name="trailer">
      <ContentKeyList><ContentKey kid="9b0cd6a6-5a4e-4b1f-9d3c-01a1b2c3d4e5"/></ContentKeyList>
      <DRMSystemList>
        <DRMSystem kid="9b0cd6a6-5a4e-4b1f-9d3c-01a1b2c3d4e5" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><PSSH/><ContentProtectionData/></DRMSystem>
        <DRMSystem kid="9b0cd6a6-5a4e-4b1f-9d3c-01a1b2c3d4e5" systemId="5e629af5-38da-4063-8977-97ffbd9902d4"/>
      </DRMSystemList></CPIX>"#;
    let r = post(&s, "/kms/v1/cpix", &[], generic.as_bytes().to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-speke-version").is_none());
    let doc = cpix::parse(&r.body).unwrap();
    assert_eq!(doc.id(), Some("asset-9"), "generic CPIX keeps CPIX@id");
    assert_eq!(doc.name(), Some("trailer"));
    assert!(doc.keys()[0].plain_value().is_some());
    assert!(doc.systems()[0]
        .pssh
        .as_ref()
        .is_some_and(|p| !p.is_placeholder()));
    // A system cpixd has no signalling for is fine key-only, refused with placeholders.
    let marlin = generic.replace(
        r#"systemId="5e629af5-38da-4063-8977-97ffbd9902d4"/>"#,
        r#"systemId="5e629af5-38da-4063-8977-97ffbd9902d4"><PSSH/></DRMSystem>"#,
    );
    let r = post(&s, "/kms/v1/cpix", &[], marlin.into_bytes()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("5e629af5-38da-4063-8977-97ffbd9902d4"),
        "{}",
        r.text()
    );
    let r = post(
        &s,
        "/kms/v1/cpix",
        &[],
        generic.replace(r#" id="asset-9""#, "").into_bytes(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("contentId"), "{}", r.text());
    // The aliases without /v1 advertised by the Cloud Video Kit settings.
    assert_eq!(post(&s, "/kms/speke2", &[], fixture(V2)).await.status, 200);

    // Anevia: GET with brand and KID in the path.
    let kid = "11112222-3333-4444-5555-666677778888";
    let r = send(
        "GET",
        &s.url(&format!("/kms/v1/cpix-anevia/brand-1/{kid}")),
        &acme(),
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = cpix::parse(&r.body).unwrap();
    assert_eq!(doc.keys()[0].kid.to_string(), kid);
    assert_eq!(doc.systems().len(), 3);
    assert!(common::check::problems(&doc, false).is_empty());
    let bad = send(
        "GET",
        &s.url("/kms/v1/cpix-anevia/brand-1/not-a-kid"),
        &acme(),
        vec![],
    )
    .await;
    assert_eq!(bad.status, 400);

    for path in ["/kms/v1/heartbeat", "/healthz", "/readyz"] {
        let r = send("GET", &s.url(path), &[], vec![]).await;
        assert_eq!(r.status, 200, "{path}");
    }
    // The metrics name every tenant: closed without the scraper's token.
    for auth in [vec![], acme(), vec![("authorization", "Bearer wrong")]] {
        let m = send("GET", &s.url("/metrics"), &auth, vec![]).await;
        assert_eq!(m.status, 401, "{auth:?}");
        assert!(!m.text().contains("acme"));
    }
    let m = send("GET", &s.url("/metrics"), &[METRICS_AUTH], vec![]).await;
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(
        text.contains(r#"cpixd_http_requests_total{endpoint="speke2",tenant="acme",status="200"}"#),
        "{text}"
    );
    assert!(text.contains(r#"cpixd_keys_issued_total{endpoint="speke2",tenant="acme"}"#));
    assert!(text.contains("cpixd_http_request_duration_seconds_bucket"));

    let r = send("GET", &s.url("/nope"), &[], vec![]).await;
    assert_eq!(r.status, 404);
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["status"], 404);
    assert_eq!(json["code"], "not_found");
    let r = send("GET", &s.url("/kms/v1/speke"), &[], vec![]).await;
    assert_eq!(r.status, 405);
    s.stop().await;
}

#[tokio::test]
async fn the_auth_matrix_and_tenant_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config_toml()).await;
    let url = s.url("/kms/v1/speke2");
    let xml = ("content-type", "application/xml");
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![xml], 401),
        (vec![xml, ("x-tenant-id", "acme")], 401),
        (vec![xml, ("x-api-key", ACME_KEY)], 401),
        (
            vec![xml, ("x-api-key", "wrong"), ("x-tenant-id", "acme")],
            401,
        ),
        (
            vec![xml, ("x-api-key", GLOBEX_KEY), ("x-tenant-id", "acme")],
            403,
        ),
        (
            vec![xml, ("x-api-key", ACME_KEY), ("x-tenant-id", "acme")],
            200,
        ),
    ];
    for (headers, want) in &cases {
        let r = send("POST", &url, headers, fixture(V2)).await;
        assert_eq!(r.status, *want, "{headers:?}: {}", r.text());
        if *want >= 400 {
            let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(j["status"], *want);
        }
    }
    // The API key without the tenant header: 401 naming the missing header.
    let r = send("POST", &url, &[xml, ("x-api-key", ACME_KEY)], fixture(V2)).await;
    assert!(r.text().contains("X-Tenant-Id"), "{}", r.text());
    assert!(r.header("www-authenticate").is_some());
    let basic = format!(
        "Basic {}",
        cpixd::b64::encode(format!("{}:{}", ACME_USER.0, ACME_USER.1).as_bytes())
    );
    let r = send("POST", &url, &[xml, ("authorization", &basic)], fixture(V2)).await;
    assert_eq!(r.status, 200);
    let wrong = format!(
        "Basic {}",
        cpixd::b64::encode(format!("{}:nope", ACME_USER.0).as_bytes())
    );
    assert_eq!(
        send("POST", &url, &[xml, ("authorization", &wrong)], fixture(V2))
            .await
            .status,
        401
    );
    // Same request in two tenants: same KIDs, unrelated keys.
    let a = keys_of(
        &send(
            "POST",
            &url,
            &[xml, ("x-api-key", ACME_KEY), ("x-tenant-id", "acme")],
            fixture(V2),
        )
        .await
        .body,
    );
    let g = keys_of(
        &send(
            "POST",
            &url,
            &[xml, ("x-api-key", GLOBEX_KEY), ("x-tenant-id", "globex")],
            fixture(V2),
        )
        .await
        .body,
    );
    assert_eq!(
        a.iter().map(|k| &k.0).collect::<Vec<_>>(),
        g.iter().map(|k| &k.0).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&g) {
        assert_ne!(x.1, y.1, "tenants share key {}", x.0);
    }
    assert_eq!(
        s.state
            .store
            .list("acme", None, None, usize::MAX)
            .await
            .unwrap()
            .len(),
        a.len()
    );
    assert_eq!(
        s.state
            .store
            .list("globex", None, None, usize::MAX)
            .await
            .unwrap()
            .len(),
        g.len()
    );
    s.stop().await;
}

#[tokio::test]
async fn same_request_same_keys_across_restarts_and_conflicts_are_409() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config_toml()).await;
    let first = post(&s, "/kms/v1/speke2", &[], fixture(V2)).await;
    let second = post(&s, "/kms/v1/speke2", &[], fixture(V2)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, second.body, "same keys and signalling");
    let fp = fixture("v2-video3-audio3-fairplay-live.xml");
    let fp_first = post(&s, "/kms/v1/speke2", &[], fp.clone()).await;
    assert_eq!(fp_first.status, 200);
    s.stop().await;
    let s = TestServer::start(dir.path(), &config_toml()).await;
    let third = post(&s, "/kms/v1/speke2", &[], fixture(V2)).await;
    assert_eq!(third.body, first.body, "identical after restart");
    // FairPlay IVs are stored with the keys: identical after restart too.
    assert_eq!(
        post(&s, "/kms/v1/speke2", &[], fp).await.body,
        fp_first.body
    );
    let moved = String::from_utf8(fixture(V2))
        .unwrap()
        .replace(r#"contentId="channel-2""#, r#"contentId="another-channel""#);
    let r = post(&s, "/kms/v1/speke2", &[], moved.into_bytes()).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("channel-2") && r.text().contains("another-channel"),
        "{}",
        r.text()
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_quickly_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config_toml()).await;
    let base = String::from_utf8(fixture(V2)).unwrap();
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>{}",
        base.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "").replace("channel-2", "&d;")
    );
    let huge = {
        let mut b = base.clone().into_bytes();
        b.extend(std::iter::repeat_n(b' ', 10 << 20));
        b
    };
    let kid = cpix::parse(base.as_bytes()).unwrap().keys()[0]
        .kid
        .to_string();
    // (what, body, extra headers, expected status)
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        ("entity bomb", bomb.into_bytes(), vec![], 422),
        ("10 MiB body", huge, vec![], 413),
        (
            "truncated XML",
            base.as_bytes()[..base.len() / 3].to_vec(),
            vec![],
            422,
        ),
        (
            "non-UUID KID",
            base.replace(&kid, "not-a-uuid").into_bytes(),
            vec![],
            422,
        ),
        (
            "unknown system id",
            base.replace(
                "9a04f079-9840-4286-ab92-e65be0885f95",
                "12345678-1234-1234-1234-123456789abc",
            )
            .into_bytes(),
            vec![],
            422,
        ),
        (
            "wrong content type",
            base.clone().into_bytes(),
            vec![("content-type", "application/json")],
            415,
        ),
        (
            "unsupported SPEKE version",
            base.clone().into_bytes(),
            vec![("x-speke-version", "9.9")],
            422,
        ),
        ("empty body", vec![], vec![], 422),
    ];
    for (what, body, extra, want) in cases {
        let started = Instant::now();
        let mut h: Vec<(&str, &str)> = vec![("x-api-key", ACME_KEY), ("x-tenant-id", "acme")];
        if !extra.iter().any(|(k, _)| *k == "content-type") {
            h.push(("content-type", "application/xml"));
        }
        h.extend(extra);
        let r = send("POST", &s.url("/kms/v1/speke2"), &h, body).await;
        assert_eq!(r.status, want, "{what}: {}", r.text());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what} took {:?}",
            started.elapsed()
        );
        assert!(!r.text().is_empty(), "{what}: a message");
    }
    assert!(
        s.state
            .store
            .list("acme", None, None, usize::MAX)
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );
    let r = post(
        &s,
        "/kms/v1/speke2",
        &[("x-speke-version", "9.9")],
        fixture(V2),
    )
    .await;
    assert_eq!(r.text(), "Unsupported SPEKE version");
    let r = post(&s, "/kms/v1/speke", &[], b"<not xml".to_vec()).await;
    assert_eq!(r.status, 400, "SPEKE 1.0 errors are 400");
    s.stop().await;
}

#[tokio::test]
async fn https_with_a_pem_certificate() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let tls = std::sync::Arc::new(cpixd::server::tls_config(&cert_path, &key_path).unwrap());
    assert!(
        cpixd::server::tls_config(&key_path, &key_path).is_err(),
        "a key is not a certificate"
    );

    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let plain = TestServer::start(&data, &config_toml()).await;
    let state = plain.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let conns = state.connections.clone();
    let task = tokio::spawn(cpixd::server::serve(
        listener,
        cpixd::server::router(state),
        Some(tls),
        conns,
        async {
            let _ = rx.await;
        },
        Duration::from_secs(2),
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client_cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls_stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls_stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = axum::http::Request::get("/healthz")
        .header("host", "localhost")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok\n");
    let _ = tx.send(());
    task.await.unwrap();
    plain.stop().await;
}

#[tokio::test]
async fn encrypted_delivery_layout_depends_on_the_endpoint() {
    use common::certs::{pair, with_recipients};
    use cpixd::cpix::xml::Ns;
    let recipient = &pair()[0];
    let body = with_recipients(
        &String::from_utf8(fixture(V2)).unwrap(),
        &[&recipient.cert_der],
    );
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config_toml()).await;
    // SPEKE: AWS layout.
    let r = post(&s, "/kms/v1/speke2", &[], body.clone().into_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("PlainValue"));
    let first = r.body.clone();
    let doc = cpix::parse(&r.body).unwrap();
    let key = doc.recipients()[0]
        .mac_method
        .as_ref()
        .unwrap()
        .child(&Ns::Cpix, "Key")
        .unwrap()
        .clone();
    assert!(
        key.child(&Ns::Pskc, "EncryptedValue").is_some(),
        "AWS layout on SPEKE"
    );
    // Generic CPIX refuses 2048-bit recipients by default (CPIX asks 3072).
    let r = post(&s, "/kms/v1/cpix", &[], body.clone().into_bytes()).await;
    assert!((400..500).contains(&r.status), "{}", r.text());
    assert!(r.text().contains("at least 3072"), "{}", r.text());
    // Encrypted answers are never served from the response cache.
    let again = post(&s, "/kms/v1/speke2", &[], body.clone().into_bytes()).await;
    assert_eq!(again.status, 200);
    assert_ne!(again.body, first);
    let d1 = cpixd::delivery::decrypt_document(
        &doc,
        &cpixd::crypto::x509::load_private_key(recipient.key_pem.as_bytes(), None).unwrap(),
    )
    .unwrap();
    let d2 = cpixd::delivery::decrypt_document(
        &cpix::parse(&again.body).unwrap(),
        &cpixd::crypto::x509::load_private_key(recipient.key_pem.as_bytes(), None).unwrap(),
    )
    .unwrap();
    assert_eq!(d1, d2, "same keys, fresh encryption");
    s.stop().await;
    // With the CPIX policy lowered, the generic endpoint answers in the DASH-IF layout.
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[delivery.cpix]\nmin_rsa_bits = 2048\n{}", config_toml());
    let s = TestServer::start(dir.path(), &toml).await;
    let r = post(&s, "/kms/v1/cpix", &[], body.into_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = cpix::parse(&r.body).unwrap();
    let key = doc.recipients()[0]
        .mac_method
        .as_ref()
        .unwrap()
        .child(&Ns::Cpix, "Key")
        .unwrap()
        .clone();
    assert!(
        key.child(&Ns::Enc, "EncryptionMethod").is_some(),
        "DASH-IF layout on CPIX"
    );
    assert!(key.child(&Ns::Pskc, "EncryptedValue").is_none());
    // It decrypts with the recipient's private key to exactly the keys the
    // store issued for those KIDs.
    assert!(!r.text().contains("PlainValue"));
    let private =
        cpixd::crypto::x509::load_private_key(recipient.key_pem.as_bytes(), None).unwrap();
    let decrypted = cpixd::delivery::decrypt_document(&doc, &private).unwrap();
    assert_eq!(decrypted.len(), doc.keys().len());
    assert!(!decrypted.is_empty());
    for k in &decrypted {
        let stored = s
            .state
            .store
            .get("acme", k.kid)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} not stored", k.kid));
        assert_eq!(k.key.expose(), &stored.key.expose()[..], "{}", k.kid);
    }
    assert_eq!(
        s.state
            .store
            .list("acme", None, None, usize::MAX)
            .await
            .unwrap()
            .len(),
        decrypted.len()
    );
    s.stop().await;
}
