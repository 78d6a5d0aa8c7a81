//! The player-facing endpoints: licence acquisition
//! (`POST /acquire-license/{system}`, also under `/license/v1`), HLS
//! AES-128 key delivery (`GET /hls/v1/key/{content_id}/{kid}`) and the
//! certificates players fetch (`GET /license/v1/certificate/{system}`,
//! also `/certificate/{system}`). Licence and key requests carry a DRM
//! token (`Authorization: Bearer` or `?token=`) unless the tenant turned
//! authorization off; the tenant is the token's, or the one `brandGuid`
//! names. ClearKey licences and AES-128 keys come from the store; Widevine,
//! PlayReady and FairPlay challenges go unchanged to the tenant's licence
//! server. Every request ends in one entry of the licence request log
//! ([`crate::licence::log`]), which the statistics read, and one log line.

use super::auth::{client_ip, Peer};
use super::error::ApiError;
use super::AppState;
use crate::config::Tenant;
use crate::drm::clearkey::parse_license_request_typed;
use crate::ids::KeyId;
use crate::licence::clearkey::{self, KeyServeError};
use crate::licence::log::{LogEntry, RequestType};
use crate::licence::servers::{self, setting_name};
use crate::licence::token::{self, Claims, TokenError, Use};
use crate::licence::DrmSystem;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Largest licence challenge accepted.
const MAX_CHALLENGE_BYTES: usize = 256 << 10;

/// What a request arrived with, for its log entry.
pub struct Arrival {
    started: Instant,
    time_ms: u64,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    url: String,
}

impl Arrival {
    /// Notes the arrival of a request at `uri` from `peer`.
    pub fn new(state: &AppState, uri: &Uri, headers: &HeaderMap, peer: &Peer) -> Arrival {
        let ip = client_ip(&state.config.trusted_proxies, headers, peer);
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // The URL asked, without the token.
        let query: Vec<&str> = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("token="))
            .collect();
        let mut url = format!("{}{}", state.config.public_base_url, uri.path());
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        Arrival {
            started: Instant::now(),
            time_ms: crate::keys::now_ms(),
            ip,
            user_agent,
            url,
        }
    }
}

/// Everything known about a finished request besides its arrival.
pub struct Outcome<'a> {
    /// What was asked.
    pub request_type: RequestType,
    /// The system, when known.
    pub system: Option<DrmSystem>,
    /// The tenant, when known.
    pub tenant: Option<&'a str>,
    /// The token's claims, when one verified.
    pub claims: Option<&'a Claims>,
    /// Request body size.
    pub payload_length: usize,
    /// KIDs asked for.
    pub kids: Vec<KeyId>,
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
        for (k, v) in super::form::pairs(raw.unwrap_or_default()) {
            match k.as_str() {
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
pub struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    /// A refusal with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
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

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal::new(e.status, e.code, e.message)
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

/// The tenant a refused request claims (its `brandGuid`, or its token's
/// tenant, unverified), so that its refusal lands in that tenant's log.
fn claimed_tenant(
    state: &AppState,
    headers: &HeaderMap,
    query: &PlayerQuery,
) -> Option<Arc<Tenant>> {
    query
        .brand_guid
        .as_deref()
        .and_then(|b| tenant_named(state, b))
        .or_else(|| {
            let t = presented_token(headers, query)?;
            tenant_named(state, &token::unverified_claims(&t).ok()?.tid)
        })
}

/// Checks the request's DRM token for `system` (or, without a token, that
/// the named tenant lets requests in without one).
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    query: &PlayerQuery,
    system: DrmSystem,
) -> Result<Grant, Refusal> {
    match presented_token(headers, query) {
        Some(jwt) => {
            let unverified = token::Unverified::parse(&jwt)?;
            let tenant =
                tenant_named(state, &unverified.claims().tid).ok_or(TokenError::BadSignature)?;
            if query.brand_guid.as_deref().is_some_and(|b| b != tenant.id) {
                return Err(TokenError::WrongTenant.into());
            }
            let keys = state
                .signers
                .keys_for_token(&*state.store, &tenant.id, unverified.key_version())
                .await?;
            let claims = unverified.verify(&keys, &tenant.id, token::now_ms())?;
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

/// Ends a request: the response, its log entry, its metrics and its log
/// line. The entry never holds a key, a token or a credential.
pub fn finish(
    state: &AppState,
    arrival: &Arrival,
    o: Outcome<'_>,
    result: Result<Response, Refusal>,
) -> Response {
    let (response, refusal) = match result {
        Ok(r) => (r, None),
        Err(refusal) => (refusal.response(), Some(refusal)),
    };
    let status = response.status().as_u16();
    let duration = arrival.started.elapsed();
    let response_length = http_body::Body::size_hint(response.body())
        .exact()
        .or_else(|| {
            response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
        })
        .unwrap_or(0);
    let tenant = o.tenant.unwrap_or("-");
    let ms = (duration.as_secs_f64() * 1e6).round() / 1e3;
    tracing::info!(
        tenant,
        system = o.system.map_or("-", DrmSystem::as_str),
        request = o.request_type.as_str(),
        status,
        code = refusal.as_ref().map_or("-", |r| r.code),
        kids = o.kids.len(),
        ms,
        "player request"
    );
    let endpoint = match o.request_type {
        RequestType::Certificate => "certificate",
        RequestType::Key => "hls-key",
        RequestType::Token => "drm-token",
        _ => "acquire-license",
    };
    state.metrics.record(endpoint, tenant, status, duration, 0);
    state
        .licence_metrics
        .record(tenant, o.system, o.request_type, status);
    if let (Some(writer), Some(tenant)) = (&state.log_writer, o.tenant) {
        writer.record(LogEntry {
            time_ms: arrival.time_ms,
            tenant: tenant.to_owned(),
            system: o.system,
            request_type: o.request_type,
            token_user_id: o.claims.and_then(|c| c.uid.clone()),
            token_content_id: o.claims.map(|c| c.sub.clone()),
            http_status: status,
            error_code: refusal.as_ref().map(|r| r.code.to_owned()),
            error_message: refusal.map(|r| r.message),
            ip: arrival.ip,
            user_agent: arrival.user_agent.clone(),
            payload_length: u32::try_from(o.payload_length).unwrap_or(u32::MAX),
            response_length: u32::try_from(response_length).unwrap_or(u32::MAX),
            duration_us: u32::try_from(duration.as_micros()).unwrap_or(u32::MAX),
            kids: o.kids,
            license_url: arrival.url.clone(),
        });
    }
    response
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

/// What a Widevine or PlayReady challenge says about itself (KIDs and,
/// for Widevine, renewal or release); a challenge that does not parse is
/// still forwarded, only its entry says less.
fn describe_challenge(system: DrmSystem, challenge: &[u8]) -> (RequestType, Vec<KeyId>) {
    use crate::drm::{playready, widevine};
    match system {
        DrmSystem::Widevine => match widevine::licence_request_info(challenge) {
            Ok(info) => {
                let t = match info.kind {
                    None => RequestType::Certificate,
                    Some(widevine::RequestKind::New) => RequestType::License,
                    Some(widevine::RequestKind::Renewal) => RequestType::Renewal,
                    Some(widevine::RequestKind::Release) => RequestType::Release,
                };
                (t, info.kids)
            }
            Err(_) => (RequestType::License, Vec::new()),
        },
        DrmSystem::PlayReady => (
            RequestType::License,
            playready::challenge_kids(challenge).unwrap_or_default(),
        ),
        _ => (RequestType::License, Vec::new()),
    }
}

/// `POST /acquire-license/{system}`
pub async fn acquire(
    State(state): State<Arc<AppState>>,
    Path(system): Path<String>,
    uri: Uri,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let arrival = Arrival::new(&state, &uri, &headers, &peer);
    let query = PlayerQuery::parse(uri.query());
    let mut o = Outcome {
        request_type: RequestType::License,
        system: DrmSystem::parse(&system).filter(|s| *s != DrmSystem::Aes128),
        tenant: None,
        claims: None,
        payload_length: 0,
        kids: Vec::new(),
    };
    let Some(system) = o.system else {
        let refusal = Refusal::new(
            StatusCode::NOT_FOUND,
            "unknown_system",
            "licences are for clearkey, widevine, playready or fairplay",
        );
        return finish(&state, &arrival, o, Err(refusal));
    };
    let challenge = match read_challenge(body).await {
        Ok(b) => b,
        Err(e) => return finish(&state, &arrival, o, Err(e)),
    };
    o.payload_length = challenge.len();
    let grant = match authorize(&state, &headers, &query, system).await {
        Ok(g) => g,
        Err(e) => {
            if system == DrmSystem::ClearKey {
                if let Ok(r) = parse_license_request_typed(&challenge) {
                    o.kids = r.kids;
                }
            } else {
                (o.request_type, o.kids) = describe_challenge(system, &challenge);
            }
            let claimed = claimed_tenant(&state, &headers, &query);
            o.tenant = claimed.as_ref().map(|t| t.id.as_str());
            return finish(&state, &arrival, o, Err(e));
        }
    };
    let result = match system {
        DrmSystem::ClearKey => clearkey_licence(&state, &grant, &challenge, &mut o.kids).await,
        _ => {
            (o.request_type, o.kids) = describe_challenge(system, &challenge);
            proxied_licence(&state, &grant, system, &headers, challenge).await
        }
    };
    o.tenant = Some(&grant.tenant.id);
    o.claims = grant.claims.as_ref();
    finish(&state, &arrival, o, result)
}

async fn clearkey_licence(
    state: &AppState,
    grant: &Grant,
    challenge: &[u8],
    kids: &mut Vec<KeyId>,
) -> Result<Response, Refusal> {
    let request = parse_license_request_typed(challenge)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    kids.clone_from(&request.kids);
    let asset = grant.claims.as_ref().map(|c| c.sub.as_str());
    let (json, _) = clearkey::licence(&*state.store, &grant.tenant.id, asset, &request)
        .await
        .map_err(key_error)?;
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
    uri: Uri,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let arrival = Arrival::new(&state, &uri, &headers, &peer);
    let query = PlayerQuery::parse(uri.query());
    let mut o = Outcome {
        request_type: RequestType::Key,
        system: Some(DrmSystem::Aes128),
        tenant: None,
        claims: None,
        payload_length: 0,
        kids: Vec::new(),
    };
    let kid = match KeyId::parse_uuid(&kid) {
        Ok(k) => k,
        Err(e) => {
            let refusal = Refusal::new(StatusCode::BAD_REQUEST, "bad_request", format!("kid: {e}"));
            return finish(&state, &arrival, o, Err(refusal));
        }
    };
    o.kids.push(kid);
    let grant = match authorize(&state, &headers, &query, DrmSystem::Aes128).await {
        Ok(g) => g,
        Err(e) => {
            let claimed = claimed_tenant(&state, &headers, &query);
            o.tenant = claimed.as_ref().map(|t| t.id.as_str());
            return finish(&state, &arrival, o, Err(e));
        }
    };
    let asset = grant.claims.as_ref().map(|c| c.sub.as_str());
    let result = clearkey::raw_key(&*state.store, &grant.tenant.id, &content_id, kid, asset)
        .await
        .map_err(key_error)
        .map(|key| {
            let mut r = (StatusCode::OK, key.expose().to_vec()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            no_store(r)
        });
    o.tenant = Some(&grant.tenant.id);
    o.claims = grant.claims.as_ref();
    finish(&state, &arrival, o, result)
}

/// `GET /license/v1/certificate/{system}`: the tenant's Widevine service
/// certificate or FairPlay application certificate, as configured. The
/// tenant is the one `brandGuid` names, or the token's.
pub async fn certificate(
    State(state): State<Arc<AppState>>,
    Path(system): Path<String>,
    uri: Uri,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let arrival = Arrival::new(&state, &uri, &headers, &peer);
    let query = PlayerQuery::parse(uri.query());
    let system = DrmSystem::parse(&system)
        .filter(|s| matches!(s, DrmSystem::Widevine | DrmSystem::FairPlay));
    let tenant = match (&query.brand_guid, presented_token(&headers, &query)) {
        (Some(b), _) => tenant_named(&state, b),
        (None, Some(t)) => token::unverified_claims(&t)
            .ok()
            .and_then(|c| tenant_named(&state, &c.tid)),
        (None, None) => None,
    };
    let result = (|| {
        let system = system.ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "unknown_system",
                "certificates are for widevine or fairplay",
            )
        })?;
        let tenant = tenant.as_ref().ok_or_else(|| {
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
        Ok(r)
    })();
    let o = Outcome {
        request_type: RequestType::Certificate,
        system,
        tenant: tenant.as_ref().map(|t| t.id.as_str()),
        claims: None,
        payload_length: 0,
        kids: Vec::new(),
    };
    finish(&state, &arrival, o, result)
}
