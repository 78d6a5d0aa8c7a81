//! Base64 for the whole crate: a SIMD encoder (responses are mostly base64
//! of base64, so encoding speed matters) and the lenient decoder CPIX input
//! needs (line breaks ignored, padding optional, stray trailing bits
//! tolerated).

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Standard padded base64 (RFC 4648 §4).
pub fn encode(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// Standard padded base64 this crate encoded. Its alphabet (letters,
/// digits, `+`, `/` and `=`) holds nothing XML escapes, so the writer
/// copies it as it is; the only way to make one is to encode bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Base64Text(String);

impl Base64Text {
    /// Standard padded base64 of `bytes`.
    pub fn encode(bytes: &[u8]) -> Self {
        Base64Text(encode(bytes))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Appends standard padded base64 of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

/// Appends unpadded base64url (RFC 4648 §5) of `bytes` to `out`.
pub fn encode_url_into(bytes: &[u8], out: &mut String) {
    base64_simd::URL_SAFE_NO_PAD.encode_append(bytes, out);
}

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const LENIENT_URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn decode_with(engine: &GeneralPurpose, text: &str) -> Option<Vec<u8>> {
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = text.split_ascii_whitespace().collect();
        engine.decode(compact).ok()
    } else {
        engine.decode(text).ok()
    }
}

/// Decodes standard base64 as found in CPIX and PSSH text: ASCII whitespace
/// ignored, padding optional, non-zero trailing bits tolerated.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    decode_with(&LENIENT, text)
}

/// Decodes base64url (W3C ClearKey), padded or not.
pub fn decode_url(text: &str) -> Option<Vec<u8>> {
    decode_with(&LENIENT_URL, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_leniency() {
        let data: Vec<u8> = (0..=255).collect();
        let s = encode(&data);
        assert_eq!(decode(&s).unwrap(), data);
        let wrapped: String = s
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(decode(&wrapped).unwrap(), data);
        // Non-canonical trailing bits (seen in an AWS documentation example).
        assert_eq!(decode("L6jzdXrXAFbCJGBuMrrKrG==").unwrap().len(), 16);
        assert_eq!(decode("TWE").unwrap(), b"Ma");
        assert!(decode("not base64!").is_none());
        let mut url = String::new();
        encode_url_into(&[0xfb, 0xff], &mut url);
        assert_eq!(url, "-_8");
        assert_eq!(decode_url(&url).unwrap(), [0xfb, 0xff]);
        let mut s = String::from("x");
        encode_into(b"hi", &mut s);
        assert_eq!(s, "xaGk=");
    }
}
