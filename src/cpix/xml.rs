//! A small namespace-resolved XML tree used for everything the CPIX model
//! keeps verbatim (usage rules, periods, signatures, foreign elements), the
//! safe parser that produces it (no DOCTYPE, no entity expansion, bounded
//! size, depth and element count; UTF-8 with or without BOM, UTF-16 with
//! BOM) and the escaping/serialising helpers the writer shares.

use super::CpixError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::borrow::Cow;
use std::sync::Arc;

/// CPIX namespace URI.
pub const NS_CPIX: &str = "urn:dashif:org:cpix";
/// PSKC (RFC 6030) namespace URI.
pub const NS_PSKC: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
/// AWS SPEKE 1.0 extension namespace URI.
pub const NS_SPEKE: &str = "urn:aws:amazon:com:speke";
/// XML Signature namespace URI.
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML Encryption namespace URI.
pub const NS_ENC: &str = "http://www.w3.org/2001/04/xmlenc#";
/// XML Schema instance namespace URI.
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The `xml:` namespace URI.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// A namespace URI; the ones CPIX uses are interned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ns {
    /// No namespace.
    None,
    /// `urn:dashif:org:cpix`
    Cpix,
    /// `urn:ietf:params:xml:ns:keyprov:pskc`
    Pskc,
    /// `urn:aws:amazon:com:speke`
    Speke,
    /// `http://www.w3.org/2000/09/xmldsig#`
    Ds,
    /// `http://www.w3.org/2001/04/xmlenc#`
    Enc,
    /// `http://www.w3.org/2001/XMLSchema-instance`
    Xsi,
    /// `http://www.w3.org/XML/1998/namespace`
    Xml,
    /// Any other namespace.
    Other(Arc<str>),
}

impl Ns {
    /// Interns a namespace URI.
    pub fn from_uri(uri: &str) -> Ns {
        match uri {
            "" => Ns::None,
            NS_CPIX => Ns::Cpix,
            NS_PSKC => Ns::Pskc,
            NS_SPEKE => Ns::Speke,
            NS_DS => Ns::Ds,
            NS_ENC => Ns::Enc,
            NS_XSI => Ns::Xsi,
            NS_XML => Ns::Xml,
            other => Ns::Other(Arc::from(other)),
        }
    }

    /// The namespace URI (empty for no namespace).
    pub fn uri(&self) -> &str {
        match self {
            Ns::None => "",
            Ns::Cpix => NS_CPIX,
            Ns::Pskc => NS_PSKC,
            Ns::Speke => NS_SPEKE,
            Ns::Ds => NS_DS,
            Ns::Enc => NS_ENC,
            Ns::Xsi => NS_XSI,
            Ns::Xml => NS_XML,
            Ns::Other(u) => u,
        }
    }

    /// The prefix the writer prefers for this namespace.
    pub fn preferred_prefix(&self) -> Option<&'static str> {
        Some(match self {
            Ns::Cpix => "cpix",
            Ns::Pskc => "pskc",
            Ns::Speke => "speke",
            Ns::Ds => "ds",
            Ns::Enc => "enc",
            Ns::Xsi => "xsi",
            Ns::Xml => "xml",
            Ns::None | Ns::Other(_) => return None,
        })
    }
}

/// An attribute with its resolved namespace (unprefixed attributes have none).
/// Equality ignores the prefix hint.
#[derive(Debug, Clone, Eq)]
pub struct Attribute {
    /// Namespace of the attribute name.
    pub ns: Ns,
    /// Local name.
    pub local: String,
    /// Prefix used in the source, kept as a hint for writing.
    pub prefix: Option<String>,
    /// Unescaped value.
    pub value: String,
}

impl PartialEq for Attribute {
    fn eq(&self, other: &Self) -> bool {
        self.ns == other.ns && self.local == other.local && self.value == other.value
    }
}

impl Attribute {
    /// An unqualified attribute.
    pub fn new(local: &str, value: impl Into<String>) -> Self {
        Attribute {
            ns: Ns::None,
            local: local.to_owned(),
            prefix: None,
            value: value.into(),
        }
    }
}

/// Looks up an unqualified attribute by local name.
pub fn find_attr<'a>(attrs: &'a [Attribute], local: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.ns == Ns::None && a.local == local)
        .map(|a| a.value.as_str())
}

/// Sets (or adds at the end) an unqualified attribute.
pub fn set_attr(attrs: &mut Vec<Attribute>, local: &str, value: impl Into<String>) {
    let value = value.into();
    match attrs
        .iter_mut()
        .find(|a| a.ns == Ns::None && a.local == local)
    {
        Some(a) => a.value = value,
        None => attrs.push(Attribute::new(local, value)),
    }
}

/// Removes an unqualified attribute if present.
pub fn remove_attr(attrs: &mut Vec<Attribute>, local: &str) {
    attrs.retain(|a| !(a.ns == Ns::None && a.local == local));
}

/// A child of an element: another element or character data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (entity and character references already resolved).
    Text(String),
}

/// An XML element with resolved namespaces. Equality ignores prefix hints.
#[derive(Debug, Clone, Eq)]
pub struct Element {
    /// Namespace of the element name.
    pub ns: Ns,
    /// Local name.
    pub local: String,
    /// Prefix used in the source, kept as a hint for writing.
    pub prefix: Option<String>,
    /// Attributes in source order (namespace declarations excluded).
    pub attributes: Vec<Attribute>,
    /// Children in source order; comments and processing instructions are
    /// dropped, and whitespace-only text between child elements is dropped.
    pub children: Vec<Node>,
}

impl PartialEq for Element {
    fn eq(&self, other: &Self) -> bool {
        self.ns == other.ns
            && self.local == other.local
            && self.attributes == other.attributes
            && self.children == other.children
    }
}

impl Element {
    /// A new empty element.
    pub fn new(ns: Ns, local: &str) -> Self {
        Element {
            ns,
            local: local.to_owned(),
            prefix: None,
            attributes: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: adds an unqualified attribute.
    pub fn with_attr(mut self, local: &str, value: impl Into<String>) -> Self {
        self.attributes.push(Attribute::new(local, value));
        self
    }

    /// Builder: adds a child element.
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: adds text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// True when the element has this namespace and local name.
    pub fn is(&self, ns: &Ns, local: &str) -> bool {
        &self.ns == ns && self.local == local
    }

    /// Value of an unqualified attribute.
    pub fn attr(&self, local: &str) -> Option<&str> {
        find_attr(&self.attributes, local)
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// First child element with this name.
    pub fn child(&self, ns: &Ns, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// Concatenated text of the direct text children.
    pub fn text(&self) -> Cow<'_, str> {
        let mut texts = self.children.iter().filter_map(|n| match n {
            Node::Text(t) => Some(t.as_str()),
            Node::Element(_) => None,
        });
        match (texts.next(), texts.next()) {
            (None, _) => Cow::Borrowed(""),
            (Some(t), None) => Cow::Borrowed(t),
            (Some(a), Some(b)) => {
                let mut s = String::from(a);
                s.push_str(b);
                texts.for_each(|t| s.push_str(t));
                Cow::Owned(s)
            }
        }
    }

    /// Replaces all children with one text node.
    pub fn set_text(&mut self, text: impl Into<String>) {
        self.children.clear();
        self.children.push(Node::Text(text.into()));
    }

    /// Calls `f` for this element and every descendant element.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Element)) {
        f(self);
        for e in self.elements() {
            e.walk(f);
        }
    }
}

/// Bounds applied while parsing untrusted documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting.
    pub max_depth: usize,
    /// Most elements accepted in one document.
    pub max_elements: usize,
    /// Most attributes accepted on one element.
    pub max_attributes: usize,
}

impl Default for Limits {
    /// 4 MiB, depth 32, 50 000 elements, 64 attributes per element: far above
    /// any real key request (8 keys × 3 systems is about 20 KiB and 200
    /// elements) and far below what would hurt the server.
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 20,
            max_depth: 32,
            max_elements: 50_000,
            max_attributes: 64,
        }
    }
}

/// Decodes the input bytes to text: UTF-8 (BOM optional) or UTF-16 (LE/BE,
/// with BOM, or recognisable from a leading `<`).
pub fn decode_input(input: &[u8]) -> Result<Cow<'_, str>, CpixError> {
    let utf16 = |bytes: &[u8], le: bool| -> Result<Cow<'_, str>, CpixError> {
        if bytes.len() % 2 != 0 {
            return Err(CpixError::Encoding("UTF-16 input has an odd length".into()));
        }
        let units = bytes.chunks_exact(2).map(|c| {
            let pair = [c[0], c[1]];
            if le {
                u16::from_le_bytes(pair)
            } else {
                u16::from_be_bytes(pair)
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map(Cow::Owned)
            .map_err(|_| CpixError::Encoding("invalid UTF-16".into()))
    };
    match input {
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest)
            .map(Cow::Borrowed)
            .map_err(|e| CpixError::Encoding(format!("invalid UTF-8: {e}"))),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        [b'<', 0, ..] => utf16(input, true),
        [0, b'<', ..] => utf16(input, false),
        _ => std::str::from_utf8(input)
            .map(Cow::Borrowed)
            .map_err(|e| CpixError::Encoding(format!("invalid UTF-8: {e}"))),
    }
}

fn xml_err(reader_pos: u64, e: impl std::fmt::Display) -> CpixError {
    CpixError::Xml {
        position: reader_pos,
        message: e.to_string(),
    }
}

fn resolve_ns(r: ResolveResult<'_>, qname: &[u8]) -> Result<Ns, CpixError> {
    match r {
        ResolveResult::Unbound => Ok(Ns::None),
        ResolveResult::Bound(ns) => {
            let uri = std::str::from_utf8(ns.into_inner())
                .map_err(|_| CpixError::Encoding("namespace URI is not UTF-8".into()))?;
            Ok(Ns::from_uri(uri))
        }
        ResolveResult::Unknown(prefix) => Err(CpixError::UnboundPrefix(format!(
            "{} (in {})",
            String::from_utf8_lossy(&prefix),
            String::from_utf8_lossy(qname)
        ))),
    }
}

fn split_prefix(qname: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(qname).ok()?;
    s.split_once(':').map(|(p, _)| p.to_owned())
}

fn unescape_err(e: quick_xml::Error) -> CpixError {
    match e {
        quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(_, name)) => {
            CpixError::UndefinedEntity(name)
        }
        other => CpixError::Xml {
            position: 0,
            message: other.to_string(),
        },
    }
}

fn start_element(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
    limits: &Limits,
) -> Result<Element, CpixError> {
    let qname = e.name();
    let (res, local) = reader.resolve_element(qname);
    let ns = resolve_ns(res, qname.as_ref())?;
    let local = std::str::from_utf8(local.as_ref())
        .map_err(|_| CpixError::Encoding("element name is not UTF-8".into()))?
        .to_owned();
    let mut attributes = Vec::new();
    for attr in e.attributes().with_checks(true) {
        let attr = attr.map_err(|err| xml_err(reader.buffer_position(), err))?;
        let key = attr.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        if attributes.len() >= limits.max_attributes {
            return Err(CpixError::LimitExceeded {
                what: "attributes on one element",
                limit: limits.max_attributes,
            });
        }
        let (res, alocal) = reader.resolve_attribute(attr.key);
        let ans = resolve_ns(res, key)?;
        let value = attr.unescape_value().map_err(unescape_err)?.into_owned();
        attributes.push(Attribute {
            ns: ans,
            local: String::from_utf8_lossy(alocal.as_ref()).into_owned(),
            prefix: split_prefix(key),
            value,
        });
    }
    Ok(Element {
        ns,
        local,
        prefix: split_prefix(qname.as_ref()),
        attributes,
        children: Vec::new(),
    })
}

/// Appends text to the element's last text node (or starts one).
fn push_text(el: &mut Element, text: &str) {
    if let Some(Node::Text(t)) = el.children.last_mut() {
        t.push_str(text);
    } else {
        el.children.push(Node::Text(text.to_owned()));
    }
}

/// Drops whitespace-only text nodes from an element that has child elements.
fn drop_formatting_whitespace(el: &mut Element) {
    if el.children.iter().any(|n| matches!(n, Node::Element(_))) {
        el.children
            .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
    }
}

/// Resolves `&name;` / `&#N;` inside text: only the five predefined entities
/// and character references exist; anything else is refused.
fn resolve_reference(name: &str) -> Result<char, CpixError> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => num.parse::<u32>(),
        }
        .map_err(|_| CpixError::UndefinedEntity(name.to_owned()))?;
        return char::from_u32(code).ok_or_else(|| CpixError::UndefinedEntity(name.to_owned()));
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(CpixError::UndefinedEntity(other.to_owned())),
    }
}

/// Parses a whole document into its root element, enforcing `limits`.
pub fn parse_document(input: &[u8], limits: &Limits) -> Result<Element, CpixError> {
    if input.len() > limits.max_bytes {
        return Err(CpixError::LimitExceeded {
            what: "document bytes",
            limit: limits.max_bytes,
        });
    }
    let text = decode_input(input)?;
    let mut reader = NsReader::from_reader(text.as_bytes());
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
    }
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let pos = reader.buffer_position();
        let event = reader.read_event().map_err(|e| xml_err(pos, e))?;
        match event {
            Event::Decl(d) => {
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| xml_err(pos, e))?;
                    let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                    if !matches!(
                        enc.as_str(),
                        "utf-8" | "utf8" | "utf-16" | "utf16" | "us-ascii"
                    ) {
                        return Err(CpixError::Encoding(format!(
                            "unsupported declared encoding {enc:?}"
                        )));
                    }
                }
            }
            Event::DocType(_) => return Err(CpixError::DoctypeForbidden),
            Event::PI(_) | Event::Comment(_) => {}
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err(xml_err(pos, "content after the root element"));
            }
            Event::Start(e) => {
                count += 1;
                if count > limits.max_elements {
                    return Err(CpixError::LimitExceeded {
                        what: "elements",
                        limit: limits.max_elements,
                    });
                }
                if stack.len() >= limits.max_depth {
                    return Err(CpixError::LimitExceeded {
                        what: "element depth",
                        limit: limits.max_depth,
                    });
                }
                let el = start_element(&reader, &e, limits)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                count += 1;
                if count > limits.max_elements {
                    return Err(CpixError::LimitExceeded {
                        what: "elements",
                        limit: limits.max_elements,
                    });
                }
                if stack.len() >= limits.max_depth {
                    return Err(CpixError::LimitExceeded {
                        what: "element depth",
                        limit: limits.max_depth,
                    });
                }
                let el = start_element(&reader, &e, limits)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| xml_err(pos, "unexpected end tag"))?;
                drop_formatting_whitespace(&mut el);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| xml_err(pos, e))?;
                match stack.last_mut() {
                    Some(el) => push_text(el, &s),
                    None if s.trim().is_empty() => {}
                    None => return Err(xml_err(pos, "text outside the root element")),
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| xml_err(pos, e))?;
                match stack.last_mut() {
                    Some(el) => push_text(el, &s),
                    None => return Err(xml_err(pos, "CDATA outside the root element")),
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| xml_err(pos, e))?;
                let c = resolve_reference(&name)?;
                match stack.last_mut() {
                    Some(el) => {
                        let mut buf = [0u8; 4];
                        push_text(el, c.encode_utf8(&mut buf));
                    }
                    None => return Err(xml_err(pos, "reference outside the root element")),
                }
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(CpixError::Xml {
            position: reader.buffer_position(),
            message: "document ends inside an element".into(),
        });
    }
    root.ok_or(CpixError::Empty)
}

/// Appends `s` escaped for element content.
pub fn escape_text_into(s: &str, out: &mut String) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\r' => "&#13;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

/// Appends `s` escaped for a double-quoted attribute value.
pub fn escape_attr_into(s: &str, out: &mut String) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\n' => "&#10;",
            b'\r' => "&#13;",
            b'\t' => "&#9;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

/// Returns `s` escaped for element content.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_text_into(s, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Element, CpixError> {
        parse_document(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn namespaces_resolve_by_uri_not_prefix() {
        let a = parse(r#"<x:CPIX xmlns:x="urn:dashif:org:cpix"><x:A/></x:CPIX>"#).unwrap();
        let b = parse(r#"<CPIX xmlns="urn:dashif:org:cpix"><A/></CPIX>"#).unwrap();
        assert!(a.is(&Ns::Cpix, "CPIX") && b.is(&Ns::Cpix, "CPIX"));
        assert!(a.child(&Ns::Cpix, "A").is_some() && b.child(&Ns::Cpix, "A").is_some());
        let unbound = parse(r#"<ds:X/>"#).unwrap_err();
        assert!(
            matches!(unbound, CpixError::UnboundPrefix(_)),
            "{unbound:?}"
        );
    }

    #[test]
    fn doctype_and_custom_entities_are_refused_without_expansion() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><CPIX>&lol2;</CPIX>"#;
        assert_eq!(parse(bomb).unwrap_err(), CpixError::DoctypeForbidden);
        assert_eq!(
            parse("<CPIX>&ext;</CPIX>").unwrap_err(),
            CpixError::UndefinedEntity("ext".into())
        );
        assert!(matches!(
            parse(r#"<CPIX a="&ext;"/>"#).unwrap_err(),
            CpixError::UndefinedEntity(_)
        ));
        let ok = parse("<C a=\"&lt;&#65;&#x42;\">&amp;&gt;&quot;&apos;&#x263A;</C>").unwrap();
        assert_eq!(ok.attr("a"), Some("<AB"));
        assert_eq!(ok.text(), "&>\"'\u{263A}");
    }

    #[test]
    fn encodings() {
        let doc = "<C xmlns=\"urn:dashif:org:cpix\">é</C>";
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(doc.as_bytes());
        assert_eq!(
            parse_document(&bom, &Limits::default()).unwrap().text(),
            "é"
        );
        let mut le = vec![0xFF, 0xFE];
        doc.encode_utf16()
            .for_each(|u| le.extend_from_slice(&u.to_le_bytes()));
        assert_eq!(parse_document(&le, &Limits::default()).unwrap().text(), "é");
        let mut be = vec![0xFE, 0xFF];
        doc.encode_utf16()
            .for_each(|u| be.extend_from_slice(&u.to_be_bytes()));
        assert_eq!(parse_document(&be, &Limits::default()).unwrap().text(), "é");
        assert!(matches!(
            parse_document(b"<C>\xff</C>", &Limits::default()),
            Err(CpixError::Encoding(_))
        ));
        assert!(matches!(
            parse(r#"<?xml version="1.0" encoding="ISO-8859-1"?><C/>"#),
            Err(CpixError::Encoding(_))
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_bytes: 100,
            max_depth: 3,
            max_elements: 5,
            max_attributes: 2,
        };
        let deep = "<a><b><c><d/></c></b></a>";
        assert!(matches!(
            parse_document(deep.as_bytes(), &limits),
            Err(CpixError::LimitExceeded {
                what: "element depth",
                ..
            })
        ));
        let many = "<a><b/><b/><b/><b/><b/></a>";
        assert!(matches!(
            parse_document(many.as_bytes(), &limits),
            Err(CpixError::LimitExceeded {
                what: "elements",
                ..
            })
        ));
        let attrs = r#"<a x="1" y="2" z="3"/>"#;
        assert!(matches!(
            parse_document(attrs.as_bytes(), &limits),
            Err(CpixError::LimitExceeded { .. })
        ));
        let big = format!("<a>{}</a>", "x".repeat(200));
        assert!(matches!(
            parse_document(big.as_bytes(), &limits),
            Err(CpixError::LimitExceeded {
                what: "document bytes",
                ..
            })
        ));
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            "",
            "   ",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text<a/>",
            "<a x=\"1\" x=\"2\"/>",
            "<a x=1/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formatting_whitespace_is_dropped_but_leaf_text_kept() {
        let e = parse("<a>\n  <b> x </b>\n  <c/>\n</a>").unwrap();
        assert_eq!(e.children.len(), 2);
        assert_eq!(e.child(&Ns::None, "b").unwrap().text(), " x ");
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        escape_attr_into("a&b<\"\n", &mut s);
        assert_eq!(s, "a&amp;b&lt;&quot;&#10;");
        assert_eq!(escape_text("<&>"), "&lt;&amp;&gt;");
    }
}
