//! The embedded licence request log: its own redb file beside the key
//! store (so log writes never wait on key commits), one table keyed by
//! (tenant ‖ 0x00 ‖ time ‖ sequence) so that a tenant's time range is one
//! contiguous scan, and a per-tenant row count for retention.

use crate::keys::StoreError;
use crate::licence::log::{encode, LicenceLog, LogEntry, LogView};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};

/// (tenant ‖ 0x00 ‖ time ms ‖ sequence) → record.
const REQUESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("licence_requests");
/// tenant → number of stored entries.
const TENANTS: TableDefinition<&str, u64> = TableDefinition::new("licence_tenants");

/// One item of a range scan.
type RangeItem<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("licence log: {e}"))
}

fn key(tenant: &str, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 11);
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.extend_from_slice(&(id >> 16).to_be_bytes());
    k.extend_from_slice(&((id & 0xffff) as u16).to_be_bytes());
    k
}

/// The id of a key: time ms in the high bits, sequence in the low 16.
fn id_of(tenant_len: usize, key: &[u8]) -> Option<(u64, u64)> {
    let rest = key.get(tenant_len + 1..)?;
    let time = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let seq = u16::from_be_bytes(rest.get(8..10)?.try_into().ok()?);
    Some(((time << 16) | u64::from(seq), time))
}

/// The embedded licence log.
pub struct EmbeddedLicenceLog {
    db: Database,
    seq: AtomicU16,
}

impl EmbeddedLicenceLog {
    /// Opens (or creates) the log file at `path`.
    pub fn open(path: &Path) -> Result<EmbeddedLicenceLog, StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(32 << 20)
            .create(path)
            .map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(REQUESTS).map_err(unavailable)?;
        txn.open_table(TENANTS).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        Ok(EmbeddedLicenceLog {
            db,
            seq: AtomicU16::new(0),
        })
    }
}

impl LicenceLog for EmbeddedLicenceLog {
    fn append(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(unavailable)?;
        {
            let mut table = txn.open_table(REQUESTS).map_err(unavailable)?;
            let mut tenants = txn.open_table(TENANTS).map_err(unavailable)?;
            let mut added: std::collections::BTreeMap<&str, u64> = Default::default();
            for e in entries {
                let record = encode(e);
                // A free sequence number within this millisecond. The key is
                // almost always free, so it is written straight away; when it
                // was taken (the sequence starts over at each open), the
                // entry it replaced is put back and the next number tried.
                loop {
                    let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                    let k = key(&e.tenant, (e.time_ms << 16) | u64::from(seq));
                    let replaced = table
                        .insert(&k[..], &record[..])
                        .map_err(unavailable)?
                        .map(|old| old.value().to_vec());
                    match replaced {
                        None => break,
                        Some(old) => {
                            table.insert(&k[..], &old[..]).map_err(unavailable)?;
                        }
                    }
                }
                *added.entry(&e.tenant).or_default() += 1;
            }
            for (tenant, n) in added {
                let before = tenants
                    .get(tenant)
                    .map_err(unavailable)?
                    .map_or(0, |v| v.value());
                tenants.insert(tenant, before + n).map_err(unavailable)?;
            }
        }
        txn.commit().map_err(unavailable)
    }

    fn scan(
        &self,
        tenant: &str,
        from_ms: u64,
        to_ms: u64,
        newest_first: bool,
        visit: &mut dyn FnMut(&LogView<'_>) -> bool,
    ) -> Result<(), StoreError> {
        if from_ms >= to_ms {
            return Ok(());
        }
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(REQUESTS).map_err(unavailable)?;
        let (lo, hi) = (key(tenant, from_ms << 16), key(tenant, to_ms << 16));
        let range = table.range(&lo[..]..&hi[..]).map_err(unavailable)?;
        let mut step = |entry: RangeItem<'_>| -> Result<bool, StoreError> {
            let (k, v) = entry.map_err(unavailable)?;
            let Some((id, time)) = id_of(tenant.len(), k.value()) else {
                return Ok(true);
            };
            match LogView::decode(id, time, v.value()) {
                Some(view) => Ok(visit(&view)),
                None => Ok(true), // a damaged record is skipped, not fatal
            }
        };
        if newest_first {
            for entry in range.rev() {
                if !step(entry)? {
                    break;
                }
            }
        } else {
            for entry in range {
                if !step(entry)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn get(
        &self,
        tenant: &str,
        ids: &[u64],
        visit: &mut dyn FnMut(&LogView<'_>),
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(REQUESTS).map_err(unavailable)?;
        for &id in ids {
            if let Some(v) = table.get(&key(tenant, id)[..]).map_err(unavailable)? {
                if let Some(view) = LogView::decode(id, id >> 16, v.value()) {
                    visit(&view);
                }
            }
        }
        Ok(())
    }

    fn prune(&self, before_ms: u64, max_rows_per_tenant: u64) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(unavailable)?;
        let mut removed = 0u64;
        {
            let mut table = txn.open_table(REQUESTS).map_err(unavailable)?;
            let mut tenants = txn.open_table(TENANTS).map_err(unavailable)?;
            let list: Vec<(String, u64)> = tenants
                .iter()
                .map_err(unavailable)?
                .filter_map(|e| e.ok().map(|(k, v)| (k.value().to_owned(), v.value())))
                .collect();
            for (tenant, mut count) in list {
                let start = key(&tenant, 0);
                // Too old.
                let old_end = key(&tenant, before_ms << 16);
                let mut gone = 0u64;
                table
                    .retain_in(&start[..]..&old_end[..], |_, _| {
                        gone += 1;
                        false
                    })
                    .map_err(unavailable)?;
                count = count.saturating_sub(gone);
                removed += gone;
                // Too many: the oldest beyond the bound.
                if count > max_rows_per_tenant {
                    let mut excess = count - max_rows_per_tenant;
                    let end = key(&tenant, u64::MAX);
                    table
                        .retain_in(&start[..]..&end[..], |_, _| {
                            if excess > 0 {
                                excess -= 1;
                                false
                            } else {
                                true
                            }
                        })
                        .map_err(unavailable)?;
                    removed += count - max_rows_per_tenant;
                    count = max_rows_per_tenant;
                }
                tenants
                    .insert(tenant.as_str(), count)
                    .map_err(unavailable)?;
            }
        }
        txn.commit().map_err(unavailable)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licence::log::RequestType;

    fn entry(time_ms: u64, http_status: u16) -> LogEntry {
        LogEntry {
            time_ms,
            tenant: "t".into(),
            system: None,
            request_type: RequestType::License,
            token_user_id: None,
            token_content_id: None,
            http_status,
            error_code: None,
            error_message: None,
            ip: None,
            user_agent: None,
            payload_length: 0,
            response_length: 0,
            duration_us: 0,
            kids: Vec::new(),
            license_url: String::new(),
        }
    }

    /// Sequence numbers start over when the log is opened again, so a
    /// request in a millisecond that already has entries lands on a taken
    /// key: it must go to the next free one, and the entry there must stay.
    #[test]
    fn a_taken_key_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("licences.redb");
        EmbeddedLicenceLog::open(&path)
            .unwrap()
            .append(&[entry(5, 200), entry(5, 201)])
            .unwrap();
        let log = EmbeddedLicenceLog::open(&path).unwrap();
        log.append(&[entry(5, 202), entry(5, 203), entry(6, 204)])
            .unwrap();
        let mut statuses = Vec::new();
        log.scan("t", 0, 10, false, &mut |v| {
            statuses.push(v.http_status);
            true
        })
        .unwrap();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 201, 202, 203, 204]);
    }
}
