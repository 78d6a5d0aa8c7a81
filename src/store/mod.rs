//! Key store backends behind [`crate::keys::KeyStore`] and the licence log
//! behind [`crate::licence::log::LicenceLog`]: `embedded` (the default: crash-safe redb
//! files in the data directory, pure Rust, no server to run) and
//! `postgres` (one database shared by several nodes). [`open`] picks the
//! one the configuration names.

pub mod embedded;
pub mod licence_log;
pub mod postgres;

pub use embedded::EmbeddedStore;

use crate::config::store::StoreBackend;
use crate::config::Config;
use crate::crypto::SecureRandom;
use crate::keys::{KeyStore, Keyring, StoreError};
use crate::licence::log::LicenceLog;
use std::sync::Arc;

/// Opens only the licence log of the configured backend (for the
/// `licences` commands, which need no master key).
pub async fn open_licence_log(config: &Config) -> Result<Arc<dyn LicenceLog>, StoreError> {
    match &config.store {
        StoreBackend::Embedded => {
            let path = config.data_dir.join("licences.redb");
            if !path.exists() {
                return Err(StoreError::Config(format!(
                    "no licence log at {}",
                    path.display()
                )));
            }
            let log = licence_log::EmbeddedLicenceLog::open(&path).map_err(|e| {
                StoreError::Unavailable(format!(
                    "{e} (is `cpixd serve` running on this data directory? stop it first)"
                ))
            })?;
            Ok(Arc::new(log))
        }
        StoreBackend::Postgres(settings) => {
            let db = postgres::Database::new(settings)?;
            db.check_schema().await?;
            Ok(Arc::new(postgres::PostgresLicenceLog::new(db)))
        }
    }
}

/// What [`open`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The server: creates the embedded files, applies migrations.
    Serve,
    /// A command on an existing store: never creates one, never migrates.
    Existing,
}

/// The opened backends.
pub struct Backends {
    /// The key store.
    pub keys: Arc<dyn KeyStore>,
    /// The licence log, when asked for.
    pub licence_log: Option<Arc<dyn LicenceLog>>,
    /// Where they are, for logs.
    pub description: String,
}

/// Opens the configured backend: its key store and, with `with_log`, its
/// licence log. Must run inside a multi-threaded Tokio runtime (the
/// PostgreSQL connections run on it).
pub async fn open(
    config: &Config,
    ring: Keyring,
    rng: Arc<dyn SecureRandom>,
    with_log: bool,
    purpose: Purpose,
) -> Result<Backends, StoreError> {
    match &config.store {
        StoreBackend::Embedded => {
            let path = config.data_dir.join("keys.redb");
            if purpose == Purpose::Existing && !path.exists() {
                return Err(StoreError::Config(format!(
                    "no key store at {}",
                    path.display()
                )));
            }
            let keys = EmbeddedStore::open(&path, ring, rng).map_err(|e| match purpose {
                Purpose::Serve => e,
                Purpose::Existing => StoreError::Unavailable(format!(
                    "{e} (is `cpixd serve` running on this data directory? stop it first)"
                )),
            })?;
            let licence_log: Option<Arc<dyn LicenceLog>> = if with_log {
                Some(Arc::new(licence_log::EmbeddedLicenceLog::open(
                    &config.data_dir.join("licences.redb"),
                )?))
            } else {
                None
            };
            Ok(Backends {
                keys: Arc::new(keys),
                licence_log,
                description: path.display().to_string(),
            })
        }
        StoreBackend::Postgres(settings) => {
            let db = postgres::Database::new(settings)?;
            match purpose {
                Purpose::Serve => {
                    let applied = db.migrate().await?;
                    if !applied.is_empty() {
                        tracing::info!(?applied, "PostgreSQL schema migrated");
                    }
                }
                Purpose::Existing => db.check_schema().await?,
            }
            let description = db.describe();
            let licence_log: Option<Arc<dyn LicenceLog>> = if with_log {
                Some(Arc::new(postgres::PostgresLicenceLog::new(db.clone())))
            } else {
                None
            };
            let keys = postgres::PostgresStore::new(db, ring, rng);
            keys.check_master_keys().await?;
            Ok(Backends {
                keys: Arc::new(keys),
                licence_log,
                description,
            })
        }
    }
}
