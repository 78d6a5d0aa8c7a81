//! Referential checks the CPIX schema cannot express (or libxml2 does not
//! enforce): unique key ids, DRM systems and usage rules that point at
//! existing keys, one DRMSystem per (system, key), and `KeyPeriodFilter`s
//! that point at existing periods.

use super::model::Document;
use super::rules::{Filter, UsageRuleView};
use super::CpixError;
use crate::sorted::{first_repeat, SortedSet};

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Types every period and usage rule, so bad attribute values are reported
/// with the element they are on; returns the rules' views, in order, for
/// [`references`].
pub fn views(doc: &Document) -> Result<Vec<UsageRuleView<'_>>, CpixError> {
    for (i, p) in doc.period_items().iter().enumerate() {
        p.view(&format_args!(
            "ContentKeyPeriodList/ContentKeyPeriod[{}]",
            i + 1
        ))?;
    }
    doc.rules()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.view(&format_args!(
                "ContentKeyUsageRuleList/ContentKeyUsageRule[{}]",
                i + 1
            ))
        })
        .collect()
}

/// Checks every cross-reference in `doc`, given the views of its usage
/// rules in order (from [`views`], or SPEKE 2's contract check); the first
/// problem is returned.
pub fn references(doc: &Document, rules: &[UsageRuleView<'_>]) -> Result<(), CpixError> {
    // Sorted sets: a hostile document may hold tens of thousands of
    // entries, and every check here stays within n log n of its size.
    let kids =
        SortedSet::of_distinct(doc.keys().iter().map(|k| k.kid).enumerate()).map_err(|i| {
            CpixError::Duplicate {
                element: format!("ContentKeyList/ContentKey[{}]", i + 1),
                what: format!("ContentKey with kid {}", doc.keys()[i].kid),
            }
        })?;
    let repeated_pair = first_repeat(
        doc.systems()
            .iter()
            .map(|d| (d.system_id, d.kid))
            .enumerate(),
    );
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
        if repeated_pair == Some(i) {
            return Err(CpixError::Duplicate {
                element: path(),
                what: format!("DRMSystem for system {} and kid {}", d.system_id, d.kid),
            });
        }
    }
    let periods = doc.period_items();
    let ids = periods
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.id()?)));
    let period_ids = SortedSet::of_distinct(ids).map_err(|i| CpixError::Duplicate {
        element: format!("ContentKeyPeriodList/ContentKeyPeriod[{}]", i + 1),
        what: format!(
            "ContentKeyPeriod with id {:?}",
            periods[i].id().unwrap_or_default()
        ),
    })?;
    for (i, view) in rules.iter().enumerate() {
        let path = || format!("ContentKeyUsageRuleList/ContentKeyUsageRule[{}]", i + 1);
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

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "11111111-1111-1111-1111-111111111111";
    const K2: &str = "22222222-2222-2222-2222-222222222222";
    const K3: &str = "33333333-3333-3333-3333-333333333333";
    const WV: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
    const PR: &str = "9a04f079-9840-4286-ab92-e65be0885f95";

    fn check(keys: &[&str], systems: &[(&str, &str)], periods: &[&str]) -> Result<(), CpixError> {
        let keys: String = keys
            .iter()
            .map(|k| format!(r#"<cpix:ContentKey kid="{k}"/>"#))
            .collect();
        let systems: String = systems
            .iter()
            .map(|(s, k)| format!(r#"<cpix:DRMSystem systemId="{s}" kid="{k}"/>"#))
            .collect();
        let periods: String = periods
            .iter()
            .map(|id| format!(r#"<cpix:ContentKeyPeriod id="{id}" index="1"/>"#))
            .collect();
        let xml = format!(
            r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList>{keys}</cpix:ContentKeyList><cpix:DRMSystemList>{systems}</cpix:DRMSystemList><cpix:ContentKeyPeriodList>{periods}</cpix:ContentKeyPeriodList></cpix:CPIX>"#
        );
        let doc = super::super::parse(xml.as_bytes()).expect("well formed");
        references(&doc, &views(&doc).expect("typed"))
    }

    fn element(r: Result<(), CpixError>) -> String {
        match r {
            Err(CpixError::Duplicate { element, .. })
            | Err(CpixError::UnknownReference { element, .. }) => element,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_first_problem_in_document_order_is_reported() {
        assert!(check(&[K1, K2], &[(WV, K1), (PR, K1), (WV, K2)], &["p1", "p2"]).is_ok());
        // The second repeat of K1 is the third key, even though K2 repeats
        // later.
        assert_eq!(
            element(check(&[K1, K2, K1, K2], &[], &[])),
            "ContentKeyList/ContentKey[3]"
        );
        // A repeated pair before an unknown KID, and the other way round.
        let dup_then_unknown = check(&[K1], &[(WV, K1), (WV, K1), (PR, K3)], &[]);
        assert!(matches!(dup_then_unknown, Err(CpixError::Duplicate { .. })));
        assert_eq!(element(dup_then_unknown), "DRMSystemList/DRMSystem[2]");
        let unknown_then_dup = check(&[K1], &[(WV, K1), (PR, K3), (WV, K1)], &[]);
        assert!(matches!(
            unknown_then_dup,
            Err(CpixError::UnknownReference { .. })
        ));
        assert_eq!(element(unknown_then_dup), "DRMSystemList/DRMSystem[2]");
        // Same system for another key, or another system for the same key,
        // is no repeat.
        assert!(check(&[K1, K2], &[(WV, K1), (WV, K2), (PR, K2)], &[]).is_ok());
        assert_eq!(
            element(check(&[K1], &[], &["a", "b", "a"])),
            "ContentKeyPeriodList/ContentKeyPeriod[3]"
        );
    }
}
