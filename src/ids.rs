//! Identifiers: key ids (`KeyId`), DRM system ids (`SystemId`) and every
//! spelling of a KID met in the field (hyphenated UUID, bare hex, base64,
//! base64url and the little-endian GUID byte order PlayReady uses).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::fmt;
use std::str::FromStr;

/// A value that should have been a UUID (or another KID spelling) but is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a UUID: {value:?}")]
pub struct IdError {
    /// The offending text, truncated to 64 characters.
    pub value: String,
}

impl IdError {
    fn new(value: &str) -> Self {
        let value: String = value.chars().take(64).collect();
        IdError { value }
    }
}

/// Value of each byte as a hex digit, 0xFF for non-digits.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes 2·N hex digits into N bytes, `None` on any non-digit.
fn decode_hex_into(hex: &[u8], out: &mut [u8]) -> Option<()> {
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (HEX_VALUE[pair[0] as usize], HEX_VALUE[pair[1] as usize]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 15);
    }
    (bad & 0xF0 == 0).then_some(())
}

/// Parses exactly 36 characters `8-4-4-4-12` of hex digits (either case).
fn parse_hyphenated(s: &str) -> Option<[u8; 16]> {
    let b: &[u8; 36] = s.as_bytes().try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    // The 32 digits side by side, then one pass over fixed positions.
    let mut digits = [0u8; 32];
    digits[0..8].copy_from_slice(&b[0..8]);
    digits[8..12].copy_from_slice(&b[9..13]);
    digits[12..16].copy_from_slice(&b[14..18]);
    digits[16..20].copy_from_slice(&b[19..23]);
    digits[20..32].copy_from_slice(&b[24..36]);
    let mut out = [0u8; 16];
    decode_hex_into(&digits, &mut out)?;
    Some(out)
}

fn parse_hex32(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    decode_hex_into(b, &mut out)?;
    Some(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Where each byte's two digits go in the hyphenated form.
const DIGIT_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// The two lowercase hex digits of every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// Appends the lowercase hex digits of `bytes` to `out`.
pub fn push_hex(bytes: &[u8], out: &mut String) {
    out.reserve(2 * bytes.len());
    for chunk in bytes.chunks(16) {
        let mut digits = [0u8; 32];
        for (pair, &byte) in digits.chunks_exact_mut(2).zip(chunk) {
            pair.copy_from_slice(&HEX_PAIRS[byte as usize]);
        }
        // Only hex digits were written.
        out.push_str(std::str::from_utf8(&digits[..2 * chunk.len()]).unwrap_or_default());
    }
}

/// Writes the 16 bytes as a lowercase hyphenated UUID.
fn write_hyphenated(bytes: &[u8; 16], out: &mut [u8; 36]) {
    for (&byte, &j) in bytes.iter().zip(&DIGIT_AT) {
        out[j..j + 2].copy_from_slice(&HEX_PAIRS[byte as usize]);
    }
    for j in [8, 13, 18, 23] {
        out[j] = b'-';
    }
}

/// Swaps between UUID byte order and the little-endian GUID layout
/// (bytes 0..4, 4..6 and 6..8 reversed); the operation is its own inverse.
pub fn swap_guid_bytes(bytes: [u8; 16]) -> [u8; 16] {
    let mut out = bytes;
    out[0..4].reverse();
    out[4..6].reverse();
    out[6..8].reverse();
    out
}

/// A UUID spelled out in a stack buffer: 36 ASCII bytes.
#[derive(Clone, Copy)]
pub struct UuidText([u8; 36]);

impl UuidText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only hex digits and hyphens are ever written into the buffer.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Generates a 128-bit identifier type with the shared UUID spellings.
macro_rules! uuid_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// Builds the id from its 16 bytes in UUID (big-endian) order.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(bytes)
            }

            /// The 16 bytes in UUID (big-endian) order.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// Parses a hyphenated UUID, case-insensitive, optionally in braces
            /// or with a `urn:uuid:` prefix.
            pub fn parse_uuid(s: &str) -> Result<Self, IdError> {
                // The plain hyphenated form, as nearly every id is written.
                if let Some(bytes) = parse_hyphenated(s) {
                    return Ok($name(bytes));
                }
                let t = s.trim();
                let t = t
                    .strip_prefix("urn:uuid:")
                    .or_else(|| t.strip_prefix("URN:UUID:"))
                    .unwrap_or(t);
                let t = t
                    .strip_prefix('{')
                    .and_then(|x| x.strip_suffix('}'))
                    .unwrap_or(t);
                parse_hyphenated(t).map($name).ok_or_else(|| IdError::new(s))
            }

            /// Parses the hyphenated form only (8-4-4-4-12 hex digits, either
            /// case; surrounding whitespace ignored): the CPIX `KeyIdType`.
            /// Braces and `urn:uuid:` prefixes are refused.
            pub fn parse_hyphenated(s: &str) -> Result<Self, IdError> {
                // The untrimmed text first: 36 bytes around which there is
                // nothing to trim, as nearly every KID is written.
                parse_hyphenated(s)
                    .or_else(|| parse_hyphenated(s.trim()))
                    .map($name)
                    .ok_or_else(|| IdError::new(s))
            }

            /// Lowercase hyphenated UUID text.
            pub fn to_uuid_string(&self) -> String {
                self.to_string()
            }

            /// Lowercase hyphenated UUID text in a stack buffer (no allocation).
            pub fn uuid_text(&self) -> UuidText {
                let mut buf = [0u8; 36];
                write_hyphenated(&self.0, &mut buf);
                UuidText(buf)
            }

            /// 32 lowercase hex digits, no hyphens.
            pub fn to_hex(&self) -> String {
                let mut s = String::with_capacity(32);
                push_hex(&self.0, &mut s);
                s
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.uuid_text().as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse_uuid(s)
            }
        }
    };
}

uuid_type!(
    /// A content key id (KID): 16 bytes, written as a UUID in CPIX.
    KeyId
);

uuid_type!(
    /// A DRM system id from the DASH-IF registry.
    SystemId
);

impl KeyId {
    /// Parses any spelling seen in the field: hyphenated UUID (any case, in
    /// braces or with `urn:uuid:`), 32 hex digits (optionally `0x`-prefixed),
    /// or base64/base64url of the 16 UUID-order bytes.
    pub fn parse_any(s: &str) -> Result<Self, IdError> {
        let t = s.trim();
        if let Ok(k) = Self::parse_uuid(t) {
            return Ok(k);
        }
        let hex = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        if let Some(b) = parse_hex32(hex) {
            return Ok(KeyId(b));
        }
        Self::from_base64(t)
    }

    /// Parses base64 (standard or URL alphabet, padded or not) of the 16
    /// UUID-order bytes.
    pub fn from_base64(s: &str) -> Result<Self, IdError> {
        let t = s.trim();
        let decoded = STANDARD
            .decode(t)
            .ok()
            .or_else(|| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok())
            .ok_or_else(|| IdError::new(s))?;
        let bytes: [u8; 16] = decoded.try_into().map_err(|_| IdError::new(s))?;
        Ok(KeyId(bytes))
    }

    /// Standard padded base64 of the UUID-order bytes (`mspr:kid` style).
    pub fn to_base64(&self) -> String {
        crate::b64::encode(&self.0)
    }

    /// Unpadded base64url of the UUID-order bytes (W3C ClearKey `kid`).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The 16 bytes in little-endian GUID order (PlayReady).
    pub fn to_guid_le(&self) -> [u8; 16] {
        swap_guid_bytes(self.0)
    }

    /// Builds a KID from little-endian GUID bytes (as found in a PlayReady header).
    pub fn from_guid_le(bytes: [u8; 16]) -> Self {
        KeyId(swap_guid_bytes(bytes))
    }

    /// Standard base64 of the little-endian GUID bytes: the PlayReady
    /// `<KID>` / `VALUE` spelling.
    pub fn to_playready_base64(&self) -> String {
        crate::b64::encode(&self.to_guid_le())
    }

    /// Parses the PlayReady spelling (base64 of little-endian GUID bytes).
    pub fn from_playready_base64(s: &str) -> Result<Self, IdError> {
        let bytes: [u8; 16] = STANDARD
            .decode(s.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| IdError::new(s))?;
        Ok(Self::from_guid_le(bytes))
    }
}

impl SystemId {
    /// Google Widevine.
    pub const WIDEVINE: SystemId = SystemId(hex16(*b"edef8ba979d64acea3c827dcd51d21ed"));
    /// Microsoft PlayReady.
    pub const PLAYREADY: SystemId = SystemId(hex16(*b"9a04f07998404286ab92e65be0885f95"));
    /// Apple FairPlay Streaming (CPIX / SPEKE id).
    pub const FAIRPLAY: SystemId = SystemId(hex16(*b"94ce86fb07ff4f43adb893d2fa968ca2"));
    /// W3C common PSSH (`cenc` init data, used by ClearKey).
    pub const COMMON_PSSH: SystemId = SystemId(hex16(*b"1077efecc0b24d02ace33c1e52e2fb4b"));
    /// DASH-IF ClearKey (MPD `ContentProtection` only).
    pub const DASHIF_CLEARKEY: SystemId = SystemId(hex16(*b"e2719d58a985b3c9781ab030af78d30e"));
    /// HLS AES-128 ("ClearKey AES-128") as used by SPEKE 2.0 and MediaPackage v2.
    pub const HLS_AES128: SystemId = SystemId(hex16(*b"3ea8778f77424bf9b18be834b2acbd47"));
    /// HLS AES-128 pseudo id used in the SPEKE 1.0 examples (not registered).
    pub const HLS_AES128_SPEKE_V1: SystemId = SystemId(hex16(*b"81376844f976481ea84ecc25d39b0b33"));
    /// Irdeto.
    pub const IRDETO: SystemId = SystemId(hex16(*b"80a6be7e14484c379e70d5aebe04c8d2"));

    /// Human-readable name of a well-known system, `None` for others.
    pub fn name(&self) -> Option<&'static str> {
        Some(match *self {
            Self::WIDEVINE => "Widevine",
            Self::PLAYREADY => "PlayReady",
            Self::FAIRPLAY => "FairPlay",
            Self::COMMON_PSSH => "W3C Common PSSH",
            Self::DASHIF_CLEARKEY => "DASH-IF ClearKey",
            Self::HLS_AES128 => "HLS AES-128",
            Self::HLS_AES128_SPEKE_V1 => "HLS AES-128 (SPEKE 1.0 id)",
            Self::IRDETO => "Irdeto",
            _ => return None,
        })
    }
}

/// Compile-time conversion of 32 ASCII hex digits into 16 bytes.
const fn hex16(h: [u8; 32]) -> [u8; 16] {
    const fn v(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex digit in constant"),
        }
    }
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = (v(h[2 * i]) << 4) | v(h[2 * i + 1]);
        i += 1;
    }
    out
}

/// Content identifier of a SPEKE/CPIX request (`CPIX@contentId` in v2,
/// `CPIX@id` in v1). Any non-empty string up to 1024 bytes without control
/// characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(String);

/// Why a content id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentIdError {
    /// Empty or whitespace only.
    #[error("content id is empty")]
    Empty,
    /// Longer than [`ContentId::MAX_LEN`] bytes.
    #[error("content id is longer than {} bytes", ContentId::MAX_LEN)]
    TooLong,
    /// Contains a control character.
    #[error("content id contains a control character")]
    ControlCharacter,
}

impl ContentId {
    /// Longest accepted content id, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Validates and wraps a content id.
    pub fn new(s: &str) -> Result<Self, ContentIdError> {
        if s.trim().is_empty() {
            return Err(ContentIdError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(ContentIdError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(ContentIdError::ControlCharacter);
        }
        Ok(ContentId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "0f083e4e-b831-4a3d-917e-ce78076e54aa";

    #[test]
    fn every_spelling_of_one_kid() {
        let k = KeyId::parse_uuid(K).unwrap();
        assert_eq!(k.to_string(), K);
        assert_eq!(k.to_hex(), "0f083e4eb8314a3d917ece78076e54aa");
        assert_eq!(k.to_playready_base64(), "Tj4IDzG4PUqRfs54B25Uqg==");
        assert_eq!(k.to_base64(), "Dwg+TrgxSj2Rfs54B25Uqg==");
        assert_eq!(k.to_base64url(), "Dwg-TrgxSj2Rfs54B25Uqg");
        for s in [
            "0F083E4E-B831-4A3D-917E-CE78076E54AA",
            "{0f083e4e-b831-4a3d-917e-ce78076e54aa}",
            "urn:uuid:0f083e4e-b831-4a3d-917e-ce78076e54aa",
            "0f083e4eb8314a3d917ece78076e54aa",
            "0x0f083e4eb8314a3d917ece78076e54aa",
            "Dwg+TrgxSj2Rfs54B25Uqg==",
            "Dwg-TrgxSj2Rfs54B25Uqg",
        ] {
            assert_eq!(KeyId::parse_any(s).unwrap(), k, "{s}");
        }
        assert_eq!(
            KeyId::from_playready_base64("Tj4IDzG4PUqRfs54B25Uqg==").unwrap(),
            k
        );
    }

    #[test]
    fn uuid_text_puts_every_digit_in_place() {
        for v in 0..=255u8 {
            let bytes: [u8; 16] =
                std::array::from_fn(|i| v.wrapping_add((i as u8).wrapping_mul(37)));
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let expected = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            let k = KeyId::from_bytes(bytes);
            assert_eq!(k.uuid_text().as_str(), expected);
            assert_eq!(KeyId::parse_hyphenated(&expected).unwrap(), k);
        }
    }

    #[test]
    fn the_cpix_spelling_is_hyphenated_only() {
        let k = KeyId::parse_uuid(K).unwrap();
        assert_eq!(KeyId::parse_hyphenated(K).unwrap(), k);
        assert_eq!(
            KeyId::parse_hyphenated("0F083E4E-B831-4A3D-917E-CE78076E54AA").unwrap(),
            k
        );
        assert_eq!(KeyId::parse_hyphenated(&format!(" {K}\n")).unwrap(), k);
        for s in [
            "{0f083e4e-b831-4a3d-917e-ce78076e54aa}",
            "urn:uuid:0f083e4e-b831-4a3d-917e-ce78076e54aa",
            "0f083e4eb8314a3d917ece78076e54aa",
            "0f083e4e-b831-4a3d-917e-ce78076e54a",
        ] {
            let err = KeyId::parse_hyphenated(s).unwrap_err();
            assert!(err.to_string().contains(s), "{err}");
        }
    }

    #[test]
    fn a_wrong_byte_anywhere_in_the_hyphenated_form_is_refused() {
        for at in 0..36 {
            let hyphen = [8, 13, 18, 23].contains(&at);
            for c in 0..=255u8 {
                let mut b = K.as_bytes().to_vec();
                b[at] = c;
                let Ok(s) = String::from_utf8(b) else {
                    continue;
                };
                let fits = if hyphen {
                    c == b'-'
                } else {
                    c.is_ascii_hexdigit()
                };
                assert_eq!(
                    KeyId::parse_hyphenated(&s).is_ok(),
                    fits,
                    "byte {c:#04x} at {at}: {s:?}"
                );
            }
        }
    }

    #[test]
    fn microsoft_byte_order_example() {
        // MS PlayReady DASH spec §2.2.5, Table 2 (vector PR-7).
        let k = KeyId::parse_uuid("f81d4fae-7dec-11d0-a765-00a0c91e6bf6").unwrap();
        assert_eq!(k.to_playready_base64(), "rk8d+Ox90BGnZQCgyR5r9g==");
        assert_eq!(k.to_base64(), "+B1Prn3sEdCnZQCgyR5r9g==");
        assert_eq!(
            swap_guid_bytes(swap_guid_bytes(*k.as_bytes())),
            *k.as_bytes()
        );
    }

    #[test]
    fn strict_uuid_parsing_names_the_value() {
        for bad in [
            "",
            "not-a-uuid",
            "0f083e4e-b831-4a3d-917e-ce78076e54a",
            "0f083e4eb831-4a3d-917e-ce78076e54aaa",
            "0f083e4e-b831-4a3d-917e-ce78076e54ag",
            "0f083e4e_b831_4a3d_917e_ce78076e54aa",
        ] {
            let err = KeyId::parse_uuid(bad).unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err.to_string().contains("not a UUID"));
        }
        // base64 of 15 bytes is not a KID in any spelling
        assert!(KeyId::parse_any("AAAAAAAAAAAAAAAAAAAA").is_err());
    }

    #[test]
    fn system_id_constants_and_case() {
        assert_eq!(
            SystemId::parse_uuid("EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED").unwrap(),
            SystemId::WIDEVINE
        );
        assert_eq!(
            SystemId::HLS_AES128.to_string(),
            "3ea8778f-7742-4bf9-b18b-e834b2acbd47"
        );
        assert_eq!(
            SystemId::PLAYREADY.to_string(),
            "9a04f079-9840-4286-ab92-e65be0885f95"
        );
        assert_eq!(
            SystemId::FAIRPLAY.to_string(),
            "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"
        );
        assert_eq!(
            SystemId::COMMON_PSSH.to_string(),
            "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"
        );
        assert_eq!(
            SystemId::DASHIF_CLEARKEY.to_string(),
            "e2719d58-a985-b3c9-781a-b030af78d30e"
        );
        assert_eq!(
            SystemId::IRDETO.to_string(),
            "80a6be7e-1448-4c37-9e70-d5aebe04c8d2"
        );
        assert_eq!(SystemId::IRDETO.name(), Some("Irdeto"));
        assert_eq!(
            SystemId::parse_uuid("00000000-0000-0000-0000-000000000000")
                .unwrap()
                .name(),
            None
        );
    }

    #[test]
    fn content_id_rules() {
        assert!(ContentId::new("channel-1").is_ok());
        assert_eq!(ContentId::new(" "), Err(ContentIdError::Empty));
        assert_eq!(
            ContentId::new("a\nb"),
            Err(ContentIdError::ControlCharacter)
        );
        assert_eq!(
            ContentId::new(&"x".repeat(1025)),
            Err(ContentIdError::TooLong)
        );
    }
}
