//! The CPIX 2.0–2.4 document model. Parts the key server owns (content
//! keys, DRM systems, delivery data) are typed; parts it only echoes
//! (periods, usage rules and their filters, update history, signatures,
//! foreign-namespace elements) keep their XML verbatim and expose typed
//! views (see `rules`), so they come back exactly as sent.

use super::xml::{find_attr, Attribute, Element};
use crate::b64::Base64Text;
use crate::ids::{KeyId, SystemId};

/// A whole CPIX document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// Attributes of the root `CPIX` element (`id`, `contentId`, `version`,
    /// `name`, foreign attributes) in source order.
    pub attributes: Vec<Attribute>,
    /// `DeliveryDataList`: recipients of encrypted keys.
    pub delivery_data: Option<List<DeliveryData>>,
    /// `ContentKeyList`.
    pub content_keys: Option<List<ContentKey>>,
    /// `DRMSystemList`.
    pub drm_systems: Option<List<DrmSystem>>,
    /// `ContentKeyPeriodList`.
    pub periods: Option<List<ContentKeyPeriod>>,
    /// `ContentKeyUsageRuleList`.
    pub usage_rules: Option<List<UsageRule>>,
    /// `UpdateHistoryItemList`, verbatim.
    pub update_history: Option<Element>,
    /// `ds:Signature` elements, verbatim.
    pub signatures: Vec<Element>,
    /// Other children of the root (foreign namespaces), verbatim.
    pub extensions: Vec<Element>,
}

impl Document {
    /// `CPIX@id`.
    pub fn id(&self) -> Option<&str> {
        find_attr(&self.attributes, "id")
    }

    /// `CPIX@contentId`.
    pub fn content_id(&self) -> Option<&str> {
        find_attr(&self.attributes, "contentId")
    }

    /// `CPIX@version`.
    pub fn version(&self) -> Option<&str> {
        find_attr(&self.attributes, "version")
    }

    /// `CPIX@name`.
    pub fn name(&self) -> Option<&str> {
        find_attr(&self.attributes, "name")
    }

    /// The content keys (empty when the list is absent).
    pub fn keys(&self) -> &[ContentKey] {
        self.content_keys.as_ref().map_or(&[], |l| &l.items)
    }

    /// The DRM systems (empty when the list is absent).
    pub fn systems(&self) -> &[DrmSystem] {
        self.drm_systems.as_ref().map_or(&[], |l| &l.items)
    }

    /// The key periods (empty when the list is absent).
    pub fn period_items(&self) -> &[ContentKeyPeriod] {
        self.periods.as_ref().map_or(&[], |l| &l.items)
    }

    /// The usage rules (empty when the list is absent).
    pub fn rules(&self) -> &[UsageRule] {
        self.usage_rules.as_ref().map_or(&[], |l| &l.items)
    }

    /// The recipients (empty when the list is absent).
    pub fn recipients(&self) -> &[DeliveryData] {
        self.delivery_data.as_ref().map_or(&[], |l| &l.items)
    }
}

/// One of the `*List` elements: its attributes and its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T> {
    /// Attributes of the list element (`id`, `updateVersion`, …).
    pub attributes: Vec<Attribute>,
    /// The items in document order.
    pub items: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            attributes: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<T> List<T> {
    /// A list without attributes.
    pub fn new(items: Vec<T>) -> Self {
        List {
            attributes: Vec::new(),
            items,
        }
    }
}

/// Secret bytes (a `PlainValue`, a decrypted key): the crypto module's
/// wiped buffer.
pub use crate::crypto::SecretBytes;

/// `pskc:EncryptedValue`: an `xenc` ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedValue {
    /// `enc:EncryptionMethod@Algorithm`.
    pub algorithm: Option<String>,
    /// Decoded `enc:CipherData/enc:CipherValue`.
    pub cipher_value: Vec<u8>,
}

/// The value of a `pskc:Secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// `pskc:PlainValue`, decoded.
    Plain(SecretBytes),
    /// `pskc:EncryptedValue`.
    Encrypted(EncryptedValue),
}

/// `cpix:Data/pskc:Secret` of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyData {
    /// The plain or encrypted value; `None` for an empty `Secret`.
    pub value: Option<SecretValue>,
    /// Decoded `pskc:ValueMAC`.
    pub value_mac: Option<Vec<u8>>,
}

/// `ContentKey`: one content key, requested (no `Data`) or filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentKey {
    /// `@kid`.
    pub kid: KeyId,
    /// `@kid` as the source wrote it, when that is not the lowercase form
    /// (e.g. upper case); written back as long as it still names `kid`.
    pub kid_text: Option<String>,
    /// All attributes except `kid`, in source order (`explicitIV`,
    /// `commonEncryptionScheme`, `id`, `dependsOnKey`, `Algorithm`, …).
    pub attributes: Vec<Attribute>,
    /// PSKC `KeyType` children before `Data` (`Issuer`, …, CPIX 2.4
    /// `HDCPData`), verbatim.
    pub leading: Vec<Element>,
    /// `Data`: the key value.
    pub data: Option<KeyData>,
    /// Children after `Data` (`UserId`, `Policy`, extensions), verbatim.
    pub trailing: Vec<Element>,
}

impl ContentKey {
    /// A key request for `kid` with no attributes.
    pub fn new(kid: KeyId) -> Self {
        ContentKey {
            kid,
            kid_text: None,
            attributes: Vec::new(),
            leading: Vec::new(),
            data: None,
            trailing: Vec::new(),
        }
    }

    /// `@commonEncryptionScheme`.
    pub fn common_encryption_scheme(&self) -> Option<&str> {
        find_attr(&self.attributes, "commonEncryptionScheme")
    }

    /// `@explicitIV` as written (may be invalid base64 in the wild).
    pub fn explicit_iv(&self) -> Option<&str> {
        find_attr(&self.attributes, "explicitIV")
    }

    /// `@dependsOnKey`.
    pub fn depends_on_key(&self) -> Option<&str> {
        find_attr(&self.attributes, "dependsOnKey")
    }

    /// The plain key bytes, when the key carries a `PlainValue`.
    pub fn plain_value(&self) -> Option<&[u8]> {
        match self.data.as_ref()?.value.as_ref()? {
            SecretValue::Plain(b) => Some(b.expose()),
            SecretValue::Encrypted(_) => None,
        }
    }
}

/// A DRMSystem child holding text (base64 in CPIX, plain text for
/// `SmoothStreamingProtectionHeaderData`). An empty value is a request
/// placeholder.
///
/// The text is private so that it cannot change without the signal knowing
/// whether it is base64 this crate encoded, which the writer copies without
/// scanning it for characters to escape.
#[derive(Debug, Clone, Default, Eq)]
pub struct Signal {
    /// Attributes of the element (`playlist`, CPIX 2.4 `robustness`, …).
    pub attributes: Vec<Attribute>,
    value: String,
    encoded: bool,
}

/// Two signals are equal when their attributes and text are, however the
/// text was made.
impl PartialEq for Signal {
    fn eq(&self, other: &Self) -> bool {
        self.attributes == other.attributes && self.value == other.value
    }
}

impl Signal {
    /// A signal without attributes holding `value` as written (escaped when
    /// it is written out).
    pub fn new(value: impl Into<String>) -> Self {
        Signal {
            attributes: Vec::new(),
            value: value.into(),
            encoded: false,
        }
    }

    /// A signal without attributes holding base64 this crate encoded.
    pub fn encoded(value: Base64Text) -> Self {
        let mut s = Signal::default();
        s.set_encoded(value);
        s
    }

    /// A signal with `attributes` holding text read from a document.
    pub fn with_attributes(attributes: Vec<Attribute>, value: String) -> Self {
        Signal {
            attributes,
            value,
            encoded: false,
        }
    }

    /// The text content.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Replaces the text with base64 this crate encoded.
    pub fn set_encoded(&mut self, value: Base64Text) {
        self.value = value.into_string();
        self.encoded = true;
    }

    /// True when the text is base64 this crate encoded: nothing in it needs
    /// escaping.
    pub fn is_encoded(&self) -> bool {
        self.encoded
    }

    /// True when the element is an empty placeholder.
    pub fn is_placeholder(&self) -> bool {
        self.value.trim().is_empty()
    }

    /// `@playlist` of an `HLSSignalingData`.
    pub fn playlist(&self) -> Option<&str> {
        find_attr(&self.attributes, "playlist")
    }
}

/// `DRMSystem`: the signalling of one DRM for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrmSystem {
    /// `@kid`.
    pub kid: KeyId,
    /// `@kid` as the source wrote it, when that is not the lowercase form;
    /// written back as long as it still names `kid`.
    pub kid_text: Option<String>,
    /// `@systemId`.
    pub system_id: SystemId,
    /// Other attributes (`id`, `name`, `updateVersion`, …) in source order.
    pub attributes: Vec<Attribute>,
    /// `PSSH`.
    pub pssh: Option<Signal>,
    /// `ContentProtectionData`.
    pub content_protection_data: Option<Signal>,
    /// `URIExtXKey` (deprecated, SPEKE 1.0).
    pub uri_ext_x_key: Option<Signal>,
    /// `HLSSignalingData` (0..2, distinct `@playlist`).
    pub hls_signaling_data: Vec<Signal>,
    /// `SmoothStreamingProtectionHeaderData`.
    pub smooth_streaming: Option<Signal>,
    /// `HDSSignalingData`.
    pub hds_signaling_data: Option<Signal>,
    /// Foreign-namespace children (SPEKE 1.0 `speke:*`, vendor data), verbatim.
    pub extensions: Vec<Element>,
}

impl DrmSystem {
    /// A DRMSystem for `kid` and `system_id` with no children.
    pub fn new(kid: KeyId, system_id: SystemId) -> Self {
        DrmSystem {
            kid,
            kid_text: None,
            system_id,
            attributes: Vec::new(),
            pssh: None,
            content_protection_data: None,
            uri_ext_x_key: None,
            hls_signaling_data: Vec::new(),
            smooth_streaming: None,
            hds_signaling_data: None,
            extensions: Vec::new(),
        }
    }
}

/// `ContentKeyPeriod`, kept verbatim; typed view in `rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentKeyPeriod(pub Element);

/// `ContentKeyUsageRule`, kept verbatim; typed view in `rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRule(pub Element);

/// `DeliveryData`: one recipient of encrypted content keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryData {
    /// Attributes (`id`, `updateVersion`, `name`, …).
    pub attributes: Vec<Attribute>,
    /// `DeliveryKey` (a `ds:KeyInfoType`), verbatim.
    pub delivery_key: Element,
    /// `DocumentKey` elements (one in 2.3, several in 2.4), verbatim.
    pub document_keys: Vec<Element>,
    /// `MACMethod`, verbatim (three layouts exist in the wild).
    pub mac_method: Option<Element>,
    /// `Description`, `SendingEntity`, `SenderPointOfContact`,
    /// `ReceivingEntity` and extensions, verbatim.
    pub other: Vec<Element>,
}
