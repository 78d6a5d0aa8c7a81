//! The player side against a running server: DRM tokens (issued, forged,
//! expired, for another tenant, asset or system), ClearKey licences and
//! HLS AES-128 keys from the store, the licence proxy against a fake
//! licence server on 127.0.0.1 (challenge bytes and answers unchanged, the
//! server's credentials added, the player's token never forwarded),
//! certificates, CORS, the settings, signing-key rotation, OAuth2 client
//! credentials on the KMS, and signalling that points at these endpoints.

mod common;

use common::fake::{Auth, Fake, Scripted};
use common::http::{send, Resp};
use common::server::{TestServer, ACME_KEY, GLOBEX_KEY};
use cpixd::cpix;
use cpixd::keys::signing::SigningKey;
use cpixd::licence::token::{self, Claims, Use};
use std::path::Path;

const KID: &str = "0f083e4e-b831-4a3d-917e-ce78076e54aa";
const KID_B64URL: &str = "Dwg-TrgxSj2Rfs54B25Uqg";
const OTHER_KID: &str = "7e4d1c97-1a42-5710-80c5-b16272252e7f";
const ENCODER_SECRET: &str = "encoder-secret-9f";
const UPSTREAM_AUTH: &str = "Bearer licence-server-secret";
const BASE: &str = "https://drm.example.com";

fn h(s: &str) -> String {
    cpixd::crypto::sha256_hex(s.as_bytes())
}

fn config(dir: &Path, fake: &str) -> String {
    std::fs::write(dir.join("wv.cert"), [0x08u8, 0x05, 0x12, 0x00, 0xff, 0x10]).unwrap();
    std::fs::write(dir.join("fp.cer"), [0x30u8, 0x82, 0x01, 0x00, 0x02]).unwrap();
    // A secret from a file: readable by its owner only.
    let pr_auth = dir.join("pr-auth");
    std::fs::write(&pr_auth, format!("{UPSTREAM_AUTH}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pr_auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        r#"
public_base_url = "{BASE}"

[[tenant]]
id = "acme"
api_key_sha256 = ["{acme}"]
[[tenant.oauth_client]]
client_id = "acme-encoder"
client_secret_sha256 = "{secret}"
[tenant.license.widevine]
url = "{fake}/wv?provider=acme"
authorization = "{UPSTREAM_AUTH}"
headers = {{ "X-Licence-Tenant" = "acme" }}
certificate_file = "{wv}"
[tenant.license.playready]
url = "{fake}/pr"
authorization_file = "{pr_auth}"
[tenant.license.fairplay]
certificate_file = "{fp}"

[[tenant]]
id = "globex"
api_key_sha256 = ["{globex}"]
[tenant.authorization]
enabled = false
"#,
        acme = h(ACME_KEY),
        secret = h(ENCODER_SECRET),
        globex = h(GLOBEX_KEY),
        wv = dir.join("wv.cert").display(),
        fp = dir.join("fp.cer").display(),
        pr_auth = dir.join("pr-auth").display(),
    )
}

fn acme() -> Vec<(&'static str, &'static str)> {
    vec![("x-api-key", ACME_KEY), ("x-tenant-id", "acme")]
}

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.text()))
}

/// A SPEKE 2.0 request for `content` with one `cenc` key and DASH-IF
/// ClearKey, W3C common, PlayReady and HLS AES-128 (`cbc1` needs its own
/// request, see `aes128_request`).
fn speke(content: &str, kid: &str) -> Vec<u8> {
    format!(
        r#"<cpix:CPIX contentId="{content}" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">
<cpix:ContentKeyList><cpix:ContentKey kid="{kid}" commonEncryptionScheme="cenc"/></cpix:ContentKeyList>
<cpix:DRMSystemList>
<cpix:DRMSystem kid="{kid}" systemId="e2719d58-a985-b3c9-781a-b030af78d30e"><cpix:PSSH/><cpix:ContentProtectionData/></cpix:DRMSystem>
<cpix:DRMSystem kid="{kid}" systemId="9a04f079-9840-4286-ab92-e65be0885f95"><cpix:PSSH/></cpix:DRMSystem>
</cpix:DRMSystemList>
<cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule kid="{kid}" intendedTrackType="ALL"><cpix:VideoFilter/><cpix:AudioFilter/></cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList>
</cpix:CPIX>"#
    )
    .into_bytes()
}

fn aes128_request(content: &str, kid: &str) -> Vec<u8> {
    format!(
        r#"<cpix:CPIX contentId="{content}" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">
<cpix:ContentKeyList><cpix:ContentKey kid="{kid}" commonEncryptionScheme="cbc1"/></cpix:ContentKeyList>
<cpix:DRMSystemList><cpix:DRMSystem kid="{kid}" systemId="3ea8778f-7742-4bf9-b18b-e834b2acbd47"><cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/></cpix:DRMSystem></cpix:DRMSystemList>
<cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule kid="{kid}" intendedTrackType="VIDEO"><cpix:VideoFilter/></cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList>
</cpix:CPIX>"#
    )
    .into_bytes()
}

async fn keys_of(s: &TestServer, body: Vec<u8>) -> cpix::Document {
    let mut hd = acme();
    hd.extend([
        ("x-speke-version", "2.0"),
        ("content-type", "application/xml"),
    ]);
    let r = send("POST", &s.url("/kms/v1/speke2"), &hd, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    cpix::parse(&r.body).unwrap()
}

async fn token(s: &TestServer, asset: &str, query: &str) -> String {
    let r = send(
        "GET",
        &s.url(&format!("/drm/v1/token/{asset}{query}")),
        &acme(),
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    json(&r)["token"].as_str().unwrap().to_owned()
}

async fn licence(s: &TestServer, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    send("POST", &s.url(path), headers, body.to_vec()).await
}

fn clearkey_request(kids: &[&str]) -> Vec<u8> {
    format!(
        r#"{{"kids":[{}],"type":"temporary"}}"#,
        kids.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(",")
    )
    .into_bytes()
}

#[tokio::test]
async fn tokens_open_exactly_their_keys() {
    let fake = Fake::start(Auth::None).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(dir.path(), &fake.base)).await;
    let doc = keys_of(&s, speke("movie-1", KID)).await;
    let key = doc.keys()[0].plain_value().unwrap().to_vec();
    keys_of(&s, speke("movie-2", OTHER_KID)).await;

    // Signalling points at cpixd's own licence URL.
    let ck = doc
        .systems()
        .iter()
        .find(|d| d.system_id == cpixd::ids::SystemId::DASHIF_CLEARKEY)
        .unwrap();
    let cpd = String::from_utf8(
        cpix::decode_base64(ck.content_protection_data.as_ref().unwrap().value()).unwrap(),
    )
    .unwrap();
    assert!(
        cpd.contains(&format!("{BASE}/acquire-license/clearkey?brandGuid=acme")),
        "{cpd}"
    );
    // PlayReady LA_URL points at the licence proxy (a PlayReady server is configured).
    let pr = doc
        .systems()
        .iter()
        .find(|d| d.system_id == cpixd::ids::SystemId::PLAYREADY)
        .unwrap();
    let described =
        cpixd::drm::describe_pssh(&cpix::decode_base64(pr.pssh.as_ref().unwrap().value()).unwrap())
            .unwrap();
    assert!(
        described.contains(&format!("{BASE}/acquire-license/playready?brandGuid=acme")),
        "{described}"
    );

    let t = token(&s, "movie-1", "?userId=viewer-7&drmSystems=clearkey,aes128").await;
    let claims = token::unverified_claims(&t).unwrap();
    assert_eq!(
        (claims.tid.as_str(), claims.sub.as_str()),
        ("acme", "movie-1")
    );
    assert_eq!(claims.uid.as_deref(), Some("viewer-7"));
    assert_eq!(claims.drm, ["clearkey", "aes128"]);
    assert!(claims.exp > claims.iat);
    // Query values are form-encoded, as URLSearchParams writes them: the
    // statistics' TokenUserId filter reads "viewer+7" the same way.
    let spaced = token(&s, "movie-1", "?userId=viewer+7%2B1").await;
    let spaced = token::unverified_claims(&spaced).unwrap();
    assert_eq!(spaced.uid.as_deref(), Some("viewer 7+1"));
    let bearer = format!("Bearer {t}");
    for path in [
        "/acquire-license/clearkey",
        "/license/v1/acquire-license/clearkey",
    ] {
        let r = licence(
            &s,
            path,
            &[("authorization", &bearer)],
            &clearkey_request(&[KID_B64URL]),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        let v = json(&r);
        assert_eq!(v["type"], "temporary");
        let k = &v["keys"][0];
        assert_eq!(k["kty"], "oct");
        assert_eq!(k["kid"], KID_B64URL);
        let mut want = String::new();
        cpixd::b64::encode_url_into(&key, &mut want);
        assert_eq!(k["k"], want.as_str());
    }
    // ?token= works too; unknown KIDs are left out; the session type is kept.
    let unknown = "AAAAAAAAAAAAAAAAAAAAAA";
    let r = licence(
        &s,
        &format!("/acquire-license/clearkey?token={t}"),
        &[],
        format!(r#"{{"kids":["{KID_B64URL}","{unknown}"],"type":"persistent-license"}}"#)
            .as_bytes(),
    )
    .await;
    let v = json(&r);
    assert_eq!(v["keys"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["type"], "persistent-license");
    // A KID of another asset: the licence is refused.
    let other_b64 = {
        let mut s = String::new();
        cpixd::b64::encode_url_into(
            cpixd::ids::KeyId::parse_uuid(OTHER_KID).unwrap().as_bytes(),
            &mut s,
        );
        s
    };
    let r = licence(
        &s,
        "/acquire-license/clearkey",
        &[("authorization", &bearer)],
        &clearkey_request(&[&other_b64]),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(json(&r)["code"], "INVALID_TOKEN");
    // No token: 401; garbage: 403; not JSON: 400.
    let r = licence(
        &s,
        "/acquire-license/clearkey",
        &[],
        &clearkey_request(&[KID_B64URL]),
    )
    .await;
    assert_eq!(
        (r.status, json(&r)["code"].clone()),
        (401, "INVALID_TOKEN".into())
    );
    let r = licence(
        &s,
        "/acquire-license/clearkey",
        &[("authorization", "Bearer x.y.z")],
        &clearkey_request(&[KID_B64URL]),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = licence(
        &s,
        "/acquire-license/clearkey",
        &[("authorization", &bearer)],
        b"{nope",
    )
    .await;
    assert_eq!(r.status, 400);
    // The token does not open Widevine.
    let r = licence(
        &s,
        "/acquire-license/widevine",
        &[("authorization", &bearer)],
        b"challenge",
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(fake.seen().is_empty(), "a refused challenge went upstream");
    // Unknown system.
    let r = licence(
        &s,
        "/acquire-license/vmx",
        &[("authorization", &bearer)],
        b"x",
    )
    .await;
    assert_eq!(r.status, 404);

    // Forged, expired, other tenant: with the tenant's real signing key
    // from the settings, claims can be made up to test each check.
    let settings = json(&send("GET", &s.url("/drm/v1/settings"), &acme(), vec![]).await);
    let secret = cpixd::b64::decode(
        settings["licenseAcquisition"]["authorization"]["signingKey"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut key_bytes = [0u8; 32];
    key_bytes.copy_from_slice(&secret);
    let real = SigningKey {
        version: 1,
        secret: zeroize::Zeroizing::new(key_bytes),
        created_ms: 0,
        retires_ms: None,
    };
    let now = token::now_secs();
    let claims = |sub: &str, tid: &str, exp: u64, drm: &[&str]| Claims {
        iss: "cpixd".into(),
        tid: tid.into(),
        sub: sub.into(),
        uid: None,
        drm: drm.iter().map(|s| s.to_string()).collect(),
        iat: now - 100,
        exp,
        typ: Use::Drm,
    };
    let cases = [
        (
            "expired",
            token::sign(&claims("movie-1", "acme", now - 1, &[]), &real),
            403,
            "LICENSE_EXPIRED",
        ),
        (
            "forged",
            {
                let mut other = real.clone();
                other.secret[0] ^= 1;
                token::sign(&claims("movie-1", "acme", now + 600, &[]), &other)
            },
            403,
            "INVALID_TOKEN",
        ),
        (
            "other tenant's claims",
            token::sign(&claims("movie-1", "globex", now + 600, &[]), &real),
            403,
            "INVALID_TOKEN",
        ),
    ];
    for (what, jwt, status, code) in cases {
        let r = licence(
            &s,
            "/acquire-license/clearkey",
            &[("authorization", &format!("Bearer {jwt}"))],
            &clearkey_request(&[KID_B64URL]),
        )
        .await;
        assert_eq!(
            (r.status, json(&r)["code"].as_str().unwrap()),
            (status, code),
            "{what}"
        );
    }
    // A made-up token that verifies is honoured: the checks above were the
    // ones that refused.
    let good = token::sign(&claims("movie-1", "acme", now + 600, &[]), &real);
    let r = licence(
        &s,
        "/acquire-license/clearkey",
        &[("authorization", &format!("Bearer {good}"))],
        &clearkey_request(&[KID_B64URL]),
    )
    .await;
    assert_eq!(r.status, 200);
    // A KMS access token is not a DRM token.
    let mut kms = claims("acme-encoder", "acme", now + 600, &[]);
    kms.typ = Use::Kms;
    let r = licence(
        &s,
        "/acquire-license/clearkey",
        &[(
            "authorization",
            &format!("Bearer {}", token::sign(&kms, &real)),
        )],
        &clearkey_request(&[KID_B64URL]),
    )
    .await;
    assert_eq!(r.status, 403);
    // brandGuid naming another tenant than the token's.
    let r = licence(
        &s,
        "/acquire-license/clearkey?brandGuid=globex",
        &[("authorization", &bearer)],
        &clearkey_request(&[KID_B64URL]),
    )
    .await;
    assert_eq!(r.status, 403);
    // Token parameters are checked.
    for bad in [
        "?drmSystems=vmx",
        "?expiresIn=0",
        "?expiresIn=999999999",
        "?bogus=1",
    ] {
        let r = send(
            "GET",
            &s.url(&format!("/drm/v1/token/movie-1{bad}")),
            &acme(),
            vec![],
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = send("GET", &s.url("/drm/v1/token/movie-1"), &[], vec![]).await;
    assert_eq!(r.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn hls_keys_and_tenants_without_authorization() {
    let fake = Fake::start(Auth::None).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(dir.path(), &fake.base)).await;
    let doc = keys_of(&s, aes128_request("live-1", KID)).await;
    let key = doc.keys()[0].plain_value().unwrap().to_vec();
    // The signalled key URI is cpixd's key endpoint.
    let hls = &doc.systems()[0].hls_signaling_data[0];
    let line = String::from_utf8(cpix::decode_base64(hls.value()).unwrap()).unwrap();
    let uri = format!("{BASE}/hls/v1/key/live-1/{KID}?brandGuid=acme");
    assert!(line.contains(&format!("URI=\"{uri}\"")), "{line}");
    let path = format!("/hls/v1/key/live-1/{KID}");
    let t = token(&s, "live-1", "?drmSystems=aes128").await;
    let r = send(
        "GET",
        &s.url(&format!("{path}?brandGuid=acme&token={t}")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, key);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    // Another content id in the path: not found; a token for another asset: refused.
    let r = send(
        "GET",
        &s.url(&format!("/hls/v1/key/live-2/{KID}?token={t}")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 403);
    let t2 = token(&s, "live-2", "").await;
    let r = send(
        "GET",
        &s.url(&format!("/hls/v1/key/live-2/{KID}?token={t2}")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    let r = send(
        "GET",
        &s.url(&format!("{path}?brandGuid=acme")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);

    // globex turned authorization off: its keys need no token, and its
    // settings say so; acme's stay closed.
    let mut hd = vec![("x-api-key", GLOBEX_KEY), ("x-tenant-id", "globex")];
    hd.extend([
        ("x-speke-version", "2.0"),
        ("content-type", "application/xml"),
    ]);
    let r = send(
        "POST",
        &s.url("/kms/v1/speke2"),
        &hd,
        aes128_request("g-1", OTHER_KID),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        "GET",
        &s.url(&format!("/hls/v1/key/g-1/{OTHER_KID}?brandGuid=globex")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), 16);
    let g = json(&send("GET", &s.url("/drm/v1/settings"), &hd[..2], vec![]).await);
    assert_eq!(g["licenseAcquisition"]["authorization"]["enabled"], false);
    let r = send(
        "GET",
        &s.url(&format!("/hls/v1/key/g-1/{OTHER_KID}?brandGuid=acme")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn challenges_go_to_the_licence_server_unchanged() {
    let fake = Fake::start(Auth::Headers(vec![("authorization", UPSTREAM_AUTH.into())])).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(dir.path(), &fake.base)).await;
    let t = token(&s, "movie-1", "").await;
    let bearer = format!("Bearer {t}");
    // Arbitrary bytes, a Widevine SignedMessage-like protobuf, a PlayReady SOAP challenge.
    let soap = br#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge><Challenge>AAAB</Challenge></challenge></AcquireLicense></soap:Body></soap:Envelope>"#;
    let binary: Vec<u8> = (0..=255u8).chain([0x08, 0x01, 0x12, 0x00]).collect();
    for (system, path, body, ct) in [
        (
            "widevine",
            "/wv",
            binary.clone(),
            "application/octet-stream",
        ),
        ("playready", "/pr", soap.to_vec(), "text/xml; charset=utf-8"),
    ] {
        fake.push(
            Some(path),
            Scripted::status(200)
                .header("content-type", "application/x-licence")
                .body("LICENCE-BYTES-é"),
        );
        let r = licence(
            &s,
            &format!("/acquire-license/{system}?brandGuid=acme"),
            &[
                ("authorization", &bearer),
                ("content-type", ct),
                (
                    "soapaction",
                    "\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\"",
                ),
            ],
            &body,
        )
        .await;
        assert_eq!(r.status, 200, "{system}: {}", r.text());
        assert_eq!(r.text(), "LICENCE-BYTES-é");
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/x-licence")
        );
        let seen = fake.last().unwrap();
        assert_eq!(seen.method, "POST");
        assert_eq!(
            seen.body_head, body,
            "{system}: challenge changed on the way"
        );
        assert_eq!(seen.header("content-type").as_deref(), Some(ct));
        assert_eq!(seen.header("authorization").as_deref(), Some(UPSTREAM_AUTH));
        assert!(
            !seen
                .headers
                .iter()
                .any(|(_, v)| v.to_str().unwrap_or("").contains(&t)),
            "the player's token went upstream"
        );
        if system == "widevine" {
            assert_eq!(seen.target, "/wv?provider=acme");
            assert_eq!(seen.header("x-licence-tenant").as_deref(), Some("acme"));
        } else {
            assert!(seen.header("soapaction").is_some());
        }
    }
    // The licence server's own refusal passes back unchanged.
    fake.push(Some("/wv"), Scripted::status(403).body("device revoked"));
    let r = licence(
        &s,
        "/acquire-license/widevine",
        &[("authorization", &bearer)],
        b"x",
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (403, "device revoked"));
    // FairPlay has only a certificate: 501 naming the setting.
    let r = licence(
        &s,
        "/acquire-license/fairplay",
        &[("authorization", &bearer)],
        b"spc",
    )
    .await;
    assert_eq!(r.status, 501);
    let v = json(&r);
    assert_eq!(v["code"], "not_configured");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("[tenant.license.fairplay] url"),
        "{v}"
    );
    // An unreachable licence server is a 502.
    drop(fake);
    s.stop().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(dir.path(), &dead)).await;
    let t = token(&s, "movie-1", "").await;
    let r = licence(
        &s,
        "/acquire-license/widevine",
        &[("authorization", &format!("Bearer {t}"))],
        b"x",
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn certificates_cors_settings_and_rotation() {
    let fake = Fake::start(Auth::None).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(dir.path(), &fake.base)).await;
    for path in [
        "/license/v1/certificate/widevine?brandGuid=acme",
        "/certificate/widevine?brandGuid=acme",
    ] {
        let r = send("GET", &s.url(path), &[], vec![]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, [0x08, 0x05, 0x12, 0x00, 0xff, 0x10]);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/octet-stream")
        );
    }
    let r = send(
        "GET",
        &s.url("/license/v1/certificate/fairplay?brandGuid=acme"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.body, [0x30, 0x82, 0x01, 0x00, 0x02]);
    let r = send(
        "GET",
        &s.url("/license/v1/certificate/fairplay?brandGuid=globex"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(json(&r)["message"]
        .as_str()
        .unwrap()
        .contains("certificate_file"));
    let r = send(
        "GET",
        &s.url("/license/v1/certificate/playready?brandGuid=acme"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    let r = send(
        "GET",
        &s.url("/license/v1/certificate/widevine"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 400);

    // CORS: preflight and the header on answers, errors included.
    let r = send(
        "OPTIONS",
        &s.url("/acquire-license/clearkey"),
        &[
            ("origin", "https://player.example"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type",
            ),
        ],
        vec![],
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    let r = send(
        "POST",
        &s.url("/acquire-license/clearkey"),
        &[("origin", "https://player.example")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );

    // The settings, in the documented shape; no password or hash in them.
    let v = json(&send("GET", &s.url("/drm/v1/settings"), &acme(), vec![]).await);
    assert_eq!(v["tenantId"], "acme");
    let auth = &v["licenseAcquisition"]["authorization"];
    assert_eq!(
        (auth["enabled"].clone(), auth["signingAlgorithm"].clone()),
        (true.into(), "HS256".into())
    );
    let endpoints = v["licenseAcquisition"]["endpoints"].as_array().unwrap();
    let wv = endpoints
        .iter()
        .find(|e| e["system"] == "Widevine")
        .unwrap();
    assert_eq!(
        wv["licenseUrl"],
        format!("{BASE}/acquire-license/widevine?brandGuid=acme")
    );
    assert_eq!(
        wv["certificateUrl"],
        format!("{BASE}/license/v1/certificate/widevine?brandGuid=acme")
    );
    assert_eq!(wv["systemId"], "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed");
    let pr = endpoints
        .iter()
        .find(|e| e["system"] == "PlayReady")
        .unwrap();
    assert!(pr.get("certificateUrl").is_none());
    assert!(endpoints.iter().any(|e| e["system"] == "Fairplay"));
    let kms: Vec<(&str, &str)> = v["kms"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["protocol"].as_str().unwrap(), e["url"].as_str().unwrap()))
        .collect();
    assert!(
        kms.contains(&(
            "SPEKE 2",
            "https://drm.example.com/kms/speke2?tenantId=acme"
        )),
        "{kms:?}"
    );
    assert!(kms.iter().any(|(p, _)| p.starts_with("Ateme/Anevia")));
    assert_eq!(v["kms"]["oAuth"]["clientId"], "acme-encoder");
    assert_eq!(v["kms"]["oAuth"]["tokenUrl"], format!("{BASE}/oauth/token"));
    assert_eq!(v["kms"]["oAuth"]["grantType"], "client_credentials");
    let text = v.to_string();
    assert!(
        !text.contains(&h(ENCODER_SECRET))
            && !text.contains(ENCODER_SECRET)
            && !text.contains("clientSecret")
    );
    assert!(!text.contains("password"), "{text}");

    // Rotation: old tokens verify during the grace period, not after.
    let old = token(&s, "movie-1", "").await;
    let bearer_old = format!("Bearer {old}");
    let body = clearkey_request(&[KID_B64URL]);
    let r = send(
        "POST",
        &s.url("/drm/v1/settings/signing-key/rotate?graceSeconds=3600"),
        &acme(),
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated = json(&r);
    assert_ne!(rotated["signingKey"], auth["signingKey"]);
    assert!(rotated["previousKeyValidUntil"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let r = licence(
        &s,
        "/acquire-license/clearkey",
        &[("authorization", &bearer_old)],
        &body,
    )
    .await;
    assert_eq!(
        r.status,
        200,
        "an old token must verify within the grace period: {}",
        r.text()
    );
    let new = token(&s, "movie-1", "").await;
    assert_ne!(new, old, "signed with the new key");
    let r = licence(
        &s,
        "/acquire-license/clearkey",
        &[("authorization", &format!("Bearer {new}"))],
        &body,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        "POST",
        &s.url("/drm/v1/settings/signing-key/rotate?graceSeconds=0"),
        &acme(),
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    for t in [&old, &new] {
        let r = licence(
            &s,
            "/acquire-license/clearkey",
            &[("authorization", &format!("Bearer {t}"))],
            &body,
        )
        .await;
        assert_eq!(r.status, 403, "a token of a retired key verified");
    }
    let r = send(
        "POST",
        &s.url("/drm/v1/settings/signing-key/rotate"),
        &[("x-api-key", GLOBEX_KEY), ("x-tenant-id", "acme")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 403);
    s.stop().await;
}

#[tokio::test]
async fn oauth_client_credentials_open_the_kms() {
    let fake = Fake::start(Auth::None).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config(dir.path(), &fake.base)).await;
    let form = |body: &str| body.as_bytes().to_vec();
    let ct = [("content-type", "application/x-www-form-urlencoded")];
    let r = send(
        "POST",
        &s.url("/oauth/token"),
        &ct,
        form(&format!(
            "grant_type=client_credentials&client_id=acme-encoder&client_secret={ENCODER_SECRET}"
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let v = json(&r);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    let access = v["access_token"].as_str().unwrap().to_owned();
    // Basic client authentication too.
    let basic = format!(
        "Basic {}",
        cpixd::b64::encode(format!("acme-encoder:{ENCODER_SECRET}").as_bytes())
    );
    let r = send(
        "POST",
        &s.url("/oauth/token"),
        &[ct[0], ("authorization", &basic)],
        form("grant_type=client_credentials"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Refusals, RFC 6749 §5.2.
    for (body, status, error) in [
        (
            "grant_type=client_credentials&client_id=acme-encoder&client_secret=wrong".to_owned(),
            401,
            "invalid_client",
        ),
        (
            format!("grant_type=password&client_id=acme-encoder&client_secret={ENCODER_SECRET}"),
            400,
            "unsupported_grant_type",
        ),
        (
            format!("client_id=acme-encoder&client_secret={ENCODER_SECRET}"),
            400,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials".to_owned(),
            401,
            "invalid_client",
        ),
    ] {
        let r = send("POST", &s.url("/oauth/token"), &ct, form(&body)).await;
        assert_eq!(
            (r.status, json(&r)["error"].as_str().unwrap()),
            (status, error),
            "{body}"
        );
    }
    // The Bearer token opens every KMS endpoint.
    let bearer = format!("Bearer {access}");
    let speke1 = common::read(&common::fixtures().join("requests/v1-widevine-vod.xml"));
    for path in ["/kms/v1/speke", "/kms/speke", "/kms/v1/copyProtection"] {
        let r = send(
            "POST",
            &s.url(path),
            &[("authorization", &bearer)],
            speke1.clone(),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = send(
        "POST",
        &s.url("/kms/v1/speke2"),
        &[("authorization", &bearer), ("x-speke-version", "2.0")],
        speke("movie-9", KID),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Another tenant named, a DRM token, a tampered token: refused.
    let r = send(
        "POST",
        &s.url("/kms/v1/speke"),
        &[("authorization", &bearer), ("x-tenant-id", "globex")],
        speke1.clone(),
    )
    .await;
    assert_eq!(r.status, 403);
    let drm = token(&s, "movie-1", "").await;
    let r = send(
        "POST",
        &s.url("/kms/v1/speke"),
        &[("authorization", &format!("Bearer {drm}"))],
        speke1.clone(),
    )
    .await;
    assert_eq!(r.status, 401);
    let mut tampered = access.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let r = send(
        "POST",
        &s.url("/kms/v1/speke"),
        &[(
            "authorization",
            &format!("Bearer {}", String::from_utf8(tampered).unwrap()),
        )],
        speke1,
    )
    .await;
    assert_eq!(r.status, 401);
    s.stop().await;
}
