//! The `[store]` table: which backend keeps the keys and the licence log
//! (the embedded redb files by default, or PostgreSQL shared by several
//! nodes), and the PostgreSQL connection settings.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[store]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct StoreFileConfig {
    /// `embedded` (default) or `postgres`.
    pub backend: String,
    /// PostgreSQL connection URL or key=value string (holds the password:
    /// prefer `url_file` or `CPIXD_STORE_URL`).
    pub url: Option<String>,
    /// File holding the URL.
    pub url_file: Option<PathBuf>,
    /// Connections per node.
    pub pool_size: usize,
    /// How long opening a connection may take.
    pub connect_timeout_ms: u64,
    /// Server-side limit of one statement (`statement_timeout`), and how
    /// long a request waits for a pooled connection.
    pub statement_timeout_ms: u64,
    /// Attempts of a transaction that fails with a serialization failure or
    /// a deadlock (SQLSTATE 40001 / 40P01).
    pub max_retries: u32,
    /// CA certificates (PEM) that sign the database's certificate, for
    /// `sslmode=require`/`prefer`; the Mozilla roots when unset.
    pub ca_file: Option<PathBuf>,
}

impl Default for StoreFileConfig {
    fn default() -> Self {
        StoreFileConfig {
            backend: "embedded".into(),
            url: None,
            url_file: None,
            pool_size: 16,
            connect_timeout_ms: 5_000,
            statement_timeout_ms: 5_000,
            max_retries: 8,
            ca_file: None,
        }
    }
}

/// The backend chosen.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// redb files in the data directory.
    Embedded,
    /// One PostgreSQL database for every node.
    Postgres(PostgresSettings),
}

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreBackend::Embedded => f.write_str("Embedded"),
            StoreBackend::Postgres(p) => write!(f, "Postgres({})", p.redacted_url()),
        }
    }
}

/// How to reach PostgreSQL.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// Connection URL (`postgres://…`) or key=value string.
    pub url: String,
    /// Connections per node.
    pub pool_size: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Statement timeout (also the pool wait).
    pub statement_timeout: Duration,
    /// Attempts on 40001/40P01.
    pub max_retries: u32,
    /// CA file for TLS.
    pub ca_file: Option<PathBuf>,
}

impl PostgresSettings {
    /// The URL without its password, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// `url` with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        let scheme = &url[..url.len() - rest.len()];
        let (auth, host) = match rest.split_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let host = host
            .split('&')
            .map(|p| {
                if p.to_ascii_lowercase().contains("password=") {
                    "password=***"
                } else {
                    p
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        return match auth {
            Some(a) => match a.split_once(':') {
                Some((user, _)) => format!("{scheme}{user}:***@{host}"),
                None => format!("{scheme}{a}@{host}"),
            },
            None => format!("{scheme}{host}"),
        };
    }
    url.split_whitespace()
        .map(|p| {
            if p.to_ascii_lowercase().starts_with("password=") {
                "password=***"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Applies `CPIXD_STORE_BACKEND` and `CPIXD_STORE_URL`.
pub fn apply_env(file: &mut StoreFileConfig, env: &BTreeMap<String, String>) {
    if let Some(v) = env.get("CPIXD_STORE_BACKEND") {
        file.backend = v.clone();
    }
    if let Some(v) = env.get("CPIXD_STORE_URL") {
        file.url = Some(v.clone());
        file.url_file = None;
        if !env.contains_key("CPIXD_STORE_BACKEND") {
            file.backend = "postgres".into();
        }
    }
}

/// Checks `[store]`, reading `url_file`; errors carry their key path.
pub fn validate(file: &StoreFileConfig, errors: &mut Vec<String>) -> StoreBackend {
    match file.backend.as_str() {
        "embedded" => {
            if file.url.is_some() || file.url_file.is_some() {
                errors.push("store.url: only for backend = \"postgres\"".into());
            }
            StoreBackend::Embedded
        }
        "postgres" | "postgresql" => {
            let url = match (&file.url, &file.url_file) {
                (Some(_), Some(_)) => {
                    errors.push("store.url and store.url_file: set one".into());
                    None
                }
                (Some(u), None) => Some(u.trim().to_owned()),
                (None, Some(p)) => match std::fs::read_to_string(p) {
                    Ok(t) => Some(t.trim().to_owned()),
                    Err(e) => {
                        errors.push(format!("store.url_file: {}: {e}", p.display()));
                        None
                    }
                },
                (None, None) => {
                    errors.push(
                        "store.url: backend = \"postgres\" needs url, url_file or CPIXD_STORE_URL"
                            .into(),
                    );
                    None
                }
            };
            if let Some(u) = &url {
                if let Err(e) = u.parse::<tokio_postgres::Config>() {
                    errors.push(format!(
                        "store.url: not a PostgreSQL connection string ({e}): {}",
                        redact(u)
                    ));
                }
            }
            if file.pool_size == 0 || file.pool_size > 1024 {
                errors.push("store.pool_size: 1 to 1024".into());
            }
            for (name, v) in [
                ("connect_timeout_ms", file.connect_timeout_ms),
                ("statement_timeout_ms", file.statement_timeout_ms),
            ] {
                if v == 0 {
                    errors.push(format!("store.{name}: must be positive"));
                }
            }
            if file.max_retries == 0 {
                errors.push("store.max_retries: at least 1".into());
            }
            if let Some(p) = &file.ca_file {
                if !p.is_file() {
                    errors.push(format!(
                        "store.ca_file: {} is not a readable file",
                        p.display()
                    ));
                }
            }
            StoreBackend::Postgres(PostgresSettings {
                url: url.unwrap_or_default(),
                pool_size: file.pool_size,
                connect_timeout: Duration::from_millis(file.connect_timeout_ms),
                statement_timeout: Duration::from_millis(file.statement_timeout_ms),
                max_retries: file.max_retries,
                ca_file: file.ca_file.clone(),
            })
        }
        other => {
            errors.push(format!(
                "store.backend: {other:?} is not a backend (embedded, postgres)"
            ));
            StoreBackend::Embedded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://cpixd:s3cret@db:5432/cpixd?sslmode=require"),
            "postgres://cpixd:***@db:5432/cpixd?sslmode=require"
        );
        assert_eq!(
            redact("host=/tmp user=cpixd password=s3cret dbname=x"),
            "host=/tmp user=cpixd password=*** dbname=x"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn backend_choice_and_errors() {
        let mut errors = Vec::new();
        assert_eq!(
            validate(&StoreFileConfig::default(), &mut errors),
            StoreBackend::Embedded
        );
        assert!(errors.is_empty());
        let file = StoreFileConfig {
            backend: "postgres".into(),
            ..Default::default()
        };
        validate(&file, &mut errors);
        assert!(errors[0].starts_with("store.url:"), "{errors:?}");
        let mut env = BTreeMap::new();
        env.insert(
            "CPIXD_STORE_URL".to_owned(),
            "postgres://u@127.0.0.1/db".to_owned(),
        );
        let mut file = StoreFileConfig::default();
        apply_env(&mut file, &env);
        let mut errors = Vec::new();
        match validate(&file, &mut errors) {
            StoreBackend::Postgres(p) => assert_eq!(p.url, "postgres://u@127.0.0.1/db"),
            other => panic!("{other:?}"),
        }
        assert!(errors.is_empty(), "{errors:?}");
        let file = StoreFileConfig {
            backend: "mysql".into(),
            ..Default::default()
        };
        let mut errors = Vec::new();
        validate(&file, &mut errors);
        assert!(errors[0].contains("store.backend"));
    }
}
