//! The platform gateway: `/proxy/{platform}/{path…}` forwards a caller's
//! request (method, raw path and query, headers, streamed body) to the
//! platform's documented operation through the one shared client, with the
//! platform's credentials in place of the caller's, replays only where the
//! route table says it is safe, and passes the upstream answer back
//! unchanged but for hop-by-hop headers, the gateway's own headers and
//! (Pixop) absolute upstream URLs. One file per platform holds its
//! configuration and authentication.

pub mod apivideo;
pub mod auth;
pub mod body;
pub mod client;
pub mod cloudvideokit;
pub mod fivecentscdn;
pub mod kinescope;
pub mod metrics;
pub mod pixop;
pub mod routes;
pub mod settings;

use auth::{Credentials, Target};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use body::{IdleTimeout, Rewrite};
use client::{SendError, Upstream};
use routes::{Catalogue, Operation, Retry};
use settings::Fields;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a platform's `configure` hands back.
pub struct Setup {
    /// Default base URL of each host key.
    pub hosts: BTreeMap<String, String>,
    /// How cpixd authenticates upstream.
    pub credentials: Arc<dyn Credentials>,
    /// Default of `rewrite_urls`.
    pub rewrite_urls: bool,
}

impl Setup {
    /// Default hosts and credentials; URL rewriting off.
    pub fn new(hosts: &[(&str, &str)], credentials: Arc<dyn Credentials>) -> Setup {
        Setup {
            hosts: hosts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            credentials,
            rewrite_urls: false,
        }
    }
}

type Configure = fn(&mut Fields) -> Option<Setup>;

/// Each platform's configuration reader, by URL name.
const CONFIGURE: [(&str, Configure); 5] = [
    ("cloudvideokit", cloudvideokit::configure),
    ("kinescope", kinescope::configure),
    ("apivideo", apivideo::configure),
    ("pixop", pixop::configure),
    ("5centscdn", fivecentscdn::configure),
];

/// A configured platform.
pub struct Platform {
    /// URL name (`kinescope`).
    pub name: &'static str,
    /// Its documented operations.
    pub catalogue: &'static Catalogue,
    /// Base URL of each host key.
    pub hosts: BTreeMap<String, String>,
    credentials: Arc<dyn Credentials>,
    /// Forward requests that match no documented operation.
    pub allow_undocumented: bool,
    /// Forward the operations marked `credential` in the route table.
    pub allow_credential_operations: bool,
    /// cpixd tenants allowed to call it (empty: all).
    pub tenants: Vec<String>,
    /// Rewrite absolute upstream URLs in answers to the gateway.
    pub rewrite_urls: bool,
}

/// Why the gateway answered instead of the upstream.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No such platform.
    #[error("no platform {0:?}; the gateway has {known}", known = routes::platform_names().collect::<Vec<_>>().join(", "))]
    UnknownPlatform(String),
    /// A known platform without configuration.
    #[error(
        "platform {0} is not configured on this server (see [platforms.{0}] in cpixd.example.toml)"
    )]
    NotConfigured(&'static str),
    /// The tenant may not use the platform.
    #[error("tenant {1:?} may not use platform {0}")]
    Forbidden(&'static str, String),
    /// The request matches no documented operation.
    #[error("{method} {path} matches no documented {platform} operation; closest: {}", .closest.join("; "))]
    UnknownOperation {
        /// Platform.
        platform: &'static str,
        /// Method asked for.
        method: Method,
        /// Path asked for.
        path: String,
        /// `METHOD /template (name)` of the nearest operations.
        closest: Vec<String>,
    },
    /// The operation is one cpixd serves itself.
    #[error("{0} is served by cpixd itself, not proxied: {1}")]
    Native(String, String),
    /// A call that cannot be made as asked (CLI).
    #[error("{0}")]
    BadCall(String),
    /// The path could reach another operation upstream than the one it
    /// matched (dot segments, encoded slashes).
    #[error("the path is refused: it holds {0}")]
    UnsafePath(&'static str),
    /// The operation handles the platform's credentials and the platform
    /// does not allow that through the gateway.
    #[error("{platform} operation {operation} handles account credentials and is not available through the gateway (set [platforms.{platform}] allow_credential_operations = true to allow it)")]
    CredentialOperation {
        /// Platform.
        platform: &'static str,
        /// The operation's name(s).
        operation: String,
    },
    /// The upstream could not be reached.
    #[error("could not connect to {0} ({1} host)")]
    Connect(&'static str, String, String),
    /// The upstream did not answer in time.
    #[error("{0} did not answer within {secs} s", secs = .1.as_secs())]
    Timeout(&'static str, Duration),
    /// The upstream broke the exchange.
    #[error("{0} closed the connection before answering")]
    Broken(&'static str, String),
    /// cpixd could not obtain a token.
    #[error("cpixd could not authenticate to {0}: {1}")]
    Credentials(&'static str, String),
    /// The caller's body failed.
    #[error("the request body could not be read: {0}")]
    ClientBody(String),
}

impl GatewayError {
    /// The HTTP status the gateway answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::UnknownPlatform(_)
            | GatewayError::NotConfigured(_)
            | GatewayError::UnknownOperation { .. }
            | GatewayError::Native(..) => StatusCode::NOT_FOUND,
            GatewayError::Forbidden(..) | GatewayError::CredentialOperation { .. } => {
                StatusCode::FORBIDDEN
            }
            GatewayError::BadCall(_)
            | GatewayError::ClientBody(_)
            | GatewayError::UnsafePath(_) => StatusCode::BAD_REQUEST,
            GatewayError::Connect(..)
            | GatewayError::Broken(..)
            | GatewayError::Credentials(..) => StatusCode::BAD_GATEWAY,
            GatewayError::Timeout(..) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::UnknownPlatform(_) => "unknown_platform",
            GatewayError::NotConfigured(_) => "platform_not_configured",
            GatewayError::Forbidden(..) => "forbidden",
            GatewayError::UnknownOperation { .. } => "unknown_operation",
            GatewayError::Native(..) => "served_natively",
            GatewayError::BadCall(_) => "bad_call",
            GatewayError::UnsafePath(_) => "unsafe_path",
            GatewayError::CredentialOperation { .. } => "credential_operation",
            GatewayError::Connect(..) => "upstream_unreachable",
            GatewayError::Timeout(..) => "upstream_timeout",
            GatewayError::Broken(..) => "upstream_failed",
            GatewayError::Credentials(..) => "upstream_auth_failed",
            GatewayError::ClientBody(_) => "bad_request_body",
        }
    }

    /// Which side failed: `client`, `gateway` or `upstream`.
    pub fn side(&self) -> &'static str {
        match self {
            GatewayError::ClientBody(_)
            | GatewayError::BadCall(_)
            | GatewayError::UnsafePath(_) => "client",
            GatewayError::Connect(..)
            | GatewayError::Timeout(..)
            | GatewayError::Broken(..)
            | GatewayError::Credentials(..) => "upstream",
            _ => "gateway",
        }
    }

    /// The detail kept for the log (never in a response body).
    pub fn detail(&self) -> Option<&str> {
        match self {
            GatewayError::Connect(_, _, d) | GatewayError::Broken(_, d) => Some(d),
            _ => None,
        }
    }

    fn from_send(platform: &'static str, host: &str, e: SendError) -> GatewayError {
        match e {
            SendError::Connect(d) => GatewayError::Connect(platform, host.to_owned(), d),
            SendError::Timeout(d) => GatewayError::Timeout(platform, d),
            SendError::Broken(d) => GatewayError::Broken(platform, d),
            SendError::ClientBody(d) => GatewayError::ClientBody(d),
        }
    }
}

/// A caller's request, as the server hands it over.
pub struct ForwardRequest {
    /// Method.
    pub method: Method,
    /// Raw path after `/proxy/{platform}` (starts with `/`).
    pub path: String,
    /// Raw query string, forwarded byte for byte.
    pub query: Option<String>,
    /// Caller's headers.
    pub headers: HeaderMap,
    /// Caller's body (streamed).
    pub body: Body,
    /// `scheme://host` the caller used, for rewriting upstream URLs.
    pub public_base: String,
    /// The authenticated cpixd tenant.
    pub tenant: String,
}

/// Where a call goes and how it may be replayed.
struct Call<'a> {
    platform: &'a Platform,
    operation: Option<&'a Operation>,
    label: String,
    host: String,
    retry: Retry,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    public_base: Option<String>,
    tenant: String,
}

/// The gateway: configured platforms over one shared client.
pub struct Gateway {
    platforms: Vec<Platform>,
    upstream: Upstream,
    public_url: Option<String>,
    metrics: metrics::ProxyMetrics,
    secrets: Vec<crate::crypto::SecretString>,
}

/// Request headers never sent upstream: hop-by-hop, the caller's cpixd
/// credentials, what only concerns the hop to cpixd, and method overrides
/// (an upstream honouring one would run another operation than the one
/// the route table matched).
const DROPPED_REQUEST_HEADERS: [&str; 19] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "x-api-key",
    "x-tenant-id",
    "cookie",
    "expect",
    "forwarded",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Response headers never passed back (hop-by-hop).
const DROPPED_RESPONSE_HEADERS: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Response headers that carry an upstream request id, in order of trust.
const REQUEST_ID_HEADERS: [&str; 6] = [
    "x-request-id",
    "x-amzn-requestid",
    "x-amz-request-id",
    "request-id",
    "x-correlation-id",
    "cf-ray",
];

/// Copies `from` minus `dropped` and whatever `Connection` names.
fn filter_headers(from: &HeaderMap, dropped: &[&str]) -> HeaderMap {
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        let n = name.as_str();
        if dropped.contains(&n)
            || n.starts_with("x-forwarded-")
            || n == "x-real-ip"
            || named.iter().any(|c| c == n)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn percent_encode(v: &str) -> String {
    routes::percent_encode(v, b"")
}

impl Gateway {
    /// Builds the gateway from `[gateway]` and `[platforms.*]` (with
    /// `CPIXD_<PLATFORM>_*` from `env`); every problem comes back with its
    /// key path.
    pub fn from_config(
        gateway: Option<&toml::Table>,
        platforms: Option<&toml::Table>,
        env: &BTreeMap<String, String>,
    ) -> Result<Gateway, Vec<String>> {
        let mut errors = Vec::new();
        let g = settings::gateway(gateway, &mut errors);
        let empty = toml::Table::new();
        let platforms_table = platforms.unwrap_or(&empty);
        for name in platforms_table.keys() {
            if !CONFIGURE.iter().any(|(n, _)| n == name) {
                errors.push(format!(
                    "platforms.{name}: unknown platform (known: {})",
                    routes::platform_names().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        let mut configured = Vec::new();
        let mut secrets = Vec::new();
        for (name, configure) in CONFIGURE {
            let env_prefix = format!("CPIXD_{}_", name.to_ascii_uppercase());
            let in_env = env.keys().any(|k| k.starts_with(&env_prefix));
            let table = match platforms_table.get(name) {
                Some(toml::Value::Table(t)) => t,
                Some(_) => {
                    errors.push(format!("platforms.{name}: must be a table"));
                    continue;
                }
                None if in_env => &empty,
                None => continue,
            };
            let mut f = Fields::new(&format!("platforms.{name}"), Some(name), table, env);
            let base_url = f.url("base_url");
            let mut hosts_override = f.urls("hosts");
            let allow_undocumented = f.boolean("allow_undocumented", false);
            let allow_credential_operations = f.boolean("allow_credential_operations", false);
            let tenants = f.strings("tenants");
            let rewrite = f
                .table_has("rewrite_urls")
                .then(|| f.boolean("rewrite_urls", false));
            let setup = configure(&mut f);
            secrets.extend(f.secrets());
            let path = f.path("hosts");
            errors.extend(f.finish());
            let Some(setup) = setup else { continue };
            let Some(catalogue) = routes::catalogue(name) else {
                continue;
            };
            if let Some(b) = base_url {
                hosts_override.insert("api".into(), b);
            }
            let mut hosts = setup.hosts;
            hosts.extend(hosts_override);
            let needed: std::collections::BTreeSet<&str> = catalogue
                .operations
                .iter()
                .filter(|o| !o.is_native())
                .map(|o| o.host.as_str())
                .collect();
            for key in needed {
                if !hosts.contains_key(key) {
                    errors.push(format!(
                        "{path}.{key}: no base URL for the {key} host (set it{})",
                        if name == "cloudvideokit" {
                            ", or tenant_name"
                        } else {
                            ""
                        }
                    ));
                }
            }
            configured.push(Platform {
                name: catalogue.platform,
                catalogue,
                hosts,
                credentials: setup.credentials,
                allow_undocumented,
                allow_credential_operations,
                tenants,
                rewrite_urls: rewrite.unwrap_or(setup.rewrite_urls),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let upstream = Upstream::new(g.client).map_err(|e| vec![format!("gateway: {e}")])?;
        Ok(Gateway {
            platforms: configured,
            upstream,
            public_url: g.public_url,
            metrics: metrics::ProxyMetrics::default(),
            secrets,
        })
    }

    /// The gateway of a loaded configuration.
    pub fn for_config(config: &crate::config::Config) -> Result<Gateway, Vec<String>> {
        Gateway::from_config(
            config.gateway.as_ref(),
            config.platforms.as_ref(),
            &config.env,
        )
    }

    /// The shared upstream client (the licence proxy uses it too).
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The configured platforms.
    pub fn platforms(&self) -> &[Platform] {
        &self.platforms
    }

    /// The configured platform `name`, or why there is none.
    pub fn platform(&self, name: &str) -> Result<&Platform, GatewayError> {
        if let Some(p) = self.platforms.iter().find(|p| p.name == name) {
            return Ok(p);
        }
        match routes::catalogue(name) {
            Some(c) => Err(GatewayError::NotConfigured(c.platform)),
            None => Err(GatewayError::UnknownPlatform(name.to_owned())),
        }
    }

    /// Replaces every configured secret in `text` by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if s.expose().len() >= 4 {
                out = out.replace(s.expose(), "***");
            }
        }
        out
    }

    /// The gateway's metric families.
    pub fn metrics_text(&self) -> String {
        let mints: Vec<(&'static str, u64)> = self
            .platforms
            .iter()
            .map(|p| (p.name, p.credentials.mints()))
            .collect();
        self.metrics.render(&mints)
    }

    /// Forwards a caller's request to the platform's operation.
    pub async fn forward(
        &self,
        platform: &str,
        req: ForwardRequest,
    ) -> Result<Response<Body>, GatewayError> {
        let p = self.platform(platform)?;
        if !p.tenants.is_empty() && !p.tenants.contains(&req.tenant) {
            return Err(GatewayError::Forbidden(p.name, req.tenant));
        }
        if let Some(why) = routes::unsafe_path(&req.path) {
            return Err(GatewayError::UnsafePath(why));
        }
        let (operation, label, host, retry) = match p.catalogue.resolve(&req.method, &req.path) {
            Some(r) if r.operation.is_native() => {
                return Err(GatewayError::Native(
                    r.operation.name.clone(),
                    native_hint(r.operation),
                ))
            }
            Some(r) => {
                let label = p.catalogue.label(r.route);
                if r.route.credential && !p.allow_credential_operations {
                    return Err(GatewayError::CredentialOperation {
                        platform: p.name,
                        operation: label,
                    });
                }
                (
                    Some(r.operation),
                    label,
                    r.operation.host.clone(),
                    r.route.retry,
                )
            }
            None if p.allow_undocumented => {
                // A spelling the upstream may read as a guarded operation
                // (other case, trailing or doubled slashes) stays guarded.
                if let Some(r) = p.catalogue.resolve_loosely(&req.method, &req.path) {
                    if r.operation.is_native()
                        || (r.route.credential && !p.allow_credential_operations)
                    {
                        return Err(GatewayError::CredentialOperation {
                            platform: p.name,
                            operation: p.catalogue.label(r.route),
                        });
                    }
                }
                (None, "undocumented".to_owned(), "api".to_owned(), Retry::No)
            }
            None => {
                return Err(GatewayError::UnknownOperation {
                    platform: p.name,
                    closest: p
                        .catalogue
                        .closest(&req.method, &req.path, 3)
                        .iter()
                        .map(|o| format!("{} {} ({})", o.method, o.path_text(), o.name))
                        .collect(),
                    method: req.method,
                    path: req.path,
                })
            }
        };
        let query = req.query.map(|q| format!("?{q}")).unwrap_or_default();
        let uri = self.uri(p, &host, &format!("{}{query}", req.path))?;
        self.exchange(
            Call {
                platform: p,
                operation,
                label,
                host,
                retry,
                method: req.method,
                uri,
                headers: filter_headers(&req.headers, &DROPPED_REQUEST_HEADERS),
                public_base: Some(self.public_url.clone().unwrap_or(req.public_base)),
                tenant: req.tenant,
            },
            req.body,
        )
        .await
    }

    /// Calls one operation by name (`cpixd platforms call`): `params` fill
    /// the path template, the rest become the query string.
    pub async fn call(
        &self,
        platform: &str,
        operation: &str,
        params: &BTreeMap<String, String>,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Body>, GatewayError> {
        let p = self.platform(platform)?;
        let op = p.catalogue.operation(operation).ok_or_else(|| {
            GatewayError::BadCall(format!(
                "{platform} has no operation {operation:?} (see `cpixd platforms list {platform}`)"
            ))
        })?;
        if op.is_native() {
            return Err(GatewayError::Native(op.name.clone(), native_hint(op)));
        }
        if op.credential && !p.allow_credential_operations {
            return Err(GatewayError::CredentialOperation {
                platform: p.name,
                operation: op.name.clone(),
            });
        }
        let template = op
            .path
            .as_ref()
            .ok_or_else(|| GatewayError::BadCall(format!("{} has no documented path", op.name)))?;
        let path = template.fill(params).map_err(GatewayError::BadCall)?;
        if let Some(why) = routes::unsafe_path(&path) {
            return Err(GatewayError::UnsafePath(why));
        }
        let in_path: Vec<&str> = template.params().collect();
        let query: Vec<String> = params
            .iter()
            .filter(|(k, _)| !in_path.contains(&k.as_str()) && *k != routes::ALTERNATION_PARAM)
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let uri = self.uri(p, &op.host, &target)?;
        self.exchange(
            Call {
                platform: p,
                operation: Some(op),
                label: op.name.clone(),
                host: op.host.clone(),
                retry: op.retry,
                method: op.method.clone(),
                uri,
                headers: filter_headers(&headers, &DROPPED_REQUEST_HEADERS),
                public_base: self.public_url.clone(),
                tenant: "cli".to_owned(),
            },
            body,
        )
        .await
    }

    fn uri(&self, p: &Platform, host: &str, path_and_query: &str) -> Result<Uri, GatewayError> {
        let base = p.hosts.get(host).ok_or_else(|| {
            GatewayError::BadCall(format!("no base URL for the {host} host of {}", p.name))
        })?;
        format!("{base}{path_and_query}").parse().map_err(|_| {
            GatewayError::BadCall(format!("not a valid request target: {path_and_query}"))
        })
    }

    /// Sends a call, replaying it where allowed, and shapes the answer.
    async fn exchange(&self, call: Call<'_>, body: Body) -> Result<Response<Body>, GatewayError> {
        let started = Instant::now();
        let p = call.platform;
        let s = &self.upstream.settings;
        let target = Target {
            operation: call.operation,
            host: &call.host,
            hosts: &p.hosts,
        };
        // Small bodies are held so that a replay can resend them.
        let exact = http_body::Body::size_hint(&body).exact();
        let (replay, mut streamed) = match exact {
            Some(n) if n as usize <= s.replay_buffer_bytes => {
                let bytes = axum::body::to_bytes(body, n as usize)
                    .await
                    .map_err(|e| GatewayError::ClientBody(e.to_string()))?;
                (Some(bytes), None)
            }
            _ => (
                None,
                Some(Body::new(IdleTimeout::new(body, s.idle_timeout))),
            ),
        };
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut auth_replayed = false;
        let result = loop {
            attempts += 1;
            let mut headers = call.headers.clone();
            let grant = match p
                .credentials
                .apply(&self.upstream, target, &mut headers)
                .await
            {
                Ok(g) => g,
                Err(e) => break Err(e),
            };
            let (attempt_body, deadline) = match &replay {
                Some(b) => (Body::from(b.clone()), s.timeout),
                None => (
                    streamed.take().unwrap_or_else(Body::empty),
                    s.upload_timeout,
                ),
            };
            let sent = self
                .upstream
                .send_once(
                    call.method.clone(),
                    call.uri.clone(),
                    headers,
                    attempt_body,
                    deadline,
                )
                .await;
            let may_replay = replay.is_some();
            let may_retry = may_replay && call.retry.replayable() && attempts < s.max_attempts;
            let wait = match &sent {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    if let Some(g) = grant {
                        if p.credentials.refused(g).await && may_replay && !auth_replayed {
                            auth_replayed = true;
                            continue;
                        }
                    }
                    None
                }
                Ok(resp)
                    if may_retry
                        && (resp.status().is_server_error()
                            || resp.status() == StatusCode::TOO_MANY_REQUESTS) =>
                {
                    Some(
                        client::retry_after(resp.headers(), std::time::SystemTime::now())
                            .unwrap_or_else(|| self.backoff(retries)),
                    )
                }
                Err(e) if may_retry && e.transient() => Some(self.backoff(retries)),
                _ => None,
            };
            match wait {
                Some(wait) if started.elapsed() + wait <= s.retry_budget => {
                    drop(sent);
                    tracing::debug!(platform = p.name, operation = %call.label, attempt = attempts, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                _ => break sent.map_err(|e| GatewayError::from_send(p.name, &call.host, e)),
            }
        };
        let elapsed = started.elapsed();
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                self.metrics
                    .record(p.name, &call.label, None, retries, elapsed);
                tracing::warn!(
                    platform = p.name,
                    operation = %call.label,
                    method = %call.method,
                    tenant = %call.tenant,
                    attempts,
                    elapsed_ms = elapsed.as_millis() as u64,
                    side = e.side(),
                    error = %self.redact(&e.to_string()),
                    detail = %self.redact(e.detail().unwrap_or("")),
                    "gateway call failed"
                );
                return Err(e);
            }
        };
        let status = resp.status();
        p.credentials.finished(target, status).await;
        self.metrics
            .record(p.name, &call.label, Some(status.as_u16()), retries, elapsed);
        let request_id = REQUEST_ID_HEADERS
            .iter()
            .find_map(|h| resp.headers().get(*h))
            .cloned();
        tracing::info!(
            platform = p.name,
            operation = %call.label,
            method = %call.method,
            tenant = %call.tenant,
            status = status.as_u16(),
            attempts,
            elapsed_ms = elapsed.as_millis() as u64,
            upstream_request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            "gateway call"
        );
        Ok(self.shape_response(&call, resp, request_id, attempts))
    }

    fn backoff(&self, retry: u32) -> Duration {
        let s = &self.upstream.settings;
        client::backoff(retry, s.backoff_base, s.backoff_max, rand::random::<f64>())
    }

    /// The upstream answer as the caller gets it.
    fn shape_response(
        &self,
        call: &Call<'_>,
        resp: Response<hyper::body::Incoming>,
        request_id: Option<HeaderValue>,
        attempts: u32,
    ) -> Response<Body> {
        let p = call.platform;
        let (parts, incoming) = resp.into_parts();
        let mut headers = filter_headers(&parts.headers, &DROPPED_RESPONSE_HEADERS);
        headers.insert("x-cpixd-platform", HeaderValue::from_static(p.name));
        // Operation names come from the route tables: printable ASCII.
        if let Ok(v) = HeaderValue::from_str(&call.label) {
            headers.insert("x-cpixd-operation", v);
        }
        if let Some(id) = request_id {
            headers.insert("x-cpixd-upstream-request-id", id);
        }
        if attempts > 1 {
            headers.insert("x-cpixd-attempts", HeaderValue::from(attempts));
        }
        // api.video throttles with a non-standard header; give clients the
        // standard one too.
        if parts.status == StatusCode::TOO_MANY_REQUESTS
            && !headers.contains_key(header::RETRY_AFTER)
        {
            if let Some(v) = headers.get("x-ratelimit-retry-after").cloned() {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        let body = IdleTimeout::new(incoming, self.upstream.settings.idle_timeout);
        let rewrite = self.rewrite_pairs(call);
        let textual = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json") || ct.starts_with("text/"));
        let body = match rewrite {
            Some(pairs) => {
                if let Some(loc) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
                    let mut l = loc.to_owned();
                    for (from, to) in &pairs {
                        if let (Ok(f), Ok(t)) = (std::str::from_utf8(from), std::str::from_utf8(to))
                        {
                            l = l.replace(f, t);
                        }
                    }
                    if let Ok(v) = HeaderValue::from_str(&l) {
                        headers.insert(header::LOCATION, v);
                    }
                }
                if textual {
                    headers.remove(header::CONTENT_LENGTH);
                    Body::new(Rewrite::new(body, pairs))
                } else {
                    Body::new(body)
                }
            }
            None => Body::new(body),
        };
        let mut out = Response::new(body);
        *out.status_mut() = parts.status;
        *out.version_mut() = axum::http::Version::HTTP_11;
        *out.headers_mut() = headers;
        out
    }

    /// `(upstream base, gateway prefix)` pairs when the platform rewrites.
    fn rewrite_pairs(&self, call: &Call<'_>) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let p = call.platform;
        if !p.rewrite_urls {
            return None;
        }
        let public = call.public_base.as_deref()?.trim_end_matches('/');
        let to = format!("{public}/proxy/{}", p.name).into_bytes();
        Some(
            p.hosts
                .values()
                .map(|base| (base.as_bytes().to_vec(), to.clone()))
                .collect(),
        )
    }

    /// The catalogue as JSON (`GET /proxy/{platform}`).
    pub fn describe(&self, platform: &str) -> Result<serde_json::Value, GatewayError> {
        let p = self.platform(platform)?;
        let ops: Vec<serde_json::Value> = p
            .catalogue
            .operations
            .iter()
            .map(|o| {
                serde_json::json!({
                    "operation": o.name,
                    "group": o.group,
                    "method": o.method.as_str(),
                    "host": o.host,
                    "path": o.path_text(),
                    "retry": o.retry.as_str(),
                    "credential": o.credential,
                })
            })
            .collect();
        Ok(serde_json::json!({ "platform": p.name, "operations": ops }))
    }
}

/// Where cpixd serves a Cloud Video Kit DRM operation itself.
/// Where cpixd serves a native operation: the same method and path, on
/// cpixd itself.
fn native_hint(op: &Operation) -> String {
    format!("call {} {} on cpixd directly", op.method, op.path_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    #[test]
    fn caller_credentials_and_hop_by_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Basic eA=="),
            ("x-api-key", "caller-key"),
            ("x-tenant-id", "acme"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("host", "gw"),
            ("x-forwarded-for", "10.0.0.1"),
            ("range", "bytes=0-99"),
            ("if-none-match", "\"abc\""),
            ("x-video-title", "t"),
            ("content-type", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = filter_headers(&h, &DROPPED_REQUEST_HEADERS);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            ["range", "if-none-match", "x-video-title", "content-type"]
        );
    }

    #[test]
    fn configuration_errors_name_their_keys() {
        let t: toml::Table = toml::from_str(
            r#"
[kinescope]
[cloudvideokit]
api_key = "k"
[pixop]
email = "a@b.c"
password = "p"
base_url = "ftp://nope"
hosts = { api = 3 }
[nosuch]
"#,
        )
        .unwrap();
        let errors = match Gateway::from_config(None, Some(&t), &BTreeMap::new()) {
            Err(e) => e,
            Ok(_) => panic!("bad configuration accepted"),
        };
        for needle in [
            "platforms.nosuch: unknown platform",
            "platforms.kinescope.token: required",
            "platforms.cloudvideokit.tenant_id: required",
            "platforms.pixop.base_url:",
            "platforms.pixop.hosts.api: must be a string",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(needle)),
                "{needle} not in {errors:#?}"
            );
        }
    }

    #[test]
    fn environment_alone_configures_a_platform_and_secrets_are_redacted() {
        let env: BTreeMap<String, String> = [
            ("CPIXD_KINESCOPE_TOKEN".to_owned(), "kt-123456".to_owned()),
            ("CPIXD_5CENTSCDN_API_KEY".to_owned(), "fc-abcdef".to_owned()),
        ]
        .into();
        let g = match Gateway::from_config(None, None, &env) {
            Ok(g) => g,
            Err(e) => panic!("{e:?}"),
        };
        let names: Vec<&str> = g.platforms().iter().map(|p| p.name).collect();
        assert_eq!(names, ["kinescope", "5centscdn"]);
        assert_eq!(
            g.platforms()[0].hosts["upload"],
            "https://uploader.kinescope.io"
        );
        assert_eq!(
            g.redact("token kt-123456 and fc-abcdef"),
            "token *** and ***"
        );
        assert!(matches!(
            g.platform("pixop"),
            Err(GatewayError::NotConfigured("pixop"))
        ));
        assert!(matches!(
            g.platform("vimeo"),
            Err(GatewayError::UnknownPlatform(_))
        ));
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
