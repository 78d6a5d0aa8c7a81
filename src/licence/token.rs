//! DRM tokens: compact JWS (JWT) with HS256 under the tenant's signing key,
//! carrying the tenant, the asset (content id), an optional user id, the
//! DRM systems allowed and the issue and expiry times. The same format,
//! with `typ` = `kms`, is the OAuth2 access token of the KMS endpoints.
//! Verification takes the header's `alg` to be HS256 and nothing else,
//! compares the MAC in constant time and bounds every input.

use crate::keys::signing::SigningKey;
use serde::{Deserialize, Serialize};

/// Longest token accepted (bytes).
pub const MAX_TOKEN_BYTES: usize = 8 << 10;

/// Clock skew tolerated on `iat`.
const SKEW_SECS: u64 = 60;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Use {
    /// Licence, key and certificate requests of a player.
    Drm,
    /// The KMS endpoints (OAuth2 client credentials).
    Kms,
}

/// The claims cpixd writes and reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer, always `cpixd`.
    pub iss: String,
    /// The tenant.
    pub tid: String,
    /// The asset (content id) of a DRM token; the client id of a KMS token.
    pub sub: String,
    /// The viewer, when the token names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// DRM systems the token opens (`clearkey`, `widevine`, `playready`,
    /// `fairplay`, `hls`); empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drm: Vec<String>,
    /// Issued at (seconds since the Unix epoch).
    pub iat: u64,
    /// Expires at (seconds since the Unix epoch).
    pub exp: u64,
    /// What the token is for.
    pub typ: Use,
}

impl Claims {
    /// True when the token opens `system`.
    pub fn allows(&self, system: &str) -> bool {
        self.drm.is_empty() || self.drm.iter().any(|s| s.eq_ignore_ascii_case(system))
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token with the request.
    #[error("a DRM token is required (Authorization: Bearer, or ?token=)")]
    Missing,
    /// Not a token cpixd could have issued.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not verify under any usable key of the tenant.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// Past its `exp`.
    #[error("the token expired")]
    Expired,
    /// Another tenant's token.
    #[error("the token belongs to another tenant")]
    WrongTenant,
    /// Another asset's token.
    #[error("the token is for another asset")]
    WrongAsset,
    /// The token does not open this DRM system.
    #[error("the token does not allow {0}")]
    SystemNotAllowed(String),
    /// A KMS token where a DRM token is needed, or the other way round.
    #[error("the token is not meant for this endpoint")]
    WrongUse,
}

impl TokenError {
    /// The error code of the Cloud Video Kit licence API.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Expired => "LICENSE_EXPIRED",
            _ => "INVALID_TOKEN",
        }
    }

    /// The HTTP status: 401 without a token, 403 for a refused one.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::Missing => 401,
            _ => 403,
        }
    }
}

fn b64url(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 4 / 3 + 4);
    crate::b64::encode_url_into(bytes, &mut s);
    s
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Signs `claims` with `key`: `header.claims.signature`, base64url.
pub fn sign(claims: &Claims, key: &SigningKey) -> String {
    let header = Header {
        alg: "HS256".into(),
        typ: Some("JWT".into()),
        kid: Some(key.version.to_string()),
    };
    // Both serialise infallibly (strings, numbers, a list).
    let h = serde_json::to_vec(&header).unwrap_or_default();
    let c = serde_json::to_vec(claims).unwrap_or_default();
    let mut out = b64url(&h);
    out.push('.');
    out.push_str(&b64url(&c));
    let mac = crate::crypto::hmac_sha256(&key.secret[..], out.as_bytes());
    out.push('.');
    out.push_str(&b64url(&mac));
    out
}

/// A well-formed token taken apart once: its claims (not yet trusted),
/// the signing key version its header names, and what its signature
/// covers. The server reads a token once per request through this.
pub struct Unverified<'a> {
    claims: Claims,
    key_version: Option<u32>,
    signed: &'a str,
    signature: &'a str,
}

impl<'a> Unverified<'a> {
    /// Splits and decodes `token` (surrounding whitespace ignored): three
    /// parts, an HS256 header, claims issued by cpixd.
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three parts"));
        };
        let header = header_of(header)?;
        let bytes = crate::b64::decode_url(claims).ok_or(TokenError::Malformed("claims"))?;
        let claims: Claims =
            serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("claims"))?;
        if claims.iss != "cpixd" {
            return Err(TokenError::Malformed("issuer"));
        }
        Ok(Unverified {
            claims,
            key_version: header.kid.as_deref().and_then(|k| k.parse().ok()),
            signed: &token[..token.len() - signature.len() - 1],
            signature,
        })
    }

    /// The claims, before the signature is checked (to find the tenant
    /// whose keys verify it). Never trust them unverified.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The signing key version the header names (`kid`), if any.
    pub fn key_version(&self) -> Option<u32> {
        self.key_version
    }

    /// Verifies the token against `keys` (a tenant's, newest first) at
    /// `now_ms` (milliseconds since the Unix epoch) and returns its
    /// claims; `tenant` must be the token's.
    pub fn verify(
        self,
        keys: &[SigningKey],
        tenant: &str,
        now_ms: u64,
    ) -> Result<Claims, TokenError> {
        let now_secs = now_ms / 1000;
        let claims = self.claims;
        if claims.tid != tenant {
            return Err(TokenError::WrongTenant);
        }
        let sig =
            crate::b64::decode_url(self.signature).ok_or(TokenError::Malformed("signature"))?;
        let wanted = self.key_version;
        let verified = keys
            .iter()
            .filter(|k| k.usable(now_ms) && wanted.is_none_or(|v| v == k.version))
            .any(|k| {
                crate::crypto::ct_eq(
                    &crate::crypto::hmac_sha256(&k.secret[..], self.signed.as_bytes()),
                    &sig,
                )
            });
        if !verified {
            return Err(TokenError::BadSignature);
        }
        if claims.iat > now_secs.saturating_add(SKEW_SECS) {
            return Err(TokenError::Malformed("issued in the future"));
        }
        if now_secs >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Verifies `token` against `keys` (a tenant's, newest first) at `now_ms`
/// (milliseconds since the Unix epoch) and returns its claims; `tenant`
/// must be the token's.
pub fn verify(
    token: &str,
    keys: &[SigningKey],
    tenant: &str,
    now_ms: u64,
) -> Result<Claims, TokenError> {
    Unverified::parse(token)?.verify(keys, tenant, now_ms)
}

/// Decodes a token's first part.
fn header_of(part: &str) -> Result<Header, TokenError> {
    let bytes = crate::b64::decode_url(part).ok_or(TokenError::Malformed("header"))?;
    let header: Header =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("header"))?;
    if header.alg != "HS256" {
        return Err(TokenError::Malformed("alg must be HS256"));
    }
    Ok(header)
}

/// The claims of a well-formed token, before its signature is checked.
/// Never trust them unverified.
pub fn unverified_claims(token: &str) -> Result<Claims, TokenError> {
    Unverified::parse(token).map(|t| t.claims)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: "cpixd".into(),
            tid: "acme".into(),
            sub: "movie-1".into(),
            uid: Some("viewer-7".into()),
            drm: vec!["clearkey".into()],
            iat: 1_000,
            exp,
            typ: Use::Drm,
        }
    }

    #[test]
    fn sign_and_verify() {
        let rng = SeededRandom::new(1);
        let key = SigningKey::generate(1, 0, &rng);
        let other = SigningKey::generate(2, 0, &rng);
        let t = sign(&claims(2_000), &key);
        assert_eq!(t.split('.').count(), 3);
        let ok = verify(&t, std::slice::from_ref(&key), "acme", 1_500_000).unwrap();
        assert_eq!(ok, claims(2_000));
        assert!(ok.allows("ClearKey") && !ok.allows("widevine"));
        assert_eq!(
            verify(&t, std::slice::from_ref(&key), "acme", 2_000_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&t, std::slice::from_ref(&other), "acme", 1_500_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&t, std::slice::from_ref(&key), "globex", 1_500_000),
            Err(TokenError::WrongTenant)
        );
        // A changed claim breaks the signature.
        let parts: Vec<&str> = t.split('.').collect();
        let mut forged = claims(9_999_999);
        forged.sub = "movie-2".into();
        let body = b64url(&serde_json::to_vec(&forged).unwrap());
        let f = format!("{}.{body}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&f, std::slice::from_ref(&key), "acme", 1_500_000),
            Err(TokenError::BadSignature)
        );
        // alg none, or anything but HS256, is refused before any key.
        let none = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), parts[1]);
        assert!(matches!(
            verify(&none, std::slice::from_ref(&key), "acme", 1_500_000),
            Err(TokenError::Malformed(_))
        ));
        for junk in ["", "a.b", "a.b.c", &"x".repeat(MAX_TOKEN_BYTES + 1)] {
            assert!(verify(junk, std::slice::from_ref(&key), "acme", 1_500_000).is_err());
        }
        assert_eq!(TokenError::Expired.code(), "LICENSE_EXPIRED");
        assert_eq!(TokenError::BadSignature.code(), "INVALID_TOKEN");
    }

    #[test]
    fn a_retired_key_verifies_only_within_its_grace() {
        let rng = SeededRandom::new(2);
        let mut old = SigningKey::generate(1, 0, &rng);
        old.retires_ms = Some(1_800_000);
        let t = sign(&claims(10_000), &old);
        assert!(verify(&t, std::slice::from_ref(&old), "acme", 1_700_000).is_ok());
        assert_eq!(
            verify(&t, std::slice::from_ref(&old), "acme", 1_800_000),
            Err(TokenError::BadSignature)
        );
    }
}
