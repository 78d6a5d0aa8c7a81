//! The DASH-IF CPIX test vectors and the SPEKE fixtures parse, and write back
//! without losing keys, DRM systems, periods or usage rules.

mod common;

use cpixd::cpix::{self, Document, WriteOptions};

fn round_trip(doc: &Document) -> Document {
    for opts in [
        WriteOptions::default(),
        WriteOptions {
            indent: None,
            xml_declaration: false,
        },
    ] {
        let text = cpix::write(doc, &opts);
        let again =
            cpix::parse(text.as_bytes()).unwrap_or_else(|e| panic!("re-parse failed: {e}\n{text}"));
        assert_eq!(&again, doc, "round trip changed the model:\n{text}");
    }
    doc.clone()
}

const VECTORS: &[(&str, usize, usize, usize, usize)] = &[
    // file, keys, drm systems, periods, usage rules
    ("ClearContentKeysOnly.xml", 4, 0, 0, 0),
    ("Complex.xml", 4, 12, 0, 2),
    ("EmptyDocument.xml", 0, 0, 0, 0),
    ("EncryptedContentKeys.xml", 4, 0, 0, 0),
    ("EncryptedContentKeysWithMultipleRecipients.xml", 4, 0, 0, 0),
    ("EvenMoreComplex.xml", 4, 12, 0, 2),
    ("Invalid_BadContentKeysSignature.xml", 1, 0, 0, 0),
    ("Invalid_BadDocumentSignature.xml", 1, 0, 0, 0),
    ("Invalid_WrongMac.xml", 1, 0, 0, 0),
    ("KeyRotationMultiKeyMulitPeriod.xml", 4, 0, 2, 4),
    ("KeyRotationMultiKeySinglePeriod.xml", 2, 0, 1, 2),
    ("RecipientsWithoutContentKeys.xml", 0, 0, 0, 0),
    ("UsageRulesBasedOnLabels.xml", 4, 0, 0, 5),
];

#[test]
fn dash_if_vectors_parse_and_round_trip() {
    let Some(dir) = common::shared("cpix-test-vectors") else {
        return;
    };
    for &(file, keys, systems, periods, rules) in VECTORS {
        let bytes = common::read(&dir.join(file));
        let doc = cpix::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.keys().len(), keys, "{file} keys");
        assert_eq!(doc.systems().len(), systems, "{file} DRM systems");
        assert_eq!(doc.period_items().len(), periods, "{file} periods");
        assert_eq!(doc.rules().len(), rules, "{file} usage rules");
        for (i, r) in doc.rules().iter().enumerate() {
            r.view(&format!("{file} rule {i}")).unwrap();
        }
        round_trip(&doc);
    }
}

#[test]
fn utf16_vector_with_odd_prefixes_reads_its_content() {
    let Some(dir) = common::shared("cpix-test-vectors") else {
        return;
    };
    let bytes = common::read(&dir.join("EvenMoreComplex.xml"));
    assert_eq!(&bytes[..2], &[0xFF, 0xFE], "vector is UTF-16LE with BOM");
    let doc = cpix::parse(&bytes).unwrap();
    let kids: Vec<String> = doc.keys().iter().map(|k| k.kid.to_string()).collect();
    assert_eq!(
        kids,
        [
            "152ae2e0-f455-486e-81d1-6df5fc5d7179",
            "0cbe1c84-5c54-4ce8-8893-ff77f7d793e1",
            "486a8d08-29f7-42f5-9a9a-a1ab9b0685ad",
            "84044421-a871-4999-8931-289aa6f4a607"
        ]
    );
    assert_eq!(doc.recipients().len(), 2);
    assert_eq!(doc.signatures.len(), 6);
    let cpix::SecretValue::Encrypted(ev) =
        doc.keys()[0].data.as_ref().unwrap().value.as_ref().unwrap()
    else {
        panic!("encrypted key expected");
    };
    assert_eq!(ev.cipher_value.len(), 48);
}

#[test]
fn clear_vector_values_are_read() {
    let Some(dir) = common::shared("cpix-test-vectors") else {
        return;
    };
    let doc = cpix::parse(&common::read(&dir.join("ClearContentKeysOnly.xml"))).unwrap();
    for k in doc.keys() {
        assert_eq!(k.plain_value().map(<[u8]>::len), Some(16), "{}", k.kid);
    }
    let rules = cpix::validate::views(&doc).unwrap();
    cpix::validate::references(&doc, &rules).unwrap();
}

#[test]
fn speke_fixtures_parse_and_round_trip() {
    let Some(dir) = common::shared("speke-fixtures") else {
        return;
    };
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".xml") || name.ends_with(".fragment.xml") {
            continue;
        }
        let doc = cpix::parse(&common::read(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!doc.keys().is_empty(), "{name} has keys");
        round_trip(&doc);
        n += 1;
    }
    assert!(n >= 25, "only {n} fixtures found");
}

#[test]
fn fragments_are_not_documents() {
    let Some(dir) = common::shared("speke-fixtures") else {
        return;
    };
    for name in [
        "v1-encrypted-request-deliverydatalist.fragment.xml",
        "v1-encrypted-response-deliverydatalist.fragment.xml",
    ] {
        assert!(
            cpix::parse(&common::read(&dir.join(name))).is_err(),
            "{name}"
        );
    }
}
