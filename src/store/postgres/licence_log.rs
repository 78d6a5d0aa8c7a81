//! The licence request log on PostgreSQL: one row per request keyed by
//! (tenant, id), the id being the time in milliseconds shifted left 16
//! bits with a low part from a cycling database sequence, so entries of
//! every node interleave in time order and a tenant's time range is one
//! index range. Records are the embedded log's records.

use super::Database;
use crate::keys::StoreError;
use crate::licence::log::{encode, LicenceLog, LogEntry, LogView};

/// Rows fetched per round trip of a scan.
const PAGE: i64 = 10_000;

/// The PostgreSQL licence log.
pub struct PostgresLicenceLog {
    db: Database,
}

fn id_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

impl PostgresLicenceLog {
    /// The log in `db` (whose schema must be current).
    pub fn new(db: Database) -> PostgresLicenceLog {
        PostgresLicenceLog { db }
    }
}

impl LicenceLog for PostgresLicenceLog {
    fn append(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let tenants: Vec<&str> = entries.iter().map(|e| e.tenant.as_str()).collect();
        let times: Vec<i64> = entries.iter().map(|e| id_i64(e.time_ms)).collect();
        let records: Vec<Vec<u8>> = entries.iter().map(encode).collect();
        let (tenants, times, records) = (&tenants, &times, &records);
        self.db
            .block_on(self.db.run("licence log", |client| async move {
                client
                    .execute(
                        "INSERT INTO cpixd_licence_requests (tenant, id, record)
                     SELECT t, (m << 16) | nextval('cpixd_licence_seq'), r
                     FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS u(t, m, r)
                     ON CONFLICT (tenant, id) DO NOTHING",
                        &[tenants, times, records],
                    )
                    .await?;
                Ok(())
            }))
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
        // Keyset paging: [lo, hi) shrinks from one end per page.
        let (mut lo, mut hi) = (id_i64(from_ms << 16), id_i64(to_ms << 16));
        loop {
            let sql = if newest_first {
                "SELECT id, record FROM cpixd_licence_requests
                 WHERE tenant = $1 AND id >= $2 AND id < $3 ORDER BY id DESC LIMIT $4"
            } else {
                "SELECT id, record FROM cpixd_licence_requests
                 WHERE tenant = $1 AND id >= $2 AND id < $3 ORDER BY id LIMIT $4"
            };
            let rows = self
                .db
                .block_on(self.db.run("licence log", |client| async move {
                    Ok(client.query(sql, &[&tenant, &lo, &hi, &PAGE]).await?)
                }))?;
            for row in &rows {
                let id = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
                if let Some(view) = LogView::decode(id, id >> 16, row.get::<_, &[u8]>(1)) {
                    if !visit(&view) {
                        return Ok(());
                    }
                }
            }
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
            let last: i64 = rows[rows.len() - 1].get(0);
            if newest_first {
                hi = last;
            } else {
                lo = last + 1;
            }
        }
    }

    fn get(
        &self,
        tenant: &str,
        ids: &[u64],
        visit: &mut dyn FnMut(&LogView<'_>),
    ) -> Result<(), StoreError> {
        let wanted: Vec<i64> = ids.iter().map(|&i| id_i64(i)).collect();
        let wanted = &wanted;
        let rows = self.db.block_on(self.db.run("licence log", |client| async move {
            Ok(client
                .query(
                    "SELECT id, record FROM cpixd_licence_requests WHERE tenant = $1 AND id = ANY($2)",
                    &[&tenant, wanted],
                )
                .await?)
        }))?;
        let by_id: std::collections::HashMap<i64, &[u8]> = rows
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, &[u8]>(1)))
            .collect();
        for &id in ids {
            if let Some(bytes) = by_id.get(&id_i64(id)) {
                if let Some(view) = LogView::decode(id, id >> 16, bytes) {
                    visit(&view);
                }
            }
        }
        Ok(())
    }

    fn prune(&self, before_ms: u64, max_rows_per_tenant: u64) -> Result<u64, StoreError> {
        let before = id_i64(before_ms << 16);
        let keep = id_i64(max_rows_per_tenant);
        self.db
            .block_on(self.db.run("licence log", |client| async move {
                let old = client
                    .execute(
                        "DELETE FROM cpixd_licence_requests WHERE id < $1",
                        &[&before],
                    )
                    .await?;
                let excess = client
                    .execute(
                        "DELETE FROM cpixd_licence_requests AS r USING (
                         SELECT tenant, id FROM (
                             SELECT tenant, id,
                                    row_number() OVER (PARTITION BY tenant ORDER BY id DESC) AS n
                             FROM cpixd_licence_requests
                         ) AS ranked WHERE n > $1
                     ) AS d
                     WHERE r.tenant = d.tenant AND r.id = d.id",
                        &[&keep],
                    )
                    .await?;
                Ok(old + excess)
            }))
    }
}
