//! The gateway in a real `cpixd serve` process: a 1 GiB upload and a
//! 1 GiB download stream through it with the process's peak memory
//! staying within 64 MiB of its idle size; its logs never carry a platform
//! secret or a minted token; `cpixd platforms call` reaches the same
//! operations from the command line.

mod common;

use axum::body::Body;
use common::child;
use common::fake::{basic, generated_body, is_pattern_at, Auth, Fake, Scripted};
use common::http::send;
use common::server::{config_toml, ACME_KEY};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::time::Duration;

const GIB: u64 = 1 << 30;

/// Writes a configuration file readable by its owner only (it holds
/// platform secrets inline).
fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn auth() -> [(&'static str, &'static str); 2] {
    [("x-api-key", ACME_KEY), ("x-tenant-id", "acme")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_each_way_streams_in_bounded_memory() {
    let pixop = Fake::start(Auth::Pixop {
        basic: basic("ops@example.com", "pw-streaming"),
        ttl: Duration::from_secs(900),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "cpixd.toml",
        &format!(
            "{}\n[platforms.pixop]\nemail = \"ops@example.com\"\npassword = \"pw-streaming\"\nbase_url = \"{}\"\n",
            config_toml(),
            pixop.base
        ),
    );
    let server = child::start(dir.path(), Some(&config), &[("CPIXD_LOG", "info")]);
    // Warm up: a token, a pooled connection, a small call each way.
    for _ in 0..3 {
        let r = send(
            "GET",
            &format!("{}/proxy/pixop/videos/v1/projects", server.base),
            &auth(),
            vec![],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = server.memory_kib().expect("/proc/PID/status");

    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    // Upload.
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(format!("{}/proxy/pixop/media/v1/upload/big", server.base))
        .header("x-api-key", ACME_KEY)
        .header("x-tenant-id", "acme")
        .header("content-type", "multipart/form-data; boundary=none")
        .header("content-length", GIB.to_string())
        .body(generated_body(GIB))
        .unwrap();
    let resp = client.request(req).await.expect("upload");
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await;
    let seen = pixop.last().unwrap();
    assert_eq!(seen.path(), "/media/v1/upload/big");
    assert_eq!(seen.body_len, GIB);
    assert!(seen.body_is_pattern, "upload bytes changed on the way");

    // Download.
    pixop.push(
        Some("/media/v1/download/processed/big"),
        Scripted {
            stream_bytes: GIB,
            ..Scripted::status(200).header("content-type", "video/mp4")
        },
    );
    let req = axum::http::Request::builder()
        .uri(format!(
            "{}/proxy/pixop/media/v1/download/processed/big",
            server.base
        ))
        .header("x-api-key", ACME_KEY)
        .header("x-tenant-id", "acme")
        .body(Body::empty())
        .unwrap();
    let resp = client.request(req).await.expect("download");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-length")
            .unwrap()
            .to_str()
            .unwrap(),
        GIB.to_string()
    );
    let mut body = resp.into_body();
    let mut got = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("download frame").into_data() {
            assert!(is_pattern_at(got, &data), "download bytes changed at {got}");
            got += data.len() as u64;
        }
    }
    assert_eq!(got, GIB);

    let (_, peak) = server.memory_kib().unwrap();
    let growth_mib = peak.saturating_sub(idle) as f64 / 1024.0;
    println!(
        "gateway streaming: idle RSS {:.1} MiB, peak RSS {:.1} MiB, growth {growth_mib:.1} MiB for 1 GiB up and 1 GiB down",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    assert!(growth_mib < 64.0, "peak RSS grew by {growth_mib:.1} MiB");
    server.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_carry_platform_secrets_or_tokens() {
    let cvk = Fake::start(Auth::Headers(vec![("x-api-key", "cvk-secret-0001".into())])).await;
    let kinescope = Fake::start(Auth::Headers(vec![(
        "authorization",
        "Bearer kin-secret-0002".into(),
    )]))
    .await;
    let apivideo = Fake::start(Auth::ApiVideo {
        api_key: "av-secret-0003".into(),
        ttl: Duration::from_secs(3600),
    })
    .await;
    let pixop = Fake::start(Auth::Pixop {
        basic: basic("ops@example.com", "px-secret-0004"),
        ttl: Duration::from_secs(900),
    })
    .await;
    let five = Fake::start(Auth::Headers(vec![("x-api-key", "fc-secret-0005".into())])).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write(dir.path(), "pixop-password", "px-secret-0004\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = write(
        dir.path(),
        "cpixd.toml",
        &format!(
            r#"{tenants}
[gateway]
backoff_base_ms = 10
[platforms.cloudvideokit]
api_key = "cvk-secret-0001"
tenant_id = "t-uuid"
base_url = "{cvk}"
hosts = {{ redirector = "{dead}" }}
[platforms.kinescope]
base_url = "{kin}"
hosts = {{ upload = "{dead}" }}
[platforms.apivideo]
api_key = "av-secret-0003"
base_url = "{av}"
[platforms.pixop]
email = "ops@example.com"
password_file = "{pw}"
base_url = "{px}"
[platforms.5centscdn]
api_key = "fc-secret-0005"
base_url = "{five}"
"#,
            tenants = config_toml(),
            cvk = cvk.base,
            kin = kinescope.base,
            av = apivideo.base,
            px = pixop.base,
            five = five.base,
            pw = secret_file.display(),
        ),
    );
    // The Kinescope token comes from the environment.
    let server = child::start(
        dir.path(),
        Some(&config),
        &[
            ("CPIXD_LOG", "trace"),
            ("CPIXD_KINESCOPE_TOKEN", "kin-secret-0002"),
        ],
    );
    let b = &server.base;
    let calls = [
        ("GET", "/proxy/cloudvideokit/vod/v1/assets?query=x", 200),
        (
            "GET",
            "/proxy/cloudvideokit/redirector/v1/redir/t/a.m3u8?userToken=ut-secret-0006",
            502,
        ),
        ("GET", "/proxy/kinescope/v1/videos", 200),
        ("POST", "/proxy/kinescope/v2/video", 502),
        ("GET", "/proxy/apivideo/videos", 200),
        ("GET", "/proxy/pixop/videos/v1/projects", 200),
        ("GET", "/proxy/5centscdn/streams", 200),
        // Refused calls: their paths (here an upload token) stay out of the log.
        ("GET", "/proxy/apivideo/upload-tokens/ut-secret-0007", 404),
    ];
    for (method, path, want) in calls {
        let r = send(method, &format!("{b}{path}"), &auth(), b"{}".to_vec()).await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.text());
    }
    // A token the upstream revoked is replaced (401, refresh, replay).
    apivideo.revoke_tokens();
    let r = send(
        "GET",
        &format!("{b}/proxy/apivideo/live-streams"),
        &auth(),
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let log = server.sigterm();
    if std::env::var_os("CPIXD_SHOW_LOG").is_some() {
        println!("{log}");
    }
    assert!(log.contains("gateway call"), "no gateway log lines:\n{log}");
    assert!(
        log.contains("gateway call failed"),
        "no failure logged:\n{log}"
    );
    let mut secrets: Vec<String> = [
        "cvk-secret-0001",
        "kin-secret-0002",
        "av-secret-0003",
        "px-secret-0004",
        "fc-secret-0005",
        "ut-secret-0006",
        "ut-secret-0007",
        ACME_KEY,
        &basic("ops@example.com", "px-secret-0004"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    secrets.extend(apivideo.token_values());
    secrets.extend(pixop.token_values());
    assert!(secrets.len() >= 10, "the fakes minted tokens");
    for s in &secrets {
        // The secret itself, and its base64 (as in a Basic header).
        let b64 = cpixd::b64::encode(s.as_bytes());
        assert!(!log.contains(s.as_str()), "{s:?} is in the log");
        assert!(!log.contains(&b64), "base64 of {s:?} is in the log");
    }
}

/// Runs `cpixd platforms call …` with `env`.
async fn cli(args: &[&str], env: Vec<(String, String)>) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cpixd"))
            .arg("platforms")
            .args(&args)
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_call_uses_the_same_client_and_credentials() {
    let kinescope = Fake::start(Auth::Headers(vec![(
        "authorization",
        "Bearer kin-cli-token".into(),
    )]))
    .await;
    let env = vec![
        (
            "CPIXD_KINESCOPE_TOKEN".to_owned(),
            "kin-cli-token".to_owned(),
        ),
        (
            "CPIXD_KINESCOPE_BASE_URL".to_owned(),
            kinescope.base.clone(),
        ),
    ];
    let out = cli(
        &[
            "call",
            "kinescope",
            "get_video",
            "--param",
            "video_id=v 1",
            "--param",
            "fields=title",
        ],
        env.clone(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["target"], "/v1/videos/v%201?fields=title");
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 200"));
    // A body from a file, JSON by default for a JSON operation.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "body.json", r#"{"title":"t"}"#);
    let out = cli(
        &[
            "call",
            "kinescope",
            "update_video",
            "--param",
            "video_id=v1",
            "--body",
            file.to_str().unwrap(),
        ],
        env.clone(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = kinescope.last().unwrap();
    assert_eq!(
        (seen.method.as_str(), seen.path()),
        ("PATCH", "/v1/videos/v1")
    );
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(seen.body_head, br#"{"title":"t"}"#);
    // A large body streams from its file (3 MiB: past the replay buffer).
    let big = dir.path().join("video.mp4");
    std::fs::write(&big, common::fake::pattern_bytes(3 << 20)).unwrap();
    let mut upload_env = env.clone();
    upload_env.push((
        "CPIXD_KINESCOPE_HOSTS_UPLOAD".into(),
        kinescope.base.clone(),
    ));
    let out = cli(
        &[
            "call",
            "kinescope",
            "upload_video",
            "--header",
            "X-Video-Title: clip",
            "--body",
            big.to_str().unwrap(),
        ],
        upload_env,
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = kinescope.last().unwrap();
    assert_eq!((seen.method.as_str(), seen.path()), ("POST", "/v2/video"));
    assert_eq!((seen.body_len, seen.body_is_pattern), (3 << 20, true));
    assert_eq!(seen.header("content-length").as_deref(), Some("3145728"));
    assert_eq!(seen.header("x-video-title").as_deref(), Some("clip"));
    // The upstream's error status is the command's failure.
    kinescope.push(None, Scripted::status(404).body("{}"));
    let out = cli(
        &["call", "kinescope", "get_video", "--param", "video_id=x"],
        env.clone(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    // Usage errors: unknown operation, missing path parameter, unconfigured platform.
    for (args, needle) in [
        (vec!["call", "kinescope", "no_such_op"], "no operation"),
        (
            vec!["call", "kinescope", "get_video"],
            "missing path parameter \"video_id\"",
        ),
        (vec!["call", "pixop", "list_projects"], "not configured"),
    ] {
        let out = cli(&args, env.clone()).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // The catalogue.
    let out = cli(&["list", "apivideo"], vec![]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("apivideo: 40 operations"), "{text}");
    assert!(text.contains("POST   /videos/{videoId}/source"), "{text}");
}

#[tokio::test]
async fn config_check_reports_gateway_problems_with_their_key_paths() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.toml",
        &format!(
            "{}\n[gateway]\nmax_attempts = 0\n[platforms.kinescope]\nbase_url = \"ftp://x\"\n[platforms.cloudvideokit]\napi_key = \"k\"\ntenant_id = \"t\"\n[platforms.vimeo]\n",
            config_toml()
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpixd"))
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "gateway.max_attempts: must be positive",
        "platforms.kinescope.base_url:",
        "platforms.kinescope.token: required",
        "platforms.cloudvideokit.hosts.api: no base URL",
        "platforms.vimeo: unknown platform",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    // The documented example is valid, and so is a platform from the
    // environment alone.
    let example = common::root().join("cpixd.example.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpixd"))
        .args(["config", "check"])
        .arg(&example)
        .env("CPIXD_PIXOP_EMAIL", "ops@example.com")
        .env("CPIXD_PIXOP_PASSWORD", "pw")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 platform(s)"));
}
