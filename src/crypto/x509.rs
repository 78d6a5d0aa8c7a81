//! X.509 certificates of CPIX recipients: parsing (DER, PEM or bare base64;
//! negative serial numbers tolerated, as in the DASH-IF vectors), the
//! acceptance policy (RSA only, minimum key size, expiry, SHA-1
//! signatures), a cache of parsed certificates by fingerprint, and loading
//! RSA private keys (PEM or PKCS#12) for decryption.

use super::sha256;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// Why a certificate or key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Not a parsable X.509 certificate.
    #[error("recipient certificate cannot be parsed: {0}")]
    Unparsable(String),
    /// The public key is not RSA.
    #[error("recipient certificate key is not RSA ({0})")]
    NotRsa(String),
    /// The RSA key is too small for this endpoint.
    #[error("recipient certificate has a {bits}-bit RSA key; at least {min} bits are required")]
    TooSmall {
        /// Key size.
        bits: usize,
        /// Required minimum.
        min: usize,
    },
    /// Past its notAfter date.
    #[error("recipient certificate expired on {0}")]
    Expired(String),
    /// Before its notBefore date.
    #[error("recipient certificate is not valid before {0}")]
    NotYetValid(String),
    /// Signed with SHA-1.
    #[error("recipient certificate is signed with SHA-1")]
    Sha1Signed,
    /// A private key cannot be read.
    #[error("private key: {0}")]
    PrivateKey(String),
}

/// A parsed recipient certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The DER bytes.
    pub der: Vec<u8>,
    /// SHA-256 of the DER.
    pub fingerprint: [u8; 32],
    /// Subject, for messages.
    pub subject: String,
    /// The RSA public key, if the key is RSA.
    pub rsa: Option<RsaPublicKey>,
    /// The same key ready to encrypt (Montgomery constants computed once).
    pub encryptor: Option<super::rsa_public::RsaEncryptor>,
    /// Description of a non-RSA key algorithm.
    pub key_algorithm: String,
    /// Modulus size in bits (0 when not RSA).
    pub rsa_bits: usize,
    /// notBefore, seconds since the epoch.
    pub not_before: i64,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
    /// notAfter as written, for messages.
    pub not_after_text: String,
    /// notBefore as written, for messages.
    pub not_before_text: String,
    /// True when the signature algorithm uses SHA-1.
    pub sha1_signed: bool,
}

/// OIDs of signature algorithms over SHA-1.
const SHA1_SIGNATURES: &[&str] = &[
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.3.14.3.2.29",        // sha1WithRSA (OIW)
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
];

/// Turns PEM or bare base64 into DER; DER passes through.
fn to_der(bytes: &[u8]) -> Result<Vec<u8>, CertError> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| CertError::Unparsable("neither DER nor text".into()))?;
    let body: String = if text.contains("-----BEGIN") {
        text.lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect()
    } else {
        text.to_owned()
    };
    crate::b64::decode(&body).ok_or_else(|| CertError::Unparsable("not base64".into()))
}

/// Parses a certificate from DER, PEM or base64 text.
pub fn parse_certificate(bytes: &[u8]) -> Result<Certificate, CertError> {
    let der = to_der(bytes)?;
    let (rest, cert) =
        X509Certificate::from_der(&der).map_err(|e| CertError::Unparsable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::Unparsable(
            "trailing bytes after the certificate".into(),
        ));
    }
    let spki = cert.public_key();
    let (rsa, key_algorithm) = match spki.parsed() {
        Ok(PublicKey::RSA(k)) => {
            let key = RsaPublicKey::new(
                BigUint::from_bytes_be(k.modulus),
                BigUint::from_bytes_be(k.exponent),
            )
            .map_err(|e| CertError::Unparsable(format!("RSA key: {e}")))?;
            (Some(key), "RSA".to_owned())
        }
        Ok(PublicKey::EC(_)) => (None, "EC".to_owned()),
        Ok(_) => (None, spki.algorithm.algorithm.to_id_string()),
        Err(e) => return Err(CertError::Unparsable(format!("public key: {e}"))),
    };
    let rsa_bits = rsa.as_ref().map_or(0, |k| k.n().bits());
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    let validity = cert.validity();
    Ok(Certificate {
        fingerprint: sha256(&der),
        subject: cert.subject().to_string(),
        encryptor: rsa.as_ref().and_then(super::rsa_public::RsaEncryptor::new),
        rsa,
        key_algorithm,
        rsa_bits,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        not_before_text: validity.not_before.to_string(),
        not_after_text: validity.not_after.to_string(),
        sha1_signed: SHA1_SIGNATURES.contains(&sig_oid.as_str()),
        der,
    })
}

/// Which recipient certificates an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct CertPolicy {
    /// Smallest RSA modulus accepted, in bits.
    pub min_rsa_bits: usize,
    /// Accept certificates past notAfter (or before notBefore).
    pub allow_expired: bool,
    /// Accept certificates signed with SHA-1.
    pub allow_sha1: bool,
}

impl CertPolicy {
    /// SPEKE: AWS requires 2048-bit RSA certificates.
    pub const SPEKE: CertPolicy = CertPolicy {
        min_rsa_bits: 2048,
        allow_expired: false,
        allow_sha1: false,
    };

    /// Generic CPIX: the CPIX specification recommends at least 3072 bits.
    pub const CPIX: CertPolicy = CertPolicy {
        min_rsa_bits: 3072,
        allow_expired: false,
        allow_sha1: false,
    };

    /// Checks `cert` at time `now` (seconds since the epoch).
    pub fn check(&self, cert: &Certificate, now: i64) -> Result<(), CertError> {
        if cert.rsa.is_none() {
            return Err(CertError::NotRsa(cert.key_algorithm.clone()));
        }
        if cert.rsa_bits < self.min_rsa_bits {
            return Err(CertError::TooSmall {
                bits: cert.rsa_bits,
                min: self.min_rsa_bits,
            });
        }
        if !self.allow_expired {
            if now > cert.not_after {
                return Err(CertError::Expired(cert.not_after_text.clone()));
            }
            if now < cert.not_before {
                return Err(CertError::NotYetValid(cert.not_before_text.clone()));
            }
        }
        if cert.sha1_signed && !self.allow_sha1 {
            return Err(CertError::Sha1Signed);
        }
        Ok(())
    }
}

impl Default for CertPolicy {
    fn default() -> Self {
        CertPolicy::SPEKE
    }
}

/// Parsed certificates by SHA-256 fingerprint of their DER (packagers send
/// the same certificate with every request).
#[derive(Debug, Default)]
pub struct CertCache {
    map: Mutex<HashMap<[u8; 32], Arc<Certificate>>>,
}

/// Most certificates the cache keeps.
const CACHE_ENTRIES: usize = 1024;

impl CertCache {
    /// The process-wide cache.
    pub fn shared() -> &'static CertCache {
        static SHARED: std::sync::OnceLock<CertCache> = std::sync::OnceLock::new();
        SHARED.get_or_init(CertCache::default)
    }

    /// Parses `der` or returns the cached parse.
    pub fn get_or_parse(&self, der: &[u8]) -> Result<Arc<Certificate>, CertError> {
        let fp = sha256(der);
        if let Some(c) = self.map.lock().ok().and_then(|m| m.get(&fp).cloned()) {
            return Ok(c);
        }
        let cert = Arc::new(parse_certificate(der)?);
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= CACHE_ENTRIES {
                m.clear();
            }
            m.insert(fp, cert.clone());
        }
        Ok(cert)
    }

    /// Number of cached certificates.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Current time in seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An RSA private key with the certificates that came with it (PKCS#12).
pub struct PrivateKey {
    /// The key.
    pub key: RsaPrivateKey,
    /// Certificates found beside it.
    pub certificates: Vec<Certificate>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PrivateKey(***, {} certificate(s))",
            self.certificates.len()
        )
    }
}

/// Loads an RSA private key: PEM (`PRIVATE KEY` PKCS#8 or `RSA PRIVATE KEY`
/// PKCS#1), DER PKCS#8, or PKCS#12 (`.pfx`/`.p12`) with `password`.
pub fn load_private_key(bytes: &[u8], password: Option<&str>) -> Result<PrivateKey, CertError> {
    let bad = |m: String| CertError::PrivateKey(m);
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.contains("-----BEGIN") {
            let key = RsaPrivateKey::from_pkcs8_pem(text)
                .or_else(|_| RsaPrivateKey::from_pkcs1_pem(text))
                .map_err(|e| bad(format!("PEM: {e}")))?;
            let certificates = if text.contains("BEGIN CERTIFICATE") {
                parse_certificate(bytes).into_iter().collect()
            } else {
                Vec::new()
            };
            return Ok(PrivateKey { key, certificates });
        }
    }
    if let Ok(key) = RsaPrivateKey::from_pkcs8_der(bytes) {
        return Ok(PrivateKey {
            key,
            certificates: Vec::new(),
        });
    }
    let pfx = p12::PFX::parse(bytes)
        .map_err(|e| bad(format!("neither PEM, PKCS#8 nor PKCS#12: {e:?}")))?;
    let password = password.unwrap_or("");
    if !pfx.verify_mac(password) {
        return Err(bad("PKCS#12 password is wrong (MAC check failed)".into()));
    }
    let keys = pfx
        .key_bags(password)
        .map_err(|e| bad(format!("PKCS#12: {e:?}")))?;
    let der = keys
        .first()
        .ok_or_else(|| bad("PKCS#12 holds no private key".into()))?;
    let key = RsaPrivateKey::from_pkcs8_der(der).map_err(|e| bad(format!("PKCS#12 key: {e}")))?;
    let certificates = pfx
        .cert_x509_bags(password)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| parse_certificate(c).ok())
        .collect();
    Ok(PrivateKey { key, certificates })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(matches!(
            parse_certificate(b"not a certificate"),
            Err(CertError::Unparsable(_))
        ));
        assert!(matches!(
            parse_certificate(&[0x30, 0x03, 0x02, 0x01, 0x00]),
            Err(CertError::Unparsable(_))
        ));
        let err = load_private_key(b"junk", None).unwrap_err();
        assert!(err.to_string().starts_with("private key:"), "{err}");
    }
}
