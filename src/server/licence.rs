//! The player-facing endpoints: licence acquisition
//! (`POST /acquire-license/{system}`, also under `/license/v1`), HLS
//! AES-128 key delivery (`GET /hls/v1/key/{content_id}/{kid}`) and the
//! certificates players fetch (`GET /license/v1/certificate/{system}`,
//! also `/certificate/{system}`). Licence and key requests carry a DRM
//! token (`Authorization: Bearer` or `?token=`) unless the tenant turned
//! authorization off; the tenant is the token's, or the one `brandGuid`
//! names. ClearKey licences and AES-128 keys come from the store; Widevine,
//! PlayReady and FairPlay challenges go unchanged to the tenant's licence
//! server. Every request ends in one [`Served`] record (logged; the licence
//! statistics read the same record).

use super::error::ApiError;
use super::AppState;
use crate::config::Tenant;
use crate::drm::clearkey::parse_license_request_typed;
use crate::ids::KeyId;
use crate::licence::clearkey::{self, KeyServeError};
use crate::licence::servers::{self, setting_name};
use crate::licence::token::{self, Claims, TokenError, Use};
use crate::licence::DrmSystem;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest licence challenge accepted.
const MAX_CHALLENGE_BYTES: usize = 256 << 10;

/// What a player request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    /// A licence (or licence renewal) request.
    License,
    /// A certificate request.
    Certificate,
    /// An HLS AES-128 key request.
    Key,
}

impl RequestType {
    /// The name the statistics use.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::License => "License",
            RequestType::Certificate => "Certificate",
            RequestType::Key => "Key",
        }
    }
}

/// One answered player request, for the log and the statistics (never a
/// key, a token or a credential).
#[derive(Debug, Clone)]
pub struct Served {
    /// The tenant, when known.
    pub tenant: Option<String>,
    /// The DRM system.
    pub system: Option<DrmSystem>,
    /// What was asked.
    pub request_type: RequestType,
    /// The token's user id and asset.
    pub token_user_id: Option<String>,
    /// The token's content id.
    pub token_content_id: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Error code (`INVALID_TOKEN`, …), if refused.
    pub error_code: Option<String>,
    /// Error message, if refused.
    pub error_message: Option<String>,
    /// KIDs asked for (where the request format says).
    pub kids: Vec<KeyId>,
    /// Request body size.
    pub payload_length: usize,
    /// Time taken.
    pub duration: Duration,
}

/// The query parameters the player endpoints read.
#[derive(Debug, Default)]
struct PlayerQuery {
    brand_guid: Option<String>,
    token: Option<String>,
}

impl PlayerQuery {
    fn parse(raw: Option<&str>) -> PlayerQuery {
        let mut q = PlayerQuery::default();
        for pair in raw.unwrap_or_default().split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = crate::proxy::routes::percent_decode(v);
            match k {
                "brandGuid" | "tenantId" => q.brand_guid = Some(v),
                "token" => q.token = Some(v),
                _ => {}
            }
        }
        q
    }
}

/// A refusal of a player request.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    fn response(&self) -> Response {
        ApiError::new(self.status, self.code, self.message.clone()).into_response()
    }
}

impl From<TokenError> for Refusal {
    fn from(e: TokenError) -> Refusal {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
        Refusal::new(status, e.code(), e.to_string())
    }
}

impl From<crate::keys::StoreError> for Refusal {
    fn from(e: crate::keys::StoreError) -> Refusal {
        tracing::error!(error = %e, "key store failed on a player request");
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the key store is unavailable",
        )
    }
}

/// The request's DRM token, from `Authorization: Bearer` or `?token=`.
fn presented_token(headers: &HeaderMap, query: &PlayerQuery) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        })
        .or_else(|| query.token.clone())
        .filter(|t| !t.is_empty())
}

/// Who may have what: the tenant, and the verified claims (none when the
/// tenant does not require tokens and none was sent).
struct Grant {
    tenant: Arc<Tenant>,
    claims: Option<Claims>,
}

fn tenant_named(state: &AppState, id: &str) -> Option<Arc<Tenant>> {
    state.tenants.iter().find(|t| t.id == id).cloned()
}

/// Checks the request's DRM token for `system` (or, without a token, that
/// the named tenant lets requests in without one).
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    query: &PlayerQuery,
    system: DrmSystem,
) -> Result<Grant, Refusal> {
    match presented_token(headers, query) {
        Some(jwt) => {
            let unverified = token::unverified_claims(&jwt)?;
            let tenant = tenant_named(state, &unverified.tid).ok_or(TokenError::BadSignature)?;
            if query.brand_guid.as_deref().is_some_and(|b| b != tenant.id) {
                return Err(TokenError::WrongTenant.into());
            }
            let keys = state.signers.keys(&*state.store, &tenant.id)?;
            let claims = token::verify(&jwt, &keys, &tenant.id, token::now_ms())?;
            if claims.typ != Use::Drm {
                return Err(TokenError::WrongUse.into());
            }
            if !claims.allows(system.as_str()) {
                return Err(TokenError::SystemNotAllowed(system.as_str().to_owned()).into());
            }
            Ok(Grant {
                tenant,
                claims: Some(claims),
            })
        }
        None => {
            let id = query.brand_guid.as_deref().ok_or(TokenError::Missing)?;
            let tenant = tenant_named(state, id).ok_or(TokenError::Missing)?;
            if tenant.authorization.enabled {
                return Err(TokenError::Missing.into());
            }
            Ok(Grant {
                tenant,
                claims: None,
            })
        }
    }
}

/// The answer and its record.
fn served(
    started: Instant,
    request_type: RequestType,
    system: Option<DrmSystem>,
    grant: Option<&Grant>,
    payload_length: usize,
    kids: Vec<KeyId>,
    outcome: Result<Response, Refusal>,
) -> (Response, Served) {
    let (response, error) = match outcome {
        Ok(r) => (r, None),
        Err(refusal) => (refusal.response(), Some(refusal)),
    };
    let claims = grant.and_then(|g| g.claims.as_ref());
    let record = Served {
        tenant: grant.map(|g| g.tenant.id.clone()),
        system,
        request_type,
        token_user_id: claims.and_then(|c| c.uid.clone()),
        token_content_id: claims.map(|c| c.sub.clone()),
        status: response.status().as_u16(),
        error_code: error.as_ref().map(|e| e.code.to_owned()),
        error_message: error.map(|e| e.message),
        kids,
        payload_length,
        duration: started.elapsed(),
    };
    (response, record)
}

/// Logs one player request (issue of record for the statistics).
fn record(state: &AppState, s: &Served) {
    let ms = (s.duration.as_secs_f64() * 1e6).round() / 1e3;
    tracing::info!(
        tenant = s.tenant.as_deref().unwrap_or("-"),
        system = s.system.map_or("-", DrmSystem::as_str),
        request = s.request_type.as_str(),
        status = s.status,
        code = s.error_code.as_deref().unwrap_or("-"),
        kids = s.kids.len(),
        ms,
        "player request"
    );
    let endpoint = match s.request_type {
        RequestType::License => "acquire-license",
        RequestType::Certificate => "certificate",
        RequestType::Key => "hls-key",
    };
    state.metrics.record(
        endpoint,
        s.tenant.as_deref().unwrap_or("-"),
        s.status,
        s.duration,
        0,
    );
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn read_challenge(body: Body) -> Result<bytes::Bytes, Refusal> {
    axum::body::to_bytes(body, MAX_CHALLENGE_BYTES)
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("a licence request is at most {MAX_CHALLENGE_BYTES} bytes"),
            )
        })
}

fn key_error(e: KeyServeError) -> Refusal {
    match e {
        KeyServeError::Token(t) => t.into(),
        KeyServeError::Store(s) => s.into(),
        KeyServeError::NotFound { .. } => {
            Refusal::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
    }
}

/// `POST /acquire-license/{system}`
pub async fn acquire(
    State(state): State<Arc<AppState>>,
    Path(system): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let query = PlayerQuery::parse(q.as_deref());
    let system = DrmSystem::parse(&system).filter(|s| *s != DrmSystem::Aes128);
    let Some(system) = system else {
        let (r, s) = served(
            started,
            RequestType::License,
            None,
            None,
            0,
            Vec::new(),
            Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "unknown_system",
                "licences are for clearkey, widevine, playready or fairplay",
            )),
        );
        record(&state, &s);
        return r;
    };
    let challenge = match read_challenge(body).await {
        Ok(b) => b,
        Err(e) => {
            let (r, s) = served(
                started,
                RequestType::License,
                Some(system),
                None,
                0,
                Vec::new(),
                Err(e),
            );
            record(&state, &s);
            return r;
        }
    };
    let grant = match authorize(&state, &headers, &query, system) {
        Ok(g) => g,
        Err(e) => {
            let (r, s) = served(
                started,
                RequestType::License,
                Some(system),
                None,
                challenge.len(),
                Vec::new(),
                Err(e),
            );
            record(&state, &s);
            return r;
        }
    };
    let mut kids = Vec::new();
    let outcome = match system {
        DrmSystem::ClearKey => clearkey_licence(&state, &grant, &challenge, &mut kids),
        _ => proxied_licence(&state, &grant, system, &headers, challenge.clone()).await,
    };
    let (r, s) = served(
        started,
        RequestType::License,
        Some(system),
        Some(&grant),
        challenge.len(),
        kids,
        outcome,
    );
    record(&state, &s);
    r
}

fn clearkey_licence(
    state: &AppState,
    grant: &Grant,
    challenge: &[u8],
    kids: &mut Vec<KeyId>,
) -> Result<Response, Refusal> {
    let request = parse_license_request_typed(challenge)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    kids.clone_from(&request.kids);
    let asset = grant.claims.as_ref().map(|c| c.sub.as_str());
    let (json, _) =
        clearkey::licence(&*state.store, &grant.tenant.id, asset, &request).map_err(key_error)?;
    let mut r = (StatusCode::OK, json).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(no_store(r))
}

async fn proxied_licence(
    state: &AppState,
    grant: &Grant,
    system: DrmSystem,
    headers: &HeaderMap,
    challenge: bytes::Bytes,
) -> Result<Response, Refusal> {
    let server = state.licence_servers.get(&grant.tenant.id, system);
    let Some((server, url)) = server.and_then(|s| Some((s, s.url.clone()?))) else {
        return Err(Refusal::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_configured",
            format!(
                "no {} licence server is configured for tenant {:?}: set {}",
                system.display_name(),
                grant.tenant.id,
                setting_name(system, "url")
            ),
        ));
    };
    let upstream = state.gateway.upstream();
    let timeout = upstream.settings.timeout;
    match servers::forward(upstream, server, &url, headers, challenge, timeout).await {
        Ok(r) => Ok(no_store(r)),
        Err(e) => {
            tracing::warn!(system = system.as_str(), tenant = %grant.tenant.id, error = %e, "licence server failed");
            let (status, code) = match e {
                crate::proxy::client::SendError::Timeout(_) => {
                    (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
                }
                _ => (StatusCode::BAD_GATEWAY, "upstream_failed"),
            };
            Err(Refusal::new(
                status,
                code,
                format!(
                    "the {} licence server did not answer",
                    system.display_name()
                ),
            ))
        }
    }
}

/// `GET /hls/v1/key/{content_id}/{kid}`: the 16 raw key bytes.
pub async fn hls_key(
    State(state): State<Arc<AppState>>,
    Path((content_id, kid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let query = PlayerQuery::parse(q.as_deref());
    let system = Some(DrmSystem::Aes128);
    let kid = match KeyId::parse_uuid(&kid) {
        Ok(k) => k,
        Err(e) => {
            let (r, s) = served(
                started,
                RequestType::Key,
                system,
                None,
                0,
                Vec::new(),
                Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("kid: {e}"),
                )),
            );
            record(&state, &s);
            return r;
        }
    };
    let grant = match authorize(&state, &headers, &query, DrmSystem::Aes128) {
        Ok(g) => g,
        Err(e) => {
            let (r, s) = served(
                started,
                RequestType::Key,
                system,
                None,
                0,
                vec![kid],
                Err(e),
            );
            record(&state, &s);
            return r;
        }
    };
    let asset = grant.claims.as_ref().map(|c| c.sub.as_str());
    let outcome = clearkey::raw_key(&*state.store, &grant.tenant.id, &content_id, kid, asset)
        .map_err(key_error)
        .map(|key| {
            let mut r = (StatusCode::OK, key.expose().to_vec()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            no_store(r)
        });
    let (r, s) = served(
        started,
        RequestType::Key,
        system,
        Some(&grant),
        0,
        vec![kid],
        outcome,
    );
    record(&state, &s);
    r
}

/// `GET /license/v1/certificate/{system}`: the tenant's Widevine service
/// certificate or FairPlay application certificate, as configured. The
/// tenant is the one `brandGuid` names, or the token's.
pub async fn certificate(
    State(state): State<Arc<AppState>>,
    Path(system): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let query = PlayerQuery::parse(q.as_deref());
    let system = DrmSystem::parse(&system)
        .filter(|s| matches!(s, DrmSystem::Widevine | DrmSystem::FairPlay));
    let outcome = (|| {
        let system = system.ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "unknown_system",
                "certificates are for widevine or fairplay",
            )
        })?;
        let tenant = match (&query.brand_guid, presented_token(&headers, &query)) {
            (Some(b), _) => tenant_named(&state, b),
            (None, Some(t)) => token::unverified_claims(&t)
                .ok()
                .and_then(|c| tenant_named(&state, &c.tid)),
            (None, None) => None,
        }
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "name the tenant with ?brandGuid=",
            )
        })?;
        let cert = state
            .licence_servers
            .get(&tenant.id, system)
            .and_then(|s| s.certificate.clone())
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::NOT_FOUND,
                    "not_configured",
                    format!(
                        "no {} certificate for tenant {:?}: set {}",
                        system.display_name(),
                        tenant.id,
                        setting_name(system, "certificate_file")
                    ),
                )
            })?;
        let text = cert
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        let mut r = (StatusCode::OK, cert).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if text {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            }),
        );
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        Ok((r, tenant))
    })();
    let (response, tenant) = match outcome {
        Ok((r, t)) => (Ok(r), Some(t)),
        Err(e) => (Err(e), None),
    };
    let grant = tenant.map(|tenant| Grant {
        tenant,
        claims: None,
    });
    let (r, s) = served(
        started,
        RequestType::Certificate,
        system,
        grant.as_ref(),
        0,
        Vec::new(),
        response,
    );
    record(&state, &s);
    r
}
