//! What the gateway refuses to send upstream with cpixd's credentials:
//! paths that could reach another operation than the one they matched
//! (dot segments, encoded slashes and backslashes, in any spelling), the
//! operations that mint, reveal or change the platform's credentials
//! (unless the platform allows them), and method-override headers.

mod common;

use common::server::ACME_KEY;
use common::world::{world, Options, World};
use cpixd::proxy::routes::catalogues;

fn nothing_went_upstream(w: &World) -> bool {
    w.fakes().iter().all(|f| f.seen().is_empty())
}

#[tokio::test]
async fn traversal_in_any_spelling_is_refused_for_every_platform() {
    let w = world(Options::default()).await;
    // Each platform with a documented path that takes a parameter.
    let cases = [
        ("cloudvideokit", "/vod/v1/assets/{}"),
        ("kinescope", "/v1/videos/{}"),
        ("apivideo", "/videos/{}"),
        ("pixop", "/videos/v1/project/{}"),
        ("5centscdn", "/streams/push/{}"),
    ];
    let payloads = [
        "..%2F..%2F..%2Fdrm%2Fv1%2Fsettings",
        "..",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "a%2Fb",
        "a%2fb",
        "a%5Cb",
        "a%5cb",
        "%252e%252e",
        "a%252Fb",
        "..;jsessionid=x",
        ".",
        "%2e",
        "a%00b",
    ];
    for (platform, template) in cases {
        for p in payloads {
            let path = format!("/proxy/{platform}{}", template.replace("{}", p));
            let r = w.call("GET", &path, &[], vec![]).await;
            assert_eq!(r.status, 400, "{path}: {}", r.text());
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["code"], "unsafe_path", "{path}");
            assert_eq!(r.header("x-cpixd-error-side").as_deref(), Some("client"));
        }
        // A dot segment between fixed segments is refused too.
        let path = format!("/proxy/{platform}/v1/../../drm/v1/settings");
        let r = w.call("GET", &path, &[], vec![]).await;
        assert_eq!(r.status, 400, "{path}");
    }
    assert!(nothing_went_upstream(&w), "a refused path went upstream");
    // Ordinary escapes in a parameter still pass.
    let r = w
        .call("GET", "/proxy/kinescope/v1/videos/a%20b.c", &[], vec![])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(w.kinescope_api.last().unwrap().path(), "/v1/videos/a%20b.c");
    w.server.stop().await;
}

#[tokio::test]
async fn credential_operations_are_refused_unless_allowed() {
    let w = world(Options::default()).await;
    let mut refused = 0;
    for cat in catalogues() {
        for op in cat
            .operations
            .iter()
            .filter(|o| o.credential && !o.is_native())
        {
            let path = common::world::sample_path(op);
            let url = format!("/proxy/{}{path}", cat.platform);
            let r = w.call(op.method.as_str(), &url, &[], vec![]).await;
            let what = format!("{} {} ({})", op.method, url, op.name);
            assert_eq!(r.status, 403, "{what}: {}", r.text());
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["code"], "credential_operation", "{what}");
            let msg = v["message"].as_str().unwrap();
            assert!(msg.contains(&op.name), "{what}: {msg}");
            assert!(msg.contains("allow_credential_operations"), "{msg}");
            refused += 1;
        }
    }
    assert!(
        nothing_went_upstream(&w),
        "a credential operation went upstream"
    );
    // The rows named by the report that found the hole, among others.
    for (platform, name) in [
        ("pixop", "generate_jwt_token"),
        ("pixop", "update_password"),
        ("pixop", "generate_auth_secret"),
        ("cloudvideokit", "create_api_key"),
        ("cloudvideokit", "get_api_keys"),
        ("cloudvideokit", "get_webhook_signature_secret"),
        ("kinescope", "create_token"),
    ] {
        let cat = cpixd::proxy::routes::catalogue(platform).unwrap();
        assert!(cat.operation(name).unwrap().credential, "{platform} {name}");
    }
    assert!(refused >= 45, "only {refused} credential operations");
    w.server.stop().await;
    // Allowed: they go up like any other operation.
    let w = world(Options {
        allow_credentials: true,
        ..Options::default()
    })
    .await;
    let r = w
        .call(
            "POST",
            "/proxy/kinescope/v1/access-tokens",
            &[],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(w.kinescope_api.last().unwrap().path(), "/v1/access-tokens");
    w.server.stop().await;
}

#[tokio::test]
async fn undocumented_spellings_of_guarded_operations_stay_guarded() {
    // A platform open to undocumented paths.
    let pixop = common::fake::Fake::start(common::fake::Auth::Pixop {
        basic: common::fake::basic("ops@example.com", "pw"),
        ttl: std::time::Duration::from_secs(900),
    })
    .await;
    let toml = format!(
        "{}\n[platforms.pixop]\nemail = \"ops@example.com\"\npassword = \"pw\"\nbase_url = \"{}\"\nallow_undocumented = true\n",
        common::server::config_toml(),
        pixop.base
    );
    let dir = tempfile::tempdir().unwrap();
    let s = common::server::TestServer::start(dir.path(), &toml).await;
    let auth = [("x-api-key", ACME_KEY), ("x-tenant-id", "acme")];
    for path in [
        "/proxy/pixop/accounts/v1/token/",
        "/proxy/pixop/Accounts/V1/Token",
        "/proxy/pixop/accounts//v1/token",
        "/proxy/pixop/accounts/v1/%74oken",
        "/proxy/pixop/accounts/v1/update-password/",
    ] {
        let method = if path.contains("password") {
            "POST"
        } else {
            "GET"
        };
        let r = common::http::send(method, &s.url(path), &auth, vec![]).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
    assert!(
        pixop
            .seen()
            .iter()
            .all(|x| x.path() != "/accounts/v1/token/"
                && !x.path().to_ascii_lowercase().contains("update-password")),
        "{:?}",
        pixop
            .seen()
            .iter()
            .map(|x| x.target.clone())
            .collect::<Vec<_>>()
    );
    // A genuinely undocumented path still passes.
    let r = common::http::send(
        "GET",
        &s.url("/proxy/pixop/videos/v1/new-thing"),
        &auth,
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn method_override_headers_never_go_upstream() {
    let w = world(Options::default()).await;
    let r = w
        .call(
            "GET",
            "/proxy/kinescope/v1/videos",
            &[
                ("x-http-method-override", "DELETE"),
                ("x-http-method", "DELETE"),
                ("x-method-override", "DELETE"),
            ],
            vec![],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = w.kinescope_api.last().unwrap();
    assert_eq!(seen.method, "GET");
    for h in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        assert_eq!(seen.header(h), None, "{h} went upstream");
    }
    w.server.stop().await;
}
