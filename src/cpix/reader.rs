//! Maps a parsed XML tree onto the CPIX model, checking structure as it goes
//! (required attributes, UUIDs, singleton children, HLS playlist rules).
//! Children are matched by namespace URI and local name, in any order, so
//! SPEKE 1.0 requests that put `speke:` elements before `PSSH` are accepted.
//! Periods and usage rules are kept verbatim here; `validate::views` types them.

use super::model::*;
use super::xml::{Attribute, Element, Node, Ns};
use super::{decode_base64, CpixError};
use crate::ids::{KeyId, SystemId};
use std::fmt::{self, Display};

/// `List/Item[n]`, formatted only when an error needs it.
struct ItemPath<'a> {
    list: &'a str,
    item: &'a str,
    index: usize,
}

impl Display for ItemPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}[{}]", self.list, self.item, self.index)
    }
}

fn take_elements(children: Vec<Node>) -> impl Iterator<Item = Element> {
    children.into_iter().filter_map(|n| match n {
        Node::Element(e) => Some(e),
        Node::Text(_) => None,
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Removes the unqualified attribute `name` from `attrs` and returns its value.
fn take_attr(attrs: &mut Vec<Attribute>, name: &str) -> Option<String> {
    let i = attrs
        .iter()
        .position(|a| a.ns == Ns::None && a.local == name)?;
    Some(attrs.remove(i).value)
}

fn required_uuid<T>(
    attrs: &mut Vec<Attribute>,
    name: &'static str,
    path: &dyn Display,
    parse: fn(&str) -> Result<T, crate::ids::IdError>,
) -> Result<T, CpixError> {
    let v = take_attr(attrs, name).ok_or_else(|| CpixError::MissingAttribute {
        element: path.to_string(),
        attribute: name,
    })?;
    parse(&v).map_err(|_| CpixError::InvalidAttribute {
        element: path.to_string(),
        attribute: name.to_owned(),
        value: truncate(&v),
        reason: "not a UUID".to_owned(),
    })
}

/// A required `@kid` (hyphenated UUID) and, when it is not written in the
/// lowercase form, its spelling, so that the response can echo it.
fn required_kid(
    attrs: &mut Vec<Attribute>,
    path: &dyn Display,
) -> Result<(KeyId, Option<String>), CpixError> {
    let v = take_attr(attrs, "kid").ok_or_else(|| CpixError::MissingAttribute {
        element: path.to_string(),
        attribute: "kid",
    })?;
    let kid = KeyId::parse_hyphenated(&v).map_err(|_| CpixError::InvalidAttribute {
        element: path.to_string(),
        attribute: "kid".to_owned(),
        value: truncate(&v),
        reason: "not a UUID".to_owned(),
    })?;
    // A parsed KID differs from its lowercase text only by its letters'
    // case (and surrounding whitespace, which is not kept).
    let t = v.trim();
    // A fold rather than `any`: no early exit, so the 36 bytes are
    // tested together.
    let spelling = t
        .bytes()
        .fold(false, |upper, b| upper | b.is_ascii_uppercase())
        .then(|| t.to_owned());
    Ok((kid, spelling))
}

fn no_child_elements(e: &Element, path: &dyn Display) -> Result<(), CpixError> {
    if e.elements().next().is_some() {
        return Err(CpixError::InvalidContent {
            element: path.to_string(),
            reason: "must hold text only".to_owned(),
        });
    }
    Ok(())
}

fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    path: &dyn Display,
    name: &str,
) -> Result<(), CpixError> {
    if slot.is_some() {
        return Err(CpixError::Duplicate {
            element: path.to_string(),
            what: name.to_owned(),
        });
    }
    *slot = Some(value);
    Ok(())
}

/// Reads a `*List` element whose items are `item` elements.
fn read_list<T>(
    list: Element,
    item: &str,
    mut read: impl FnMut(Element, &dyn Display) -> Result<T, CpixError>,
) -> Result<List<T>, CpixError> {
    let Element {
        local: list_name,
        attributes,
        children,
        ..
    } = list;
    let mut items = Vec::with_capacity(children.len());
    for (i, e) in take_elements(children).enumerate() {
        let path = ItemPath {
            list: &list_name,
            item,
            index: i + 1,
        };
        if !e.is(&Ns::Cpix, item) {
            return Err(CpixError::InvalidContent {
                element: format!("{list_name}/{}[{}]", e.local, i + 1),
                reason: format!("unexpected element in {list_name}"),
            });
        }
        items.push(read(e, &path)?);
    }
    Ok(List { attributes, items })
}

fn read_signal(mut e: Element, path: &dyn Display) -> Result<Signal, CpixError> {
    no_child_elements(&e, path)?;
    let attributes = std::mem::take(&mut e.attributes);
    Ok(Signal::with_attributes(attributes, e.into_text()))
}

fn read_base64(e: &Element, path: &dyn Display) -> Result<Vec<u8>, CpixError> {
    no_child_elements(e, path)?;
    decode_base64(&e.text()).ok_or_else(|| CpixError::InvalidContent {
        element: path.to_string(),
        reason: "not valid base64".to_owned(),
    })
}

fn read_encrypted_value(e: Element, path: &dyn Display) -> Result<EncryptedValue, CpixError> {
    let mut algorithm = None;
    let mut cipher_value = None;
    for c in e.elements() {
        if c.is(&Ns::Enc, "EncryptionMethod") {
            algorithm = c.attr("Algorithm").map(str::to_owned);
        } else if c.is(&Ns::Enc, "CipherData") {
            if let Some(cv) = c.child(&Ns::Enc, "CipherValue") {
                cipher_value = Some(read_base64(
                    cv,
                    &format_args!("{path}/CipherData/CipherValue"),
                )?);
            }
        }
    }
    Ok(EncryptedValue {
        algorithm,
        cipher_value: cipher_value.ok_or_else(|| CpixError::InvalidContent {
            element: path.to_string(),
            reason: "EncryptedValue without CipherData/CipherValue".to_owned(),
        })?,
    })
}

/// Reads `cpix:Data` (or any element holding a `pskc:Secret`).
pub(super) fn read_key_data(data: Element, path: &dyn Display) -> Result<KeyData, CpixError> {
    let mut out = KeyData {
        value: None,
        value_mac: None,
    };
    let mut secret_seen = false;
    for secret in take_elements(data.children) {
        if !secret.is(&Ns::Pskc, "Secret") {
            continue;
        }
        let spath = format_args!("{path}/Secret");
        if secret_seen {
            return Err(CpixError::Duplicate {
                element: path.to_string(),
                what: "Secret".to_owned(),
            });
        }
        secret_seen = true;
        for c in take_elements(secret.children) {
            if c.is(&Ns::Pskc, "PlainValue") {
                let bytes = read_base64(&c, &format_args!("{spath}/PlainValue"))?;
                set_once(
                    &mut out.value,
                    SecretValue::Plain(SecretBytes::new(bytes)),
                    &spath,
                    "PlainValue/EncryptedValue",
                )?;
            } else if c.is(&Ns::Pskc, "EncryptedValue") {
                let ev = read_encrypted_value(c, &format_args!("{spath}/EncryptedValue"))?;
                set_once(
                    &mut out.value,
                    SecretValue::Encrypted(ev),
                    &spath,
                    "PlainValue/EncryptedValue",
                )?;
            } else if c.is(&Ns::Pskc, "ValueMAC") {
                let mac = read_base64(&c, &format_args!("{spath}/ValueMAC"))?;
                set_once(&mut out.value_mac, mac, &spath, "ValueMAC")?;
            }
        }
    }
    Ok(out)
}

fn read_content_key(e: Element, path: &dyn Display) -> Result<ContentKey, CpixError> {
    let Element {
        mut attributes,
        children,
        ..
    } = e;
    let (kid, kid_text) = required_kid(&mut attributes, path)?;
    let mut key = ContentKey {
        kid,
        kid_text,
        attributes,
        leading: Vec::new(),
        data: None,
        trailing: Vec::new(),
    };
    let mut data_seen = false;
    for c in take_elements(children) {
        if c.is(&Ns::Cpix, "Data") {
            let data = read_key_data(c, &format_args!("{path}/Data"))?;
            set_once(&mut key.data, data, path, "Data")?;
            data_seen = true;
        } else if data_seen {
            key.trailing.push(c);
        } else {
            key.leading.push(c);
        }
    }
    Ok(key)
}

fn read_drm_system(e: Element, path: &dyn Display) -> Result<DrmSystem, CpixError> {
    let Element {
        mut attributes,
        children,
        ..
    } = e;
    let (kid, kid_text) = required_kid(&mut attributes, path)?;
    let system_id = required_uuid(&mut attributes, "systemId", path, SystemId::parse_uuid)?;
    let mut d = DrmSystem::new(kid, system_id);
    d.kid_text = kid_text;
    d.attributes = attributes;
    for c in take_elements(children) {
        if c.ns != Ns::Cpix {
            d.extensions.push(c);
            continue;
        }
        // The name is matched once; the slot and the name in errors follow.
        let (name, slot) = match c.local.as_ref() {
            "PSSH" => ("PSSH", Some(&mut d.pssh)),
            "ContentProtectionData" => (
                "ContentProtectionData",
                Some(&mut d.content_protection_data),
            ),
            "URIExtXKey" => ("URIExtXKey", Some(&mut d.uri_ext_x_key)),
            "HLSSignalingData" => ("HLSSignalingData", None),
            "SmoothStreamingProtectionHeaderData" => (
                "SmoothStreamingProtectionHeaderData",
                Some(&mut d.smooth_streaming),
            ),
            "HDSSignalingData" => ("HDSSignalingData", Some(&mut d.hds_signaling_data)),
            _ => {
                d.extensions.push(c);
                continue;
            }
        };
        let signal = read_signal(c, &format_args!("{path}/{name}"))?;
        match slot {
            Some(slot) => set_once(slot, signal, path, name)?,
            None => d.hls_signaling_data.push(signal),
        }
    }
    check_hls_playlists(&d, path)?;
    Ok(d)
}

/// At most two `HLSSignalingData`, distinct `@playlist` values; one without
/// `@playlist` must be the only one.
fn check_hls_playlists(d: &DrmSystem, path: &dyn Display) -> Result<(), CpixError> {
    let hls = &d.hls_signaling_data;
    let err = |reason: &str| CpixError::InvalidContent {
        element: format!("{path}/HLSSignalingData"),
        reason: reason.to_owned(),
    };
    if hls.len() > 2 {
        return Err(err("more than two HLSSignalingData"));
    }
    if hls.len() == 2 {
        match (hls[0].playlist(), hls[1].playlist()) {
            (Some(a), Some(b)) if a == b => {
                return Err(err(&format!("playlist {a:?} appears twice")))
            }
            (None, _) | (_, None) => {
                return Err(err(
                    "an HLSSignalingData without @playlist must be the only one",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_delivery_data(e: Element, path: &dyn Display) -> Result<DeliveryData, CpixError> {
    let Element {
        attributes,
        children,
        ..
    } = e;
    let mut delivery_key = None;
    let mut document_keys = Vec::new();
    let mut mac_method = None;
    let mut other = Vec::new();
    for c in take_elements(children) {
        match (&c.ns, c.local.as_ref()) {
            (Ns::Cpix, "DeliveryKey") => set_once(&mut delivery_key, c, path, "DeliveryKey")?,
            (Ns::Cpix, "DocumentKey") => document_keys.push(c),
            (Ns::Cpix, "MACMethod") => set_once(&mut mac_method, c, path, "MACMethod")?,
            _ => other.push(c),
        }
    }
    Ok(DeliveryData {
        attributes,
        delivery_key: delivery_key.ok_or_else(|| CpixError::InvalidContent {
            element: path.to_string(),
            reason: "DeliveryData without DeliveryKey".to_owned(),
        })?,
        document_keys,
        mac_method,
        other,
    })
}

/// Builds the model from the root element of a parsed document.
pub fn read(root: Element) -> Result<Document, CpixError> {
    if !root.is(&Ns::Cpix, "CPIX") {
        return Err(CpixError::NotCpix {
            found: format!("{{{}}}{}", root.ns.uri(), root.local),
        });
    }
    let Element {
        attributes,
        children,
        ..
    } = root;
    let mut doc = Document {
        attributes,
        ..Document::default()
    };
    for c in take_elements(children) {
        let name = c.local.clone();
        match (&c.ns, name.as_ref()) {
            (Ns::Cpix, "DeliveryDataList") => {
                let l = read_list(c, "DeliveryData", read_delivery_data)?;
                set_once(&mut doc.delivery_data, l, &"CPIX", &name)?
            }
            (Ns::Cpix, "ContentKeyList") => {
                let l = read_list(c, "ContentKey", read_content_key)?;
                set_once(&mut doc.content_keys, l, &"CPIX", &name)?
            }
            (Ns::Cpix, "DRMSystemList") => {
                let l = read_list(c, "DRMSystem", read_drm_system)?;
                set_once(&mut doc.drm_systems, l, &"CPIX", &name)?
            }
            (Ns::Cpix, "ContentKeyPeriodList") => {
                let l = read_list(c, "ContentKeyPeriod", |e, _| Ok(ContentKeyPeriod(e)))?;
                set_once(&mut doc.periods, l, &"CPIX", &name)?
            }
            (Ns::Cpix, "ContentKeyUsageRuleList") => {
                let l = read_list(c, "ContentKeyUsageRule", |e, _| Ok(UsageRule(e)))?;
                set_once(&mut doc.usage_rules, l, &"CPIX", &name)?
            }
            (Ns::Cpix, "UpdateHistoryItemList") => {
                set_once(&mut doc.update_history, c, &"CPIX", &name)?
            }
            (Ns::Ds, "Signature") => doc.signatures.push(c),
            (Ns::Cpix, _) => {
                return Err(CpixError::InvalidContent {
                    element: format!("CPIX/{name}"),
                    reason: "unknown CPIX element".to_owned(),
                })
            }
            _ => doc.extensions.push(c),
        }
    }
    Ok(doc)
}
