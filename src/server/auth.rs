//! Authentication of every API call: `X-Api-Key` + `X-Tenant-Id` (as the
//! Cloud Video Kit API does) or HTTP Basic. Stored credentials are SHA-256
//! hashes, compared in constant time against every tenant (Basic user names
//! too). 401 without or with wrong credentials, and for an `X-Api-Key`
//! without `X-Tenant-Id`; 403 when valid credentials name another tenant.
//! The KMS endpoints also take the tenant from a `tenantId` query parameter
//! (the URLs the Cloud Video Kit settings hand to packagers), and the
//! Ateme/Anevia GET, whose origins cannot send headers, can be opened per
//! tenant to client addresses (`[tenant.anevia] allow_from`). The client
//! address is the peer's, or what a trusted proxy's `X-Forwarded-For` says
//! ([`client_ip`]), for the allow-list and the licence log alike.

use super::error::ApiError;
use crate::config::access::IpRange;
use crate::config::Tenant;
use crate::crypto::{ct_eq, sha256};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Extension;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The connection's peer address as a handler receives it.
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The client's address: the peer's, or, when the peer is one of the
/// `trusted` proxies, the one their `X-Forwarded-For` names.
pub fn client_ip(trusted: &[IpRange], headers: &HeaderMap, peer: &Peer) -> Option<IpAddr> {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    crate::config::access::client_address(
        peer.as_ref().map(|Extension(ConnectInfo(a))| a.ip()),
        forwarded,
        trusted,
    )
}

/// Header carrying the API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Header naming the tenant.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The tenant the credentials belong to.
    pub tenant: Arc<Tenant>,
    /// How to name the caller in records and logs (`api-key:1a2b3c4d`,
    /// `basic:packager`); never the secret.
    pub requester: String,
    /// Whether the credential is one of the tenant's admin API keys.
    pub admin: bool,
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
}

/// Finds the tenant whose hash matches, looking at every hash so the time
/// taken does not depend on where (or whether) a match is.
fn find<'a, T>(
    items: impl Iterator<Item = (&'a Arc<Tenant>, T)>,
    matches: impl Fn(&T) -> bool,
) -> Option<&'a Arc<Tenant>> {
    let mut found = None;
    for (tenant, item) in items {
        if matches(&item) && found.is_none() {
            found = Some(tenant);
        }
    }
    found
}

/// Authenticates a request against the configured tenants.
pub fn authenticate(tenants: &[Arc<Tenant>], headers: &HeaderMap) -> Result<Principal, ApiError> {
    authenticate_as(tenants, headers, None)
}

/// The tenant a request names: `X-Tenant-Id`, else the `tenantId` query
/// parameter.
fn named_tenant(headers: &HeaderMap, query_tenant: Option<&str>) -> Option<String> {
    headers
        .get(TENANT_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").trim().to_owned())
        .or_else(|| query_tenant.map(|t| t.trim().to_owned()))
        .filter(|t| !t.is_empty())
}

/// The `tenantId` parameter of a raw query string, if any.
pub fn query_tenant(query: Option<&str>) -> Option<String> {
    super::form::pairs(query?).find_map(|(k, v)| (k == "tenantId").then_some(v))
}

/// True when the request carries credentials of its own.
fn has_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(API_KEY_HEADER) || headers.contains_key(header::AUTHORIZATION)
}

/// Authenticates an Ateme/Anevia GET: by its credentials when it sends
/// some, otherwise by its address, for a tenant that opened the endpoint
/// to it (`[tenant.anevia] allow_from`). When several tenants allow the
/// address, the request must name one (`X-Tenant-Id` or `tenantId`).
pub fn authenticate_anevia(
    tenants: &[Arc<Tenant>],
    headers: &HeaderMap,
    query_tenant: Option<&str>,
    peer: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    if has_credentials(headers) {
        return authenticate_as(tenants, headers, query_tenant);
    }
    let refused = || {
        unauthorized(
            "missing credentials: send X-Api-Key and X-Tenant-Id, or HTTP Basic \
             (or allow this origin's address in [tenant.anevia] allow_from)",
        )
    };
    let peer = peer.ok_or_else(refused)?;
    let named = named_tenant(headers, query_tenant);
    let mut open = tenants.iter().filter(|t| {
        named.as_ref().is_none_or(|n| *n == t.id)
            && t.anevia_allow_from.iter().any(|n| n.contains(&peer))
    });
    match (open.next(), open.next()) {
        (Some(t), None) => Ok(Principal {
            tenant: t.clone(),
            requester: format!("anevia:{peer}"),
            admin: false,
        }),
        (Some(_), Some(_)) => Err(unauthorized(
            "several tenants accept Anevia requests from this address: name one with X-Tenant-Id or ?tenantId=",
        )),
        (None, _) => Err(refused()),
    }
}

/// Refuses (403) a principal whose request names another tenant.
pub fn check_named(
    p: Principal,
    headers: &HeaderMap,
    query_tenant: Option<&str>,
) -> Result<Principal, ApiError> {
    match named_tenant(headers, query_tenant) {
        Some(named) if named != p.tenant.id => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("these credentials do not belong to tenant {named:?}"),
        )),
        _ => Ok(p),
    }
}

/// [`authenticate`], with the tenant also named by a query parameter.
pub fn authenticate_as(
    tenants: &[Arc<Tenant>],
    headers: &HeaderMap,
    query_tenant: Option<&str>,
) -> Result<Principal, ApiError> {
    let named = named_tenant(headers, query_tenant);
    let mut admin = false;
    let (tenant, requester) = if let Some(key) = headers.get(API_KEY_HEADER) {
        // An API key is only half of the credentials: the tenant must be named.
        if named.is_none() {
            return Err(unauthorized(
                "missing X-Tenant-Id header: X-Api-Key must be sent with X-Tenant-Id (or ?tenantId=)",
            ));
        }
        let digest = sha256(key.as_bytes());
        let owner = find(
            tenants.iter().flat_map(|t| {
                t.api_key_hashes
                    .iter()
                    .chain(&t.admin_key_hashes)
                    .map(move |h| (t, h))
            }),
            |h| ct_eq(&h[..], &digest),
        )
        .ok_or_else(|| unauthorized("invalid API key"))?;
        admin = owner
            .admin_key_hashes
            .iter()
            .any(|h| ct_eq(&h[..], &digest));
        let id: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let kind = if admin { "admin-key" } else { "api-key" };
        (owner.clone(), format!("{kind}:{id}"))
    } else if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let (user, password) = basic_credentials(auth.as_bytes())
            .ok_or_else(|| unauthorized("unsupported Authorization header (use Basic)"))?;
        let digest = sha256(password.as_bytes());
        let owner = find(
            tenants
                .iter()
                .flat_map(|t| t.basic.iter().map(move |b| (t, b))),
            // Both compared in constant time, and both always compared.
            |(u, h)| ct_eq(u.as_bytes(), user.as_bytes()) & ct_eq(&h[..], &digest),
        )
        .ok_or_else(|| unauthorized("invalid user or password"))?;
        (owner.clone(), format!("basic:{user}"))
    } else {
        return Err(unauthorized(
            "missing credentials: send X-Api-Key and X-Tenant-Id, or HTTP Basic",
        ));
    };
    if let Some(named) = named {
        if named != tenant.id {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("these credentials do not belong to tenant {named:?}"),
            ));
        }
    }
    Ok(Principal {
        tenant,
        requester,
        admin,
    })
}

/// The `user:password` of an `Authorization: Basic` header, if it has one.
pub fn basic_credentials_of(headers: &HeaderMap) -> Option<(String, String)> {
    basic_credentials(headers.get(header::AUTHORIZATION)?.as_bytes())
}

/// Decodes `Basic base64(user:password)`.
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(crate::b64::decode(rest.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drm::DrmSettings;
    use axum::http::HeaderValue;

    fn tenants() -> Vec<Arc<Tenant>> {
        vec![
            Arc::new(Tenant {
                id: "a".into(),
                api_key_hashes: vec![sha256(b"key-a")],
                admin_key_hashes: vec![sha256(b"admin-a")],
                basic: vec![("alice".into(), sha256(b"pw-a"))],
                drm: DrmSettings::default(),
                anevia_allow_from: vec![],
                authorization: Default::default(),
                license: None,
                oauth_clients: vec![],
            }),
            Arc::new(Tenant {
                id: "b".into(),
                api_key_hashes: vec![sha256(b"key-b")],
                admin_key_hashes: vec![],
                basic: vec![],
                drm: DrmSettings::default(),
                anevia_allow_from: vec![],
                authorization: Default::default(),
                license: None,
                oauth_clients: vec![],
            }),
        ]
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_auth_matrix() {
        let t = tenants();
        let ok = authenticate(
            &t,
            &headers(&[("x-api-key", "key-b"), ("x-tenant-id", "b")]),
        )
        .unwrap();
        assert_eq!(ok.tenant.id, "b");
        assert!(ok.requester.starts_with("api-key:") && !ok.requester.contains("key-b"));
        assert!(!ok.admin);
        // An admin key is a credential of its tenant, marked admin.
        let admin = authenticate(
            &t,
            &headers(&[("x-api-key", "admin-a"), ("x-tenant-id", "a")]),
        )
        .unwrap();
        assert!(admin.admin && admin.requester.starts_with("admin-key:"));
        assert_eq!(admin.tenant.id, "a");
        assert!(authenticate(
            &t,
            &headers(&[("x-api-key", "admin-a"), ("x-tenant-id", "b")]),
        )
        .is_err());
        let status = |h: &[(&str, &str)]| {
            authenticate(&t, &headers(h))
                .map(|p| p.tenant.id.clone())
                .map_err(|e| e.status.as_u16())
        };
        assert_eq!(status(&[]), Err(401));
        assert_eq!(status(&[("x-tenant-id", "a")]), Err(401));
        assert_eq!(
            status(&[("x-api-key", "nope"), ("x-tenant-id", "a")]),
            Err(401)
        );
        assert_eq!(
            status(&[("x-api-key", "key-b"), ("x-tenant-id", "a")]),
            Err(403)
        );
        // The API key alone is not enough: the tenant must be named.
        assert_eq!(status(&[("x-api-key", "key-a")]), Err(401));
        assert_eq!(
            status(&[("x-api-key", "key-a"), ("x-tenant-id", " ")]),
            Err(401)
        );
        let err = authenticate(&t, &headers(&[("x-api-key", "key-a")])).unwrap_err();
        assert!(err.message.contains("X-Tenant-Id"), "{}", err.message);
        assert_eq!(
            status(&[("x-api-key", "key-a"), ("x-tenant-id", "a")]),
            Ok("a".into())
        );
        let basic = format!("Basic {}", crate::b64::encode(b"alice:pw-a"));
        assert_eq!(status(&[("authorization", &basic)]), Ok("a".into()));
        assert_eq!(
            status(&[("authorization", &basic), ("x-tenant-id", "b")]),
            Err(403)
        );
        let wrong = format!("Basic {}", crate::b64::encode(b"alice:nope"));
        assert_eq!(status(&[("authorization", &wrong)]), Err(401));
        // The user name must match exactly, not a prefix or another case.
        for user in ["alic", "alicee", "Alice", ""] {
            let other = format!(
                "Basic {}",
                crate::b64::encode(format!("{user}:pw-a").as_bytes())
            );
            assert_eq!(status(&[("authorization", &other)]), Err(401), "{user:?}");
        }
        assert_eq!(status(&[("authorization", "Bearer xyz")]), Err(401));
    }
}
