//! Encrypted content-key delivery: the DASH-IF vectors decrypt to their
//! published keys with the published private keys, a wrong MAC rejects the
//! whole document, our encrypted responses round-trip for one and two
//! recipients, and the certificate policy refuses weak certificates with
//! the reason.

mod common;

use cpixd::cpix;
use cpixd::crypto::x509::{load_private_key, parse_certificate, CertError, CertPolicy};
use cpixd::delivery::{decrypt_document, DeliveryError};
use std::collections::BTreeMap;

fn vector_keys(file: &str, pfx: &str) -> Result<BTreeMap<String, String>, DeliveryError> {
    let dir = common::shared("cpix-test-vectors").unwrap();
    let doc = cpix::parse(&common::read(&dir.join(file))).unwrap();
    let password = pfx.trim_end_matches(".pfx");
    let key = load_private_key(&common::read(&dir.join(pfx)), Some(password)).unwrap();
    Ok(decrypt_document(&doc, &key)?
        .into_iter()
        .map(|k| (k.kid.to_string(), cpixd::b64::encode(k.key.expose())))
        .collect())
}

#[test]
fn dash_if_vectors_decrypt_to_the_published_keys() {
    if common::shared("cpix-test-vectors").is_none() {
        return;
    }
    let single: BTreeMap<String, String> = [
        (
            "bd5adf51-cf04-410f-aac3-ec63a69e929e",
            "3rWoHYasQubO6HbJGrGtLw==",
        ),
        (
            "d2920429-87ab-41e6-a4c5-a8c836b6312e",
            "O5w9FdZiwmQK4uIXzAziaQ==",
        ),
        (
            "e17ba4b8-faff-4d30-bcba-7485e3f2e884",
            "Cwu/3hSBBRQ7SurBdZD5ow==",
        ),
        (
            "0ae6b9ad-92d2-4ebe-882b-1d07dee70715",
            "FB6/Eck9Y9SXy6bY8UU/Mw==",
        ),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(
        vector_keys("EncryptedContentKeys.xml", "Cert1.pfx").unwrap(),
        single
    );
    let multi: BTreeMap<String, String> = [
        (
            "bc365b99-0667-446f-b417-ff0398c9a4c4",
            "gMMdXMudvuGpYW5k3lzf/g==",
        ),
        (
            "1e25f2a7-76a9-4570-bc1a-d8181800d529",
            "WUxnvQjGw28bA3cgW/1jfg==",
        ),
        (
            "2e4e6c21-c0d7-4a1c-80af-bff3d7cc5270",
            "cCudMIPMQkak1l+oCVXT2A==",
        ),
        (
            "8ad35bd4-53ab-437b-8f42-6e1ea8e2f0d8",
            "zqvOfAja51IUSRV385bvoA==",
        ),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    for cert in ["Cert1.pfx", "Cert2.pfx", "Cert3.pfx", "Cert4.pfx"] {
        assert_eq!(
            vector_keys("EncryptedContentKeysWithMultipleRecipients.xml", cert).unwrap(),
            multi,
            "{cert}"
        );
    }
    // UTF-16, odd prefixes, signatures: still decrypts (Cert1 and Cert2 are recipients).
    let emc = vector_keys("EvenMoreComplex.xml", "Cert2.pfx").unwrap();
    assert_eq!(
        emc["152ae2e0-f455-486e-81d1-6df5fc5d7179"],
        "B+DoDP4r/j1NEr7b2aKXlw=="
    );
    assert_eq!(
        vector_keys("Complex.xml", "Cert1.pfx").unwrap()["a466cdfd-e556-4b1d-8098-c1a4aa78997a"],
        "rRuRUWAibaUtai0qQnb71g=="
    );
    // A wrong MAC rejects the document; a non-recipient is told so.
    assert_eq!(
        vector_keys("Invalid_WrongMac.xml", "Cert1.pfx").unwrap_err(),
        DeliveryError::IntegrityCheckFailed
    );
    assert_eq!(
        vector_keys("EncryptedContentKeys.xml", "Cert3.pfx").unwrap_err(),
        DeliveryError::NotARecipient
    );
}

#[test]
fn vector_certificates_and_the_policy() {
    let Some(dir) = common::shared("cpix-test-vectors") else {
        return;
    };
    let now = cpixd::crypto::x509::now();
    for name in ["Cert1.cer", "Cert2.cer", "Cert3.cer", "Cert4.cer"] {
        let c = parse_certificate(&common::read(&dir.join(name)))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.rsa_bits, 4096, "{name}");
        CertPolicy::CPIX.check(&c, now).unwrap();
    }
    let sha1 = parse_certificate(&common::read(&dir.join("WeakCert_Sha1.cer"))).unwrap();
    assert_eq!(
        CertPolicy::SPEKE.check(&sha1, now),
        Err(CertError::Sha1Signed)
    );
    let allowed = CertPolicy {
        allow_sha1: true,
        ..CertPolicy::SPEKE
    };
    allowed.check(&sha1, now).unwrap();
    let small = parse_certificate(&common::read(&dir.join("WeakCert_SmallKey.cer"))).unwrap();
    CertPolicy::SPEKE.check(&small, now).unwrap();
    assert_eq!(
        CertPolicy::CPIX.check(&small, now),
        Err(CertError::TooSmall {
            bits: 2048,
            min: 3072
        })
    );
}

use common::certs::{make, pair, with_recipients};
use cpixd::crypto::SeededRandom;
use cpixd::drm::DrmSettings;
use cpixd::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
use std::sync::Arc;

const REQUEST: &str = "v2-video5-audio3-widevine-playready-fairplay-live.xml";

fn request() -> String {
    String::from_utf8(common::read(
        &common::fixtures().join("requests").join(REQUEST),
    ))
    .unwrap()
}

struct Answers {
    keys: MemoryKeySource,
    rng: Arc<SeededRandom>,
    settings: DrmSettings,
}

impl Answers {
    fn new(seed: u64) -> Self {
        let rng = Arc::new(SeededRandom::new(seed));
        Answers {
            keys: MemoryKeySource::new(rng.clone()),
            rng,
            settings: DrmSettings::default(),
        }
    }

    fn answer(&self, body: &str, policy: CertPolicy) -> Result<String, speke::SpekeError> {
        let mut ctx = FillContext::new(&self.settings, &*self.rng);
        ctx.cert_policy = policy;
        speke::answer(
            body.as_bytes(),
            SpekeVersion::V2_0,
            &self.keys,
            &ctx,
            &Default::default(),
        )
        .map(|r| r.body)
    }

    /// The stored keys, read back through a clear request.
    fn stored(&self) -> BTreeMap<String, Vec<u8>> {
        let doc = cpix::parse(
            self.answer(&request(), CertPolicy::SPEKE)
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        doc.keys()
            .iter()
            .map(|k| (k.kid.to_string(), k.plain_value().unwrap().to_vec()))
            .collect()
    }
}

fn decrypt(body: &str, key_pem: &str) -> BTreeMap<String, Vec<u8>> {
    let doc = cpix::parse(body.as_bytes()).unwrap();
    let key = load_private_key(key_pem.as_bytes(), None).unwrap();
    decrypt_document(&doc, &key)
        .unwrap()
        .into_iter()
        .map(|k| (k.kid.to_string(), k.key.expose().to_vec()))
        .collect()
}

fn ivs(body: &str) -> Vec<Vec<u8>> {
    cpix::parse(body.as_bytes())
        .unwrap()
        .keys()
        .iter()
        .map(|k| match k.data.as_ref().unwrap().value.as_ref().unwrap() {
            cpix::SecretValue::Encrypted(ev) => {
                assert_eq!(ev.cipher_value.len(), 48);
                ev.cipher_value[..16].to_vec()
            }
            cpix::SecretValue::Plain(_) => panic!("a PlainValue in an encrypted response"),
        })
        .collect()
}

#[test]
fn encrypted_responses_round_trip_for_one_and_two_recipients() {
    let [r1, r2] = pair();
    let a = Answers::new(11);
    let one = a
        .answer(
            &with_recipients(&request(), &[&r1.cert_der]),
            CertPolicy::SPEKE,
        )
        .unwrap();
    assert!(!one.contains("PlainValue"), "no PlainValue anywhere");
    let stored = a.stored();
    assert_eq!(decrypt(&one, &r1.key_pem), stored);
    let two = a
        .answer(
            &with_recipients(&request(), &[&r1.cert_der, &r2.cert_der]),
            CertPolicy::SPEKE,
        )
        .unwrap();
    assert_eq!(decrypt(&two, &r1.key_pem), stored);
    assert_eq!(decrypt(&two, &r2.key_pem), stored);
    // Fresh IVs for every key and every response.
    let (i1, i2) = (ivs(&one), ivs(&two));
    let mut all: Vec<&Vec<u8>> = i1.iter().chain(&i2).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "an IV repeats");
    // The AWS layout for SPEKE: MAC key under MACMethod/Key/EncryptedValue.
    let doc = cpix::parse(two.as_bytes()).unwrap();
    for dd in doc.recipients() {
        let key = dd
            .mac_method
            .as_ref()
            .unwrap()
            .child(&cpix::xml::Ns::Cpix, "Key")
            .unwrap();
        assert!(key.child(&cpix::xml::Ns::Pskc, "EncryptedValue").is_some());
        assert_eq!(dd.document_keys.len(), 1);
    }
    // A key that is not a recipient gets nothing.
    let stranger = make(2048, 2020, 2099);
    let key = load_private_key(stranger.key_pem.as_bytes(), None).unwrap();
    assert_eq!(
        decrypt_document(&doc, &key).unwrap_err(),
        DeliveryError::NotARecipient
    );
    // Tampering with one MAC releases no key at all.
    let tampered = {
        let mut d = doc.clone();
        let k = &mut d.content_keys.as_mut().unwrap().items[3];
        k.data.as_mut().unwrap().value_mac.as_mut().unwrap()[0] ^= 1;
        d
    };
    let key = load_private_key(r1.key_pem.as_bytes(), None).unwrap();
    assert_eq!(
        decrypt_document(&tampered, &key).unwrap_err(),
        DeliveryError::IntegrityCheckFailed
    );
}

#[test]
fn weak_certificates_are_refused_with_the_reason_and_no_key_is_created() {
    let a = Answers::new(12);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "1024-bit",
            make(1024, 2020, 2099).cert_der,
            "1024-bit RSA key; at least 2048",
        ),
        ("expired", make(2048, 2010, 2011).cert_der, "expired"),
        (
            "not yet valid",
            make(2048, 2090, 2099).cert_der,
            "not valid before",
        ),
        (
            "garbage",
            b"this is not a certificate".to_vec(),
            "cannot be parsed",
        ),
    ];
    for (what, der, reason) in cases {
        let err = a
            .answer(&with_recipients(&request(), &[&der]), CertPolicy::SPEKE)
            .unwrap_err();
        assert!((400..500).contains(&err.status(true)), "{what}: {err}");
        assert!(err.body().contains(reason), "{what}: {}", err.body());
        assert!(
            err.body().contains("DeliveryData[1]"),
            "{what}: {}",
            err.body()
        );
        assert_eq!(a.keys.len(), 0, "{what}: a key was created");
    }
    let lenient = CertPolicy {
        allow_expired: true,
        ..CertPolicy::SPEKE
    };
    a.answer(
        &with_recipients(&request(), &[&make(2048, 2010, 2011).cert_der]),
        lenient,
    )
    .expect("expired allowed by policy");
    // 2048 bits: fine for SPEKE, too small for generic CPIX.
    let err = a
        .answer(
            &with_recipients(&request(), &[&pair()[0].cert_der]),
            CertPolicy::CPIX,
        )
        .unwrap_err();
    assert!(err.body().contains("at least 3072"), "{}", err.body());
    // A DeliveryData without a certificate.
    let missing = request().replacen(
        "<cpix:ContentKeyList>",
        "<cpix:DeliveryDataList><cpix:DeliveryData><cpix:DeliveryKey/></cpix:DeliveryData></cpix:DeliveryDataList><cpix:ContentKeyList>",
        1,
    );
    let err = a.answer(&missing, CertPolicy::SPEKE).unwrap_err();
    assert!(err.body().contains("X509Certificate"), "{}", err.body());
}

#[test]
fn cpix_decrypt_command() {
    let [r1, _] = pair();
    let a = Answers::new(13);
    let encrypted = a
        .answer(
            &with_recipients(&request(), &[&r1.cert_der]),
            CertPolicy::SPEKE,
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (doc_path, key_path) = (dir.path().join("doc.xml"), dir.path().join("key.pem"));
    std::fs::write(&doc_path, &encrypted).unwrap();
    std::fs::write(&key_path, &r1.key_pem).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpixd"))
        .args(["cpix", "decrypt", "--key"])
        .arg(&key_path)
        .arg(&doc_path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: BTreeMap<String, Vec<u8>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let kid = f.next().unwrap().to_owned();
            (kid, cpixd::b64::decode(f.next().unwrap()).unwrap())
        })
        .collect();
    assert_eq!(printed, a.stored());
    // One bad content-key MAC: exit 2, nothing printed.
    let at = encrypted.find("<cpix:ContentKeyList").unwrap();
    let tampered = format!(
        "{}{}",
        &encrypted[..at],
        encrypted[at..].replacen("<pskc:ValueMAC>", "<pskc:ValueMAC>AAAA", 1)
    );
    std::fs::write(&doc_path, tampered).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpixd"))
        .args(["cpix", "decrypt", "--key"])
        .arg(&key_path)
        .arg(&doc_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("integrity check"));
}

/// Mutable first child element named `local` (any namespace).
fn child_mut<'a>(e: &'a mut cpix::xml::Element, local: &str) -> &'a mut cpix::xml::Element {
    e.children
        .iter_mut()
        .find_map(|n| match n {
            cpix::xml::Node::Element(c) if c.local == local => Some(c),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {local}"))
}

/// The bytes of the first `enc:CipherValue` under `e`.
fn cipher_value(e: &cpix::xml::Element) -> Vec<u8> {
    let mut found = None;
    e.walk(&mut |c| {
        if found.is_none() && c.is(&cpix::xml::Ns::Enc, "CipherValue") {
            found = cpixd::b64::decode(&c.text());
        }
    });
    found.expect("a CipherValue")
}

/// The text of the `pskc:ValueMAC` directly under `e`, decoded.
fn value_mac(e: &cpix::xml::Element) -> Option<Vec<u8>> {
    e.child(&cpix::xml::Ns::Pskc, "ValueMAC")
        .map(|m| cpixd::b64::decode(&m.text()).expect("base64 ValueMAC"))
}

/// Flips one bit of the `pskc:ValueMAC` directly under `e`.
fn flip_value_mac(e: &mut cpix::xml::Element) {
    let mac = child_mut(e, "ValueMAC");
    let mut bytes = cpixd::b64::decode(&mac.text()).unwrap();
    bytes[7] ^= 0x10;
    mac.set_text(cpixd::b64::encode(&bytes));
}

/// `DocumentKey/Data/Secret` of DeliveryData `i`.
fn doc_key_secret(doc: &mut cpix::Document, i: usize) -> &mut cpix::xml::Element {
    let dd = &mut doc.delivery_data.as_mut().unwrap().items[i];
    child_mut(child_mut(&mut dd.document_keys[0], "Data"), "Secret")
}

/// `MACMethod/Key` of DeliveryData `i`.
fn mac_method_key(doc: &mut cpix::Document, i: usize) -> &mut cpix::xml::Element {
    let dd = &mut doc.delivery_data.as_mut().unwrap().items[i];
    child_mut(dd.mac_method.as_mut().unwrap(), "Key")
}

#[test]
fn the_macs_on_the_wrapped_document_and_mac_keys_are_emitted_right_and_verified() {
    let [r1, r2] = pair();
    let a = Answers::new(14);
    let body = a
        .answer(
            &with_recipients(&request(), &[&r1.cert_der, &r2.cert_der]),
            CertPolicy::SPEKE,
        )
        .unwrap();
    let stored = a.stored();
    let mut doc = cpix::parse(body.as_bytes()).unwrap();
    // Emitted as AWS's reference server does: HMAC-SHA512(MAC key, the
    // CipherValue bytes of the wrapped key beside it), for every recipient.
    for (i, r) in [r1, r2].iter().enumerate() {
        let private = load_private_key(r.key_pem.as_bytes(), None).unwrap();
        let wrapped_mac_key = cipher_value(mac_method_key(&mut doc, i));
        let mac_key = cpixd::crypto::rsa_oaep_sha1_decrypt(&private.key, &wrapped_mac_key).unwrap();
        for container in [
            doc_key_secret(&mut doc, i).clone(),
            mac_method_key(&mut doc, i).clone(),
        ] {
            let expected = cpixd::crypto::hmac_sha512(&mac_key, &cipher_value(&container));
            assert_eq!(
                value_mac(&container).as_deref(),
                Some(&expected[..]),
                "recipient {i}: {}",
                container.local
            );
        }
    }
    let key1 = load_private_key(r1.key_pem.as_bytes(), None).unwrap();
    assert_eq!(decrypt(&body, &r1.key_pem), stored);
    // A flipped MAC on either wrapped key refuses the whole document.
    for which in ["DocumentKey", "MACMethod"] {
        let mut bad = doc.clone();
        match which {
            "DocumentKey" => flip_value_mac(doc_key_secret(&mut bad, 0)),
            _ => flip_value_mac(mac_method_key(&mut bad, 0)),
        }
        assert_eq!(
            decrypt_document(&bad, &key1).unwrap_err(),
            DeliveryError::IntegrityCheckFailed,
            "{which}"
        );
        // Through the writer and reader too (what a client would receive).
        let text = cpix::write(&bad, &Default::default());
        assert_eq!(
            decrypt_document(&cpix::parse(text.as_bytes()).unwrap(), &key1).unwrap_err(),
            DeliveryError::IntegrityCheckFailed,
            "{which} (written)"
        );
    }
    // A ValueMAC that is not base64 fails as well.
    let mut bad = doc.clone();
    child_mut(doc_key_secret(&mut bad, 0), "ValueMAC").set_text("%%%");
    assert_eq!(
        decrypt_document(&bad, &key1).unwrap_err(),
        DeliveryError::IntegrityCheckFailed
    );
    // They are optional (the DASH-IF layout has none): absent, nothing to check.
    let mut without = doc.clone();
    let no_mac = |n: &cpix::xml::Node| !matches!(n, cpix::xml::Node::Element(e) if e.is(&cpix::xml::Ns::Pskc, "ValueMAC"));
    doc_key_secret(&mut without, 0).children.retain(no_mac);
    mac_method_key(&mut without, 0).children.retain(no_mac);
    let keys: BTreeMap<String, Vec<u8>> = decrypt_document(&without, &key1)
        .unwrap()
        .into_iter()
        .map(|k| (k.kid.to_string(), k.key.expose().to_vec()))
        .collect();
    assert_eq!(keys, stored);
}

#[test]
fn a_value_mac_added_to_a_dash_if_vector_is_verified() {
    let Some(dir) = common::shared("cpix-test-vectors") else {
        return;
    };
    let doc = cpix::parse(&common::read(&dir.join("EncryptedContentKeys.xml"))).unwrap();
    let key = load_private_key(&common::read(&dir.join("Cert1.pfx")), Some("Cert1")).unwrap();
    let published = decrypt_document(&doc, &key).unwrap();
    assert_eq!(published.len(), 4);
    // The vectors carry no MAC on the wrapped keys; give the DocumentKey
    // one made with the document's MAC key: still decrypts. A wrong one: refused.
    let mut with_mac = doc.clone();
    let wrapped_mac_key = cipher_value(with_mac.recipients()[0].mac_method.as_ref().unwrap());
    let mac_key = cpixd::crypto::rsa_oaep_sha1_decrypt(&key.key, &wrapped_mac_key).unwrap();
    let secret = doc_key_secret(&mut with_mac, 0);
    let mac = cpixd::crypto::hmac_sha512(&mac_key, &cipher_value(secret));
    secret.children.push(cpix::xml::Node::Element(
        cpix::xml::Element::new(cpix::xml::Ns::Pskc, "ValueMAC")
            .with_text(cpixd::b64::encode(&mac)),
    ));
    assert_eq!(decrypt_document(&with_mac, &key).unwrap(), published);
    flip_value_mac(doc_key_secret(&mut with_mac, 0));
    assert_eq!(
        decrypt_document(&with_mac, &key).unwrap_err(),
        DeliveryError::IntegrityCheckFailed
    );
    // A flipped content-key MAC in the four-recipient vector: refused for every recipient.
    let mut multi = cpix::parse(&common::read(
        &dir.join("EncryptedContentKeysWithMultipleRecipients.xml"),
    ))
    .unwrap();
    multi.content_keys.as_mut().unwrap().items[2]
        .data
        .as_mut()
        .unwrap()
        .value_mac
        .as_mut()
        .unwrap()[63] ^= 1;
    for n in 1..=4 {
        let key = load_private_key(
            &common::read(&dir.join(format!("Cert{n}.pfx"))),
            Some(&format!("Cert{n}")),
        )
        .unwrap();
        assert_eq!(
            decrypt_document(&multi, &key).unwrap_err(),
            DeliveryError::IntegrityCheckFailed,
            "Cert{n}"
        );
    }
}

#[test]
fn an_ec_certificate_is_refused_as_not_rsa() {
    let ec = rcgen::generate_simple_self_signed(vec!["ec.test".into()]).unwrap();
    assert_eq!(ec.key_pair.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
    let der = ec.cert.der().to_vec();
    let cert = parse_certificate(&der).unwrap();
    assert!(cert.rsa.is_none());
    let err = CertPolicy::SPEKE
        .check(&cert, cpixd::crypto::x509::now())
        .unwrap_err();
    assert!(matches!(err, CertError::NotRsa(_)), "{err:?}");
    assert!(err.to_string().contains("not RSA"), "{err}");
    // In a request: a 4xx naming the reason and the DeliveryData, no key made.
    let a = Answers::new(15);
    let err = a
        .answer(&with_recipients(&request(), &[&der]), CertPolicy::SPEKE)
        .unwrap_err();
    assert!((400..500).contains(&err.status(true)), "{err}");
    assert!(err.body().contains("not RSA"), "{}", err.body());
    assert!(err.body().contains("DeliveryData[1]"), "{}", err.body());
    assert_eq!(a.keys.len(), 0);
}

#[test]
fn pem_certificates_are_accepted_and_parsed_certificates_are_cached() {
    let r = &pair()[0];
    let der = &r.cert_der;
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        cpixd::b64::encode(der)
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let from_pem = parse_certificate(pem.as_bytes()).unwrap();
    let from_der = parse_certificate(der).unwrap();
    assert_eq!(from_pem.der, *der);
    assert_eq!(from_pem.fingerprint, from_der.fingerprint);
    assert_eq!(from_pem.rsa_bits, 2048);
    CertPolicy::SPEKE
        .check(&from_pem, cpixd::crypto::x509::now())
        .unwrap();
    // Bare base64 (as inside ds:X509Certificate) too.
    assert_eq!(
        parse_certificate(cpixd::b64::encode(der).as_bytes())
            .unwrap()
            .fingerprint,
        from_der.fingerprint
    );

    let cache = cpixd::crypto::x509::CertCache::default();
    assert!(cache.is_empty());
    let first = cache.get_or_parse(der).unwrap();
    let second = cache.get_or_parse(der).unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the same parse is returned");
    assert_eq!(cache.len(), 1);
    let other = cache.get_or_parse(&pair()[1].cert_der).unwrap();
    assert!(!Arc::ptr_eq(&first, &other));
    assert_eq!(cache.len(), 2);
    // A refused certificate is not cached.
    assert!(cache.get_or_parse(b"not a certificate").is_err());
    assert_eq!(cache.len(), 2);
}

#[test]
fn the_rfc_6030_mac_key_layout_decrypts() {
    use cpix::xml::{Element, Node, Ns};
    // No vector uses MACMethod/pskc:MACKey: rebuild one of our answers in
    // that layout (the MAC key's EncryptionMethod and CipherData under
    // pskc:MACKey, no ValueMACs on the wrapped keys).
    let [r1, _] = pair();
    let a = Answers::new(16);
    let body = a
        .answer(
            &with_recipients(&request(), &[&r1.cert_der]),
            CertPolicy::SPEKE,
        )
        .unwrap();
    let mut doc = cpix::parse(body.as_bytes()).unwrap();
    let dd = &mut doc.delivery_data.as_mut().unwrap().items[0];
    let ev = dd
        .mac_method
        .as_ref()
        .unwrap()
        .child(&Ns::Cpix, "Key")
        .unwrap()
        .child(&Ns::Pskc, "EncryptedValue")
        .unwrap()
        .clone();
    let mut mac_key = Element::new(Ns::Pskc, "MACKey");
    mac_key.children = ev.children;
    let mm = dd.mac_method.as_mut().unwrap();
    mm.children = vec![Node::Element(mac_key)];
    child_mut(child_mut(&mut dd.document_keys[0], "Data"), "Secret")
        .children
        .retain(|n| !matches!(n, Node::Element(e) if e.is(&Ns::Pskc, "ValueMAC")));
    let text = cpix::write(&doc, &Default::default());
    assert!(
        text.contains("MACKey>") && !text.contains("<cpix:Key>"),
        "{text}"
    );
    assert_eq!(decrypt(&text, &r1.key_pem), a.stored());
    // And its content-key MACs are still enforced.
    let mut bad = cpix::parse(text.as_bytes()).unwrap();
    bad.content_keys.as_mut().unwrap().items[0]
        .data
        .as_mut()
        .unwrap()
        .value_mac
        .as_mut()
        .unwrap()[0] ^= 1;
    let key = load_private_key(r1.key_pem.as_bytes(), None).unwrap();
    assert_eq!(
        decrypt_document(&bad, &key).unwrap_err(),
        DeliveryError::IntegrityCheckFailed
    );
}
