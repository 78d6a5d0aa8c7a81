//! CORS for the endpoints players call from another origin (licences,
//! keys, certificates, DRM tokens): preflights are answered here, and
//! answers carry `Access-Control-Allow-Origin` for the allowed origins
//! (`[cors] allowed_origins`; any by default, since DRM tokens guard these
//! endpoints, not origins).

use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Headers a player may send.
const ALLOW_HEADERS: &str = "authorization, content-type, soapaction, x-tenant-id, x-api-key";
/// Headers a player may read.
const EXPOSE_HEADERS: &str = "content-length, content-type";

/// The `Access-Control-Allow-Origin` value for `origin`, if allowed.
fn allowed(state: &AppState, origin: &HeaderValue) -> Option<HeaderValue> {
    let list = &state.config.cors.allowed_origins;
    if list.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let o = origin.to_str().ok()?;
    list.iter()
        .any(|a| a.eq_ignore_ascii_case(o))
        .then(|| origin.clone())
}

/// The middleware.
pub async fn layer(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allow = origin.as_ref().and_then(|o| allowed(&state, o));
    if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        if let Some(a) = allow {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, a);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
        }
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return r;
    }
    let mut r = next.run(req).await;
    if let Some(a) = allow {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, a);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}
