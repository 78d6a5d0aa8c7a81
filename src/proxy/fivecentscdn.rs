//! 5centsCDN: an account API key in `X-API-Key` on every call. Its API
//! knows only GET and POST; deletes and updates are POSTs whose JSON body
//! carries `_METHOD`, which the gateway passes through untouched.

use super::auth::{secret_header, StaticHeaders};
use super::settings::Fields;
use super::Setup;
use axum::http::HeaderName;
use std::sync::Arc;

/// Reads `[platforms.5centscdn]`: `api_key` (or `api_key_file`,
/// `CPIXD_5CENTSCDN_API_KEY`).
pub fn configure(f: &mut Fields) -> Option<Setup> {
    let key = f.required_secret("api_key")?;
    let value = secret_header(key.expose())
        .map_err(|e| f.errors.push(format!("{}: {e}", f.path("api_key"))))
        .ok()?;
    Some(Setup::new(
        &[("api", "https://api.5centscdn.com/v2")],
        Arc::new(StaticHeaders::new(vec![(
            HeaderName::from_static("x-api-key"),
            value,
        )])),
    ))
}
