//! A response checker written against the specs (not against our writer):
//! every filled SPEKE/CPIX response the tests produce goes through it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cpixd::cpix::{self, xml::Ns, Document};
use cpixd::crypto::ContentKey;
use cpixd::drm::{hls, playready, pssh::PsshBox, widevine::WidevinePsshData};
use cpixd::ids::{KeyId, SystemId};
use std::collections::HashMap;

fn b64(s: &str) -> Vec<u8> {
    STANDARD
        .decode(s.trim())
        .unwrap_or_else(|e| panic!("not base64 ({e}): {s:.60}"))
}

fn text(s: &str) -> String {
    String::from_utf8(b64(s)).expect("UTF-8")
}

fn attrs(line: &str) -> (bool, HashMap<String, String>) {
    let (session, list) = hls::parse_tag(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    (session, list.into_iter().collect())
}

/// Problems found in a response, empty when it is correct.
pub fn problems(doc: &Document, v2: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut keys: HashMap<KeyId, ContentKey> = HashMap::new();
    for k in doc.keys() {
        match k.plain_value() {
            Some(v) if v.len() == 16 => {
                keys.insert(k.kid, ContentKey::from_slice(v).unwrap());
            }
            Some(v) => out.push(format!("key {}: PlainValue is {} bytes", k.kid, v.len())),
            None => out.push(format!("key {}: no PlainValue", k.kid)),
        }
        if let Some(iv) = k.explicit_iv() {
            let iv = cpix::decode_base64(iv).unwrap_or_default();
            if iv.len() != 16 {
                out.push(format!("key {}: explicitIV is {} bytes", k.kid, iv.len()));
            } else if k.plain_value() == Some(&iv[..]) {
                out.push(format!("key {}: explicitIV equals the key", k.kid));
            }
        }
    }
    if v2 {
        if doc.id().is_some() {
            out.push("v2 response has CPIX@id".into());
        }
        let mut speke = false;
        for d in doc.systems() {
            speke |= d.extensions.iter().any(|e| e.ns == Ns::Speke) || d.uri_ext_x_key.is_some();
        }
        if speke {
            out.push("v2 response carries SPEKE 1.0 elements".into());
        }
    }
    for d in doc.systems() {
        let who = format!("DRMSystem {} / {}", d.system_id, d.kid);
        let Some(key) = keys.get(&d.kid) else {
            out.push(format!("{who}: no key"));
            continue;
        };
        let mut pssh_b64 = None;
        if let Some(p) = &d.pssh {
            match PsshBox::parse(&b64(p.value())) {
                Ok(bx) => {
                    // A CPIX client checks the box against the DRMSystem.
                    if bx.system_id != d.system_id {
                        out.push(format!("{who}: PSSH system {}", bx.system_id));
                    }
                    let listed = match d.system_id {
                        SystemId::WIDEVINE => WidevinePsshData::decode(&bx.data)
                            .map(|w| w.key_ids)
                            .unwrap_or_default(),
                        SystemId::PLAYREADY => pro_kids(&bx.data, key, &who, &mut out),
                        _ => bx.key_ids.clone(),
                    };
                    if !listed.contains(&d.kid) {
                        out.push(format!("{who}: PSSH does not name the KID"));
                    }
                }
                Err(e) => out.push(format!("{who}: PSSH {e}")),
            }
            pssh_b64 = Some(p.value().trim().to_owned());
        }
        if let Some(c) = &d.content_protection_data {
            let xml = text(c.value());
            let wrapped = format!("<w>{xml}</w>");
            match cpix::xml::parse_document(wrapped.as_bytes(), &Default::default()) {
                Ok(root) => {
                    let cenc = Ns::from_uri("urn:mpeg:cenc:2013");
                    if let (Some(p), Some(e)) = (&pssh_b64, root.child(&cenc, "pssh")) {
                        if e.text().trim() != p {
                            out.push(format!("{who}: cenc:pssh differs from PSSH"));
                        }
                    }
                    if d.system_id == SystemId::PLAYREADY {
                        match root.child(&Ns::from_uri("urn:microsoft:playready"), "pro") {
                            Some(pro) => {
                                pro_kids(&b64(&pro.text()), key, &who, &mut out);
                            }
                            None => out.push(format!("{who}: CPD without mspr:pro")),
                        }
                    }
                }
                Err(e) => out.push(format!("{who}: CPD is not well-formed: {e}")),
            }
            if d.system_id == SystemId::FAIRPLAY {
                out.push(format!("{who}: FairPlay with ContentProtectionData"));
            }
        }
        if let Some(s) = &d.smooth_streaming {
            pro_kids(&b64(s.value()), key, &who, &mut out);
        }
        check_hls(d, &who, pssh_b64.as_deref(), &mut out);
    }
    out
}

fn pro_kids(pro: &[u8], key: &ContentKey, who: &str, out: &mut Vec<String>) -> Vec<KeyId> {
    let header = playready::object_header_xml(pro)
        .ok()
        .and_then(|xml| playready::PlayReadyHeader::parse_xml(&xml).ok());
    let Some(h) = header else {
        out.push(format!("{who}: PlayReady object does not parse"));
        return Vec::new();
    };
    for k in &h.kids {
        if let Some(c) = k.checksum {
            if c != playready::checksum(k.kid, key) {
                out.push(format!("{who}: PlayReady CHECKSUM does not verify"));
            }
        }
    }
    h.kids.iter().map(|k| k.kid).collect()
}

fn check_hls(d: &cpix::DrmSystem, who: &str, pssh: Option<&str>, out: &mut Vec<String>) {
    let mut lines = HashMap::new();
    for s in &d.hls_signaling_data {
        let line = text(s.value());
        let (session, a) = attrs(&line);
        // CPIX 2.4 calls the master playlist "multiVariant".
        let playlist = match s.playlist() {
            Some("multiVariant") => "master",
            other => other.unwrap_or("media"),
        };
        if session != (playlist == "master") {
            out.push(format!("{who}: {playlist} playlist has the wrong tag"));
        }
        if a.get("METHOD").map(String::as_str) == Some("NONE") || a.contains_key("SCHEME") {
            out.push(format!("{who}: bad METHOD or SCHEME"));
        }
        let format = match d.system_id {
            SystemId::WIDEVINE => "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
            SystemId::PLAYREADY => "com.microsoft.playready",
            SystemId::FAIRPLAY => "com.apple.streamingkeydelivery",
            _ => "identity",
        };
        if a.get("KEYFORMAT").map(String::as_str) != Some(format) {
            out.push(format!("{who}: KEYFORMAT {:?}", a.get("KEYFORMAT")));
        }
        if let (SystemId::WIDEVINE, Some(p)) = (d.system_id, pssh) {
            if a.get("URI").map(String::as_str) != Some(&format!("data:text/plain;base64,{p}")) {
                out.push(format!("{who}: Widevine HLS URI is not the PSSH"));
            }
        }
        lines.insert(playlist.to_owned(), a);
    }
    if let (Some(m), Some(s)) = (lines.get("media"), lines.get("master")) {
        for attr in ["METHOD", "KEYFORMAT", "KEYFORMATVERSIONS", "URI"] {
            if m.get(attr) != s.get(attr) {
                out.push(format!("{who}: {attr} differs between media and master"));
            }
        }
    }
}
