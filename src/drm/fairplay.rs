//! FairPlay Streaming: the `skd://` key URI, the HLS KEYFORMAT, and the
//! KID-only `pssh` box for a FairPlay DRMSystem.

use super::pssh::PsshBox;
use super::{expand_uri, DrmError, FairPlaySettings, TemplateVars};
use crate::ids::{KeyId, SystemId};

/// The HLS `KEYFORMAT` of FairPlay Streaming.
pub const KEYFORMAT: &str = "com.apple.streamingkeydelivery";

/// Expands `fairplay.key_uri_template`; the result must be an `skd://` URI
/// usable in a quoted HLS attribute.
pub fn key_uri(settings: &FairPlaySettings, vars: &TemplateVars<'_>) -> Result<String, DrmError> {
    expand_uri(
        &settings.key_uri_template,
        vars,
        "fairplay.key_uri_template",
        &["skd://"],
    )
}

/// A v1 box with the FairPlay system id, the KID list and no data (the
/// answer to a request that asks a FairPlay DRMSystem for a `PSSH`).
pub fn cmaf_pssh_box(key_ids: &[KeyId]) -> PsshBox {
    PsshBox::v1(SystemId::FAIRPLAY, key_ids.to_vec(), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drm::test_util::{hex, kid};

    const KIDA: &str = "31323334-3536-3738-3930-313233343536";

    fn vars(iv: Option<&[u8; 16]>) -> TemplateVars<'_> {
        TemplateVars {
            kid: kid(KIDA),
            content_id: "c",
            iv,
        }
    }

    fn settings(template: &str) -> FairPlaySettings {
        FairPlaySettings {
            key_uri_template: template.to_owned(),
        }
    }

    #[test]
    fn fp1_key_uri_and_speke_v1_values() {
        // FP-1: Shaka's key URI, and its SPEKE v1 URIExtXKey / KeyFormat encodings.
        let uri = key_uri(
            &settings("skd://www.license.com/getkey?KeyId={kid}"),
            &vars(None),
        )
        .unwrap();
        assert_eq!(
            uri,
            "skd://www.license.com/getkey?KeyId=31323334-3536-3738-3930-313233343536"
        );
        assert_eq!(
            crate::b64::encode(uri.as_bytes()),
            "c2tkOi8vd3d3LmxpY2Vuc2UuY29tL2dldGtleT9LZXlJZD0zMTMyMzMzNC0zNTM2LTM3MzgtMzkzMC0zMTMyMzMzNDM1MzY="
        );
        assert_eq!(
            crate::b64::encode(KEYFORMAT.as_bytes()),
            "Y29tLmFwcGxlLnN0cmVhbWluZ2tleWRlbGl2ZXJ5"
        );
    }

    #[test]
    fn default_and_axinom_style_templates() {
        // FP-3 shape: skd://<kid>:<iv hex>
        let iv: [u8; 16] = hex("0123456789abcdef0123456789abcdef").try_into().unwrap();
        assert_eq!(
            key_uri(&settings("skd://{kid}:{iv_hex}"), &vars(Some(&iv))).unwrap(),
            "skd://31323334-3536-3738-3930-313233343536:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            key_uri(&FairPlaySettings::default(), &vars(None)).unwrap(),
            "skd://31323334-3536-3738-3930-313233343536"
        );
    }

    #[test]
    fn key_uri_must_be_skd() {
        for template in [
            "https://k/{kid}",
            "SKD://{kid}",
            "skd://",
            "skd://a b",
            "skd://\"{kid}",
            "skd://{nope}",
            "skd://a\tb",
            "skd://a\x7f",
            "skd://a\x01",
            "skd://ä\u{a0}b",
            "skd://ä\u{85}b",
            "skd://ä\u{2028}",
        ] {
            match key_uri(&settings(template), &vars(None)) {
                Err(DrmError::InvalidSetting { setting, .. }) => {
                    assert_eq!(setting, "fairplay.key_uri_template", "{template}")
                }
                other => panic!("{template}: {other:?}"),
            }
        }
    }

    #[test]
    fn key_uri_may_hold_other_text() {
        for template in ["skd://ä/{kid}", "skd://a~b!$&'()*+,;=:@%20/{kid}?x#y"] {
            assert!(
                key_uri(&settings(template), &vars(None)).is_ok(),
                "{template}"
            );
        }
    }

    #[test]
    fn cmaf_box_lists_kids_without_data() {
        let b = cmaf_pssh_box(&[kid(KIDA)]).to_bytes();
        assert_eq!(
            b,
            hex("00000034707373680100000094ce86fb07ff4f43adb893d2fa968ca2000000013132333435363738393031323334353600000000")
        );
    }
}
