//! Filling a validated request: one key-source call for all keys, then the
//! placeholders of every DRMSystem. SPEKE 1.0 drops placeholders that do not
//! apply to a system (as AWS's examples do); SPEKE 2 refuses to leave a
//! requested element unfilled, and checks that before any key is created.

use super::{FillContext, IssuedKey, KeyRequest, SpekeError, SpekeRequest};
use crate::b64::{self, Base64Text};
use crate::cpix::xml::{remove_attr, set_attr, Element, Ns};
use crate::cpix::{DrmSystem, KeyData, SecretBytes, SecretValue, Signal};
use crate::crypto::ContentKey;
use crate::drm::hls::{self, HlsKeyTag};
use crate::drm::{
    clearkey, fairplay, playready, pssh, widevine, DrmKind, DrmSettings, Scheme, TemplateVars,
};
use crate::ids::{KeyId, SystemId};
use crate::sorted::{SortedMap, SortedSet};

/// A fillable child of a DRMSystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    Pssh,
    ContentProtectionData,
    UriExtXKey,
    HlsSignalingData,
    SmoothStreaming,
    HdsSignalingData,
    KeyFormat,
    KeyFormatVersions,
    ProtectionHeader,
}

impl Child {
    fn name(self) -> &'static str {
        match self {
            Child::Pssh => "PSSH",
            Child::ContentProtectionData => "ContentProtectionData",
            Child::UriExtXKey => "URIExtXKey",
            Child::HlsSignalingData => "HLSSignalingData",
            Child::SmoothStreaming => "SmoothStreamingProtectionHeaderData",
            Child::HdsSignalingData => "HDSSignalingData",
            Child::KeyFormat => "speke:KeyFormat",
            Child::KeyFormatVersions => "speke:KeyFormatVersions",
            Child::ProtectionHeader => "speke:ProtectionHeader",
        }
    }

    fn of_speke_element(e: &Element) -> Option<Child> {
        if e.ns != Ns::Speke {
            return None;
        }
        Some(match e.local.as_ref() {
            "KeyFormat" => Child::KeyFormat,
            "KeyFormatVersions" => Child::KeyFormatVersions,
            "ProtectionHeader" => Child::ProtectionHeader,
            _ => return None,
        })
    }

    /// Whether cpixd produces this child for the system (`strict`: SPEKE 2
    /// and CPIX, where FairPlay CMAF keys get a PSSH).
    fn applies(self, kind: Option<DrmKind>, strict: bool) -> bool {
        use DrmKind::*;
        let Some(kind) = kind else { return false };
        match self {
            Child::Pssh => match kind {
                Widevine | PlayReady | CommonPssh | ClearKey => true,
                // MediaPackage v2 asks FairPlay CMAF keys for a PSSH; SPEKE
                // 1.0 FairPlay is HLS only.
                FairPlay => strict,
                HlsAes128 => false,
            },
            Child::ContentProtectionData => {
                matches!(kind, Widevine | PlayReady | CommonPssh | ClearKey)
            }
            Child::UriExtXKey | Child::KeyFormat | Child::KeyFormatVersions => {
                matches!(kind, FairPlay | HlsAes128)
            }
            Child::HlsSignalingData => matches!(kind, Widevine | PlayReady | FairPlay | HlsAes128),
            Child::SmoothStreaming | Child::ProtectionHeader => kind == PlayReady,
            Child::HdsSignalingData => false,
        }
    }
}

/// The children a DRMSystem asks for, in schema order.
fn requested(d: &DrmSystem) -> impl Iterator<Item = Child> + '_ {
    let slots = [
        (d.pssh.is_some(), Child::Pssh),
        (
            d.content_protection_data.is_some(),
            Child::ContentProtectionData,
        ),
        (d.uri_ext_x_key.is_some(), Child::UriExtXKey),
        (!d.hls_signaling_data.is_empty(), Child::HlsSignalingData),
        (d.smooth_streaming.is_some(), Child::SmoothStreaming),
        (d.hds_signaling_data.is_some(), Child::HdsSignalingData),
    ];
    slots
        .into_iter()
        .filter_map(|(present, c)| present.then_some(c))
        .chain(d.extensions.iter().filter_map(Child::of_speke_element))
}

fn system_label(id: SystemId) -> String {
    match id.name() {
        Some(n) => format!("{id} ({n})"),
        None => id.to_string(),
    }
}

/// SPEKE 2: every requested child must be producible; checked before keys
/// are created so that a refused request stores nothing.
fn check_requested_children(req: &SpekeRequest) -> Result<(), SpekeError> {
    for d in req.doc.systems() {
        let kind = DrmKind::from_system_id(d.system_id);
        if let Some(c) = requested(d).find(|c| !c.applies(kind, true)) {
            return Err(SpekeError::BadRequest(format!(
                "DRMSystem {} for KID {}: cpixd cannot provide {}",
                system_label(d.system_id),
                d.kid,
                c.name()
            )));
        }
    }
    Ok(())
}

/// Signalling for one (system, key), computed on first use.
struct Signals<'a> {
    kind: DrmKind,
    kid: KeyId,
    key: &'a ContentKey,
    iv: Option<[u8; 16]>,
    scheme: Option<Scheme>,
    content_id: &'a str,
    settings: &'a DrmSettings,
    pro: Option<(Vec<u8>, Base64Text)>,
    pssh: Option<Base64Text>,
}

impl<'a> Signals<'a> {
    fn vars(&self) -> TemplateVars<'_> {
        TemplateVars {
            kid: self.kid,
            content_id: self.content_id,
            iv: self.iv.as_ref(),
        }
    }

    /// The PlayReady Object and its base64.
    fn pro(&mut self) -> Result<&(Vec<u8>, Base64Text), SpekeError> {
        if self.pro.is_none() {
            let header = playready::header_for(
                &[(self.kid, self.key)],
                self.scheme,
                &self.settings.playready,
            )?;
            let pro = playready::object(&header.to_xml())?;
            let b64 = Base64Text::encode(&pro);
            self.pro = Some((pro, b64));
        }
        Ok(self.pro.get_or_insert_with(Default::default))
    }

    /// The base64 of the `pssh` box.
    fn pssh(&mut self) -> Result<&Base64Text, SpekeError> {
        if self.pssh.is_none() {
            let bx = match self.kind {
                DrmKind::Widevine => widevine::pssh_box(
                    &[self.kid],
                    self.scheme,
                    &self.settings.widevine,
                    self.content_id,
                ),
                DrmKind::PlayReady => playready::pssh_box(&self.pro()?.0),
                DrmKind::FairPlay => fairplay::cmaf_pssh_box(&[self.kid]),
                DrmKind::ClearKey => clearkey::dashif_clearkey_pssh_box(&[self.kid]),
                DrmKind::CommonPssh | DrmKind::HlsAes128 => clearkey::common_pssh_box(&[self.kid]),
            };
            self.pssh = Some(Base64Text::encode(&bx.to_bytes()));
        }
        Ok(self.pssh.get_or_insert_with(Default::default))
    }

    /// The `pssh` box's base64, taken: after its last use.
    fn take_pssh_base64(&mut self) -> Result<Base64Text, SpekeError> {
        self.pssh()?;
        Ok(self.pssh.take().unwrap_or_default())
    }

    /// Appends the XML for the MPD `ContentProtection` element to `xml`.
    fn content_protection_data(&mut self, xml: &mut String) -> Result<(), SpekeError> {
        let pro_len = match self.kind {
            DrmKind::PlayReady => self.pro()?.1.as_str().len(),
            _ => 0,
        };
        xml.reserve(self.pssh()?.as_str().len() + pro_len + 512);
        if self.kind == DrmKind::ClearKey {
            xml.push_str(&clearkey::laurl_fragment(&clearkey::license_url(
                &self.settings.clearkey,
                &self.vars(),
            )?));
        }
        pssh::push_mpd_pssh_element(self.pssh()?, xml);
        if self.kind == DrmKind::PlayReady {
            xml.push_str(r#"<mspr:pro xmlns:mspr="urn:microsoft:playready">"#);
            xml.push_str(self.pro()?.1.as_str());
            xml.push_str("</mspr:pro>");
        }
        Ok(())
    }

    /// The key URI (FairPlay `skd://`, AES-128 key URL).
    fn key_uri(&self) -> Result<String, SpekeError> {
        Ok(match self.kind {
            DrmKind::FairPlay => fairplay::key_uri(&self.settings.fairplay, &self.vars())?,
            _ => crate::drm::expand_template(
                &self.settings.hls_aes128.key_uri_template,
                &self.vars(),
                "hls_aes128.key_uri_template",
            )?,
        })
    }

    fn key_format(&self) -> &'static str {
        match self.kind {
            DrmKind::FairPlay => fairplay::KEYFORMAT,
            _ => "identity",
        }
    }

    fn hls_tag(&mut self) -> Result<HlsKeyTag, SpekeError> {
        Ok(match self.kind {
            DrmKind::Widevine => {
                let (kid, scheme) = (self.kid, self.scheme);
                HlsKeyTag::widevine(self.pssh()?, kid, scheme)
            }
            DrmKind::PlayReady => {
                let scheme = self.scheme;
                HlsKeyTag::playready(&self.pro()?.1, scheme)
            }
            DrmKind::FairPlay => HlsKeyTag::fairplay(&self.key_uri()?),
            _ => HlsKeyTag::aes128(&self.key_uri()?, self.iv),
        })
    }
}

fn b64(text: &str) -> Base64Text {
    Base64Text::encode(text.as_bytes())
}

/// Fills one DRMSystem. `strict` decides between dropping (SPEKE 1.0) and
/// refusing (already checked) inapplicable children. `scratch` holds the
/// text of one signal before it is encoded.
fn fill_system(
    d: &mut DrmSystem,
    s: &mut Signals<'_>,
    strict: bool,
    scratch: &mut String,
) -> Result<(), SpekeError> {
    let kind = Some(s.kind);
    let keep = |c: Child| c.applies(kind, strict);
    if d.content_protection_data.is_some() {
        d.content_protection_data = if keep(Child::ContentProtectionData) {
            scratch.clear();
            s.content_protection_data(scratch)?;
            Some(Signal::encoded(b64(scratch)))
        } else {
            None
        };
    }
    if d.uri_ext_x_key.is_some() {
        d.uri_ext_x_key = if keep(Child::UriExtXKey) {
            Some(Signal::encoded(b64(&s.key_uri()?)))
        } else {
            None
        };
    }
    if !d.hls_signaling_data.is_empty() {
        if keep(Child::HlsSignalingData) {
            let tag = s.hls_tag()?;
            for sig in &mut d.hls_signaling_data {
                let line_tag = match sig.playlist() {
                    Some("master") | Some("multiVariant") => hls::SESSION_TAG,
                    _ => hls::MEDIA_TAG,
                };
                scratch.clear();
                tag.push_line(line_tag, scratch);
                sig.set_encoded(b64(scratch));
            }
        } else {
            d.hls_signaling_data.clear();
        }
    }
    // After the content protection data and the HLS lines, which also use
    // the box: its base64 moves into the PSSH signal.
    if d.pssh.is_some() {
        d.pssh = match keep(Child::Pssh) {
            true => Some(Signal::encoded(s.take_pssh_base64()?)),
            false => None,
        };
    }
    if d.smooth_streaming.is_some() {
        d.smooth_streaming = if keep(Child::SmoothStreaming) {
            Some(Signal::encoded(s.pro()?.1.clone()))
        } else {
            None
        };
    }
    if d.hds_signaling_data.is_some() && !keep(Child::HdsSignalingData) {
        d.hds_signaling_data = None;
    }
    let mut extensions = std::mem::take(&mut d.extensions);
    let mut result = Ok(());
    extensions.retain_mut(|e| {
        let Some(c) = Child::of_speke_element(e) else {
            return true;
        };
        if !keep(c) {
            return false;
        }
        let value = match c {
            Child::KeyFormat => Ok(b64(s.key_format()).into_string()),
            Child::KeyFormatVersions => Ok(b64("1").into_string()),
            _ => s.pro().map(|p| p.1.as_str().to_owned()),
        };
        match value {
            Ok(v) => e.set_text(v),
            Err(err) => result = Err(err),
        }
        true
    });
    d.extensions = extensions;
    result
}

/// Removes every fillable child (a system cpixd has no signalling for).
fn drop_placeholders(d: &mut DrmSystem) {
    d.pssh = None;
    d.content_protection_data = None;
    d.uri_ext_x_key = None;
    d.hls_signaling_data.clear();
    d.smooth_streaming = None;
    d.hds_signaling_data = None;
    d.extensions
        .retain(|e| Child::of_speke_element(e).is_none());
}

/// The keys a request needs, in document order. SPEKE 2 requests that ask
/// for something cpixd cannot produce are refused here, before any key
/// exists.
pub(super) fn key_requests(req: &SpekeRequest) -> Result<Vec<KeyRequest>, SpekeError> {
    if req.version.refuses_unfillable() {
        check_requested_children(req)?;
    }
    let fairplay_kids: SortedSet<KeyId> = req
        .doc
        .systems()
        .iter()
        .filter(|d| DrmKind::from_system_id(d.system_id) == Some(DrmKind::FairPlay))
        .map(|d| d.kid)
        .collect();
    let requests: Vec<KeyRequest> = req
        .doc
        .keys()
        .iter()
        .map(|k| {
            let request_iv = k.explicit_iv().and_then(super::decode_iv);
            KeyRequest {
                kid: k.kid,
                scheme: super::key_scheme(k, req.version).or(req.scheme),
                request_iv,
                wants_iv: request_iv.is_none() && fairplay_kids.contains(&k.kid),
            }
        })
        .collect();
    Ok(requests)
}

/// Fills the document with the keys handed out for `requests`.
pub(super) fn fill_with(
    req: &mut SpekeRequest,
    requests: &[KeyRequest],
    issued: &[IssuedKey],
    ctx: &FillContext<'_>,
) -> Result<(), SpekeError> {
    let v2 = req.version.is_v2();
    let strict = req.version.refuses_unfillable();
    let same =
        issued.len() == requests.len() && issued.iter().zip(requests).all(|(i, r)| i.kid == r.kid);
    if !same {
        return Err(SpekeError::Keys(super::KeySourceError::Unavailable(
            "the key source answered for other KIDs than asked".into(),
        )));
    }
    // Per KID: the key, its effective IV and its scheme.
    type PerKey<'k> = (&'k IssuedKey, Option<[u8; 16]>, Option<Scheme>);
    let mut per_key: Vec<(KeyId, PerKey<'_>)> = Vec::with_capacity(issued.len());
    let doc = &mut req.doc;
    if let Some(list) = doc.content_keys.as_mut() {
        for (k, (issued_key, r)) in list
            .items
            .iter_mut()
            .zip(issued.iter().zip(requests.iter()))
        {
            k.data = Some(KeyData {
                value: Some(SecretValue::Plain(SecretBytes::new(
                    issued_key.key.expose().to_vec(),
                ))),
                value_mac: None,
            });
            let iv = r
                .request_iv
                .or(if r.wants_iv { issued_key.iv } else { None });
            if r.request_iv.is_none() {
                if let Some(iv) = iv {
                    set_attr(&mut k.attributes, "explicitIV", b64::encode(&iv));
                }
            }
            per_key.push((k.kid, (issued_key, iv, r.scheme)));
        }
    }
    let by_kid: SortedMap<KeyId, PerKey<'_>> = per_key.into_iter().collect();
    let content_id = req.content_id.as_str();
    let mut scratch = String::new();
    if let Some(list) = doc.drm_systems.as_mut() {
        for d in &mut list.items {
            let Some(&(issued_key, iv, scheme)) = by_kid.get(&d.kid) else {
                continue; // references were validated; unreachable in practice
            };
            let Some(kind) = DrmKind::from_system_id(d.system_id) else {
                // Irdeto: key only. SPEKE 2 refused requested children
                // earlier; SPEKE 1.0 drops the placeholders.
                drop_placeholders(d);
                continue;
            };
            let mut signals = Signals {
                kind,
                kid: d.kid,
                key: &issued_key.key,
                iv,
                scheme,
                content_id,
                settings: ctx.settings,
                pro: None,
                pssh: None,
            };
            fill_system(d, &mut signals, strict, &mut scratch)?;
        }
    }
    if v2 {
        remove_attr(&mut doc.attributes, "id");
    }
    if !req.recipients.is_empty() {
        crate::delivery::encrypt_document(&mut req.doc, &req.recipients, ctx.mac_layout, ctx.rng)?;
    }
    Ok(())
}
