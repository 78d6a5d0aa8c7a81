//! Kinescope: a static workspace token sent as `Authorization: Bearer` to
//! both the API host and the upload host (raw-body uploads whose metadata
//! travels in `X-` headers, passed through as sent).

use super::auth::{bearer, StaticHeaders};
use super::settings::Fields;
use super::Setup;
use axum::http::header;
use std::sync::Arc;

/// Reads `[platforms.kinescope]`: `token` (or `token_file`,
/// `CPIXD_KINESCOPE_TOKEN`).
pub fn configure(f: &mut Fields) -> Option<Setup> {
    let token = f.required_secret("token")?;
    let value = bearer(&token)
        .map_err(|e| f.errors.push(format!("{}: {e}", f.path("token"))))
        .ok()?;
    Some(Setup::new(
        &[
            ("api", "https://api.kinescope.io"),
            ("upload", "https://uploader.kinescope.io"),
        ],
        Arc::new(StaticHeaders::new(vec![(header::AUTHORIZATION, value)])),
    ))
}
