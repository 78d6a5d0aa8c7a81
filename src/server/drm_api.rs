//! The tenant's DRM management endpoints (shapes of the Cloud Video Kit DRM
//! API): `GET /drm/v1/token/{assetId}` issues a DRM token,
//! `GET /drm/v1/settings` describes the tenant's licence and KMS endpoints
//! and its token signing key, and
//! `POST /drm/v1/settings/signing-key/rotate` replaces that key, the old
//! one verifying tokens for a grace period. All take the tenant's API
//! credentials.

use super::auth::{authenticate_as, query_tenant, Principal};
use super::error::ApiError;
use super::AppState;
use crate::config::player::{certificate_url, license_url};
use crate::ids::ContentId;
use crate::licence::token::{self, Claims, Use};
use crate::licence::DrmSystem;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Principal, ApiError> {
    authenticate_as(&state.tenants, headers, query_tenant(query).as_deref())
}

fn store_failed(e: crate::keys::StoreError) -> ApiError {
    tracing::error!(error = %e, "key store failed on a DRM management request");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the key store is unavailable",
    )
}

fn private(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn bad(param: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        format!("{param}: {msg}"),
    )
}

/// Query parameters of `GET /drm/v1/token/{assetId}`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TokenParams {
    /// `userId`.
    pub user_id: Option<String>,
    /// `drmSystems=a,b` and/or repeated `drmSystem=`.
    pub systems: Vec<DrmSystem>,
    /// `expiresIn` (seconds).
    pub lifetime: Option<u64>,
}

impl TokenParams {
    /// Parses the query; a bad value is an error naming the parameter.
    pub fn parse(query: Option<&str>) -> Result<TokenParams, ApiError> {
        let mut p = TokenParams::default();
        for (k, v) in super::form::pairs(query.unwrap_or_default()) {
            match k.as_str() {
                "userId" => {
                    if v.len() > 256 || v.chars().any(char::is_control) {
                        return Err(bad("userId", "at most 256 printable characters"));
                    }
                    p.user_id = Some(v).filter(|u| !u.is_empty());
                }
                "drmSystems" | "drmSystem" | "drmSystems[]" => {
                    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let s = DrmSystem::parse(name).ok_or_else(|| {
                            bad(&k, format!("{name:?} is not clearkey, widevine, playready, fairplay or aes128"))
                        })?;
                        if !p.systems.contains(&s) {
                            p.systems.push(s);
                        }
                    }
                }
                "expiresIn" => {
                    p.lifetime = Some(
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad("expiresIn", "a positive number of seconds"))?,
                    );
                }
                "tenantId" => {}
                other => return Err(bad(other, "unknown parameter")),
            }
        }
        Ok(p)
    }
}

/// Issues a DRM token of `tenant` for `asset` (the CLI uses it too).
pub async fn issue_token(
    state: &AppState,
    tenant: &str,
    asset: &str,
    params: &TokenParams,
) -> Result<(String, Claims), ApiError> {
    ContentId::new(asset).map_err(|e| bad("assetId", e))?;
    let t = state
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .ok_or_else(|| bad("tenant", "unknown"))?;
    let a = &t.authorization;
    let lifetime = params.lifetime.unwrap_or(a.token_lifetime_secs);
    if lifetime > a.max_token_lifetime_secs {
        return Err(bad(
            "expiresIn",
            format!("at most {} seconds", a.max_token_lifetime_secs),
        ));
    }
    let keys = state
        .signers
        .keys(&*state.store, tenant)
        .await
        .map_err(store_failed)?;
    let key = keys
        .first()
        .ok_or_else(|| store_failed(crate::keys::StoreError::Corrupt("no signing key".into())))?;
    let now = token::now_secs();
    let claims = Claims {
        iss: "cpixd".into(),
        tid: tenant.to_owned(),
        sub: asset.to_owned(),
        uid: params.user_id.clone(),
        drm: params
            .systems
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        iat: now,
        exp: now.saturating_add(lifetime),
        typ: Use::Drm,
    };
    Ok((token::sign(&claims, key), claims))
}

/// `GET /drm/v1/token/{assetId}` → `{"token": "<JWT>"}`; logged like the
/// player requests (request type `Token`).
pub async fn token_for_asset(
    State(state): State<Arc<AppState>>,
    Path(asset): Path<String>,
    uri: axum::http::Uri,
    peer: super::auth::Peer,
    headers: HeaderMap,
) -> Response {
    let arrival = super::licence::Arrival::new(&state, &uri, &headers, &peer);
    let who = authenticated(&state, &headers, uri.query());
    let issued = match who.as_ref() {
        Err(e) => Err(e.clone()),
        Ok(who) => match TokenParams::parse(uri.query()) {
            Err(e) => Err(e),
            Ok(params) => issue_token(&state, &who.tenant.id, &asset, &params).await,
        },
    };
    let claims = issued.as_ref().ok().map(|(_, c)| c.clone());
    let result = issued
        .map(|(jwt, _)| private(Json(json!({ "token": jwt })).into_response()))
        .map_err(super::licence::Refusal::from);
    let outcome = super::licence::Outcome {
        request_type: crate::licence::log::RequestType::Token,
        system: None,
        tenant: who.as_ref().ok().map(|p| p.tenant.id.as_str()),
        claims: claims.as_ref(),
        payload_length: 0,
        kids: Vec::new(),
    };
    super::licence::finish(&state, &arrival, outcome, result)
}

/// The `licenseAcquisition.endpoints` of a tenant.
fn licence_endpoints(state: &AppState, tenant: &str) -> Vec<serde_json::Value> {
    let base = &state.config.public_base_url;
    [
        DrmSystem::Widevine,
        DrmSystem::FairPlay,
        DrmSystem::PlayReady,
        DrmSystem::ClearKey,
    ]
    .into_iter()
    .map(|s| {
        let mut e = json!({
            "licenseUrl": license_url(base, s.as_str(), tenant),
            "systemName": s.display_name(),
            "systemId": s.system_id().to_string(),
            "system": s.display_name(),
        });
        if matches!(s, DrmSystem::Widevine | DrmSystem::FairPlay) {
            e["certificateUrl"] = json!(certificate_url(base, s.as_str(), tenant));
        }
        e
    })
    .collect()
}

async fn authorization_block(
    state: &AppState,
    who: &Principal,
) -> Result<serde_json::Value, ApiError> {
    let keys = state
        .signers
        .keys(&*state.store, &who.tenant.id)
        .await
        .map_err(store_failed)?;
    let current = keys.first().map(|k| crate::b64::encode(&k.secret[..]));
    Ok(json!({
        "enabled": who.tenant.authorization.enabled,
        "signingKey": current,
        "signingAlgorithm": "HS256",
    }))
}

/// `GET /drm/v1/settings`
pub async fn settings(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result: Result<serde_json::Value, ApiError> = async {
        let who = authenticated(&state, &headers, q.as_deref())?;
        let t = &who.tenant;
        let base = &state.config.public_base_url;
        let kms = |path: &str| format!("{base}/kms/{path}?tenantId={}", t.id);
        let oauth = t.oauth_clients.first().map(|(id, _)| {
            json!({
                "clientId": id,
                "tokenUrl": format!("{base}/oauth/token"),
                "grantType": "client_credentials",
            })
        });
        Ok::<_, ApiError>(json!({
            "tenantId": t.id,
            "licenseAcquisition": {
                "authorization": authorization_block(&state, &who).await?,
                "endpoints": licence_endpoints(&state, &t.id),
            },
            "kms": {
                "endpoints": [
                    { "url": kms("cpix"), "protocol": "CPIX" },
                    { "url": kms("speke"), "protocol": "SPEKE" },
                    { "url": kms("speke2"), "protocol": "SPEKE 2" },
                    { "url": format!("{base}/kms/cpix-anevia/{}", t.id), "protocol": "Ateme/Anevia" },
                ],
                "basicAuth": t.basic.iter().map(|(login, _)| json!({ "login": login })).collect::<Vec<_>>(),
                "oAuth": oauth,
            },
        }))
    }
    .await;
    match result {
        Ok(v) => private(Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}

/// `POST /drm/v1/settings/signing-key/rotate[?graceSeconds=N]`: a new
/// signing key; tokens of the old one verify for the grace period (the
/// tenant's `authorization.rotation_grace_secs` by default).
pub async fn rotate_signing_key(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result: Result<serde_json::Value, ApiError> = async {
        let who = authenticated(&state, &headers, q.as_deref())?;
        let mut grace = who.tenant.authorization.rotation_grace_secs;
        for (k, v) in super::form::pairs(q.as_deref().unwrap_or_default()) {
            match k.as_str() {
                "graceSeconds" => {
                    grace = v
                        .parse()
                        .map_err(|_| bad("graceSeconds", "a number of seconds"))?
                }
                "tenantId" => {}
                _ => return Err(bad(&k, "unknown parameter")),
            }
        }
        let keys = state
            .signers
            .rotate(&*state.store, &who.tenant.id, Duration::from_secs(grace))
            .await
            .map_err(store_failed)?;
        tracing::info!(tenant = %who.tenant.id, version = keys.first().map_or(0, |k| k.version), grace, "DRM token signing key rotated");
        let mut block = authorization_block(&state, &who).await?;
        block["previousKeyValidUntil"] = json!(keys
            .get(1)
            .and_then(|k| k.retires_ms)
            .map(|ms| crate::clock::rfc3339(ms / 1000)));
        Ok(block)
    }
    .await;
    match result {
        Ok(v) => private(Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}
