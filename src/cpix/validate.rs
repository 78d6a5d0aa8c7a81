//! Referential checks the CPIX schema cannot express (or libxml2 does not
//! enforce): unique key ids, DRM systems and usage rules that point at
//! existing keys, one DRMSystem per (system, key), and `KeyPeriodFilter`s
//! that point at existing periods.

use super::model::Document;
use super::rules::Filter;
use super::CpixError;
use crate::ids::KeyId;

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
    // Documents hold tens of entries: sorted vectors beat hashing here.
    let mut kids: Vec<KeyId> = Vec::with_capacity(doc.keys().len());
    for (i, k) in doc.keys().iter().enumerate() {
        if let Err(at) = kids.binary_search(&k.kid) {
            kids.insert(at, k.kid);
        } else {
            return Err(CpixError::Duplicate {
                element: format!("ContentKeyList/ContentKey[{}]", i + 1),
                what: format!("ContentKey with kid {}", k.kid),
            });
        }
    }
    let mut pairs = Vec::with_capacity(doc.systems().len());
    for (i, d) in doc.systems().iter().enumerate() {
        let path = || format!("DRMSystemList/DRMSystem[{}]", i + 1);
        if kids.binary_search(&d.kid).is_err() {
            return Err(CpixError::UnknownReference {
                element: path(),
                attribute: "kid",
                value: d.kid.to_string(),
                target: "ContentKey@kid",
            });
        }
        match pairs.binary_search(&(d.system_id, d.kid)) {
            Err(at) => pairs.insert(at, (d.system_id, d.kid)),
            Ok(_) => {
                return Err(CpixError::Duplicate {
                    element: path(),
                    what: format!("DRMSystem for system {} and kid {}", d.system_id, d.kid),
                })
            }
        }
    }
    let mut period_ids: Vec<&str> = Vec::with_capacity(doc.period_items().len());
    for (i, p) in doc.period_items().iter().enumerate() {
        if let Some(id) = p.id() {
            match period_ids.binary_search(&id) {
                Err(at) => period_ids.insert(at, id),
                Ok(_) => {
                    return Err(CpixError::Duplicate {
                        element: format!("ContentKeyPeriodList/ContentKeyPeriod[{}]", i + 1),
                        what: format!("ContentKeyPeriod with id {id:?}"),
                    })
                }
            }
        }
    }
    for (i, r) in doc.rules().iter().enumerate() {
        let path = || format!("ContentKeyUsageRuleList/ContentKeyUsageRule[{}]", i + 1);
        let view = r.view(&format_args!(
            "ContentKeyUsageRuleList/ContentKeyUsageRule[{}]",
            i + 1
        ))?;
        if kids.binary_search(&view.kid).is_err() {
            return Err(CpixError::UnknownReference {
                element: path(),
                attribute: "kid",
                value: view.kid.to_string(),
                target: "ContentKey@kid",
            });
        }
        for f in &view.filters {
            if let Filter::KeyPeriod { period_id } = f {
                if period_ids.binary_search(period_id).is_err() {
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
