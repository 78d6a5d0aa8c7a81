//! The gateway's HTTP face: `/proxy/{platform}/{path…}` authenticates the
//! caller like every other endpoint, hands the request to
//! [`crate::proxy::Gateway`] and maps its failures to JSON errors that say
//! which side failed; `GET /proxy` and `GET /proxy/{platform}` list the
//! platforms and their documented operations.

use super::auth::authenticate;
use super::error::ApiError;
use super::AppState;
use crate::proxy::{ForwardRequest, GatewayError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use std::time::Instant;

fn error_response(e: &GatewayError) -> Response {
    let mut r = ApiError::new(e.status(), e.code(), e.to_string()).into_response();
    r.headers_mut()
        .insert("x-cpixd-error-side", HeaderValue::from_static(e.side()));
    r
}

/// `scheme://host` as the caller reached cpixd.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    let scheme = if state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| state.config.listen.to_string(), str::to_owned);
    format!("{scheme}://{host}")
}

/// `ANY /proxy/{platform}/{path…}`
pub async fn forward(
    State(s): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let principal = match authenticate(&s.tenants, &headers) {
        Ok(p) => p,
        Err(e) => {
            s.metrics
                .record("proxy", "-", e.status.as_u16(), started.elapsed(), 0);
            return e.into_response();
        }
    };
    // The raw path, so that percent-encoding reaches the upstream as sent.
    let after = uri.path().strip_prefix("/proxy/").unwrap_or_default();
    let (platform, rest) = after.split_once('/').unwrap_or((after, ""));
    let req = ForwardRequest {
        method,
        path: format!("/{rest}"),
        query: uri.query().map(str::to_owned),
        public_base: public_base(&s, &headers),
        headers,
        body,
        tenant: principal.tenant.id.clone(),
    };
    let resp = match s.gateway.forward(platform, req).await {
        Ok(r) => r,
        Err(e) => {
            // The message may quote the caller's path, which can hold
            // tokens (api.video upload tokens): only the code is logged.
            if e.side() != "upstream" {
                tracing::info!(platform, tenant = %principal.tenant.id, code = e.code(), status = e.status().as_u16(), "gateway refused the call");
            }
            error_response(&e)
        }
    };
    s.metrics.record(
        "proxy",
        &principal.tenant.id,
        resp.status().as_u16(),
        started.elapsed(),
        0,
    );
    resp
}

/// `GET /proxy`: every platform and whether it is configured.
pub async fn platforms(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authenticate(&s.tenants, &headers) {
        return e.into_response();
    }
    let list: Vec<serde_json::Value> = crate::proxy::routes::catalogues()
        .iter()
        .map(|c| {
            serde_json::json!({
                "platform": c.platform,
                "configured": s.gateway.platform(c.platform).is_ok(),
                "operations": c.operations.len(),
            })
        })
        .collect();
    Json(serde_json::json!({ "platforms": list })).into_response()
}

/// `GET /proxy/{platform}`: the platform's documented operations.
pub async fn catalogue(
    State(s): State<Arc<AppState>>,
    Path(platform): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authenticate(&s.tenants, &headers) {
        return e.into_response();
    }
    match s.gateway.describe(&platform) {
        Ok(v) => Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}
