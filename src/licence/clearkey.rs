//! Keys served to players straight from the store: the W3C ClearKey
//! licence (a JWK set of the requested KIDs the token's asset owns; KIDs
//! the tenant never issued are left out, never invented) and the raw
//! 16-byte key of HLS AES-128.

use super::token::TokenError;
use crate::crypto::ContentKey;
use crate::drm::clearkey::{license_response_json_for, LicenseRequest};
use crate::ids::KeyId;
use crate::keys::{KeyStore, StoreError};

/// Why no licence or key is served.
#[derive(Debug, thiserror::Error)]
pub enum KeyServeError {
    /// The token does not open these keys.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No such key for this content.
    #[error("no key {kid} for content {content_id:?}")]
    NotFound {
        /// The KID asked for.
        kid: KeyId,
        /// The content id of the URL.
        content_id: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ClearKey licence for `request`: the tenant's stored keys among the
/// requested KIDs, all of which must belong to `asset` when a token names
/// one (a KID of another asset refuses the licence). Returns the JSON and
/// the KIDs it carries.
pub async fn licence(
    store: &dyn KeyStore,
    tenant: &str,
    asset: Option<&str>,
    request: &LicenseRequest,
) -> Result<(String, Vec<KeyId>), KeyServeError> {
    let mut found: Vec<(KeyId, ContentKey)> = Vec::with_capacity(request.kids.len());
    let stored_keys = store.get_many(tenant, &request.kids).await?;
    for (&kid, stored) in request.kids.iter().zip(stored_keys) {
        let Some(stored) = stored else {
            continue;
        };
        if asset.is_some_and(|a| a != stored.meta.content_id) {
            return Err(TokenError::WrongAsset.into());
        }
        if !found.iter().any(|(k, _)| *k == kid) {
            found.push((kid, stored.key));
        }
    }
    let refs: Vec<(KeyId, &ContentKey)> = found.iter().map(|(k, key)| (*k, key)).collect();
    let json = license_response_json_for(&refs, request.session_type);
    Ok((json, found.into_iter().map(|(k, _)| k).collect()))
}

/// The raw key of `kid` under `content_id` (HLS AES-128 key delivery); a
/// token must be for that content.
pub async fn raw_key(
    store: &dyn KeyStore,
    tenant: &str,
    content_id: &str,
    kid: KeyId,
    asset: Option<&str>,
) -> Result<ContentKey, KeyServeError> {
    if asset.is_some_and(|a| a != content_id) {
        return Err(TokenError::WrongAsset.into());
    }
    match store.get(tenant, kid).await? {
        Some(k) if k.meta.content_id == content_id => Ok(k.key),
        _ => Err(KeyServeError::NotFound {
            kid,
            content_id: content_id.to_owned(),
        }),
    }
}
