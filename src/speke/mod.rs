//! The SPEKE 1.0 and 2.0/2.1 profiles over CPIX: version detection, request
//! validation with the exact AWS error strings, and filling a request into
//! its response (keys from a [`KeySource`], signalling from `drm`).
//!
//! The three stages are separate so they can be measured on their own:
//! [`parse_request`] → [`fill`] → [`write_response`]; [`answer`] runs all three.

pub mod contract;
mod error;
mod fill;
pub mod keysource;

pub use error::SpekeError;
pub use keysource::{
    IssuedKey, KeyBatch, KeyRequest, KeySource, KeySourceError, MemoryKeySource, Protocol,
};

use crate::cpix::{self, Document, Limits, WriteOptions};
use crate::crypto::x509::{CertCache, CertPolicy, Certificate};
use crate::crypto::SecureRandom;
use crate::delivery::{DeliveryError, MacLayout};
use crate::drm::{DrmKind, DrmSettings, Scheme};
use crate::ids::{ContentId, KeyId, SystemId};
use std::sync::Arc;

/// Value of the `Speke-User-Agent` / `X-Speke-User-Agent` response headers.
pub const USER_AGENT: &str = concat!("cpixd/", env!("CARGO_PKG_VERSION"));

/// The profile a request is answered under: a SPEKE version, or generic
/// CPIX (the CPIX rules only: no content-id, scheme or contract
/// requirements beyond what CPIX itself says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpekeVersion {
    /// SPEKE 1.0 (CPIX 2.0 + `urn:aws:amazon:com:speke`).
    V1_0,
    /// SPEKE 2.0 (CPIX 2.3).
    V2_0,
    /// SPEKE 2.1 (CPIX 2.4).
    V2_1,
    /// Generic CPIX 2.3 (no SPEKE header).
    Cpix,
}

impl SpekeVersion {
    /// Reads the `X-Speke-Version` header: absent means 1.0.
    pub fn from_header(value: Option<&str>) -> Result<SpekeVersion, SpekeError> {
        match value.map(str::trim) {
            None => Ok(SpekeVersion::V1_0),
            Some(v) => SpekeVersion::parse(v)
                .ok_or_else(|| SpekeError::UnsupportedSpekeVersion(v.chars().take(32).collect())),
        }
    }

    /// Parses `1.0`, `2.0` or `2.1`.
    pub fn parse(s: &str) -> Option<SpekeVersion> {
        Some(match s {
            "1.0" => SpekeVersion::V1_0,
            "2.0" => SpekeVersion::V2_0,
            "2.1" => SpekeVersion::V2_1,
            _ => return None,
        })
    }

    /// The version as written in `X-Speke-Version`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpekeVersion::V1_0 => "1.0",
            SpekeVersion::V2_0 => "2.0",
            SpekeVersion::V2_1 => "2.1",
            SpekeVersion::Cpix => "cpix",
        }
    }

    /// True for SPEKE 2.x.
    pub fn is_v2(self) -> bool {
        matches!(self, SpekeVersion::V2_0 | SpekeVersion::V2_1)
    }

    /// True when a requested element cpixd cannot fill is refused (SPEKE 2,
    /// CPIX) rather than dropped (SPEKE 1.0).
    pub fn refuses_unfillable(self) -> bool {
        self != SpekeVersion::V1_0
    }

    /// The version a document asks for when no header says: 2.0 for
    /// `CPIX@version="2.3"`, 2.1 for `"2.4"`, otherwise 1.0.
    pub fn for_document_version(cpix_version: Option<&str>) -> SpekeVersion {
        match cpix_version.map(str::trim) {
            Some("2.3") => SpekeVersion::V2_0,
            Some("2.4") => SpekeVersion::V2_1,
            _ => SpekeVersion::V1_0,
        }
    }

    /// The profile of a request sent to `/speke2` without `X-Speke-Version`
    /// (no AWS encryptor does that; API clients such as the Cloud Video Kit
    /// examples do): CPIX 2.0–2.2 documents are answered under the generic
    /// CPIX rules, anything else under SPEKE 2.0.
    pub fn for_unlabelled_speke2(cpix_version: Option<&str>) -> SpekeVersion {
        match cpix_version.map(str::trim) {
            Some("2.0" | "2.1" | "2.2") => SpekeVersion::Cpix,
            _ => SpekeVersion::V2_0,
        }
    }

    /// The protocol recorded with keys issued through this version.
    pub fn protocol(self) -> Protocol {
        match self {
            SpekeVersion::V1_0 => Protocol::SpekeV1,
            SpekeVersion::V2_0 => Protocol::SpekeV2_0,
            SpekeVersion::V2_1 => Protocol::SpekeV2_1,
            SpekeVersion::Cpix => Protocol::Cpix,
        }
    }

    /// CPIX versions accepted with this SPEKE version. SPEKE 2.1 clients may
    /// still send 2.3 documents.
    fn accepts_cpix_version(self, v: &str) -> bool {
        match self {
            SpekeVersion::V1_0 | SpekeVersion::Cpix => true,
            SpekeVersion::V2_0 => v == "2.3",
            SpekeVersion::V2_1 => v == "2.4" || v == "2.3",
        }
    }
}

/// A validated request, ready to be filled.
#[derive(Debug, Clone)]
pub struct SpekeRequest {
    /// The protocol version.
    pub version: SpekeVersion,
    /// The document; [`fill`] turns it into the response.
    pub doc: Document,
    /// `CPIX@contentId` (2.x) or `CPIX@id` (1.0).
    pub content_id: ContentId,
    /// The single scheme of all keys (always set for 2.x).
    pub scheme: Option<Scheme>,
    /// Recipient certificates (one per `DeliveryData`), accepted by the
    /// policy; empty for clear-key delivery. Set by [`key_requests`].
    pub recipients: Vec<Arc<Certificate>>,
}

impl SpekeRequest {
    /// The key ids of the request, in order.
    pub fn kids(&self) -> Vec<KeyId> {
        self.doc.keys().iter().map(|k| k.kid).collect()
    }
}

/// Parses the scheme of a key: a CENC four-character code, or (SPEKE 2.1)
/// the equivalent HLS method name.
fn parse_scheme(s: &str, version: SpekeVersion) -> Option<Scheme> {
    Scheme::from_fourcc(s).or(match (version, s) {
        (SpekeVersion::V2_1, "SAMPLE-AES") => Some(Scheme::Cbcs),
        (SpekeVersion::V2_1, "SAMPLE-AES-CTR") => Some(Scheme::Cenc),
        (SpekeVersion::V2_1, "AES-128") => Some(Scheme::Cbc1),
        _ => None,
    })
}

/// Schemes each DRM system can be used with (MediaPackage v2 support matrix).
fn scheme_compatible(system: SystemId, scheme: Scheme) -> bool {
    use Scheme::*;
    match DrmKind::from_system_id(system) {
        Some(DrmKind::FairPlay) => scheme == Cbcs,
        Some(DrmKind::HlsAes128) => scheme == Cbc1,
        Some(DrmKind::Widevine | DrmKind::PlayReady | DrmKind::CommonPssh | DrmKind::ClearKey) => {
            matches!(scheme, Cenc | Cbcs)
        }
        None if system == SystemId::IRDETO => scheme == Cenc,
        None => false,
    }
}

fn known_system(system: SystemId) -> bool {
    DrmKind::from_system_id(system).is_some() || system == SystemId::IRDETO
}

/// Parses and validates a request body for `version`. No key is created.
pub fn parse_request(
    body: &[u8],
    version: SpekeVersion,
    limits: &Limits,
) -> Result<SpekeRequest, SpekeError> {
    validate(parse_document(body, limits)?, version)
}

/// Parses a request sent to `/speke2` without a version header: the
/// profile follows the document's `CPIX@version`
/// ([`SpekeVersion::for_unlabelled_speke2`]).
pub fn parse_unlabelled_speke2(body: &[u8], limits: &Limits) -> Result<SpekeRequest, SpekeError> {
    let doc = parse_document(body, limits)?;
    let version = SpekeVersion::for_unlabelled_speke2(doc.version());
    validate(doc, version)
}

fn parse_document(body: &[u8], limits: &Limits) -> Result<Document, SpekeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SpekeError::BadRequest("empty request body".into()));
    }
    Ok(cpix::parse_structure(
        body,
        &cpix::ReadOptions { limits: *limits },
    )?)
}

/// Validates a parsed document against the rules of `version`.
pub fn validate(doc: Document, version: SpekeVersion) -> Result<SpekeRequest, SpekeError> {
    match version {
        SpekeVersion::V1_0 => validate_v1(doc),
        SpekeVersion::V2_0 | SpekeVersion::V2_1 => validate_v2(doc, version),
        SpekeVersion::Cpix => validate_cpix(doc),
    }
}

/// The scheme a key asks for: a CENC four-character code, or (SPEKE 2.1)
/// the equivalent HLS method name.
pub(crate) fn key_scheme(key: &cpix::ContentKey, version: SpekeVersion) -> Option<Scheme> {
    key.common_encryption_scheme()
        .and_then(|s| parse_scheme(s, version))
}

/// Generic CPIX: the document's own rules (structure, references, valid
/// IVs and schemes), a content id to bind the keys to, and schemes that the
/// requested DRM systems can use. Usage rules are optional and echoed.
fn validate_cpix(doc: Document) -> Result<SpekeRequest, SpekeError> {
    let cid = doc
        .content_id()
        .or(doc.id())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            SpekeError::BadRequest(
                "CPIX@contentId (or CPIX@id) is required: keys are bound to it".into(),
            )
        })?;
    let content_id = content_id(cid)?;
    if doc.keys().is_empty() {
        return Err(SpekeError::BadRequest(
            "ContentKeyList with at least one ContentKey is required".into(),
        ));
    }
    for k in doc.keys() {
        if let Some(s) = k.common_encryption_scheme() {
            if Scheme::from_fourcc(s).is_none() {
                return Err(SpekeError::BadRequest(format!(
                    "ContentKey {}: unsupported commonEncryptionScheme {s:?}",
                    k.kid
                )));
            }
        }
    }
    let rules = cpix::validate::views(&doc)?;
    cpix::validate::references(&doc, &rules)?;
    for d in doc.systems() {
        let scheme = doc
            .keys()
            .iter()
            .find(|k| k.kid == d.kid)
            .and_then(|k| key_scheme(k, SpekeVersion::Cpix));
        if let Some(s) = scheme {
            if known_system(d.system_id) && !scheme_compatible(d.system_id, s) {
                return Err(SpekeError::SchemeIncompatible(d.system_id));
            }
        }
    }
    check_explicit_ivs(&doc)?;
    let mut schemes = doc.keys().iter().map(|k| key_scheme(k, SpekeVersion::Cpix));
    let first = schemes.next().flatten();
    let scheme = if schemes.all(|s| s == first) {
        first
    } else {
        None
    };
    Ok(SpekeRequest {
        version: SpekeVersion::Cpix,
        doc,
        content_id,
        scheme,
        recipients: Vec::new(),
    })
}

fn require_lists(doc: &Document) -> Result<(), SpekeError> {
    if doc.keys().is_empty() {
        return Err(SpekeError::BadRequest(
            "ContentKeyList with at least one ContentKey is required".into(),
        ));
    }
    if doc.systems().is_empty() {
        return Err(SpekeError::BadRequest(
            "DRMSystemList with at least one DRMSystem is required".into(),
        ));
    }
    if let Some(d) = doc.systems().iter().find(|d| !known_system(d.system_id)) {
        return Err(SpekeError::BadRequest(format!(
            "unsupported DRMSystem@systemId {}",
            d.system_id
        )));
    }
    Ok(())
}

/// Checks `explicitIV` values: base64 of exactly 16 bytes.
fn check_explicit_ivs(doc: &Document) -> Result<(), SpekeError> {
    for k in doc.keys() {
        if let Some(iv) = k.explicit_iv() {
            if decode_iv(iv).is_none() {
                return Err(SpekeError::BadRequest(format!(
                    "ContentKey {}: explicitIV is not base64 of 16 bytes",
                    k.kid
                )));
            }
        }
    }
    Ok(())
}

fn decode_iv(text: &str) -> Option<[u8; 16]> {
    cpix::decode_base64(text)?.try_into().ok()
}

fn content_id(value: &str) -> Result<ContentId, SpekeError> {
    ContentId::new(value).map_err(|e| SpekeError::BadRequest(format!("content id: {e}")))
}

fn validate_v1(doc: Document) -> Result<SpekeRequest, SpekeError> {
    let id = doc
        .id()
        .or(doc.content_id())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| SpekeError::BadRequest("Missing CPIX@id (the content id)".into()))?;
    let content_id = content_id(id)?;
    require_lists(&doc)?;
    let rules = cpix::validate::views(&doc)?;
    cpix::validate::references(&doc, &rules)?;
    check_explicit_ivs(&doc)?;
    let scheme = match doc.keys().iter().find_map(|k| k.common_encryption_scheme()) {
        Some(s) => Some(Scheme::from_fourcc(s).ok_or_else(|| {
            SpekeError::BadRequest(format!("unsupported commonEncryptionScheme {s:?}"))
        })?),
        None => None,
    };
    Ok(SpekeRequest {
        version: SpekeVersion::V1_0,
        doc,
        content_id,
        scheme,
        recipients: Vec::new(),
    })
}

fn validate_v2(doc: Document, version: SpekeVersion) -> Result<SpekeRequest, SpekeError> {
    let cid = doc
        .content_id()
        .filter(|s| !s.trim().is_empty())
        .ok_or(SpekeError::MissingContentId)?;
    let content_id = content_id(cid)?;
    let cpix_version = doc
        .version()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SpekeError::MissingCpixVersion)?;
    if !version.accepts_cpix_version(cpix_version) {
        return Err(SpekeError::UnsupportedCpixVersion(cpix_version.to_owned()));
    }
    require_lists(&doc)?;
    let mut scheme_text: Option<&str> = None;
    for k in doc.keys() {
        let s = k
            .common_encryption_scheme()
            .ok_or(SpekeError::MissingScheme(k.kid))?;
        match scheme_text {
            Some(prev) if prev != s => return Err(SpekeError::SchemeCombination),
            _ => scheme_text = Some(s),
        }
    }
    let scheme = scheme_text.and_then(|s| parse_scheme(s, version));
    for d in doc.systems() {
        if !scheme.is_some_and(|s| scheme_compatible(d.system_id, s)) {
            return Err(SpekeError::SchemeIncompatible(d.system_id));
        }
    }
    let rules = contract::check(&doc)?;
    cpix::validate::references(&doc, &rules)?;
    check_explicit_ivs(&doc)?;
    reject_v1_content(&doc)?;
    Ok(SpekeRequest {
        version,
        doc,
        content_id,
        scheme,
        recipients: Vec::new(),
    })
}

/// SPEKE 2 responses must not carry SPEKE 1.0 elements (MediaPackage v2
/// rejects them), so requests that ask for them are refused.
fn reject_v1_content(doc: &Document) -> Result<(), SpekeError> {
    for d in doc.systems() {
        if d.uri_ext_x_key.is_some() {
            return Err(SpekeError::BadRequest(format!(
                "DRMSystem {} for {}: URIExtXKey is SPEKE 1.0 only; use HLSSignalingData",
                d.system_id, d.kid
            )));
        }
        if let Some(e) = d.extensions.iter().find(|e| e.ns == cpix::xml::Ns::Speke) {
            return Err(SpekeError::BadRequest(format!(
                "DRMSystem {} for {}: speke:{} is SPEKE 1.0 only",
                d.system_id, d.kid, e.local
            )));
        }
    }
    Ok(())
}

/// What the filling stage needs besides the request.
#[derive(Clone, Copy)]
pub struct FillContext<'a> {
    /// Signalling settings (tenant specific).
    pub settings: &'a DrmSettings,
    /// Random source (document keys, IVs of encrypted keys).
    pub rng: &'a dyn SecureRandom,
    /// Which recipient certificates are accepted.
    pub cert_policy: CertPolicy,
    /// Layout of the MAC key in encrypted responses.
    pub mac_layout: MacLayout,
    /// Parsed certificates, shared between requests.
    pub certs: &'a CertCache,
}

impl<'a> FillContext<'a> {
    /// The SPEKE defaults: 2048-bit RSA minimum, AWS MAC-key layout, the
    /// process-wide certificate cache.
    pub fn new(settings: &'a DrmSettings, rng: &'a dyn SecureRandom) -> Self {
        FillContext {
            settings,
            rng,
            cert_policy: CertPolicy::SPEKE,
            mac_layout: MacLayout::Aws,
            certs: CertCache::shared(),
        }
    }
}

/// Parses and checks the recipient certificates of a request.
fn resolve_recipients(req: &mut SpekeRequest, ctx: &FillContext<'_>) -> Result<(), SpekeError> {
    let ders = crate::delivery::recipient_certificates(&req.doc)?;
    let now = crate::crypto::x509::now();
    req.recipients = ders
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let cert =
                ctx.certs
                    .get_or_parse(der)
                    .map_err(|source| DeliveryError::Certificate {
                        index: i + 1,
                        source,
                    })?;
            ctx.cert_policy
                .check(&cert, now)
                .map_err(|source| DeliveryError::Certificate {
                    index: i + 1,
                    source,
                })?;
            Ok(cert)
        })
        .collect::<Result<_, DeliveryError>>()?;
    Ok(())
}

/// The keys a validated request needs (what to ask a key store for).
/// Recipient certificates are checked here too, so a refused request
/// creates no key.
pub fn key_requests(
    req: &mut SpekeRequest,
    ctx: &FillContext<'_>,
) -> Result<Vec<KeyRequest>, SpekeError> {
    resolve_recipients(req, ctx)?;
    fill::key_requests(req)
}

/// Fills the document in place with keys obtained for [`key_requests`].
pub fn fill_with(
    req: &mut SpekeRequest,
    requests: &[KeyRequest],
    issued: &[IssuedKey],
    ctx: &FillContext<'_>,
) -> Result<(), SpekeError> {
    fill::fill_with(req, requests, issued, ctx)
}

/// Fetches the keys from `keys` and fills the document in place into the
/// response. Returns the keys handed out.
pub fn fill(
    req: &mut SpekeRequest,
    keys: &dyn KeySource,
    ctx: &FillContext<'_>,
) -> Result<Vec<IssuedKey>, SpekeError> {
    let requests = key_requests(req, ctx)?;
    let issued = keys.get_or_create(&KeyBatch {
        content_id: &req.content_id,
        protocol: req.version.protocol(),
        requests: &requests,
    })?;
    fill_with(req, &requests, &issued, ctx)?;
    Ok(issued)
}

/// Serialises a filled request as the response body.
pub fn write_response(req: &SpekeRequest) -> String {
    cpix::write(&req.doc, &WriteOptions::default())
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct SpekeResponse {
    /// The protocol version (echo it in `X-Speke-Version` for 2.x).
    pub version: SpekeVersion,
    /// The content id of the request.
    pub content_id: ContentId,
    /// The response document.
    pub body: String,
    /// Key ids handed out.
    pub kids: Vec<KeyId>,
}

/// Parses, fills and writes: bytes of a request in, bytes of a response out.
pub fn answer(
    body: &[u8],
    version: SpekeVersion,
    keys: &dyn KeySource,
    ctx: &FillContext<'_>,
    limits: &Limits,
) -> Result<SpekeResponse, SpekeError> {
    let mut req = parse_request(body, version, limits)?;
    let issued = fill(&mut req, keys, ctx)?;
    Ok(SpekeResponse {
        version,
        content_id: req.content_id.clone(),
        body: write_response(&req),
        kids: issued.iter().map(|k| k.kid).collect(),
    })
}
