//! PlayReady: key checksums, the PlayReady Header (`WRMHEADER` 4.0–4.3)
//! writer and reader, the PlayReady Object (PRO) around it, and the
//! PlayReady `pssh` box.

use super::pssh::PsshBox;
use super::{base64_decode, xml_escape_into, ByteReader, DrmError};
use super::{PlayReadySettings, Scheme};
use crate::crypto::{aes128_ecb_encrypt_block, ContentKey};
use crate::ids::{KeyId, SystemId};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;

/// PRO record type of a PlayReady Header.
pub const RECORD_TYPE_HEADER: u16 = 1;
/// PRO record type of an Embedded License Store.
pub const RECORD_TYPE_ELS: u16 = 3;
/// The `WRMHEADER` namespace.
pub const HEADER_NAMESPACE: &str = "http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader";
/// The system name used in errors.
const SYSTEM: &str = "PlayReady";

/// The AESCTR key checksum: the first 8 bytes of AES-128-ECB(key, KID as
/// little-endian GUID bytes).
pub fn checksum(kid: KeyId, key: &ContentKey) -> [u8; 8] {
    let [c0, c1, c2, c3, c4, c5, c6, c7, ..] = aes128_ecb_encrypt_block(key, &kid.to_guid_le());
    [c0, c1, c2, c3, c4, c5, c6, c7]
}

/// A `WRMHEADER` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeaderVersion {
    /// 4.0.0.0: one AESCTR key, `KID`/`CHECKSUM` elements.
    V4_0,
    /// 4.1.0.0: zero or one key as `PROTECTINFO/KID` attributes.
    V4_1,
    /// 4.2.0.0: several keys in `KIDS`.
    V4_2,
    /// 4.3.0.0: like 4.2, and AESCBC keys.
    V4_3,
}

impl HeaderVersion {
    /// The `version` attribute value, e.g. `4.0.0.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderVersion::V4_0 => "4.0.0.0",
            HeaderVersion::V4_1 => "4.1.0.0",
            HeaderVersion::V4_2 => "4.2.0.0",
            HeaderVersion::V4_3 => "4.3.0.0",
        }
    }

    /// Parses a `version` attribute value.
    pub fn parse(s: &str) -> Option<HeaderVersion> {
        [Self::V4_0, Self::V4_1, Self::V4_2, Self::V4_3]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A key's `ALGID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `AESCTR` (cenc).
    AesCtr,
    /// `AESCBC` (cbcs, 4.3 only).
    AesCbc,
}

impl Algorithm {
    /// The `ALGID` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::AesCtr => "AESCTR",
            Algorithm::AesCbc => "AESCBC",
        }
    }

    /// Parses an `ALGID` value (COCKTAIL is not supported).
    pub fn parse(s: &str) -> Result<Algorithm, DrmError> {
        match s {
            "AESCTR" => Ok(Algorithm::AesCtr),
            "AESCBC" => Ok(Algorithm::AesCbc),
            other => Err(malformed(format!("unsupported ALGID {other:?}"))),
        }
    }
}

/// One key of a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderKid {
    /// The key id (UUID order; written as base64 of the LE GUID).
    pub kid: KeyId,
    /// `ALGID`; `None` only in 4.3 headers that omit it.
    pub algorithm: Option<Algorithm>,
    /// `CHECKSUM` (AESCTR only).
    pub checksum: Option<[u8; 8]>,
}

/// A PlayReady Header. Text fields hold unescaped text, except
/// `custom_attributes`, which is raw inner XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayReadyHeader {
    /// Header version.
    pub version: HeaderVersion,
    /// Keys; 4.0 and 4.1 headers carry (at most) the first one.
    pub kids: Vec<HeaderKid>,
    /// `LA_URL`.
    pub la_url: Option<String>,
    /// `LUI_URL`.
    pub lui_url: Option<String>,
    /// `DS_ID`.
    pub ds_id: Option<String>,
    /// Inner XML of `CUSTOMATTRIBUTES`, verbatim.
    pub custom_attributes: Option<String>,
    /// `DECRYPTORSETUP` (4.1+; written only there).
    pub decryptor_setup: Option<String>,
}

/// A `MalformedPlayReady` error.
fn malformed(reason: String) -> DrmError {
    DrmError::MalformedPlayReady(reason)
}

impl PlayReadyHeader {
    /// Canonical header XML (pssh.md §3.2/3.3): no whitespace, attributes in
    /// alphabetical order, explicit end tags, text escaped once. Writes the
    /// fields as given; [`header_for`] builds valid combinations.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(self.estimated_xml_len());
        out.push_str("<WRMHEADER xmlns=\"");
        out.push_str(HEADER_NAMESPACE);
        out.push_str("\" version=\"");
        out.push_str(self.version.as_str());
        out.push_str("\"><DATA>");
        match self.version {
            HeaderVersion::V4_0 => self.push_v4_0_keys(&mut out),
            HeaderVersion::V4_1 => self.push_kid_attrs(&mut out, false),
            HeaderVersion::V4_2 | HeaderVersion::V4_3 => self.push_kid_attrs(&mut out, true),
        }
        self.push_extras(&mut out);
        out.push_str("</DATA></WRMHEADER>");
        out
    }

    /// An upper estimate of the XML length, for preallocation.
    fn estimated_xml_len(&self) -> usize {
        let text = [
            &self.la_url,
            &self.lui_url,
            &self.ds_id,
            &self.custom_attributes,
            &self.decryptor_setup,
        ]
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.len() + 40))
        .sum::<usize>();
        200 + 80 * self.kids.len() + text
    }

    /// 4.0 layout: `PROTECTINFO{KEYLEN,ALGID}`, `KID`, `CHECKSUM`.
    fn push_v4_0_keys(&self, out: &mut String) {
        let first = self.kids.first();
        let alg = first.and_then(|k| k.algorithm).unwrap_or(Algorithm::AesCtr);
        out.push_str("<PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>");
        out.push_str(alg.as_str());
        out.push_str("</ALGID></PROTECTINFO>");
        if let Some(k) = first {
            out.push_str("<KID>");
            crate::b64::encode_into(&k.kid.to_guid_le(), out);
            out.push_str("</KID>");
            if let Some(c) = &k.checksum {
                out.push_str("<CHECKSUM>");
                crate::b64::encode_into(c, out);
                out.push_str("</CHECKSUM>");
            }
        }
    }

    /// 4.1+ layout: `PROTECTINFO` with one `KID`, or with `KIDS` when `many`.
    fn push_kid_attrs(&self, out: &mut String, many: bool) {
        let kids = if many {
            &self.kids[..]
        } else {
            self.kids.get(..1).unwrap_or_default()
        };
        if kids.is_empty() {
            return;
        }
        out.push_str(if many {
            "<PROTECTINFO><KIDS>"
        } else {
            "<PROTECTINFO>"
        });
        for k in kids {
            out.push_str("<KID");
            if let Some(alg) = k.algorithm {
                out.push_str(" ALGID=\"");
                out.push_str(alg.as_str());
                out.push('"');
            }
            if let Some(c) = &k.checksum {
                out.push_str(" CHECKSUM=\"");
                crate::b64::encode_into(c, out);
                out.push('"');
            }
            out.push_str(" VALUE=\"");
            crate::b64::encode_into(&k.kid.to_guid_le(), out);
            out.push_str("\"></KID>");
        }
        out.push_str(if many {
            "</KIDS></PROTECTINFO>"
        } else {
            "</PROTECTINFO>"
        });
    }

    /// `LA_URL`, `LUI_URL`, `DS_ID`, `CUSTOMATTRIBUTES`, `DECRYPTORSETUP`.
    fn push_extras(&self, out: &mut String) {
        let escaped = [
            ("LA_URL", &self.la_url),
            ("LUI_URL", &self.lui_url),
            ("DS_ID", &self.ds_id),
        ];
        for (name, value) in escaped {
            if let Some(v) = value {
                push_element(out, name, |out| xml_escape_into(v, out));
            }
        }
        if let Some(raw) = &self.custom_attributes {
            push_element(out, "CUSTOMATTRIBUTES", |out| out.push_str(raw));
        }
        let decryptor_setup = self
            .decryptor_setup
            .as_ref()
            .filter(|_| self.version > HeaderVersion::V4_0);
        if let Some(v) = decryptor_setup {
            push_element(out, "DECRYPTORSETUP", |out| xml_escape_into(v, out));
        }
    }

    /// Parses header XML (any whitespace, any child order). Unknown elements
    /// are skipped; unknown versions and ALGIDs are errors.
    pub fn parse_xml(xml: &str) -> Result<PlayReadyHeader, DrmError> {
        let mut reader = Reader::from_str(xml);
        let mut parts = Parts::default();
        loop {
            match reader.read_event().map_err(xml_error)? {
                Event::Start(e) => parts.element(&mut reader, &e, true)?,
                Event::Empty(e) => parts.element(&mut reader, &e, false)?,
                Event::Eof => break,
                _ => {}
            }
        }
        parts.finish()
    }
}

/// The KIDs of a PlayReady licence challenge (the SOAP `AcquireLicense`
/// body a client sends): those of the WRMHEADER it carries.
pub fn challenge_kids(challenge: &[u8]) -> Result<Vec<KeyId>, DrmError> {
    let text = std::str::from_utf8(challenge)
        .map_err(|_| malformed("the challenge is not UTF-8".to_owned()))?;
    let start = text
        .find("<WRMHEADER")
        .ok_or_else(|| malformed("no WRMHEADER in the challenge".to_owned()))?;
    let end = text[start..]
        .find("</WRMHEADER>")
        .ok_or_else(|| malformed("unterminated WRMHEADER".to_owned()))?;
    let header = &text[start..start + end + "</WRMHEADER>".len()];
    Ok(PlayReadyHeader::parse_xml(header)?
        .kids
        .into_iter()
        .map(|k| k.kid)
        .collect())
}

/// Appends `<name>…</name>` with content written by `content`.
fn push_element(out: &mut String, name: &str, content: impl FnOnce(&mut String)) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    content(out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// A header XML parse error.
fn xml_error(e: impl std::fmt::Display) -> DrmError {
    malformed(format!("header XML: {e}"))
}

/// What [`PlayReadyHeader::parse_xml`] has seen so far.
#[derive(Default)]
struct Parts {
    version: Option<HeaderVersion>,
    kids: Vec<HeaderKid>,
    kid_v4_0: Option<KeyId>,
    algid_v4_0: Option<Algorithm>,
    checksum_v4_0: Option<[u8; 8]>,
    la_url: Option<String>,
    lui_url: Option<String>,
    ds_id: Option<String>,
    custom_attributes: Option<String>,
    decryptor_setup: Option<String>,
}

impl Parts {
    /// Handles one start (`has_body`) or empty element.
    fn element(
        &mut self,
        reader: &mut Reader<&[u8]>,
        e: &BytesStart<'_>,
        has_body: bool,
    ) -> Result<(), DrmError> {
        if self.version.is_none() {
            return self.root(reader, e);
        }
        let text = |raw: Cow<'_, str>| -> Result<String, DrmError> {
            quick_xml::escape::unescape(raw.trim())
                .map(Cow::into_owned)
                .map_err(xml_error)
        };
        match e.name().as_ref() {
            b"DATA" | b"PROTECTINFO" | b"KIDS" => {}
            b"KID" if e.try_get_attribute("VALUE").map_err(xml_error)?.is_some() => {
                self.kids.push(kid_from_attributes(reader, e)?);
                body(reader, e, has_body)?;
            }
            b"KID" => self.kid_v4_0 = Some(parse_kid(&text(body(reader, e, has_body)?)?)?),
            b"ALGID" => {
                self.algid_v4_0 = Some(Algorithm::parse(&text(body(reader, e, has_body)?)?)?)
            }
            b"CHECKSUM" => {
                self.checksum_v4_0 = Some(parse_checksum(&text(body(reader, e, has_body)?)?)?)
            }
            b"LA_URL" => self.la_url = Some(text(body(reader, e, has_body)?)?),
            b"LUI_URL" => self.lui_url = Some(text(body(reader, e, has_body)?)?),
            b"DS_ID" => self.ds_id = Some(text(body(reader, e, has_body)?)?),
            b"DECRYPTORSETUP" => self.decryptor_setup = Some(text(body(reader, e, has_body)?)?),
            b"CUSTOMATTRIBUTES" => {
                self.custom_attributes = Some(body(reader, e, has_body)?.into_owned())
            }
            _ => {
                body(reader, e, has_body)?;
            }
        }
        Ok(())
    }

    /// Handles the root element, which must be a versioned `WRMHEADER`.
    fn root(&mut self, reader: &Reader<&[u8]>, e: &BytesStart<'_>) -> Result<(), DrmError> {
        if e.name().as_ref() != b"WRMHEADER" {
            return Err(malformed("root element is not WRMHEADER".to_owned()));
        }
        let version = attribute(reader, e, "version")?
            .ok_or_else(|| malformed("WRMHEADER has no version".to_owned()))?;
        self.version = Some(
            HeaderVersion::parse(&version)
                .ok_or_else(|| malformed(format!("unknown header version {version:?}")))?,
        );
        Ok(())
    }

    /// Assembles the header; a 4.0 header must have its `KID` element.
    fn finish(self) -> Result<PlayReadyHeader, DrmError> {
        let version = self
            .version
            .ok_or_else(|| malformed("no WRMHEADER element".to_owned()))?;
        let mut kids = Vec::with_capacity(self.kids.len() + 1);
        if let Some(kid) = self.kid_v4_0 {
            kids.push(HeaderKid {
                kid,
                algorithm: self.algid_v4_0,
                checksum: self.checksum_v4_0,
            });
        } else if version == HeaderVersion::V4_0 {
            return Err(malformed("4.0.0.0 header without KID".to_owned()));
        }
        kids.extend(self.kids);
        Ok(PlayReadyHeader {
            version,
            kids,
            la_url: self.la_url,
            lui_url: self.lui_url,
            ds_id: self.ds_id,
            custom_attributes: self.custom_attributes,
            decryptor_setup: self.decryptor_setup,
        })
    }
}

/// The raw content of element `e` up to its end tag (empty for `<e/>`).
fn body<'a>(
    reader: &mut Reader<&'a [u8]>,
    e: &BytesStart<'_>,
    has_body: bool,
) -> Result<Cow<'a, str>, DrmError> {
    if has_body {
        reader.read_text(e.name()).map_err(xml_error)
    } else {
        Ok(Cow::Borrowed(""))
    }
}

/// The unescaped value of attribute `name`, if present.
fn attribute(
    reader: &Reader<&[u8]>,
    e: &BytesStart<'_>,
    name: &str,
) -> Result<Option<String>, DrmError> {
    let Some(attr) = e.try_get_attribute(name).map_err(xml_error)? else {
        return Ok(None);
    };
    let value = attr
        .decode_and_unescape_value(reader.decoder())
        .map_err(xml_error)?;
    Ok(Some(value.into_owned()))
}

/// A 4.1+ `KID` element's `ALGID`, `CHECKSUM` and `VALUE` attributes.
fn kid_from_attributes(reader: &Reader<&[u8]>, e: &BytesStart<'_>) -> Result<HeaderKid, DrmError> {
    let value = attribute(reader, e, "VALUE")?.unwrap_or_default();
    Ok(HeaderKid {
        kid: parse_kid(&value)?,
        algorithm: attribute(reader, e, "ALGID")?
            .map(|a| Algorithm::parse(&a))
            .transpose()?,
        checksum: attribute(reader, e, "CHECKSUM")?
            .map(|c| parse_checksum(&c))
            .transpose()?,
    })
}

/// Parses base64 of a little-endian GUID.
fn parse_kid(text: &str) -> Result<KeyId, DrmError> {
    KeyId::from_playready_base64(text).map_err(|_| malformed(format!("bad KID {text:?}")))
}

/// Parses base64 of an 8-byte checksum.
fn parse_checksum(text: &str) -> Result<[u8; 8], DrmError> {
    base64_decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed(format!("CHECKSUM {text:?} is not base64 of 8 bytes")))
}

/// Checks the settings that go into a header: present strings must not be
/// empty, `la_url` must be absolute, `custom_attributes` must be well-formed.
pub fn validate_settings(settings: &PlayReadySettings) -> Result<(), DrmError> {
    let invalid = |setting, reason: &str| DrmError::InvalidSetting {
        setting,
        reason: reason.to_owned(),
    };
    let fields = [
        ("playready.la_url", &settings.la_url),
        ("playready.lui_url", &settings.lui_url),
        ("playready.ds_id", &settings.ds_id),
        ("playready.custom_attributes", &settings.custom_attributes),
    ];
    for (setting, value) in fields {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(invalid(setting, "must not be empty when set"));
        }
    }
    if let Some(url) = &settings.la_url {
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(invalid(
                "playready.la_url",
                "must be an absolute http(s) URL",
            ));
        }
    }
    if let Some(xml) = &settings.custom_attributes {
        check_fragment(xml).map_err(|e| {
            invalid(
                "playready.custom_attributes",
                &format!("not well-formed XML: {e}"),
            )
        })?;
    }
    Ok(())
}

/// Reads `xml` as element content to check that it is well-formed.
fn check_fragment(xml: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof if depth == 0 => return Ok(()),
            Event::Eof => return Err("unclosed element".to_owned()),
            _ => {}
        }
    }
}

/// The header cpixd emits for `keys` (pssh.md §3.3): cenc (or no scheme)
/// with one key → 4.0 with CHECKSUM (4.1 if `prefer_v4_1`); several keys →
/// 4.3 AESCTR with a CHECKSUM per KID; cbcs/cbc1 → 4.3 AESCBC without
/// CHECKSUM; cens → [`DrmError::UnsupportedScheme`].
pub fn header_for(
    keys: &[(KeyId, &ContentKey)],
    scheme: Option<Scheme>,
    settings: &PlayReadySettings,
) -> Result<PlayReadyHeader, DrmError> {
    validate_settings(settings)?;
    if keys.is_empty() {
        return Err(DrmError::NoKeyIds { system: SYSTEM });
    }
    let (algorithm, version) = match scheme {
        None | Some(Scheme::Cenc) if keys.len() == 1 && settings.prefer_v4_1 => {
            (Algorithm::AesCtr, HeaderVersion::V4_1)
        }
        None | Some(Scheme::Cenc) if keys.len() == 1 => (Algorithm::AesCtr, HeaderVersion::V4_0),
        None | Some(Scheme::Cenc) => (Algorithm::AesCtr, HeaderVersion::V4_3),
        Some(Scheme::Cbcs | Scheme::Cbc1) => (Algorithm::AesCbc, HeaderVersion::V4_3),
        Some(scheme @ Scheme::Cens) => {
            return Err(DrmError::UnsupportedScheme {
                system: SYSTEM,
                scheme,
            })
        }
    };
    let kids = keys
        .iter()
        .map(|&(kid, key)| HeaderKid {
            kid,
            algorithm: Some(algorithm),
            checksum: (algorithm == Algorithm::AesCtr).then(|| checksum(kid, key)),
        })
        .collect();
    Ok(PlayReadyHeader {
        version,
        kids,
        la_url: settings.la_url.clone(),
        lui_url: settings.lui_url.clone(),
        ds_id: settings.ds_id.clone(),
        custom_attributes: settings.custom_attributes.clone(),
        decryptor_setup: None,
    })
}

/// One record of a PlayReady Object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProRecord {
    /// Record type (1 = PlayReady Header, 3 = Embedded License Store).
    pub record_type: u16,
    /// Record value.
    pub value: Vec<u8>,
}

impl ProRecord {
    /// The header XML of a type 1 record (UTF-16LE; a leading BOM is dropped).
    pub fn header_xml(&self) -> Result<String, DrmError> {
        if self.record_type != RECORD_TYPE_HEADER {
            return Err(malformed(format!(
                "record type {} is not a PlayReady Header",
                self.record_type
            )));
        }
        if self.value.len() % 2 != 0 {
            return Err(malformed("header record has an odd length".to_owned()));
        }
        let units = self.value.chunks_exact(2).filter_map(|c| match *c {
            [lo, hi] => Some(u16::from_le_bytes([lo, hi])),
            _ => None,
        });
        let xml = char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| malformed("header record is not valid UTF-16".to_owned()))?;
        Ok(xml
            .strip_prefix('\u{feff}')
            .map(str::to_owned)
            .unwrap_or(xml))
    }
}

/// A PlayReady Object holding one header record (little-endian lengths,
/// UTF-16LE XML, no BOM). Errors if the XML does not fit a record (64 KiB).
pub fn object(header_xml: &str) -> Result<Vec<u8>, DrmError> {
    // Headers are ASCII in practice: one UTF-16 unit per byte, no decoding.
    let ascii = header_xml.is_ascii();
    let units = if ascii {
        header_xml.len()
    } else {
        header_xml.encode_utf16().count()
    };
    let record_len = u16::try_from(2 * units).map_err(|_| {
        malformed(format!(
            "header is {} bytes in UTF-16, more than a record holds",
            2 * units
        ))
    })?;
    let mut out = Vec::with_capacity(10 + usize::from(record_len));
    out.extend_from_slice(&(10 + u32::from(record_len)).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&RECORD_TYPE_HEADER.to_le_bytes());
    out.extend_from_slice(&record_len.to_le_bytes());
    if ascii {
        // Widened in place: a zeroed run with every other byte set, which
        // compiles to vector stores rather than a growth check per byte.
        let start = out.len();
        out.resize(start + 2 * units, 0);
        for (unit, &b) in out[start..].chunks_exact_mut(2).zip(header_xml.as_bytes()) {
            unit[0] = b;
        }
    } else {
        for unit in header_xml.encode_utf16() {
            out.extend_from_slice(&unit.to_le_bytes());
        }
    }
    Ok(out)
}

/// Parses a PlayReady Object strictly: the length field must equal
/// `bytes.len()` and the records must fill it exactly.
pub fn parse_object(bytes: &[u8]) -> Result<Vec<ProRecord>, DrmError> {
    let mut r = ByteReader::new(bytes);
    let short = || malformed(format!("{} bytes is too short for a PRO", bytes.len()));
    let length = r.u32_le().ok_or_else(short)?;
    let count = r.u16_le().ok_or_else(short)?;
    if length as usize != bytes.len() {
        return Err(malformed(format!(
            "length field says {length} bytes but {} are present",
            bytes.len()
        )));
    }
    let mut records = Vec::with_capacity(usize::from(count).min(r.remaining() / 4));
    for i in 1..=count {
        let truncated = || malformed(format!("record {i} of {count} is truncated"));
        let record_type = r.u16_le().ok_or_else(truncated)?;
        let len = r.u16_le().ok_or_else(truncated)?;
        let value = r.take(usize::from(len)).ok_or_else(truncated)?;
        records.push(ProRecord {
            record_type,
            value: value.to_vec(),
        });
    }
    if !r.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the last record",
            r.remaining()
        )));
    }
    Ok(records)
}

/// The header XML of the first type 1 record of a PlayReady Object.
pub fn object_header_xml(pro: &[u8]) -> Result<String, DrmError> {
    parse_object(pro)?
        .iter()
        .find(|r| r.record_type == RECORD_TYPE_HEADER)
        .ok_or_else(|| malformed("no PlayReady Header record".to_owned()))?
        .header_xml()
}

/// The PlayReady `pssh` box: v0, data = the PlayReady Object.
pub fn pssh_box(pro: &[u8]) -> PsshBox {
    PsshBox::v0(SystemId::PLAYREADY, pro.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_utf16le_for_ascii_and_other_text_alike() {
        for header in [
            "<WRMHEADER/>",
            "<WRMHEADER><CUSTOMATTRIBUTES>Zoë ✓ 𝄞</CUSTOMATTRIBUTES></WRMHEADER>",
        ] {
            let pro = object(header).unwrap();
            let units: Vec<u8> = header.encode_utf16().flat_map(u16::to_le_bytes).collect();
            assert_eq!(&pro[10..], &units[..], "{header}");
            assert_eq!(object_header_xml(&pro).unwrap(), header);
        }
    }
    use crate::drm::test_util::{b64, content_key, kid};

    const KID1: &str = "6b657969-6431-7e7e-7e7e-7e7e7e7e7e7e";
    const KEY1: &str = "636f6e74656e746b6579317e7e7e7e7e";
    const KIDA: &str = "31323334-3536-3738-3930-313233343536";
    const KEYA: &str = "32333435363738393021323334353637";

    /// Builds the box for one key the way the server does.
    fn box_for(
        kid_s: &str,
        key_hex: &str,
        scheme: Option<Scheme>,
        settings: &PlayReadySettings,
    ) -> (PlayReadyHeader, Vec<u8>) {
        let key = content_key(key_hex);
        let header = header_for(&[(kid(kid_s), &key)], scheme, settings).unwrap();
        let pro = object(&header.to_xml()).unwrap();
        (header, pssh_box(&pro).to_bytes())
    }

    const PR1_XML: &str = r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.0.0.0"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>aXllazFkfn5+fn5+fn5+fg==</KID><CHECKSUM>uFY/OirQj/U=</CHECKSUM></DATA></WRMHEADER>"#;
    const PR1_BOX: &str = "
AAACJnBzc2gAAAAAmgTweZhAQoarkuZb4IhflQAAAgYGAgAAAQABAPwBPABXAFIATQBIAEUAQQBE
AEUAUgAgAHgAbQBsAG4AcwA9ACIAaAB0AHQAcAA6AC8ALwBzAGMAaABlAG0AYQBzAC4AbQBpAGMA
cgBvAHMAbwBmAHQALgBjAG8AbQAvAEQAUgBNAC8AMgAwADAANwAvADAAMwAvAFAAbABhAHkAUgBl
AGEAZAB5AEgAZQBhAGQAZQByACIAIAB2AGUAcgBzAGkAbwBuAD0AIgA0AC4AMAAuADAALgAwACIA
PgA8AEQAQQBUAEEAPgA8AFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBFAFkATABFAE4APgAx
ADYAPAAvAEsARQBZAEwARQBOAD4APABBAEwARwBJAEQAPgBBAEUAUwBDAFQAUgA8AC8AQQBMAEcA
SQBEAD4APAAvAFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBJAEQAPgBhAFgAbABsAGEAegBG
AGsAZgBuADUAKwBmAG4ANQArAGYAbgA1ACsAZgBnAD0APQA8AC8ASwBJAEQAPgA8AEMASABFAEMA
SwBTAFUATQA+AHUARgBZAC8ATwBpAHIAUQBqAC8AVQA9ADwALwBDAEgARQBDAEsAUwBVAE0APgA8
AC8ARABBAFQAQQA+ADwALwBXAFIATQBIAEUAQQBEAEUAUgA+AA==";

    #[test]
    fn pr1_v4_0_aesctr_box() {
        // PR-1 (Shaka, scheme cenc and no scheme)
        for scheme in [Some(Scheme::Cenc), None] {
            let (header, bytes) = box_for(KID1, KEY1, scheme, &PlayReadySettings::default());
            assert_eq!(header.to_xml(), PR1_XML);
            assert_eq!(bytes, b64(PR1_BOX));
        }
        assert_eq!(
            checksum(kid(KID1), &content_key(KEY1)),
            b64("uFY/OirQj/U=").as_slice()
        );
    }

    #[test]
    fn pr2_v4_3_aescbc_box() {
        // PR-2 (Shaka, cbc1 and cbcs)
        let xml = r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.3.0.0"><DATA><PROTECTINFO><KIDS><KID ALGID="AESCBC" VALUE="aXllazFkfn5+fn5+fn5+fg=="></KID></KIDS></PROTECTINFO></DATA></WRMHEADER>"#;
        let expected = b64("
AAAB3nBzc2gAAAAAmgTweZhAQoarkuZb4IhflQAAAb6+AQAAAQABALQBPABXAFIATQBIAEUAQQBE
AEUAUgAgAHgAbQBsAG4AcwA9ACIAaAB0AHQAcAA6AC8ALwBzAGMAaABlAG0AYQBzAC4AbQBpAGMA
cgBvAHMAbwBmAHQALgBjAG8AbQAvAEQAUgBNAC8AMgAwADAANwAvADAAMwAvAFAAbABhAHkAUgBl
AGEAZAB5AEgAZQBhAGQAZQByACIAIAB2AGUAcgBzAGkAbwBuAD0AIgA0AC4AMwAuADAALgAwACIA
PgA8AEQAQQBUAEEAPgA8AFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBJAEQAUwA+ADwASwBJ
AEQAIABBAEwARwBJAEQAPQAiAEEARQBTAEMAQgBDACIAIABWAEEATABVAEUAPQAiAGEAWABsAGwA
YQB6AEYAawBmAG4ANQArAGYAbgA1ACsAZgBuADUAKwBmAGcAPQA9ACIAPgA8AC8ASwBJAEQAPgA8
AC8ASwBJAEQAUwA+ADwALwBQAFIATwBUAEUAQwBUAEkATgBGAE8APgA8AC8ARABBAFQAQQA+ADwA
LwBXAFIATQBIAEUAQQBEAEUAUgA+AA==");
        for scheme in [Scheme::Cbcs, Scheme::Cbc1] {
            let (header, bytes) = box_for(KID1, KEY1, Some(scheme), &PlayReadySettings::default());
            assert_eq!(header.to_xml(), xml);
            assert_eq!(bytes, expected);
        }
    }

    use super::super::vectors::PR3_PRO;

    #[test]
    fn pr3_box_and_bare_pro() {
        // PR-3 (Shaka multi-DRM test: cenc:pssh and mspr:pro)
        let box_b64 = "
AAACJnBzc2gAAAAAmgTweZhAQoarkuZb4IhflQAAAgYGAgAAAQABAPwBPABXAFIATQBIAEUAQQBE
AEUAUgAgAHgAbQBsAG4AcwA9ACIAaAB0AHQAcAA6AC8ALwBzAGMAaABlAG0AYQBzAC4AbQBpAGMA
cgBvAHMAbwBmAHQALgBjAG8AbQAvAEQAUgBNAC8AMgAwADAANwAvADAAMwAvAFAAbABhAHkAUgBl
AGEAZAB5AEgAZQBhAGQAZQByACIAIAB2AGUAcgBzAGkAbwBuAD0AIgA0AC4AMAAuADAALgAwACIA
PgA8AEQAQQBUAEEAPgA8AFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBFAFkATABFAE4APgAx
ADYAPAAvAEsARQBZAEwARQBOAD4APABBAEwARwBJAEQAPgBBAEUAUwBDAFQAUgA8AC8AQQBMAEcA
SQBEAD4APAAvAFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBJAEQAPgBOAEQATQB5AE0AVABZ
ADEATwBEAGMANQBNAEQARQB5AE0AegBRADEATgBnAD0APQA8AC8ASwBJAEQAPgA8AEMASABFAEMA
SwBTAFUATQA+AGwANQBMAG8AVQBnAEsAOQBLAEMAZwA9ADwALwBDAEgARQBDAEsAUwBVAE0APgA8
AC8ARABBAFQAQQA+ADwALwBXAFIATQBIAEUAQQBEAEUAUgA+AA==";
        let (header, bytes) = box_for(
            KIDA,
            KEYA,
            Some(Scheme::Cenc),
            &PlayReadySettings::default(),
        );
        assert_eq!(bytes, b64(box_b64));
        let pro = object(&header.to_xml()).unwrap();
        assert_eq!(pro, b64(PR3_PRO));
        assert_eq!(
            header.to_xml(),
            r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.0.0.0"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>NDMyMTY1ODc5MDEyMzQ1Ng==</KID><CHECKSUM>l5LoUgK9KCg=</CHECKSUM></DATA></WRMHEADER>"#
        );
        let parsed = PsshBox::parse(&bytes).unwrap();
        assert_eq!(parsed.system_id, SystemId::PLAYREADY);
        assert_eq!(parsed.data, pro);
    }

    #[test]
    fn pr4_microsoft_v4_2_checksums_and_xml() {
        // PR-4 (keys derived from Microsoft's test key seed)
        let rows = [
            (
                "a2c786d0-f9ef-4cb3-b333-cd323a4284a5",
                "4edb7704cdbf03617f4800bd878a6df2",
                "xNvWVxoWk04=",
            ),
            (
                "db06a8fe-ec16-4de2-9228-2c71e9b856ab",
                "3179923adf3c929892951e62f93a518a",
                "GnKaQIRacPU=",
            ),
        ];
        let kids: Vec<HeaderKid> = rows
            .iter()
            .map(|(k, key, sum)| {
                let c = checksum(kid(k), &content_key(key));
                assert_eq!(c, b64(sum).as_slice(), "{k}");
                HeaderKid {
                    kid: kid(k),
                    algorithm: Some(Algorithm::AesCtr),
                    checksum: Some(c),
                }
            })
            .collect();
        let header = PlayReadyHeader {
            version: HeaderVersion::V4_2,
            kids,
            la_url: Some("http://rm.contoso.com/rightsmanager.asmx".to_owned()),
            lui_url: None,
            ds_id: Some("AH+03juKbUGbHl1V/QIwRA==".to_owned()),
            custom_attributes: None,
            decryptor_setup: None,
        };
        let xml = r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.2.0.0"><DATA><PROTECTINFO><KIDS><KID ALGID="AESCTR" CHECKSUM="xNvWVxoWk04=" VALUE="0IbHou/5s0yzM80yOkKEpQ=="></KID><KID ALGID="AESCTR" CHECKSUM="GnKaQIRacPU=" VALUE="/qgG2xbs4k2SKCxx6bhWqw=="></KID></KIDS></PROTECTINFO><LA_URL>http://rm.contoso.com/rightsmanager.asmx</LA_URL><DS_ID>AH+03juKbUGbHl1V/QIwRA==</DS_ID></DATA></WRMHEADER>"#;
        assert_eq!(header.to_xml(), xml);
        assert_eq!(PlayReadyHeader::parse_xml(xml).unwrap(), header);

        // The server's own multi-key header for the same keys is 4.3 AESCTR.
        let (k1, k2) = (content_key(rows[0].1), content_key(rows[1].1));
        let settings = PlayReadySettings {
            la_url: header.la_url.clone(),
            ds_id: header.ds_id.clone(),
            ..Default::default()
        };
        let built = header_for(
            &[(kid(rows[0].0), &k1), (kid(rows[1].0), &k2)],
            None,
            &settings,
        )
        .unwrap();
        assert_eq!(built.to_xml(), xml.replace("4.2.0.0", "4.3.0.0"));
    }

    #[test]
    fn pr5_v4_0_with_custom_attributes() {
        // PR-5 (Microsoft header spec §3.6.1)
        let settings = PlayReadySettings {
            la_url: Some(
                "https://profficialsite.keydelivery.mediaservices.windows.net/PlayReady/"
                    .to_owned(),
            ),
            custom_attributes: Some("<IIS_DRM_VERSION>8.0.1705.19</IIS_DRM_VERSION>".to_owned()),
            ..Default::default()
        };
        let key = content_key("9cb061164b7013eaefcc7d6d18424c2c");
        let header = header_for(
            &[(kid("09e091ab-f838-41d2-9e35-58531fd19ec7"), &key)],
            Some(Scheme::Cenc),
            &settings,
        )
        .unwrap();
        let expected = b64("
XAMAAAEAAQBSAzwAVwBSAE0ASABFAEEARABFAFIAIAB4AG0AbABuAHMAPQAiAGgAdAB0AHAAOgAv
AC8AcwBjAGgAZQBtAGEAcwAuAG0AaQBjAHIAbwBzAG8AZgB0AC4AYwBvAG0ALwBEAFIATQAvADIA
MAAwADcALwAwADMALwBQAGwAYQB5AFIAZQBhAGQAeQBIAGUAYQBkAGUAcgAiACAAdgBlAHIAcwBp
AG8AbgA9ACIANAAuADAALgAwAC4AMAAiAD4APABEAEEAVABBAD4APABQAFIATwBUAEUAQwBUAEkA
TgBGAE8APgA8AEsARQBZAEwARQBOAD4AMQA2ADwALwBLAEUAWQBMAEUATgA+ADwAQQBMAEcASQBE
AD4AQQBFAFMAQwBUAFIAPAAvAEEATABHAEkARAA+ADwALwBQAFIATwBUAEUAQwBUAEkATgBGAE8A
PgA8AEsASQBEAD4AcQA1AEgAZwBDAFQAagA0ADAAawBHAGUATgBWAGgAVABIADkARwBlAHgAdwA9
AD0APAAvAEsASQBEAD4APABDAEgARQBDAEsAUwBVAE0APgB3ACsATwBaAFYAcgA4AHYAegByAFEA
PQA8AC8AQwBIAEUAQwBLAFMAVQBNAD4APABMAEEAXwBVAFIATAA+AGgAdAB0AHAAcwA6AC8ALwBw
AHIAbwBmAGYAaQBjAGkAYQBsAHMAaQB0AGUALgBrAGUAeQBkAGUAbABpAHYAZQByAHkALgBtAGUA
ZABpAGEAcwBlAHIAdgBpAGMAZQBzAC4AdwBpAG4AZABvAHcAcwAuAG4AZQB0AC8AUABsAGEAeQBS
AGUAYQBkAHkALwA8AC8ATABBAF8AVQBSAEwAPgA8AEMAVQBTAFQATwBNAEEAVABUAFIASQBCAFUA
VABFAFMAPgA8AEkASQBTAF8ARABSAE0AXwBWAEUAUgBTAEkATwBOAD4AOAAuADAALgAxADcAMAA1
AC4AMQA5ADwALwBJAEkAUwBfAEQAUgBNAF8AVgBFAFIAUwBJAE8ATgA+ADwALwBDAFUAUwBUAE8A
TQBBAFQAVABSAEkAQgBVAFQARQBTAD4APAAvAEQAQQBUAEEAPgA8AC8AVwBSAE0ASABFAEEARABF
AFIAPgA=");
        let pro = object(&header.to_xml()).unwrap();
        assert_eq!(pro, expected);
        let parsed = PlayReadyHeader::parse_xml(&object_header_xml(&pro).unwrap()).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(
            parsed.kids[0].checksum,
            Some(*b64("w+OZVr8vzrQ=").first_chunk().unwrap())
        );
    }

    #[test]
    fn pr6_la_url_and_swapped_kid() {
        // PR-6 (Shaka Packager v3.8.0 with --playready_extra_header_data)
        let settings = PlayReadySettings {
            la_url: Some("https://lic.example.com/pr".to_owned()),
            ..Default::default()
        };
        let (_, bytes) = box_for(
            "0f083e4e-b831-4a3d-917e-ce78076e54aa",
            "000102030405060708090a0b0c0d0e0f",
            Some(Scheme::Cenc),
            &settings,
        );
        let expected = b64(super::super::vectors::PR6_BOX);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn pr7_kid_byte_order() {
        // PR-7 (Microsoft DASH spec, Table 2)
        let header = PlayReadyHeader::parse_xml(&format!(
            r#"<WRMHEADER xmlns="{HEADER_NAMESPACE}" version="4.3.0.0"><DATA><PROTECTINFO><KIDS><KID VALUE="rk8d+Ox90BGnZQCgyR5r9g=="></KID></KIDS></PROTECTINFO></DATA></WRMHEADER>"#
        ))
        .unwrap();
        assert_eq!(
            header.kids[0].kid,
            kid("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
        );
        assert_eq!(header.kids[0].algorithm, None);
    }

    #[test]
    fn pr8_microsoft_hls_pro_parses() {
        // PR-8 (Microsoft HLS sample; no CHECKSUM)
        let pro = b64("
xAEAAAEAAQC6ATwAVwBSAE0ASABFAEEARABFAFIAIAB4AG0AbABuAHMAPQAiAGgAdAB0AHAAOgAv
AC8AcwBjAGgAZQBtAGEAcwAuAG0AaQBjAHIAbwBzAG8AZgB0AC4AYwBvAG0ALwBEAFIATQAvADIA
MAAwADcALwAwADMALwBQAGwAYQB5AFIAZQBhAGQAeQBIAGUAYQBkAGUAcgAiACAAdgBlAHIAcwBp
AG8AbgA9ACIANAAuADAALgAwAC4AMAAiAD4APABEAEEAVABBAD4APABQAFIATwBUAEUAQwBUAEkA
TgBGAE8APgA8AEsARQBZAEwARQBOAD4AMQA2ADwALwBLAEUAWQBMAEUATgA+ADwAQQBMAEcASQBE
AD4AQQBFAFMAQwBUAFIAPAAvAEEATABHAEkARAA+ADwALwBQAFIATwBUAEUAQwBUAEkATgBGAE8A
PgA8AEsASQBEAD4AdgBHAFYAagBOAEsAZwBZAE0ARQBxAHAATwBMAGgAMQBWAGQAUgBUADAAQQA9
AD0APAAvAEsASQBEAD4APAAvAEQAQQBUAEEAPgA8AC8AVwBSAE0ASABFAEEARABFAFIAPgA=");
        let records = parse_object(&pro).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].record_type, RECORD_TYPE_HEADER);
        assert_eq!(records[0].value.len(), 442);
        let xml = records[0].header_xml().unwrap();
        assert_eq!(
            xml,
            r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.0.0.0"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>vGVjNKgYMEqpOLh1VdRT0A==</KID></DATA></WRMHEADER>"#
        );
        let header = PlayReadyHeader::parse_xml(&xml).unwrap();
        assert_eq!(header.version, HeaderVersion::V4_0);
        assert_eq!(
            header.kids,
            [HeaderKid {
                kid: kid("346365bc-18a8-4a30-a938-b87555d453d0"),
                algorithm: Some(Algorithm::AesCtr),
                checksum: None,
            }]
        );
        assert_eq!(object(&xml).unwrap(), pro);
    }

    #[test]
    fn v4_1_layout_escaping_and_round_trip() {
        let key = content_key(KEYA);
        let settings = PlayReadySettings {
            la_url: Some("https://lic.example/pr?a=1&b=<2>".to_owned()),
            prefer_v4_1: true,
            ..Default::default()
        };
        let mut header = header_for(&[(kid(KIDA), &key)], Some(Scheme::Cenc), &settings).unwrap();
        header.decryptor_setup = Some("ONDEMAND".to_owned());
        let xml = header.to_xml();
        assert_eq!(
            xml,
            format!(
                r#"<WRMHEADER xmlns="{HEADER_NAMESPACE}" version="4.1.0.0"><DATA><PROTECTINFO><KID ALGID="AESCTR" CHECKSUM="l5LoUgK9KCg=" VALUE="NDMyMTY1ODc5MDEyMzQ1Ng=="></KID></PROTECTINFO><LA_URL>https://lic.example/pr?a=1&amp;b=&lt;2&gt;</LA_URL><DECRYPTORSETUP>ONDEMAND</DECRYPTORSETUP></DATA></WRMHEADER>"#
            )
        );
        assert_eq!(PlayReadyHeader::parse_xml(&xml).unwrap(), header);
    }

    #[test]
    fn parse_accepts_whitespace_and_custom_attribute_namespace() {
        let xml = format!(
            "<WRMHEADER xmlns=\"{HEADER_NAMESPACE}\" version=\"4.0.0.0\">\r\n <DATA>\n  <PROTECTINFO>\n   <KEYLEN>16</KEYLEN>\n   <ALGID>AESCTR</ALGID>\n  </PROTECTINFO>\n  <KID>NDMyMTY1ODc5MDEyMzQ1Ng==</KID>\n  <CHECKSUM> l5LoUgK9KCg= </CHECKSUM>\n  <CUSTOMATTRIBUTES xmlns=\"\"><a x=\"1\">t</a></CUSTOMATTRIBUTES>\n </DATA>\n</WRMHEADER>"
        );
        let header = PlayReadyHeader::parse_xml(&xml).unwrap();
        assert_eq!(header.kids[0].kid, kid(KIDA));
        assert_eq!(
            header.kids[0].checksum,
            Some(checksum(kid(KIDA), &content_key(KEYA)))
        );
        assert_eq!(
            header.custom_attributes.as_deref(),
            Some(r#"<a x="1">t</a>"#)
        );
    }

    #[test]
    fn parse_xml_rejects_bad_headers() {
        let wrap = |v: &str, body: &str| {
            format!(
                r#"<WRMHEADER xmlns="{HEADER_NAMESPACE}" version="{v}"><DATA>{body}</DATA></WRMHEADER>"#
            )
        };
        for (xml, needle) in [
            (wrap("4.4.0.0", ""), "unknown header version"),
            (wrap("4.0.0.0", ""), "without KID"),
            (
                wrap(
                    "4.3.0.0",
                    r#"<KID ALGID="COCKTAIL" VALUE="NDMyMTY1ODc5MDEyMzQ1Ng=="></KID>"#,
                ),
                "COCKTAIL",
            ),
            (wrap("4.3.0.0", r#"<KID VALUE="NDMy"></KID>"#), "bad KID"),
            (
                wrap(
                    "4.3.0.0",
                    r#"<KID CHECKSUM="AAAA" VALUE="NDMyMTY1ODc5MDEyMzQ1Ng=="></KID>"#,
                ),
                "CHECKSUM",
            ),
            (wrap("4.3.0.0", "<LA_URL>x</DATA>"), "header XML"),
            ("<DATA></DATA>".to_owned(), "not WRMHEADER"),
            (String::new(), "no WRMHEADER"),
        ] {
            match PlayReadyHeader::parse_xml(&xml) {
                Err(DrmError::MalformedPlayReady(m)) => {
                    assert!(m.contains(needle), "{m} / {needle}")
                }
                other => panic!("{xml}: {other:?}"),
            }
        }
    }

    #[test]
    fn header_for_errors() {
        let key = content_key(KEYA);
        let one = [(kid(KIDA), &key)];
        let ok = PlayReadySettings::default();
        assert_eq!(
            header_for(&one, Some(Scheme::Cens), &ok),
            Err(DrmError::UnsupportedScheme {
                system: "PlayReady",
                scheme: Scheme::Cens
            })
        );
        assert_eq!(
            header_for(&[], None, &ok),
            Err(DrmError::NoKeyIds {
                system: "PlayReady"
            })
        );
        for (settings, setting) in [
            (
                PlayReadySettings {
                    la_url: Some(String::new()),
                    ..Default::default()
                },
                "playready.la_url",
            ),
            (
                PlayReadySettings {
                    la_url: Some("/relative".into()),
                    ..Default::default()
                },
                "playready.la_url",
            ),
            (
                PlayReadySettings {
                    custom_attributes: Some(" ".into()),
                    ..Default::default()
                },
                "playready.custom_attributes",
            ),
            (
                PlayReadySettings {
                    custom_attributes: Some("<a>".into()),
                    ..Default::default()
                },
                "playready.custom_attributes",
            ),
            (
                PlayReadySettings {
                    custom_attributes: Some("<a></b>".into()),
                    ..Default::default()
                },
                "playready.custom_attributes",
            ),
            (
                PlayReadySettings {
                    ds_id: Some(String::new()),
                    ..Default::default()
                },
                "playready.ds_id",
            ),
        ] {
            match header_for(&one, None, &settings) {
                Err(DrmError::InvalidSetting { setting: s, .. }) => assert_eq!(s, setting),
                other => panic!("{settings:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn parse_object_is_strict() {
        let pro = b64(PR3_PRO);
        let err = |bytes: &[u8], needle: &str| match parse_object(bytes) {
            Err(DrmError::MalformedPlayReady(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{needle}: {other:?}"),
        };
        let mut longer = pro.clone();
        longer.push(0);
        err(&longer, "length field says 518 bytes but 519");
        err(&pro[..517], "length field says 518 bytes but 517");
        err(&pro[..5], "too short");
        // Length field adjusted, but the record still claims 508 bytes.
        let mut cut = pro[..500].to_vec();
        cut[..4].copy_from_slice(&500u32.to_le_bytes());
        err(&cut, "record 1 of 1 is truncated");
        // Extra bytes after the last record, length field adjusted.
        let mut extra = pro.clone();
        extra.extend_from_slice(&[0, 0]);
        extra[..4].copy_from_slice(&520u32.to_le_bytes());
        err(&extra, "2 bytes after the last record");
        // Record count 2 with only one record.
        let mut two = pro.clone();
        two[4] = 2;
        err(&two, "record 2 of 2 is truncated");
        // An odd-length header record.
        let odd = ProRecord {
            record_type: 1,
            value: vec![0x3c, 0, 0x41],
        };
        assert!(odd.header_xml().is_err());
        let els = ProRecord {
            record_type: RECORD_TYPE_ELS,
            value: vec![],
        };
        assert!(els.header_xml().is_err());
        // Zero records is well-formed but has no header.
        assert_eq!(parse_object(&[6, 0, 0, 0, 0, 0]).unwrap(), []);
        assert!(object_header_xml(&[6, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn object_rejects_oversized_header() {
        let huge = "x".repeat(40_000);
        assert!(matches!(
            object(&huge),
            Err(DrmError::MalformedPlayReady(_))
        ));
        assert_eq!(object("").unwrap(), [10, 0, 0, 0, 1, 0, 1, 0, 0, 0]);
    }
}
