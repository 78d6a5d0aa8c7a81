//! The HTTP server: axum router over the KMS endpoints, health, readiness
//! and metrics; plain HTTP or HTTPS (rustls); graceful shutdown on SIGTERM
//! or SIGINT that stops accepting, finishes in-flight requests and flushes
//! the key store.

pub mod auth;
pub mod cache;
pub mod connections;
pub mod cors;
pub mod drm_api;
pub mod error;
pub mod form;
pub mod gateway;
pub mod keys_api;
pub mod kms;
pub mod licence;
pub mod metrics;
pub mod oauth;
pub mod stats;

use crate::config::{Config, Tenant};
use crate::crypto::{OsRandom, SecureRandom};
use crate::keys::KeyStore;
use crate::proxy::Gateway;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use error::ApiError;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
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
    /// Client connections (cap, timeouts, counters).
    pub connections: Arc<connections::Connections>,
    /// The tenants' DRM-token signing keys.
    pub signers: crate::licence::Signers,
    /// The licence servers behind cpixd.
    pub licence_servers: crate::licence::servers::LicenceServers,
    /// Player requests, for `/metrics`.
    pub licence_metrics: metrics::LicenceMetrics,
    /// The licence request log, when enabled.
    pub licence_log: Option<Arc<dyn crate::licence::log::LicenceLog>>,
    /// Its writer.
    pub log_writer: Option<crate::licence::log::LogWriter>,
    /// Permits for large requests parsed and filled on the blocking pool
    /// (two per core): a burst of them queues instead of taking every CPU.
    pub heavy_work: tokio::sync::Semaphore,
    /// The master keys, for keys imported over HTTP.
    pub keyring: Option<crate::keys::Keyring>,
}

impl AppState {
    /// State over a store, a gateway and the licence servers.
    pub fn new(
        config: Config,
        store: Arc<dyn KeyStore>,
        gateway: Arc<Gateway>,
        licence_servers: crate::licence::servers::LicenceServers,
    ) -> Self {
        let xml_limits = crate::cpix::Limits {
            max_bytes: config.limits.max_body_bytes,
            max_depth: config.limits.max_xml_depth,
            max_elements: config.limits.max_xml_elements,
            ..crate::cpix::Limits::default()
        };
        let l = &config.limits;
        let connections = connections::Connections::new(connections::ConnectionLimits {
            max: l.max_connections,
            header_read_timeout: Duration::from_secs(l.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(l.idle_timeout_secs),
        });
        AppState {
            connections,
            responses: cache::ResponseCache::new(config.limits.response_cache_bytes),
            tenants: config.tenants.iter().cloned().map(Arc::new).collect(),
            config,
            store,
            rng: Arc::new(OsRandom),
            metrics: metrics::Metrics::default(),
            xml_limits,
            gateway,
            signers: crate::licence::Signers::default(),
            licence_servers,
            licence_metrics: metrics::LicenceMetrics::default(),
            licence_log: None,
            log_writer: None,
            heavy_work: tokio::sync::Semaphore::new(
                2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            keyring: None,
        }
    }
}

/// Preflights are answered by the CORS layer; this only gives OPTIONS a
/// route to reach it.
async fn ok() -> StatusCode {
    StatusCode::NO_CONTENT
}

impl AppState {
    /// Adds the master keys (for `POST /kms/v1/keys/import`).
    pub fn with_keyring(mut self, ring: crate::keys::Keyring) -> Self {
        self.keyring = Some(ring);
        self
    }

    /// Adds the licence request log (and starts its writer) under the
    /// configured retention.
    pub fn with_licence_log(mut self, log: Arc<dyn crate::licence::log::LicenceLog>) -> Self {
        let c = &self.config.licence_log;
        let retention = crate::licence::log::Retention {
            max_age: Duration::from_secs(c.retention_days.saturating_mul(86_400)),
            max_rows_per_tenant: c.max_rows_per_tenant,
        };
        self.log_writer = Some(crate::licence::log::LogWriter::start(
            log.clone(),
            retention,
        ));
        self.licence_log = Some(log);
        self
    }
}

async fn healthz() -> Response {
    error::plain(StatusCode::OK, "ok\n".into())
}

async fn readyz(axum::extract::State(s): axum::extract::State<Arc<AppState>>) -> Response {
    match s.store.ready().await {
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

/// `GET /metrics` on the metrics listener: open (bind it where only the
/// scraper can reach it).
async fn metrics_text(axum::extract::State(s): axum::extract::State<Arc<AppState>>) -> Response {
    let mut text = s.metrics.render();
    text.push_str(&s.gateway.metrics_text());
    text.push_str(&s.connections.metrics_text());
    text.push_str(
        &s.licence_metrics
            .render(s.log_writer.as_ref().map(|w| &*w.stats)),
    );
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /metrics` on the main listener: the metrics name every tenant and
/// its traffic, so they need the `[metrics]` bearer token unless the
/// configuration opens them (`public = true`).
async fn metrics_guarded(
    state: axum::extract::State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let access = &state.config.metrics;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| crate::crypto::sha256(t.trim().as_bytes()));
    let allowed = access.public
        || matches!((access.token_hash, presented), (Some(want), Some(got)) if crate::crypto::ct_eq(&want, &got));
    if allowed {
        return metrics_text(state).await;
    }
    let message = match (access.token_hash.is_some(), access.listen) {
        (true, _) => "send the metrics bearer token ([metrics] token_sha256)".to_owned(),
        (false, Some(a)) => format!("metrics are served on the metrics listener {a}"),
        (false, None) => {
            "metrics are closed: set [metrics] token_sha256, listen or public in the configuration"
                .to_owned()
        }
    };
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"cpixd metrics\""),
    );
    r
}

/// The router of the separate metrics listener (`[metrics] listen`).
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_guarded))
        .fallback(not_found)
        .with_state(state)
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
            .route(&format!("{prefix}/heartbeat"), get(kms::heartbeat))
            .route(&format!("{prefix}/keys"), get(keys_api::list))
            .route(&format!("{prefix}/keys/import"), post(keys_api::import));
    }
    // What players call, from other origins.
    let player = Router::new()
        .route(
            "/acquire-license/{system}",
            post(licence::acquire).options(ok),
        )
        .route(
            "/license/v1/acquire-license/{system}",
            post(licence::acquire).options(ok),
        )
        .route(
            "/hls/v1/key/{content_id}/{kid}",
            get(licence::hls_key).options(ok),
        )
        .route(
            "/license/v1/certificate/{system}",
            get(licence::certificate).options(ok),
        )
        .route(
            "/certificate/{system}",
            get(licence::certificate).options(ok),
        )
        .route(
            "/drm/v1/token/{asset}",
            get(drm_api::token_for_asset).options(ok),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::layer,
        ));
    r.merge(player)
        .route("/drm/v1/settings", get(drm_api::settings))
        .route(
            "/drm/v1/settings/signing-key/rotate",
            post(drm_api::rotate_signing_key),
        )
        .route("/oauth/token", post(oauth::token))
        .route("/drm/v1/list-requests", get(stats::list_requests))
        .route("/drm/v1/license-count", get(stats::license_count))
        .route("/drm/v1/histogram", get(stats::histogram))
        .route("/drm/v1/license-metrics", get(stats::license_metrics))
        .route(
            "/drm/v1/license-error-codes",
            get(stats::license_error_codes),
        )
        .route("/proxy", get(gateway::platforms))
        .route("/proxy/{platform}", get(gateway::catalogue))
        .route("/proxy/{platform}/{*rest}", any(gateway::forward))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_guarded))
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
/// accepting and waits (up to `drain`) for in-flight requests. Connections
/// are bounded and timed as [`connections`] describes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    conns: Arc<connections::Connections>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let limits = conns.limits();
    let mut builder = ConnBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.idle_timeout));
    let builder = Arc::new(builder);
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
        let Some(admitted) = conns.admit() else {
            tracing::debug!(%peer, "connection refused: every connection is busy");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let (router, acceptor, builder) = (router.clone(), acceptor.clone(), builder.clone());
        tokio::spawn(async move {
            let admitted = Arc::new(admitted);
            let service = {
                let admitted = admitted.clone();
                hyper::service::service_fn(move |req| {
                    connections::call(&router, &admitted, peer, req)
                })
            };
            match acceptor {
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    admitted.supervise(watcher.watch(conn.into_owned())).await;
                }
                Some(acceptor) => {
                    let handshake = async {
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => Some(s),
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                None
                            }
                            Err(_) => None,
                        }
                    };
                    let Some(tls) = handshake.await else { return };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    admitted.supervise(watcher.watch(conn.into_owned())).await;
                }
            }
        });
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

/// Pending connections the kernel queues before cpixd accepts them: a
/// channel-start storm connects hundreds of packagers at once, and a short
/// queue drops their SYNs (each retried a second later).
const ACCEPT_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`ACCEPT_BACKLOG`].
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
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
pub async fn run(mut config: Config, gateway: Gateway) -> Result<(), String> {
    // A channel-start storm opens a connection per channel; the connection
    // cap stays below the descriptor limit so that the store, the logs and
    // upstream calls always have descriptors left.
    if let Ok(n) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::debug!(open_files = n, "file descriptor limit");
        let room = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .saturating_sub(256)
            .max(16);
        if config.limits.max_connections > room {
            tracing::warn!(
                "limits.max_connections {} lowered to {room} (file descriptor limit {n})",
                config.limits.max_connections
            );
            config.limits.max_connections = room;
        }
    }
    let keyring = crate::config::load_keyring(&config)?;
    crate::config::ensure_dir(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    if let Some(w) = crate::config::access::data_dir_warning(&config.data_dir) {
        tracing::warn!("{w}");
    }
    let backends = crate::store::open(
        &config,
        keyring.clone(),
        Arc::new(OsRandom),
        config.licence_log.enabled,
        crate::store::Purpose::Serve,
    )
    .await
    .map_err(|e| e.to_string())?;
    let store = backends.keys.clone();
    let tls = match &config.tls {
        Some(t) => Some(Arc::new(tls_config(&t.cert_file, &t.key_file)?)),
        None => None,
    };
    // Before the "listening" line: from then on a SIGTERM is a graceful stop.
    let shutdown = shutdown_signal();
    let listener =
        bind(config.listen).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    config.follow_bound_address(addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %addr,
        "cpixd {} listening on {scheme}://{addr} (key store {})",
        env!("CARGO_PKG_VERSION"),
        backends.description
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
    let metrics_listener = match config.metrics.listen {
        Some(a) => {
            Some(bind(a).map_err(|e| format!("cannot listen on {a} (metrics.listen): {e}"))?)
        }
        None => None,
    };
    let licence_servers =
        crate::licence::servers::LicenceServers::for_config(&config).map_err(|e| e.join("; "))?;
    let mut state = AppState::new(config, store.clone(), Arc::new(gateway), licence_servers)
        .with_keyring(keyring);
    if let Some(log) = backends.licence_log.clone() {
        state = state.with_licence_log(log);
    }
    let state = Arc::new(state);
    let stop_metrics = Arc::new(tokio::sync::Notify::new());
    let metrics_task = metrics_listener.map(|l| {
        tracing::info!(address = ?l.local_addr().ok(), "metrics listener: GET /metrics");
        let (state, stop) = (state.clone(), stop_metrics.clone());
        tokio::spawn(async move {
            let conns = connections::Connections::new(connections::ConnectionLimits {
                max: 64,
                ..state.connections.limits()
            });
            let stop = async move { stop.notified().await };
            serve(
                l,
                metrics_router(state),
                None,
                conns,
                stop,
                Duration::from_secs(1),
            )
            .await
        })
    });
    let conns = state.connections.clone();
    serve(listener, router(state.clone()), tls, conns, shutdown, drain).await;
    if let Some(writer) = &state.log_writer {
        writer.shutdown();
        tracing::info!(
            written = writer
                .stats
                .written
                .load(std::sync::atomic::Ordering::Relaxed),
            "licence log flushed"
        );
    }
    stop_metrics.notify_one();
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    let store_for_close = store.clone();
    tokio::task::spawn_blocking(move || store_for_close.shutdown())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("key store flushed; bye");
    Ok(())
}
