//! Widevine: the `WidevinePsshData` protobuf (a small hand-written proto2
//! codec for the fields in pssh.md §2.1) and the Widevine `pssh` box.

use super::pssh::PsshBox;
use super::{ByteReader, DrmError, Scheme, WidevineSettings};
use crate::ids::{KeyId, SystemId};

/// `algorithm` value `AESCTR` (deprecated field, still met in the wild).
pub const ALGORITHM_AESCTR: u32 = 1;

/// The `WidevinePsshData` fields cpixd writes or may meet. Unknown fields are
/// skipped on decode and never written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WidevinePsshData {
    /// Field 1, `algorithm` (enum: 0 unencrypted, 1 AESCTR).
    pub algorithm: Option<u32>,
    /// Field 2, `key_id` (repeated, 16 UUID-order bytes each).
    pub key_ids: Vec<KeyId>,
    /// Field 3, `provider`.
    pub provider: Option<String>,
    /// Field 4, `content_id` (opaque bytes).
    pub content_id: Option<Vec<u8>>,
    /// Field 5, `track_type` ("SD", "HD", "AUDIO").
    pub track_type: Option<String>,
    /// Field 6, `policy`.
    pub policy: Option<String>,
    /// Field 7, `crypto_period_index`.
    pub crypto_period_index: Option<u32>,
    /// Field 9, `protection_scheme` (FourCC as a big-endian integer).
    pub protection_scheme: Option<u32>,
}

impl WidevinePsshData {
    /// Serializes the set fields in ascending field order.
    pub fn encode(&self) -> Vec<u8> {
        Fields {
            algorithm: self.algorithm,
            key_ids: &self.key_ids,
            provider: self.provider.as_deref(),
            content_id: self.content_id.as_deref(),
            track_type: self.track_type.as_deref(),
            policy: self.policy.as_deref(),
            crypto_period_index: self.crypto_period_index,
            protection_scheme: self.protection_scheme,
        }
        .encode()
    }

    /// Parses protobuf bytes, skipping unknown fields; truncation, over-long
    /// varints, group wire types and mistyped known fields are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self, DrmError> {
        let mut out = WidevinePsshData::default();
        let mut r = ByteReader::new(bytes);
        while !r.is_empty() {
            let tag = read_varint(&mut r)?;
            let field = tag >> 3;
            if field == 0 || field > MAX_FIELD {
                return Err(malformed(format!("invalid field number {field}")));
            }
            let value = read_value(&mut r, tag & 7)?;
            out.apply(field, value)?;
        }
        Ok(out)
    }

    /// Stores one decoded field.
    fn apply(&mut self, field: u64, value: Wire<'_>) -> Result<(), DrmError> {
        match field {
            1 => self.algorithm = Some(value.uint32("algorithm")?),
            2 => self.key_ids.push(value.key_id()?),
            3 => self.provider = Some(value.string("provider")?),
            4 => self.content_id = Some(value.bytes("content_id")?.to_vec()),
            5 => self.track_type = Some(value.string("track_type")?),
            6 => self.policy = Some(value.string("policy")?),
            7 => self.crypto_period_index = Some(value.uint32("crypto_period_index")?),
            9 => self.protection_scheme = Some(value.uint32("protection_scheme")?),
            _ => {}
        }
        Ok(())
    }
}

/// The Widevine box cpixd emits: v0, data = one `key_id` per KID, then
/// `provider` (if configured), `content_id` (UTF-8 of `content_id` if
/// `include_content_id`) and `protection_scheme` (only when `scheme` is set).
pub fn pssh_box(
    key_ids: &[KeyId],
    scheme: Option<Scheme>,
    settings: &WidevineSettings,
    content_id: &str,
) -> PsshBox {
    let fields = Fields {
        key_ids,
        provider: settings.provider.as_deref(),
        content_id: settings.include_content_id.then_some(content_id.as_bytes()),
        protection_scheme: scheme.map(Scheme::fourcc_u32),
        ..Fields::default()
    };
    PsshBox::v0(SystemId::WIDEVINE, fields.encode())
}

/// Largest protobuf field number.
const MAX_FIELD: u64 = (1 << 29) - 1;

/// A `MalformedWidevine` error.
fn malformed(reason: String) -> DrmError {
    DrmError::MalformedWidevine(reason)
}

/// Borrowed view of the fields to encode, shared by [`WidevinePsshData::encode`]
/// and [`pssh_box`] so the writer exists once and nothing is copied.
#[derive(Default)]
struct Fields<'a> {
    algorithm: Option<u32>,
    key_ids: &'a [KeyId],
    provider: Option<&'a str>,
    content_id: Option<&'a [u8]>,
    track_type: Option<&'a str>,
    policy: Option<&'a str>,
    crypto_period_index: Option<u32>,
    protection_scheme: Option<u32>,
}

/// A value to write: varint or length-delimited.
enum Out<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Fields<'a> {
    /// Calls `f` for every set field, in ascending field order.
    fn for_each(&self, mut f: impl FnMut(u64, Out<'a>)) {
        let text = |s: Option<&'a str>| s.map(|s| Out::Bytes(s.as_bytes()));
        let uint = |v: Option<u32>| v.map(|v| Out::Varint(v.into()));
        if let Some(v) = uint(self.algorithm) {
            f(1, v);
        }
        for kid in self.key_ids {
            f(2, Out::Bytes(kid.as_bytes()));
        }
        let rest = [
            (3, text(self.provider)),
            (4, self.content_id.map(Out::Bytes)),
            (5, text(self.track_type)),
            (6, text(self.policy)),
            (7, uint(self.crypto_period_index)),
            (9, uint(self.protection_scheme)),
        ];
        for (field, value) in rest {
            if let Some(v) = value {
                f(field, v);
            }
        }
    }

    /// Serializes into an exactly sized buffer.
    fn encode(&self) -> Vec<u8> {
        let mut len = 0;
        self.for_each(|field, v| len += field_len(field, &v));
        let mut out = Vec::with_capacity(len);
        self.for_each(|field, v| write_field(&mut out, field, &v));
        out
    }
}

/// Encoded length of a varint.
fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Encoded length of one field, tag included.
fn field_len(field: u64, v: &Out<'_>) -> usize {
    varint_len(field << 3)
        + match v {
            Out::Varint(n) => varint_len(*n),
            Out::Bytes(b) => varint_len(b.len() as u64) + b.len(),
        }
}

/// Appends a varint.
fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends one field, tag included.
fn write_field(out: &mut Vec<u8>, field: u64, v: &Out<'_>) {
    match v {
        Out::Varint(n) => {
            write_varint(out, field << 3);
            write_varint(out, *n);
        }
        Out::Bytes(b) => {
            write_varint(out, (field << 3) | 2);
            write_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
    }
}

/// What a Widevine licence request (a `SignedMessage`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceRequestInfo {
    /// `LicenseRequest.type`: new licence, renewal or release; `None` for
    /// a service-certificate request.
    pub kind: Option<RequestKind>,
    /// The KIDs of the content's PSSH data (`key_id`s of every
    /// `WidevinePsshData` found, in order, without repeats).
    pub kids: Vec<KeyId>,
}

/// `LicenseRequest.RequestType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `NEW` (1).
    New,
    /// `RENEWAL` (2).
    Renewal,
    /// `RELEASE` (3).
    Release,
}

/// The length-delimited fields numbered `field` of a protobuf message.
fn bytes_fields(msg: &[u8], field: u64) -> Result<Vec<&[u8]>, DrmError> {
    let mut out = Vec::new();
    let mut r = ByteReader::new(msg);
    while !r.is_empty() {
        let tag = read_varint(&mut r)?;
        let value = read_value(&mut r, tag & 7)?;
        if tag >> 3 == field {
            out.push(value.bytes("field")?);
        }
    }
    Ok(out)
}

/// The varint field numbered `field` of a protobuf message, if present.
fn varint_field(msg: &[u8], field: u64) -> Result<Option<u64>, DrmError> {
    let mut found = None;
    let mut r = ByteReader::new(msg);
    while !r.is_empty() {
        let tag = read_varint(&mut r)?;
        let value = read_value(&mut r, tag & 7)?;
        if tag >> 3 == field {
            if let Wire::Varint(v) = value {
                found = Some(v);
            }
        }
    }
    Ok(found)
}

/// Reads a Widevine licence challenge: `SignedMessage { type = 1 (LICENSE_REQUEST)
/// or 4 (SERVICE_CERTIFICATE_REQUEST), msg = LicenseRequest { content_id
/// = ContentIdentification { widevine_pssh_data { pssh_data* } |
/// init_data { init_data = pssh boxes } }, type } }`.
pub fn licence_request_info(challenge: &[u8]) -> Result<LicenceRequestInfo, DrmError> {
    let message_type = varint_field(challenge, 1)?;
    if message_type == Some(4) {
        return Ok(LicenceRequestInfo {
            kind: None,
            kids: Vec::new(),
        });
    }
    let msg = bytes_fields(challenge, 2)?
        .into_iter()
        .next()
        .ok_or_else(|| malformed("SignedMessage without msg".to_owned()))?;
    let kind = match varint_field(msg, 3)? {
        Some(2) => RequestKind::Renewal,
        Some(3) => RequestKind::Release,
        _ => RequestKind::New,
    };
    let mut kids: Vec<KeyId> = Vec::new();
    let mut add = |more: Vec<KeyId>| {
        for k in more {
            if !kids.contains(&k) && kids.len() < 256 {
                kids.push(k);
            }
        }
    };
    for content in bytes_fields(msg, 2)? {
        for cenc in bytes_fields(content, 1)? {
            for data in bytes_fields(cenc, 1)? {
                add(WidevinePsshData::decode(data)?.key_ids);
            }
        }
        for init in bytes_fields(content, 4)? {
            for boxes in bytes_fields(init, 2)? {
                for b in PsshBox::parse_all(boxes).unwrap_or_default() {
                    if b.system_id == SystemId::WIDEVINE {
                        add(WidevinePsshData::decode(&b.data)?.key_ids);
                    }
                    add(b.key_ids);
                }
            }
        }
    }
    Ok(LicenceRequestInfo {
        kind: Some(kind),
        kids,
    })
}

/// Reads a varint of at most 10 bytes that fits in 64 bits.
fn read_varint(r: &mut ByteReader<'_>) -> Result<u64, DrmError> {
    let over_long = || malformed("over-long varint (more than 10 bytes or 64 bits)".to_owned());
    let mut value = 0u64;
    for i in 0..10 {
        let b = r
            .u8()
            .ok_or_else(|| malformed("truncated varint".to_owned()))?;
        // The 10th byte may only contribute the 64th bit and must end the varint.
        if i == 9 && b > 1 {
            return Err(over_long());
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(over_long())
}

/// A decoded field value.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Reads the value of a field with wire type `wire_type`.
fn read_value<'a>(r: &mut ByteReader<'a>, wire_type: u64) -> Result<Wire<'a>, DrmError> {
    let truncated = || malformed("truncated field value".to_owned());
    match wire_type {
        0 => read_varint(r).map(Wire::Varint),
        1 => r.take(8).map(|_| Wire::Fixed).ok_or_else(truncated),
        2 => {
            let len = usize::try_from(read_varint(r)?).map_err(|_| truncated())?;
            r.take(len).map(Wire::Bytes).ok_or_else(truncated)
        }
        5 => r.take(4).map(|_| Wire::Fixed).ok_or_else(truncated),
        3 | 4 => Err(malformed(
            "groups (wire types 3/4) are not supported".to_owned(),
        )),
        other => Err(malformed(format!("invalid wire type {other}"))),
    }
}

impl<'a> Wire<'a> {
    /// The value of a `uint32`/enum field.
    fn uint32(self, name: &str) -> Result<u32, DrmError> {
        match self {
            Wire::Varint(v) => u32::try_from(v)
                .map_err(|_| malformed(format!("{name} {v} does not fit in 32 bits"))),
            _ => Err(malformed(format!("{name} is not a varint"))),
        }
    }

    /// The value of a `bytes` field.
    fn bytes(self, name: &str) -> Result<&'a [u8], DrmError> {
        match self {
            Wire::Bytes(b) => Ok(b),
            _ => Err(malformed(format!("{name} is not length-delimited"))),
        }
    }

    /// The value of a `string` field.
    fn string(self, name: &str) -> Result<String, DrmError> {
        let b = self.bytes(name)?;
        String::from_utf8(b.to_vec()).map_err(|_| malformed(format!("{name} is not UTF-8")))
    }

    /// The value of a `key_id` field.
    fn key_id(self) -> Result<KeyId, DrmError> {
        let b = self.bytes("key_id")?;
        let arr: [u8; 16] = b
            .try_into()
            .map_err(|_| malformed(format!("key_id is {} bytes, expected 16", b.len())))?;
        Ok(KeyId::from_bytes(arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drm::test_util::{b64, hex, kid};

    const KID1: &str = "6b657969-6431-7e7e-7e7e-7e7e7e7e7e7e";
    const KID2: &str = "6b657969-6432-7e7e-7e7e-7e7e7e7e7e7e";
    const KIDA: &str = "31323334-3536-3738-3930-313233343536";

    fn build(kids: &[&str], scheme: Option<Scheme>) -> Vec<u8> {
        let kids: Vec<KeyId> = kids.iter().map(|k| kid(k)).collect();
        pssh_box(&kids, scheme, &WidevineSettings::default(), "ignored").to_bytes()
    }

    fn data_of(box_b64: &str) -> WidevinePsshData {
        let pssh = PsshBox::parse(&b64(box_b64)).unwrap();
        assert_eq!(pssh.system_id, SystemId::WIDEVINE);
        WidevinePsshData::decode(&pssh.data).unwrap()
    }

    #[test]
    fn wv1_two_kids_no_scheme() {
        // WV-1
        let expected = hex("000000447073736800000000edef8ba979d64acea3c827dcd51d21ed0000002412106b65796964317e7e7e7e7e7e7e7e7e7e12106b65796964327e7e7e7e7e7e7e7e7e7e");
        assert_eq!(build(&[KID1, KID2], None), expected);
        let box_ = PsshBox::parse(&expected).unwrap();
        let data = WidevinePsshData::decode(&box_.data).unwrap();
        assert_eq!(data.key_ids, [kid(KID1), kid(KID2)]);
        assert_eq!(data.protection_scheme, None);
    }

    #[test]
    fn wv2_two_kids_cbcs() {
        // WV-2
        let expected = hex("0000004a7073736800000000edef8ba979d64acea3c827dcd51d21ed0000002a12106b65796964317e7e7e7e7e7e7e7e7e7e12106b65796964327e7e7e7e7e7e7e7e7e7e48f3c6899b06");
        assert_eq!(build(&[KID1, KID2], Some(Scheme::Cbcs)), expected);
    }

    #[test]
    fn wv3_one_kid_cenc_and_variants() {
        // WV-3
        let expected = hex("000000387073736800000000edef8ba979d64acea3c827dcd51d21ed0000001812103132333435363738393031323334353648e3dc959b06");
        assert_eq!(build(&[KIDA], Some(Scheme::Cenc)), expected);
        // WV-3 cbcs variant (Shaka Packager v3.8.0)
        let cbcs = hex("000000387073736800000000edef8ba979d64acea3c827dcd51d21ed0000001812103132333435363738393031323334353648f3c6899b06");
        assert_eq!(build(&[KIDA], Some(Scheme::Cbcs)), cbcs);
        // WV-3 variant with KID 0f083e4e-…, cenc
        assert_eq!(
            build(
                &["0f083e4e-b831-4a3d-917e-ce78076e54aa"],
                Some(Scheme::Cenc)
            ),
            b64("AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSEA8IPk64MUo9kX7OeAduVKpI49yVmwY=")
        );
    }

    #[test]
    fn protection_scheme_field_bytes() {
        // pssh.md §2.2 table
        for (scheme, field) in [
            (Scheme::Cenc, "48e3dc959b06"),
            (Scheme::Cbc1, "48b1c6899b06"),
            (Scheme::Cens, "48f3dc959b06"),
            (Scheme::Cbcs, "48f3c6899b06"),
        ] {
            let data = WidevinePsshData {
                protection_scheme: Some(scheme.fourcc_u32()),
                ..Default::default()
            };
            assert_eq!(data.encode(), hex(field), "{scheme}");
        }
    }

    #[test]
    fn wv4_content_id_only() {
        // WV-4
        let data = data_of("AAAALHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAAwiCkNvbnRlbnRGb28=");
        assert_eq!(
            data,
            WidevinePsshData {
                content_id: Some(b"ContentFoo".to_vec()),
                ..Default::default()
            }
        );
    }

    #[test]
    fn wv5_provider_and_content_id_v0_and_v1() {
        // WV-5
        let v0 =
            "AAAAPXBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAB0aDXdpZGV2aW5lX3Rlc3QiDHRlc3QgY29udGVudA==";
        let v1 = "AAAAUXBzc2gBAAAA7e+LqXnWSs6jyCfc1R0h7QAAAAEQAAAAEAAQABAAEAAAAAABAAAAHRoNd2lkZXZpbmVfdGVzdCIMdGVzdCBjb250ZW50";
        let expected = WidevinePsshData {
            provider: Some("widevine_test".to_owned()),
            content_id: Some(b"test content".to_vec()),
            ..Default::default()
        };
        assert_eq!(data_of(v0), expected);
        assert_eq!(data_of(v1), expected);
        let box1 = PsshBox::parse(&b64(v1)).unwrap();
        assert_eq!(box1.key_ids, [kid("10000000-1000-1000-1000-100000000001")]);

        // Our writer reproduces both boxes.
        let settings = WidevineSettings {
            provider: Some("widevine_test".to_owned()),
            include_content_id: true,
        };
        let built = pssh_box(&[], None, &settings, "test content");
        assert_eq!(built.to_bytes(), b64(v0));
        let with_header_kid = PsshBox::v1(SystemId::WIDEVINE, box1.key_ids.clone(), built.data);
        assert_eq!(with_header_kid.to_bytes(), b64(v1));
    }

    #[test]
    fn wv6_widevine_service_fields_round_trip() {
        // WV-6
        let text = "AAAAanBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAEoIARIQeSIcblaNbb7Dji6sAtKZzRoNd2lkZXZpbmVfdGVzdCIfa2V5LWlkOmVTSWNibGFOYmI3RGppNnNBdEtaelE9PSoCU0QyAA==";
        let data = data_of(text);
        assert_eq!(
            data,
            WidevinePsshData {
                algorithm: Some(ALGORITHM_AESCTR),
                key_ids: vec![kid("79221c6e-568d-6dbe-c38e-2eac02d299cd")],
                provider: Some("widevine_test".to_owned()),
                content_id: Some(b"key-id:eSIcblaNbb7Dji6sAtKZzQ==".to_vec()),
                track_type: Some("SD".to_owned()),
                policy: Some(String::new()),
                crypto_period_index: None,
                protection_scheme: None,
            }
        );
        assert_eq!(data.encode(), PsshBox::parse(&b64(text)).unwrap().data);
    }

    #[test]
    fn settings_add_provider_and_content_id_before_scheme() {
        let settings = WidevineSettings {
            provider: Some("p".to_owned()),
            include_content_id: true,
        };
        let b = pssh_box(&[kid(KIDA)], Some(Scheme::Cbcs), &settings, "c1");
        let mut expected = hex("121031323334353637383930313233343536");
        // provider "p", content_id "c1", protection_scheme cbcs
        expected.extend_from_slice(&hex("1a01702202633148f3c6899b06"));
        assert_eq!(b.data, expected);
    }

    #[test]
    fn decode_skips_unknown_fields_of_every_wire_type() {
        // field 10 varint 300, field 8 bytes "ab", field 15 fixed32, field 16 fixed64,
        // then crypto_period_index = 7.
        let bytes = hex(concat!(
            "50ac02",
            "42026162",
            "7d01020304",
            "81010102030405060708",
            "3807"
        ));
        let data = WidevinePsshData::decode(&bytes).unwrap();
        assert_eq!(
            data,
            WidevinePsshData {
                crypto_period_index: Some(7),
                ..Default::default()
            }
        );
    }

    fn decode_err(hex_str: &str) -> String {
        match WidevinePsshData::decode(&hex(hex_str)) {
            Err(DrmError::MalformedWidevine(m)) => m,
            other => panic!("expected an error for {hex_str}, got {other:?}"),
        }
    }

    #[test]
    fn decode_rejects_bad_input() {
        assert!(decode_err("0880").contains("truncated varint"));
        assert!(decode_err("48").contains("truncated varint"));
        assert!(decode_err("08ffffffffffffffffff02").contains("over-long varint"));
        // 11 bytes: ten continuation bytes, then a terminator.
        assert!(decode_err("088080808080808080808000").contains("over-long varint"));
        // A 10-byte non-minimal encoding of 0 is still a valid varint.
        assert_eq!(
            WidevinePsshData::decode(&hex("0880808080808080808000"))
                .unwrap()
                .algorithm,
            Some(0)
        );
        assert!(decode_err("08ffffffffffffffffff01").contains("does not fit in 32 bits"));
        assert!(decode_err("1210313233").contains("truncated field value"));
        assert!(decode_err("4d010203").contains("truncated field value"));
        assert!(decode_err("1001").contains("key_id is not length-delimited"));
        assert!(decode_err("1203313233").contains("key_id is 3 bytes"));
        assert!(decode_err("1a02c328").contains("provider is not UTF-8"));
        assert!(decode_err("488080808010").contains("protection_scheme 4294967296"));
        assert!(decode_err("0b").contains("groups"));
        assert!(decode_err("0e").contains("invalid wire type 6"));
        assert!(decode_err("0001").contains("invalid field number 0"));
    }

    #[test]
    fn varint_lengths() {
        for (v, n) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), n, "{v}");
            assert_eq!(varint_len(v), n, "{v}");
            assert_eq!(read_varint(&mut ByteReader::new(&out)).unwrap(), v);
        }
    }
}
