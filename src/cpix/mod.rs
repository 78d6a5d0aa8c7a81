//! DASH-IF CPIX 2.0–2.4: the document model, a namespace-aware reader that
//! matches namespace URIs (never prefixes) and refuses DOCTYPEs, a writer
//! that emits schema order, and the structural and referential checks that
//! the XML schema alone does not make.

pub mod model;
mod reader;
pub mod rules;
mod scan;
pub mod validate;
mod writer;
pub mod xml;

pub use model::*;
pub use rules::{AudioFilter, BitrateFilter, Filter, PeriodView, UsageRuleView, VideoFilter};
pub use writer::{write, WriteOptions};
pub use xml::Limits;

/// Everything that can be wrong with a CPIX document. Messages name the
/// element and attribute involved and never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpixError {
    /// The bytes are not in a supported character encoding.
    #[error("unsupported or invalid encoding: {0}")]
    Encoding(String),
    /// The document is not well-formed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Xml {
        /// Byte offset in the (UTF-8) input near the problem.
        position: u64,
        /// Parser message.
        message: String,
    },
    /// The document has a DOCTYPE declaration (never processed).
    #[error("DOCTYPE declarations are not allowed")]
    DoctypeForbidden,
    /// An entity other than the five predefined ones was referenced.
    #[error("undefined entity &{0};")]
    UndefinedEntity(String),
    /// A namespace prefix is used without being declared.
    #[error("undeclared namespace prefix {0}")]
    UnboundPrefix(String),
    /// A parsing limit was exceeded.
    #[error("document exceeds the limit of {limit} {what}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// The input holds no element at all.
    #[error("empty document")]
    Empty,
    /// The root element is not `{urn:dashif:org:cpix}CPIX`.
    #[error("root element is {found}, expected {{urn:dashif:org:cpix}}CPIX")]
    NotCpix {
        /// The root element found, as `{namespace}local`.
        found: String,
    },
    /// A mandatory attribute is missing.
    #[error("{element}: missing attribute @{attribute}")]
    MissingAttribute {
        /// Path of the element.
        element: String,
        /// Attribute name.
        attribute: &'static str,
    },
    /// An attribute has an unusable value.
    #[error("{element}: @{attribute}={value:?} is {reason}")]
    InvalidAttribute {
        /// Path of the element.
        element: String,
        /// Attribute name.
        attribute: String,
        /// The value (truncated).
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// An element's content is unusable.
    #[error("{element}: {reason}")]
    InvalidContent {
        /// Path of the element.
        element: String,
        /// Why it is refused.
        reason: String,
    },
    /// An element that may occur once occurs again.
    #[error("{element}: more than one {what}")]
    Duplicate {
        /// Path of the parent element.
        element: String,
        /// What is duplicated.
        what: String,
    },
    /// A reference points at nothing (`kid`, `periodId`).
    #[error("{element}: @{attribute}={value:?} does not match any {target}")]
    UnknownReference {
        /// Path of the referring element.
        element: String,
        /// Attribute name.
        attribute: &'static str,
        /// The value (truncated).
        value: String,
        /// What it should have referenced.
        target: &'static str,
    },
}

/// Options for [`parse_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Size, depth and count limits.
    pub limits: Limits,
}

/// Parses a CPIX document with default limits.
pub fn parse(input: &[u8]) -> Result<Document, CpixError> {
    parse_with(input, &ReadOptions::default())
}

/// Parses a CPIX document and checks its structure, including the
/// attributes of periods and usage-rule filters.
pub fn parse_with(input: &[u8], opts: &ReadOptions) -> Result<Document, CpixError> {
    let doc = parse_structure(input, opts)?;
    validate::views(&doc)?;
    Ok(doc)
}

/// Parses a CPIX document without typing its periods and usage rules, for
/// callers that report problems there in their own terms (SPEKE 2 answers
/// "Malformed encryption contract").
pub fn parse_structure(input: &[u8], opts: &ReadOptions) -> Result<Document, CpixError> {
    let root = xml::parse_document(input, &opts.limits)?;
    reader::read(root)
}

/// Decodes base64 as found in CPIX: standard alphabet, whitespace and line
/// breaks ignored, padding optional, non-zero trailing bits tolerated.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    crate::b64::decode(text)
}
