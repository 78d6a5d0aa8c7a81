//! SPEKE errors: the exact message strings AWS encryptors expect for SPEKE
//! 2.x, the HTTP status for each failure, and a detail text for logs.

use crate::cpix::CpixError;
use crate::drm::DrmError;
use crate::ids::{KeyId, SystemId};
use crate::speke::keysource::KeySourceError;

/// Why a SPEKE request was refused or could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpekeError {
    /// `X-Speke-Version` holds a version we do not speak.
    #[error("Unsupported SPEKE version")]
    UnsupportedSpekeVersion(String),
    /// SPEKE 2: `CPIX@contentId` absent or empty.
    #[error("Missing CPIX@contentId")]
    MissingContentId,
    /// SPEKE 2: `CPIX@version` absent or empty.
    #[error("Missing CPIX@version")]
    MissingCpixVersion,
    /// SPEKE 2: `CPIX@version` not supported with this SPEKE version.
    #[error("Unsupported CPIX@version")]
    UnsupportedCpixVersion(String),
    /// SPEKE 2: a key without `commonEncryptionScheme`.
    #[error("Missing ContentKey@commonEncryptionScheme for KID {0}")]
    MissingScheme(KeyId),
    /// SPEKE 2: keys with different schemes.
    #[error("Non compliant ContentKey@commonEncryptionScheme combination")]
    SchemeCombination,
    /// SPEKE 2: the scheme cannot be used with a requested DRM system.
    #[error("ContentKey@commonEncryptionScheme non compatible with DRMSystem {0}")]
    SchemeIncompatible(SystemId),
    /// SPEKE 2: the usage rules are inconsistent.
    #[error("Malformed encryption contract")]
    MalformedContract(String),
    /// SPEKE 2: the usage rules ask for something we refuse (key sharing
    /// across security levels, label filters, unknown filters).
    #[error("Requested CPIX encryption contract not supported")]
    ContractNotSupported(String),
    /// SPEKE 2: no Video/AudioFilter anywhere.
    #[error("Missing CPIX encryption contract")]
    MissingContract,
    /// The body is not a usable CPIX document.
    #[error("{0}")]
    Cpix(#[from] CpixError),
    /// Any other request problem, with a message naming what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The key store refused or failed.
    #[error("{0}")]
    Keys(#[from] KeySourceError),
    /// Encrypted delivery is impossible (refused certificate, malformed
    /// DeliveryData).
    #[error("{0}")]
    Delivery(#[from] crate::delivery::DeliveryError),
    /// The DRM settings produce no valid signalling (server configuration).
    #[error("{0}")]
    Drm(#[from] DrmError),
}

impl SpekeError {
    /// The HTTP status: 422 for SPEKE 2 request errors (as MediaPackage
    /// documents), 400 for SPEKE 1, 409 for a KID bound to another content
    /// id, 503 when storage is unavailable, 500 for configuration errors.
    pub fn status(&self, v2: bool) -> u16 {
        match self {
            SpekeError::Delivery(_) if !v2 => 400,
            SpekeError::Keys(KeySourceError::Conflict { .. }) => 409,
            SpekeError::Keys(KeySourceError::Unavailable(_)) => 503,
            SpekeError::Drm(DrmError::InvalidSetting { .. }) => 500,
            _ if v2 => 422,
            _ => 400,
        }
    }

    /// True for failures of the server rather than of the request.
    pub fn is_server_error(&self) -> bool {
        self.status(true) >= 500
    }

    /// The response body: the exact AWS string for the SPEKE 2 error table,
    /// a precise message otherwise. Server errors get a generic text.
    pub fn body(&self) -> String {
        if self.is_server_error() {
            return "internal error".to_owned();
        }
        self.to_string()
    }

    /// Extra detail for logs and the `X-Cpixd-Error-Detail` header (why a
    /// contract is malformed, which header value was refused, …).
    pub fn detail(&self) -> Option<String> {
        match self {
            SpekeError::UnsupportedSpekeVersion(v) => Some(format!("X-Speke-Version {v:?}")),
            SpekeError::UnsupportedCpixVersion(v) => Some(format!("CPIX@version {v:?}")),
            SpekeError::MalformedContract(d) | SpekeError::ContractNotSupported(d) => {
                Some(d.clone())
            }
            SpekeError::Drm(e) => Some(e.to_string()),
            SpekeError::Keys(KeySourceError::Unavailable(e)) => Some(e.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_are_5xx_with_a_generic_body() {
        let err = SpekeError::Keys(KeySourceError::Unavailable(
            "/secret/path/keys.redb: Input/output error".into(),
        ));
        for v2 in [true, false] {
            assert_eq!(err.status(v2), 503, "v2 = {v2}");
        }
        assert!(err.is_server_error());
        assert_eq!(err.body(), "internal error");
        assert!(!err.body().contains("/secret"));
        // The detail (logs only) keeps the cause.
        assert!(err.detail().unwrap().contains("/secret/path"));
        let drm = SpekeError::Drm(DrmError::InvalidSetting {
            setting: "playready.la_url",
            reason: "empty in /etc/cpixd/cpixd.toml".into(),
        });
        assert_eq!(drm.status(true), 500);
        assert_eq!(drm.body(), "internal error");
        let conflict = SpekeError::Keys(KeySourceError::Conflict {
            kid: KeyId::from_bytes([1; 16]),
            existing: "a".into(),
            requested: "b".into(),
        });
        assert_eq!(conflict.status(true), 409);
        assert!(!conflict.is_server_error());
        assert!(conflict.body().contains("\"a\"") && conflict.body().contains("\"b\""));
    }
}
