//! The ISO/IEC 23001-7 `pssh` box: writer, strict reader, and its base64
//! and MPD `<cenc:pssh>` text forms.

use super::{ByteReader, DrmError};
use crate::b64::Base64Text;
use crate::ids::{KeyId, SystemId};

/// Smallest possible box: size, type, version/flags, SystemID, DataSize.
const MIN_BOX_LEN: usize = 32;
/// The box type.
const BOX_TYPE: &[u8; 4] = b"pssh";

/// One `pssh` box. `key_ids` are written (and read) only when `version` is
/// not 0; version 1 is the only other version a reader accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsshBox {
    /// Box version: 0 (no KID list) or 1 (KID list in the box header).
    pub version: u8,
    /// The DRM system the data is for.
    pub system_id: SystemId,
    /// KIDs listed in a version 1 box (UUID byte order).
    pub key_ids: Vec<KeyId>,
    /// System-specific data.
    pub data: Vec<u8>,
}

impl PsshBox {
    /// A version 0 box (no KID list).
    pub fn v0(system_id: SystemId, data: Vec<u8>) -> Self {
        PsshBox {
            version: 0,
            system_id,
            key_ids: Vec::new(),
            data,
        }
    }

    /// A version 1 box listing `key_ids` in its header.
    pub fn v1(system_id: SystemId, key_ids: Vec<KeyId>, data: Vec<u8>) -> Self {
        PsshBox {
            version: 1,
            system_id,
            key_ids,
            data,
        }
    }

    /// True when the layout carries a KID list (any version but 0).
    fn has_kid_list(&self) -> bool {
        self.version != 0
    }

    /// Length in bytes of the serialized box.
    pub fn encoded_len(&self) -> usize {
        let kids = if self.has_kid_list() {
            4 + 16 * self.key_ids.len()
        } else {
            0
        };
        MIN_BOX_LEN + kids + self.data.len()
    }

    /// Appends the serialized box to `out`. Lengths beyond `u32::MAX`
    /// (impossible for real PSSH data) saturate and make the box unreadable.
    pub fn write_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&len_u32(self.encoded_len()).to_be_bytes());
        out.extend_from_slice(BOX_TYPE);
        out.extend_from_slice(&[self.version, 0, 0, 0]);
        out.extend_from_slice(self.system_id.as_bytes());
        if self.has_kid_list() {
            out.extend_from_slice(&len_u32(self.key_ids.len()).to_be_bytes());
            for kid in &self.key_ids {
                out.extend_from_slice(kid.as_bytes());
            }
        }
        out.extend_from_slice(&len_u32(self.data.len()).to_be_bytes());
        out.extend_from_slice(&self.data);
    }

    /// The serialized box.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_into(&mut out);
        out
    }

    /// Standard padded base64 of the serialized box (CPIX `<PSSH>`).
    pub fn to_base64(&self) -> String {
        crate::b64::encode(&self.to_bytes())
    }

    /// Parses exactly one box: the size field must equal `bytes.len()`.
    pub fn parse(bytes: &[u8]) -> Result<PsshBox, DrmError> {
        let size = declared_size(bytes)?;
        if size != bytes.len() {
            return Err(malformed(format!(
                "size field says {size} bytes but the buffer holds {}",
                bytes.len()
            )));
        }
        parse_exact(bytes)
    }

    /// Parses one or more concatenated boxes, each strictly; nothing may be
    /// left over.
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<PsshBox>, DrmError> {
        if bytes.is_empty() {
            return Err(malformed("no box".to_owned()));
        }
        let mut boxes = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let size = declared_size(rest)?;
            let (one, tail) = rest.split_at_checked(size).ok_or_else(|| {
                malformed(format!(
                    "box {} claims {size} bytes but only {} remain",
                    boxes.len() + 1,
                    rest.len()
                ))
            })?;
            boxes.push(parse_exact(one)?);
            rest = tail;
        }
        Ok(boxes)
    }
}

/// A `MalformedPssh` error.
fn malformed(reason: String) -> DrmError {
    DrmError::MalformedPssh(reason)
}

/// A length as a box field; saturates (see [`PsshBox::write_into`]).
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads and sanity-checks the size field of the box at the start of `bytes`.
fn declared_size(bytes: &[u8]) -> Result<usize, DrmError> {
    if bytes.len() < MIN_BOX_LEN {
        return Err(malformed(format!(
            "truncated: {} bytes, a box needs at least {MIN_BOX_LEN}",
            bytes.len()
        )));
    }
    let size = ByteReader::new(bytes)
        .u32_be()
        .ok_or_else(|| malformed("truncated size field".to_owned()))?;
    match size {
        0 => Err(malformed(
            "size 0 (box to end of file) is not allowed".to_owned(),
        )),
        1 => Err(malformed("64-bit largesize is not allowed".to_owned())),
        s if (s as usize) < MIN_BOX_LEN => Err(malformed(format!(
            "size field {s} is below the {MIN_BOX_LEN}-byte minimum"
        ))),
        s => Ok(s as usize),
    }
}

/// Parses a buffer that holds exactly one box (size already checked).
fn parse_exact(bytes: &[u8]) -> Result<PsshBox, DrmError> {
    let mut r = ByteReader::new(bytes);
    let truncated = |what: &str| malformed(format!("truncated {what}"));
    r.u32_be().ok_or_else(|| truncated("size"))?;
    let box_type = r.array::<4>().ok_or_else(|| truncated("type"))?;
    if box_type != BOX_TYPE {
        return Err(malformed(format!(
            "box type is \"{}\", expected \"pssh\"",
            box_type.escape_ascii()
        )));
    }
    let version_flags = r.u32_be().ok_or_else(|| truncated("version"))?;
    let version = version_flags.to_be_bytes()[0];
    if version > 1 {
        return Err(malformed(format!("unsupported version {version}")));
    }
    if version_flags & 0x00ff_ffff != 0 {
        return Err(malformed("flags are not 0".to_owned()));
    }
    let system_id = SystemId::from_bytes(*r.array().ok_or_else(|| truncated("SystemID"))?);
    let key_ids = if version == 1 {
        read_kid_list(&mut r)?
    } else {
        Vec::new()
    };
    let data_size = r.u32_be().ok_or_else(|| truncated("DataSize"))? as usize;
    if data_size != r.remaining() {
        return Err(malformed(format!(
            "DataSize is {data_size} but {} bytes remain in the box",
            r.remaining()
        )));
    }
    Ok(PsshBox {
        version,
        system_id,
        key_ids,
        data: r.take_rest().to_vec(),
    })
}

/// Reads the KID_count and KID list of a version 1 box.
fn read_kid_list(r: &mut ByteReader<'_>) -> Result<Vec<KeyId>, DrmError> {
    let count = r
        .u32_be()
        .ok_or_else(|| malformed("truncated KID_count".to_owned()))? as usize;
    // The DataSize field (4 bytes) must still follow the list.
    if count > r.remaining().saturating_sub(4) / 16 {
        return Err(malformed(format!(
            "KID_count {count} does not fit in the box"
        )));
    }
    let mut kids = Vec::with_capacity(count);
    for _ in 0..count {
        let kid = r
            .array::<16>()
            .ok_or_else(|| malformed("truncated KID list".to_owned()))?;
        kids.push(KeyId::from_bytes(*kid));
    }
    Ok(kids)
}

/// Appends a standalone MPD `<cenc:pssh>` element (namespace declared on
/// it) holding the base64 of a whole box (encoded once by the caller, which
/// uses it for the CPIX `PSSH` too).
pub fn push_mpd_pssh_element(box_base64: &Base64Text, out: &mut String) {
    out.push_str(r#"<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">"#);
    out.push_str(box_base64.as_str());
    out.push_str("</cenc:pssh>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drm::test_util::{b64, hex, kid};

    // WV-1 (a v0 box) and CM-3 (a v1 box) from pssh-vectors.md.
    const WV1_HEX: &str = "000000447073736800000000edef8ba979d64acea3c827dcd51d21ed0000002412106b65796964317e7e7e7e7e7e7e7e7e7e12106b65796964327e7e7e7e7e7e7e7e7e7e";
    const CM3_HEX: &str = "0000003470737368010000001077efecc0b24d02ace33c1e52e2fb4b000000013132333435363738393031323334353600000000";

    fn cm3() -> Vec<u8> {
        hex(CM3_HEX)
    }

    #[test]
    fn v0_round_trip_wv1() {
        let bytes = hex(WV1_HEX);
        let pssh = PsshBox::parse(&bytes).unwrap();
        assert_eq!(pssh.version, 0);
        assert_eq!(pssh.system_id, SystemId::WIDEVINE);
        assert!(pssh.key_ids.is_empty());
        assert_eq!(pssh.data, bytes[32..].to_vec());
        assert_eq!(pssh.to_bytes(), bytes);
        assert_eq!(pssh.encoded_len(), 68);
        assert_eq!(
            pssh.to_base64(),
            "AAAARHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAACQSEGtleWlkMX5+fn5+fn5+fn4SEGtleWlkMn5+fn5+fn5+fn4="
        );
    }

    #[test]
    fn v1_round_trip_cm3() {
        let bytes = cm3();
        let pssh = PsshBox::parse(&bytes).unwrap();
        assert_eq!(
            pssh,
            PsshBox::v1(
                SystemId::COMMON_PSSH,
                vec![kid("31323334-3536-3738-3930-313233343536")],
                Vec::new()
            )
        );
        assert_eq!(pssh.to_bytes(), bytes);
    }

    #[test]
    fn write_into_appends() {
        let mut out = b"xy".to_vec();
        PsshBox::parse(&cm3()).unwrap().write_into(&mut out);
        let mut expected = b"xy".to_vec();
        expected.extend_from_slice(&cm3());
        assert_eq!(out, expected);
    }

    #[test]
    fn mpd_element_cm5() {
        // CM-5: Unified Streaming's Common PSSH, as a standalone element.
        let text = "AAAANHBzc2gBAAAAEHfv7MCyTQKs4zweUuL7SwAAAAHoLxhMOqpXtKzoYGteP+utAAAAAA==";
        let bytes = b64(text);
        let mut element = "<x>".to_owned();
        push_mpd_pssh_element(&Base64Text::encode(&bytes), &mut element);
        assert_eq!(
            element,
            format!(r#"<x><cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">{text}</cenc:pssh>"#)
        );
        let pssh = PsshBox::parse(&bytes).unwrap();
        assert_eq!(pssh.key_ids, [kid("e82f184c-3aaa-57b4-ace8-606b5e3febad")]);
        assert!(pssh.data.is_empty());
    }

    fn expect_err(bytes: &[u8], needle: &str) {
        match PsshBox::parse(bytes) {
            Err(DrmError::MalformedPssh(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected MalformedPssh({needle}), got {other:?}"),
        }
    }

    fn with_size(mut bytes: Vec<u8>, size: u32) -> Vec<u8> {
        bytes[..4].copy_from_slice(&size.to_be_bytes());
        bytes
    }

    #[test]
    fn rejects_size_field_too_big() {
        expect_err(&with_size(cm3(), 53), "size field says 53");
    }

    #[test]
    fn rejects_size_field_too_small_and_trailing_bytes() {
        // Declared 52, buffer 53: trailing byte.
        let mut b = cm3();
        b.push(0);
        expect_err(&b, "size field says 52 bytes but the buffer holds 53");
        expect_err(&with_size(cm3(), 31), "below the 32-byte minimum");
        expect_err(&with_size(cm3(), 1), "largesize");
        expect_err(&with_size(cm3(), 0), "size 0");
    }

    #[test]
    fn rejects_truncated_buffers() {
        let b = cm3();
        expect_err(&b[..31], "truncated");
        expect_err(&[], "truncated");
        // Consistent size field, but the box ends inside the KID list.
        expect_err(&with_size(b[..40].to_vec(), 40), "KID_count 1 does not fit");
    }

    #[test]
    fn rejects_version_2_flags_and_type() {
        let mut b = cm3();
        b[8] = 2;
        expect_err(&b, "unsupported version 2");
        let mut b = cm3();
        b[11] = 1;
        expect_err(&b, "flags");
        let mut b = cm3();
        b[4..8].copy_from_slice(b"moov");
        expect_err(&b, "\"moov\"");
    }

    #[test]
    fn rejects_data_size_mismatch() {
        let mut b = hex(WV1_HEX);
        b[31] = 0x23; // DataSize 35 in a box with 36 data bytes
        expect_err(&b, "DataSize is 35 but 36");
        b[31] = 0x25;
        expect_err(&b, "DataSize is 37 but 36");
        let mut b = cm3();
        b[31] = 0xff; // KID_count 255
        expect_err(&b, "KID_count 255");
    }

    #[test]
    fn parse_all_reads_concatenated_boxes_strictly() {
        let mut two = hex(WV1_HEX);
        two.extend_from_slice(&cm3());
        let boxes = PsshBox::parse_all(&two).unwrap();
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].to_bytes(), hex(WV1_HEX));
        assert_eq!(boxes[1].to_bytes(), cm3());
        assert!(PsshBox::parse(&two).is_err());

        let mut trailing = two.clone();
        trailing.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            PsshBox::parse_all(&trailing),
            Err(DrmError::MalformedPssh(m)) if m.contains("truncated")
        ));
        let mut overrun = two;
        overrun.truncate(overrun.len() - 1);
        assert!(matches!(
            PsshBox::parse_all(&overrun),
            Err(DrmError::MalformedPssh(m)) if m.contains("box 2 claims 52 bytes but only 51")
        ));
        assert!(PsshBox::parse_all(&[]).is_err());
    }
}
