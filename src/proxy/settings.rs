//! Gateway settings: the shared client's `[gateway]` section and a reader
//! for each `[platforms.<name>]` section that takes every value from the
//! file or a `CPIXD_<PLATFORM>_<KEY>` environment variable (environment
//! wins), every secret also from `<key>_file`, and reports each problem
//! with its key path.

use crate::crypto::SecretString;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The shared upstream client's settings (`[gateway]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for the response headers of a request whose body is
    /// small enough to be held (most API calls).
    pub timeout: Duration,
    /// Longest wait for the response headers of a streamed upload.
    pub upload_timeout: Duration,
    /// Longest pause between two chunks of a streamed body, either way.
    pub idle_timeout: Duration,
    /// Most attempts of one call, the first included.
    pub max_attempts: u32,
    /// Longest time from the first attempt after which no retry starts.
    pub retry_budget: Duration,
    /// First backoff step (doubled each retry, with full jitter).
    pub backoff_base: Duration,
    /// Largest backoff step.
    pub backoff_max: Duration,
    /// Request bodies up to this size are held so they can be replayed;
    /// larger ones stream and are sent once.
    pub replay_buffer_bytes: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(6 * 3600),
            idle_timeout: Duration::from_secs(60),
            max_attempts: 3,
            retry_budget: Duration::from_secs(30),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            replay_buffer_bytes: 1 << 20,
        }
    }
}

/// `[gateway]`: the shared client plus the gateway's public address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewaySettings {
    /// The client.
    pub client: ClientSettings,
    /// How clients reach this gateway (`https://keys.example.com`), for
    /// rewriting absolute upstream URLs; default: the request's Host.
    pub public_url: Option<String>,
}

/// Reads `[gateway]`.
pub fn gateway(table: Option<&toml::Table>, errors: &mut Vec<String>) -> GatewaySettings {
    let empty = toml::Table::new();
    let no_env = BTreeMap::new();
    let mut f = Fields::new("gateway", None, table.unwrap_or(&empty), &no_env);
    let d = ClientSettings::default();
    let secs = |f: &mut Fields, k: &str, d: Duration| Duration::from_secs(f.number(k, d.as_secs()));
    let ms = |f: &mut Fields, k: &str, d: Duration| {
        Duration::from_millis(f.number(k, d.as_millis() as u64))
    };
    let client = ClientSettings {
        connect_timeout: secs(&mut f, "connect_timeout_secs", d.connect_timeout),
        timeout: secs(&mut f, "timeout_secs", d.timeout),
        upload_timeout: secs(&mut f, "upload_timeout_secs", d.upload_timeout),
        idle_timeout: secs(&mut f, "idle_timeout_secs", d.idle_timeout),
        max_attempts: f.number("max_attempts", d.max_attempts.into()) as u32,
        retry_budget: secs(&mut f, "retry_budget_secs", d.retry_budget),
        backoff_base: ms(&mut f, "backoff_base_ms", d.backoff_base),
        backoff_max: ms(&mut f, "backoff_max_ms", d.backoff_max),
        replay_buffer_bytes: f.number("replay_buffer_bytes", d.replay_buffer_bytes as u64) as usize,
    };
    let public_url = f.url("public_url");
    for (k, v) in [
        ("connect_timeout_secs", client.connect_timeout.as_millis()),
        ("timeout_secs", client.timeout.as_millis()),
        ("idle_timeout_secs", client.idle_timeout.as_millis()),
        ("max_attempts", client.max_attempts.into()),
    ] {
        if v == 0 {
            f.errors.push(format!("gateway.{k}: must be positive"));
        }
    }
    errors.extend(f.finish());
    GatewaySettings { client, public_url }
}

/// Reads the keys of one TOML section, remembering which were used and
/// what was wrong.
pub struct Fields<'a> {
    prefix: String,
    env_prefix: Option<String>,
    table: &'a toml::Table,
    env: &'a BTreeMap<String, String>,
    used: BTreeSet<String>,
    secrets: Vec<SecretString>,
    /// Problems found so far, each with its key path.
    pub errors: Vec<String>,
}

impl<'a> Fields<'a> {
    /// Reads `table`, written at `prefix` (`platforms.kinescope`), with
    /// environment variables `CPIXD_<env_name>_<KEY>` over it.
    pub fn new(
        prefix: &str,
        env_name: Option<&str>,
        table: &'a toml::Table,
        env: &'a BTreeMap<String, String>,
    ) -> Self {
        Fields {
            prefix: prefix.to_owned(),
            env_prefix: env_name.map(|n| format!("CPIXD_{}_", n.to_ascii_uppercase())),
            table,
            env,
            used: BTreeSet::new(),
            secrets: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// `prefix.key`, for messages.
    pub fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    fn env_var(&self, key: &str) -> Option<(String, &'a String)> {
        let name = format!("{}{}", self.env_prefix.as_ref()?, key.to_ascii_uppercase());
        let value = self.env.get(&name)?;
        Some((name, value))
    }

    fn raw(&mut self, key: &str) -> Option<&'a toml::Value> {
        self.used.insert(key.to_owned());
        self.table.get(key)
    }

    /// A string value.
    pub fn string(&mut self, key: &str) -> Option<String> {
        let file = self.raw(key);
        if let Some((_, v)) = self.env_var(key) {
            return Some(v.clone());
        }
        match file? {
            toml::Value::String(s) => Some(s.clone()),
            _ => {
                self.errors
                    .push(format!("{}: must be a string", self.path(key)));
                None
            }
        }
    }

    /// An `http://` or `https://` URL, without a trailing `/`.
    pub fn url(&mut self, key: &str) -> Option<String> {
        let v = self.string(key)?;
        check_url(&v)
            .map_err(|e| self.errors.push(format!("{}: {e}", self.path(key))))
            .ok()
    }

    /// A secret: `key`, or the contents of the file named by `key_file`
    /// (readable by its owner only), or `CPIXD_<P>_<KEY>` /
    /// `CPIXD_<P>_<KEY>_FILE`.
    pub fn secret(&mut self, key: &str) -> Option<SecretString> {
        let file_key = format!("{key}_file");
        let direct = self.string(key);
        let file = self.string(&file_key);
        let (value, from_file) = match (direct, file) {
            (Some(_), Some(_)) => {
                self.errors.push(format!(
                    "{}: give either {key} or {file_key}, not both",
                    self.prefix
                ));
                return None;
            }
            (Some(v), None) => (v, false),
            (None, Some(p)) => (p, true),
            (None, None) => return None,
        };
        if !from_file {
            let s = SecretString::new(value);
            self.secrets.push(s.clone());
            return Some(s);
        }
        let path = std::path::Path::new(&value);
        let read = crate::config::check_secret_file_mode(path).and_then(|()| {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
        });
        match read {
            Ok(text) => {
                let s = SecretString::new(text.trim_end_matches(['\r', '\n']));
                self.secrets.push(s.clone());
                Some(s)
            }
            Err(e) => {
                self.errors.push(format!("{}: {e}", self.path(&file_key)));
                None
            }
        }
    }

    /// A required secret.
    pub fn required_secret(&mut self, key: &str) -> Option<SecretString> {
        let s = self.secret(key);
        if s.as_ref().is_none_or(|s| s.expose().is_empty()) {
            self.errors.push(format!(
                "{}: required (or {key}_file, or {}{})",
                self.path(key),
                self.env_prefix.as_deref().unwrap_or(""),
                key.to_ascii_uppercase()
            ));
            return None;
        }
        s
    }

    /// True when the file or the environment sets `key`.
    pub fn table_has(&self, key: &str) -> bool {
        self.table.contains_key(key) || self.env_var(key).is_some()
    }

    /// Every secret read so far (to keep them out of logs).
    pub fn secrets(&self) -> Vec<SecretString> {
        self.secrets.clone()
    }

    /// A boolean.
    pub fn boolean(&mut self, key: &str, default: bool) -> bool {
        let file = self.raw(key);
        if let Some((name, v)) = self.env_var(key) {
            return match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    self.errors
                        .push(format!("{name}: not true or false: {v:?}"));
                    default
                }
            };
        }
        match file {
            None => default,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => {
                self.errors
                    .push(format!("{}: must be true or false", self.path(key)));
                default
            }
        }
    }

    /// A non-negative integer.
    pub fn number(&mut self, key: &str, default: u64) -> u64 {
        let file = self.raw(key);
        if let Some((name, v)) = self.env_var(key) {
            return v.parse().unwrap_or_else(|_| {
                self.errors.push(format!("{name}: not a number: {v:?}"));
                default
            });
        }
        match file {
            None => default,
            Some(toml::Value::Integer(n)) if *n >= 0 => *n as u64,
            Some(_) => {
                self.errors.push(format!(
                    "{}: must be a non-negative integer",
                    self.path(key)
                ));
                default
            }
        }
    }

    /// A list of strings (the environment gives it comma-separated).
    pub fn strings(&mut self, key: &str) -> Vec<String> {
        let file = self.raw(key);
        if let Some((_, v)) = self.env_var(key) {
            return v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        }
        match file {
            None => Vec::new(),
            Some(toml::Value::Array(a)) if a.iter().all(toml::Value::is_str) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                self.errors
                    .push(format!("{}: must be a list of strings", self.path(key)));
                Vec::new()
            }
        }
    }

    /// A table of strings (`headers = { X-Provider = "acme" }`).
    pub fn string_map(&mut self, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match self.raw(key) {
            None => {}
            Some(toml::Value::Table(t)) => {
                for (name, v) in t {
                    match v.as_str() {
                        Some(s) => {
                            out.insert(name.clone(), s.to_owned());
                        }
                        None => self
                            .errors
                            .push(format!("{}.{name}: must be a string", self.path(key))),
                    }
                }
            }
            Some(_) => self
                .errors
                .push(format!("{}: must be a table of strings", self.path(key))),
        }
        out
    }

    /// A table of URLs (`hosts = { upload = "https://…" }`); the
    /// environment gives each as `CPIXD_<P>_HOSTS_<NAME>`.
    pub fn urls(&mut self, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match self.raw(key) {
            None => {}
            Some(toml::Value::Table(t)) => {
                for (name, v) in t {
                    match v.as_str().map(check_url) {
                        Some(Ok(u)) => {
                            out.insert(name.clone(), u);
                        }
                        Some(Err(e)) => self.errors.push(format!("{}.{name}: {e}", self.path(key))),
                        None => self
                            .errors
                            .push(format!("{}.{name}: must be a string", self.path(key))),
                    }
                }
            }
            Some(_) => self
                .errors
                .push(format!("{}: must be a table of URLs", self.path(key))),
        }
        if let Some(p) = &self.env_prefix {
            let env_prefix = format!("{p}{}_", key.to_ascii_uppercase());
            for (name, v) in self.env.range(env_prefix.clone()..) {
                let Some(host) = name.strip_prefix(&env_prefix) else {
                    break;
                };
                match check_url(v) {
                    Ok(u) => {
                        out.insert(host.to_ascii_lowercase(), u);
                    }
                    Err(e) => self.errors.push(format!("{name}: {e}")),
                }
            }
        }
        out
    }

    /// The problems found, plus one for each key nobody asked for.
    pub fn finish(mut self) -> Vec<String> {
        for key in self.table.keys() {
            if !self.used.contains(key) {
                self.errors.push(format!("{}: unknown key", self.path(key)));
            }
        }
        self.errors
    }
}

/// Checks an upstream base URL and drops a trailing `/`.
pub fn check_url(v: &str) -> Result<String, String> {
    let trimmed = v.trim_end_matches('/');
    let ok = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(['?', '#', ' ']));
    if !ok || trimmed.parse::<axum::http::Uri>().is_err() {
        return Err(format!("{v:?} is not an http(s) URL"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_environment_and_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("token");
        std::fs::write(&secret, "from-file\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let table: toml::Table = toml::from_str(&format!(
            "token_file = {:?}\nbase_url = \"https://x.example/v2/\"\nallow = true\nbogus = 1\nhosts = {{ upload = \"http://127.0.0.1:9\" }}",
            secret.display().to_string()
        ))
        .unwrap();
        let env: BTreeMap<String, String> = [
            ("CPIXD_KINESCOPE_ALLOW".to_owned(), "false".to_owned()),
            (
                "CPIXD_KINESCOPE_HOSTS_API".to_owned(),
                "http://127.0.0.1:8".to_owned(),
            ),
        ]
        .into();
        let mut f = Fields::new("platforms.kinescope", Some("kinescope"), &table, &env);
        assert_eq!(f.secret("token").unwrap().expose(), "from-file");
        assert_eq!(f.url("base_url").as_deref(), Some("https://x.example/v2"));
        assert!(!f.boolean("allow", true));
        let hosts = f.urls("hosts");
        assert_eq!(hosts["upload"], "http://127.0.0.1:9");
        assert_eq!(hosts["api"], "http://127.0.0.1:8");
        assert!(f.required_secret("missing").is_none());
        let errors = f.finish();
        assert!(errors
            .iter()
            .any(|e| e == "platforms.kinescope.bogus: unknown key"));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("platforms.kinescope.missing: required")));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https://").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("key");
        std::fs::write(&secret, "k").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let table: toml::Table = toml::from_str(&format!(
            "api_key_file = {:?}",
            secret.display().to_string()
        ))
        .unwrap();
        let env = BTreeMap::new();
        let mut f = Fields::new("platforms.pixop", Some("pixop"), &table, &env);
        assert!(f.secret("api_key").is_none());
        let errors = f.finish();
        assert!(
            errors[0].starts_with("platforms.pixop.api_key_file:"),
            "{errors:?}"
        );
        assert!(errors[0].contains("chmod 600"), "{errors:?}");
    }

    #[test]
    fn gateway_section() {
        let t: toml::Table =
            toml::from_str("timeout_secs = 3\nmax_attempts = 0\nnope = 1").unwrap();
        let mut errors = Vec::new();
        let g = gateway(Some(&t), &mut errors);
        assert_eq!(g.client.timeout, Duration::from_secs(3));
        assert!(errors.contains(&"gateway.max_attempts: must be positive".to_owned()));
        assert!(errors.contains(&"gateway.nope: unknown key".to_owned()));
    }
}
