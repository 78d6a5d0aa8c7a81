//! Runs a cpixd server in-process on 127.0.0.1:0 for the HTTP tests.

use cpixd::config::{self, Overrides};
use cpixd::crypto::OsRandom;
use cpixd::server::{self, AppState};
use cpixd::store::EmbeddedStore;
use std::path::Path;
use std::sync::Arc;

/// API key of tenant `acme`.
pub const ACME_KEY: &str = "acme-secret-key";
/// API key of tenant `globex`.
pub const GLOBEX_KEY: &str = "globex-secret-key";
/// Basic user of `acme`.
pub const ACME_USER: (&str, &str) = ("packager", "packager-password");
/// Bearer token that reads `/metrics`.
pub const METRICS_TOKEN: &str = "metrics-scraper-token";
/// The `Authorization` header of the metrics scraper.
pub const METRICS_AUTH: (&str, &str) = ("authorization", "Bearer metrics-scraper-token");

/// Two tenants, API keys and a Basic user; `/metrics` behind
/// [`METRICS_TOKEN`].
pub fn config_toml() -> String {
    let h = |s: &str| cpixd::crypto::sha256_hex(s.as_bytes());
    format!(
        r#"
[[tenant]]
id = "acme"
api_key_sha256 = ["{}"]
basic = [{{ user = "{}", password_sha256 = "{}" }}]
[tenant.drm.playready]
la_url = "https://pr.acme.example/rightsmanager.asmx"

[[tenant]]
id = "globex"
api_key_sha256 = ["{}"]

[metrics]
token_sha256 = "{}"
"#,
        h(ACME_KEY),
        ACME_USER.0,
        h(ACME_USER.1),
        h(GLOBEX_KEY),
        h(METRICS_TOKEN)
    )
}

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The server's state (store, metrics).
    pub state: Arc<AppState>,
    store: Arc<EmbeddedStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on `data_dir` with `toml` (plus extra settings).
    pub async fn start(data_dir: &Path, toml: &str) -> TestServer {
        let file = config::parse_file(toml).expect("config");
        let mut cfg = config::validate(
            file,
            &Overrides {
                listen: Some("127.0.0.1:0".into()),
                data_dir: Some(data_dir.to_path_buf()),
            },
        )
        .expect("valid config");
        cfg.master_key_file = Some(data_dir.join("master.key"));
        let ring = config::load_keyring(&cfg).expect("keyring");
        let store = Arc::new(
            EmbeddedStore::open(
                &data_dir.join("keys.redb"),
                ring.clone(),
                Arc::new(OsRandom),
            )
            .expect("store"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let gateway = match cpixd::proxy::Gateway::for_config(&cfg) {
            Ok(g) => Arc::new(g),
            Err(e) => panic!("gateway configuration: {e:?}"),
        };
        let licence = cpixd::licence::servers::LicenceServers::for_config(&cfg)
            .unwrap_or_else(|e| panic!("licence servers: {e:?}"));
        let log =
            cpixd::store::licence_log::EmbeddedLicenceLog::open(&data_dir.join("licences.redb"))
                .expect("licence log");
        let state = Arc::new(
            AppState::new(cfg, store.clone(), gateway, licence)
                .with_licence_log(Arc::new(log))
                .with_keyring(ring),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = server::router(state.clone());
        let conns = state.connections.clone();
        let task = tokio::spawn(async move {
            server::serve(
                listener,
                router,
                None,
                conns,
                async {
                    let _ = rx.await;
                },
                std::time::Duration::from_secs(5),
            )
            .await
        });
        TestServer {
            base,
            state,
            store,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and closes the store.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .unwrap();
    }
}
