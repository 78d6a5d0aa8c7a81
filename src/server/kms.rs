//! The key-management endpoints (paths as in the Cloud Video Kit DRM API):
//! SPEKE 1.0, SPEKE 2.x, CPIX, the version-detecting `copyProtection`, the
//! Ateme/Anevia GET and the SPEKE 1.0 heartbeat. Each request is
//! authenticated, bounded, parsed and validated before the store is asked
//! for keys, so a refused request writes nothing.

use super::auth::{authenticate_anevia, authenticate_as, client_ip, query_tenant, Peer, Principal};
use super::cache::{Cached, ResponseCache};
use super::error::{header_text, plain, ApiError};
use super::AppState;
use crate::config::Tenant;
use crate::cpix::xml::{Element, Ns};
use crate::cpix::{ContentKey, Document, DrmSystem, List, Signal};
use crate::crypto::x509::CertCache;
use crate::crypto::SecretBytes;
use crate::delivery::MacLayout;
use crate::ids::{ContentId, KeyId, SystemId};
use crate::keys::{IssueBatch, KeySpec, StoreError};
use crate::speke::{
    self, FillContext, IssuedKey, KeySourceError, SpekeError, SpekeRequest, SpekeVersion,
};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

/// A KMS endpoint (label of its metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /kms/v1/speke`
    Speke,
    /// `POST /kms/v1/speke2`
    Speke2,
    /// `POST /kms/v1/cpix`
    Cpix,
    /// `POST /kms/v1/copyProtection`
    CopyProtection,
    /// `GET /kms/v1/cpix-anevia/{brandGuid}/{kid}`
    Anevia,
}

impl Endpoint {
    /// Metric label.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Speke => "speke",
            Endpoint::Speke2 => "speke2",
            Endpoint::Cpix => "cpix",
            Endpoint::CopyProtection => "copyProtection",
            Endpoint::Anevia => "cpix-anevia",
        }
    }
}

const SPEKE_VERSION: &str = "x-speke-version";

/// How a request ended, for the response, the metrics and the log.
struct Outcome {
    status: StatusCode,
    response: Response,
    keys: usize,
    /// Keys this request created (0 when every key existed).
    created: usize,
    content_id: Option<String>,
    detail: Option<String>,
}

fn speke_error(err: SpekeError, v2: bool, version_header: Option<&str>) -> Outcome {
    let status = StatusCode::from_u16(err.status(v2)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = plain(status, err.body());
    add_speke_headers(&mut response, v2, version_header);
    let detail = err
        .detail()
        .map(|d| format!("{err}: {d}"))
        .or_else(|| Some(err.to_string()));
    if status.is_client_error() {
        if let Some(d) = err.detail() {
            response
                .headers_mut()
                .insert("x-cpixd-error-detail", header_text(&d));
        }
    }
    Outcome {
        status,
        response,
        keys: 0,
        created: 0,
        content_id: None,
        detail,
    }
}

fn api_error(err: ApiError) -> Outcome {
    Outcome {
        status: err.status,
        detail: Some(err.message.clone()),
        response: err.into_response(),
        keys: 0,
        created: 0,
        content_id: None,
    }
}

fn add_speke_headers(resp: &mut Response, v2: bool, version_header: Option<&str>) {
    let h = resp.headers_mut();
    let agent = HeaderValue::from_static(speke::USER_AGENT);
    if v2 {
        h.insert("x-speke-user-agent", agent);
        if let Some(v) = version_header {
            h.insert("x-speke-version", header_text(v));
        }
    } else {
        h.insert("speke-user-agent", agent);
    }
}

/// Reads the body up to the configured limit (413 beyond it).
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let limit = state.config.limits.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("cannot read the body: {e}"),
            )
        }
    })
}

/// Accepts an XML media type, or none at all.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let xml = essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml");
    if xml {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/xml, not {essence:?}"),
        ))
    }
}

fn to_store_specs(requests: &[speke::KeyRequest]) -> Vec<KeySpec> {
    requests
        .iter()
        .map(|r| KeySpec {
            kid: r.kid,
            scheme: r.scheme.map(|s| s.fourcc().to_owned()),
            request_iv: r.request_iv,
            wants_iv: r.wants_iv,
        })
        .collect()
}

fn store_error(e: StoreError) -> SpekeError {
    SpekeError::Keys(match e {
        StoreError::Conflict {
            kid,
            existing,
            requested,
        } => KeySourceError::Conflict {
            kid,
            existing,
            requested,
        },
        other => KeySourceError::Unavailable(other.to_string()),
    })
}

/// A request answered with keys.
struct IssuedResponse {
    xml: String,
    keys: usize,
    created: usize,
    content_id: String,
}

/// Why a validated request got no keys.
enum IssueError {
    Speke(SpekeError),
    Api(ApiError),
}

impl From<SpekeError> for IssueError {
    fn from(e: SpekeError) -> Self {
        IssueError::Speke(e)
    }
}

impl From<ApiError> for IssueError {
    fn from(e: ApiError) -> Self {
        IssueError::Api(e)
    }
}

/// The fill context of an endpoint: the generic CPIX endpoint speaks
/// DASH-IF, the SPEKE ones speak AWS.
fn fill_context<'a>(state: &'a AppState, ep: Endpoint, tenant: &'a Tenant) -> FillContext<'a> {
    let (cert_policy, mac_layout) = match ep {
        Endpoint::Cpix => (state.config.delivery.cpix, MacLayout::DashIf),
        _ => (state.config.delivery.speke, MacLayout::Aws),
    };
    FillContext {
        settings: &tenant.drm,
        rng: &*state.rng,
        cert_policy,
        mac_layout,
        certs: CertCache::shared(),
    }
}

/// Gets the keys of a validated request from the store and writes the
/// response document; `heavy` requests are filled off the async workers.
async fn issue(
    state: &Arc<AppState>,
    ep: Endpoint,
    who: &Principal,
    mut req: SpekeRequest,
    heavy: bool,
) -> Result<IssuedResponse, IssueError> {
    let requests = speke::key_requests(&mut req, &fill_context(state, ep, &who.tenant))?;
    let batch = IssueBatch {
        tenant: who.tenant.id.clone(),
        content_id: req.content_id.to_string(),
        protocol: req.version.protocol().as_str().to_owned(),
        requester: who.requester.clone(),
        specs: to_store_specs(&requests),
    };
    let stored = state
        .store
        .get_or_create(batch)
        .await
        .map_err(store_error)?;
    let created = stored.created;
    let issued: Vec<IssuedKey> = stored
        .keys
        .into_iter()
        .map(|s| IssuedKey {
            kid: s.meta.kid,
            key: s.key,
            iv: s.iv,
        })
        .collect();
    let (state2, tenant) = (state.clone(), who.tenant.clone());
    let written = cpu(state, heavy, move || {
        let ctx = fill_context(&state2, ep, &tenant);
        speke::fill_with(&mut req, &requests, &issued, &ctx)?;
        Ok::<_, SpekeError>(IssuedResponse {
            xml: speke::write_response(&req),
            keys: issued.len(),
            created,
            content_id: req.content_id.to_string(),
        })
    })
    .await??;
    Ok(written)
}

/// How an endpoint picks the profile of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// Known from the endpoint and the header.
    Fixed(SpekeVersion),
    /// `/speke2` without `X-Speke-Version`: from the document's
    /// `CPIX@version` ([`SpekeVersion::for_unlabelled_speke2`]).
    ByDocument,
}

/// The profile an endpoint answers a request under: `/speke` is SPEKE 1.0,
/// `/speke2` follows the header (2.0 or 2.1) or, without one, the document
/// (CPIX 2.0–2.2 generic, otherwise SPEKE 2.0), `/copyProtection` follows
/// the header (none = 1.0), and `/cpix` is generic CPIX unless a SPEKE
/// version header is sent.
fn profile_for(ep: Endpoint, header: Option<&str>) -> Result<Profile, SpekeError> {
    match (ep, header) {
        (Endpoint::Speke, None) => Ok(Profile::Fixed(SpekeVersion::V1_0)),
        (Endpoint::Speke, Some(h)) => match SpekeVersion::from_header(Some(h))? {
            SpekeVersion::V1_0 => Ok(Profile::Fixed(SpekeVersion::V1_0)),
            _ => Err(SpekeError::BadRequest(
                "this endpoint speaks SPEKE 1.0; send SPEKE 2 requests to /kms/v1/speke2 or /kms/v1/copyProtection".into(),
            )),
        },
        (Endpoint::Speke2, None) => Ok(Profile::ByDocument),
        (Endpoint::Cpix, None) => Ok(Profile::Fixed(SpekeVersion::Cpix)),
        (_, h) => SpekeVersion::from_header(h).map(Profile::Fixed),
    }
}

/// Bodies above this size are parsed and filled on the blocking pool, a
/// few at a time, so that a large document never holds an async worker
/// (and with it `/healthz` and every other request) for long.
const HEAVY_BODY_BYTES: usize = 64 << 10;

/// Runs `f` inline for ordinary requests and on the blocking pool, under
/// the heavy-work permits, for large ones.
async fn cpu<T: Send + 'static>(
    state: &AppState,
    heavy: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if !heavy {
        return Ok(f());
    }
    let busy = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is shutting down",
        )
    };
    let _permit = state.heavy_work.acquire().await.map_err(|_| busy())?;
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("request task failed: {e}"),
        )
    })
}

async fn speke_request(
    state: &Arc<AppState>,
    ep: Endpoint,
    who: &Principal,
    headers: &HeaderMap,
    body: Body,
) -> Outcome {
    let version_header = headers
        .get(SPEKE_VERSION)
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    let vh = version_header.as_deref();
    // SPEKE 2 endpoints answer refusals with 422 and the SPEKE 2 headers.
    let v2_endpoint = vh.is_some() || ep == Endpoint::Speke2;
    let profile = match profile_for(ep, vh) {
        Ok(p) => p,
        Err(e) => return speke_error(e, v2_endpoint, vh),
    };
    let v2_hint = match profile {
        Profile::Fixed(v) => v.is_v2(),
        Profile::ByDocument => true,
    };
    if let Err(e) = check_content_type(headers) {
        return api_error(e);
    }
    let body = match read_body(state, headers, body).await {
        Ok(b) => b,
        Err(e) => return api_error(e),
    };
    let cache_key = ResponseCache::key(&who.tenant.id, ep.name(), vh, &body);
    if let Some(hit) = state.responses.get(&cache_key) {
        return Outcome {
            status: StatusCode::OK,
            response: xml_ok(hit.body_bytes(), hit.v2, hit.version.as_deref()),
            keys: hit.keys,
            created: 0,
            content_id: Some(hit.content_id),
            detail: None,
        };
    }
    let heavy = body.len() > HEAVY_BODY_BYTES;
    let limits = state.xml_limits;
    let parsed = cpu(state, heavy, move || match profile {
        Profile::Fixed(v) => speke::parse_request(&body, v, &limits),
        Profile::ByDocument => speke::parse_unlabelled_speke2(&body, &limits),
    })
    .await;
    let req = match parsed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return speke_error(e, v2_hint, vh),
        Err(e) => return api_error(e),
    };
    // Refusals keep the endpoint's status family; the SPEKE 2 headers (and
    // the echoed version) go with SPEKE 2 answers.
    let v2 = req.version.is_v2();
    let status_v2 = v2 || v2_endpoint;
    let echo: Option<String> = if v2 {
        Some(vh.map_or_else(|| req.version.as_str().to_owned(), str::to_owned))
    } else {
        None
    };
    let cacheable = req.doc.recipients().is_empty();
    match issue(state, ep, who, req, heavy).await {
        Ok(issued) => {
            let body = if cacheable {
                let cached = Cached {
                    body: Arc::new(SecretBytes::new(issued.xml.into_bytes())),
                    keys: issued.keys,
                    content_id: issued.content_id.clone(),
                    v2: status_v2,
                    version: echo.clone(),
                };
                let body = cached.body_bytes();
                state.responses.put(cache_key, cached);
                body
            } else {
                issued.xml.into_bytes().into()
            };
            let response = xml_ok(body, status_v2, echo.as_deref());
            Outcome {
                status: StatusCode::OK,
                response,
                keys: issued.keys,
                created: issued.created,
                content_id: Some(issued.content_id),
                detail: None,
            }
        }
        Err(IssueError::Speke(e)) => speke_error(e, status_v2, echo.as_deref()),
        Err(IssueError::Api(e)) => api_error(e),
    }
}

/// A 200 with an XML body and the SPEKE headers.
fn xml_ok(body: bytes::Bytes, v2: bool, version: Option<&str>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    add_speke_headers(&mut response, v2, version);
    response
}

/// Records metrics and one log line (never bodies or keys).
fn finish(state: &AppState, ep: Endpoint, tenant: &str, started: Instant, o: Outcome) -> Response {
    let elapsed = started.elapsed();
    state
        .metrics
        .record(ep.name(), tenant, o.status.as_u16(), elapsed, o.keys);
    // Milliseconds to the microsecond: `0.09`, not `0.08988900000000001`.
    let ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    let cid = o.content_id.as_deref().unwrap_or("-");
    if o.status.is_server_error() {
        tracing::error!(
            endpoint = ep.name(),
            tenant,
            status = o.status.as_u16(),
            ms,
            detail = o.detail.as_deref().unwrap_or(""),
            "request failed"
        );
    } else if o.status.is_client_error() {
        tracing::info!(
            endpoint = ep.name(),
            tenant,
            status = o.status.as_u16(),
            ms,
            detail = o.detail.as_deref().unwrap_or(""),
            "request refused"
        );
    } else if o.created > 0 {
        tracing::info!(
            endpoint = ep.name(),
            tenant,
            status = o.status.as_u16(),
            ms,
            content_id = cid,
            keys = o.keys,
            created = o.created,
            "keys issued"
        );
    } else {
        tracing::info!(
            endpoint = ep.name(),
            tenant,
            status = o.status.as_u16(),
            ms,
            content_id = cid,
            keys = o.keys,
            "keys served"
        );
    }
    o.response
}

/// Runs an authenticated KMS request within the request timeout, then
/// records and logs it.
async fn with_auth<F, Fut>(
    state: Arc<AppState>,
    ep: Endpoint,
    who: Result<Principal, ApiError>,
    f: F,
) -> Response
where
    F: FnOnce(Arc<AppState>, Principal) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let started = Instant::now();
    let who = match who {
        Ok(p) => p,
        Err(e) => return finish(&state, ep, "-", started, api_error(e)),
    };
    let tenant = who.tenant.id.clone();
    let timeout = std::time::Duration::from_secs(state.config.limits.request_timeout_secs);
    let outcome = match tokio::time::timeout(timeout, f(state.clone(), who)).await {
        Ok(o) => o,
        Err(_) => api_error(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
        )),
    };
    finish(&state, ep, &tenant, started, outcome)
}

/// Who calls a KMS endpoint: an OAuth access token (`Authorization:
/// Bearer`), else an API key or Basic user, for the tenant the request
/// names (header or `?tenantId=`).
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Principal, ApiError> {
    let named = query_tenant(query);
    match super::oauth::kms_principal(state, headers).await {
        Some(bearer) => bearer.and_then(|p| super::auth::check_named(p, headers, named.as_deref())),
        None => authenticate_as(&state.tenants, headers, named.as_deref()),
    }
}

/// `POST` handler shared by the four SPEKE/CPIX endpoints.
pub async fn post(
    state: Arc<AppState>,
    ep: Endpoint,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let who = caller(&state, &headers, query.as_deref()).await;
    with_auth(state, ep, who, move |state, who| async move {
        speke_request(&state, ep, &who, &headers, body).await
    })
    .await
}

/// `POST /kms/v1/speke`
pub async fn speke_v1(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    b: Body,
) -> Response {
    post(s, Endpoint::Speke, q, h, b).await
}

/// `POST /kms/v1/speke2`
pub async fn speke_v2(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    b: Body,
) -> Response {
    post(s, Endpoint::Speke2, q, h, b).await
}

/// `POST /kms/v1/cpix`
pub async fn cpix(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    b: Body,
) -> Response {
    post(s, Endpoint::Cpix, q, h, b).await
}

/// `POST /kms/v1/copyProtection`
pub async fn copy_protection(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    b: Body,
) -> Response {
    post(s, Endpoint::CopyProtection, q, h, b).await
}

/// The SPEKE 1.0 request an Anevia GET stands for: one key, Widevine and
/// PlayReady PSSH, FairPlay key URI.
fn anevia_document(brand: &str, kid: KeyId) -> Document {
    let mut wv = DrmSystem::new(kid, SystemId::WIDEVINE);
    wv.pssh = Some(Signal::default());
    let mut pr = DrmSystem::new(kid, SystemId::PLAYREADY);
    pr.pssh = Some(Signal::default());
    let mut fp = DrmSystem::new(kid, SystemId::FAIRPLAY);
    fp.uri_ext_x_key = Some(Signal::default());
    for name in ["KeyFormat", "KeyFormatVersions"] {
        fp.extensions.push(Element::new(Ns::Speke, name));
    }
    Document {
        attributes: vec![crate::cpix::xml::Attribute::new("id", brand)],
        content_keys: Some(List::new(vec![ContentKey::new(kid)])),
        drm_systems: Some(List::new(vec![wv, pr, fp])),
        ..Document::default()
    }
}

/// `GET /kms/v1/cpix-anevia/{brandGuid}/{kid}`: the key of `kid` under the
/// content id `brandGuid`, as a SPEKE 1.0 response. Ateme/Anevia origins
/// that cannot send credentials are let in by address where the tenant
/// allows it ([`authenticate_anevia`]).
pub async fn anevia(
    State(state): State<Arc<AppState>>,
    Path((brand, kid)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let who = authenticate_anevia(
        &state.tenants,
        &headers,
        query_tenant(query.as_deref()).as_deref(),
        client_ip(&state.config.trusted_proxies, &headers, &peer),
    );
    with_auth(state, Endpoint::Anevia, who, move |state, who| async move {
        let bad = |m: String| speke_error(SpekeError::BadRequest(m), false, None);
        let kid = match KeyId::parse_uuid(&kid) {
            Ok(k) => k,
            Err(e) => return bad(format!("kid: {e}")),
        };
        let content_id = match ContentId::new(&brand) {
            Ok(c) => c,
            Err(e) => return bad(format!("brandGuid: {e}")),
        };
        let req = SpekeRequest {
            version: SpekeVersion::V1_0,
            doc: anevia_document(&brand, kid),
            content_id,
            scheme: None,
            recipients: Vec::new(),
        };
        match issue(&state, Endpoint::Anevia, &who, req, false).await {
            Ok(issued) => {
                let mut response = (StatusCode::OK, issued.xml).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/xml; charset=utf-8"),
                );
                Outcome {
                    status: StatusCode::OK,
                    response,
                    keys: issued.keys,
                    created: issued.created,
                    content_id: Some(issued.content_id),
                    detail: None,
                }
            }
            Err(IssueError::Speke(e)) => speke_error(e, false, None),
            Err(IssueError::Api(e)) => api_error(e),
        }
    })
    .await
}

/// `GET /kms/v1/heartbeat` (SPEKE 1.0): 200 while the server runs.
pub async fn heartbeat() -> Response {
    let mut r = plain(StatusCode::OK, "OK".into());
    r.headers_mut().insert(
        "speke-user-agent",
        HeaderValue::from_static(speke::USER_AGENT),
    );
    r
}
