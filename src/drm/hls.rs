//! HLS key signalling: `#EXT-X-KEY` (media playlist) and
//! `#EXT-X-SESSION-KEY` (master playlist) lines for Widevine, PlayReady,
//! FairPlay and AES-128, the AES-128 key URL, and an attribute-list parser.

use super::{expand_uri, DrmError, HlsAes128Settings, Scheme, TemplateVars};
use crate::b64::Base64Text;
use crate::ids::{push_hex, KeyId};

/// `KEYFORMAT` of Widevine.
pub const WIDEVINE_KEYFORMAT: &str = "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
/// `KEYFORMAT` of PlayReady.
pub const PLAYREADY_KEYFORMAT: &str = "com.microsoft.playready";
/// `KEYFORMAT` of a plain AES-128 key served over HTTPS.
pub const IDENTITY_KEYFORMAT: &str = "identity";
/// Tag of a media playlist key line, colon included.
pub const MEDIA_TAG: &str = "#EXT-X-KEY:";
/// Tag of a master playlist key line, colon included.
pub const SESSION_TAG: &str = "#EXT-X-SESSION-KEY:";

/// The `METHOD` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HlsMethod {
    /// `AES-128`: whole-segment AES-128-CBC.
    Aes128,
    /// `SAMPLE-AES`: cbcs (fMP4) or Apple sample encryption (TS).
    SampleAes,
    /// `SAMPLE-AES-CTR`: cenc (fMP4).
    SampleAesCtr,
}

impl HlsMethod {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            HlsMethod::Aes128 => "AES-128",
            HlsMethod::SampleAes => "SAMPLE-AES",
            HlsMethod::SampleAesCtr => "SAMPLE-AES-CTR",
        }
    }

    /// The sample-encryption method of a CENC scheme: CTR for cenc/cens,
    /// otherwise (cbcs, cbc1, or no scheme given) `SAMPLE-AES`.
    pub fn for_scheme(scheme: Option<Scheme>) -> HlsMethod {
        match scheme {
            Some(Scheme::Cenc | Scheme::Cens) => HlsMethod::SampleAesCtr,
            _ => HlsMethod::SampleAes,
        }
    }
}

/// The attributes of one key line. Never writes a `SCHEME` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsKeyTag {
    /// `METHOD`.
    pub method: HlsMethod,
    /// `URI` (written quoted; must not hold `"`, CR or LF).
    pub uri: String,
    /// `KEYID=0x…` (Widevine).
    pub key_id: Option<KeyId>,
    /// `IV=0x…`.
    pub iv: Option<[u8; 16]>,
    /// `KEYFORMAT`.
    pub keyformat: &'static str,
    /// `KEYFORMATVERSIONS`.
    pub keyformatversions: &'static str,
}

impl HlsKeyTag {
    /// Widevine: the whole `pssh` box (its base64, as the CPIX `PSSH`
    /// carries it) as a data URI, plus `KEYID`.
    pub fn widevine(pssh_box_base64: &Base64Text, kid: KeyId, scheme: Option<Scheme>) -> Self {
        HlsKeyTag {
            method: HlsMethod::for_scheme(scheme),
            uri: data_uri("data:text/plain;base64,", pssh_box_base64),
            key_id: Some(kid),
            iv: None,
            keyformat: WIDEVINE_KEYFORMAT,
            keyformatversions: "1",
        }
    }

    /// PlayReady: the PlayReady Object (not a box; its base64) as a UTF-16
    /// data URI; written in Microsoft's attribute order with `URI` last.
    pub fn playready(pro_base64: &Base64Text, scheme: Option<Scheme>) -> Self {
        HlsKeyTag {
            method: HlsMethod::for_scheme(scheme),
            uri: data_uri("data:text/plain;charset=UTF-16;base64,", pro_base64),
            key_id: None,
            iv: None,
            keyformat: PLAYREADY_KEYFORMAT,
            keyformatversions: "1",
        }
    }

    /// FairPlay: `METHOD=SAMPLE-AES` with an `skd://` URI and no IV.
    pub fn fairplay(uri: impl Into<String>) -> Self {
        HlsKeyTag {
            method: HlsMethod::SampleAes,
            uri: uri.into(),
            key_id: None,
            iv: None,
            keyformat: super::fairplay::KEYFORMAT,
            keyformatversions: "1",
        }
    }

    /// AES-128: the key URL, an optional explicit IV, KEYFORMAT `identity`.
    pub fn aes128(uri: impl Into<String>, iv: Option<[u8; 16]>) -> Self {
        HlsKeyTag {
            method: HlsMethod::Aes128,
            uri: uri.into(),
            key_id: None,
            iv,
            keyformat: IDENTITY_KEYFORMAT,
            keyformatversions: "1",
        }
    }

    /// The `#EXT-X-KEY:` line (no line break).
    pub fn media_line(&self) -> String {
        self.line(MEDIA_TAG)
    }

    /// The `#EXT-X-SESSION-KEY:` line with the same attributes.
    pub fn session_line(&self) -> String {
        self.line(SESSION_TAG)
    }

    fn line(&self, tag: &str) -> String {
        let mut out = String::new();
        self.push_line(tag, &mut out);
        out
    }

    /// Appends `tag` ([`MEDIA_TAG`] or [`SESSION_TAG`]) and the attributes:
    /// METHOD, URI, KEYID, IV, KEYFORMAT, KEYFORMATVERSIONS (URI last for
    /// PlayReady); no line break.
    pub fn push_line(&self, tag: &str, out: &mut String) {
        out.reserve(tag.len() + self.uri.len() + self.keyformat.len() + 160);
        out.push_str(tag);
        out.push_str("METHOD=");
        out.push_str(self.method.as_str());
        let uri_last = self.keyformat == PLAYREADY_KEYFORMAT;
        if !uri_last {
            self.push_uri(out);
        }
        if let Some(kid) = &self.key_id {
            out.push_str(",KEYID=0x");
            push_hex(kid.as_bytes(), out);
        }
        if let Some(iv) = &self.iv {
            out.push_str(",IV=0x");
            push_hex(iv, out);
        }
        out.push_str(",KEYFORMAT=\"");
        out.push_str(self.keyformat);
        out.push_str("\",KEYFORMATVERSIONS=\"");
        out.push_str(self.keyformatversions);
        out.push('"');
        if uri_last {
            self.push_uri(out);
        }
    }

    /// Appends `,URI="…"`.
    fn push_uri(&self, out: &mut String) {
        out.push_str(",URI=\"");
        out.push_str(&self.uri);
        out.push('"');
    }
}

/// `prefix` followed by `base64`.
fn data_uri(prefix: &str, base64: &Base64Text) -> String {
    let mut uri = String::with_capacity(prefix.len() + base64.as_str().len());
    uri.push_str(prefix);
    uri.push_str(base64.as_str());
    uri
}

/// Expands `hls_aes128.key_uri_template` into an absolute http(s) URL.
pub fn aes128_key_uri(
    settings: &HlsAes128Settings,
    vars: &TemplateVars<'_>,
) -> Result<String, DrmError> {
    expand_uri(
        &settings.key_uri_template,
        vars,
        "hls_aes128.key_uri_template",
        &["https://", "http://"],
    )
}

/// Parses an `#EXT-X-KEY:` or `#EXT-X-SESSION-KEY:` line into (is session
/// key, attributes in order). Quoted values are returned without quotes and
/// may contain commas; names must be `[A-Z0-9-]+` and unique.
pub fn parse_tag(line: &str) -> Result<(bool, Vec<(String, String)>), DrmError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (session, mut rest) = if let Some(r) = line.strip_prefix(MEDIA_TAG) {
        (false, r)
    } else if let Some(r) = line.strip_prefix(SESSION_TAG) {
        (true, r)
    } else {
        return Err(malformed("not an #EXT-X-KEY or #EXT-X-SESSION-KEY line"));
    };
    let mut attrs: Vec<(String, String)> = Vec::new();
    loop {
        let (name, value, tail) = parse_attribute(rest)?;
        if attrs.iter().any(|(n, _)| n == name) {
            return Err(malformed(&format!("attribute {name} appears twice")));
        }
        attrs.push((name.to_owned(), value.to_owned()));
        match tail.strip_prefix(',') {
            Some(next) => rest = next,
            None if tail.is_empty() => return Ok((session, attrs)),
            None => return Err(malformed(&format!("unexpected text after {name}"))),
        }
    }
}

/// One `NAME=value` at the start of `s`: returns name, value and the rest.
fn parse_attribute(s: &str) -> Result<(&str, &str, &str), DrmError> {
    let (name, after) = s
        .split_once('=')
        .ok_or_else(|| malformed("attribute without '='"))?;
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(malformed(&format!("invalid attribute name {name:?}")));
    }
    let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or_else(|| malformed(&format!("unterminated quoted value of {name}")))?;
        let (value, tail) = quoted.split_at(end);
        (value, tail.get(1..).unwrap_or_default())
    } else {
        let end = after.find(',').unwrap_or(after.len());
        let (value, tail) = after.split_at(end);
        if value.is_empty() || value.contains(|c: char| c == '"' || c.is_whitespace()) {
            return Err(malformed(&format!("invalid unquoted value of {name}")));
        }
        (value, tail)
    };
    if value.contains(['\r', '\n']) {
        return Err(malformed(&format!("line break in the value of {name}")));
    }
    Ok((name, value, tail))
}

/// A `MalformedHls` error.
fn malformed(reason: &str) -> DrmError {
    DrmError::MalformedHls(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drm::test_util::{b64, kid};

    /// Attributes of a line, sorted, for order-independent comparison.
    fn attr_set(line: &str) -> Vec<(String, String)> {
        let mut attrs = parse_tag(line).unwrap().1;
        attrs.sort();
        attrs
    }

    const WV3_B64: &str =
        "AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSEDEyMzQ1Njc4OTAxMjM0NTZI49yVmwY=";

    #[test]
    fn wv5_widevine_line() {
        // WV-5 (Unified Streaming): same attributes, our order puts URI before KEYID.
        let box_b64 =
            "AAAAPXBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAB0aDXdpZGV2aW5lX3Rlc3QiDHRlc3QgY29udGVudA==";
        let vector = r#"#EXT-X-KEY:METHOD=SAMPLE-AES,KEYID=0x10000000100010001000100000000001,URI="data:text/plain;base64,AAAAPXBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAAB0aDXdpZGV2aW5lX3Rlc3QiDHRlc3QgY29udGVudA==",KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",KEYFORMATVERSIONS="1""#;
        let signalling = b64("
I0VYVC1YLUtFWTpNRVRIT0Q9U0FNUExFLUFFUyxLRVlJRD0weDEwMDAwMDAwMTAwMDEwMDAxMDAw
MTAwMDAwMDAwMDAxLFVSST0iZGF0YTp0ZXh0L3BsYWluO2Jhc2U2NCxBQUFBUFhCemMyZ0FBQUFB
N2UrTHFYbldTczZqeUNmYzFSMGg3UUFBQUIwYURYZHBaR1YyYVc1bFgzUmxjM1FpREhSbGMzUWdZ
Mjl1ZEdWdWRBPT0iLEtFWUZPUk1BVD0idXJuOnV1aWQ6ZWRlZjhiYTktNzlkNi00YWNlLWEzYzgt
MjdkY2Q1MWQyMWVkIixLRVlGT1JNQVRWRVJTSU9OUz0iMSI=");
        assert_eq!(String::from_utf8(signalling).unwrap(), vector);

        let tag = HlsKeyTag::widevine(
            &Base64Text::encode(&b64(box_b64)),
            kid("10000000-1000-1000-1000-100000000001"),
            None,
        );
        let line = tag.media_line();
        assert_eq!(
            line,
            format!(
                r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;base64,{box_b64}",KEYID=0x10000000100010001000100000000001,KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",KEYFORMATVERSIONS="1""#
            )
        );
        assert_eq!(attr_set(&line), attr_set(vector));
        assert_eq!(tag.session_line(), line.replacen(MEDIA_TAG, SESSION_TAG, 1));
        // push_line appends to what the buffer holds.
        let mut appended = String::from("#EXTM3U\n");
        tag.push_line(MEDIA_TAG, &mut appended);
        assert_eq!(appended, format!("#EXTM3U\n{line}"));
    }

    #[test]
    fn fp2_widevine_cenc_line() {
        // FP-2 (Shaka multi-DRM, cenc): Widevine line attributes.
        let vector = r#"#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;base64,AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSEDEyMzQ1Njc4OTAxMjM0NTZI49yVmwY=",KEYID=0x31323334353637383930313233343536,KEYFORMATVERSIONS="1",KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed""#;
        let kida = kid("31323334-3536-3738-3930-313233343536");
        for scheme in [Scheme::Cenc, Scheme::Cens] {
            let tag = HlsKeyTag::widevine(&Base64Text::encode(&b64(WV3_B64)), kida, Some(scheme));
            assert_eq!(attr_set(&tag.media_line()), attr_set(vector));
        }
        for scheme in [None, Some(Scheme::Cbcs), Some(Scheme::Cbc1)] {
            let tag = HlsKeyTag::widevine(&Base64Text::encode(&b64(WV3_B64)), kida, scheme);
            assert!(tag
                .media_line()
                .starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES,URI="));
        }
    }

    #[test]
    fn fp1_fairplay_line() {
        // FP-1 (Shaka TS FairPlay) and its computed HLSSignalingData values.
        let uri = "skd://www.license.com/getkey?KeyId=31323334-3536-3738-3930-313233343536";
        let vector = r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://www.license.com/getkey?KeyId=31323334-3536-3738-3930-313233343536",KEYFORMATVERSIONS="1",KEYFORMAT="com.apple.streamingkeydelivery""#;
        let media = String::from_utf8(b64("I0VYVC1YLUtFWTpNRVRIT0Q9U0FNUExFLUFFUyxVUkk9InNrZDovL3d3dy5saWNlbnNlLmNvbS9nZXRrZXk/S2V5SWQ9MzEzMjMzMzQtMzUzNi0zNzM4LTM5MzAtMzEzMjMzMzQzNTM2IixLRVlGT1JNQVRWRVJTSU9OUz0iMSIsS0VZRk9STUFUPSJjb20uYXBwbGUuc3RyZWFtaW5na2V5ZGVsaXZlcnki")).unwrap();
        let master = String::from_utf8(b64("I0VYVC1YLVNFU1NJT04tS0VZOk1FVEhPRD1TQU1QTEUtQUVTLFVSST0ic2tkOi8vd3d3LmxpY2Vuc2UuY29tL2dldGtleT9LZXlJZD0zMTMyMzMzNC0zNTM2LTM3MzgtMzkzMC0zMTMyMzMzNDM1MzYiLEtFWUZPUk1BVFZFUlNJT05TPSIxIixLRVlGT1JNQVQ9ImNvbS5hcHBsZS5zdHJlYW1pbmdrZXlkZWxpdmVyeSI=")).unwrap();
        assert_eq!(media, vector);

        let tag = HlsKeyTag::fairplay(uri);
        assert_eq!(
            tag.media_line(),
            format!(
                r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{uri}",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1""#
            )
        );
        assert_eq!(attr_set(&tag.media_line()), attr_set(&media));
        let (session, _) = parse_tag(&tag.session_line()).unwrap();
        assert!(session);
        assert_eq!(attr_set(&tag.session_line()), attr_set(&master));
    }

    use super::super::vectors::PR3_PRO;

    #[test]
    fn pr3_and_pr8_playready_lines() {
        // PR-3 (Shaka v3.8.0, cenc) and the PR-8 tag shape (Microsoft, SAMPLE-AES).
        let pro_b64: String = PR3_PRO.split_whitespace().collect();
        let pro = b64(&pro_b64);
        let tag = HlsKeyTag::playready(&Base64Text::encode(&pro), Some(Scheme::Cenc));
        assert_eq!(
            tag.media_line(),
            format!(
                r#"#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,KEYFORMAT="com.microsoft.playready",KEYFORMATVERSIONS="1",URI="data:text/plain;charset=UTF-16;base64,{pro_b64}""#
            )
        );
        let tag = HlsKeyTag::playready(&Base64Text::encode(&pro), Some(Scheme::Cbcs));
        assert_eq!(
            tag.session_line(),
            format!(
                r#"#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,KEYFORMAT="com.microsoft.playready",KEYFORMATVERSIONS="1",URI="data:text/plain;charset=UTF-16;base64,{pro_b64}""#
            )
        );
    }

    #[test]
    fn aes128_lines() {
        let iv = [0xab; 16];
        assert_eq!(
            HlsKeyTag::aes128("https://k/1", Some(iv)).media_line(),
            r#"#EXT-X-KEY:METHOD=AES-128,URI="https://k/1",IV=0xabababababababababababababababab,KEYFORMAT="identity",KEYFORMATVERSIONS="1""#
        );
        assert_eq!(
            HlsKeyTag::aes128("https://k/1", None).session_line(),
            r#"#EXT-X-SESSION-KEY:METHOD=AES-128,URI="https://k/1",KEYFORMAT="identity",KEYFORMATVERSIONS="1""#
        );
        let vars = TemplateVars {
            kid: kid("31323334-3536-3738-3930-313233343536"),
            content_id: "a/b",
            iv: None,
        };
        assert_eq!(
            aes128_key_uri(&HlsAes128Settings::default(), &vars).unwrap(),
            "https://cpixd.invalid/hls/v1/key/a%2Fb/31323334-3536-3738-3930-313233343536"
        );
        let skd = HlsAes128Settings {
            key_uri_template: "skd://{kid}".to_owned(),
        };
        assert!(aes128_key_uri(&skd, &vars).is_err());
    }

    #[test]
    fn no_line_has_a_scheme_attribute() {
        let kida = kid("31323334-3536-3738-3930-313233343536");
        for tag in [
            HlsKeyTag::widevine(&Base64Text::encode(&b64(WV3_B64)), kida, Some(Scheme::Cbcs)),
            HlsKeyTag::playready(&Base64Text::encode(&[6, 0, 0, 0, 0, 0]), None),
            HlsKeyTag::fairplay("skd://x"),
            HlsKeyTag::aes128("https://x", Some([0; 16])),
        ] {
            for line in [tag.media_line(), tag.session_line()] {
                assert!(parse_tag(&line)
                    .unwrap()
                    .1
                    .iter()
                    .all(|(n, _)| n != "SCHEME"));
            }
        }
    }

    #[test]
    fn parse_tag_handles_quotes_and_line_ends() {
        let (session, attrs) =
            parse_tag("#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"https://k/a,b?c=d\",IV=0x00\r\n")
                .unwrap();
        assert!(session);
        assert_eq!(
            attrs,
            [
                ("METHOD".to_owned(), "AES-128".to_owned()),
                ("URI".to_owned(), "https://k/a,b?c=d".to_owned()),
                ("IV".to_owned(), "0x00".to_owned()),
            ]
        );
        assert_eq!(parse_tag("#EXT-X-KEY:URI=\"\"").unwrap().1[0].1, "");
    }

    #[test]
    fn parse_tag_rejects_malformed_lines() {
        for (line, needle) in [
            ("#EXT-X-MAP:URI=\"x\"", "not an #EXT-X-KEY"),
            ("#EXT-X-KEY:", "without '='"),
            ("#EXT-X-KEY:METHOD", "without '='"),
            ("#EXT-X-KEY:method=AES-128", "invalid attribute name"),
            ("#EXT-X-KEY:METHOD=AES-128,", "without '='"),
            ("#EXT-X-KEY:URI=\"abc", "unterminated"),
            ("#EXT-X-KEY:URI=\"a\"b", "unexpected text after URI"),
            ("#EXT-X-KEY:METHOD=", "invalid unquoted value"),
            ("#EXT-X-KEY:METHOD=A B", "invalid unquoted value"),
            ("#EXT-X-KEY:METHOD=NONE,METHOD=AES-128", "appears twice"),
            ("#EXT-X-KEY:URI=\"a\nb\"", "line break"),
        ] {
            match parse_tag(line) {
                Err(DrmError::MalformedHls(m)) => assert!(m.contains(needle), "{line}: {m}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
