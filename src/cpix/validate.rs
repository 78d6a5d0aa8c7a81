//! Referential checks the CPIX schema cannot express (or libxml2 does not
//! enforce): unique key ids, DRM systems and usage rules that point at
//! existing keys, one DRMSystem per (system, key), and `KeyPeriodFilter`s
//! that point at existing periods.

use super::model::Document;
use super::rules::Filter;
use super::CpixError;
use crate::ids::KeyId;
use std::collections::HashSet;

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Types every period and usage rule, so bad attribute values are reported
/// with the element they are on.
pub fn views(doc: &Document) -> Result<(), CpixError> {
    for (i, p) in doc.period_items().iter().enumerate() {
        p.view(&format_args!(
            "ContentKeyPeriodList/ContentKeyPeriod[{}]",
            i + 1
        ))?;
    }
    for (i, r) in doc.rules().iter().enumerate() {
        r.view(&format_args!(
            "ContentKeyUsageRuleList/ContentKeyUsageRule[{}]",
            i + 1
        ))?;
    }
    Ok(())
}

/// Checks every cross-reference in `doc`; the first problem is returned.
pub fn references(doc: &Document) -> Result<(), CpixError> {
    // Hash sets: a hostile document may hold tens of thousands of entries,
    // and every check here stays linear in its size.
    let mut kids: HashSet<KeyId> = HashSet::with_capacity(doc.keys().len());
    for (i, k) in doc.keys().iter().enumerate() {
        if !kids.insert(k.kid) {
            return Err(CpixError::Duplicate {
                element: format!("ContentKeyList/ContentKey[{}]", i + 1),
                what: format!("ContentKey with kid {}", k.kid),
            });
        }
    }
    let mut pairs = HashSet::with_capacity(doc.systems().len());
    for (i, d) in doc.systems().iter().enumerate() {
        let path = || format!("DRMSystemList/DRMSystem[{}]", i + 1);
        if !kids.contains(&d.kid) {
            return Err(CpixError::UnknownReference {
                element: path(),
                attribute: "kid",
                value: d.kid.to_string(),
                target: "ContentKey@kid",
            });
        }
        if !pairs.insert((d.system_id, d.kid)) {
            return Err(CpixError::Duplicate {
                element: path(),
                what: format!("DRMSystem for system {} and kid {}", d.system_id, d.kid),
            });
        }
    }
    let mut period_ids: HashSet<&str> = HashSet::with_capacity(doc.period_items().len());
    for (i, p) in doc.period_items().iter().enumerate() {
        if let Some(id) = p.id() {
            if !period_ids.insert(id) {
                return Err(CpixError::Duplicate {
                    element: format!("ContentKeyPeriodList/ContentKeyPeriod[{}]", i + 1),
                    what: format!("ContentKeyPeriod with id {id:?}"),
                });
            }
        }
    }
    for (i, r) in doc.rules().iter().enumerate() {
        let path = || format!("ContentKeyUsageRuleList/ContentKeyUsageRule[{}]", i + 1);
        let view = r.view(&format_args!(
            "ContentKeyUsageRuleList/ContentKeyUsageRule[{}]",
            i + 1
        ))?;
        if !kids.contains(&view.kid) {
            return Err(CpixError::UnknownReference {
                element: path(),
                attribute: "kid",
                value: view.kid.to_string(),
                target: "ContentKey@kid",
            });
        }
        for f in &view.filters {
            if let Filter::KeyPeriod { period_id } = f {
                // Without any ContentKeyPeriodList a KeyPeriodFilter names
                // nothing and is ignored: AWS's own SPEKE 2 VOD verification
                // request once carried one.
                if doc.periods.is_some() && !period_ids.contains(period_id) {
                    return Err(CpixError::UnknownReference {
                        element: format!("{}/KeyPeriodFilter", path()),
                        attribute: "periodId",
                        value: truncate(period_id),
                        target: "ContentKeyPeriod@id",
                    });
                }
            }
        }
    }
    Ok(())
}
