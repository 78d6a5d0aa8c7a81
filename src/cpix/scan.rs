//! The XML scanner under [`super::xml::parse_document`]: one forward pass
//! over decoded document text that yields tags (with their attributes),
//! character data, CDATA sections and the XML declaration, and skips
//! comments and processing instructions. It checks what is local to a
//! token: names, quoting, `=` and whitespace between attributes, duplicate
//! attribute names and a bounded attribute count, terminated comments,
//! CDATA sections and references. Nesting, namespaces and limits on the
//! whole document are the tree builder's.
//!
//! Names are read through a byte table and every other delimiter is found
//! with `memchr`; each byte is looked at a bounded number of times and no
//! token is re-read, so scanning is linear in the input whatever it holds.

use super::CpixError;
use memchr::{memchr, memchr3, memmem};
use std::borrow::Cow;

/// A qualified name as written, `prefix:local` or `local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QName<'a> {
    /// The whole name.
    pub full: &'a str,
    /// Where the colon is (0: no prefix; a name never starts with one).
    colon: usize,
}

impl<'a> QName<'a> {
    /// The prefix, empty when there is none.
    pub fn prefix(&self) -> &'a str {
        &self.full[..self.colon]
    }

    /// The local part.
    pub fn local(&self) -> &'a str {
        match self.colon {
            0 => self.full,
            c => &self.full[c + 1..],
        }
    }
}

/// An attribute as written: its qualified name and its raw value (between
/// the quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttr<'a> {
    /// The attribute's name.
    pub name: QName<'a>,
    /// The value as written.
    pub value: &'a str,
    /// Whether the value holds references (`&…;`) to resolve.
    pub escaped: bool,
}

/// One piece of the document. Attributes of a start tag are written to the
/// vector passed to [`Scanner::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// `<?xml …?>` with its `encoding`, if declared.
    Decl {
        /// The declared encoding.
        encoding: Option<&'a str>,
    },
    /// `<name …>`, or `<name …/>` when `empty`.
    Start {
        /// Qualified name.
        name: QName<'a>,
        /// Self-closing?
        empty: bool,
    },
    /// `</name>`.
    End {
        /// Qualified name.
        name: QName<'a>,
    },
    /// Character data, references unresolved (see [`unescape`]).
    Text(&'a str),
    /// The content of `<![CDATA[…]]>`, literal.
    CData(&'a str),
    /// `<!DOCTYPE`: never accepted, reported so the caller can say so.
    DocType,
}

/// The scanner's position in the text and its bound on attributes.
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    max_attributes: usize,
}

const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Byte classes for names: what ends a name inside a tag, what may not be
/// in one, and the colon.
const END: u8 = 1;
const BAD: u8 = 2;
const COLON: u8 = 4;
static NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if is_space(b) || matches!(b, b'/' | b'>' | b'=' | b'?') {
            END
        } else if matches!(b, b'<' | b'&' | b'"' | b'\'' | b';' | b'(' | b')' | b',') {
            BAD
        } else if b == b':' {
            COLON
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Bytes that may not start a name, or the local part of one.
fn bad_start(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':')
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub fn new(text: &'a str, max_attributes: usize) -> Self {
        Scanner {
            text,
            pos: 0,
            max_attributes,
        }
    }

    /// Byte offset of the next token.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    /// True when the next token is a start tag (not an end tag, comment,
    /// CDATA section, declaration or processing instruction).
    pub fn at_start_tag(&self) -> bool {
        let b = self.bytes();
        b.get(self.pos) == Some(&b'<')
            && b.get(self.pos + 1)
                .is_some_and(|c| !matches!(c, b'/' | b'!' | b'?'))
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn err(&self, at: usize, message: impl Into<String>) -> CpixError {
        CpixError::Xml {
            position: at as u64,
            message: message.into(),
        }
    }

    fn skip_space(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() && is_space(b[self.pos]) {
            self.pos += 1;
        }
    }

    /// The name starting at the current position, as XML Namespaces
    /// allows it: not empty, no markup characters, at most one colon with
    /// a name on either side, neither part starting with a digit, `-` or
    /// `.`.
    fn name(&mut self, what: &str) -> Result<QName<'a>, CpixError> {
        let b = self.bytes();
        let start = self.pos;
        let rest = &b[start..];
        let (mut len, mut colon, mut colons, mut bad) = (rest.len(), 0, 0, false);
        for (i, &c) in rest.iter().enumerate() {
            match NAME_CLASS[c as usize] {
                0 => {}
                END => {
                    len = i;
                    break;
                }
                COLON => {
                    colon = i;
                    colons += 1;
                }
                _ => bad = true,
            }
        }
        self.pos = start + len;
        let full = &self.text[start..self.pos];
        let name = full.as_bytes();
        let local_start = if colons == 0 { 0 } else { colon + 1 };
        let valid = !bad
            && colons <= 1
            && !name.is_empty()
            && !bad_start(name[0])
            && local_start < name.len()
            && !bad_start(name[local_start]);
        if !valid {
            return Err(self.err(start, format!("{what} has no valid name")));
        }
        Ok(QName { full, colon })
    }

    /// `open` again at the current position, when the bytes there are its
    /// bytes followed by `>`: the name [`Self::name`] would read there.
    fn repeated_name(&self, open: QName<'a>) -> Option<QName<'a>> {
        let (start, len) = (self.pos, open.full.len());
        let b = self.bytes();
        let same = b.get(start..start + len) == Some(open.full.as_bytes());
        (same && b.get(start + len) == Some(&b'>')).then(|| QName {
            full: &self.text[start..start + len],
            colon: open.colon,
        })
    }

    /// Finds `needle` from the current position and returns the text
    /// before it, leaving the position after it.
    fn until(&mut self, needle: &[u8], what: &str) -> Result<&'a str, CpixError> {
        let start = self.pos;
        match memmem::find(&self.bytes()[start..], needle) {
            Some(i) => {
                self.pos = start + i + needle.len();
                Ok(&self.text[start..start + i])
            }
            None => Err(self.err(start, format!("unterminated {what}"))),
        }
    }

    /// Attributes up to the end of a tag; returns whether it ended with
    /// `/>` (`?>` in a declaration, where `closer` is `?`).
    fn attributes(
        &mut self,
        tag_start: usize,
        closer: u8,
        out: &mut Vec<RawAttr<'a>>,
    ) -> Result<bool, CpixError> {
        let b = self.bytes();
        loop {
            let had_space = self.pos < b.len() && is_space(b[self.pos]);
            self.skip_space();
            match b.get(self.pos) {
                None => return Err(self.err(tag_start, "unterminated tag")),
                Some(b'>') if closer == b'/' => {
                    self.pos += 1;
                    return Ok(false);
                }
                Some(&c) if c == closer => {
                    if b.get(self.pos + 1) != Some(&b'>') {
                        return Err(self.err(self.pos, "a tag has a stray character"));
                    }
                    self.pos += 2;
                    return Ok(true);
                }
                Some(_) if !had_space => {
                    return Err(self.err(self.pos, "attributes must be separated by whitespace"));
                }
                Some(_) => {}
            }
            if out.len() >= self.max_attributes {
                return Err(CpixError::LimitExceeded {
                    what: "attributes on one element",
                    limit: self.max_attributes,
                });
            }
            let at = self.pos;
            let name = self.name("an attribute")?;
            let full = name.full;
            self.skip_space();
            if b.get(self.pos) != Some(&b'=') {
                return Err(self.err(at, format!("attribute {full} has no value")));
            }
            self.pos += 1;
            self.skip_space();
            let quote = match b.get(self.pos) {
                Some(&q @ (b'"' | b'\'')) => q,
                _ => return Err(self.err(at, format!("attribute {full} is not quoted"))),
            };
            self.pos += 1;
            let start = self.pos;
            let mut escaped = false;
            let mut end = start;
            loop {
                let Some(i) = memchr3(quote, b'<', b'&', &b[end..]) else {
                    return Err(self.err(at, format!("attribute {full} is not terminated")));
                };
                end += i;
                match b[end] {
                    b'<' => return Err(self.err(at, format!("attribute {full} holds a '<'"))),
                    b'&' => escaped = true,
                    _ => break,
                }
                end += 1;
            }
            self.pos = end;
            let value = &self.text[start..self.pos];
            self.pos += 1;
            // At most `max_attributes` names: the pairwise check is bounded.
            if out.iter().any(|a| a.name.full == full) {
                return Err(self.err(at, format!("attribute {full} appears twice")));
            }
            out.push(RawAttr {
                name,
                value,
                escaped,
            });
        }
    }

    /// The next token, `None` at the end of the text. A start tag's
    /// attributes replace the contents of `attrs`. `open` is the name of
    /// the innermost open element, if any: an end tag that repeats it
    /// byte for byte, followed by `>`, is taken without scanning the name
    /// again (the same name was checked at its start tag).
    pub fn next(
        &mut self,
        attrs: &mut Vec<RawAttr<'a>>,
        open: Option<QName<'a>>,
    ) -> Result<Option<Token<'a>>, CpixError> {
        // Comments and processing instructions are skipped in this loop,
        // not by recursion: a document of nothing else must not grow the
        // stack.
        loop {
            let b = self.bytes();
            let start = self.pos;
            if start >= b.len() {
                return Ok(None);
            }
            if b[start] != b'<' {
                let end = memchr(b'<', &b[start..]).map_or(b.len(), |i| start + i);
                self.pos = end;
                return Ok(Some(Token::Text(&self.text[start..end])));
            }
            let rest = &b[start + 1..];
            match rest.first() {
                Some(b'/') => {
                    self.pos = start + 2;
                    if let Some(name) = open.and_then(|q| self.repeated_name(q)) {
                        self.pos += name.full.len() + 1;
                        return Ok(Some(Token::End { name }));
                    }
                    let name = self.name("an end tag")?;
                    self.skip_space();
                    if b.get(self.pos) != Some(&b'>') {
                        let full = name.full;
                        return Err(self.err(start, format!("end tag {full} is not closed")));
                    }
                    self.pos += 1;
                    return Ok(Some(Token::End { name }));
                }
                Some(b'?') => {
                    self.pos = start + 2;
                    let target = self.name("a processing instruction")?;
                    if target.full.eq_ignore_ascii_case("xml") {
                        attrs.clear();
                        self.attributes(start, b'?', attrs)?;
                        let encoding = attrs
                            .iter()
                            .find(|a| a.name.full == "encoding")
                            .map(|a| a.value);
                        return Ok(Some(Token::Decl { encoding }));
                    }
                    self.until(b"?>", "processing instruction")?;
                    continue;
                }
                Some(b'!') => {
                    if rest.starts_with(b"!--") {
                        self.pos = start + 4;
                        self.until(b"-->", "comment")?;
                        continue;
                    } else if rest.starts_with(b"![CDATA[") {
                        self.pos = start + 9;
                        return Ok(Some(Token::CData(self.until(b"]]>", "CDATA section")?)));
                    } else if rest.starts_with(b"!DOCTYPE") {
                        self.pos = start + 9;
                        return Ok(Some(Token::DocType));
                    } else {
                        return Err(self.err(start, "unknown markup after '<!'"));
                    }
                }
                _ => {
                    self.pos = start + 1;
                    let name = self.name("a start tag")?;
                    attrs.clear();
                    let empty = self.attributes(start, b'/', attrs)?;
                    return Ok(Some(Token::Start { name, empty }));
                }
            }
        }
    }
}

/// Resolves `&name;` / `&#N;` / `&#xN;`: only the five predefined entities
/// and character references of XML characters exist; anything else is
/// refused.
fn resolve_reference(name: &str) -> Result<char, CpixError> {
    let undefined = || CpixError::UndefinedEntity(name.to_owned());
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x') {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16)
            }
            None if !num.is_empty() && num.bytes().all(|c| c.is_ascii_digit()) => num.parse(),
            _ => return Err(undefined()),
        }
        .map_err(|_| undefined())?;
        return char::from_u32(code).ok_or_else(undefined);
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => Err(undefined()),
    }
}

/// The longest reference worth looking at (`&#x10FFFF;` is 10 bytes); a
/// longer run without `;` is an error, so an unterminated `&` costs a
/// bounded look-ahead.
const MAX_REFERENCE: usize = 32;

/// Resolves the references in `raw` (text or an attribute value); borrows
/// when there are none.
pub fn unescape(raw: &str) -> Result<Cow<'_, str>, CpixError> {
    let b = raw.as_bytes();
    let Some(first) = memchr(b'&', b) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..first]);
    let mut i = first;
    while i < b.len() {
        // `b[i]` is '&'.
        let window = &b[i + 1..b.len().min(i + 1 + MAX_REFERENCE)];
        let end = memchr(b';', window).ok_or_else(|| CpixError::Xml {
            position: 0,
            message: "an '&' that does not start a reference".into(),
        })?;
        out.push(resolve_reference(&raw[i + 1..i + 1 + end])?);
        i += end + 2;
        let next = memchr(b'&', &b[i..]).map_or(b.len(), |n| i + n);
        out.push_str(&raw[i..next]);
        i = next;
    }
    Ok(Cow::Owned(out))
}

/// Whether `s` is only XML whitespace.
pub fn is_blank(s: &str) -> bool {
    s.bytes().all(is_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names instead of tokens, to compare.
    #[derive(Debug, PartialEq)]
    enum T<'a> {
        Decl(Option<&'a str>),
        Start(&'a str, bool, Vec<(&'a str, &'a str, bool)>),
        End(&'a str),
        Text(&'a str),
        CData(&'a str),
        DocType,
    }

    fn tokens(text: &str) -> Result<Vec<T<'_>>, CpixError> {
        tokens_hinted(text, false)
    }

    /// The tokens of `text`; with `hint`, every call names the innermost
    /// open start tag, as the tree builder does.
    fn tokens_hinted(text: &str, hint: bool) -> Result<Vec<T<'_>>, CpixError> {
        let mut s = Scanner::new(text, 8);
        let mut attrs = Vec::new();
        let mut out = Vec::new();
        let mut open: Vec<QName<'_>> = Vec::new();
        while let Some(t) = s.next(&mut attrs, open.last().copied().filter(|_| hint))? {
            match t {
                Token::Start { name, empty: false } => open.push(name),
                Token::End { .. } => _ = open.pop(),
                _ => {}
            }
            out.push(match t {
                Token::Decl { encoding } => T::Decl(encoding),
                Token::Start { name, empty } => T::Start(
                    name.full,
                    empty,
                    attrs
                        .iter()
                        .map(|a| (a.name.full, a.value, a.escaped))
                        .collect(),
                ),
                Token::End { name } => T::End(name.full),
                Token::Text(t) => T::Text(t),
                Token::CData(t) => T::CData(t),
                Token::DocType => T::DocType,
            });
        }
        Ok(out)
    }

    #[test]
    fn tags_text_and_attributes() {
        let t =
            tokens("<?xml version='1.0' encoding=\"UTF-8\"?>\n<!-- c --><a:b x = \"1\" y='<>'/>");
        assert!(t.is_err(), "'<' in a value is refused");
        let t = tokens(
            "<?xml version='1.0' encoding=\"UTF-8\"?>\n<!-- c -><--><?pi x?><a:b x = \"1\" y='>\"&amp;'>t&amp;<![CDATA[<&]]></a:b >",
        )
        .unwrap();
        assert_eq!(
            t,
            vec![
                T::Decl(Some("UTF-8")),
                T::Text("\n"),
                T::Start(
                    "a:b",
                    false,
                    vec![("x", "1", false), ("y", ">\"&amp;", true)]
                ),
                T::Text("t&amp;"),
                T::CData("<&"),
                T::End("a:b"),
            ]
        );
        assert_eq!(tokens("<e/>").unwrap(), vec![T::Start("e", true, vec![])]);
        let mut s = Scanner::new("<p:q/>", 8);
        match s.next(&mut Vec::new(), None).unwrap() {
            Some(Token::Start { name, .. }) => {
                assert_eq!((name.prefix(), name.local()), ("p", "q"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_end_tag_repeating_the_open_name_reads_as_when_scanned() {
        for text in [
            "<a:b><c/></a:b>",
            "<a:b></a:b >",
            "<a:b></a:bc>",
            "<a:bc></a:b>",
            "<a:b></x:b>",
            "<ab></a>",
            "<a></a",
            "<a></a:>",
            "<a></a/>",
            "<a><b></b></a>",
            "<a>t</a>",
        ] {
            assert_eq!(tokens_hinted(text, true), tokens(text), "{text:?}");
        }
        let mut s = Scanner::new("<p:q></p:q>", 8);
        let Ok(Some(Token::Start { name: open, .. })) = s.next(&mut Vec::new(), None) else {
            panic!("start tag");
        };
        match s.next(&mut Vec::new(), Some(open)).unwrap() {
            Some(Token::End { name }) => {
                assert_eq!((name.prefix(), name.local()), ("p", "q"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.position(), 11);
    }

    proptest::proptest! {
        /// Documents pieced together from tags, names that share prefixes,
        /// attributes and text scan to the same tokens, or the same error,
        /// whether or not the open element's name is given.
        #[test]
        fn the_open_name_hint_never_changes_a_scan(
            pieces in proptest::collection::vec(0..PIECES.len(), 0..40)
        ) {
            let text: String = pieces.iter().map(|&i| PIECES[i]).collect();
            proptest::prop_assert_eq!(tokens_hinted(&text, true), tokens(&text));
        }
    }

    const PIECES: [&str; 16] = [
        "<a", "<a:b", "<ab", "</a", "</a:b", "</ab", "</a:", ">", "/>", " ", " x='1'", "a", "t",
        "b", "<!--c-->", "&amp;",
    ];

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "<a x='1'y='2'/>",
            "<a x/>",
            "<a x=1/>",
            "<a x='1/>",
            "<a x='1' x='2'/>",
            "<a / >",
            "<1a/>",
            "<a:/>",
            "<:a/>",
            "<a:b:c/>",
            "</>",
            "</a",
            "<a",
            "<!-- open",
            "<![CDATA[ open",
            "<?pi open",
            "<!ELEMENT a ANY>",
        ] {
            assert!(tokens(bad).is_err(), "{bad:?}");
        }
        assert_eq!(tokens("<!DOCTYPE a>").unwrap()[0], T::DocType);
    }

    #[test]
    fn attribute_count_is_bounded_before_duplicates_are_checked() {
        let many: String = (0..9).map(|i| format!(" a{i}='x'")).collect();
        assert!(matches!(
            tokens(&format!("<e{many}/>")),
            Err(CpixError::LimitExceeded { .. })
        ));
    }

    #[test]
    fn references() {
        assert_eq!(unescape("plain").unwrap(), Cow::Borrowed("plain"));
        assert_eq!(
            unescape("&lt;&#65;&#x42;&amp;&gt;&quot;&apos;x").unwrap(),
            "<AB&>\"'x"
        );
        for bad in [
            "&foo;",
            "& x",
            "&#;",
            "&#x;",
            "&#xZZ;",
            "&#-1;",
            "&#x110000;",
            "&#+5;",
        ] {
            assert!(unescape(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            unescape("&ent;").unwrap_err(),
            CpixError::UndefinedEntity("ent".into())
        );
        // An '&' without ';' within the window is refused without scanning
        // the rest.
        let long = format!("&{}", "a".repeat(10_000));
        assert!(unescape(&long).is_err());
    }
}
