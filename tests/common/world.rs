//! A cpixd whose five platforms point at fake upstreams on 127.0.0.1, one
//! per upstream host, for the gateway tests.

use super::fake::{basic, Auth, Fake};
use super::http::send;
use super::server::{config_toml, TestServer, ACME_KEY};
use cpixd::proxy::routes::Operation;
use std::collections::BTreeMap;
use std::time::Duration;

/// Upstream credentials cpixd holds for each platform.
pub const CVK_KEY: &str = "cvk-upstream-key-7f1e";
pub const CVK_TENANT: &str = "0b9c2f0e-5d5a-4c61-9d55-2a3c7f1e9b10";
pub const KINESCOPE_TOKEN: &str = "kinescope-token-9a8b7c";
pub const APIVIDEO_KEY: &str = "apivideo-key-1234abcd";
pub const PIXOP_EMAIL: &str = "ops@example.com";
pub const PIXOP_PASSWORD: &str = "pixop-password-55aa";
pub const FIVE_KEY: &str = "fivecents-key-c0ffee";

/// A cpixd with all five platforms pointed at fakes.
pub struct World {
    pub server: TestServer,
    pub cvk_api: Fake,
    pub cvk_redirector: Fake,
    pub kinescope_api: Fake,
    pub kinescope_upload: Fake,
    pub apivideo: Fake,
    pub pixop: Fake,
    pub five: Fake,
    /// Keeps the data directory alive.
    pub dir: tempfile::TempDir,
}

/// How [`world`] sets the platforms up.
pub struct Options {
    pub apivideo_ttl: Duration,
    pub pixop_ttl: Duration,
    pub extra: String,
    /// `allow_credential_operations = true` on every platform.
    pub allow_credentials: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            apivideo_ttl: Duration::from_secs(3600),
            pixop_ttl: Duration::from_secs(900),
            extra: String::new(),
            allow_credentials: false,
        }
    }
}

/// Starts the fakes and a cpixd pointed at them.
pub async fn world(o: Options) -> World {
    let cvk_api = Fake::start(Auth::Headers(vec![
        ("x-api-key", CVK_KEY.into()),
        ("x-tenant-id", CVK_TENANT.into()),
    ]))
    .await;
    let cvk_redirector = Fake::start(Auth::Headers(vec![("x-tenant-id", CVK_TENANT.into())])).await;
    let bearer = format!("Bearer {KINESCOPE_TOKEN}");
    let kinescope_api = Fake::start(Auth::Headers(vec![("authorization", bearer.clone())])).await;
    let kinescope_upload = Fake::start(Auth::Headers(vec![("authorization", bearer)])).await;
    let apivideo = Fake::start(Auth::ApiVideo {
        api_key: APIVIDEO_KEY.into(),
        ttl: o.apivideo_ttl,
    })
    .await;
    let pixop = Fake::start(Auth::Pixop {
        basic: basic(PIXOP_EMAIL, PIXOP_PASSWORD),
        ttl: o.pixop_ttl,
    })
    .await;
    let five = Fake::start(Auth::Headers(vec![("x-api-key", FIVE_KEY.into())])).await;
    let allow = o.allow_credentials;
    let toml = format!(
        r#"{tenants}
[gateway]
timeout_secs = 5
backoff_base_ms = 20
backoff_max_ms = 200
retry_budget_secs = 5
{extra}

[platforms.cloudvideokit]
allow_credential_operations = {allow}
api_key = "{CVK_KEY}"
tenant_id = "{CVK_TENANT}"
base_url = "{cvk}"
hosts = {{ redirector = "{redir}" }}

[platforms.kinescope]
allow_credential_operations = {allow}
token = "{KINESCOPE_TOKEN}"
base_url = "{kin}"
hosts = {{ upload = "{kup}" }}
tenants = ["acme"]

[platforms.apivideo]
allow_credential_operations = {allow}
api_key = "{APIVIDEO_KEY}"
base_url = "{av}"

[platforms.pixop]
allow_credential_operations = {allow}
email = "{PIXOP_EMAIL}"
password = "{PIXOP_PASSWORD}"
team_id = "team 7"
base_url = "{px}"

[platforms.5centscdn]
allow_credential_operations = {allow}
api_key = "{FIVE_KEY}"
base_url = "{five}/v2"
"#,
        tenants = config_toml(),
        extra = o.extra,
        cvk = cvk_api.base,
        redir = cvk_redirector.base,
        kin = kinescope_api.base,
        kup = kinescope_upload.base,
        av = apivideo.base,
        px = pixop.base,
        five = five.base,
    );
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &toml).await;
    World {
        server,
        cvk_api,
        cvk_redirector,
        kinescope_api,
        kinescope_upload,
        apivideo,
        pixop,
        five,
        dir,
    }
}

impl World {
    pub fn fake(&self, platform: &str, host: &str) -> &Fake {
        match (platform, host) {
            ("cloudvideokit", "api") => &self.cvk_api,
            ("cloudvideokit", "redirector") => &self.cvk_redirector,
            ("kinescope", "api") => &self.kinescope_api,
            ("kinescope", "upload") => &self.kinescope_upload,
            ("apivideo", _) => &self.apivideo,
            ("pixop", _) => &self.pixop,
            ("5centscdn", _) => &self.five,
            other => panic!("no fake for {other:?}"),
        }
    }

    pub fn fakes(&self) -> [&Fake; 7] {
        [
            &self.cvk_api,
            &self.cvk_redirector,
            &self.kinescope_api,
            &self.kinescope_upload,
            &self.apivideo,
            &self.pixop,
            &self.five,
        ]
    }

    /// Sends `method path` through the gateway as tenant acme.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> super::http::Resp {
        let mut h = vec![("x-api-key", ACME_KEY), ("x-tenant-id", "acme")];
        h.extend_from_slice(headers);
        send(method, &self.server.url(path), &h, body).await
    }
}

/// Sample values for a template's parameters.
pub fn sample_path(op: &Operation) -> String {
    let t = op.path.as_ref().unwrap();
    let params: BTreeMap<String, String> = t
        .params()
        .map(|p| {
            let v = if p == "format" {
                "m3u8".to_owned()
            } else {
                format!("p-{p}")
            };
            (p.to_owned(), v)
        })
        .collect();
    t.fill(&params).unwrap()
}
