//! The Cloud Video Kit API reference's own KMS examples against a running
//! server: the SPEKE 1.0 body, the `CPIX@version="2.0"` bodies for
//! `/speke2` and `/cpix` (one `cenc` and one `cbcs` key, no
//! `X-Speke-Version`), and the Ateme/Anevia GET, which sends no credentials
//! and is let in only where a tenant opened it to the caller's address.
//! Also the `?tenantId=` form of the KMS URLs the settings hand out.

mod common;

use common::http::{send, Resp};
use common::server::{TestServer, ACME_KEY, ACME_USER};
use cpixd::cpix;
use cpixd::ids::SystemId;

fn example(name: &str) -> Vec<u8> {
    common::read(&common::fixtures().join("cloudvideokit").join(name))
}

fn acme() -> Vec<(&'static str, &'static str)> {
    vec![("x-api-key", ACME_KEY), ("x-tenant-id", "acme")]
}

/// Every key of the answer has a 16-byte key in the clear.
fn filled(r: &Resp) -> cpix::Document {
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = cpix::parse(&r.body).unwrap();
    assert!(!doc.keys().is_empty());
    for k in doc.keys() {
        let value = k
            .data
            .as_ref()
            .and_then(|d| d.value.as_ref())
            .unwrap_or_else(|| panic!("key {} not filled: {}", k.kid, r.text()));
        match value {
            cpix::SecretValue::Plain(b) => assert_eq!(b.expose().len(), 16),
            other => panic!("{other:?}"),
        }
    }
    doc
}

/// Config with tenants `acme` and `globex`; `acme_anevia` and
/// `globex_anevia` are their `anevia.allow_from` lists.
fn config(acme_anevia: &str, globex_anevia: &str) -> String {
    let h = |s: &str| cpixd::crypto::sha256_hex(s.as_bytes());
    format!(
        r#"
[[tenant]]
id = "acme"
api_key_sha256 = ["{}"]
basic = [{{ user = "{}", password_sha256 = "{}" }}]
[tenant.anevia]
allow_from = [{acme_anevia}]

[[tenant]]
id = "globex"
api_key_sha256 = ["{}"]
[tenant.anevia]
allow_from = [{globex_anevia}]
"#,
        h(ACME_KEY),
        ACME_USER.0,
        h(ACME_USER.1),
        h(common::server::GLOBEX_KEY),
    )
}

#[tokio::test]
async fn the_reference_examples_are_answered_with_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config("", "")).await;
    let post = |path: &str, body: Vec<u8>, extra: &[(&'static str, &'static str)]| {
        let mut h = acme();
        h.push(("content-type", "application/xml"));
        h.extend_from_slice(extra);
        let url = s.url(path);
        async move { send("POST", &url, &h, body).await }
    };

    // SPEKE 1.0: default namespace, DRMSystems without placeholders.
    let doc = filled(&post("/kms/v1/speke", example("speke.xml"), &[]).await);
    assert_eq!(doc.id(), Some("id-257a7e27-3c63-430e-86ed-45706e9a4b90"));
    assert_eq!(doc.systems().len(), 3);

    // SPEKE 2.0 endpoint, CPIX 2.0, no header: the generic CPIX rules with
    // a scheme per key, both kept.
    for path in ["/kms/v1/speke2", "/kms/v1/cpix", "/kms/speke2", "/kms/cpix"] {
        let name = if path.ends_with("speke2") {
            "speke2.xml"
        } else {
            "cpix.xml"
        };
        let r = post(path, example(name), &[]).await;
        let doc = filled(&r);
        let schemes: Vec<_> = doc
            .keys()
            .iter()
            .map(|k| k.common_encryption_scheme().unwrap_or("").to_owned())
            .collect();
        assert_eq!(schemes, ["cenc", "cbcs"], "{path}");
        let request = cpix::parse(&example(name)).unwrap();
        assert_eq!(doc.content_id(), request.content_id(), "{path}");
        for d in doc.systems() {
            if d.system_id != SystemId::FAIRPLAY {
                let pssh = d.pssh.as_ref().map(|p| p.value().trim().to_owned());
                assert!(pssh.is_some_and(|p| !p.is_empty()), "{path}: {}", r.text());
            }
        }
        assert!(
            common::check::problems(&doc, false).is_empty(),
            "{path}: {:#?}",
            common::check::problems(&doc, false)
        );
    }
    // With the header every AWS encryptor sends, the AWS rules apply.
    let r = post(
        "/kms/v1/speke2",
        example("speke2.xml"),
        &[("x-speke-version", "2.0")],
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.text(), "Unsupported CPIX@version");
    s.stop().await;
}

#[tokio::test]
async fn anevia_needs_credentials_unless_a_tenant_opens_it_to_the_address() {
    let kid = "a4649412-9c4f-43f5-baf1-4ffb9557dcf5";
    let path = format!("/kms/v1/cpix-anevia/brand-1/{kid}");
    // Closed by default: no credentials, 401; credentials still work.
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config("", "")).await;
    let r = send("GET", &s.url(&path), &[], vec![]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("allow_from"), "{}", r.text());
    let with_key = filled(&send("GET", &s.url(&path), &acme(), vec![]).await);
    let basic = format!(
        "Basic {}",
        cpixd::b64::encode(format!("{}:{}", ACME_USER.0, ACME_USER.1).as_bytes())
    );
    let r = send("GET", &s.url(&path), &[("authorization", &basic)], vec![]).await;
    assert_eq!(filled(&r).keys(), with_key.keys());
    s.stop().await;

    // Opened to other addresses only: still 401, and an X-Forwarded-For
    // from a peer that is not a trusted proxy is not believed.
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(r#""10.0.0.0/8""#, "")).await;
    let r = send("GET", &s.url(&path), &[], vec![]).await;
    assert_eq!(r.status, 401);
    let r = send(
        "GET",
        &s.url(&path),
        &[("x-forwarded-for", "10.20.1.2")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    s.stop().await;

    // Behind a trusted proxy (here the loopback peer), the origin's address
    // is the one the proxy forwards.
    let dir = tempfile::tempdir().unwrap();
    let proxied = format!(
        "trusted_proxies = [\"127.0.0.0/8\", \"::1\"]\n{}",
        config(r#""10.0.0.0/8""#, "")
    );
    let s = TestServer::start(dir.path(), &proxied).await;
    let r = send(
        "GET",
        &s.url(&path),
        &[("x-forwarded-for", "10.20.1.2")],
        vec![],
    )
    .await;
    let opened = filled(&r);
    let again = filled(&send("GET", &s.url(&path), &acme(), vec![]).await);
    assert_eq!(
        opened.keys(),
        again.keys(),
        "acme's key, let in by the forwarded address"
    );
    let r = send("GET", &s.url(&path), &[], vec![]).await;
    assert_eq!(r.status, 401, "the proxy's own address is not allowed");
    let r = send(
        "GET",
        &s.url(&path),
        &[("x-forwarded-for", "192.0.2.7")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    s.stop().await;

    // Opened to loopback for acme: the origin's GET gets acme's key.
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(r#""127.0.0.0/8", "::1""#, "")).await;
    let open = filled(&send("GET", &s.url(&path), &[], vec![]).await);
    let again = filled(&send("GET", &s.url(&path), &acme(), vec![]).await);
    assert_eq!(open.keys(), again.keys(), "the same key through both doors");
    // Another tenant named: not opened for it.
    let r = send(
        "GET",
        &s.url(&format!("{path}?tenantId=globex")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    s.stop().await;

    // Opened by two tenants: the request must say which.
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(r#""127.0.0.1""#, r#""127.0.0.0/8""#)).await;
    let r = send("GET", &s.url(&path), &[], vec![]).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("several tenants"), "{}", r.text());
    let a = filled(&send("GET", &s.url(&format!("{path}?tenantId=acme")), &[], vec![]).await);
    let g = filled(&send("GET", &s.url(&path), &[("x-tenant-id", "globex")], vec![]).await);
    assert_ne!(a.keys(), g.keys(), "tenants never share keys");
    s.stop().await;
}

#[tokio::test]
async fn kms_urls_name_the_tenant_in_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config("", "")).await;
    let basic = format!(
        "Basic {}",
        cpixd::b64::encode(format!("{}:{}", ACME_USER.0, ACME_USER.1).as_bytes())
    );
    let body = example("speke.xml");
    let r = send(
        "POST",
        &s.url("/kms/speke?tenantId=acme"),
        &[("authorization", &basic)],
        body.clone(),
    )
    .await;
    filled(&r);
    // An API key needs its tenant: the query names it.
    let r = send(
        "POST",
        &s.url("/kms/v1/speke?tenantId=acme"),
        &[("x-api-key", ACME_KEY)],
        body.clone(),
    )
    .await;
    filled(&r);
    // Valid credentials naming another tenant: 403.
    let r = send(
        "POST",
        &s.url("/kms/speke?tenantId=globex"),
        &[("authorization", &basic)],
        body,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    s.stop().await;
}
