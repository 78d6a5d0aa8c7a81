//! `cpixd store …`: apply the PostgreSQL schema migrations alone
//! (`migrate`), and move every record between an embedded data directory
//! and PostgreSQL (`copy`), idempotent and verified record by record, so
//! a platform moves to several nodes without re-keying its content.

use super::{load_config, runtime, StoreArgs};
use crate::config::store::{StoreBackend, StoreFileConfig};
use crate::crypto::OsRandom;
use crate::keys::{RawOutcome, RawWrite, RecordId};
use crate::store::Purpose;
use clap::{Args, Subcommand};
use std::sync::Arc;

/// Records copied per transaction.
const BATCH: usize = 500;

/// `cpixd store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Apply the PostgreSQL schema migrations this build knows, then exit.
    Migrate {
        /// Store location (`[store]` of the file, or CPIXD_STORE_URL).
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Copy every record (keys, signing keys) from one store to another:
    /// a data directory or a PostgreSQL URL on each side. Records already
    /// there and identical are skipped; a different record under the same
    /// KID is reported and left alone.
    Copy(CopyArgs),
}

/// Arguments of `cpixd store copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source: an embedded data directory or a `postgres://` URL.
    #[arg(long)]
    pub from: String,
    /// Destination: an embedded data directory or a `postgres://` URL.
    #[arg(long)]
    pub to: String,
    /// Configuration file for the master key (master_key_file); by default
    /// the key of the source data directory or CPIXD_MASTER_KEY.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// Whether `s` names a PostgreSQL database rather than a directory.
fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains("host=")
}

/// Runs `cpixd store …`.
pub fn run(cmd: &StoreCommand) -> i32 {
    let result = runtime().block_on(async {
        match cmd {
            StoreCommand::Migrate { store } => migrate(store).await,
            StoreCommand::Copy(a) => copy(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

async fn migrate(args: &StoreArgs) -> Result<i32, String> {
    let config = load_config(args)?;
    let StoreBackend::Postgres(settings) = &config.store else {
        return Err(
            "the store is embedded: nothing to migrate (set [store] backend = \"postgres\" or CPIXD_STORE_URL)"
                .into(),
        );
    };
    let db = crate::store::postgres::Database::new(settings).map_err(|e| e.to_string())?;
    let applied = db.migrate().await.map_err(|e| e.to_string())?;
    if applied.is_empty() {
        eprintln!(
            "{}: schema already at version {}",
            db.describe(),
            crate::store::postgres::SCHEMA_VERSION
        );
    } else {
        eprintln!("{}: applied migration(s) {applied:?}", db.describe());
    }
    db.close();
    Ok(0)
}

/// A configuration whose store is `location`.
fn config_for(
    location: &str,
    base: &crate::config::Config,
) -> Result<crate::config::Config, String> {
    let mut c = base.clone();
    if is_url(location) {
        let mut errors = Vec::new();
        let file = StoreFileConfig {
            backend: "postgres".into(),
            url: Some(location.to_owned()),
            ..StoreFileConfig::default()
        };
        let backend = crate::config::store::validate(&file, &mut errors);
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        c.store = backend;
    } else {
        c.store = StoreBackend::Embedded;
        c.data_dir = location.into();
    }
    Ok(c)
}

fn describe(location: &str) -> String {
    if is_url(location) {
        crate::config::store::redact(location)
    } else {
        location.to_owned()
    }
}

async fn copy(a: &CopyArgs) -> Result<i32, String> {
    let base = load_config(&StoreArgs {
        config: a.config.clone(),
        data_dir: (!is_url(&a.from)).then(|| a.from.clone().into()),
    })?;
    let from = config_for(&a.from, &base)?;
    let mut to = config_for(&a.to, &base)?;
    // One master key for both sides: the records move sealed as they are.
    to.master_key_file = from.master_key_file.clone();
    let ring = crate::config::load_keyring(&from)?;
    let source = crate::store::open(
        &from,
        ring.clone(),
        Arc::new(OsRandom),
        false,
        Purpose::Existing,
    )
    .await
    .map_err(|e| format!("--from {}: {e}", describe(&a.from)))?;
    if let StoreBackend::Embedded = to.store {
        crate::config::ensure_dir(&to.data_dir).map_err(|e| format!("--to: {e}"))?;
    }
    let dest = crate::store::open(&to, ring.clone(), Arc::new(OsRandom), false, Purpose::Serve)
        .await
        .map_err(|e| format!("--to {}: {e}", describe(&a.to)))?;
    let (mut copied, mut identical, mut differing) = (0u64, 0u64, Vec::new());
    let mut after: Option<RecordId> = None;
    loop {
        let page = crate::keys::next_records(&*source.keys, &mut after, BATCH)
            .await
            .map_err(|e| format!("reading {}: {e}", describe(&a.from)))?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            crate::keys::verify_raw(&ring, r).map_err(|e| format!("source record: {e}"))?;
        }
        let writes = page
            .iter()
            .map(|r| RawWrite {
                record: r.clone(),
                expected: None,
            })
            .collect();
        let outcomes = dest
            .keys
            .put_raw(writes)
            .await
            .map_err(|e| format!("writing {}: {e}", describe(&a.to)))?;
        for (r, o) in page.iter().zip(outcomes) {
            match o {
                RawOutcome::Written => copied += 1,
                RawOutcome::Identical => identical += 1,
                RawOutcome::Differs => {
                    // Same key sealed differently (a rewrap) is still the same key.
                    if same_content(&*dest.keys, &ring, r).await {
                        identical += 1;
                    } else {
                        differing.push(r.id.clone());
                    }
                }
            }
        }
        // Verify what the destination now holds for this page.
        for r in &page {
            if differing.contains(&r.id) {
                continue;
            }
            if !same_content(&*dest.keys, &ring, r).await {
                return Err(format!(
                    "verification failed for {:?} at the destination",
                    r.id
                ));
            }
        }
    }
    for id in &differing {
        println!("differs, left alone: {id:?}");
    }
    eprintln!(
        "{copied} record(s) copied, {identical} already there, {} different at the destination; every copied record read back and verified",
        differing.len()
    );
    source.keys.shutdown();
    dest.keys.shutdown();
    Ok(if differing.is_empty() { 0 } else { 2 })
}

/// Whether the destination holds the same key (or signing keys) as `r`.
async fn same_content(
    dest: &dyn crate::keys::KeyStore,
    ring: &crate::keys::Keyring,
    r: &crate::keys::RawRecord,
) -> bool {
    match &r.id {
        RecordId::Key { tenant, kid } => {
            let Ok(want) = crate::keys::decode_record(ring, tenant, *kid, &r.bytes) else {
                return false;
            };
            matches!(dest.get(tenant, *kid).await, Ok(Some(got)) if got.key == want.key && got.meta.content_id == want.meta.content_id && got.iv == want.iv)
        }
        RecordId::Signing { tenant } => {
            let Ok(want) = crate::keys::signing::decode(ring, tenant, &r.bytes) else {
                return false;
            };
            matches!(dest.signing_keys(tenant).await, Ok(got) if got == want)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_and_directories() {
        assert!(super::is_url("postgres://u@h/db"));
        assert!(super::is_url("host=/tmp dbname=x"));
        assert!(!super::is_url("./cpixd-data"));
    }
}
