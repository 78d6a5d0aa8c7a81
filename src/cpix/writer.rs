//! Serialises the CPIX model: schema order at every level, one set of
//! namespace declarations on the root (`cpix`, `pskc`, and whichever other
//! namespaces the document uses), verbatim elements written back as read.

use super::model::*;
use super::xml::{escape_attr_into, escape_text_into, Attribute, Element, Node, Ns};
use crate::b64;
use crate::ids::KeyId;

/// How to lay out the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Indent nested elements by this many spaces; `None` writes one line.
    pub indent: Option<usize>,
    /// Start with `<?xml version="1.0" encoding="UTF-8"?>`.
    pub xml_declaration: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            indent: Some(2),
            xml_declaration: true,
        }
    }
}

/// Namespace → prefix bindings declared on the root, each prefix kept with
/// its colon (`cpix:`), as names are written.
struct Prefixes(Vec<(Ns, String)>);

impl Prefixes {
    /// `prefix:` for `ns`.
    fn qualifier(&self, ns: &Ns) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == ns)
            .map(|(_, p)| p.as_str())
    }

    /// The prefix and namespace of each binding.
    fn bindings(&self) -> impl Iterator<Item = (&str, &Ns)> {
        self.0
            .iter()
            .map(|(ns, q)| (q.strip_suffix(':').unwrap_or(q), ns))
    }

    fn bind(&mut self, ns: &Ns, hint: Option<&str>) {
        if matches!(ns, Ns::None | Ns::Xml) || self.qualifier(ns).is_some() {
            return;
        }
        let taken = |p: &str, list: &Prefixes| list.bindings().any(|(q, _)| q == p);
        let prefix = match ns.preferred_prefix().or(hint) {
            Some(p)
                if !taken(p, self) && !p.eq_ignore_ascii_case("xml") && !p.starts_with("xmlns") =>
            {
                p.to_owned()
            }
            _ => (1..)
                .map(|i| format!("ns{i}"))
                .find(|p| !taken(p, self))
                .unwrap_or_default(),
        };
        self.0.push((ns.clone(), prefix + ":"));
    }

    fn bind_element(&mut self, e: &Element) {
        e.walk(&mut |el| {
            self.bind(&el.ns, el.prefix.as_deref());
            for a in &el.attributes {
                self.bind(&a.ns, a.prefix.as_deref());
            }
        });
    }

    fn bind_attrs(&mut self, attrs: &[Attribute]) {
        for a in attrs {
            self.bind(&a.ns, a.prefix.as_deref());
        }
    }

    /// Collects every namespace the document needs, `cpix` and `pskc` first.
    fn for_document(doc: &Document) -> Prefixes {
        let mut p = Prefixes(Vec::with_capacity(6));
        p.bind(&Ns::Cpix, None);
        p.bind(&Ns::Pskc, None);
        p.bind_attrs(&doc.attributes);
        let list_attrs = [
            doc.delivery_data.as_ref().map(|l| &l.attributes),
            doc.content_keys.as_ref().map(|l| &l.attributes),
            doc.drm_systems.as_ref().map(|l| &l.attributes),
            doc.periods.as_ref().map(|l| &l.attributes),
            doc.usage_rules.as_ref().map(|l| &l.attributes),
        ];
        list_attrs
            .into_iter()
            .flatten()
            .for_each(|a| p.bind_attrs(a));
        for dd in doc.recipients() {
            p.bind_attrs(&dd.attributes);
            p.bind_element(&dd.delivery_key);
            dd.document_keys.iter().for_each(|e| p.bind_element(e));
            dd.mac_method.iter().for_each(|e| p.bind_element(e));
            dd.other.iter().for_each(|e| p.bind_element(e));
        }
        for k in doc.keys() {
            p.bind_attrs(&k.attributes);
            k.leading.iter().for_each(|e| p.bind_element(e));
            k.trailing.iter().for_each(|e| p.bind_element(e));
            if let Some(SecretValue::Encrypted(_)) = k.data.as_ref().and_then(|d| d.value.as_ref())
            {
                p.bind(&Ns::Enc, None);
            }
        }
        for d in doc.systems() {
            p.bind_attrs(&d.attributes);
            let signals = [
                &d.pssh,
                &d.content_protection_data,
                &d.uri_ext_x_key,
                &d.smooth_streaming,
                &d.hds_signaling_data,
            ];
            signals
                .into_iter()
                .flatten()
                .chain(&d.hls_signaling_data)
                .for_each(|s| p.bind_attrs(&s.attributes));
            d.extensions.iter().for_each(|e| p.bind_element(e));
        }
        doc.period_items().iter().for_each(|e| p.bind_element(&e.0));
        doc.rules().iter().for_each(|e| p.bind_element(&e.0));
        doc.update_history.iter().for_each(|e| p.bind_element(e));
        doc.signatures.iter().for_each(|e| p.bind_element(e));
        doc.extensions.iter().for_each(|e| p.bind_element(e));
        p
    }
}

struct Out<'p> {
    s: String,
    indent: Option<usize>,
    depth: usize,
    prefixes: &'p Prefixes,
}

impl Out<'_> {
    fn newline(&mut self) {
        const SPACES: &str = "\n                                ";
        if let Some(n) = self.indent {
            let mut width = n * self.depth;
            let first = width.min(SPACES.len() - 1);
            self.s.push_str(&SPACES[..1 + first]);
            width -= first;
            while width > 0 {
                let more = width.min(SPACES.len() - 1);
                self.s.push_str(&SPACES[1..1 + more]);
                width -= more;
            }
        }
    }

    fn name(&mut self, ns: &Ns, local: &str) {
        if let Some(q) = self.prefixes.qualifier(ns) {
            self.s.push_str(q);
        } else if *ns == Ns::Xml {
            self.s.push_str("xml:");
        }
        self.s.push_str(local);
    }

    fn attr(&mut self, ns: &Ns, local: &str, value: &str) {
        self.s.push(' ');
        self.name(ns, local);
        self.s.push_str("=\"");
        escape_attr_into(value, &mut self.s);
        self.s.push('"');
    }

    /// `kid="…"`: the source spelling while it still names `kid` (SPEKE
    /// wants the KID back as the request wrote it), else the lowercase form.
    fn kid(&mut self, kid: &KeyId, spelling: Option<&str>) {
        match spelling.filter(|t| KeyId::parse_hyphenated(t).ok() == Some(*kid)) {
            Some(t) => self.attr(&Ns::None, "kid", t),
            None => self.uuid_attr("kid", kid.uuid_text().as_str()),
        }
    }

    /// An unqualified attribute holding UUID text this crate wrote (hex
    /// digits and hyphens: nothing to escape).
    fn uuid_attr(&mut self, local: &str, uuid: &str) {
        self.s.push(' ');
        self.s.push_str(local);
        self.s.push_str("=\"");
        self.s.push_str(uuid);
        self.s.push('"');
    }

    fn attrs(&mut self, attrs: &[Attribute]) {
        for a in attrs {
            self.attr(&a.ns, &a.local, &a.value);
        }
    }

    /// Writes `<name attrs` on a new line; the caller closes the tag.
    fn open(&mut self, ns: &Ns, local: &str) {
        if self.depth > 0 || !self.s.is_empty() {
            self.newline();
        }
        self.s.push('<');
        self.name(ns, local);
    }

    /// Closes the start tag of an element that will have element children.
    fn begin_children(&mut self) {
        self.s.push('>');
        self.depth += 1;
    }

    fn end_children(&mut self, ns: &Ns, local: &str) {
        self.depth -= 1;
        self.newline();
        self.s.push_str("</");
        self.name(ns, local);
        self.s.push('>');
    }

    /// Finishes an open start tag as a text-only element (self-closing when empty).
    fn finish_text(&mut self, ns: &Ns, local: &str, text: &str) {
        self.finish(ns, local, text, true);
    }

    /// [`Out::finish_text`], with the escape scan only when `escape`.
    fn finish(&mut self, ns: &Ns, local: &str, text: &str, escape: bool) {
        if text.is_empty() {
            self.s.push_str("/>");
        } else {
            self.s.push('>');
            if escape {
                escape_text_into(text, &mut self.s);
            } else {
                self.s.push_str(text);
            }
            self.s.push_str("</");
            self.name(ns, local);
            self.s.push('>');
        }
    }

    fn leaf(&mut self, ns: &Ns, local: &str, attrs: &[Attribute], text: &str) {
        self.open(ns, local);
        self.attrs(attrs);
        self.finish_text(ns, local, text);
    }

    /// Writes a verbatim element. Mixed content is written without added
    /// whitespace so its text stays exact.
    fn element(&mut self, e: &Element) {
        self.open(&e.ns, &e.local);
        self.attrs(&e.attributes);
        let has_elements = e.children.iter().any(|n| matches!(n, Node::Element(_)));
        let has_text = e.children.iter().any(|n| matches!(n, Node::Text(_)));
        if !has_elements {
            self.finish_text(&e.ns, &e.local, &e.text());
        } else if has_text {
            let saved = self.indent.take();
            self.s.push('>');
            for n in &e.children {
                match n {
                    Node::Element(c) => self.element(c),
                    Node::Text(t) => escape_text_into(t, &mut self.s),
                }
            }
            self.s.push_str("</");
            self.name(&e.ns, &e.local);
            self.s.push('>');
            self.indent = saved;
        } else {
            self.begin_children();
            for c in e.elements() {
                self.element(c);
            }
            self.end_children(&e.ns, &e.local);
        }
    }

    fn list<T>(&mut self, local: &str, list: &List<T>, mut item: impl FnMut(&mut Self, &T)) {
        self.open(&Ns::Cpix, local);
        self.attrs(&list.attributes);
        if list.items.is_empty() {
            self.s.push_str("/>");
            return;
        }
        self.begin_children();
        for i in &list.items {
            item(self, i);
        }
        self.end_children(&Ns::Cpix, local);
    }

    fn key_data(&mut self, data: &KeyData) {
        self.open(&Ns::Cpix, "Data");
        self.begin_children();
        self.open(&Ns::Pskc, "Secret");
        self.begin_children();
        match &data.value {
            Some(SecretValue::Plain(bytes)) => {
                self.open(&Ns::Pskc, "PlainValue");
                self.s.push('>');
                b64::encode_into(bytes.expose(), &mut self.s);
                self.s.push_str("</");
                self.name(&Ns::Pskc, "PlainValue");
                self.s.push('>');
            }
            Some(SecretValue::Encrypted(ev)) => {
                self.open(&Ns::Pskc, "EncryptedValue");
                self.begin_children();
                if let Some(alg) = &ev.algorithm {
                    self.open(&Ns::Enc, "EncryptionMethod");
                    self.attr(&Ns::None, "Algorithm", alg);
                    self.s.push_str("/>");
                }
                self.open(&Ns::Enc, "CipherData");
                self.begin_children();
                self.leaf(&Ns::Enc, "CipherValue", &[], &b64::encode(&ev.cipher_value));
                self.end_children(&Ns::Enc, "CipherData");
                self.end_children(&Ns::Pskc, "EncryptedValue");
            }
            None => {}
        }
        if let Some(mac) = &data.value_mac {
            self.leaf(&Ns::Pskc, "ValueMAC", &[], &b64::encode(mac));
        }
        self.end_children(&Ns::Pskc, "Secret");
        self.end_children(&Ns::Cpix, "Data");
    }

    fn content_key(&mut self, k: &ContentKey) {
        self.open(&Ns::Cpix, "ContentKey");
        self.kid(&k.kid, k.kid_text.as_deref());
        self.attrs(&k.attributes);
        if k.leading.is_empty() && k.data.is_none() && k.trailing.is_empty() {
            self.s.push_str("/>");
            return;
        }
        self.begin_children();
        k.leading.iter().for_each(|e| self.element(e));
        if let Some(d) = &k.data {
            self.key_data(d);
        }
        k.trailing.iter().for_each(|e| self.element(e));
        self.end_children(&Ns::Cpix, "ContentKey");
    }

    /// A signal; base64 this crate encoded goes out without the escape
    /// scan (its alphabet has nothing to escape).
    fn signal(&mut self, local: &str, s: &Signal) {
        self.open(&Ns::Cpix, local);
        self.attrs(&s.attributes);
        self.finish(&Ns::Cpix, local, s.value(), !s.is_encoded());
    }

    fn drm_system(&mut self, d: &DrmSystem) {
        self.open(&Ns::Cpix, "DRMSystem");
        self.kid(&d.kid, d.kid_text.as_deref());
        self.uuid_attr("systemId", d.system_id.uuid_text().as_str());
        self.attrs(&d.attributes);
        let empty = d.pssh.is_none()
            && d.content_protection_data.is_none()
            && d.uri_ext_x_key.is_none()
            && d.hls_signaling_data.is_empty()
            && d.smooth_streaming.is_none()
            && d.hds_signaling_data.is_none()
            && d.extensions.is_empty();
        if empty {
            self.s.push_str("/>");
            return;
        }
        self.begin_children();
        if let Some(s) = &d.pssh {
            self.signal("PSSH", s);
        }
        if let Some(s) = &d.content_protection_data {
            self.signal("ContentProtectionData", s);
        }
        if let Some(s) = &d.uri_ext_x_key {
            self.signal("URIExtXKey", s);
        }
        for s in &d.hls_signaling_data {
            self.signal("HLSSignalingData", s);
        }
        if let Some(s) = &d.smooth_streaming {
            self.signal("SmoothStreamingProtectionHeaderData", s);
        }
        if let Some(s) = &d.hds_signaling_data {
            self.signal("HDSSignalingData", s);
        }
        d.extensions.iter().for_each(|e| self.element(e));
        self.end_children(&Ns::Cpix, "DRMSystem");
    }

    fn delivery_data(&mut self, dd: &DeliveryData) {
        self.open(&Ns::Cpix, "DeliveryData");
        self.attrs(&dd.attributes);
        self.begin_children();
        self.element(&dd.delivery_key);
        dd.document_keys.iter().for_each(|e| self.element(e));
        dd.mac_method.iter().for_each(|e| self.element(e));
        dd.other.iter().for_each(|e| self.element(e));
        self.end_children(&Ns::Cpix, "DeliveryData");
    }
}

/// Serialises `doc` as UTF-8 XML.
pub fn write(doc: &Document, opts: &WriteOptions) -> String {
    let prefixes = Prefixes::for_document(doc);
    let mut out = Out {
        s: String::with_capacity(estimate_size(doc)),
        indent: opts.indent,
        depth: 0,
        prefixes: &prefixes,
    };
    if opts.xml_declaration {
        out.s.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    }
    out.open(&Ns::Cpix, "CPIX");
    for (prefix, ns) in prefixes.bindings() {
        out.s.push_str(" xmlns:");
        out.s.push_str(prefix);
        out.s.push_str("=\"");
        escape_attr_into(ns.uri(), &mut out.s);
        out.s.push('"');
    }
    out.attrs(&doc.attributes);
    out.begin_children();
    if let Some(l) = &doc.delivery_data {
        out.list("DeliveryDataList", l, Out::delivery_data);
    }
    if let Some(l) = &doc.content_keys {
        out.list("ContentKeyList", l, Out::content_key);
    }
    if let Some(l) = &doc.drm_systems {
        out.list("DRMSystemList", l, Out::drm_system);
    }
    if let Some(l) = &doc.periods {
        out.list("ContentKeyPeriodList", l, |o, p| o.element(&p.0));
    }
    if let Some(l) = &doc.usage_rules {
        out.list("ContentKeyUsageRuleList", l, |o, r| o.element(&r.0));
    }
    if let Some(e) = &doc.update_history {
        out.element(e);
    }
    doc.signatures.iter().for_each(|e| out.element(e));
    doc.extensions.iter().for_each(|e| out.element(e));
    out.end_children(&Ns::Cpix, "CPIX");
    if opts.indent.is_some() {
        out.s.push('\n');
    }
    out.s
}

/// A generous guess of the output size, so the buffer is allocated once.
fn estimate_size(doc: &Document) -> usize {
    let signals: usize = doc
        .systems()
        .iter()
        .map(|d| {
            let len = |s: &Option<Signal>| s.as_ref().map_or(0, |s| s.value().len());
            256 + len(&d.pssh)
                + len(&d.content_protection_data)
                + len(&d.uri_ext_x_key)
                + len(&d.smooth_streaming)
                + d.hls_signaling_data
                    .iter()
                    .map(|s| s.value().len() + 64)
                    .sum::<usize>()
        })
        .sum();
    // An encrypted key adds its CipherData, ValueMAC and EncryptionMethod.
    let keys: usize = doc
        .keys()
        .iter()
        .map(|k| match k.data.as_ref().and_then(|d| d.value.as_ref()) {
            Some(SecretValue::Encrypted(v)) => 640 + v.cipher_value.len() * 4 / 3,
            _ => 320,
        })
        .sum();
    let recipients: usize = doc
        .recipients()
        .iter()
        .map(|d| {
            256 + d.delivery_key.size_hint()
                + d.document_keys
                    .iter()
                    .map(Element::size_hint)
                    .sum::<usize>()
                + d.mac_method.as_ref().map_or(0, Element::size_hint)
                + d.other.iter().map(Element::size_hint).sum::<usize>()
        })
        .sum();
    1024 + keys + recipients + signals + (doc.rules().len() + doc.period_items().len()) * 256
}

/// Recipient certificates for the tests below.
#[cfg(test)]
#[path = "../../tests/common/certs.rs"]
#[allow(dead_code)]
mod test_certs;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::Base64Text;
    use crate::cpix::Limits;
    use crate::crypto::SeededRandom;
    use crate::drm::DrmSettings;
    use crate::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
    use std::sync::Arc;

    use test_certs as certs;

    /// A KID goes back as the request spelt it; a spelling with whitespace
    /// around it (set on the model: the reader keeps none) is escaped, and
    /// one that no longer names the key gives way to the lowercase form.
    #[test]
    fn kid_attributes_keep_the_request_spelling_escaped() {
        let kid = "7F3979BA-471E-523E-B41A-8D6AE4D4D923";
        let doc = |attr: &str| {
            format!(
                r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList><cpix:ContentKey kid="{attr}"/></cpix:ContentKeyList></cpix:CPIX>"#
            )
        };
        let opts = WriteOptions::default();
        let out = write(&crate::cpix::parse(doc(kid).as_bytes()).unwrap(), &opts);
        assert!(out.contains(&format!(r#"kid="{kid}""#)), "{out}");
        let mut padded = crate::cpix::parse(doc(kid).as_bytes()).unwrap();
        padded.content_keys.as_mut().unwrap().items[0].kid_text = Some(format!("\t{kid}\n"));
        let out = write(&padded, &opts);
        assert!(out.contains(&format!(r#"kid="&#9;{kid}&#10;""#)), "{out}");
        let mut moved = crate::cpix::parse(doc(kid).as_bytes()).unwrap();
        moved.content_keys.as_mut().unwrap().items[0].kid =
            KeyId::parse_hyphenated("00000000-0000-0000-0000-00000000000a").unwrap();
        let out = write(&moved, &opts);
        assert!(
            out.contains(r#"kid="00000000-0000-0000-0000-00000000000a""#),
            "{out}"
        );
    }

    /// Signal text read from a document is escaped; base64 the server
    /// encoded goes out as it is, and a read signal given encoded text
    /// (as the fill does) stops being escaped, while one given verbatim
    /// text again is escaped again.
    #[test]
    fn only_encoded_signal_text_skips_escaping() {
        let doc = r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"><cpix:DRMSystemList><cpix:DRMSystem kid="7f3979ba-471e-523e-b41a-8d6ae4d4d923" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH>a&amp;b&lt;c&gt;&#13;</cpix:PSSH><cpix:HLSSignalingData playlist="media"/></cpix:DRMSystem></cpix:DRMSystemList></cpix:CPIX>"#;
        let opts = WriteOptions::default();
        let mut model = crate::cpix::parse(doc.as_bytes()).unwrap();
        let out = write(&model, &opts);
        assert!(
            out.contains("<cpix:PSSH>a&amp;b&lt;c&gt;&#13;</cpix:PSSH>"),
            "{out}"
        );
        let d = &mut model.drm_systems.as_mut().unwrap().items[0];
        assert!(!d.pssh.as_ref().unwrap().is_encoded());
        let bytes = [0xfb, 0xef, 0xff, 0x00, 0x3e];
        d.pssh = Some(Signal::encoded(Base64Text::encode(&bytes)));
        d.hls_signaling_data[0].set_encoded(Base64Text::encode(b"#EXT-X-KEY:<&>"));
        let out = write(&model, &opts);
        assert!(out.contains("<cpix:PSSH>++//AD4=</cpix:PSSH>"), "{out}");
        assert!(
            out.contains(r#"<cpix:HLSSignalingData playlist="media">I0VYVC1YLUtFWTo8Jj4=</cpix:HLSSignalingData>"#),
            "{out}"
        );
        let reread = crate::cpix::parse(out.as_bytes()).unwrap();
        assert_eq!(
            reread.systems()[0].pssh.as_ref().unwrap().value(),
            "++//AD4="
        );
        assert_eq!(
            reread.systems()[0],
            model.systems()[0],
            "equal however made"
        );
        let d = &mut model.drm_systems.as_mut().unwrap().items[0];
        d.pssh = Some(Signal::new("<&>"));
        assert!(write(&model, &opts).contains("<cpix:PSSH>&lt;&amp;&gt;</cpix:PSSH>"));
    }

    /// Each line is indented by its depth times the indent, however wide.
    #[test]
    fn lines_are_indented_by_depth() {
        let doc = r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList><cpix:ContentKey kid="7f3979ba-471e-523e-b41a-8d6ae4d4d923"><cpix:Data><pskc:Secret xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"><pskc:PlainValue>AAAAAAAAAAAAAAAAAAAAAA==</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey></cpix:ContentKeyList></cpix:CPIX>"#;
        let model = crate::cpix::parse(doc.as_bytes()).unwrap();
        for indent in [0, 1, 2, 7, 33] {
            let opts = WriteOptions {
                indent: Some(indent),
                xml_declaration: false,
            };
            let out = write(&model, &opts);
            let depths: Vec<usize> = out
                .lines()
                .map(|l| l.len() - l.trim_start_matches(' ').len())
                .collect();
            assert_eq!(
                depths,
                [0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 0].map(|d| d * indent),
                "{out}"
            );
            assert_eq!(crate::cpix::parse(out.as_bytes()).unwrap(), model);
        }
    }

    /// The estimate covers the written answer, so `write` allocates its
    /// buffer once: for every fixture request, in the clear and encrypted
    /// to one and to two recipients (the wrapped keys, MACs and
    /// certificates of the delivery data are the bulk of the extra).
    #[test]
    fn the_size_estimate_covers_every_answer() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/requests");
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let [one, two] = certs::pair();
        let settings = DrmSettings::default();
        let rng = Arc::new(SeededRandom::new(7));
        let keys = MemoryKeySource::new(rng.clone());
        let ctx = FillContext::new(&settings, &*rng);
        for path in &names {
            let clear = std::fs::read_to_string(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy();
            let version = match &name[..3] {
                "v1-" => SpekeVersion::V1_0,
                "v2-" => SpekeVersion::V2_0,
                _ => SpekeVersion::V2_1,
            };
            for recipients in [
                &[][..],
                &[&one.cert_der[..]],
                &[&one.cert_der, &two.cert_der],
            ] {
                let body = if recipients.is_empty() {
                    clear.clone()
                } else {
                    certs::with_recipients(&clear, recipients)
                };
                let mut req =
                    speke::parse_request(body.as_bytes(), version, &Limits::default()).unwrap();
                speke::fill(&mut req, &keys, &ctx).unwrap();
                assert_eq!(req.doc.recipients().len(), recipients.len(), "{name}");
                let written = write(&req.doc, &WriteOptions::default());
                let estimate = estimate_size(&req.doc);
                assert!(
                    written.len() <= estimate,
                    "{name}, {} recipients: {} bytes written, {estimate} estimated",
                    recipients.len(),
                    written.len()
                );
            }
        }
        assert!(names.len() >= 20, "{} fixture requests", names.len());
    }
}
