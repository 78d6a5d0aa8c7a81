//! A small namespace-resolved XML tree used for everything the CPIX model
//! keeps verbatim (usage rules, periods, signatures, foreign elements), the
//! safe parser that produces it (no DOCTYPE, no entity expansion, bounded
//! size, depth and element count; UTF-8 with or without BOM, UTF-16 with
//! BOM) and the escaping/serialising helpers the writer shares.

use super::scan::{self, QName, RawAttr, Scanner, Token};
use super::CpixError;
use std::borrow::Cow;
use std::sync::Arc;

/// A local name: the names CPIX documents use are static strings, so the
/// common case allocates nothing.
pub type Name = Cow<'static, str>;

/// The static spelling of a name of the CPIX, PSKC, xmlenc, xmldsig or
/// SPEKE vocabularies.
fn known_name(bytes: &[u8]) -> Option<&'static str> {
    Some(match bytes {
        b"CPIX" => "CPIX",
        b"DeliveryDataList" => "DeliveryDataList",
        b"DeliveryData" => "DeliveryData",
        b"DeliveryKey" => "DeliveryKey",
        b"DocumentKey" => "DocumentKey",
        b"MACMethod" => "MACMethod",
        b"Description" => "Description",
        b"SendingEntity" => "SendingEntity",
        b"SenderPointOfContact" => "SenderPointOfContact",
        b"ReceivingEntity" => "ReceivingEntity",
        b"ContentKeyList" => "ContentKeyList",
        b"ContentKey" => "ContentKey",
        b"Data" => "Data",
        b"Secret" => "Secret",
        b"PlainValue" => "PlainValue",
        b"EncryptedValue" => "EncryptedValue",
        b"ValueMAC" => "ValueMAC",
        b"EncryptionMethod" => "EncryptionMethod",
        b"CipherData" => "CipherData",
        b"CipherValue" => "CipherValue",
        b"Key" => "Key",
        b"DRMSystemList" => "DRMSystemList",
        b"DRMSystem" => "DRMSystem",
        b"PSSH" => "PSSH",
        b"ContentProtectionData" => "ContentProtectionData",
        b"URIExtXKey" => "URIExtXKey",
        b"HLSSignalingData" => "HLSSignalingData",
        b"SmoothStreamingProtectionHeaderData" => "SmoothStreamingProtectionHeaderData",
        b"HDSSignalingData" => "HDSSignalingData",
        b"ContentKeyPeriodList" => "ContentKeyPeriodList",
        b"ContentKeyPeriod" => "ContentKeyPeriod",
        b"ContentKeyUsageRuleList" => "ContentKeyUsageRuleList",
        b"ContentKeyUsageRule" => "ContentKeyUsageRule",
        b"KeyPeriodFilter" => "KeyPeriodFilter",
        b"LabelFilter" => "LabelFilter",
        b"VideoFilter" => "VideoFilter",
        b"AudioFilter" => "AudioFilter",
        b"BitrateFilter" => "BitrateFilter",
        b"UpdateHistoryItemList" => "UpdateHistoryItemList",
        b"UpdateHistoryItem" => "UpdateHistoryItem",
        b"Signature" => "Signature",
        b"X509Data" => "X509Data",
        b"X509Certificate" => "X509Certificate",
        b"KeyFormat" => "KeyFormat",
        b"KeyFormatVersions" => "KeyFormatVersions",
        b"ProtectionHeader" => "ProtectionHeader",
        b"kid" => "kid",
        b"systemId" => "systemId",
        b"id" => "id",
        b"contentId" => "contentId",
        b"version" => "version",
        b"name" => "name",
        b"explicitIV" => "explicitIV",
        b"commonEncryptionScheme" => "commonEncryptionScheme",
        b"playlist" => "playlist",
        b"index" => "index",
        b"start" => "start",
        b"end" => "end",
        b"periodId" => "periodId",
        b"intendedTrackType" => "intendedTrackType",
        b"minPixels" => "minPixels",
        b"maxPixels" => "maxPixels",
        b"hdr" => "hdr",
        b"wcg" => "wcg",
        b"minFps" => "minFps",
        b"maxFps" => "maxFps",
        b"minChannels" => "minChannels",
        b"maxChannels" => "maxChannels",
        b"minBitrate" => "minBitrate",
        b"maxBitrate" => "maxBitrate",
        b"label" => "label",
        b"Algorithm" => "Algorithm",
        b"updateVersion" => "updateVersion",
        b"dependsOnKey" => "dependsOnKey",
        _ => return None,
    })
}

/// Interns a local name.
pub fn intern(local: &str) -> Name {
    match known_name(local.as_bytes()) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(local.to_owned()),
    }
}

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
    pub local: Name,
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
            local: intern(local),
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
    pub local: Name,
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
            local: intern(local),
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

    /// Consumes the element and returns its concatenated direct text.
    pub fn into_text(self) -> String {
        let mut out = String::new();
        for n in self.children {
            if let Node::Text(t) = n {
                if out.is_empty() {
                    out = t;
                } else {
                    out.push_str(&t);
                }
            }
        }
        out
    }

    /// Replaces all children with one text node.
    pub fn set_text(&mut self, text: impl Into<String>) {
        self.children.clear();
        self.children.push(Node::Text(text.into()));
    }

    /// About how many bytes this element takes when written: its text and
    /// attribute values plus room for names, markup and indentation (a
    /// guess for sizing buffers, not a bound).
    pub fn size_hint(&self) -> usize {
        let attributes: usize = self.attributes.iter().map(|a| 32 + a.value.len()).sum();
        let children: usize = self
            .children
            .iter()
            .map(|n| match n {
                Node::Element(e) => e.size_hint(),
                Node::Text(t) => t.len(),
            })
            .sum();
        96 + attributes + children
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
    /// Most attributes accepted on one element, namespace declarations
    /// included.
    pub max_attributes: usize,
    /// Most namespace bindings in scope at any point, and most distinct
    /// namespace URIs in one document.
    pub max_namespaces: usize,
}

impl Default for Limits {
    /// 4 MiB, depth 32, 50 000 elements, 32 attributes per element, 32
    /// namespaces: far above any real key request (8 keys × 3 systems is
    /// about 20 KiB and 200 elements; CPIX elements carry at most 7
    /// attributes; documents declare about 6 namespaces) and far below what
    /// would hurt the server.
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 20,
            max_depth: 32,
            max_elements: 50_000,
            max_attributes: 32,
            max_namespaces: 32,
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

/// The prefix of a name, kept only where the writer may need it
/// (namespaces without a preferred prefix of their own).
fn prefix_hint(ns: &Ns, prefix: &str) -> Option<String> {
    if prefix.is_empty() || ns.preferred_prefix().is_some() {
        return None;
    }
    Some(prefix.to_owned())
}

/// The namespace bindings in scope: a stack of (prefix, namespace) with a
/// mark per open element. The empty prefix is the default namespace. The
/// stack is bounded ([`Limits::max_namespaces`]), so resolving a name scans
/// a bounded number of bindings and parsing stays linear in the input.
struct NsScope<'a> {
    bindings: Vec<(&'a str, Ns)>,
    marks: Vec<usize>,
    /// Distinct namespace URIs declared so far in the document.
    uris: Vec<Ns>,
}

impl<'a> NsScope<'a> {
    fn new() -> Self {
        NsScope {
            bindings: Vec::with_capacity(8),
            marks: Vec::with_capacity(16),
            uris: Vec::with_capacity(8),
        }
    }

    /// Binds `prefix` for the element being opened.
    fn declare(&mut self, prefix: &'a str, uri: &str, limits: &Limits) -> Result<(), CpixError> {
        let too_many = CpixError::LimitExceeded {
            what: "namespaces",
            limit: limits.max_namespaces,
        };
        if self.bindings.len() >= limits.max_namespaces {
            return Err(too_many);
        }
        let ns = match self.uris.iter().find(|n| n.uri() == uri) {
            Some(n) => n.clone(),
            None if self.uris.len() >= limits.max_namespaces => return Err(too_many),
            None => {
                let n = Ns::from_uri(uri);
                self.uris.push(n.clone());
                n
            }
        };
        self.bindings.push((prefix, ns));
        Ok(())
    }

    fn resolve(&self, prefix: &str, qname: &str) -> Result<Ns, CpixError> {
        if prefix == "xml" {
            return Ok(Ns::Xml);
        }
        match self.bindings.iter().rev().find(|(p, _)| *p == prefix) {
            Some((_, ns)) => Ok(ns.clone()),
            None if prefix.is_empty() => Ok(Ns::None),
            None => Err(CpixError::UnboundPrefix(format!("{prefix} (in {qname})"))),
        }
    }

    fn pop(&mut self) {
        if let Some(mark) = self.marks.pop() {
            self.bindings.truncate(mark);
        }
    }
}

/// A reference error carries the position of the token it is in.
fn at(pos: u64) -> impl Fn(CpixError) -> CpixError {
    move |e| match e {
        CpixError::Xml { message, .. } => CpixError::Xml {
            position: pos,
            message,
        },
        other => other,
    }
}

/// Reads a start tag: declares its namespaces in `scope` (the caller pops
/// them at the end tag), then resolves the element and attribute names.
/// The scanner has bounded the attribute count and refused repeated
/// qualified names.
fn start_element<'a>(
    scope: &mut NsScope<'a>,
    qname: QName<'a>,
    raw: &[RawAttr<'a>],
    limits: &Limits,
    pos: u64,
) -> Result<Element, CpixError> {
    scope.marks.push(scope.bindings.len());
    let mut attributes: Vec<Attribute> = Vec::with_capacity(raw.len());
    // Prefixed attributes are resolved once every xmlns of the tag is known.
    let mut prefixed: Vec<(usize, &str)> = Vec::new();
    for a in raw {
        let value = match a.escaped {
            true => scan::unescape(a.value).map_err(at(pos))?,
            false => Cow::Borrowed(a.value),
        };
        let (prefix, local) = (a.name.prefix(), a.name.local());
        match (prefix, local) {
            ("", "xmlns") => scope.declare("", &value, limits)?,
            ("xmlns", p) => {
                if value.is_empty() {
                    return Err(xml_err(pos, "a prefix is bound to an empty namespace"));
                }
                scope.declare(p, &value, limits)?;
            }
            _ => {
                if !prefix.is_empty() {
                    prefixed.push((attributes.len(), prefix));
                }
                attributes.push(Attribute {
                    ns: Ns::None,
                    local: intern(local),
                    prefix: None,
                    value: value.into_owned(),
                });
            }
        }
    }
    if !prefixed.is_empty() {
        for (i, prefix) in prefixed {
            let ns = scope.resolve(prefix, qname.full)?;
            let a = &mut attributes[i];
            a.prefix = prefix_hint(&ns, prefix);
            a.ns = ns;
        }
        // Two prefixes bound to one namespace can name one attribute twice;
        // sorting finds that in k log k.
        let mut names: Vec<(&str, &str)> = attributes
            .iter()
            .map(|a| (a.ns.uri(), a.local.as_ref()))
            .collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(xml_err(pos, "an attribute appears twice"));
        }
    }
    let (prefix, local) = (qname.prefix(), qname.local());
    let ns = scope.resolve(prefix, qname.full)?;
    Ok(Element {
        prefix: prefix_hint(&ns, prefix),
        ns,
        local: intern(local),
        attributes,
        children: Vec::new(),
    })
}

/// An open element, its name as written (for the end tag), where its
/// children start on the builder's node stack, and the text seen since its
/// last child, kept borrowed from the input until it is known not to be
/// formatting whitespace.
struct Frame<'a> {
    el: Element,
    qname: QName<'a>,
    first_child: usize,
    pending: Cow<'a, str>,
}

impl<'a> Frame<'a> {
    fn push_text(&mut self, s: Cow<'a, str>) {
        if self.pending.is_empty() {
            self.pending = s;
        } else {
            self.pending.to_mut().push_str(&s);
        }
    }

    /// Turns the pending text into a node on `nodes`. Whitespace next to
    /// child elements is formatting and dropped; a leaf keeps all of its
    /// text.
    fn flush(&mut self, closing: bool, nodes: &mut Vec<Node>) {
        if self.pending.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.pending);
        let leaf = closing
            && !nodes[self.first_child..]
                .iter()
                .any(|n| matches!(n, Node::Element(_)));
        if leaf || !scan::is_blank(&text) {
            nodes.push(Node::Text(text.into_owned()));
        }
    }
}

/// Builds the tree from scanner tokens, enforcing the limits. The children
/// of open elements wait on one node stack and move into their element,
/// in one allocation of the exact size, at its end tag.
struct TreeBuilder<'a> {
    scope: NsScope<'a>,
    stack: Vec<Frame<'a>>,
    nodes: Vec<Node>,
    root: Option<Element>,
    count: usize,
    limits: Limits,
}

impl<'a> TreeBuilder<'a> {
    fn open(&mut self, el: Element, qname: QName<'a>, empty: bool) -> Result<(), CpixError> {
        self.count += 1;
        if self.count > self.limits.max_elements {
            return Err(CpixError::LimitExceeded {
                what: "elements",
                limit: self.limits.max_elements,
            });
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(CpixError::LimitExceeded {
                what: "element depth",
                limit: self.limits.max_depth,
            });
        }
        if let Some(parent) = self.stack.last_mut() {
            parent.flush(false, &mut self.nodes);
        }
        if empty {
            self.scope.pop();
            self.attach(el);
        } else {
            self.stack.push(Frame {
                el,
                qname,
                first_child: self.nodes.len(),
                pending: Cow::Borrowed(""),
            });
        }
        Ok(())
    }

    fn attach(&mut self, el: Element) {
        match self.stack.is_empty() {
            false => self.nodes.push(Node::Element(el)),
            true => self.root = Some(el),
        }
    }

    fn close(&mut self, qname: &str, pos: u64) -> Result<(), CpixError> {
        let mut frame = self
            .stack
            .pop()
            .ok_or_else(|| xml_err(pos, format!("unexpected end tag {qname}")))?;
        if frame.qname.full != qname {
            return Err(xml_err(
                pos,
                format!(
                    "end tag {qname} does not match start tag {}",
                    frame.qname.full
                ),
            ));
        }
        self.scope.pop();
        frame.flush(true, &mut self.nodes);
        frame.el.children = self.nodes.split_off(frame.first_child);
        self.attach(frame.el);
        Ok(())
    }

    /// True when no text waits to be attached to the open element.
    fn nothing_pending(&self) -> bool {
        self.stack.last().is_none_or(|f| f.pending.is_empty())
    }

    fn text(&mut self, s: Cow<'a, str>, pos: u64) -> Result<(), CpixError> {
        match self.stack.last_mut() {
            Some(frame) => frame.push_text(s),
            None if scan::is_blank(&s) => {}
            None => return Err(xml_err(pos, "text outside the root element")),
        }
        Ok(())
    }
}

fn check_declared_encoding(encoding: Option<&str>) -> Result<(), CpixError> {
    if let Some(enc) = encoding {
        let enc = enc.to_ascii_lowercase();
        if !matches!(
            enc.as_str(),
            "utf-8" | "utf8" | "utf-16" | "utf16" | "us-ascii"
        ) {
            return Err(CpixError::Encoding(format!(
                "unsupported declared encoding {enc:?}"
            )));
        }
    }
    Ok(())
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
    let mut scanner = Scanner::new(&text, limits.max_attributes);
    let mut attrs: Vec<RawAttr<'_>> = Vec::with_capacity(8);
    let mut tree = TreeBuilder {
        scope: NsScope::new(),
        stack: Vec::with_capacity(8),
        nodes: Vec::with_capacity(32),
        root: None,
        count: 0,
        limits: *limits,
    };
    loop {
        let pos = scanner.position();
        let open = tree.stack.last().map(|f| f.qname);
        let Some(token) = scanner.next(&mut attrs, open)? else {
            break;
        };
        match token {
            // After the first start tag, a declaration is misplaced.
            Token::Decl { .. } if tree.count > 0 => {
                return Err(xml_err(pos, "an XML declaration inside the document"));
            }
            Token::Decl { encoding } => check_declared_encoding(encoding)?,
            Token::DocType => return Err(CpixError::DoctypeForbidden),
            Token::Start { .. } if tree.root.is_some() => {
                return Err(xml_err(pos, "content after the root element"));
            }
            Token::Start { name, empty } => {
                let el = start_element(&mut tree.scope, name, &attrs, limits, pos)?;
                tree.open(el, name, empty)?
            }
            Token::End { name } => tree.close(name.full, pos)?,
            Token::Text(raw) => {
                // Formatting whitespace, the most common text, has nothing
                // to resolve; before a start tag, with no text pending, it
                // is what opening that child would drop.
                let blank = scan::is_blank(raw);
                if blank && scanner.at_start_tag() && tree.nothing_pending() {
                    continue;
                }
                let s = match blank {
                    true => Cow::Borrowed(raw),
                    false => scan::unescape(raw).map_err(at(pos))?,
                };
                if tree.stack.is_empty() && !matches!(s, Cow::Borrowed(_)) {
                    return Err(xml_err(pos, "reference outside the root element"));
                }
                tree.text(s, pos)?;
            }
            Token::CData(t) => {
                if tree.stack.is_empty() {
                    return Err(xml_err(pos, "CDATA outside the root element"));
                }
                tree.text(Cow::Borrowed(t), pos)?;
            }
        }
    }
    if !tree.stack.is_empty() {
        return Err(CpixError::Xml {
            position: scanner.position(),
            message: "document ends inside an element".into(),
        });
    }
    tree.root.ok_or(CpixError::Empty)
}

/// Characters to escape in one context and their replacements.
struct Escapes<const N: usize> {
    specials: [u8; N],
    replacements: [&'static str; N],
    /// For each byte, 1 + its index in `specials`, or 0.
    table: [u8; 256],
}

impl<const N: usize> Escapes<N> {
    const fn new(specials: [u8; N], replacements: [&'static str; N]) -> Self {
        let mut table = [0u8; 256];
        let mut i = 0;
        while i < N {
            table[specials[i] as usize] = i as u8 + 1;
            i += 1;
        }
        Escapes {
            specials,
            replacements,
            table,
        }
    }

    /// True when `s` has nothing to escape. Short values (names, UUIDs,
    /// numbers) are checked by table; long ones by SIMD scans, three bytes
    /// at a time: most long values the server writes are base64 and go out
    /// untouched.
    fn clean(&self, s: &str) -> bool {
        let h = s.as_bytes();
        if h.len() < 40 {
            return h.iter().all(|&b| self.table[b as usize] == 0);
        }
        self.specials.chunks(3).all(|c| match *c {
            [a, b, c] => memchr::memchr3(a, b, c, h).is_none(),
            [a, b] => memchr::memchr2(a, b, h).is_none(),
            [a] => memchr::memchr(a, h).is_none(),
            _ => true,
        })
    }

    fn escape_into(&self, s: &str, out: &mut String) {
        if self.clean(s) {
            out.push_str(s);
            return;
        }
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            let k = self.table[b as usize];
            if k != 0 {
                out.push_str(&s[last..i]);
                out.push_str(self.replacements[k as usize - 1]);
                last = i + 1;
            }
        }
        out.push_str(&s[last..]);
    }
}

static TEXT_ESCAPES: Escapes<4> = Escapes::new(
    [b'&', b'<', b'>', b'\r'],
    ["&amp;", "&lt;", "&gt;", "&#13;"],
);
static ATTR_ESCAPES: Escapes<7> = Escapes::new(
    [b'&', b'<', b'>', b'"', b'\n', b'\r', b'\t'],
    ["&amp;", "&lt;", "&gt;", "&quot;", "&#10;", "&#13;", "&#9;"],
);

/// Appends `s` escaped for element content.
pub fn escape_text_into(s: &str, out: &mut String) {
    TEXT_ESCAPES.escape_into(s, out);
}

/// Appends `s` escaped for a double-quoted attribute value.
pub fn escape_attr_into(s: &str, out: &mut String) {
    ATTR_ESCAPES.escape_into(s, out);
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
            max_namespaces: 2,
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
    fn namespace_declarations_are_bounded() {
        let limits = Limits::default();
        let limit_hit = |doc: &str, what: &str| matches!(parse(doc), Err(CpixError::LimitExceeded { what: w, .. }) if w == what);
        // Declarations count as attributes of their element.
        let decls: String = (0..33).map(|i| format!(r#" xmlns:p{i}="urn:x""#)).collect();
        assert!(limit_hit(
            &format!("<a{decls}/>"),
            "attributes on one element"
        ));
        let decls: String = (0..30).map(|i| format!(r#" xmlns:p{i}="urn:x""#)).collect();
        assert!(parse(&format!("<a{decls}><p3:b/></a>")).is_ok());
        // Bindings in scope, piled up by nesting.
        let mut deep = String::new();
        for d in 0..20 {
            let decls: String = (0..4)
                .map(|i| format!(r#" xmlns:q{d}x{i}="urn:x""#))
                .collect();
            deep.push_str(&format!("<e{decls}>"));
        }
        deep.push_str(&"</e>".repeat(20));
        assert!(limit_hit(&deep, "namespaces"));
        // Distinct namespace URIs across the document, even out of scope.
        let siblings: String = (0..=limits.max_namespaces)
            .map(|i| format!(r#"<p:b xmlns:p="urn:ns:{i}"/>"#))
            .collect();
        assert!(limit_hit(&format!("<a>{siblings}</a>"), "namespaces"));
        // The same URI declared again and again is one namespace.
        let same: String = (0..1000)
            .map(|_| r#"<p:b xmlns:p="urn:ns:same"/>"#)
            .collect();
        assert!(parse(&format!("<a>{same}</a>")).is_ok());
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
            "<a><?xml version=\"1.0\"?></a>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // Before the root, a declaration, comments and PIs are fine.
        assert!(parse("<?xml version=\"1.0\"?><!-- c --><?pi x?><a/>").is_ok());
    }

    #[test]
    fn formatting_whitespace_is_dropped_but_leaf_text_kept() {
        let e = parse("<a>\n  <b> x </b>\n  <c/>\n</a>").unwrap();
        assert_eq!(e.children.len(), 2);
        assert_eq!(e.child(&Ns::None, "b").unwrap().text(), " x ");
        // Whitespace is text where it touches other text, or in a leaf
        // however comments, CDATA sections or processing instructions
        // split it.
        let texts = |e: &Element| -> Vec<String> {
            e.children
                .iter()
                .filter_map(|n| match n {
                    Node::Text(t) => Some(t.clone()),
                    Node::Element(_) => None,
                })
                .collect()
        };
        let mixed = parse("<a>x <b/> <c/> y&#32;<d/>\t</a>").unwrap();
        assert_eq!(texts(&mixed), ["x ", " y "]);
        assert_eq!(mixed.children.len(), 5);
        let leaf = parse("<a> <!-- c --> <![CDATA[ ]]> <?pi?> </a>").unwrap();
        assert_eq!(leaf.text(), "     ");
        let spaced = parse(" \n<a> <b/> </a> \n").unwrap();
        assert_eq!(spaced.children.len(), 1);
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        escape_attr_into("a&b<\"\n", &mut s);
        assert_eq!(s, "a&amp;b&lt;&quot;&#10;");
        assert_eq!(escape_text("<&>"), "&lt;&amp;&gt;");
        // Short values go through the table, long ones through the SIMD
        // scan: both give the same result, clean or not.
        for unit in ["a&b<\"\n\t\r>", "plain-base64+/=", "x\r"] {
            let short = escape_text(unit);
            let long = escape_text(&unit.repeat(100));
            assert_eq!(long, short.repeat(100), "{unit:?}");
            let (mut a, mut b) = (String::new(), String::new());
            escape_attr_into(unit, &mut a);
            escape_attr_into(&unit.repeat(100), &mut b);
            assert_eq!(b, a.repeat(100), "{unit:?}");
        }
    }
}
