//! The key inventory over HTTP: `GET /kms/v1/keys` lists a tenant's KIDs
//! with their metadata (never key bytes), paged, so licence servers and
//! operators learn which KIDs a packager used; `POST /kms/v1/keys/import`
//! stores the keys of a clear CPIX document under the binding rules, for
//! a tenant's admin API key only.

use super::error::ApiError;
use super::AppState;
use crate::ids::KeyId;
use crate::keys::StoreError;
use crate::portability::{self, ImportOutcome};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// Items per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn bad(param: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        format!("{param}: {msg}"),
    )
}

fn store_failed(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "key store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the key store is unavailable",
    )
}

fn no_store(r: Response) -> Response {
    let mut r = r;
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// `GET /kms/v1/keys[?contentId=C][&limit=N][&after=KID]`
pub async fn list(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result: Result<serde_json::Value, ApiError> = async {
        let who = super::kms::caller(&state, &headers, q.as_deref()).await?;
        let (mut content_id, mut limit, mut after) = (None, DEFAULT_LIMIT, None);
        for (k, v) in super::form::pairs(q.as_deref().unwrap_or_default()) {
            match k.as_str() {
                "contentId" => {
                    crate::ids::ContentId::new(&v).map_err(|e| bad("contentId", e))?;
                    content_id = Some(v);
                }
                "limit" => {
                    limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad("limit", format!("1 to {MAX_LIMIT}")))?;
                }
                "after" => after = Some(KeyId::parse_any(&v).map_err(|e| bad("after", e))?),
                "tenantId" => {}
                _ => return Err(bad(&k, "unknown parameter")),
            }
        }
        let tenant = &who.tenant.id;
        let page = state
            .store
            .list(tenant, content_id.as_deref(), after, limit)
            .await
            .map_err(store_failed)?;
        let next = (page.len() == limit)
            .then(|| page.last().map(|m| m.kid.to_string()))
            .flatten();
        let items: Vec<serde_json::Value> = page
            .iter()
            .map(|m| {
                json!({
                    "kid": m.kid.to_string(),
                    "contentId": m.content_id,
                    "protocol": m.protocol,
                    "scheme": m.scheme,
                    "firstIssued": crate::clock::rfc3339_millis(m.first_issued_ms),
                    "requester": m.requester,
                    "masterKeyVersion": m.master_key_version,
                    "hasIv": m.has_iv,
                })
            })
            .collect();
        Ok(json!({
            "tenantId": tenant,
            "contentId": content_id,
            "items": items,
            "next": next,
        }))
    }
    .await;
    match result {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}

/// `POST /kms/v1/keys/import[?contentId=C]` with a CPIX document whose keys
/// are `PlainValue`s. 200 when every KID is new or identical, 409 when any
/// conflicts (those are left as they were); the body lists each KID.
pub async fn import(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result: Result<(StatusCode, serde_json::Value), ApiError> = async {
        let who = super::kms::caller(&state, &headers, q.as_deref()).await?;
        if !who.admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "importing keys needs one of the tenant's admin API keys (admin_api_key_sha256)",
            ));
        }
        let mut content_id = None;
        for (k, v) in super::form::pairs(q.as_deref().unwrap_or_default()) {
            match k.as_str() {
                "contentId" => content_id = Some(v),
                "tenantId" => {}
                _ => return Err(bad(&k, "unknown parameter")),
            }
        }
        let limit = state.config.limits.max_body_bytes;
        let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the document is larger than {limit} bytes"),
            )
        })?;
        let (doc_cid, keys) = portability::read_document(&body, None).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_document", e.to_string())
        })?;
        let content_id = content_id.or(doc_cid).ok_or_else(|| {
            bad(
                "contentId",
                "the document has no contentId: name it with ?contentId=",
            )
        })?;
        crate::ids::ContentId::new(&content_id).map_err(|e| bad("contentId", e))?;
        let ring = state.keyring.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "this server cannot seal imported keys",
            )
        })?;
        let outcomes = portability::import(
            &*state.store,
            ring,
            &*state.rng,
            &who.tenant.id,
            &content_id,
            &who.requester,
            &keys,
        )
        .await
        .map_err(|e| match e {
            portability::PortError::Store(e) => store_failed(e),
            portability::PortError::Invalid(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_document", m)
            }
        })?;
        let conflicts = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, ImportOutcome::Conflict(_)))
            .count();
        tracing::info!(
            tenant = %who.tenant.id,
            content_id = %content_id,
            keys = outcomes.len(),
            conflicts,
            requester = %who.requester,
            "keys imported"
        );
        let results: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(kid, o)| {
                let mut v = json!({ "kid": kid.to_string(), "outcome": o.name() });
                if let ImportOutcome::Conflict(why) = o {
                    v["reason"] = json!(why);
                }
                v
            })
            .collect();
        let status = if conflicts > 0 {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        };
        Ok((
            status,
            json!({ "tenantId": who.tenant.id, "contentId": content_id, "results": results }),
        ))
    }
    .await;
    match result {
        Ok((status, v)) => no_store((status, Json(v)).into_response()),
        Err(e) => e.into_response(),
    }
}
