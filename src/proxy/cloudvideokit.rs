//! Cloud Video Kit: `X-Api-Key` + `X-Tenant-Id` on every management call
//! (`https://{tenant_name}.api.videokit.cloud`); the watermark redirector
//! (`https://{tenant_name}.redir-wm.videokit.cloud`) authorises with the
//! caller's `userToken` query parameter, so it gets the tenant header only.
//! The DRM group (`/kms`, `/drm`, `/license`) is served by cpixd itself.

use super::auth::{secret_header, StaticHeaders};
use super::settings::Fields;
use super::Setup;
use axum::http::{HeaderName, HeaderValue};
use std::sync::Arc;

/// Reads `[platforms.cloudvideokit]`: `api_key` (or `api_key_file`,
/// `CPIXD_CLOUDVIDEOKIT_API_KEY`), `tenant_id` (the UUID sent as
/// `X-Tenant-Id`) and `tenant_name` (the host prefix; not needed when
/// `base_url` and `hosts.redirector` are given).
pub fn configure(f: &mut Fields) -> Option<Setup> {
    let key = f.required_secret("api_key");
    let tenant_id = f.string("tenant_id");
    let tenant_name = f.string("tenant_name");
    if tenant_id.as_deref().is_none_or(str::is_empty) {
        f.errors.push(format!(
            "{}: required (the tenant UUID sent as X-Tenant-Id)",
            f.path("tenant_id")
        ));
    }
    if let Some(n) = &tenant_name {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            f.errors.push(format!(
                "{}: {n:?} is not a host name label",
                f.path("tenant_name")
            ));
        }
    }
    let api_key = secret_header(key?.expose())
        .map_err(|e| f.errors.push(format!("{}: {e}", f.path("api_key"))))
        .ok()?;
    let tenant_id = HeaderValue::from_str(&tenant_id?)
        .map_err(|_| {
            f.errors
                .push(format!("{}: not a header value", f.path("tenant_id")))
        })
        .ok()?;
    let hosts: Vec<(&str, String)> = match &tenant_name {
        Some(n) => vec![
            ("api", format!("https://{n}.api.videokit.cloud")),
            ("redirector", format!("https://{n}.redir-wm.videokit.cloud")),
        ],
        None => Vec::new(),
    };
    let hosts: Vec<(&str, &str)> = hosts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let api_key_header = HeaderName::from_static("x-api-key");
    let credentials = StaticHeaders::new(vec![
        (HeaderName::from_static("x-tenant-id"), tenant_id),
        (api_key_header.clone(), api_key),
    ])
    .except_on("redirector", api_key_header);
    Some(Setup::new(&hosts, Arc::new(credentials)))
}
