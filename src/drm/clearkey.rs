//! W3C Common PSSH and DASH-IF ClearKey: the KID-only common box, the
//! `dashif:Laurl` fragment, the licence URL, and the W3C ClearKey JSON
//! licence request (parser) and response (writer).

use super::pssh::PsshBox;
use super::{expand_uri, xml_escape_into};
use super::{ClearKeySettings, DrmError, TemplateVars};
use crate::crypto::ContentKey;
use crate::ids::{KeyId, SystemId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::borrow::Cow;

/// Most KIDs accepted in one licence request.
pub const MAX_REQUEST_KIDS: usize = 256;
/// Deepest nesting of unknown JSON values skipped in a licence request.
const MAX_DEPTH: usize = 16;

/// The W3C Common PSSH box: v1, the KID list, no data.
pub fn common_pssh_box(key_ids: &[KeyId]) -> PsshBox {
    PsshBox::v1(SystemId::COMMON_PSSH, key_ids.to_vec(), Vec::new())
}

/// The box of a DASH-IF ClearKey DRMSystem: laid out like the common box
/// but carrying the ClearKey SystemID, because a CPIX client checks every
/// box against its DRMSystem (players initialise ClearKey from the common
/// box, which a packager writes into the init segment itself).
pub fn dashif_clearkey_pssh_box(key_ids: &[KeyId]) -> PsshBox {
    PsshBox::v1(SystemId::DASHIF_CLEARKEY, key_ids.to_vec(), Vec::new())
}

/// The standalone `<dashif:Laurl>` element carrying `license_url` (escaped).
pub fn laurl_fragment(license_url: &str) -> String {
    const OPEN: &str = r#"<dashif:Laurl xmlns:dashif="https://dashif.org/CPS">"#;
    const CLOSE: &str = "</dashif:Laurl>";
    let mut out = String::with_capacity(OPEN.len() + license_url.len() + 16 + CLOSE.len());
    out.push_str(OPEN);
    xml_escape_into(license_url, &mut out);
    out.push_str(CLOSE);
    out
}

/// Expands `clearkey.license_url_template` into an absolute http(s) URL.
pub fn license_url(
    settings: &ClearKeySettings,
    vars: &TemplateVars<'_>,
) -> Result<String, DrmError> {
    expand_uri(
        &settings.license_url_template,
        vars,
        "clearkey.license_url_template",
        &["https://", "http://"],
    )
}

/// The session type of a W3C ClearKey licence request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionType {
    /// `temporary` (the default when the request names none).
    Temporary,
    /// `persistent-license`.
    PersistentLicense,
}

impl SessionType {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionType::Temporary => "temporary",
            SessionType::PersistentLicense => "persistent-license",
        }
    }
}

/// A parsed W3C ClearKey licence request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRequest {
    /// The KIDs asked for, in order.
    pub kids: Vec<KeyId>,
    /// The session type the licence must carry.
    pub session_type: SessionType,
}

/// The W3C ClearKey licence (JWK Set, `type` temporary) for `keys`.
pub fn license_response_json(keys: &[(KeyId, &ContentKey)]) -> String {
    license_response_json_for(keys, SessionType::Temporary)
}

/// The W3C ClearKey licence (JWK Set) for `keys`, of `session_type`.
pub fn license_response_json_for(
    keys: &[(KeyId, &ContentKey)],
    session_type: SessionType,
) -> String {
    let mut out = String::with_capacity(32 + 64 * keys.len());
    out.push_str(r#"{"keys":["#);
    for (i, (kid, key)) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"kty":"oct","k":""#);
        crate::b64::encode_url_into(key.expose(), &mut out);
        out.push_str(r#"","kid":""#);
        crate::b64::encode_url_into(kid.as_bytes(), &mut out);
        out.push_str(r#""}"#);
    }
    out.push_str(r#"],"type":""#);
    out.push_str(session_type.as_str());
    out.push_str(r#""}"#);
    out
}

/// Parses a W3C ClearKey licence request
/// (`{"kids":["<base64url>",…],"type":"…"}`): a JSON object with a
/// non-empty `kids` array of unpadded base64url 16-byte KIDs; other members
/// are skipped, nothing may follow the object.
pub fn parse_license_request(json: &[u8]) -> Result<Vec<KeyId>, DrmError> {
    parse_license_request_typed(json).map(|r| r.kids)
}

/// [`parse_license_request`] with the session type (`type`: `temporary`
/// or `persistent-license`; absent means temporary; anything else is
/// refused).
pub fn parse_license_request_typed(json: &[u8]) -> Result<LicenseRequest, DrmError> {
    let mut p = Json { rest: json };
    let req = p.request()?;
    p.skip_ws();
    if !p.rest.is_empty() {
        return Err(malformed("data after the JSON object"));
    }
    Ok(req)
}

/// A `MalformedClearKey` error.
fn malformed(reason: &str) -> DrmError {
    DrmError::MalformedClearKey(reason.to_owned())
}

/// A strict scanner for the small JSON subset of a licence request.
struct Json<'a> {
    rest: &'a [u8],
}

impl<'a> Json<'a> {
    /// Skips JSON whitespace.
    fn skip_ws(&mut self) {
        let n = self
            .rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
        self.rest = self.rest.get(n..).unwrap_or_default();
    }

    /// The next non-whitespace byte, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.rest.first().copied()
    }

    /// Consumes `byte` (after whitespace) or fails with `what`.
    fn expect(&mut self, byte: u8, what: &str) -> Result<(), DrmError> {
        if self.peek() != Some(byte) {
            return Err(malformed(what));
        }
        self.rest = self.rest.get(1..).unwrap_or_default();
        Ok(())
    }

    /// Consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.rest = self.rest.get(1..).unwrap_or_default();
        }
        found
    }

    /// The top-level object: its `kids` and `type`.
    fn request(&mut self) -> Result<LicenseRequest, DrmError> {
        self.expect(b'{', "expected a JSON object")?;
        let mut kids = None;
        let mut session_type = None;
        if !self.eat(b'}') {
            loop {
                let name = self.string()?;
                self.expect(b':', "expected ':' after a member name")?;
                if name == "kids" {
                    if kids.is_some() {
                        return Err(malformed("duplicate \"kids\" member"));
                    }
                    kids = Some(self.kid_array()?);
                } else if name == "type" {
                    if session_type.is_some() {
                        return Err(malformed("duplicate \"type\" member"));
                    }
                    session_type = Some(match self.string()?.as_ref() {
                        "temporary" => SessionType::Temporary,
                        "persistent-license" => SessionType::PersistentLicense,
                        _ => {
                            return Err(malformed(
                                "\"type\" is not temporary or persistent-license",
                            ))
                        }
                    });
                } else {
                    self.skip_value(0)?;
                }
                if !self.eat(b',') {
                    break;
                }
            }
            self.expect(b'}', "expected ',' or '}' in the object")?;
        }
        let session_type = session_type.unwrap_or(SessionType::Temporary);
        match kids {
            Some(kids) if !kids.is_empty() => Ok(LicenseRequest { kids, session_type }),
            Some(_) => Err(malformed("\"kids\" is empty")),
            None => Err(malformed("no \"kids\" member")),
        }
    }

    /// The `kids` array.
    fn kid_array(&mut self) -> Result<Vec<KeyId>, DrmError> {
        self.expect(b'[', "\"kids\" is not an array")?;
        let mut kids = Vec::new();
        if self.eat(b']') {
            return Ok(kids);
        }
        loop {
            if kids.len() == MAX_REQUEST_KIDS {
                return Err(malformed("too many kids"));
            }
            let text = self.string()?;
            let bytes: [u8; 16] = URL_SAFE_NO_PAD
                .decode(text.as_bytes())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| malformed("a kid is not unpadded base64url of 16 bytes"))?;
            kids.push(KeyId::from_bytes(bytes));
            if !self.eat(b',') {
                break;
            }
        }
        self.expect(b']', "expected ',' or ']' in \"kids\"")?;
        Ok(kids)
    }

    /// A string; escapes are decoded, control characters and bad UTF-8
    /// rejected. Borrowed unless it holds escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, DrmError> {
        self.expect(b'"', "expected a string")?;
        let mut owned: Option<String> = None;
        loop {
            // ASCII stops never split a UTF-8 sequence.
            let end = self
                .rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or_else(|| malformed("unterminated string"))?;
            let (plain, tail) = self.rest.split_at(end);
            let plain = std::str::from_utf8(plain).map_err(|_| malformed("string is not UTF-8"))?;
            let Some((&stop, tail)) = tail.split_first() else {
                return Err(malformed("unterminated string"));
            };
            self.rest = tail;
            match (stop, owned.take()) {
                (b'"', None) => return Ok(Cow::Borrowed(plain)),
                (b'"', Some(mut s)) => {
                    s.push_str(plain);
                    return Ok(Cow::Owned(s));
                }
                (b'\\', prev) => {
                    let mut s = prev.unwrap_or_default();
                    s.push_str(plain);
                    s.push(self.escape()?);
                    owned = Some(s);
                }
                _ => return Err(malformed("control character in a string")),
            }
        }
    }

    /// One escape sequence after `\`.
    fn escape(&mut self) -> Result<char, DrmError> {
        let (&b, tail) = self
            .rest
            .split_first()
            .ok_or_else(|| malformed("unterminated escape"))?;
        self.rest = tail;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return Err(malformed("invalid escape")),
        })
    }

    /// A `\uXXXX` escape (after `\u`), including a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, DrmError> {
        let first = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&first) {
            if !self.rest.starts_with(b"\\u") {
                return Err(malformed("unpaired surrogate"));
            }
            self.rest = self.rest.get(2..).unwrap_or_default();
            let second = self.hex4()?;
            if !(0xdc00..0xe000).contains(&second) {
                return Err(malformed("unpaired surrogate"));
            }
            0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| malformed("unpaired surrogate"))
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Result<u32, DrmError> {
        let digits = self
            .rest
            .get(..4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| malformed("invalid \\u escape"))?;
        self.rest = self.rest.get(4..).unwrap_or_default();
        Ok(digits)
    }

    /// Skips any JSON value (members other than `kids`).
    fn skip_value(&mut self, depth: usize) -> Result<(), DrmError> {
        if depth > MAX_DEPTH {
            return Err(malformed("nesting too deep"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(open @ (b'{' | b'[')) => self.skip_container(open, depth),
            Some(_) => self.skip_scalar(),
            None => Err(malformed("expected a value")),
        }
    }

    /// Skips an object or array.
    fn skip_container(&mut self, open: u8, depth: usize) -> Result<(), DrmError> {
        let close = if open == b'{' { b'}' } else { b']' };
        self.expect(open, "expected a value")?;
        if self.eat(close) {
            return Ok(());
        }
        loop {
            if open == b'{' {
                self.string()?;
                self.expect(b':', "expected ':' after a member name")?;
            }
            self.skip_value(depth + 1)?;
            if !self.eat(b',') {
                break;
            }
        }
        self.expect(close, "unterminated object or array")
    }

    /// Skips a number, `true`, `false` or `null`.
    fn skip_scalar(&mut self) -> Result<(), DrmError> {
        let n = self
            .rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
            .count();
        let token = self.rest.get(..n).unwrap_or_default();
        if !matches!(token, b"true" | b"false" | b"null") && !is_json_number(token) {
            return Err(malformed("invalid value"));
        }
        self.rest = self.rest.get(n..).unwrap_or_default();
        Ok(())
    }
}

/// True for an RFC 8259 number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(token: &[u8]) -> bool {
    fn digits(s: &[u8]) -> (usize, &[u8]) {
        let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
        (n, s.get(n..).unwrap_or_default())
    }
    let int = token.strip_prefix(b"-").unwrap_or(token);
    let (n, mut s) = digits(int);
    if n == 0 || (n > 1 && int.first() == Some(&b'0')) {
        return false;
    }
    if let Some(frac) = s.strip_prefix(b".") {
        let (n, rest) = digits(frac);
        if n == 0 {
            return false;
        }
        s = rest;
    }
    if let Some(exp) = s.strip_prefix(b"e").or_else(|| s.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        let (n, rest) = digits(exp);
        if n == 0 {
            return false;
        }
        s = rest;
    }
    s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drm::test_util::{b64, content_key, hex, kid};

    #[test]
    fn common_boxes_cm1_to_cm4() {
        // CM-1 (W3C example, raw ASCII KIDs)
        let cm1 = common_pssh_box(&[
            KeyId::from_bytes(*b"0123456789012345"),
            KeyId::from_bytes(*b"ABCDEFGHIJKLMNOP"),
        ]);
        assert_eq!(
            cm1.to_bytes(),
            hex("0000004470737368010000001077efecc0b24d02ace33c1e52e2fb4b00000002303132333435363738393031323334354142434445464748494a4b4c4d4e4f5000000000")
        );
        assert_eq!(
            cm1.to_base64(),
            "AAAARHBzc2gBAAAAEHfv7MCyTQKs4zweUuL7SwAAAAIwMTIzNDU2Nzg5MDEyMzQ1QUJDREVGR0hJSktMTU5PUAAAAAA="
        );
        // CM-2 (Shaka, KID1 + KID2)
        let cm2 = common_pssh_box(&[
            kid("6b657969-6431-7e7e-7e7e-7e7e7e7e7e7e"),
            kid("6b657969-6432-7e7e-7e7e-7e7e7e7e7e7e"),
        ]);
        assert_eq!(
            cm2.to_bytes(),
            hex("0000004470737368010000001077efecc0b24d02ace33c1e52e2fb4b000000026b65796964317e7e7e7e7e7e7e7e7e7e6b65796964327e7e7e7e7e7e7e7e7e7e00000000")
        );
        // CM-3 (Shaka, one KID)
        assert_eq!(
            common_pssh_box(&[kid("31323334-3536-3738-3930-313233343536")]).to_bytes(),
            hex("0000003470737368010000001077efecc0b24d02ace33c1e52e2fb4b000000013132333435363738393031323334353600000000")
        );
        // CM-4 (0f083e4e-…)
        assert_eq!(
            common_pssh_box(&[kid("0f083e4e-b831-4a3d-917e-ce78076e54aa")]).to_bytes(),
            b64("AAAANHBzc2gBAAAAEHfv7MCyTQKs4zweUuL7SwAAAAEPCD5OuDFKPZF+zngHblSqAAAAAA==")
        );
    }

    #[test]
    fn laurl_is_standalone_and_escaped() {
        assert_eq!(
            laurl_fragment("https://lic.example/ck?a=1&b=2"),
            r#"<dashif:Laurl xmlns:dashif="https://dashif.org/CPS">https://lic.example/ck?a=1&amp;b=2</dashif:Laurl>"#
        );
    }

    #[test]
    fn license_url_from_template() {
        let vars = TemplateVars {
            kid: kid("0f083e4e-b831-4a3d-917e-ce78076e54aa"),
            content_id: "movie 1",
            iv: None,
        };
        assert_eq!(
            license_url(&ClearKeySettings::default(), &vars).unwrap(),
            "https://cpixd.invalid/license/v1/clearkey"
        );
        let s = ClearKeySettings {
            license_url_template: "https://ck/{content_id}?kid={kid_hex}".to_owned(),
        };
        assert_eq!(
            license_url(&s, &vars).unwrap(),
            "https://ck/movie%201?kid=0f083e4eb8314a3d917ece78076e54aa"
        );
        let bad = ClearKeySettings {
            license_url_template: "ftp://ck".to_owned(),
        };
        assert!(matches!(
            license_url(&bad, &vars),
            Err(DrmError::InvalidSetting {
                setting: "clearkey.license_url_template",
                ..
            })
        ));
    }

    #[test]
    fn ck1_license_response() {
        // CK-1 (W3C EME Clear Key license example)
        let key = content_key("b50d1b25559be9bd0a3cbe8ab59232fc");
        let k = KeyId::from_bytes(hex("2f05477fc24bb4faefd86517156daffc").try_into().unwrap());
        assert_eq!(
            license_response_json(&[(k, &key)]),
            r#"{"keys":[{"kty":"oct","k":"tQ0bJVWb6b0KPL6KtZIy_A","kid":"LwVHf8JLtPrv2GUXFW2v_A"}],"type":"temporary"}"#
        );
        // Two keys, CK-2's kid second.
        let k2 = kid("9eb4050d-e44b-4802-932e-27d75083e266");
        let json = license_response_json(&[(k, &key), (k2, &key)]);
        assert!(json.ends_with(r#"},{"kty":"oct","k":"tQ0bJVWb6b0KPL6KtZIy_A","kid":"nrQFDeRLSAKTLifXUIPiZg"}],"type":"temporary"}"#), "{json}");
        assert_eq!(
            license_response_json(&[]),
            r#"{"keys":[],"type":"temporary"}"#
        );
    }

    #[test]
    fn session_types() {
        let req = br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"],"type":"persistent-license"}"#;
        let r = parse_license_request_typed(req).unwrap();
        assert_eq!(r.session_type, SessionType::PersistentLicense);
        let r = parse_license_request_typed(br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"]}"#).unwrap();
        assert_eq!(r.session_type, SessionType::Temporary);
        assert!(
            parse_license_request_typed(br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"],"type":"x"}"#)
                .is_err()
        );
        assert!(
            license_response_json_for(&[], SessionType::PersistentLicense)
                .ends_with(r#""type":"persistent-license"}"#)
        );
    }

    #[test]
    fn ck1_license_request() {
        // CK-1 (W3C EME Clear Key license request example)
        let req =
            br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A","0DdtU9od-Bh5L3xbv0Xf_A"],"type":"temporary"}"#;
        let expected = [
            KeyId::from_bytes(hex("2f05477fc24bb4faefd86517156daffc").try_into().unwrap()),
            KeyId::from_bytes(hex("d0376d53da1df818792f7c5bbf45dffc").try_into().unwrap()),
        ];
        assert_eq!(parse_license_request(req).unwrap(), expected);
        // Whitespace, member order, escapes and unknown members are fine.
        let req = b" {\n \"type\" : \"temporary\", \"x\": {\"a\": [1, -2.5e3, true, null, \"\\u00e9\"]},\n \"k\\u0069ds\" : [ \"LwVHf8JLtPrv2GUXFW2v\\u005fA\" , \"0DdtU9od-Bh5L3xbv0Xf_A\" ] } \r\n";
        assert_eq!(parse_license_request(req).unwrap(), expected);
    }

    #[test]
    fn license_request_rejects_bad_input() {
        for (req, needle) in [
            (&br#""#[..], "expected a JSON object"),
            (br#"[]"#, "expected a JSON object"),
            (br#"{"type":"temporary"}"#, "no \"kids\""),
            (br#"{"kids":[]}"#, "empty"),
            (br#"{"kids":"LwVHf8JLtPrv2GUXFW2v_A"}"#, "not an array"),
            (br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A=="]}"#, "base64url"),
            (br#"{"kids":["LwVHf8JLtPrv2GUXFW2v/A"]}"#, "base64url"),
            (br#"{"kids":["LwVHf8JLtPrv2GUXFW2v"]}"#, "base64url"),
            (br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"]} x"#, "data after"),
            (
                br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"],"kids":["LwVHf8JLtPrv2GUXFW2v_A"]}"#,
                "duplicate",
            ),
            (
                br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A""#,
                "expected ',' or ']'",
            ),
            (
                br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"]"#,
                "expected ',' or '}'",
            ),
            (br#"{"kids":["LwVHf8JL"#, "unterminated string"),
            (
                br#"{"a":tru,"kids":["LwVHf8JLtPrv2GUXFW2v_A"]}"#,
                "invalid value",
            ),
            (br#"{"a":"\x","kids":[]}"#, "invalid escape"),
            (br#"{"a":"\ud800","kids":[]}"#, "unpaired surrogate"),
            (b"{\"a\":\"\xff\",\"kids\":[]}", "UTF-8"),
            (b"{\"a\":\"\\n\xc3\",\"kids\":[]}", "UTF-8"),
            (b"{\"a\":\"\x01\"}", "control"),
            (br#"{"a":01,"kids":[]}"#, "invalid value"),
            (br#"{"a":1.,"kids":[]}"#, "invalid value"),
            (br#"{"a":1e,"kids":[]}"#, "invalid value"),
            (br#"{"a":-,"kids":[]}"#, "invalid value"),
        ] {
            match parse_license_request(req) {
                Err(DrmError::MalformedClearKey(m)) => {
                    assert!(m.contains(needle), "{}: {m}", String::from_utf8_lossy(req))
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(req)),
            }
        }
        let deep = format!(
            "{{\"a\":{}1{},\"kids\":[]}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(parse_license_request(deep.as_bytes()).is_err());
        let many = format!(
            "{{\"kids\":[{}]}}",
            vec!["\"LwVHf8JLtPrv2GUXFW2v_A\""; 257].join(",")
        );
        assert!(parse_license_request(many.as_bytes()).is_err());
    }
}
