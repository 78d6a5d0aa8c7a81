//! DRM signalling: the bytes and text a packager needs next to each content
//! key. One file per system (`widevine`, `playready`, `fairplay`, `clearkey`,
//! `hls`) on top of the ISO `pssh` box (`pssh`). Pure functions of key ids,
//! keys and [`DrmSettings`]; no I/O.

pub mod clearkey;
pub mod fairplay;
pub mod hls;
pub mod playready;
pub mod pssh;
pub mod widevine;

use crate::ids::{KeyId, SystemId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Common Encryption scheme (ISO/IEC 23001-7), as in
/// `ContentKey@commonEncryptionScheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// AES-CTR, full sample / subsample.
    Cenc,
    /// AES-CBC, full sample.
    Cbc1,
    /// AES-CTR, pattern.
    Cens,
    /// AES-CBC, pattern (FairPlay, HLS fMP4).
    Cbcs,
}

impl Scheme {
    /// Parses the four-character code (exact, lowercase as in CPIX).
    pub fn from_fourcc(s: &str) -> Option<Scheme> {
        Some(match s {
            "cenc" => Scheme::Cenc,
            "cbc1" => Scheme::Cbc1,
            "cens" => Scheme::Cens,
            "cbcs" => Scheme::Cbcs,
            _ => return None,
        })
    }

    /// The four-character code.
    pub fn fourcc(self) -> &'static str {
        match self {
            Scheme::Cenc => "cenc",
            Scheme::Cbc1 => "cbc1",
            Scheme::Cens => "cens",
            Scheme::Cbcs => "cbcs",
        }
    }

    /// The four-character code as a big-endian integer (Widevine `protection_scheme`).
    pub fn fourcc_u32(self) -> u32 {
        u32::from_be_bytes(
            *self
                .fourcc()
                .as_bytes()
                .first_chunk::<4>()
                .unwrap_or(&[0; 4]),
        )
    }

    /// True for the AES-CBC schemes.
    pub fn is_cbc(self) -> bool {
        matches!(self, Scheme::Cbc1 | Scheme::Cbcs)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.fourcc())
    }
}

/// Errors building or parsing DRM signalling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrmError {
    /// A `pssh` box (or a sequence of them) is malformed.
    #[error("malformed pssh box: {0}")]
    MalformedPssh(String),
    /// A PlayReady Object or header is malformed.
    #[error("malformed PlayReady object: {0}")]
    MalformedPlayReady(String),
    /// Widevine PSSH data is not a valid protobuf message.
    #[error("malformed Widevine PSSH data: {0}")]
    MalformedWidevine(String),
    /// Base64 text could not be decoded.
    #[error("invalid base64: {0}")]
    Base64(String),
    /// The scheme cannot be signalled for this system (e.g. PlayReady with `cens`).
    #[error("{system} cannot signal scheme {scheme}")]
    UnsupportedScheme {
        /// System name.
        system: &'static str,
        /// The scheme asked for.
        scheme: Scheme,
    },
    /// A configured value is unusable (empty LA_URL, unknown template variable, …).
    #[error("invalid DRM setting {setting}: {reason}")]
    InvalidSetting {
        /// Dotted setting name, e.g. `playready.la_url`.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Per-tenant DRM settings that shape the signalling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrmSettings {
    /// PlayReady header contents.
    pub playready: PlayReadySettings,
    /// Widevine PSSH contents.
    pub widevine: WidevineSettings,
    /// FairPlay key URI.
    pub fairplay: FairPlaySettings,
    /// DASH-IF ClearKey licence URL.
    pub clearkey: ClearKeySettings,
    /// HLS AES-128 key URL.
    pub hls_aes128: HlsAes128Settings,
}

/// PlayReady header (`WRMHEADER`) options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlayReadySettings {
    /// `LA_URL`: licence acquisition URL (absolute).
    pub la_url: Option<String>,
    /// `LUI_URL`: licence UI URL.
    pub lui_url: Option<String>,
    /// `DS_ID`: service id, base64 of a GUID.
    pub ds_id: Option<String>,
    /// Inner XML of `CUSTOMATTRIBUTES` (inserted verbatim, must be well-formed).
    pub custom_attributes: Option<String>,
    /// Emit header version 4.1 instead of 4.0 for single-key AES-CTR content.
    pub prefer_v4_1: bool,
}

/// Widevine `WidevinePsshData` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidevineSettings {
    /// `provider` field (deprecated by Google, still used by some licence services).
    pub provider: Option<String>,
    /// Put the CPIX content id into the `content_id` field.
    pub include_content_id: bool,
}

/// FairPlay Streaming options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FairPlaySettings {
    /// Template of the `skd://` key URI; see [`expand_template`] for variables.
    pub key_uri_template: String,
}

impl Default for FairPlaySettings {
    fn default() -> Self {
        FairPlaySettings {
            key_uri_template: "skd://{kid}".to_owned(),
        }
    }
}

/// DASH-IF ClearKey options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClearKeySettings {
    /// Template of the licence URL put in `dashif:Laurl`.
    pub license_url_template: String,
}

impl Default for ClearKeySettings {
    fn default() -> Self {
        ClearKeySettings {
            license_url_template: "https://cpixd.invalid/license/v1/clearkey".to_owned(),
        }
    }
}

/// HLS AES-128 options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsAes128Settings {
    /// Template of the key URL that returns the raw 16 key bytes.
    pub key_uri_template: String,
}

impl Default for HlsAes128Settings {
    fn default() -> Self {
        HlsAes128Settings {
            key_uri_template: "https://cpixd.invalid/hls/v1/key/{content_id}/{kid}".to_owned(),
        }
    }
}

/// Values available to URI templates.
#[derive(Debug, Clone, Copy)]
pub struct TemplateVars<'a> {
    /// The key id.
    pub kid: KeyId,
    /// The CPIX content id.
    pub content_id: &'a str,
    /// The explicit IV, when one exists.
    pub iv: Option<&'a [u8; 16]>,
}

/// Expands `{kid}` (hyphenated UUID), `{kid_hex}` (32 hex digits),
/// `{kid_base64}`, `{content_id}` (percent-encoded for use in a URL path or
/// query) and `{iv_hex}` (32 hex digits; empty when there is no IV).
/// Unknown `{names}` are an error naming `setting`.
pub fn expand_template(
    template: &str,
    vars: &TemplateVars<'_>,
    setting: &'static str,
) -> Result<String, DrmError> {
    let mut out = String::with_capacity(template.len() + 48);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| DrmError::InvalidSetting {
            setting,
            reason: "unterminated '{' in template".to_owned(),
        })?;
        match &after[..close] {
            "kid" => out.push_str(&vars.kid.to_string()),
            "kid_hex" => out.push_str(&vars.kid.to_hex()),
            "kid_base64" => out.push_str(&vars.kid.to_base64()),
            "content_id" => percent_encode_into(vars.content_id, &mut out),
            "iv_hex" => {
                if let Some(iv) = vars.iv {
                    for b in iv {
                        out.push_str(&format!("{b:02x}"));
                    }
                }
            }
            other => {
                return Err(DrmError::InvalidSetting {
                    setting,
                    reason: format!("unknown template variable {{{other}}}"),
                })
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
fn percent_encode_into(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The systems cpixd generates signalling for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrmKind {
    /// Google Widevine.
    Widevine,
    /// Microsoft PlayReady.
    PlayReady,
    /// Apple FairPlay Streaming.
    FairPlay,
    /// W3C common PSSH.
    CommonPssh,
    /// DASH-IF ClearKey.
    ClearKey,
    /// HLS AES-128 (either system id).
    HlsAes128,
}

impl DrmKind {
    /// Maps a system id to the kind cpixd knows how to signal, if any.
    pub fn from_system_id(id: SystemId) -> Option<DrmKind> {
        Some(match id {
            SystemId::WIDEVINE => DrmKind::Widevine,
            SystemId::PLAYREADY => DrmKind::PlayReady,
            SystemId::FAIRPLAY => DrmKind::FairPlay,
            SystemId::COMMON_PSSH => DrmKind::CommonPssh,
            SystemId::DASHIF_CLEARKEY => DrmKind::ClearKey,
            SystemId::HLS_AES128 | SystemId::HLS_AES128_SPEKE_V1 => DrmKind::HlsAes128,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_fourcc_values() {
        assert_eq!(Scheme::Cenc.fourcc_u32(), 0x6365_6E63);
        assert_eq!(Scheme::Cbcs.fourcc_u32(), 1_667_392_371);
        assert_eq!(Scheme::from_fourcc("cbcs"), Some(Scheme::Cbcs));
        assert_eq!(Scheme::from_fourcc("CBCS"), None);
    }

    #[test]
    fn templates_expand_and_reject_unknown_names() {
        let kid = KeyId::parse_uuid("0f083e4e-b831-4a3d-917e-ce78076e54aa").unwrap();
        let iv = [0x11u8; 16];
        let vars = TemplateVars {
            kid,
            content_id: "ch 1/é",
            iv: Some(&iv),
        };
        assert_eq!(
            expand_template("skd://{kid}:{iv_hex}", &vars, "t").unwrap(),
            "skd://0f083e4e-b831-4a3d-917e-ce78076e54aa:11111111111111111111111111111111"
        );
        assert_eq!(
            expand_template("https://k/{content_id}/{kid_hex}", &vars, "t").unwrap(),
            "https://k/ch%201%2F%C3%A9/0f083e4eb8314a3d917ece78076e54aa"
        );
        let err = expand_template("x{nope}", &vars, "fairplay.key_uri_template").unwrap_err();
        assert!(err.to_string().contains("fairplay.key_uri_template"));
        assert!(expand_template("x{kid", &vars, "t").is_err());
    }
}
