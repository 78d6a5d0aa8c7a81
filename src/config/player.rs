//! Settings of the player side: the public base URL every signalled URL is
//! built from, CORS for the licence, key and certificate endpoints, and per
//! tenant the DRM-token authorization, the OAuth2 clients of the KMS and
//! the default signalling URLs that point at cpixd's own endpoints.

use crate::drm::{ClearKeySettings, DrmSettings, HlsAes128Settings};
use serde::Deserialize;

/// `[cors]`: which origins may call the licence, key and certificate
/// endpoints from a browser.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Allowed origins (`https://player.example.com`), or `*` for any.
    pub allowed_origins: Vec<String>,
}

impl Default for CorsConfig {
    /// Any origin: DRM tokens, not origins, guard these endpoints.
    fn default() -> Self {
        CorsConfig {
            allowed_origins: vec!["*".into()],
        }
    }
}

/// `[tenant.authorization]`: DRM tokens on licence and key requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// Licence and key requests need a DRM token (off: development only).
    pub enabled: bool,
    /// Default lifetime of a token from `/drm/v1/token`.
    pub token_lifetime_secs: u64,
    /// Longest lifetime a caller may ask for.
    pub max_token_lifetime_secs: u64,
    /// How long tokens signed with the previous key still verify after a
    /// signing-key rotation.
    pub rotation_grace_secs: u64,
}

impl Default for AuthorizationConfig {
    fn default() -> Self {
        AuthorizationConfig {
            enabled: true,
            token_lifetime_secs: 24 * 3600,
            max_token_lifetime_secs: 30 * 24 * 3600,
            rotation_grace_secs: 24 * 3600,
        }
    }
}

/// `[[tenant.oauth_client]]`: an OAuth2 client (client-credentials grant)
/// whose Bearer tokens open the KMS endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct OAuthClientConfig {
    /// `client_id`.
    pub client_id: String,
    /// Hex SHA-256 of the client secret (`cpixd hash-secret`).
    pub client_secret_sha256: String,
}

/// `[licence_log]`: the record of player requests behind the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct LicenceLogConfig {
    /// Record player requests (`licences.redb` in the data directory).
    pub enabled: bool,
    /// Entries older than this many days are pruned.
    pub retention_days: u64,
    /// At most this many entries per tenant (the oldest go first).
    pub max_rows_per_tenant: u64,
    /// Longest time range one statistics query may span, in days.
    pub max_query_days: u64,
}

impl Default for LicenceLogConfig {
    fn default() -> Self {
        LicenceLogConfig {
            enabled: true,
            retention_days: 90,
            max_rows_per_tenant: 50_000_000,
            max_query_days: 93,
        }
    }
}

/// Checks `public_base_url`: an absolute http(s) URL without query,
/// fragment or trailing slash.
pub fn check_public_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host".into());
    }
    if url.ends_with('/') {
        return Err("must not end with '/'".into());
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '"' | '{' | '}'))
    {
        return Err("must not hold a query, a fragment, quotes, braces or spaces".into());
    }
    Ok(())
}

/// The licence URL of `system` for `tenant` under `base`.
pub fn license_url(base: &str, system: &str, tenant: &str) -> String {
    format!("{base}/acquire-license/{system}?brandGuid={tenant}")
}

/// The certificate URL of `system` for `tenant` under `base`.
pub fn certificate_url(base: &str, system: &str, tenant: &str) -> String {
    format!("{base}/license/v1/certificate/{system}?brandGuid={tenant}")
}

/// The HLS AES-128 key URL template for `tenant` under `base`.
pub fn hls_key_template(base: &str, tenant: &str) -> String {
    format!("{base}/hls/v1/key/{{content_id}}/{{kid}}?brandGuid={tenant}")
}

/// Points the tenant's signalling at cpixd: the settings left at their
/// defaults get cpixd's own licence and key URLs under `base`, and
/// `{public_base_url}` and `{tenant}` are filled in wherever a URL setting
/// uses them. PlayReady's `LA_URL` is added when the tenant has a PlayReady
/// licence server behind cpixd and no `la_url` of its own.
pub fn resolve_signalling(
    drm: &mut DrmSettings,
    base: &str,
    tenant: &str,
    playready_proxied: bool,
) {
    let fill = |s: &str| {
        s.replace("{public_base_url}", base)
            .replace("{tenant}", tenant)
    };
    if drm.clearkey == ClearKeySettings::default() {
        drm.clearkey.license_url_template = license_url(base, "clearkey", tenant);
    }
    if drm.hls_aes128 == HlsAes128Settings::default() {
        drm.hls_aes128.key_uri_template = hls_key_template(base, tenant);
    }
    drm.clearkey.license_url_template = fill(&drm.clearkey.license_url_template);
    drm.hls_aes128.key_uri_template = fill(&drm.hls_aes128.key_uri_template);
    drm.fairplay.key_uri_template = fill(&drm.fairplay.key_uri_template);
    match &drm.playready.la_url {
        Some(u) => drm.playready.la_url = Some(fill(u)),
        None if playready_proxied => {
            drm.playready.la_url = Some(license_url(base, "playready", tenant))
        }
        None => {}
    }
    if let Some(u) = &drm.playready.lui_url {
        drm.playready.lui_url = Some(fill(u));
    }
}

/// Moves every signalled URL that starts with `old` (the derived base of a
/// listener on port 0) to `new`, the base of the port actually bound.
pub fn rebase_signalling(drm: &mut DrmSettings, old: &str, new: &str) {
    let move_url = |u: &mut String| {
        if let Some(rest) = u.strip_prefix(old) {
            if rest.starts_with('/') {
                *u = format!("{new}{rest}");
            }
        }
    };
    move_url(&mut drm.clearkey.license_url_template);
    move_url(&mut drm.hls_aes128.key_uri_template);
    move_url(&mut drm.fairplay.key_uri_template);
    drm.playready.la_url.iter_mut().for_each(move_url);
    drm.playready.lui_url.iter_mut().for_each(move_url);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for ok in [
            "https://drm.example.com",
            "http://127.0.0.1:8080",
            "https://x.example/drm",
        ] {
            assert!(check_public_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "drm.example.com",
            "https://",
            "https://x/",
            "https://x?a=1",
            "ftp://x",
            "https://x y",
        ] {
            assert!(check_public_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rebase_moves_only_urls_under_the_old_base() {
        let mut d = DrmSettings::default();
        d.fairplay.key_uri_template = "skd://{kid}".into();
        resolve_signalling(&mut d, "http://127.0.0.1:0", "acme", true);
        rebase_signalling(&mut d, "http://127.0.0.1:0", "http://127.0.0.1:4711");
        assert_eq!(
            d.clearkey.license_url_template,
            "http://127.0.0.1:4711/acquire-license/clearkey?brandGuid=acme"
        );
        assert!(d
            .hls_aes128
            .key_uri_template
            .starts_with("http://127.0.0.1:4711/hls/v1/key/"));
        assert_eq!(
            d.playready.la_url.as_deref(),
            Some("http://127.0.0.1:4711/acquire-license/playready?brandGuid=acme")
        );
        assert_eq!(d.fairplay.key_uri_template, "skd://{kid}");
    }

    #[test]
    fn defaults_point_at_cpixd_and_settings_win() {
        let mut d = DrmSettings::default();
        resolve_signalling(&mut d, "https://drm.example.com", "acme", false);
        assert_eq!(
            d.clearkey.license_url_template,
            "https://drm.example.com/acquire-license/clearkey?brandGuid=acme"
        );
        assert_eq!(
            d.hls_aes128.key_uri_template,
            "https://drm.example.com/hls/v1/key/{content_id}/{kid}?brandGuid=acme"
        );
        assert_eq!(d.playready.la_url, None);
        let mut d = DrmSettings::default();
        resolve_signalling(&mut d, "https://d.example", "acme", true);
        assert_eq!(
            d.playready.la_url.as_deref(),
            Some("https://d.example/acquire-license/playready?brandGuid=acme")
        );
        let mut d = DrmSettings::default();
        d.clearkey.license_url_template = "https://other.example/lic".into();
        d.fairplay.key_uri_template = "skd://{tenant}/{kid}".into();
        d.playready.la_url = Some("{public_base_url}/pr".into());
        resolve_signalling(&mut d, "https://d.example", "acme", true);
        assert_eq!(d.clearkey.license_url_template, "https://other.example/lic");
        assert_eq!(d.fairplay.key_uri_template, "skd://acme/{kid}");
        assert_eq!(d.playready.la_url.as_deref(), Some("https://d.example/pr"));
    }
}
