//! OAuth2 client credentials (RFC 6749 §4.4) for encoders that cannot send
//! custom headers: `POST /oauth/token` exchanges a tenant's client id and
//! secret (form body or HTTP Basic, secrets stored as hashes) for a
//! one-hour Bearer token, which opens the KMS endpoints. The token is an
//! HS256 JWT under the tenant's signing key, so every node verifies it.

use super::auth::Principal;
use super::AppState;
use crate::config::Tenant;
use crate::crypto::{ct_eq, sha256};
use crate::licence::token::{self, Claims, Use};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECS: u64 = 3600;

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        json!({ "error": error, "error_description": description }).to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"cpixd oauth\""),
        );
    }
    r
}

/// The form fields of the request body.
fn form(body: &[u8]) -> Vec<(String, String)> {
    super::form::pairs(&String::from_utf8_lossy(body)).collect()
}

/// Finds the tenant whose client matches, comparing every client's id and
/// secret hash so the time taken does not say which matched.
fn client_tenant<'a>(
    tenants: &'a [Arc<Tenant>],
    id: &str,
    secret: &str,
) -> Option<&'a Arc<Tenant>> {
    let digest = sha256(secret.as_bytes());
    let mut found = None;
    for t in tenants {
        for (cid, hash) in &t.oauth_clients {
            if ct_eq(cid.as_bytes(), id.as_bytes()) & ct_eq(hash, &digest) && found.is_none() {
                found = Some(t);
            }
        }
    }
    found
}

/// `POST /oauth/token`
pub async fn token(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let Ok(body) = axum::body::to_bytes(body, 16 << 10).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is too large",
        );
    };
    let fields = form(&body);
    let field = |name: &str| {
        let mut it = fields.iter().filter(|(k, _)| k == name);
        match (it.next(), it.next()) {
            (Some((_, v)), None) => Ok(Some(v.clone())),
            (None, _) => Ok(None),
            _ => Err(()),
        }
    };
    let (Ok(grant), Ok(form_id), Ok(form_secret)) = (
        field("grant_type"),
        field("client_id"),
        field("client_secret"),
    ) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a parameter is repeated",
        );
    };
    match grant.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
    }
    let basic = super::auth::basic_credentials_of(&headers);
    let (id, secret) = match (basic, form_id, form_secret) {
        (Some(b), None, None) => b,
        (None, Some(i), Some(s)) => (i, s),
        (Some(_), _, _) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "authenticate the client one way: HTTP Basic or the form",
            )
        }
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client_id and client_secret are required",
            )
        }
    };
    let Some(tenant) = client_tenant(&state.tenants, &id, &secret) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
    let keys = match state.signers.keys(&*state.store, &tenant.id).await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "key store failed on an OAuth token request");
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again",
            );
        }
    };
    let Some(key) = keys.first() else {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again",
        );
    };
    let now = token::now_secs();
    let claims = Claims {
        iss: "cpixd".into(),
        tid: tenant.id.clone(),
        sub: id.clone(),
        uid: None,
        drm: Vec::new(),
        iat: now,
        exp: now + ACCESS_TOKEN_SECS,
        typ: Use::Kms,
    };
    tracing::info!(tenant = %tenant.id, client = %id, "OAuth access token issued");
    let mut r = (
        StatusCode::OK,
        json!({
            "access_token": token::sign(&claims, key),
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECS,
        })
        .to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The Bearer token of a KMS request, if it sends one: the principal of a
/// valid access token, or the reason it is refused (401).
pub async fn kms_principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<Result<Principal, super::error::ApiError>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, jwt) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let refuse =
        |m: String| super::error::ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    Some(
        async {
            let unverified = token::Unverified::parse(jwt).map_err(|e| refuse(e.to_string()))?;
            let tenant = state
                .tenants
                .iter()
                .find(|t| t.id == unverified.claims().tid)
                .ok_or_else(|| refuse("invalid access token".into()))?;
            let keys = state
                .signers
                .keys_for_token(&*state.store, &tenant.id, unverified.key_version())
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "key store failed verifying an access token");
                    super::error::ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "the key store is unavailable",
                    )
                })?;
            let claims = unverified
                .verify(&keys, &tenant.id, token::now_ms())
                .map_err(|e| refuse(format!("invalid access token: {e}")))?;
            if claims.typ != Use::Kms {
                return Err(refuse("not an access token of the KMS".into()));
            }
            Ok(Principal {
                tenant: tenant.clone(),
                requester: format!("oauth:{}", claims.sub),
                admin: false,
            })
        }
        .await,
    )
}
