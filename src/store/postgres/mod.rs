//! The PostgreSQL backend, for several nodes on one database: the
//! connection pool (deadpool over tokio-postgres, TLS by rustls), the
//! versioned schema migrations embedded in the binary, and the retry of
//! transactions that PostgreSQL (or a compatible distributed database)
//! aborts with a serialization failure or a deadlock. The key store and
//! the licence log on top of it are in `keys` and `licence_log`.
//!
//! Records are the embedded store's records, byte for byte: metadata in
//! clear, the key sealed under the master key before it leaves the node,
//! so the database never holds a clear key.

pub mod keys;
pub mod licence_log;

pub use keys::PostgresStore;
pub use licence_log::PostgresLicenceLog;

use crate::config::store::PostgresSettings;
use crate::keys::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// The schema, one migration per version, applied in order.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE IF NOT EXISTS cpixd_keys (
    tenant text COLLATE "C" NOT NULL,
    kid bytea NOT NULL,
    content_id text COLLATE "C" NOT NULL,
    master_key_version integer NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (tenant, kid)
);
CREATE INDEX IF NOT EXISTS cpixd_keys_by_content ON cpixd_keys (tenant, content_id, kid);
CREATE TABLE IF NOT EXISTS cpixd_signing_keys (
    tenant text COLLATE "C" NOT NULL PRIMARY KEY,
    master_key_version integer NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS cpixd_licence_requests (
    tenant text COLLATE "C" NOT NULL,
    id bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE SEQUENCE IF NOT EXISTS cpixd_licence_seq MINVALUE 0 MAXVALUE 65535 START 0 CYCLE;
CREATE TABLE IF NOT EXISTS cpixd_master_keys (
    version integer PRIMARY KEY,
    check_value bytea NOT NULL
);
"#,
)];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Lock id serialising migrations between nodes starting together.
const MIGRATION_LOCK: i64 = 0x6370_6978_6400_0001;

/// A pool and what every operation needs with it.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    settings: Arc<PostgresSettings>,
    /// Where the connections' tasks run (sync callers block on it).
    handle: tokio::runtime::Handle,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {e}"))
}

/// Whether a failed transaction may simply be run again.
fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// A database error, as the store reports it.
pub(crate) enum DbError {
    /// The database or the pool failed; retryable errors are separated.
    Pg(tokio_postgres::Error),
    /// Anything the store itself decided (conflict, corrupt record).
    Store(StoreError),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Pg(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError::Store(e)
    }
}

/// A database error with its causes (a TLS handshake error says why).
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return format!("{} ({})", d.message(), d.code().code());
    }
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn tls_config(settings: &PostgresSettings) -> Result<rustls::ClientConfig, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_file {
        Some(p) => {
            let pem = std::fs::read(p)
                .map_err(|e| StoreError::Config(format!("store.ca_file: {}: {e}", p.display())))?;
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert = cert.map_err(|e| {
                    StoreError::Config(format!("store.ca_file: {}: {e}", p.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    StoreError::Config(format!("store.ca_file: {}: {e}", p.display()))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Database {
    /// A pool for `settings` (no connection is made yet). Must be called
    /// inside a Tokio runtime, which then runs the connections.
    pub fn new(settings: &PostgresSettings) -> Result<Database, StoreError> {
        let mut config: tokio_postgres::Config = settings.url.parse().map_err(|e| {
            StoreError::Config(format!(
                "store.url: {e} ({})",
                crate::config::store::redact(&settings.url)
            ))
        })?;
        config.connect_timeout(settings.connect_timeout);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("cpixd");
        }
        // Every statement is bounded on the server too; a lock wait counts.
        let options = format!(
            "{} -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            config.get_options().unwrap_or_default(),
            settings.statement_timeout.as_millis(),
            (settings.statement_timeout * 4).as_millis()
        );
        config.options(options.trim());
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(settings)?);
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.statement_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .build()
            .map_err(|e| StoreError::Config(format!("PostgreSQL pool: {e}")))?;
        Ok(Database {
            pool,
            settings: Arc::new(settings.clone()),
            handle: tokio::runtime::Handle::current(),
        })
    }

    /// The URL without password.
    pub fn describe(&self) -> String {
        self.settings.redacted_url()
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => unavailable(describe(&e)),
            other => unavailable(other),
        })
    }

    /// Runs `op` on a pooled connection, again (with a short random pause)
    /// while it fails with a serialization failure or a deadlock, at most
    /// `max_retries` times; the whole is bounded by the statement timeout
    /// per attempt so that a database that stops answering gives a 503.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut(deadpool_postgres::Object) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let limit = self.settings.statement_timeout + self.settings.connect_timeout;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = tokio::time::timeout(limit, async {
                let client = self.client().await.map_err(DbError::Store)?;
                op(client).await
            })
            .await;
            match outcome {
                Err(_) => {
                    return Err(unavailable(format!(
                        "{what}: no answer within {} ms",
                        limit.as_millis()
                    )))
                }
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(DbError::Store(e))) => return Err(e),
                Ok(Err(DbError::Pg(e))) if retryable(&e) && attempt < self.settings.max_retries => {
                    let pause = Duration::from_micros(
                        (500u64 << attempt.min(7)) + u64::from(jitter()) % 1000,
                    );
                    tracing::debug!(what, attempt, error = %describe(&e), "retrying transaction");
                    tokio::time::sleep(pause).await;
                }
                Ok(Err(DbError::Pg(e))) => {
                    return Err(unavailable(format!("{what}: {}", describe(&e))))
                }
            }
        }
    }

    /// Runs `fut` from a thread outside the runtime (the licence log's
    /// writer, statistics on the blocking pool, the command line).
    pub(crate) fn block_on<T>(&self, fut: impl Future<Output = T>) -> T {
        self.handle.block_on(fut)
    }

    /// The schema version in the database (0: none yet).
    pub async fn schema_version(&self) -> Result<i32, StoreError> {
        self.run("schema version", |client| async move {
            let exists = client
                .query_one(
                    "SELECT to_regclass('cpixd_schema_migrations') IS NOT NULL",
                    &[],
                )
                .await?
                .get::<_, bool>(0);
            if !exists {
                return Ok(0);
            }
            let row = client
                .query_one(
                    "SELECT COALESCE(max(version), 0) FROM cpixd_schema_migrations",
                    &[],
                )
                .await?;
            Ok(row.get::<_, i32>(0))
        })
        .await
    }

    /// Applies the migrations the database lacks (one transaction each,
    /// serialised between nodes); refuses a schema newer than this build.
    /// Returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| unavailable(describe(&e)))?;
        let pg = |e: tokio_postgres::Error| unavailable(format!("migration: {}", describe(&e)));
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS cpixd_schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(pg)?;
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(max(version), 0) FROM cpixd_schema_migrations",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::Config(format!(
                "the database schema is version {current}, newer than this cpixd knows ({SCHEMA_VERSION}); upgrade cpixd"
            )));
        }
        let mut applied = Vec::new();
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute(
                "INSERT INTO cpixd_schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(pg)?;
            applied.push(*version);
        }
        tx.commit().await.map_err(pg)?;
        Ok(applied)
    }

    /// Checks that the schema is exactly the one this build writes.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        match self.schema_version().await? {
            v if v == SCHEMA_VERSION => Ok(()),
            v if v > SCHEMA_VERSION => Err(StoreError::Config(format!(
                "the database schema is version {v}, newer than this cpixd knows ({SCHEMA_VERSION}); upgrade cpixd"
            ))),
            v => Err(StoreError::Config(format!(
                "the database schema is version {v}, this cpixd needs {SCHEMA_VERSION}: run `cpixd store migrate`"
            ))),
        }
    }

    /// One round trip proving the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run("readiness", |client| async move {
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }

    /// Closes the pool: no new connections; idle ones are dropped.
    pub fn close(&self) {
        self.pool.close();
    }
}

/// A few random bits for retry pauses (not security relevant).
fn jitter() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u32
}
