//! The platform gateway against fake upstreams on 127.0.0.1, one per
//! upstream host: every documented operation of every route table reaches
//! the right host, method and path with the platform's credentials (and
//! never the caller's); unknown operations get the closest ones; replays
//! happen only where safe, honour `Retry-After` and stay within their
//! budget; exchanged tokens are minted once and renewed before expiry;
//! redirects, ranges, conditional GETs and Pixop's absolute URLs pass back
//! as a client expects.

mod common;

use common::fake::{basic, saw_value, Auth, Fake, Scripted};
use common::http::send;
use common::server::{config_toml, TestServer, ACME_KEY, GLOBEX_KEY, METRICS_AUTH};
use common::world::*;
use cpixd::proxy::routes::catalogues;
use std::time::{Duration, Instant};

#[tokio::test]
async fn every_documented_operation_reaches_its_host_method_and_path() {
    // Credential operations included: they are allowed here, and refused by
    // default (`credential_operations_are_refused_unless_allowed`).
    let w = world(Options {
        allow_credentials: true,
        ..Options::default()
    })
    .await;
    let mut checked = 0;
    let mut native = 0;
    let mut pathless = 0;
    for cat in catalogues() {
        for op in &cat.operations {
            if op.path.is_none() {
                pathless += 1;
                continue;
            }
            let path = sample_path(op);
            let url_path = format!("/proxy/{}{path}", cat.platform);
            let (ct, body) = match op.body.as_str() {
                "json" => ("application/json", br#"{"probe":true}"#.to_vec()),
                "xml" => ("application/xml", b"<probe/>".to_vec()),
                "multipart" => (
                    "multipart/form-data; boundary=xyz",
                    b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc\r\n--xyz--\r\n".to_vec(),
                ),
                "none" => ("", Vec::new()),
                _ => ("application/octet-stream", b"0123456789".to_vec()),
            };
            let headers: Vec<(&str, &str)> = if ct.is_empty() {
                vec![]
            } else {
                vec![("content-type", ct)]
            };
            for f in w.fakes() {
                f.clear();
            }
            let resp = w
                .call(op.method.as_str(), &url_path, &headers, body.clone())
                .await;
            let what = format!("{} {} {} ({})", cat.platform, op.method, path, op.name);
            if op.is_native() {
                native += 1;
                assert_eq!(resp.status, 404, "{what}: {}", resp.text());
                assert!(
                    resp.text().contains("served_natively"),
                    "{what}: {}",
                    resp.text()
                );
                assert!(
                    w.fakes().iter().all(|f| f.seen().is_empty()),
                    "{what} went upstream"
                );
                continue;
            }
            let fake = w.fake(cat.platform, &op.host);
            let last = fake.last().unwrap_or_else(|| {
                panic!(
                    "{what}: nothing reached the {} host: {}",
                    op.host,
                    resp.text()
                )
            });
            let prefix = if cat.platform == "5centscdn" {
                "/v2"
            } else {
                ""
            };
            assert_eq!(last.method, op.method.as_str(), "{what}");
            assert_eq!(last.path(), format!("{prefix}{path}"), "{what}");
            assert_eq!(last.body_len, body.len() as u64, "{what}");
            assert_eq!(resp.status, last.status, "{what}: status passes through");
            let label = resp.header("x-cpixd-operation").unwrap_or_default();
            assert!(
                label.split(" / ").any(|n| n == op.name),
                "{what}: labelled {label:?}"
            );
            assert_eq!(
                resp.header("x-cpixd-platform").as_deref(),
                Some(cat.platform)
            );
            if !ct.is_empty() {
                assert_eq!(last.header("content-type").as_deref(), Some(ct), "{what}");
            }
            // Only the expected host of the platform saw a call.
            for other in w.fakes() {
                if !std::ptr::eq(other, fake) {
                    let stray: Vec<_> = other.seen();
                    assert!(
                        stray.is_empty(),
                        "{what}: {} also saw {:?}",
                        other.base,
                        stray[0].target
                    );
                }
            }
            // The platform's credentials, never the caller's.
            let all = fake.seen();
            assert!(
                !saw_value(&all, ACME_KEY),
                "{what}: caller's key went upstream"
            );
            let auth = last.header("authorization");
            match cat.platform {
                "cloudvideokit" if op.host == "redirector" => {
                    assert_eq!(last.header("x-api-key"), None, "{what}");
                    assert_eq!(last.header("x-tenant-id").as_deref(), Some(CVK_TENANT));
                }
                "cloudvideokit" => {
                    assert_eq!(last.header("x-api-key").as_deref(), Some(CVK_KEY), "{what}");
                    assert_eq!(last.header("x-tenant-id").as_deref(), Some(CVK_TENANT));
                }
                "kinescope" => {
                    assert_eq!(auth, Some(format!("Bearer {KINESCOPE_TOKEN}")), "{what}")
                }
                "5centscdn" => {
                    assert_eq!(
                        last.header("x-api-key").as_deref(),
                        Some(FIVE_KEY),
                        "{what}"
                    )
                }
                "apivideo"
                    if ["POST_auth-api-key", "POST_auth-refresh", "POST_upload"]
                        .contains(&op.name.as_str()) =>
                {
                    assert_eq!(auth, None, "{what}")
                }
                "apivideo" => {
                    assert!(
                        auth.is_some_and(|a| a.starts_with("Bearer av-access-")),
                        "{what}"
                    )
                }
                "pixop" if op.name == "generate_jwt_token" => {
                    assert_eq!(auth, Some(basic(PIXOP_EMAIL, PIXOP_PASSWORD)), "{what}")
                }
                "pixop" => assert!(auth.is_some_and(|a| a.starts_with("Bearer ")), "{what}"),
                p => panic!("unexpected platform {p}"),
            }
            if cat.platform != "cloudvideokit" {
                assert_eq!(
                    last.header("x-tenant-id"),
                    None,
                    "{what}: caller's tenant header"
                );
            }
            checked += 1;
        }
    }
    // 118 Cloud Video Kit + 128 Kinescope + 40 api.video + 24 Pixop + 147 5centsCDN.
    assert_eq!(checked, 457);
    assert_eq!(native, 12);
    // 5centsCDN's report operations have no documented path: listed, not routable.
    assert_eq!(pathless, 27);
    // One token exchange served every api.video call. Pixop's fake minted
    // three: the caller's own generate_jwt_token, the gateway's token, and
    // a new one after generate_auth_secret (a signing-key rotation) dropped
    // the cached one.
    assert_eq!(w.apivideo.mints(), 1);
    assert_eq!(w.pixop.mints(), 3);
    w.server.stop().await;
}

#[tokio::test]
async fn refusals_name_what_is_wrong() {
    let w = world(Options::default()).await;
    // Unknown operation: 404 with the closest documented ones.
    let r = w
        .call("GET", "/proxy/kinescope/v1/vidoes", &[], vec![])
        .await;
    assert_eq!(r.status, 404);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["code"], "unknown_operation");
    assert_eq!(v["status"], 404);
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("GET /v1/videos (videos_list)"), "{msg}");
    // Wrong method on a documented path.
    let r = w.call("PUT", "/proxy/apivideo/videos", &[], vec![]).await;
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("POST /videos (POST-video)"),
        "{}",
        r.text()
    );
    // Unknown and unconfigured platforms.
    let r = w.call("GET", "/proxy/vimeo/videos", &[], vec![]).await;
    assert_eq!(
        (r.status, r.text().contains("unknown_platform")),
        (404, true)
    );
    // Tenant restrictions: kinescope is for acme only.
    let r = send(
        "GET",
        &w.server.url("/proxy/kinescope/v1/videos"),
        &[("x-api-key", GLOBEX_KEY), ("x-tenant-id", "globex")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // No credentials, wrong ones.
    let r = send(
        "GET",
        &w.server.url("/proxy/kinescope/v1/videos"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(
        "GET",
        &w.server.url("/proxy/kinescope/v1/videos"),
        &[("x-api-key", "nope"), ("x-tenant-id", "acme")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(w.fakes().iter().all(|f| f.seen().is_empty()));
    // The catalogue endpoints.
    let r = w.call("GET", "/proxy", &[], vec![]).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["platforms"].as_array().unwrap().len(), 5);
    let r = w.call("GET", "/proxy/pixop", &[], vec![]).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["operations"].as_array().unwrap().len(), 24);
    w.server.stop().await;
}

#[tokio::test]
async fn undocumented_paths_pass_only_where_allowed() {
    let w = world(Options::default()).await;
    let r = w
        .call(
            "GET",
            "/proxy/5centscdn/streams/new-thing?page=2",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(w.five.seen().is_empty());
    w.server.stop().await;
    let five = Fake::start(Auth::Headers(vec![("x-api-key", FIVE_KEY.into())])).await;
    let toml = format!(
        "{}\n[platforms.5centscdn]\napi_key = \"{FIVE_KEY}\"\nbase_url = \"{}/v2\"\nallow_undocumented = true\n",
        config_toml(),
        five.base
    );
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &toml).await;
    let r = send(
        "GET",
        &s.url("/proxy/5centscdn/streams/new-thing?page=2&x=%5Bk%5D%3Dv"),
        &[("x-api-key", ACME_KEY), ("x-tenant-id", "acme")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-cpixd-operation").as_deref(),
        Some("undocumented")
    );
    // The query string goes up byte for byte.
    assert_eq!(
        five.last().unwrap().target,
        "/v2/streams/new-thing?page=2&x=%5Bk%5D%3Dv"
    );
    s.stop().await;
}

#[tokio::test]
async fn safe_calls_are_replayed_unsafe_ones_never() {
    let w = world(Options {
        allow_credentials: true,
        ..Options::default()
    })
    .await;
    // A safe GET after a 503.
    w.kinescope_api
        .push(Some("/v1/videos/v1"), Scripted::status(503));
    let r = w
        .call("GET", "/proxy/kinescope/v1/videos/v1", &[], vec![])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-cpixd-attempts").as_deref(), Some("2"));
    assert_eq!(w.kinescope_api.seen().len(), 2);
    // A safe GET after a 429 with Retry-After: the delay is honoured.
    w.kinescope_api.clear();
    w.kinescope_api.push(
        Some("/v1/projects"),
        Scripted::status(429).header("retry-after", "1"),
    );
    let t0 = Instant::now();
    let r = w
        .call("GET", "/proxy/kinescope/v1/projects", &[], vec![])
        .await;
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(w.kinescope_api.seen().len(), 2);
    // api.video's own spelling of the wait.
    w.apivideo.push(
        Some("/videos"),
        Scripted::status(429).header("x-ratelimit-retry-after", "1"),
    );
    let t0 = Instant::now();
    let r = w.call("GET", "/proxy/apivideo/videos", &[], vec![]).await;
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() >= Duration::from_secs(1));
    // An unsafe create is never replayed: the 503 comes back.
    w.apivideo.clear();
    w.apivideo.push(Some("/videos"), Scripted::status(503));
    let r = w
        .call(
            "POST",
            "/proxy/apivideo/videos",
            &[("content-type", "application/json")],
            br#"{"title":"x"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-cpixd-attempts"), None);
    let creates = w
        .apivideo
        .seen()
        .into_iter()
        .filter(|s| s.path() == "/videos")
        .count();
    assert_eq!(creates, 1);
    // Pixop creates with PUT: never replayed either.
    w.pixop
        .push(Some("/videos/v1/project"), Scripted::status(502));
    let r = w
        .call(
            "PUT",
            "/proxy/pixop/videos/v1/project",
            &[("content-type", "application/json")],
            br#"{"name":"p"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, 502);
    assert_eq!(
        w.pixop
            .seen()
            .iter()
            .filter(|s| s.path() == "/videos/v1/project")
            .count(),
        1
    );
    // A GET that rotates a secret is not replayed.
    w.pixop.push(
        Some("/accounts/v1/generate-signature-secret"),
        Scripted::status(503),
    );
    let r = w
        .call(
            "GET",
            "/proxy/pixop/accounts/v1/generate-signature-secret",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 503);
    // A delete is replayed; the replay's 404 passes back.
    w.kinescope_api.clear();
    w.kinescope_api
        .push(Some("/v1/videos/gone"), Scripted::status(500));
    w.kinescope_api
        .push(Some("/v1/videos/gone"), Scripted::status(404));
    let r = w
        .call("DELETE", "/proxy/kinescope/v1/videos/gone", &[], vec![])
        .await;
    assert_eq!(
        (r.status, r.header("x-cpixd-attempts").as_deref()),
        (404, Some("2"))
    );
    w.server.stop().await;
}

#[tokio::test]
async fn retries_stay_within_their_budget() {
    let w = world(Options {
        extra: "max_attempts = 10".into(),
        ..Options::default()
    })
    .await;
    // The gateway section of world() sets a 5 s budget. A fourth attempt
    // would get the fake's default 200.
    for _ in 0..3 {
        w.kinescope_api.push(
            Some("/v1/projects/p1/folders"),
            Scripted::status(503).header("retry-after", "2"),
        );
    }
    let t0 = Instant::now();
    let r = w
        .call(
            "GET",
            "/proxy/kinescope/v1/projects/p1/folders",
            &[],
            vec![],
        )
        .await;
    let took = t0.elapsed();
    assert_eq!(r.status, 503);
    // 2 s waits: a third wait would end past the 5 s budget.
    assert_eq!(w.kinescope_api.seen().len(), 3);
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // A wait longer than the budget is not taken at all.
    w.kinescope_api.clear();
    w.kinescope_api.push(
        Some("/v1/projects/p1/folders"),
        Scripted::status(429).header("retry-after", "60"),
    );
    let t0 = Instant::now();
    let r = w
        .call(
            "GET",
            "/proxy/kinescope/v1/projects/p1/folders",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("60"));
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(w.kinescope_api.seen().len(), 1);
    w.server.stop().await;
}

#[tokio::test]
async fn gateway_failures_say_which_side_failed() {
    // An upstream that does not listen.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let slow = Fake::start(Auth::None).await;
    let toml = format!(
        "{}\n[gateway]\ntimeout_secs = 1\nbackoff_base_ms = 10\n[platforms.kinescope]\ntoken = \"t\"\nbase_url = \"{dead}\"\n[platforms.5centscdn]\napi_key = \"k\"\nbase_url = \"{}\"\n",
        config_toml(),
        slow.base
    );
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &toml).await;
    let auth = [("x-api-key", ACME_KEY), ("x-tenant-id", "acme")];
    let r = send("GET", &s.url("/proxy/kinescope/v1/videos"), &auth, vec![]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["code"], "upstream_unreachable");
    assert_eq!(r.header("x-cpixd-error-side").as_deref(), Some("upstream"));
    slow.push(
        None,
        Scripted {
            delay: Duration::from_secs(3),
            ..Scripted::status(200)
        },
    );
    let r = send("GET", &s.url("/proxy/5centscdn/streams"), &auth, vec![]).await;
    assert_eq!(r.status, 504, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["code"], "upstream_timeout");
    assert!(v["message"].as_str().unwrap().contains("within 1 s"));
    // Metrics count both as failed calls.
    let m = send("GET", &s.url("/metrics"), &[METRICS_AUTH], vec![])
        .await
        .text();
    assert!(
        m.contains(r#"cpixd_proxy_requests_total{platform="kinescope",operation="videos_list",class="failed"} 1"#),
        "{m}"
    );
    s.stop().await;
}

#[tokio::test]
async fn redirects_ranges_and_conditional_gets_pass_back() {
    let w = world(Options::default()).await;
    // A redirect is returned, not followed.
    w.cvk_redirector.push(
        None,
        Scripted::status(302).header("location", "https://cdn.example/wm/a.m3u8"),
    );
    let r = w
        .call(
            "GET",
            "/proxy/cloudvideokit/redirector/v1/redir/t/a1.m3u8?userToken=ut",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://cdn.example/wm/a.m3u8")
    );
    assert_eq!(w.cvk_redirector.seen().len(), 1);
    assert!(w
        .cvk_redirector
        .last()
        .unwrap()
        .target
        .ends_with("?userToken=ut"));
    // Range and If-None-Match go up; 206 and 304 come back with their headers.
    let path = "/media/v1/download/original/v9";
    w.pixop.push(
        Some(path),
        Scripted::status(206)
            .header("content-range", "bytes 0-3/100")
            .header("etag", "\"e1\"")
            .body("abcd"),
    );
    let r = w
        .call(
            "GET",
            &format!("/proxy/pixop{path}"),
            &[("range", "bytes=0-3")],
            vec![],
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (206, "abcd"));
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 0-3/100"));
    assert_eq!(
        w.pixop.last().unwrap().header("range").as_deref(),
        Some("bytes=0-3")
    );
    w.pixop
        .push(Some(path), Scripted::status(304).header("etag", "\"e1\""));
    let r = w
        .call(
            "GET",
            &format!("/proxy/pixop{path}"),
            &[("if-none-match", "\"e1\"")],
            vec![],
        )
        .await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    assert_eq!(
        w.pixop.last().unwrap().header("if-none-match").as_deref(),
        Some("\"e1\"")
    );
    let r = w
        .call("HEAD", &format!("/proxy/pixop{path}"), &[], vec![])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-cpixd-operation").as_deref(),
        Some("download_original_media_head")
    );
    assert_eq!(w.pixop.last().unwrap().method, "HEAD");
    // Kinescope's upload metadata headers and 5centsCDN's _METHOD body pass untouched.
    let r = w
        .call(
            "POST",
            "/proxy/kinescope/v2/video",
            &[
                ("x-video-title", "Title"),
                ("x-parent-id", "p1"),
                ("content-type", "video/mp4"),
            ],
            b"raw video bytes".to_vec(),
        )
        .await;
    assert_eq!(r.status, 200);
    let up = w.kinescope_upload.last().unwrap();
    assert_eq!(up.header("x-video-title").as_deref(), Some("Title"));
    assert_eq!(up.header("x-parent-id").as_deref(), Some("p1"));
    let body = br#"{"_METHOD":"DELETE"}"#.to_vec();
    let r = w
        .call(
            "POST",
            "/proxy/5centscdn/streams/push/42",
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(w.five.last().unwrap().body_head, body);
    w.server.stop().await;
}

#[tokio::test]
async fn pixop_urls_are_rewritten_to_the_gateway() {
    let w = world(Options::default()).await;
    let doc = r#"{"videoId":"v1","uploadMediaUrl":"{self}/media/v1/upload/v1","_links":{"self":{"href":"{self}/videos/v1/video/v1"}}}"#;
    w.pixop.push(
        Some("/videos/v1/video"),
        Scripted::status(200)
            .header("content-type", "application/json")
            .header("location", "{self}/videos/v1/video/v1")
            .body(doc),
    );
    let r = w
        .call(
            "PUT",
            "/proxy/pixop/videos/v1/video",
            &[("content-type", "application/json")],
            b"{}".to_vec(),
        )
        .await;
    let gw = format!("{}/proxy/pixop", w.server.base);
    assert_eq!(r.text(), doc.replace("{self}", &gw));
    assert_eq!(
        r.header("location"),
        Some(format!("{gw}/videos/v1/video/v1"))
    );
    w.server.stop().await;
}

#[tokio::test]
async fn one_refresh_serves_a_hundred_callers_with_an_expired_token() {
    let w = world(Options {
        apivideo_ttl: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let r = w.call("GET", "/proxy/apivideo/videos", &[], vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!((w.apivideo.mints(), w.apivideo.refreshes()), (1, 0));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let calls = (0..100).map(|i| {
        let url = w.server.url(&format!("/proxy/apivideo/videos/v{i}"));
        async move {
            send(
                "GET",
                &url,
                &[("x-api-key", ACME_KEY), ("x-tenant-id", "acme")],
                vec![],
            )
            .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.status == 200));
    assert_eq!(w.apivideo.refreshes(), 1, "exactly one refresh");
    assert_eq!(w.apivideo.mints(), 1, "no new exchange");
    assert_eq!(
        w.apivideo.expired_seen(),
        0,
        "no call went up with the expired token"
    );
    // A token the upstream revokes: 401, one refresh, one replay, success.
    w.apivideo.revoke_tokens();
    w.apivideo.clear();
    let r = w
        .call(
            "PATCH",
            "/proxy/apivideo/videos/v1",
            &[("content-type", "application/json")],
            br#"{"title":"t"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let statuses: Vec<(String, u16)> = w
        .apivideo
        .seen()
        .iter()
        .map(|s| (s.path().to_owned(), s.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("/videos/v1".to_owned(), 401),
            ("/auth/refresh".to_owned(), 200),
            ("/videos/v1".to_owned(), 200)
        ]
    );
    let m = w
        .call("GET", "/metrics", &[METRICS_AUTH], vec![])
        .await
        .text();
    assert!(
        m.contains(r#"cpixd_proxy_tokens_minted_total{platform="apivideo"} 3"#),
        "{m}"
    );
    w.server.stop().await;
}

#[tokio::test]
async fn a_pixop_token_is_renewed_before_it_runs_out() {
    // Tokens that live 3 s stand in for the 15 minutes (renewal is due in
    // the last fifth of a token's life, as the unit tests show for 15 min).
    let w = world(Options {
        pixop_ttl: Duration::from_secs(3),
        ..Options::default()
    })
    .await;
    let r = w
        .call("GET", "/proxy/pixop/videos/v1/projects", &[], vec![])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let first = w.pixop.last().unwrap().header("authorization");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let r = w
        .call("GET", "/proxy/pixop/videos/v1/projects", &[], vec![])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = w.pixop.last().unwrap().header("authorization");
    assert_eq!(w.pixop.mints(), 2, "renewed once");
    assert_ne!(first, second);
    assert_eq!(w.pixop.expired_seen(), 0);
    // Both mints asked for the configured team.
    let mints: Vec<String> = w
        .pixop
        .seen()
        .iter()
        .filter(|s| s.path() == "/accounts/v1/token")
        .map(|s| s.target.clone())
        .collect();
    assert_eq!(mints, ["/accounts/v1/token?team-id=team%207"; 2]);
    w.server.stop().await;
}

#[tokio::test]
async fn slow_bodies_pass_and_stalled_ones_are_cut_off() {
    let w = world(Options {
        extra: "idle_timeout_secs = 1".into(),
        ..Options::default()
    })
    .await;
    let path = "/media/v1/download/processed/slow";
    // 40 KiB in 1 KiB chunks, 50 ms apart: slow but never idle for 1 s.
    w.pixop.push(
        Some(path),
        Scripted {
            stream_bytes: 40 << 10,
            chunk_delay: Duration::from_millis(50),
            ..Scripted::status(200)
        },
    );
    let r = w
        .call("GET", &format!("/proxy/pixop{path}"), &[], vec![])
        .await;
    assert_eq!((r.status, r.body.len()), (200, 40 << 10));
    assert!(common::fake::is_pattern_at(0, &r.body));
    // A body that stops for 3 s is cut off after the 1 s idle timeout.
    w.pixop.push(
        Some(path),
        Scripted {
            stream_bytes: 4 << 10,
            chunk_delay: Duration::from_secs(3),
            ..Scripted::status(200)
        },
    );
    let t0 = Instant::now();
    let r = common::http::try_send(
        "GET",
        &w.server.url(&format!("/proxy/pixop{path}")),
        &[("x-api-key", ACME_KEY), ("x-tenant-id", "acme")],
        vec![],
    )
    .await;
    assert!(
        r.is_err(),
        "a stalled body must not end as if complete: {r:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    w.server.stop().await;
}
