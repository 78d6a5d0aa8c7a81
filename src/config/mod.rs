//! Configuration: the TOML file (`cpixd.example.toml` documents every key),
//! `CPIXD_*` environment overrides, command-line overrides, validation that
//! reports every problem with its key path, and the embedded default used
//! when no file is given (data in `./cpixd-data`, a generated master key and
//! one tenant `default` with a generated API key).

pub mod access;
pub mod player;
pub mod store;

use crate::crypto::x509::CertPolicy;
use crate::crypto::{sha256_hex, MasterKey, OsRandom, SecureRandom};
use crate::drm::{self, DrmSettings};
use crate::keys::Keyring;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./cpixd-data";
/// Default request body limit (1 MiB).
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// The configuration file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on, `host:port`.
    pub listen: Option<String>,
    /// Directory of the embedded key store.
    pub data_dir: Option<PathBuf>,
    /// File with the master key(s).
    pub master_key_file: Option<PathBuf>,
    /// HTTPS: certificate chain and private key (PEM).
    pub tls: Option<TlsConfig>,
    /// Request limits.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Tenants and their credentials.
    pub tenant: Vec<TenantConfig>,
    /// Recipient certificate policies for encrypted key delivery.
    pub delivery: DeliveryConfig,
    /// The platform gateway's shared client (`[gateway]`).
    pub gateway: Option<toml::Table>,
    /// Upstream video platforms (`[platforms.<name>]`).
    pub platforms: Option<toml::Table>,
    /// Who may read `/metrics`.
    pub metrics: access::MetricsConfig,
    /// How players and packagers reach this server (`https://drm.example.com`):
    /// every URL cpixd signals is built from it.
    pub public_base_url: Option<String>,
    /// Origins allowed to call the licence, key and certificate endpoints.
    pub cors: player::CorsConfig,
    /// The licence request log.
    pub licence_log: player::LicenceLogConfig,
    /// Proxies in front of cpixd whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// `[store]`: the backend of keys and licence log.
    pub store: store::StoreFileConfig,
}

/// `[delivery.speke]` and `[delivery.cpix]`: which recipient certificates
/// each kind of endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// SPEKE endpoints (AWS requires 2048-bit RSA).
    pub speke: CertPolicy,
    /// The generic CPIX endpoint (CPIX recommends 3072-bit RSA).
    pub cpix: CertPolicy,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            speke: CertPolicy::SPEKE,
            cpix: CertPolicy::CPIX,
        }
    }
}

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted (bytes); larger gets 413.
    pub max_body_bytes: usize,
    /// Deepest XML element nesting accepted.
    pub max_xml_depth: usize,
    /// Most XML elements accepted in one document.
    pub max_xml_elements: usize,
    /// Longest a request may take, in seconds.
    pub request_timeout_secs: u64,
    /// Memory for answers to repeated requests (0 disables the cache).
    pub response_cache_bytes: usize,
    /// Most client connections open at once; at the cap, the connection
    /// idle the longest is closed for a new one.
    pub max_connections: usize,
    /// Longest a connection may take to send a request head, in seconds.
    pub header_read_timeout_secs: u64,
    /// Longest a keep-alive connection may stay idle between requests, in
    /// seconds.
    pub idle_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let xml = crate::cpix::Limits::default();
        LimitsConfig {
            max_body_bytes: DEFAULT_MAX_BODY,
            max_xml_depth: xml.max_depth,
            max_xml_elements: xml.max_elements,
            request_timeout_secs: 30,
            response_cache_bytes: 16 << 20,
            max_connections: 10_000,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Filter in `tracing` syntax, e.g. `info` or `cpixd=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// `[[tenant]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    /// The `X-Tenant-Id` value.
    pub id: String,
    /// Hex SHA-256 of each API key (`cpixd hash-secret` prints it).
    pub api_key_sha256: Vec<String>,
    /// Hex SHA-256 of each admin API key: a tenant credential that may also
    /// import keys (`POST /kms/v1/keys/import`).
    pub admin_api_key_sha256: Vec<String>,
    /// HTTP Basic users.
    pub basic: Vec<BasicUser>,
    /// DRM signalling settings of this tenant.
    pub drm: DrmSettings,
    /// The Ateme/Anevia GET without credentials.
    pub anevia: access::AneviaConfig,
    /// DRM tokens on licence and key requests.
    pub authorization: player::AuthorizationConfig,
    /// Licence servers cpixd proxies to (`[tenant.license.<system>]`),
    /// read by the licence module.
    pub license: Option<toml::Table>,
    /// OAuth2 clients of the KMS endpoints.
    pub oauth_client: Vec<player::OAuthClientConfig>,
}

/// One HTTP Basic user.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    /// User name.
    pub user: String,
    /// Hex SHA-256 of the password.
    pub password_sha256: String,
}

/// A validated tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The tenant id.
    pub id: String,
    /// SHA-256 of each accepted API key.
    pub api_key_hashes: Vec<[u8; 32]>,
    /// SHA-256 of each admin API key.
    pub admin_key_hashes: Vec<[u8; 32]>,
    /// (user, SHA-256 of the password).
    pub basic: Vec<(String, [u8; 32])>,
    /// DRM settings.
    pub drm: DrmSettings,
    /// Client addresses whose Ateme/Anevia GETs need no credentials.
    pub anevia_allow_from: Vec<access::IpRange>,
    /// DRM-token authorization of licence and key requests.
    pub authorization: player::AuthorizationConfig,
    /// `[tenant.license]` as written (licence servers behind cpixd).
    pub license: Option<toml::Table>,
    /// (client id, SHA-256 of the secret) of each OAuth2 client.
    pub oauth_clients: Vec<(String, [u8; 32])>,
}

/// The configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Master key file (absent when the key comes from the environment).
    pub master_key_file: Option<PathBuf>,
    /// TLS files.
    pub tls: Option<TlsConfig>,
    /// Limits.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Tenants.
    pub tenants: Vec<Tenant>,
    /// Recipient certificate policies.
    pub delivery: DeliveryConfig,
    /// The gateway's shared client settings, as written (read by `proxy`).
    pub gateway: Option<toml::Table>,
    /// Platform settings, as written (read by `proxy`).
    pub platforms: Option<toml::Table>,
    /// The `CPIXD_*` environment the configuration was loaded with (the
    /// gateway reads `CPIXD_<PLATFORM>_*` from it).
    pub env: BTreeMap<String, String>,
    /// True when running on the embedded default (no configuration file).
    pub embedded_default: bool,
    /// Who may read `/metrics`.
    pub metrics: access::MetricsAccess,
    /// The base of every URL cpixd signals and advertises.
    pub public_base_url: String,
    /// True when `public_base_url` was configured (not derived from `listen`).
    pub public_base_url_set: bool,
    /// CORS of the player-facing endpoints.
    pub cors: player::CorsConfig,
    /// The licence request log.
    pub licence_log: player::LicenceLogConfig,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<access::IpRange>,
    /// The backend of keys and licence log.
    pub store: store::StoreBackend,
}

/// Every problem found in a configuration, each with its key path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

/// Overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

/// Parses TOML text into the file structure.
pub fn parse_file(text: &str) -> Result<FileConfig, ConfigErrors> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().to_owned();
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].lines().count().max(1);
                format!("line {line}: ")
            })
            .unwrap_or_default();
        ConfigErrors(vec![format!("{at}{msg}")])
    })
}

/// Applies `CPIXD_*` environment variables (from `env`) over the file.
pub fn apply_env(file: &mut FileConfig, env: &BTreeMap<String, String>) -> Vec<String> {
    let mut errors = Vec::new();
    store::apply_env(&mut file.store, env);
    if let Some(v) = env.get("CPIXD_LISTEN") {
        file.listen = Some(v.clone());
    }
    if let Some(v) = env.get("CPIXD_DATA_DIR") {
        file.data_dir = Some(v.into());
    }
    if let Some(v) = env.get("CPIXD_MASTER_KEY_FILE") {
        file.master_key_file = Some(v.into());
    }
    match (
        env.get("CPIXD_TLS_CERT_FILE"),
        env.get("CPIXD_TLS_KEY_FILE"),
    ) {
        (Some(c), Some(k)) => {
            file.tls = Some(TlsConfig {
                cert_file: c.into(),
                key_file: k.into(),
            })
        }
        (None, None) => {}
        _ => errors.push("CPIXD_TLS_CERT_FILE and CPIXD_TLS_KEY_FILE go together".to_owned()),
    }
    if let Some(v) = env.get("CPIXD_MAX_BODY_BYTES") {
        match v.parse() {
            Ok(n) => file.limits.max_body_bytes = n,
            Err(_) => errors.push(format!("CPIXD_MAX_BODY_BYTES: not a number: {v:?}")),
        }
    }
    if let Some(v) = env.get("CPIXD_LOG") {
        file.log.level = v.clone();
    }
    if let Some(v) = env.get("CPIXD_LOG_FORMAT") {
        file.log.format = v.clone();
    }
    if let Some(v) = env.get("CPIXD_METRICS_LISTEN") {
        file.metrics.listen = Some(v.clone());
    }
    if let Some(v) = env.get("CPIXD_METRICS_TOKEN_SHA256") {
        file.metrics.token_sha256 = Some(v.clone());
    }
    if let Some(v) = env.get("CPIXD_PUBLIC_BASE_URL") {
        file.public_base_url = Some(v.clone());
    }
    errors
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

/// A tenant id: 1–64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_tenant_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_drm(path: &str, d: &DrmSettings, errors: &mut Vec<String>) {
    let probe = drm::TemplateVars {
        kid: crate::ids::KeyId::from_bytes([0; 16]),
        content_id: "probe",
        iv: Some(&[0; 16]),
    };
    if let Err(e) = drm::playready::validate_settings(&d.playready) {
        errors.push(format!("{path}.playready: {e}"));
    }
    if let Err(e) = drm::fairplay::key_uri(&d.fairplay, &probe) {
        errors.push(format!("{path}.fairplay.key_uri_template: {e}"));
    }
    if let Err(e) = drm::clearkey::license_url(&d.clearkey, &probe) {
        errors.push(format!("{path}.clearkey.license_url_template: {e}"));
    }
    if let Err(e) = drm::hls::aes128_key_uri(&d.hls_aes128, &probe) {
        errors.push(format!("{path}.hls_aes128.key_uri_template: {e}"));
    }
}

/// Validates the file (after environment and flag overrides).
pub fn validate(file: FileConfig, over: &Overrides) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let listen_text = over
        .listen
        .clone()
        .or(file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        errors.push(format!("listen: not host:port: {listen_text:?}"));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let data_dir = over
        .data_dir
        .clone()
        .or(file.data_dir.clone())
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    if let Some(tls) = &file.tls {
        for (name, p) in [
            ("tls.cert_file", &tls.cert_file),
            ("tls.key_file", &tls.key_file),
        ] {
            if !p.is_file() {
                errors.push(format!("{name}: {} is not a readable file", p.display()));
            }
        }
    }
    let l = &file.limits;
    if l.max_body_bytes == 0 {
        errors.push("limits.max_body_bytes: must be positive".into());
    }
    if l.max_xml_depth < 8 {
        errors.push("limits.max_xml_depth: at least 8 (CPIX nests 7 deep)".into());
    }
    if l.max_xml_elements == 0 {
        errors.push("limits.max_xml_elements: must be positive".into());
    }
    for (name, v) in [
        ("request_timeout_secs", l.request_timeout_secs),
        ("header_read_timeout_secs", l.header_read_timeout_secs),
        ("idle_timeout_secs", l.idle_timeout_secs),
    ] {
        if v == 0 {
            errors.push(format!("limits.{name}: must be positive"));
        }
    }
    if l.max_connections < 16 {
        errors.push("limits.max_connections: at least 16".into());
    }
    let metrics = validate_metrics(&file.metrics, listen, &mut errors);
    let public_base_url = match &file.public_base_url {
        Some(u) => {
            if let Err(e) = player::check_public_base_url(u) {
                errors.push(format!("public_base_url: {u:?} {e}"));
            }
            u.clone()
        }
        None => default_public_base_url(listen, file.tls.is_some()),
    };
    let mut trusted_proxies = Vec::new();
    for (i, r) in file.trusted_proxies.iter().enumerate() {
        match access::IpRange::parse(r) {
            Ok(r) => trusted_proxies.push(r),
            Err(e) => errors.push(format!("trusted_proxies[{i}]: {e}")),
        }
    }
    let store = store::validate(&file.store, &mut errors);
    let ll = &file.licence_log;
    if ll.retention_days == 0 || ll.max_rows_per_tenant == 0 || ll.max_query_days == 0 {
        errors.push(
            "licence_log: retention_days, max_rows_per_tenant and max_query_days must be positive"
                .into(),
        );
    }
    for (i, o) in file.cors.allowed_origins.iter().enumerate() {
        if o != "*" && player::check_public_base_url(o).is_err() {
            errors.push(format!(
                "cors.allowed_origins[{i}]: {o:?} is not \"*\" or an origin like https://player.example.com"
            ));
        }
    }
    for (name, p) in [
        ("delivery.speke", &file.delivery.speke),
        ("delivery.cpix", &file.delivery.cpix),
    ] {
        if p.min_rsa_bits < 1024 {
            errors.push(format!("{name}.min_rsa_bits: at least 1024"));
        }
    }
    if !matches!(file.log.format.as_str(), "text" | "json") {
        errors.push(format!(
            "log.format: {:?} is not text or json",
            file.log.format
        ));
    }
    if tracing_subscriber::EnvFilter::try_new(&file.log.level).is_err() {
        errors.push(format!(
            "log.level: {:?} is not a valid filter",
            file.log.level
        ));
    }
    let mut tenants = Vec::with_capacity(file.tenant.len());
    for (i, t) in file.tenant.iter().enumerate() {
        let path = format!("tenant[{i}]");
        if !valid_tenant_id(&t.id) {
            errors.push(format!(
                "{path}.id: {:?} must be 1-64 of A-Z a-z 0-9 . _ -",
                t.id
            ));
        }
        if file.tenant[..i].iter().any(|o| o.id == t.id) {
            errors.push(format!("{path}.id: {:?} is defined twice", t.id));
        }
        let mut api_key_hashes = Vec::new();
        for (j, h) in t.api_key_sha256.iter().enumerate() {
            match parse_hash(h) {
                Some(h) => api_key_hashes.push(h),
                None => errors.push(format!(
                    "{path}.api_key_sha256[{j}]: not 64 hex digits (use `cpixd hash-secret`)"
                )),
            }
        }
        let mut admin_key_hashes = Vec::new();
        for (j, h) in t.admin_api_key_sha256.iter().enumerate() {
            match parse_hash(h) {
                Some(h) => admin_key_hashes.push(h),
                None => errors.push(format!(
                    "{path}.admin_api_key_sha256[{j}]: not 64 hex digits (use `cpixd hash-secret`)"
                )),
            }
        }
        let mut basic = Vec::new();
        for (j, b) in t.basic.iter().enumerate() {
            if b.user.is_empty() || b.user.contains(':') {
                errors.push(format!("{path}.basic[{j}].user: empty or contains ':'"));
            }
            match parse_hash(&b.password_sha256) {
                Some(h) => basic.push((b.user.clone(), h)),
                None => errors.push(format!(
                    "{path}.basic[{j}].password_sha256: not 64 hex digits (use `cpixd hash-secret`)"
                )),
            }
        }
        let mut anevia_allow_from = Vec::new();
        for (j, r) in t.anevia.allow_from.iter().enumerate() {
            match access::IpRange::parse(r) {
                Ok(r) => anevia_allow_from.push(r),
                Err(e) => errors.push(format!("{path}.anevia.allow_from[{j}]: {e}")),
            }
        }
        let mut oauth_clients = Vec::new();
        for (j, c) in t.oauth_client.iter().enumerate() {
            if c.client_id.trim().is_empty() || c.client_id.contains(':') {
                errors.push(format!(
                    "{path}.oauth_client[{j}].client_id: empty or contains ':'"
                ));
            }
            match parse_hash(&c.client_secret_sha256) {
                Some(h) => oauth_clients.push((c.client_id.clone(), h)),
                None => errors.push(format!(
                    "{path}.oauth_client[{j}].client_secret_sha256: not 64 hex digits (use `cpixd hash-secret`)"
                )),
            }
        }
        if t.api_key_sha256.is_empty()
            && t.admin_api_key_sha256.is_empty()
            && t.basic.is_empty()
            && t.anevia.allow_from.is_empty()
            && t.oauth_client.is_empty()
        {
            errors.push(format!(
                "{path}: no credentials (api_key_sha256, basic, oauth_client or anevia.allow_from)"
            ));
        }
        let a = &t.authorization;
        if a.token_lifetime_secs == 0 || a.token_lifetime_secs > a.max_token_lifetime_secs {
            errors.push(format!(
                "{path}.authorization.token_lifetime_secs: must be positive and at most max_token_lifetime_secs"
            ));
        }
        let mut drm = t.drm.clone();
        let playready_proxied = t
            .license
            .as_ref()
            .is_some_and(|l| l.contains_key("playready"));
        player::resolve_signalling(&mut drm, &public_base_url, &t.id, playready_proxied);
        check_drm(&format!("{path}.drm"), &drm, &mut errors);
        tenants.push(Tenant {
            id: t.id.clone(),
            api_key_hashes,
            admin_key_hashes,
            basic,
            drm,
            anevia_allow_from,
            authorization: t.authorization,
            license: t.license.clone(),
            oauth_clients,
        });
    }
    let all_clients: Vec<&str> = file
        .tenant
        .iter()
        .flat_map(|t| t.oauth_client.iter().map(|c| c.client_id.as_str()))
        .collect();
    for (i, c) in all_clients.iter().enumerate() {
        if all_clients[..i].contains(c) {
            errors.push(format!("oauth client {c:?} is defined twice"));
        }
    }
    let all_users: Vec<&str> = file
        .tenant
        .iter()
        .flat_map(|t| t.basic.iter().map(|b| b.user.as_str()))
        .collect();
    for (i, u) in all_users.iter().enumerate() {
        if all_users[..i].contains(u) {
            errors.push(format!("basic user {u:?} is defined in two tenants"));
        }
    }
    let all_keys: Vec<&[u8; 32]> = tenants
        .iter()
        .flat_map(|t| t.api_key_hashes.iter().chain(&t.admin_key_hashes))
        .collect();
    for (i, k) in all_keys.iter().enumerate() {
        if all_keys[..i].contains(k) {
            errors.push("an api_key_sha256 is listed twice (keys must be unique)".into());
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Config {
        listen,
        master_key_file: file
            .master_key_file
            .clone()
            .or_else(|| Some(data_dir.join("master.key"))),
        data_dir,
        tls: file.tls,
        limits: file.limits,
        log: file.log,
        tenants,
        delivery: file.delivery,
        gateway: file.gateway,
        platforms: file.platforms,
        env: BTreeMap::new(),
        embedded_default: false,
        metrics,
        public_base_url_set: file.public_base_url.is_some(),
        public_base_url,
        cors: file.cors,
        licence_log: file.licence_log,
        trusted_proxies,
        store,
    })
}

impl Config {
    /// With no `public_base_url` and a listener on port 0, the signalled URLs
    /// follow the port the listener actually got.
    pub fn follow_bound_address(&mut self, bound: SocketAddr) {
        if self.public_base_url_set || self.listen.port() != 0 {
            return;
        }
        let new = default_public_base_url(
            SocketAddr::new(self.listen.ip(), bound.port()),
            self.tls.is_some(),
        );
        for t in &mut self.tenants {
            player::rebase_signalling(&mut t.drm, &self.public_base_url, &new);
        }
        self.public_base_url = new;
    }
}

/// `http(s)://LISTEN` when `public_base_url` is not set; an unspecified
/// listen address (0.0.0.0, ::) becomes the loopback address.
fn default_public_base_url(listen: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    format!("{scheme}://{host}:{}", listen.port())
}

fn validate_metrics(
    m: &access::MetricsConfig,
    listen: SocketAddr,
    errors: &mut Vec<String>,
) -> access::MetricsAccess {
    let token_hash = m.token_sha256.as_deref().and_then(|h| {
        parse_hash(h).or_else(|| {
            errors.push("metrics.token_sha256: not 64 hex digits (use `cpixd hash-secret`)".into());
            None
        })
    });
    let metrics_listen = m
        .listen
        .as_deref()
        .and_then(|a| match a.parse::<SocketAddr>() {
            Ok(addr) if addr == listen => {
                errors.push(format!(
                    "metrics.listen: {a:?} is the main listen address; give another one"
                ));
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(format!("metrics.listen: not host:port: {a:?}"));
                None
            }
        });
    access::MetricsAccess {
        token_hash,
        listen: metrics_listen,
        public: m.public,
    }
}

/// Environment variables as a map.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("CPIXD_"))
        .collect()
}

/// Loads the configuration for `cpixd serve`: a file if given, else the
/// embedded default; environment over file, flags over both.
pub fn load(path: Option<&Path>, over: &Overrides) -> Result<Config, ConfigErrors> {
    let env = process_env();
    let mut file = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| ConfigErrors(vec![format!("{}: {e}", p.display())]))?;
            access::check_config_file(p, &text).map_err(|e| ConfigErrors(vec![e]))?;
            parse_file(&text)?
        }
        None => FileConfig::default(),
    };
    let env_errors = apply_env(&mut file, &env);
    if !env_errors.is_empty() {
        return Err(ConfigErrors(env_errors));
    }
    let embedded = path.is_none() && file.tenant.is_empty();
    if embedded {
        // Validated below like any tenant; the key is created on first start.
        file.tenant.push(TenantConfig {
            id: "default".into(),
            api_key_sha256: vec!["0".repeat(64)],
            ..TenantConfig::default()
        });
    }
    let mut config = validate(file, over)?;
    config.env = env;
    if embedded {
        let key = ensure_default_api_key(&config.data_dir)
            .map_err(|e| ConfigErrors(vec![format!("default tenant: {e}")]))?;
        config.tenants[0].api_key_hashes = vec![crate::crypto::sha256(key.as_bytes())];
        config.embedded_default = true;
    }
    Ok(config)
}

/// File holding the default tenant's API key in embedded mode.
pub fn default_api_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("default-api-key")
}

/// Creates `dir` (mode 0700) if needed.
pub fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)?;
        set_mode(dir, 0o700)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

/// Writes a secret file readable by the owner only, refusing to replace one.
pub fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// Refuses a secret file that group or others may read.
pub fn check_secret_file_mode(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable by group or others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    Ok(())
}

/// Returns the default tenant's API key, creating it (once) if absent.
pub fn ensure_default_api_key(data_dir: &Path) -> Result<String, String> {
    ensure_dir(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let path = default_api_key_path(data_dir);
    if !path.exists() {
        let mut bytes = [0u8; 24];
        OsRandom.fill(&mut bytes);
        let mut key = String::from("cpixd_");
        crate::b64::encode_url_into(&bytes, &mut key);
        write_secret_file(&path, &format!("{key}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    check_secret_file_mode(&path)?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.trim().to_owned())
}

/// Parses a master key file: lines `VERSION:BASE64` (or a single base64
/// line, version 1) of 32-byte keys; `#` starts a comment.
pub fn parse_master_keys(text: &str) -> Result<Vec<MasterKey>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (version, b64) = match line.split_once(':') {
            Some((v, k)) => (
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("line {}: bad version {v:?}", n + 1))?,
                k.trim(),
            ),
            None => (1, line),
        };
        let bytes: [u8; 32] = crate::b64::decode(b64)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("line {}: not base64 of 32 bytes", n + 1))?;
        keys.push(MasterKey::new(version, bytes));
    }
    if keys.is_empty() {
        return Err("no master key in the file".into());
    }
    Ok(keys)
}

/// Loads the master keys: `CPIXD_MASTER_KEY` (base64, version 1) if set,
/// else the key file; in embedded mode a missing file is created (0600).
pub fn load_keyring(config: &Config) -> Result<Keyring, String> {
    load_keyring_with_env(config, &process_env())
}

/// [`load_keyring`] with the `CPIXD_*` variables taken from `env` instead of
/// the process environment.
pub fn load_keyring_with_env(
    config: &Config,
    env: &BTreeMap<String, String>,
) -> Result<Keyring, String> {
    if let Some(b64) = env.get("CPIXD_MASTER_KEY") {
        let keys = parse_master_keys(b64).map_err(|e| format!("CPIXD_MASTER_KEY: {e}"))?;
        return Keyring::new(keys).map_err(|e| e.to_string());
    }
    let path = config
        .master_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("master.key"));
    let embedded = config.store == store::StoreBackend::Embedded;
    if !path.exists()
        && embedded
        && (config.embedded_default || path == config.data_dir.join("master.key"))
    {
        ensure_dir(&config.data_dir).map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
        let mk = MasterKey::generate(1, &OsRandom);
        let text = format!(
            "# cpixd master key (version:base64). Losing it loses every stored key.\n1:{}\n",
            crate::b64::encode(mk.expose())
        );
        write_secret_file(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    check_secret_file_mode(&path)?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let keys = parse_master_keys(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Keyring::new(keys).map_err(|e| e.to_string())
}

/// What `serve` would refuse that [`validate`] does not look at: the master
/// key (file or `CPIXD_MASTER_KEY`) and the data directory. Nothing is
/// created.
pub fn preflight(config: &Config, env: &BTreeMap<String, String>) -> Vec<String> {
    let mut errors = Vec::new();
    if config.data_dir.exists() && !config.data_dir.is_dir() {
        errors.push(format!(
            "data_dir: {} is not a directory",
            config.data_dir.display()
        ));
    }
    if let Some(b64) = env.get("CPIXD_MASTER_KEY") {
        if let Err(e) = parse_master_keys(b64) {
            errors.push(format!("CPIXD_MASTER_KEY: {e}"));
        }
        return errors;
    }
    let default = config.data_dir.join("master.key");
    let path = config.master_key_file.clone().unwrap_or(default.clone());
    if !path.exists() {
        if config.store != store::StoreBackend::Embedded {
            errors.push(format!(
                "master_key_file: {} does not exist; with backend = \"postgres\" every node \
                 must load the same master key (master_key_file or CPIXD_MASTER_KEY), so none \
                 is generated",
                path.display()
            ));
        } else if !(config.embedded_default || path == default) {
            errors.push(format!(
                "master_key_file: {} does not exist; a master key is generated only at the \
                 default path {} (leave master_key_file unset to use it)",
                path.display(),
                default.display()
            ));
        }
        return errors;
    }
    let read = check_secret_file_mode(&path)
        .and_then(|()| std::fs::read_to_string(&path).map_err(|e| e.to_string()))
        .and_then(|text| parse_master_keys(&text).map(drop));
    if let Err(e) = read {
        errors.push(format!("master_key_file: {}: {e}", path.display()));
    }
    errors
}

/// `cpixd hash-secret`: the hex SHA-256 of a secret (trailing newline removed).
pub fn hash_secret(secret: &str) -> String {
    sha256_hex(secret.trim_end_matches(['\r', '\n']).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:9000"
data_dir = "/tmp/x"

[[tenant]]
id = "acme"
api_key_sha256 = ["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]
basic = [{ user = "packager", password_sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" }]

[tenant.drm.playready]
la_url = "https://pr.example.com/rightsmanager.asmx"

[tenant.drm.fairplay]
key_uri_template = "skd://{kid}"
"#;

    #[test]
    fn a_good_file_validates() {
        let c = validate(parse_file(GOOD).unwrap(), &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.tenants[0].id, "acme");
        assert_eq!(c.tenants[0].basic[0].0, "packager");
        assert_eq!(
            c.tenants[0].drm.playready.la_url.as_deref(),
            Some("https://pr.example.com/rightsmanager.asmx")
        );
    }

    #[test]
    fn every_error_is_reported_with_its_key_path() {
        let bad = r#"
listen = "nowhere"
[limits]
max_body_bytes = 0
[[tenant]]
id = "bad id!"
api_key_sha256 = ["xyz"]
[tenant.drm.fairplay]
key_uri_template = "https://not-skd/{kid}"
[[tenant]]
id = "empty"
"#;
        let errs = validate(parse_file(bad).unwrap(), &Overrides::default())
            .unwrap_err()
            .0;
        for needle in [
            "listen:",
            "limits.max_body_bytes",
            "tenant[0].id",
            "tenant[0].api_key_sha256[0]",
            "tenant[0].drm.fairplay.key_uri_template",
            "tenant[1]: no credentials",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(needle)),
                "{needle} not in {errs:#?}"
            );
        }
        let unknown = parse_file("listn = \"x\"").unwrap_err();
        assert!(unknown.0[0].contains("line 1"), "{unknown}");
    }

    #[test]
    fn environment_and_flags_override_the_file() {
        let mut f = parse_file(GOOD).unwrap();
        let env: BTreeMap<String, String> = [
            ("CPIXD_LISTEN".to_owned(), "127.0.0.1:7000".to_owned()),
            ("CPIXD_MAX_BODY_BYTES".to_owned(), "2048".to_owned()),
        ]
        .into();
        assert!(apply_env(&mut f, &env).is_empty());
        let c = validate(f.clone(), &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.limits.max_body_bytes, 2048);
        let c = validate(
            f,
            &Overrides {
                listen: Some("127.0.0.1:6000".into()),
                data_dir: None,
            },
        )
        .unwrap();
        assert_eq!(c.listen.port(), 6000);
    }

    #[test]
    fn master_key_files() {
        let k = crate::b64::encode(&[7u8; 32]);
        let keys = parse_master_keys(&format!("# comment\n1:{k}\n2:{k}\n")).unwrap();
        assert_eq!(keys.iter().map(|k| k.version()).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(parse_master_keys(&k).unwrap()[0].version(), 1);
        assert!(parse_master_keys("1:AAAA").is_err());
        assert!(parse_master_keys("").is_err());
    }

    fn config_in(dir: &Path) -> Config {
        validate(
            parse_file(GOOD).unwrap(),
            &Overrides {
                listen: None,
                data_dir: Some(dir.to_path_buf()),
            },
        )
        .unwrap()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_master_key_file_is_generated_private_and_a_readable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = config_in(&data);
        let none = BTreeMap::new();
        let ring = load_keyring_with_env(&config, &none).unwrap();
        let path = data.join("master.key");
        assert!(path.is_file(), "generated on first start");
        // The same key on the next start.
        let again = load_keyring_with_env(&config, &none).unwrap();
        assert_eq!(ring.current().expose(), again.current().expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(mode(&path), 0o600, "generated master.key");
            assert_eq!(mode(&data), 0o700, "generated data directory");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_keyring_with_env(&config, &none).unwrap_err();
            assert!(
                err.contains("chmod 600") && err.contains("master.key"),
                "{err}"
            );
            // An explicitly configured key file is checked the same way.
            let mut other = config.clone();
            let elsewhere = dir.path().join("elsewhere.key");
            std::fs::write(
                &elsewhere,
                format!("1:{}\n", crate::b64::encode(&[3u8; 32])),
            )
            .unwrap();
            std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o640)).unwrap();
            other.master_key_file = Some(elsewhere);
            let err = load_keyring_with_env(&other, &none).unwrap_err();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn cpixd_master_key_in_the_environment_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = config_in(&data);
        let env: BTreeMap<String, String> = [(
            "CPIXD_MASTER_KEY".to_owned(),
            crate::b64::encode(&[9u8; 32]),
        )]
        .into();
        let ring = load_keyring_with_env(&config, &env).unwrap();
        assert_eq!(ring.current().expose(), &[9u8; 32]);
        assert_eq!(ring.current().version(), 1);
        assert!(
            !data.join("master.key").exists(),
            "no key file is made when the environment has the key"
        );
        // Even a refused (world-readable) file is not looked at.
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("master.key"), "garbage").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                data.join("master.key"),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        assert_eq!(
            load_keyring_with_env(&config, &env)
                .unwrap()
                .current()
                .expose(),
            &[9u8; 32]
        );
        let bad: BTreeMap<String, String> =
            [("CPIXD_MASTER_KEY".to_owned(), "AAAA".to_owned())].into();
        let err = load_keyring_with_env(&config, &bad).unwrap_err();
        assert!(err.starts_with("CPIXD_MASTER_KEY:"), "{err}");
    }

    /// Every key path of a TOML value: `(path, is_table)`.
    fn key_paths(v: &toml::Value, prefix: &str, out: &mut Vec<(String, bool)>) {
        let table = match v {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => {
                a.iter().for_each(|x| key_paths(x, prefix, out));
                return;
            }
            _ => return,
        };
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let is_table = v.is_table()
                || v.as_array()
                    .is_some_and(|a| a.first().is_some_and(toml::Value::is_table));
            out.push((path.clone(), is_table));
            key_paths(v, &path, out);
        }
    }

    #[test]
    fn the_example_file_documents_every_key() {
        let text = include_str!("../../cpixd.example.toml");
        // The example itself is a valid configuration.
        validate(parse_file(text).unwrap(), &Overrides::default()).unwrap();
        // Every field of every configuration table, with every optional
        // value set so that it shows up.
        let mut drm = DrmSettings::default();
        drm.playready.la_url = Some("x".into());
        drm.playready.lui_url = Some("x".into());
        drm.playready.ds_id = Some("x".into());
        drm.playready.custom_attributes = Some("x".into());
        drm.widevine.provider = Some("x".into());
        let full = FileConfig {
            listen: Some("x".into()),
            data_dir: Some("x".into()),
            master_key_file: Some("x".into()),
            tls: Some(TlsConfig::default()),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            tenant: vec![TenantConfig {
                id: "x".into(),
                api_key_sha256: vec!["x".into()],
                admin_api_key_sha256: vec!["x".into()],
                basic: vec![BasicUser::default()],
                drm,
                anevia: access::AneviaConfig {
                    allow_from: vec!["x".into()],
                },
                authorization: player::AuthorizationConfig::default(),
                license: Some(toml::Table::new()),
                oauth_client: vec![player::OAuthClientConfig::default()],
            }],
            delivery: DeliveryConfig::default(),
            gateway: Some(toml::Table::new()),
            platforms: Some(toml::Table::new()),
            metrics: access::MetricsConfig {
                token_sha256: Some("x".into()),
                listen: Some("x".into()),
                public: false,
            },
            public_base_url: Some("x".into()),
            cors: player::CorsConfig::default(),
            licence_log: player::LicenceLogConfig::default(),
            trusted_proxies: vec!["x".into()],
            store: store::StoreFileConfig {
                url: Some("x".into()),
                url_file: Some("x".into()),
                ca_file: Some("x".into()),
                ..Default::default()
            },
        };
        let mut paths = Vec::new();
        key_paths(&toml::Value::try_from(&full).unwrap(), "", &mut paths);
        assert!(paths.len() > 30, "{paths:?}");
        // A key is documented when it is written (or shown commented out)
        // as `key = …`; a table when its `[header]` (or a sub-table's) is there.
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.trim().trim_start_matches('#').trim())
            .collect();
        let mut missing = Vec::new();
        for (path, is_table) in &paths {
            let leaf = path.rsplit('.').next().unwrap_or(path);
            let documented = if *is_table {
                lines.iter().any(|l| {
                    *l == format!("[{path}]")
                        || *l == format!("[[{path}]]")
                        || l.starts_with(&format!("[{path}."))
                }) || (path == "tenant.basic" && lines.iter().any(|l| l.starts_with("basic = [{")))
            } else {
                lines.iter().any(|l| {
                    l.starts_with(&format!("{leaf} ="))
                        || l.contains(&format!("{{ {leaf} ="))
                        || l.contains(&format!(", {leaf} ="))
                })
            };
            if !documented {
                missing.push(path.clone());
            }
        }
        assert!(missing.is_empty(), "not in cpixd.example.toml: {missing:?}");
        // The response cache: its default and how to turn it off.
        assert!(text.contains(&format!(
            "response_cache_bytes = {}",
            LimitsConfig::default().response_cache_bytes
        )));
        assert!(text.contains("0 disables"));
    }

    #[test]
    fn embedded_default_creates_a_private_api_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_default_api_key(dir.path()).unwrap();
        let b = ensure_default_api_key(dir.path()).unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("cpixd_") && a.len() > 30);
        check_secret_file_mode(&default_api_key_path(dir.path())).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = default_api_key_path(dir.path());
            assert_eq!(mode(&p), 0o600, "generated default-api-key");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = ensure_default_api_key(dir.path()).unwrap_err();
            assert!(err.contains("chmod 600"), "{err}");
        }
        assert_eq!(
            hash_secret("abc\n"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
