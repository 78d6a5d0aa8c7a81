//! The HTTP server: axum router over the KMS endpoints, health, readiness
//! and metrics; plain HTTP or HTTPS (rustls); graceful shutdown on SIGTERM
//! or SIGINT that stops accepting, finishes in-flight requests and flushes
//! the key store.

pub mod auth;
pub mod cache;
pub mod error;
pub mod gateway;
pub mod kms;
pub mod metrics;

use crate::config::{Config, Tenant};
use crate::crypto::{OsRandom, SecureRandom};
use crate::keys::KeyStore;
use crate::proxy::Gateway;
use crate::store::EmbeddedStore;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use error::ApiError;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Everything a request handler needs.
pub struct AppState {
    /// The configuration.
    pub config: Config,
    /// Tenants, shared with each authenticated request.
    pub tenants: Vec<Arc<Tenant>>,
    /// The key store.
    pub store: Arc<dyn KeyStore>,
    /// Random source (IVs the store does not provide, encrypted delivery).
    pub rng: Arc<dyn SecureRandom>,
    /// Request metrics.
    pub metrics: metrics::Metrics,
    /// XML parsing limits.
    pub xml_limits: crate::cpix::Limits,
    /// Recent responses, for repeated requests.
    pub responses: cache::ResponseCache,
    /// The platform gateway.
    pub gateway: Arc<Gateway>,
}

impl AppState {
    /// State over a store and a gateway.
    pub fn new(config: Config, store: Arc<dyn KeyStore>, gateway: Arc<Gateway>) -> Self {
        let xml_limits = crate::cpix::Limits {
            max_bytes: config.limits.max_body_bytes,
            max_depth: config.limits.max_xml_depth,
            max_elements: config.limits.max_xml_elements,
            ..crate::cpix::Limits::default()
        };
        AppState {
            responses: cache::ResponseCache::new(config.limits.response_cache_bytes),
            tenants: config.tenants.iter().cloned().map(Arc::new).collect(),
            config,
            store,
            rng: Arc::new(OsRandom),
            metrics: metrics::Metrics::default(),
            xml_limits,
            gateway,
        }
    }
}

async fn healthz() -> Response {
    error::plain(StatusCode::OK, "ok\n".into())
}

async fn readyz(axum::extract::State(s): axum::extract::State<Arc<AppState>>) -> Response {
    match s.store.list("\u{0}readiness-probe", None) {
        Ok(_) => error::plain(StatusCode::OK, "ready\n".into()),
        Err(e) => {
            tracing::error!(error = %e, "key store not ready");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "key store unavailable",
            )
            .into_response()
        }
    }
}

async fn metrics_text(axum::extract::State(s): axum::extract::State<Arc<AppState>>) -> Response {
    let mut text = s.metrics.render();
    text.push_str(&s.gateway.metrics_text());
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint at {}", uri.path()),
    )
    .into_response()
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
    .into_response()
}

/// The router of every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new();
    // The Cloud Video Kit settings advertise the KMS paths with and without /v1.
    for prefix in ["/kms/v1", "/kms"] {
        r = r
            .route(&format!("{prefix}/speke"), post(kms::speke_v1))
            .route(&format!("{prefix}/speke2"), post(kms::speke_v2))
            .route(&format!("{prefix}/cpix"), post(kms::cpix))
            .route(
                &format!("{prefix}/copyProtection"),
                post(kms::copy_protection),
            )
            .route(
                &format!("{prefix}/cpix-anevia/{{brand}}/{{kid}}"),
                get(kms::anevia),
            )
            .route(&format!("{prefix}/heartbeat"), get(kms::heartbeat));
    }
    r.route("/proxy", get(gateway::platforms))
        .route("/proxy/{platform}", get(gateway::catalogue))
        .route("/proxy/{platform}/{*rest}", any(gateway::forward))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Loads TLS material (PEM certificate chain and private key).
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, String> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let certs = rustls_pemfile::certs(&mut &read(cert)?[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key_der = rustls_pemfile::private_key(&mut &read(key)?[..])
        .map_err(|e| format!("{}: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key found", key.display()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| format!("TLS certificate/key: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and waits (up to `drain`) for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        match &acceptor {
            None => {
                let conn = ConnBuilder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = watcher.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {drain:?}");
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives
/// right after the call is not lost (nor does it kill the process before
/// the graceful shutdown starts).
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                    one.recv().await;
                }
                (Err(_), Err(_)) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `cpixd serve` with `config` until a shutdown signal.
pub async fn run(config: Config, gateway: Gateway) -> Result<(), String> {
    // A channel-start storm opens a connection per channel.
    if let Ok(n) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::debug!(open_files = n, "file descriptor limit");
    }
    let keyring = crate::config::load_keyring(&config)?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let store_path = config.data_dir.join("keys.redb");
    let store = Arc::new(
        EmbeddedStore::open(&store_path, keyring, Arc::new(OsRandom)).map_err(|e| e.to_string())?,
    );
    let tls = match &config.tls {
        Some(t) => Some(Arc::new(tls_config(&t.cert_file, &t.key_file)?)),
        None => None,
    };
    // Before the "listening" line: from then on a SIGTERM is a graceful stop.
    let shutdown = shutdown_signal();
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %addr,
        "cpixd {} listening on {scheme}://{addr} (key store {})",
        env!("CARGO_PKG_VERSION"),
        store_path.display()
    );
    if config.embedded_default {
        tracing::info!(
            "embedded default: tenant \"default\", its API key is in {} (send it as X-Api-Key with X-Tenant-Id: default)",
            crate::config::default_api_key_path(&config.data_dir).display()
        );
    }
    let drain = Duration::from_secs(config.limits.request_timeout_secs);
    for p in gateway.platforms() {
        tracing::info!(
            platform = p.name,
            "gateway: /proxy/{} is configured",
            p.name
        );
    }
    let state = Arc::new(AppState::new(config, store.clone(), Arc::new(gateway)));
    serve(listener, router(state), tls, shutdown, drain).await;
    let store_for_close = store.clone();
    tokio::task::spawn_blocking(move || store_for_close.shutdown())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("key store flushed; bye");
    Ok(())
}
