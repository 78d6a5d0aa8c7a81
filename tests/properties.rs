//! Property tests: random CPIX models survive writer → reader unchanged, and
//! random byte mutations of real requests never make the reader or the
//! SPEKE engine panic.

mod common;

use cpixd::b64::Base64Text;
use cpixd::cpix::xml::{Attribute, Element, Node, Ns};
use cpixd::cpix::*;
use cpixd::crypto::SeededRandom;
use cpixd::drm::DrmSettings;
use cpixd::ids::{KeyId, SystemId};
use cpixd::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
use proptest::prelude::*;
use std::sync::Arc;

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_]{0,8}"
}

/// Text that XML 1.0 can carry, including characters that need escaping.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('<'),
            Just('>'),
            Just('&'),
            Just('"'),
            Just('\''),
            Just('\t'),
            Just('\n'),
            Just('\r'),
            Just(' '),
            Just('é'),
            Just('⚽'),
            proptest::char::range('a', 'z'),
            proptest::char::range('0', '9'),
        ],
        0..24,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn foreign_ns() -> impl Strategy<Value = Ns> + Clone {
    prop_oneof![
        Just(Ns::Speke),
        Just(Ns::Ds),
        Just(Ns::from_uri("urn:vendor:one")),
        Just(Ns::from_uri("http://example.com/ns#two")),
    ]
}

fn attr(ns: impl Strategy<Value = Ns>) -> impl Strategy<Value = Attribute> {
    (ns, name(), prop::option::of("[a-z]{1,4}"), text()).prop_map(|(ns, local, prefix, value)| {
        Attribute {
            ns,
            local: cpixd::cpix::xml::intern(&local),
            prefix,
            value,
        }
    })
}

/// Attributes with distinct names, none of them reserved.
fn attrs(reserved: &'static [&'static str]) -> impl Strategy<Value = Vec<Attribute>> {
    proptest::collection::vec(attr(prop_oneof![Just(Ns::None), foreign_ns()]), 0..3).prop_map(
        move |v| {
            let mut seen = std::collections::HashSet::new();
            v.into_iter()
                .filter(|a| {
                    !reserved.contains(&a.local.as_ref())
                        && seen.insert((a.ns.clone(), a.local.clone()))
                })
                .collect()
        },
    )
}

fn element(ns: impl Strategy<Value = Ns> + Clone + 'static) -> impl Strategy<Value = Element> {
    let leaf =
        (ns.clone(), name(), attrs(&[]), text()).prop_map(|(ns, local, attributes, t)| Element {
            ns,
            local: cpixd::cpix::xml::intern(&local),
            prefix: None,
            attributes,
            children: if t.is_empty() {
                vec![]
            } else {
                vec![Node::Text(t)]
            },
        });
    leaf.prop_recursive(3, 12, 3, move |inner| {
        (
            ns.clone(),
            name(),
            attrs(&[]),
            proptest::collection::vec(inner, 1..3),
        )
            .prop_map(|(ns, local, attributes, kids)| Element {
                ns,
                local: cpixd::cpix::xml::intern(&local),
                prefix: None,
                attributes,
                children: kids.into_iter().map(Node::Element).collect(),
            })
    })
}

fn kid() -> impl Strategy<Value = KeyId> {
    any::<[u8; 16]>().prop_map(KeyId::from_bytes)
}

/// Text as read from a document, or base64 the server encoded (written
/// without the escape scan).
fn signal() -> impl Strategy<Value = Signal> {
    let read = (attrs(&["playlist"]), text())
        .prop_map(|(attributes, value)| Signal::with_attributes(attributes, value));
    let encoded = (
        attrs(&["playlist"]),
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(attributes, bytes)| {
            let mut s = Signal::encoded(Base64Text::encode(&bytes));
            s.attributes = attributes;
            s
        });
    prop_oneof![read, encoded]
}

fn key_data() -> impl Strategy<Value = KeyData> {
    let value = prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| Some(SecretValue::Plain(SecretBytes::new(b)))),
        (
            prop::option::of(text()),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(algorithm, cipher_value)| Some(SecretValue::Encrypted(
                EncryptedValue {
                    algorithm,
                    cipher_value
                }
            ))),
    ];
    (
        value,
        prop::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(value, value_mac)| KeyData { value, value_mac })
}

fn content_key() -> impl Strategy<Value = ContentKey> {
    (
        kid(),
        attrs(&["kid"]),
        proptest::collection::vec(element(foreign_ns()), 0..2),
        prop::option::of(key_data()),
        proptest::collection::vec(element(foreign_ns()), 0..2),
    )
        .prop_map(|(kid, attributes, leading, data, trailing)| ContentKey {
            kid,
            kid_text: None,
            attributes,
            leading,
            // Without Data, trailing elements read back as leading ones.
            trailing: if data.is_some() { trailing } else { vec![] },
            data,
        })
}

fn drm_system() -> impl Strategy<Value = DrmSystem> {
    let playlists = prop_oneof![
        Just(vec![]),
        Just(vec![None]),
        Just(vec![Some("media")]),
        Just(vec![Some("media"), Some("master")]),
    ];
    (
        (kid(), any::<[u8; 16]>(), attrs(&["kid", "systemId"])),
        (
            prop::option::of(signal()),
            prop::option::of(signal()),
            prop::option::of(signal()),
            prop::option::of(signal()),
            prop::option::of(signal()),
        ),
        (playlists, text()),
        proptest::collection::vec(element(foreign_ns()), 0..3),
    )
        .prop_map(
            |((kid, sys, attributes), (p, c, u, s, h), (pl, t), extensions)| {
                let mut d = DrmSystem::new(kid, SystemId::from_bytes(sys));
                d.attributes = attributes;
                d.pssh = p;
                d.content_protection_data = c;
                d.uri_ext_x_key = u;
                d.smooth_streaming = s;
                d.hds_signaling_data = h;
                d.hls_signaling_data = pl
                    .into_iter()
                    .map(|p| {
                        let mut s = Signal::new(t.clone());
                        if let Some(p) = p {
                            s.attributes.push(Attribute::new("playlist", p));
                        }
                        s
                    })
                    .collect();
                d.extensions = extensions;
                d
            },
        )
}

fn filter_element() -> impl Strategy<Value = Element> {
    let n = || prop::option::of(0u64..10_000_000);
    prop_oneof![
        "[a-z_]{1,8}".prop_map(|p| Filter::KeyPeriod { period_id: &p }.to_element()),
        text().prop_map(|l| Filter::Label { label: &l }.to_element()),
        (n(), n(), prop::option::of(any::<bool>()), n()).prop_map(|(a, b, hdr, fps)| {
            Filter::Video(VideoFilter {
                min_pixels: a,
                max_pixels: b,
                hdr,
                wcg: None,
                min_fps: None,
                max_fps: fps,
            })
            .to_element()
        }),
        (n(), n()).prop_map(|(a, b)| Filter::Audio(AudioFilter {
            min_channels: a,
            max_channels: b
        })
        .to_element()),
        element(foreign_ns()),
    ]
}

fn rule() -> impl Strategy<Value = UsageRule> {
    (
        kid(),
        prop::option::of("[A-Z0-9_+]{1,12}"),
        proptest::collection::vec(filter_element(), 0..4),
    )
        .prop_map(|(kid, track, filters)| {
            let mut r = UsageRule::build(kid, track.as_deref(), &[]);
            r.0.children = filters.into_iter().map(Node::Element).collect();
            r
        })
}

fn list<T: std::fmt::Debug>(
    items: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<List<T>>> {
    prop::option::of(
        (attrs(&[]), proptest::collection::vec(items, 0..4))
            .prop_map(|(attributes, items)| List { attributes, items }),
    )
}

fn document() -> impl Strategy<Value = Document> {
    (
        attrs(&[]),
        list(content_key()),
        list(drm_system()),
        list(
            ("[a-z]{1,6}", 0u64..100_000).prop_map(|(id, i)| ContentKeyPeriod::with_index(&id, i)),
        ),
        list(rule()),
        proptest::collection::vec(element(foreign_ns()), 0..2),
    )
        .prop_map(
            |(attributes, keys, systems, periods, rules, extensions)| Document {
                attributes,
                content_keys: keys,
                drm_systems: systems,
                periods,
                usage_rules: rules,
                extensions,
                ..Document::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn models_round_trip_through_writer_and_reader(doc in document(), compact in any::<bool>()) {
        let opts = WriteOptions {
            indent: if compact { None } else { Some(2) },
            xml_declaration: !compact,
        };
        let xml = write(&doc, &opts);
        let back = parse_structure(xml.as_bytes(), &ReadOptions::default())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(back, doc, "{}", xml);
    }
}

/// Inputs for the mutation test: our request fixtures, plus the shared ones.
fn corpus() -> Vec<Vec<u8>> {
    let mut dirs = vec![common::fixtures().join("requests")];
    dirs.extend(common::shared("speke-fixtures"));
    dirs.extend(common::shared("cpix-test-vectors"));
    let mut out = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "xml") {
                out.push(common::read(&p));
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if b.is_empty() {
            break;
        }
        let n = b.len();
        match m {
            Mutation::Flip(i, x) => b[i % n] ^= x | 1,
            Mutation::Insert(i, bytes) => {
                let i = i % n;
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(i, len) => {
                let i = i % n;
                let end = (i + len).min(n);
                b.drain(i..end);
            }
            Mutation::Truncate(i) => b.truncate(i % n),
            Mutation::Duplicate(i, len) => {
                let i = i % n;
                let end = (i + len).min(n);
                let chunk = b[i..end].to_vec();
                b.splice(i..i, chunk);
            }
        }
    }
    b
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(b"<".to_vec()),
        Just(b"&".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"<!DOCTYPE a>".to_vec()),
        Just(b"&#0;".to_vec()),
        Just(b"xmlns:cpix=\"urn:x\" ".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, l)| Mutation::Delete(i, l)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..200).prop_map(|(i, l)| Mutation::Duplicate(i, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn mutated_requests_never_panic(
        pick in any::<usize>(),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        thread_local!(static CORPUS: Vec<Vec<u8>> = corpus());
        let input = CORPUS.with(|c| apply(c[pick % c.len()].clone(), &muts));
        let _ = parse(&input);
        let rng = Arc::new(SeededRandom::new(1));
        let keys = MemoryKeySource::new(rng.clone());
        let settings = DrmSettings::default();
        let ctx = FillContext::new(&settings, &*rng);
        for v in [SpekeVersion::V1_0, SpekeVersion::V2_0, SpekeVersion::V2_1] {
            if let Err(e) = speke::answer(&input, v, &keys, &ctx, &Limits::default()) {
                prop_assert!(e.status(v.is_v2()) < 500, "{e}");
            }
        }
    }
}
