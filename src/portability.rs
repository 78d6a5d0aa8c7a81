//! Keys in and out of cpixd: the export formats (a CPIX 2.3 document with
//! the keys encrypted to a recipient certificate or in the clear, a W3C
//! ClearKey JWK set, mp4decrypt and ffmpeg arguments, Shaka Packager
//! raw-key flags) and the import of a CPIX document under the store's
//! binding rules, reporting per KID what happened.

use crate::cpix::{write, WriteOptions};
use crate::crypto::x509::{parse_certificate, PrivateKey};
use crate::crypto::{ContentKey, SecureRandom};
use crate::delivery::{decrypt_document, encrypt_document, MacLayout};
use crate::drm::clearkey::common_pssh_box;
use crate::ids::KeyId;
use crate::keys::{
    encode_record, now_ms, KeyMeta, KeyStore, Keyring, RawOutcome, RawRecord, RawWrite, RecordId,
    StoreError, StoredKey,
};
use std::sync::Arc;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CPIX 2.3, keys encrypted to a recipient certificate.
    Cpix,
    /// CPIX 2.3 with `PlainValue` keys.
    CpixClear,
    /// A W3C ClearKey JWK set (`{"keys":[{"kty":"oct","kid","k"}],"type":"temporary"}`).
    ClearKeyJwk,
    /// Bento4 `mp4decrypt` arguments: `--key KID:KEY` per key.
    Mp4decrypt,
    /// ffmpeg's `-decryption_key KEY` (one key).
    Ffmpeg,
    /// Shaka Packager raw-key flags.
    Shaka,
}

impl Format {
    /// Every format, with its name on the command line.
    pub const ALL: [(&'static str, Format); 6] = [
        ("cpix", Format::Cpix),
        ("cpix-clear", Format::CpixClear),
        ("clearkey-jwk", Format::ClearKeyJwk),
        ("mp4decrypt", Format::Mp4decrypt),
        ("ffmpeg", Format::Ffmpeg),
        ("shaka", Format::Shaka),
    ];

    /// The format called `name`.
    pub fn parse(name: &str) -> Option<Format> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// Whether the output holds keys in the clear.
    pub fn reveals_keys(self) -> bool {
        self != Format::Cpix
    }
}

/// Why an export or import cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The input is refused (bad document, certificate, selection).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    crate::ids::push_hex(bytes, &mut s);
    s
}

/// Base64url without padding (JWK).
fn b64url(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    crate::b64::encode_url_into(bytes, &mut s);
    s
}

/// A CPIX 2.3 document of `keys` (all of one content id): plain values,
/// with a `DeliveryData` for `recipient_der` when given (not yet encrypted).
fn cpix_text(keys: &[StoredKey], recipient_der: Option<&[u8]>) -> String {
    let content_id = keys.first().map_or("", |k| k.meta.content_id.as_str());
    let mut x = String::with_capacity(1024 + keys.len() * 300);
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    x.push_str(r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:enc="http://www.w3.org/2001/04/xmlenc#" version="2.3" contentId=""#);
    crate::drm::xml_escape_into(content_id, &mut x);
    x.push_str("\">");
    if let Some(der) = recipient_der {
        x.push_str("<cpix:DeliveryDataList><cpix:DeliveryData><cpix:DeliveryKey><ds:X509Data><ds:X509Certificate>");
        x.push_str(&crate::b64::encode(der));
        x.push_str("</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData></cpix:DeliveryDataList>");
    }
    x.push_str("<cpix:ContentKeyList>");
    for k in keys {
        x.push_str("<cpix:ContentKey kid=\"");
        x.push_str(&k.meta.kid.to_string());
        x.push('"');
        if let Some(s) = &k.meta.scheme {
            x.push_str(" commonEncryptionScheme=\"");
            crate::drm::xml_escape_into(s, &mut x);
            x.push('"');
        }
        if let Some(iv) = &k.iv {
            x.push_str(" explicitIV=\"");
            x.push_str(&crate::b64::encode(iv));
            x.push('"');
        }
        x.push_str("><cpix:Data><pskc:Secret><pskc:PlainValue>");
        x.push_str(&crate::b64::encode(k.key.expose()));
        x.push_str("</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>");
    }
    x.push_str("</cpix:ContentKeyList></cpix:CPIX>");
    x
}

/// Writes `keys` in `format`. `recipient_pem` (a PEM or DER certificate)
/// is required by [`Format::Cpix`] and refused by the others.
pub fn export(
    keys: &[StoredKey],
    format: Format,
    recipient: Option<&[u8]>,
    rng: &dyn SecureRandom,
) -> Result<String, PortError> {
    let invalid = |m: &str| PortError::Invalid(m.to_owned());
    if keys.is_empty() {
        return Err(invalid("no keys selected"));
    }
    if recipient.is_some() != (format == Format::Cpix) {
        return Err(invalid(if format == Format::Cpix {
            "--format cpix needs --recipient CERT.pem"
        } else {
            "--recipient is only for --format cpix"
        }));
    }
    match format {
        Format::Cpix | Format::CpixClear => {
            let content_ids: std::collections::BTreeSet<&str> =
                keys.iter().map(|k| k.meta.content_id.as_str()).collect();
            if content_ids.len() > 1 {
                return Err(invalid(
                    "the keys belong to several content ids; a CPIX document carries one: select one with --content-id",
                ));
            }
            // x509 reads PEM, DER or base64 alike.
            let cert = match recipient {
                Some(r) => {
                    Some(Arc::new(parse_certificate(r).map_err(|e| {
                        PortError::Invalid(format!("--recipient: {e}"))
                    })?))
                }
                None => None,
            };
            let text = cpix_text(keys, cert.as_ref().map(|c| &c.der[..]));
            let Some(cert) = cert else {
                return Ok(text);
            };
            let mut doc = crate::cpix::parse(text.as_bytes())
                .map_err(|e| PortError::Invalid(format!("export document: {e}")))?;
            encrypt_document(&mut doc, &[cert], MacLayout::Aws, rng)
                .map_err(|e| PortError::Invalid(format!("--recipient: {e}")))?;
            Ok(write(&doc, &WriteOptions::default()))
        }
        Format::ClearKeyJwk => {
            let entries: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "kty": "oct",
                        "kid": b64url(k.meta.kid.as_bytes()),
                        "k": b64url(k.key.expose()),
                    })
                })
                .collect();
            Ok(serde_json::json!({ "keys": entries, "type": "temporary" }).to_string())
        }
        Format::Mp4decrypt => Ok(keys
            .iter()
            .map(|k| {
                format!(
                    "--key {}:{}",
                    hex(k.meta.kid.as_bytes()),
                    hex(k.key.expose())
                )
            })
            .collect::<Vec<_>>()
            .join(" ")),
        Format::Ffmpeg => {
            if keys.len() > 1 {
                return Err(invalid(
                    "ffmpeg takes one -decryption_key; select one key with --kid",
                ));
            }
            Ok(format!("-decryption_key {}", hex(keys[0].key.expose())))
        }
        Format::Shaka => {
            let mut schemes: Vec<&str> = keys
                .iter()
                .filter_map(|k| k.meta.scheme.as_deref())
                .collect();
            schemes.sort_unstable();
            schemes.dedup();
            if schemes.len() > 1 {
                return Err(PortError::Invalid(format!(
                    "the keys use several schemes ({schemes:?}); Shaka Packager takes one"
                )));
            }
            let pairs: Vec<(KeyId, [u8; 16])> =
                keys.iter().map(|k| (k.meta.kid, *k.key.expose())).collect();
            Ok(shaka_flags(&pairs, schemes.first().copied()))
        }
    }
}

/// The Shaka Packager flags for `keys` (KID, key, scheme): raw-key
/// encryption, the protection scheme, one `--keys` entry per key (label
/// empty for a single key, so every stream uses it; the KID otherwise, for
/// the streams' `drm_label=`), the W3C common PSSH box of all KIDs, and
/// `--clear_lead 0` (Shaka Packager otherwise leaves the first 5 s clear).
pub fn shaka_flags(keys: &[(KeyId, [u8; 16])], scheme: Option<&str>) -> String {
    let entries: Vec<String> = keys
        .iter()
        .map(|(kid, key)| {
            let label = if keys.len() == 1 {
                String::new()
            } else {
                kid.to_string()
            };
            format!(
                "label={label}:key_id={}:key={}",
                hex(kid.as_bytes()),
                hex(key)
            )
        })
        .collect();
    let kids: Vec<KeyId> = keys.iter().map(|(k, _)| *k).collect();
    let mut out = String::from("--enable_raw_key_encryption");
    if let Some(s) = scheme {
        out.push_str(" --protection_scheme ");
        out.push_str(s);
    }
    out.push_str(" --keys ");
    out.push_str(&entries.join(","));
    out.push_str(" --pssh ");
    out.push_str(&hex(&common_pssh_box(&kids).to_bytes()));
    out.push_str(" --clear_lead 0");
    out
}

/// What importing one KID did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored now.
    New,
    /// Already stored with the same key and content id.
    Identical,
    /// Already stored with another key or content id; left as it was.
    Conflict(String),
}

impl ImportOutcome {
    /// `new`, `identical` or `conflict`.
    pub fn name(&self) -> &'static str {
        match self {
            ImportOutcome::New => "new",
            ImportOutcome::Identical => "identical",
            ImportOutcome::Conflict(_) => "conflict",
        }
    }
}

/// One key read from a document to import.
pub struct ImportKey {
    /// KID.
    pub kid: KeyId,
    /// The key.
    pub key: ContentKey,
    /// `@explicitIV`, when valid.
    pub iv: Option<[u8; 16]>,
    /// `@commonEncryptionScheme`.
    pub scheme: Option<String>,
}

/// The keys of a CPIX document: decrypted with `private` when encrypted
/// (every MAC verified first), as written when clear. Returns the
/// document's content id with them.
pub fn read_document(
    bytes: &[u8],
    private: Option<&PrivateKey>,
) -> Result<(Option<String>, Vec<ImportKey>), PortError> {
    let doc = crate::cpix::parse(bytes).map_err(|e| PortError::Invalid(format!("CPIX: {e}")))?;
    let encrypted = doc
        .keys()
        .iter()
        .any(|k| k.plain_value().is_none() && k.data.is_some());
    let values: Vec<(KeyId, Vec<u8>)> = if encrypted {
        let Some(private) = private else {
            return Err(PortError::Invalid(
                "the document's keys are encrypted: give the recipient's private key (--key)"
                    .into(),
            ));
        };
        decrypt_document(&doc, private)
            .map_err(|e| PortError::Invalid(e.to_string()))?
            .into_iter()
            .map(|k| (k.kid, k.key.expose().to_vec()))
            .collect()
    } else {
        doc.keys()
            .iter()
            .filter_map(|k| k.plain_value().map(|v| (k.kid, v.to_vec())))
            .collect()
    };
    let mut out = Vec::with_capacity(values.len());
    for (kid, value) in values {
        let key = ContentKey::from_slice(&value).ok_or_else(|| {
            PortError::Invalid(format!(
                "KID {kid}: a content key is 16 bytes, not {}",
                value.len()
            ))
        })?;
        let source = doc.keys().iter().find(|k| k.kid == kid);
        let iv = match source.and_then(|k| k.explicit_iv()) {
            None => None,
            Some(text) => Some(
                crate::b64::decode(text)
                    .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                    .ok_or_else(|| {
                        PortError::Invalid(format!(
                            "KID {kid}: explicitIV is not 16 bytes of base64"
                        ))
                    })?,
            ),
        };
        if out.iter().any(|k: &ImportKey| k.kid == kid) {
            return Err(PortError::Invalid(format!("KID {kid} appears twice")));
        }
        out.push(ImportKey {
            kid,
            key,
            iv,
            scheme: source
                .and_then(|k| k.common_encryption_scheme())
                .map(str::to_owned),
        });
    }
    if out.is_empty() {
        return Err(PortError::Invalid(
            "the document carries no key value".into(),
        ));
    }
    Ok((doc.content_id().map(str::to_owned), out))
}

/// Stores `keys` for (tenant, content id) under the binding rules: a KID
/// not stored is added, one stored with the same key and content id is
/// identical, anything else is a conflict and left alone.
pub async fn import(
    store: &dyn KeyStore,
    ring: &Keyring,
    rng: &dyn SecureRandom,
    tenant: &str,
    content_id: &str,
    requester: &str,
    keys: &[ImportKey],
) -> Result<Vec<(KeyId, ImportOutcome)>, PortError> {
    let compare = |k: &ImportKey, stored: &StoredKey| {
        if stored.meta.content_id != content_id {
            ImportOutcome::Conflict(format!("bound to content id {:?}", stored.meta.content_id))
        } else if stored.key != k.key {
            ImportOutcome::Conflict("stored with another key".into())
        } else {
            ImportOutcome::Identical
        }
    };
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(stored) = store.get(tenant, k.kid).await? {
            out.push((k.kid, compare(k, &stored)));
            continue;
        }
        let meta = KeyMeta {
            tenant: tenant.to_owned(),
            kid: k.kid,
            content_id: content_id.to_owned(),
            protocol: "import".into(),
            scheme: k.scheme.clone(),
            first_issued_ms: now_ms(),
            requester: requester.to_owned(),
            master_key_version: ring.current().version(),
            has_iv: k.iv.is_some(),
        };
        let bytes = encode_record(ring, rng, &meta, &k.key, k.iv.as_ref());
        let write = RawWrite {
            record: RawRecord {
                id: RecordId::Key {
                    tenant: tenant.to_owned(),
                    kid: k.kid,
                },
                content_id: content_id.to_owned(),
                master_key_version: meta.master_key_version,
                bytes,
            },
            expected: None,
        };
        let outcome = match store.put_raw(vec![write]).await?.first() {
            Some(RawOutcome::Written) => ImportOutcome::New,
            // Stored meanwhile by another request: compare with that.
            _ => match store.get(tenant, k.kid).await? {
                Some(stored) => compare(k, &stored),
                None => {
                    return Err(
                        StoreError::Unavailable(format!("KID {} was not stored", k.kid)).into(),
                    )
                }
            },
        };
        out.push((k.kid, outcome));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyMeta;

    fn stored(kid: &str, key: u8, cid: &str) -> StoredKey {
        StoredKey {
            meta: KeyMeta {
                tenant: "t".into(),
                kid: KeyId::parse_uuid(kid).unwrap(),
                content_id: cid.into(),
                protocol: "speke-2.0".into(),
                scheme: Some("cenc".into()),
                first_issued_ms: 0,
                requester: "x".into(),
                master_key_version: 1,
                has_iv: false,
            },
            key: ContentKey::from_slice(&[key; 16]).unwrap(),
            iv: None,
        }
    }

    #[test]
    fn flags_for_one_and_two_keys() {
        let k1 = KeyId::parse_uuid("0f083e4e-b831-4a3d-917e-ce78076e54aa").unwrap();
        let k2 = KeyId::parse_uuid("7e4d1c97-1a42-5710-80c5-b16272252e7f").unwrap();
        let one = shaka_flags(&[(k1, [0x11; 16])], Some("cenc"));
        assert_eq!(
            one,
            "--enable_raw_key_encryption --protection_scheme cenc --keys label=:key_id=0f083e4eb8314a3d917ece78076e54aa:key=11111111111111111111111111111111 --pssh 0000003470737368010000001077efecc0b24d02ace33c1e52e2fb4b000000010f083e4eb8314a3d917ece78076e54aa00000000 --clear_lead 0"
        );
        let two = shaka_flags(&[(k1, [1; 16]), (k2, [2; 16])], None);
        assert!(two.contains("label=0f083e4e-b831-4a3d-917e-ce78076e54aa:key_id="));
        assert!(two.contains(",label=7e4d1c97-1a42-5710-80c5-b16272252e7f:"));
        assert!(!two.contains("--protection_scheme"));
    }

    #[test]
    fn clear_formats() {
        let rng = crate::crypto::SeededRandom::new(1);
        let keys = [
            stored("0f083e4e-b831-4a3d-917e-ce78076e54aa", 0x11, "c"),
            stored("7e4d1c97-1a42-5710-80c5-b16272252e7f", 0xfe, "c"),
        ];
        assert_eq!(
            export(&keys, Format::Mp4decrypt, None, &rng).unwrap(),
            "--key 0f083e4eb8314a3d917ece78076e54aa:11111111111111111111111111111111 --key 7e4d1c971a42571080c5b16272252e7f:fefefefefefefefefefefefefefefefe"
        );
        assert_eq!(
            export(&keys[..1], Format::Ffmpeg, None, &rng).unwrap(),
            "-decryption_key 11111111111111111111111111111111"
        );
        assert!(export(&keys, Format::Ffmpeg, None, &rng).is_err());
        let jwk: serde_json::Value =
            serde_json::from_str(&export(&keys, Format::ClearKeyJwk, None, &rng).unwrap()).unwrap();
        assert_eq!(jwk["keys"][0]["kid"], "Dwg-TrgxSj2Rfs54B25Uqg");
        assert_eq!(jwk["keys"][1]["k"], "_v7-_v7-_v7-_v7-_v7-_g");
        assert_eq!(jwk["keys"][0]["kty"], "oct");
        // CPIX in the clear reads back to the same keys.
        let text = export(&keys, Format::CpixClear, None, &rng).unwrap();
        let (cid, back) = read_document(text.as_bytes(), None).unwrap();
        assert_eq!(cid.as_deref(), Some("c"));
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].key, keys[1].key);
        assert_eq!(back[0].scheme.as_deref(), Some("cenc"));
        // One CPIX document is one content id; cpix needs a recipient.
        let mixed = [
            keys[0].clone(),
            stored("7e4d1c97-1a42-5710-80c5-b16272252e7f", 2, "d"),
        ];
        assert!(export(&mixed, Format::CpixClear, None, &rng).is_err());
        assert!(export(&keys, Format::Cpix, None, &rng).is_err());
        // A content id with XML's metacharacters is escaped and reads back.
        let odd = [stored(
            "0f083e4e-b831-4a3d-917e-ce78076e54aa",
            0x11,
            r#"a<b>&"c'd"#,
        )];
        let text = export(&odd, Format::CpixClear, None, &rng).unwrap();
        assert!(
            text.contains(r#"contentId="a&lt;b&gt;&amp;&quot;c&apos;d""#),
            "{text}"
        );
        let (cid, _) = read_document(text.as_bytes(), None).unwrap();
        assert_eq!(cid.as_deref(), Some(r#"a<b>&"c'd"#));
    }
}
