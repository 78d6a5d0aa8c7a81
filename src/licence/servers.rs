//! The licence servers behind cpixd (`[tenant.license.<system>]`): for
//! Widevine, PlayReady and FairPlay, where a player's challenge is
//! forwarded unchanged (after cpixd checked its DRM token), with the
//! headers or credentials the server needs; and the certificates players
//! fetch first (the Widevine service certificate, the FairPlay application
//! certificate). Every value may come from the file, a `<key>_file`, or
//! `CPIXD_LICENSE_<TENANT>_<SYSTEM>_<KEY>`.

use super::DrmSystem;
use crate::config::Config;
use crate::crypto::SecretString;
use crate::proxy::client::{SendError, Upstream};
use crate::proxy::settings::Fields;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, Uri};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One system's licence server and certificate.
#[derive(Debug, Clone, Default)]
pub struct LicenceServer {
    /// Where challenges go; `None` when only a certificate is configured.
    pub url: Option<Uri>,
    /// Headers sent with every challenge (static ones, then the secret
    /// `Authorization`).
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The certificate players fetch (bytes as configured).
    pub certificate: Option<Vec<u8>>,
}

/// Every tenant's licence servers.
#[derive(Debug, Default)]
pub struct LicenceServers {
    by_tenant: HashMap<String, BTreeMap<DrmSystem, LicenceServer>>,
    secrets: Vec<SecretString>,
}

/// The environment name of a tenant id (`acme-eu` → `ACME_EU`).
fn env_name(tenant: &str, system: DrmSystem) -> String {
    let t: String = tenant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("LICENSE_{t}_{}", system.as_str().to_ascii_uppercase())
}

/// An absolute http(s) URL (a query is allowed: licence servers take one).
fn licence_url(v: &str) -> Result<Uri, String> {
    let ok = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    match v.parse::<Uri>() {
        Ok(u) if ok => Ok(u),
        _ => Err(format!("{v:?} is not an http(s) URL")),
    }
}

impl LicenceServers {
    /// Reads `[tenant.license.*]` of every tenant; each problem comes back
    /// with its key path.
    pub fn for_config(config: &Config) -> Result<LicenceServers, Vec<String>> {
        let mut errors = Vec::new();
        let mut out = LicenceServers::default();
        for (i, t) in config.tenants.iter().enumerate() {
            let Some(table) = &t.license else { continue };
            let mut servers = BTreeMap::new();
            for (name, value) in table {
                let path = format!("tenant[{i}].license.{name}");
                let system = match DrmSystem::parse(name) {
                    Some(s) if DrmSystem::PROXIED.contains(&s) => s,
                    _ => {
                        errors.push(format!(
                            "{path}: licence servers are for widevine, playready or fairplay"
                        ));
                        continue;
                    }
                };
                let toml::Value::Table(tbl) = value else {
                    errors.push(format!("{path}: must be a table"));
                    continue;
                };
                let env = env_name(&t.id, system);
                let mut f = Fields::new(&path, Some(&env), tbl, &config.env);
                let mut server = LicenceServer::default();
                if let Some(u) = f.string("url") {
                    match licence_url(&u) {
                        Ok(u) => server.url = Some(u),
                        Err(e) => f.errors.push(format!("{path}.url: {e}")),
                    }
                }
                for (k, v) in f.string_map("headers") {
                    match (
                        HeaderName::try_from(k.as_str()),
                        HeaderValue::try_from(v.as_str()),
                    ) {
                        (Ok(n), Ok(v)) => server.headers.push((n, v)),
                        _ => f
                            .errors
                            .push(format!("{path}.headers.{k}: not a valid header")),
                    }
                }
                if let Some(auth) = f.secret("authorization") {
                    match HeaderValue::try_from(auth.expose()) {
                        Ok(mut v) => {
                            v.set_sensitive(true);
                            server.headers.push((header::AUTHORIZATION, v));
                        }
                        Err(_) => f
                            .errors
                            .push(format!("{path}.authorization: not a valid header value")),
                    }
                }
                if let Some(file) = f.string("certificate_file") {
                    match std::fs::read(&file) {
                        Ok(bytes) if !bytes.is_empty() => server.certificate = Some(bytes),
                        Ok(_) => f
                            .errors
                            .push(format!("{path}.certificate_file: {file} is empty")),
                        Err(e) => f
                            .errors
                            .push(format!("{path}.certificate_file: {file}: {e}")),
                    }
                }
                if server.url.is_none() && server.certificate.is_none() {
                    f.errors
                        .push(format!("{path}: give url, certificate_file or both"));
                }
                out.secrets.extend(f.secrets());
                errors.extend(f.finish());
                servers.insert(system, server);
            }
            out.by_tenant.insert(t.id.clone(), servers);
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The tenant's server for `system`.
    pub fn get(&self, tenant: &str, system: DrmSystem) -> Option<&LicenceServer> {
        self.by_tenant.get(tenant)?.get(&system)
    }

    /// Configured secrets, to keep out of logs.
    pub fn secrets(&self) -> &[SecretString] {
        &self.secrets
    }
}

/// The setting a missing licence server or certificate is configured by.
pub fn setting_name(system: DrmSystem, what: &str) -> String {
    format!("[tenant.license.{}] {what}", system.as_str())
}

/// Request headers passed on with a challenge: its media type and the
/// player's own SOAP action (PlayReady). Credentials never pass.
const FORWARDED: [HeaderName; 2] = [header::CONTENT_TYPE, HeaderName::from_static("soapaction")];

/// Response headers passed back: the licence's media type.
const RETURNED: [HeaderName; 2] = [header::CONTENT_TYPE, header::CONTENT_LENGTH];

/// Forwards a challenge unchanged to `server` and returns its answer
/// unchanged (status, media type and body).
pub async fn forward(
    upstream: &Upstream,
    server: &LicenceServer,
    uri: &Uri,
    request_headers: &HeaderMap,
    challenge: bytes::Bytes,
    timeout: Duration,
) -> Result<Response<Body>, SendError> {
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        if let Some(v) = request_headers.get(&name) {
            headers.insert(name, v.clone());
        }
    }
    for (n, v) in &server.headers {
        headers.insert(n.clone(), v.clone());
    }
    let resp = upstream
        .send_once(
            Method::POST,
            uri.clone(),
            headers,
            Body::from(challenge),
            timeout,
        )
        .await?;
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    for name in RETURNED {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_and_urls() {
        assert_eq!(
            env_name("acme-eu.1", DrmSystem::Widevine),
            "LICENSE_ACME_EU_1_WIDEVINE"
        );
        assert!(licence_url("https://lic.example/wv?provider=x").is_ok());
        for bad in ["lic.example", "ftp://x", "https://", "https:///x"] {
            assert!(licence_url(bad).is_err(), "{bad}");
        }
    }
}
