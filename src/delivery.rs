//! Encrypted content-key delivery (CPIX `DeliveryDataList`): encrypting the
//! keys of a response for each recipient certificate, and decrypting the
//! keys of a document addressed to a private key, every MAC verified before
//! any key is released.
//!
//! Per document: a fresh 32-byte document key and 64-byte MAC key, each
//! wrapped with RSA-OAEP (SHA-1, MGF1-SHA-1) for every recipient; each
//! content key as `IV (16) ‖ AES-256-CBC/PKCS#7` (48 bytes) with
//! `ValueMAC = HMAC-SHA512(MAC key, cipher value)`.

use crate::cpix::xml::{Element, Ns};
use crate::cpix::{Document, EncryptedValue, KeyData, SecretBytes, SecretValue};
use crate::crypto::x509::{CertError, Certificate, PrivateKey};
use crate::crypto::{self, HmacSha512, SecureRandom};
use crate::ids::KeyId;
use rsa::traits::PublicKeyParts;
use std::sync::Arc;
use zeroize::Zeroizing;

/// `DocumentKey@Algorithm` and the content-key encryption method.
pub const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
/// Key transport of the document and MAC keys.
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
/// `MACMethod@Algorithm`.
pub const HMAC_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512";

/// Where the wrapped MAC key goes inside `MACMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacLayout {
    /// `MACMethod/Key/pskc:EncryptedValue/…` plus `ValueMAC`s on the
    /// document and MAC keys: what AWS documents for SPEKE clients.
    Aws,
    /// `MACMethod/Key/{enc:EncryptionMethod, enc:CipherData}`: the DASH-IF
    /// test vectors and Axinom.Cpix.
    DashIf,
}

/// Why delivery data cannot be produced or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// A recipient certificate is refused.
    #[error("DeliveryData[{index}]: {source}")]
    Certificate {
        /// 1-based position of the DeliveryData.
        index: usize,
        /// Why.
        #[source]
        source: CertError,
    },
    /// A DeliveryData has no usable `DeliveryKey/ds:X509Data/ds:X509Certificate`.
    #[error("DeliveryData[{0}]: DeliveryKey has no ds:X509Data/ds:X509Certificate")]
    MissingCertificate(usize),
    /// The document is not shaped as CPIX delivery data must be.
    #[error("{0}")]
    Malformed(String),
    /// An algorithm other than the CPIX mandatory ones.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// No DeliveryData is addressed to the private key.
    #[error("no DeliveryData is addressed to this private key")]
    NotARecipient,
    /// A MAC did not verify or a key did not decrypt; nothing is released.
    #[error("the document failed its integrity check; no key is released")]
    IntegrityCheckFailed,
    /// RSA encryption failed (key too small for OAEP).
    #[error("cannot wrap the document key: {0}")]
    Wrap(String),
}

/// The DER of every recipient certificate, in `DeliveryData` order.
pub fn recipient_certificates(doc: &Document) -> Result<Vec<Vec<u8>>, DeliveryError> {
    doc.recipients()
        .iter()
        .enumerate()
        .map(|(i, dd)| {
            dd.delivery_key
                .child(&Ns::Ds, "X509Data")
                .and_then(|x| x.child(&Ns::Ds, "X509Certificate"))
                .and_then(|c| crate::b64::decode(&c.text()))
                .filter(|der| !der.is_empty())
                .ok_or(DeliveryError::MissingCertificate(i + 1))
        })
        .collect()
}

fn enc_el(local: &str) -> Element {
    Element::new(Ns::Enc, local)
}

/// `enc:EncryptionMethod` + `enc:CipherData/enc:CipherValue`.
fn xenc_children(algorithm: &str, cipher: &[u8]) -> [Element; 2] {
    [
        enc_el("EncryptionMethod").with_attr("Algorithm", algorithm),
        enc_el("CipherData")
            .with_child(enc_el("CipherValue").with_text(crate::b64::encode(cipher))),
    ]
}

fn encrypted_value(algorithm: &str, cipher: &[u8]) -> Element {
    let [m, d] = xenc_children(algorithm, cipher);
    Element::new(Ns::Pskc, "EncryptedValue")
        .with_child(m)
        .with_child(d)
}

fn value_mac(mac: &[u8]) -> Element {
    Element::new(Ns::Pskc, "ValueMAC").with_text(crate::b64::encode(mac))
}

fn document_key_element(wrapped: &[u8], mac: &HmacSha512, layout: MacLayout, v24: bool) -> Element {
    let mut secret =
        Element::new(Ns::Pskc, "Secret").with_child(encrypted_value(RSA_OAEP_MGF1P, wrapped));
    if layout == MacLayout::Aws {
        secret = secret.with_child(value_mac(&mac.mac(wrapped)));
    }
    let mut dk = Element::new(Ns::Cpix, "DocumentKey");
    if !v24 {
        // CPIX 2.4 dropped DocumentKey@Algorithm.
        dk = dk.with_attr("Algorithm", AES256_CBC);
    }
    dk.with_child(Element::new(Ns::Cpix, "Data").with_child(secret))
}

fn mac_method_element(wrapped: &[u8], mac: &HmacSha512, layout: MacLayout) -> Element {
    let key = match layout {
        MacLayout::Aws => Element::new(Ns::Cpix, "Key")
            .with_child(encrypted_value(RSA_OAEP_MGF1P, wrapped))
            .with_child(value_mac(&mac.mac(wrapped))),
        MacLayout::DashIf => {
            let [m, d] = xenc_children(RSA_OAEP_MGF1P, wrapped);
            Element::new(Ns::Cpix, "Key").with_child(m).with_child(d)
        }
    };
    Element::new(Ns::Cpix, "MACMethod")
        .with_attr("Algorithm", HMAC_SHA512)
        .with_child(key)
}

/// Encrypts every `PlainValue` of `doc` for `recipients` (one per
/// `DeliveryData`, same order) and fills each DeliveryData's document and
/// MAC keys. Afterwards the document holds no plain key.
pub fn encrypt_document(
    doc: &mut Document,
    recipients: &[Arc<Certificate>],
    layout: MacLayout,
    rng: &dyn SecureRandom,
) -> Result<(), DeliveryError> {
    if recipients.len() != doc.recipients().len() {
        return Err(DeliveryError::Malformed(
            "one certificate is needed per DeliveryData".into(),
        ));
    }
    let mut doc_key = Zeroizing::new([0u8; 32]);
    let mut mac_key = Zeroizing::new([0u8; 64]);
    rng.fill(&mut doc_key[..]);
    rng.fill(&mut mac_key[..]);
    let mac = HmacSha512::new(&mac_key[..]);
    let v24 = doc.version() == Some("2.4");
    if let Some(list) = doc.delivery_data.as_mut() {
        for (i, (dd, cert)) in list.items.iter_mut().zip(recipients).enumerate() {
            let public = cert
                .encryptor
                .as_ref()
                .ok_or_else(|| DeliveryError::Certificate {
                    index: i + 1,
                    source: CertError::NotRsa(cert.key_algorithm.clone()),
                })?;
            let wrap = |secret: &[u8]| {
                public
                    .encrypt_oaep_sha1(secret, rng)
                    .map_err(|e| DeliveryError::Wrap(e.to_string()))
            };
            let wrapped_doc = wrap(&doc_key[..])?;
            let wrapped_mac = wrap(&mac_key[..])?;
            dd.document_keys = vec![document_key_element(&wrapped_doc, &mac, layout, v24)];
            dd.mac_method = Some(mac_method_element(&wrapped_mac, &mac, layout));
        }
    }
    if let Some(list) = doc.content_keys.as_mut() {
        for k in &mut list.items {
            let Some(SecretValue::Plain(plain)) = k.data.as_ref().and_then(|d| d.value.as_ref())
            else {
                continue;
            };
            let mut iv = [0u8; 16];
            rng.fill(&mut iv);
            let mut cipher = Vec::with_capacity(48);
            cipher.extend_from_slice(&iv);
            cipher.extend_from_slice(&crypto::aes256_cbc_encrypt(&doc_key, &iv, plain.expose()));
            let value_mac = mac.mac(&cipher);
            k.data = Some(KeyData {
                value: Some(SecretValue::Encrypted(EncryptedValue {
                    algorithm: Some(AES256_CBC.to_owned()),
                    cipher_value: cipher,
                })),
                value_mac: Some(value_mac.to_vec()),
            });
        }
    }
    Ok(())
}

/// A decrypted content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptedKey {
    /// The key id.
    pub kid: KeyId,
    /// The key bytes.
    pub key: SecretBytes,
}

/// The first `enc:CipherValue` under `e` with the `EncryptionMethod` next to
/// it (covers `Key/{EncryptionMethod,CipherData}`,
/// `Key/EncryptedValue/…` and RFC 6030 `MACKey/…`).
fn find_cipher(e: &Element) -> Option<(Option<String>, Vec<u8>)> {
    if let Some(cd) = e.child(&Ns::Enc, "CipherData") {
        let cv = cd.child(&Ns::Enc, "CipherValue")?;
        let method = e
            .child(&Ns::Enc, "EncryptionMethod")
            .and_then(|m| m.attr("Algorithm"))
            .map(str::to_owned);
        return Some((method, crate::b64::decode(&cv.text())?));
    }
    e.elements().find_map(find_cipher)
}

fn unwrap_secret(
    key: &PrivateKey,
    container: &Element,
    what: &str,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, DeliveryError> {
    let (method, cipher) = find_cipher(container)
        .ok_or_else(|| DeliveryError::Malformed(format!("{what}: no CipherValue")))?;
    if let Some(m) = method.filter(|m| m != RSA_OAEP_MGF1P) {
        return Err(DeliveryError::UnsupportedAlgorithm(m));
    }
    let secret = crypto::rsa_oaep_sha1_decrypt(&key.key, &cipher)
        .ok_or(DeliveryError::IntegrityCheckFailed)?;
    if secret.len() != len {
        return Err(DeliveryError::IntegrityCheckFailed);
    }
    Ok(secret)
}

/// Verifies every `pskc:ValueMAC` under `e` (a `DocumentKey` or the
/// `MACMethod`): each must be HMAC-SHA512(MAC key, the CipherValue bytes of
/// the `EncryptedValue` beside it), as the AWS (SPEKE) layout writes them
/// on `DocumentKey/Data/Secret` and `MACMethod/Key`. Layouts without such
/// MACs (DASH-IF, RFC 6030) have nothing to check here; a ValueMAC that is
/// present but wrong, unreadable or next to no CipherValue fails.
fn verify_wrapped_key_macs(e: &Element, mac_key: &HmacSha512) -> Result<(), DeliveryError> {
    let mut macs = e
        .elements()
        .filter(|c| c.is(&Ns::Pskc, "ValueMAC"))
        .peekable();
    if macs.peek().is_some() {
        let (_, cipher) = find_cipher(e).ok_or(DeliveryError::IntegrityCheckFailed)?;
        for mac in macs {
            let mac = crate::b64::decode(&mac.text()).ok_or(DeliveryError::IntegrityCheckFailed)?;
            if !mac_key.verify(&cipher, &mac) {
                return Err(DeliveryError::IntegrityCheckFailed);
            }
        }
    }
    e.elements()
        .filter(|c| !c.is(&Ns::Pskc, "ValueMAC"))
        .try_for_each(|c| verify_wrapped_key_macs(c, mac_key))
}

/// Which DeliveryData is addressed to `key`: the one whose certificate
/// carries the key's public modulus.
fn recipient_index(doc: &Document, key: &PrivateKey) -> Result<usize, DeliveryError> {
    let ders = recipient_certificates(doc)?;
    let n = key.key.n();
    ders.iter()
        .position(|der| {
            crate::crypto::x509::parse_certificate(der)
                .ok()
                .and_then(|c| c.rsa)
                .is_some_and(|p| p.n() == n)
        })
        .ok_or(DeliveryError::NotARecipient)
}

/// Checks the algorithm and `ValueMAC` of every encrypted content key,
/// before any of them is decrypted.
fn verify_content_key_macs(doc: &Document, mac_key: &HmacSha512) -> Result<(), DeliveryError> {
    for k in doc.keys() {
        let Some(data) = &k.data else { continue };
        if let Some(SecretValue::Encrypted(ev)) = &data.value {
            if ev.algorithm.as_deref().is_some_and(|a| a != AES256_CBC) {
                return Err(DeliveryError::UnsupportedAlgorithm(
                    ev.algorithm.clone().unwrap_or_default(),
                ));
            }
            let mac = data
                .value_mac
                .as_deref()
                .ok_or(DeliveryError::IntegrityCheckFailed)?;
            if !mac_key.verify(&ev.cipher_value, mac) {
                return Err(DeliveryError::IntegrityCheckFailed);
            }
        }
    }
    Ok(())
}

/// Decrypts every content key of `doc` addressed to `key`. All MACs are
/// verified before anything is decrypted: the `ValueMAC` of every encrypted
/// content key and, when present (AWS layout), those on the recipient's
/// wrapped document key and MAC key. Any failure rejects the whole
/// document with [`DeliveryError::IntegrityCheckFailed`]. Keys sent in the
/// clear are returned as they are.
pub fn decrypt_document(
    doc: &Document,
    key: &PrivateKey,
) -> Result<Vec<DecryptedKey>, DeliveryError> {
    let encrypted = doc.keys().iter().any(|k| {
        matches!(
            k.data.as_ref().and_then(|d| d.value.as_ref()),
            Some(SecretValue::Encrypted(_))
        )
    });
    let mut keys = Vec::with_capacity(doc.keys().len());
    let doc_key = if encrypted {
        let i = recipient_index(doc, key)?;
        let dd = &doc.recipients()[i];
        let dk = dd
            .document_keys
            .first()
            .ok_or_else(|| DeliveryError::Malformed("DeliveryData without DocumentKey".into()))?;
        if let Some(a) = dk.attr("Algorithm").filter(|a| *a != AES256_CBC) {
            return Err(DeliveryError::UnsupportedAlgorithm(a.to_owned()));
        }
        let mm = dd
            .mac_method
            .as_ref()
            .ok_or_else(|| DeliveryError::Malformed("DeliveryData without MACMethod".into()))?;
        match mm.attr("Algorithm") {
            Some(HMAC_SHA512) => {}
            other => {
                return Err(DeliveryError::UnsupportedAlgorithm(
                    other.unwrap_or("(none)").to_owned(),
                ))
            }
        }
        let mac_key = HmacSha512::new(&unwrap_secret(key, mm, "MACMethod", 64)?);
        // The AWS layout also MACs the wrapped document and MAC keys;
        // every such ValueMAC must verify before anything else is used.
        for e in dd.document_keys.iter().chain(std::iter::once(mm)) {
            verify_wrapped_key_macs(e, &mac_key)?;
        }
        let doc_key = unwrap_secret(key, dk, "DocumentKey", 32)?;
        verify_content_key_macs(doc, &mac_key)?;
        doc_key
    } else {
        Zeroizing::new(Vec::new())
    };
    let doc_key: Option<&[u8; 32]> = doc_key.as_slice().try_into().ok();
    for k in doc.keys() {
        match k.data.as_ref().and_then(|d| d.value.as_ref()) {
            Some(SecretValue::Plain(p)) => keys.push(DecryptedKey {
                kid: k.kid,
                key: p.clone(),
            }),
            Some(SecretValue::Encrypted(ev)) => {
                let dk = doc_key.ok_or(DeliveryError::IntegrityCheckFailed)?;
                if ev.cipher_value.len() < 32 || ev.cipher_value.len() % 16 != 0 {
                    return Err(DeliveryError::IntegrityCheckFailed);
                }
                let (iv, ct) = ev.cipher_value.split_at(16);
                let iv: &[u8; 16] = iv
                    .try_into()
                    .map_err(|_| DeliveryError::IntegrityCheckFailed)?;
                let plain = crypto::aes256_cbc_decrypt(dk, iv, ct)
                    .ok_or(DeliveryError::IntegrityCheckFailed)?;
                keys.push(DecryptedKey {
                    kid: k.kid,
                    key: SecretBytes::new(plain.to_vec()),
                });
            }
            None => {}
        }
    }
    Ok(keys)
}
