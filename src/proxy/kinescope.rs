//! Kinescope: a static workspace token sent as `Authorization: Bearer` to
//! both the API host and the upload host (raw-body uploads whose metadata
//! travels in `X-` headers, passed through as sent).

use super::auth::{bearer, BoxFuture, Credentials, Grant, Target};
use super::client::Upstream;
use super::settings::Fields;
use super::{GatewayError, Setup};
use crate::crypto::SecretString;
use axum::http::{header, HeaderMap};
use std::sync::Arc;

/// Reads `[platforms.kinescope]`: `token` (or `token_file`,
/// `CPIXD_KINESCOPE_TOKEN`).
pub fn configure(f: &mut Fields) -> Option<Setup> {
    let token = f.required_secret("token")?;
    Some(Setup::new(
        &[
            ("api", "https://api.kinescope.io"),
            ("upload", "https://uploader.kinescope.io"),
        ],
        Arc::new(Static { token }),
    ))
}

struct Static {
    token: SecretString,
}

impl Credentials for Static {
    fn apply<'a>(
        &'a self,
        _up: &'a Upstream,
        _target: Target<'a>,
        headers: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<Grant, GatewayError>> {
        Box::pin(async move {
            headers.insert(header::AUTHORIZATION, bearer(&self.token)?);
            Ok(None)
        })
    }
}
