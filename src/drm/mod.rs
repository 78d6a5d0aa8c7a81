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

#[cfg(test)]
mod vectors;

use crate::ids::{push_hex, KeyId, SystemId};
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
    /// A W3C ClearKey licence request is not the expected JSON.
    #[error("malformed ClearKey licence request: {0}")]
    MalformedClearKey(String),
    /// An HLS `#EXT-X-KEY` / `#EXT-X-SESSION-KEY` line is malformed.
    #[error("malformed HLS key tag: {0}")]
    MalformedHls(String),
    /// Signalling for this system needs at least one key id.
    #[error("{system} signalling needs at least one key id")]
    NoKeyIds {
        /// System name.
        system: &'static str,
    },
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
            "kid" => out.push_str(vars.kid.uuid_text().as_str()),
            "kid_hex" => push_hex(vars.kid.as_bytes(), &mut out),
            "kid_base64" => out.push_str(&vars.kid.to_base64()),
            "content_id" => percent_encode_into(vars.content_id, &mut out),
            "iv_hex" => {
                if let Some(iv) = vars.iv {
                    push_hex(iv, &mut out);
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

/// Decodes standard base64, ignoring ASCII whitespace (line breaks).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, DrmError> {
    crate::b64::decode(text).ok_or_else(|| DrmError::Base64("not valid base64".to_owned()))
}

/// Appends `text` to `out` with the five XML metacharacters escaped (once).
pub fn xml_escape_into(text: &str, out: &mut String) {
    // The five are ASCII, so a byte scan never splits a character.
    let mut plain = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        out.push_str(escaped);
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
}

/// Expands a URI template and checks the result: it must start with one of
/// `schemes`, have something after it, and hold no whitespace, control
/// character or `"` (it ends up in a quoted HLS attribute and in XML).
pub(crate) fn expand_uri(
    template: &str,
    vars: &TemplateVars<'_>,
    setting: &'static str,
    schemes: &[&str],
) -> Result<String, DrmError> {
    let uri = expand_template(template, vars, setting)?;
    let invalid = |reason: String| DrmError::InvalidSetting { setting, reason };
    let Some(rest) = schemes.iter().find_map(|s| uri.strip_prefix(s)) else {
        return Err(invalid(format!("must start with {}", schemes.join(" or "))));
    };
    if rest.is_empty() {
        return Err(invalid("nothing after the scheme".to_owned()));
    }
    // In ASCII, whitespace and control characters are the bytes up to
    // the space and DEL.
    let refused = match uri.is_ascii() {
        true => uri.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'"'),
        false => uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"'),
    };
    if refused {
        return Err(invalid(
            "contains whitespace, a control character or '\"'".to_owned(),
        ));
    }
    Ok(uri)
}

/// A panic-free forward reader over untrusted bytes; every read returns
/// `None` instead of running past the end.
pub(crate) struct ByteReader<'a> {
    rest: &'a [u8],
}

impl<'a> ByteReader<'a> {
    /// Starts reading at the beginning of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        ByteReader { rest: bytes }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// True when everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads the next `N` bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(head)
    }

    /// Reads the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    /// Reads everything that is left.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }

    /// Reads a little-endian `u16`.
    pub(crate) fn u16_le(&mut self) -> Option<u16> {
        self.array().copied().map(u16::from_le_bytes)
    }

    /// Reads a big-endian `u16`.
    pub(crate) fn u16_be(&mut self) -> Option<u16> {
        self.array().copied().map(u16::from_be_bytes)
    }

    /// Reads a big-endian `u32`.
    pub(crate) fn u32_be(&mut self) -> Option<u32> {
        self.array().copied().map(u32::from_be_bytes)
    }

    /// Reads a little-endian `u32`.
    pub(crate) fn u32_le(&mut self) -> Option<u32> {
        self.array().copied().map(u32::from_le_bytes)
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

/// Human-readable, multi-line description of one or more concatenated
/// `pssh` boxes, or of a bare PlayReady Object (for `cpixd pssh decode`).
/// Structural errors are returned; undecodable system data is described.
pub fn describe_pssh(bytes: &[u8]) -> Result<String, DrmError> {
    let described = if bytes.get(4..8) == Some(b"pssh".as_slice()) {
        Described::Boxes(pssh::PsshBox::parse_all(bytes)?)
    } else {
        let records = playready::parse_object(bytes).map_err(|e| {
            DrmError::MalformedPssh(format!("neither a pssh box nor a PlayReady Object ({e})"))
        })?;
        Described::Object(bytes.len(), records)
    };
    Ok(described.to_string())
}

/// What [`describe_pssh`] found.
enum Described {
    /// One or more boxes.
    Boxes(Vec<pssh::PsshBox>),
    /// A bare PlayReady Object of the given length.
    Object(usize, Vec<playready::ProRecord>),
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Described::Boxes(boxes) => {
                for (i, b) in boxes.iter().enumerate() {
                    describe_box(f, i + 1, boxes.len(), b)?;
                }
                Ok(())
            }
            Described::Object(len, records) => describe_pro(f, "", *len, records),
        }
    }
}

/// Describes one box.
fn describe_box(f: &mut fmt::Formatter<'_>, n: usize, of: usize, b: &pssh::PsshBox) -> fmt::Result {
    writeln!(
        f,
        "pssh box {n} of {of}: {} bytes, version {}",
        b.encoded_len(),
        b.version
    )?;
    let name = b.system_id.name().unwrap_or("unknown system");
    writeln!(f, "  system id: {} ({name})", b.system_id)?;
    if b.version != 0 {
        writeln!(f, "  key ids in box header: {}", b.key_ids.len())?;
        for kid in &b.key_ids {
            writeln!(f, "    {kid}")?;
        }
    }
    writeln!(f, "  data: {} bytes", b.data.len())?;
    match b.system_id {
        SystemId::WIDEVINE => describe_widevine(f, &b.data),
        SystemId::PLAYREADY => match playready::parse_object(&b.data) {
            Ok(records) => describe_pro(f, "  ", b.data.len(), &records),
            Err(e) => writeln!(f, "  PlayReady Object: not decodable ({e})"),
        },
        _ if b.data.is_empty() => Ok(()),
        _ => writeln!(f, "  data (hex): {}", HexPreview(&b.data)),
    }
}

/// Describes Widevine PSSH data.
fn describe_widevine(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    let d = match widevine::WidevinePsshData::decode(data) {
        Ok(d) => d,
        Err(e) => return writeln!(f, "  Widevine PSSH data: not decodable ({e})"),
    };
    writeln!(f, "  Widevine PSSH data:")?;
    if let Some(a) = d.algorithm {
        let name = match a {
            0 => " (UNENCRYPTED)",
            1 => " (AESCTR)",
            _ => "",
        };
        writeln!(f, "    algorithm: {a}{name}")?;
    }
    for kid in &d.key_ids {
        writeln!(f, "    key_id: {kid}")?;
    }
    if let Some(p) = &d.provider {
        writeln!(f, "    provider: {p:?}")?;
    }
    if let Some(c) = &d.content_id {
        match std::str::from_utf8(c) {
            Ok(t) if !t.chars().any(char::is_control) => writeln!(f, "    content_id: {t:?}")?,
            _ => writeln!(f, "    content_id (hex): {}", HexPreview(c))?,
        }
    }
    for (name, value) in [("track_type", &d.track_type), ("policy", &d.policy)] {
        if let Some(v) = value {
            writeln!(f, "    {name}: {v:?}")?;
        }
    }
    if let Some(i) = d.crypto_period_index {
        writeln!(f, "    crypto_period_index: {i}")?;
    }
    if let Some(p) = d.protection_scheme {
        let cc = p.to_be_bytes();
        if cc.iter().all(u8::is_ascii_graphic) {
            writeln!(
                f,
                "    protection_scheme: {} (0x{p:08x})",
                cc.escape_ascii()
            )?;
        } else {
            writeln!(f, "    protection_scheme: 0x{p:08x}")?;
        }
    }
    Ok(())
}

/// Describes a PlayReady Object; lines are prefixed with `indent`.
fn describe_pro(
    f: &mut fmt::Formatter<'_>,
    indent: &str,
    len: usize,
    records: &[playready::ProRecord],
) -> fmt::Result {
    writeln!(
        f,
        "{indent}PlayReady Object: {len} bytes, {} record(s)",
        records.len()
    )?;
    for (i, r) in records.iter().enumerate() {
        let kind = match r.record_type {
            playready::RECORD_TYPE_HEADER => "PlayReady Header",
            playready::RECORD_TYPE_ELS => "Embedded License Store",
            _ => "unknown",
        };
        writeln!(
            f,
            "{indent}  record {}: type {} ({kind}), {} bytes",
            i + 1,
            r.record_type,
            r.value.len()
        )?;
        if r.record_type == playready::RECORD_TYPE_HEADER {
            describe_header(f, indent, r)?;
        }
    }
    Ok(())
}

/// Describes the header in a type 1 PRO record.
fn describe_header(
    f: &mut fmt::Formatter<'_>,
    indent: &str,
    record: &playready::ProRecord,
) -> fmt::Result {
    let xml = match record.header_xml() {
        Ok(xml) => xml,
        Err(e) => return writeln!(f, "{indent}    header: not decodable ({e})"),
    };
    match playready::PlayReadyHeader::parse_xml(&xml) {
        Ok(h) => {
            writeln!(f, "{indent}    WRMHEADER version {}", h.version.as_str())?;
            for k in &h.kids {
                write!(
                    f,
                    "{indent}    kid: {} (VALUE {})",
                    k.kid,
                    k.kid.to_playready_base64()
                )?;
                if let Some(a) = k.algorithm {
                    write!(f, ", ALGID {}", a.as_str())?;
                }
                if let Some(c) = &k.checksum {
                    write!(f, ", CHECKSUM {}", crate::b64::encode(c))?;
                }
                writeln!(f)?;
            }
            let extras = [
                ("LA_URL", &h.la_url),
                ("LUI_URL", &h.lui_url),
                ("DS_ID", &h.ds_id),
                ("CUSTOMATTRIBUTES", &h.custom_attributes),
                ("DECRYPTORSETUP", &h.decryptor_setup),
            ];
            for (name, value) in extras {
                if let Some(v) = value {
                    writeln!(f, "{indent}    {name}: {v}")?;
                }
            }
        }
        Err(e) => writeln!(f, "{indent}    header: not parseable ({e})")?,
    }
    writeln!(f, "{indent}    XML: {xml}")
}

/// Hex of at most 64 bytes, with `…` when there are more.
struct HexPreview<'a>(&'a [u8]);

impl fmt::Display for HexPreview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..64).unwrap_or(self.0);
        for b in shown {
            write!(f, "{b:02x}")?;
        }
        if shown.len() < self.0.len() {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// Helpers shared by the unit tests of the DRM modules.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::crypto::ContentKey;
    use crate::ids::KeyId;

    /// Bytes from hex digits.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        assert!(s.len() % 2 == 0, "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
            .collect()
    }

    /// Bytes from standard base64, line breaks allowed.
    pub(crate) fn b64(s: &str) -> Vec<u8> {
        super::base64_decode(s).expect("valid base64")
    }

    /// A KID from its hyphenated UUID.
    pub(crate) fn kid(s: &str) -> KeyId {
        KeyId::parse_uuid(s).expect("valid UUID")
    }

    /// A content key from 32 hex digits.
    pub(crate) fn content_key(s: &str) -> ContentKey {
        ContentKey::from_slice(&hex(s)).expect("16-byte key")
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

    use test_util::b64;

    // WV-6 followed by CM-3.
    const WV6: &str = "AAAAanBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAEoIARIQeSIcblaNbb7Dji6sAtKZzRoNd2lkZXZpbmVfdGVzdCIfa2V5LWlkOmVTSWNibGFOYmI3RGppNnNBdEtaelE9PSoCU0QyAA==";
    const CM3: &str = "AAAANHBzc2gBAAAAEHfv7MCyTQKs4zweUuL7SwAAAAExMjM0NTY3ODkwMTIzNDU2AAAAAA==";
    // PR-6
    // PR-6
    use super::vectors::PR6_BOX as PR6;
    const PR6_XML: &str = r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.0.0.0"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>Tj4IDzG4PUqRfs54B25Uqg==</KID><CHECKSUM>kJrD0LCX4gc=</CHECKSUM><LA_URL>https://lic.example.com/pr</LA_URL></DATA></WRMHEADER>"#;

    #[test]
    fn describe_widevine_and_common_boxes() {
        let mut bytes = b64(WV6);
        bytes.extend(b64(CM3));
        let expected = "\
pssh box 1 of 2: 106 bytes, version 0
  system id: edef8ba9-79d6-4ace-a3c8-27dcd51d21ed (Widevine)
  data: 74 bytes
  Widevine PSSH data:
    algorithm: 1 (AESCTR)
    key_id: 79221c6e-568d-6dbe-c38e-2eac02d299cd
    provider: \"widevine_test\"
    content_id: \"key-id:eSIcblaNbb7Dji6sAtKZzQ==\"
    track_type: \"SD\"
    policy: \"\"
pssh box 2 of 2: 52 bytes, version 1
  system id: 1077efec-c0b2-4d02-ace3-3c1e52e2fb4b (W3C Common PSSH)
  key ids in box header: 1
    31323334-3536-3738-3930-313233343536
  data: 0 bytes
";
        assert_eq!(describe_pssh(&bytes).unwrap(), expected);
    }

    #[test]
    fn describe_scheme_binary_content_id_and_unknown_system() {
        // WV-2: protection_scheme cbcs.
        let wv2 = b64("AAAASnBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAACoSEGtleWlkMX5+fn5+fn5+fn4SEGtleWlkMn5+fn5+fn5+fn5I88aJmwY=");
        let text = describe_pssh(&wv2).unwrap();
        assert!(text.ends_with("    key_id: 6b657969-6432-7e7e-7e7e-7e7e7e7e7e7e\n    protection_scheme: cbcs (0x63626373)\n"), "{text}");

        let data = widevine::WidevinePsshData {
            content_id: Some(vec![0, 1, 0xff]),
            ..Default::default()
        };
        let wv = pssh::PsshBox::v0(SystemId::WIDEVINE, data.encode()).to_bytes();
        assert!(describe_pssh(&wv)
            .unwrap()
            .ends_with("    content_id (hex): 0001ff\n"));
        let bad = pssh::PsshBox::v0(SystemId::WIDEVINE, vec![0x0b]).to_bytes();
        assert!(describe_pssh(&bad)
            .unwrap()
            .contains("Widevine PSSH data: not decodable"));

        let other = pssh::PsshBox::v0(SystemId::IRDETO, vec![0xab; 70]).to_bytes();
        assert!(describe_pssh(&other).unwrap().ends_with(&format!(
            "(Irdeto)\n  data: 70 bytes\n  data (hex): {}… (70 bytes)\n",
            "ab".repeat(64)
        )));
    }

    #[test]
    fn describe_playready_box_and_bare_object() {
        let bytes = b64(PR6);
        let header = format!(
            "PlayReady Object: 604 bytes, 1 record(s)
  record 1: type 1 (PlayReady Header), 594 bytes
    WRMHEADER version 4.0.0.0
    kid: 0f083e4e-b831-4a3d-917e-ce78076e54aa (VALUE Tj4IDzG4PUqRfs54B25Uqg==), ALGID AESCTR, CHECKSUM kJrD0LCX4gc=
    LA_URL: https://lic.example.com/pr
    XML: {PR6_XML}
"
        );
        let indented: String = header.lines().map(|l| format!("  {l}\n")).collect();
        assert_eq!(
            describe_pssh(&bytes).unwrap(),
            format!(
                "pssh box 1 of 1: 636 bytes, version 0
  system id: 9a04f079-9840-4286-ab92-e65be0885f95 (PlayReady)
  data: 604 bytes
{indented}"
            )
        );
        assert_eq!(describe_pssh(&bytes[32..]).unwrap(), header);
    }

    #[test]
    fn describe_rejects_malformed_input() {
        let mut bytes = b64(CM3);
        bytes.push(0);
        assert!(matches!(
            describe_pssh(&bytes),
            Err(DrmError::MalformedPssh(_))
        ));
        match describe_pssh(b"not a box and not a PlayReady Object") {
            Err(DrmError::MalformedPssh(m)) => assert!(m.starts_with("neither a pssh box")),
            other => panic!("{other:?}"),
        }
        assert!(describe_pssh(&[]).is_err());
    }

    #[test]
    fn shared_text_helpers() {
        let mut out = String::new();
        xml_escape_into(r#"a&b<c>d"e'f&amp;"#, &mut out);
        assert_eq!(out, "a&amp;b&lt;c&gt;d&quot;e&apos;f&amp;amp;");
        out.clear();
        xml_escape_into("é<ü>ビデオ&", &mut out);
        assert_eq!(out, "é&lt;ü&gt;ビデオ&amp;");
        let mut hex = String::new();
        push_hex(&[0x00, 0x0f, 0xa0, 0xff], &mut hex);
        assert_eq!(hex, "000fa0ff");
        let long: Vec<u8> = (0..=255).collect();
        hex.clear();
        push_hex(&long, &mut hex);
        let expected: String = long.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected, "past one 16-byte chunk");
        assert_eq!(crate::b64::encode(b"\xfb\xff"), "+/8=");
        let mut url = String::new();
        crate::b64::encode_url_into(b"\xfb\xff", &mut url);
        assert_eq!(url, "-_8");
        assert_eq!(base64_decode("+/8=\n").unwrap(), b"\xfb\xff");
        assert_eq!(
            base64_decode("+/8").unwrap(),
            b"\xfb\xff",
            "padding is optional"
        );
        assert!(matches!(base64_decode("+/8*"), Err(DrmError::Base64(_))));
    }

    mod properties {
        use super::super::*;
        use super::{b64, CM3, PR6, WV6};
        use proptest::collection::vec;
        use proptest::prelude::*;

        /// Runs every parser on `bytes`; none may panic.
        fn parse_everything(bytes: &[u8]) {
            let _ = pssh::PsshBox::parse(bytes);
            let _ = pssh::PsshBox::parse_all(bytes);
            let _ = playready::parse_object(bytes);
            let _ = playready::object_header_xml(bytes);
            let _ = widevine::WidevinePsshData::decode(bytes);
            let _ = clearkey::parse_license_request(bytes);
            let _ = describe_pssh(bytes);
            if let Ok(text) = std::str::from_utf8(bytes) {
                let _ = playready::PlayReadyHeader::parse_xml(text);
                let _ = hls::parse_tag(text);
            }
        }

        proptest! {
            #[test]
            fn parsers_survive_random_bytes(bytes in vec(any::<u8>(), 0..400)) {
                parse_everything(&bytes);
            }

            #[test]
            fn parsers_survive_mutated_vectors(
                which in 0usize..4,
                edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
                cut in any::<prop::sample::Index>(),
            ) {
                let base = match which {
                    0 => b64(WV6),
                    1 => b64(CM3),
                    2 => b64(PR6),
                    _ => b64(PR6).split_off(32),
                };
                let mut bytes = base;
                for (at, value) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
                bytes.truncate(cut.index(bytes.len() + 1));
                parse_everything(&bytes);
                if let Ok(xml) = playready::object_header_xml(&bytes) {
                    let _ = playready::PlayReadyHeader::parse_xml(&xml);
                }
            }

            #[test]
            fn pssh_boxes_round_trip(
                version in 0u8..=1,
                kids in vec(any::<[u8; 16]>(), 0..5),
                data in vec(any::<u8>(), 0..80),
            ) {
                let kids: Vec<KeyId> = kids.into_iter().map(KeyId::from_bytes).collect();
                let b = if version == 0 {
                    pssh::PsshBox::v0(SystemId::WIDEVINE, data)
                } else {
                    pssh::PsshBox::v1(SystemId::COMMON_PSSH, kids, data)
                };
                let bytes = b.to_bytes();
                prop_assert_eq!(bytes.len(), b.encoded_len());
                prop_assert_eq!(pssh::PsshBox::parse(&bytes), Ok(b));
            }

            #[test]
            fn widevine_data_round_trips(
                kids in vec(any::<[u8; 16]>(), 0..4),
                provider in proptest::option::of("[a-z_]{0,20}"),
                content_id in proptest::option::of(vec(any::<u8>(), 0..200)),
                index in proptest::option::of(any::<u32>()),
                scheme in proptest::option::of(any::<u32>()),
            ) {
                let data = widevine::WidevinePsshData {
                    algorithm: None,
                    key_ids: kids.into_iter().map(KeyId::from_bytes).collect(),
                    provider,
                    content_id,
                    track_type: None,
                    policy: None,
                    crypto_period_index: index,
                    protection_scheme: scheme,
                };
                prop_assert_eq!(widevine::WidevinePsshData::decode(&data.encode()), Ok(data));
            }

            #[test]
            fn playready_headers_round_trip(
                kids in vec(any::<[u8; 16]>(), 1..4),
                cbc in any::<bool>(),
                la_url in proptest::option::of("https://[a-z&<>\"']{1,20}"),
            ) {
                let keys: Vec<(KeyId, crate::crypto::ContentKey)> = kids
                    .into_iter()
                    .map(|k| (KeyId::from_bytes(k), crate::crypto::ContentKey::from_bytes(k)))
                    .collect();
                let refs: Vec<(KeyId, &crate::crypto::ContentKey)> =
                    keys.iter().map(|(k, key)| (*k, key)).collect();
                let settings = PlayReadySettings { la_url, ..Default::default() };
                let scheme = if cbc { Scheme::Cbcs } else { Scheme::Cenc };
                let header = playready::header_for(&refs, Some(scheme), &settings).unwrap();
                let pro = playready::object(&header.to_xml()).unwrap();
                let xml = playready::object_header_xml(&pro).unwrap();
                prop_assert_eq!(playready::PlayReadyHeader::parse_xml(&xml), Ok(header));
            }
        }
    }
}
