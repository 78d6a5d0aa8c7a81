//! Request handling, table-driven: the real requests in
//! `shared/speke-fixtures/` get the behaviour `INDEX.md` describes, each of
//! the ten SPEKE 2 error strings comes out exactly, and the structural
//! negatives of the SPEKE checklist are refused with a 4xx before any key
//! is created.

mod common;

use common::check;
use cpixd::cpix::{self, Limits};
use cpixd::crypto::SeededRandom;
use cpixd::drm::DrmSettings;
use cpixd::speke::{self, FillContext, MemoryKeySource, SpekeError, SpekeVersion};
use std::sync::Arc;

struct Outcome {
    result: Result<String, SpekeError>,
    keys_created: usize,
}

fn run(body: &[u8], version: SpekeVersion) -> Outcome {
    let rng = Arc::new(SeededRandom::new(5));
    let keys = MemoryKeySource::new(rng.clone());
    let settings = DrmSettings::default();
    let ctx = FillContext::new(&settings, &*rng);
    let result = speke::answer(body, version, &keys, &ctx, &Limits::default()).map(|r| r.body);
    Outcome {
        result,
        keys_created: keys.len(),
    }
}

/// Asserts a refusal with status 4xx, the exact body and no key created.
fn refused(body: &[u8], version: SpekeVersion, expected_body: &str) -> SpekeError {
    let out = run(body, version);
    let err = match out.result {
        Ok(_) => panic!("accepted, expected {expected_body:?}"),
        Err(e) => e,
    };
    let status = err.status(version.is_v2());
    assert!((400..500).contains(&status), "{err}: status {status}");
    assert_eq!(err.body(), expected_body, "detail: {:?}", err.detail());
    assert_eq!(out.keys_created, 0, "a refused request created keys");
    err
}

fn accepted(body: &[u8], version: SpekeVersion) -> cpix::Document {
    let out = run(body, version);
    let text = out
        .result
        .unwrap_or_else(|e| panic!("refused: {e} {:?}", e.detail()));
    let doc = cpix::parse(text.as_bytes()).unwrap();
    let problems = check::problems(&doc, version.is_v2());
    assert!(problems.is_empty(), "{problems:#?}");
    doc
}

const V2_BASE: &str = "v2-video1-audio1-widevine-vod.xml";
const V2_FP: &str = "v2-video3-audio3-fairplay-live.xml";

fn own(name: &str) -> String {
    String::from_utf8(common::read(
        &common::fixtures().join("requests").join(name),
    ))
    .unwrap()
}

#[test]
fn shared_fixtures_behave_as_indexed() {
    let Some(dir) = common::shared("speke-fixtures") else {
        return;
    };
    use SpekeVersion::*;
    let fairplay = "ContentKey@commonEncryptionScheme non compatible with DRMSystem 94ce86fb-07ff-4f43-adb8-93d2fa968ca2";
    // (file, version, Ok or the exact error body)
    let table: &[(&str, SpekeVersion, Result<(), &str>)] = &[
        (
            "v1-live-request-hls-aes128-fairplay-widevine-playready.xml",
            V1_0,
            Ok(()),
        ),
        (
            "v1-vod-request-hls-aes128-fairplay-widevine-playready.xml",
            V1_0,
            Ok(()),
        ),
        ("v1-kid-override-request.xml", V1_0, Ok(())),
        ("v1-refserver-hls-aes128-live-request.xml", V1_0, Ok(())),
        ("v1-speke-chalice-hls-aes128-request.xml", V1_0, Ok(())),
        ("v1-mediapackage-dash-playready-request.xml", V1_0, Ok(())),
        (
            "v2-preset-video-1-audio-1-widevine-vod-request.xml",
            V2_0,
            Ok(()),
        ),
        (
            "v2-preset-video-1-audio-1-widevine-playready-fairplay-cbcs-live-request.xml",
            V2_0,
            Ok(()),
        ),
        (
            "v2-preset-video-1-audio-1-fairplay-live-request.xml",
            V2_0,
            Ok(()),
        ),
        (
            "v2-preset-video-2-audio-2-widevine-playready-live-request.xml",
            V2_0,
            Ok(()),
        ),
        (
            "v2-preset-video-3-audio-2-widevine-playready-fairplay-live-request.xml",
            V2_0,
            Ok(()),
        ),
        (
            "v2-preset-video-5-audio-3-widevine-fairplay-live-request.xml",
            V2_0,
            Ok(()),
        ),
        (
            "v2-preset-video-8-audio-2-playready-live-request.xml",
            V2_0,
            Ok(()),
        ),
        ("v2-preset-shared-widevine-live-request.xml", V2_0, Ok(())),
        ("v2-preset-shared-widevine-vod-request.xml", V2_0, Ok(())),
        ("v2-playready-mss-pssh-request.xml", V2_0, Ok(())),
        ("v2-playready-pssh-hls-request.xml", V2_0, Ok(())),
        ("v2-widevine-playready-pssh-only-request.xml", V2_0, Ok(())),
        ("v2-kid-override-request.xml", V2_0, Ok(())),
        (
            "v2-negative-unsupported-cpix-version-request.xml",
            V2_0,
            Err("Unsupported CPIX@version"),
        ),
        (
            "v2-negative-all-mixed-with-video-rules-request.xml",
            V2_0,
            Err("Malformed encryption contract"),
        ),
        (
            "v2-negative-all-mixed-with-audio-rules-request.xml",
            V2_0,
            Err("Malformed encryption contract"),
        ),
        (
            "v2-refserver-readme-widevine-playready-fairplay-cenc-request.xml",
            V2_0,
            Err(fairplay),
        ),
    ];
    let mut listed = std::collections::BTreeSet::new();
    for (file, version, expected) in table {
        listed.insert(*file);
        let body = common::read(&dir.join(file));
        match expected {
            Ok(()) => {
                let doc = accepted(&body, *version);
                let req = cpix::parse(&body).unwrap();
                assert_eq!(doc.usage_rules, req.usage_rules, "{file}");
                assert_eq!(doc.periods, req.periods, "{file}");
            }
            Err(msg) => {
                refused(&body, *version, msg);
            }
        }
    }
    // Every request fixture in the folder is in the table.
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with("-request.xml") {
            assert!(listed.contains(name.as_str()), "{name} is not in the table");
        }
    }
    // The AWS suite's negative test: the FairPlay request with cenc instead of cbcs.
    let fp = String::from_utf8(common::read(
        &dir.join("v2-preset-video-1-audio-1-fairplay-live-request.xml"),
    ))
    .unwrap()
    .replace("\"cbcs\"", "\"cenc\"");
    refused(fp.as_bytes(), V2_0, fairplay);
}

#[test]
fn v1_responses_have_the_shape_of_the_aws_examples() {
    let Some(dir) = common::shared("speke-fixtures") else {
        return;
    };
    // The AWS example responses are structure oracles: the same children in
    // each DRMSystem (their PSSH/PRO bytes belong to other KIDs).
    for (req, resp) in [
        (
            "v1-live-request-hls-aes128-fairplay-widevine-playready.xml",
            "v1-live-response-hls-aes128-fairplay-widevine-playready.xml",
        ),
        (
            "v1-vod-request-hls-aes128-fairplay-widevine-playready.xml",
            "v1-vod-response-hls-aes128-fairplay-widevine-playready.xml",
        ),
    ] {
        let ours = accepted(&common::read(&dir.join(req)), SpekeVersion::V1_0);
        let theirs = cpix::parse(&common::read(&dir.join(resp))).unwrap();
        assert_eq!(ours.id(), theirs.id());
        let shape = |d: &cpix::Document| {
            d.systems()
                .iter()
                .map(|s| {
                    let mut names = Vec::new();
                    if s.pssh.is_some() {
                        names.push("PSSH".to_owned());
                    }
                    if s.uri_ext_x_key.is_some() {
                        names.push("URIExtXKey".to_owned());
                    }
                    names.extend(s.extensions.iter().map(|e| e.local.to_string()));
                    names.sort();
                    (s.system_id, names)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&ours), shape(&theirs), "{resp}");
        let decode = |d: &cpix::Document, sys, local: &str| {
            let s = d.systems().iter().find(|s| s.system_id == sys).unwrap();
            let e = s.extensions.iter().find(|e| e.local == local).unwrap();
            e.text().into_owned()
        };
        for sys in [
            cpixd::ids::SystemId::FAIRPLAY,
            cpixd::ids::SystemId::HLS_AES128_SPEKE_V1,
        ] {
            for local in ["KeyFormat", "KeyFormatVersions"] {
                assert_eq!(
                    decode(&ours, sys, local),
                    decode(&theirs, sys, local),
                    "{sys} {local}"
                );
            }
        }
        assert_eq!(
            ours.keys()[0].explicit_iv(),
            theirs.keys()[0].explicit_iv(),
            "the request IV is echoed"
        );
    }
    // The speke-chalice "expected" response is not a valid response.
    let bad = cpix::parse(&common::read(
        &dir.join("v1-speke-chalice-hls-aes128-response.xml"),
    ))
    .unwrap();
    let problems = check::problems(&bad, false);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("PlainValue is 32 bytes")),
        "{problems:?}"
    );
}

#[test]
fn each_v2_error_string_is_exact() {
    use SpekeVersion::V2_0;
    let base = own(V2_BASE);
    let first_kid = cpix::parse(base.as_bytes()).unwrap().keys()[0].kid;
    let cases: Vec<(String, String)> = vec![
        (base.replace(r#"contentId="vod-asset-1" "#, ""), "Missing CPIX@contentId".into()),
        (base.replace(r#"contentId="vod-asset-1""#, r#"contentId="""#), "Missing CPIX@contentId".into()),
        (base.replace(r#"version="2.3" "#, ""), "Missing CPIX@version".into()),
        (base.replace(r#"version="2.3""#, r#"version="4.0""#), "Unsupported CPIX@version".into()),
        (
            base.replacen(r#" commonEncryptionScheme="cenc""#, "", 1),
            format!("Missing ContentKey@commonEncryptionScheme for KID {first_kid}"),
        ),
        (
            base.replacen(r#"commonEncryptionScheme="cenc""#, r#"commonEncryptionScheme="cbcs""#, 1),
            "Non compliant ContentKey@commonEncryptionScheme combination".into(),
        ),
        (
            own(V2_FP).replace(r#""cbcs""#, r#""cenc""#),
            "ContentKey@commonEncryptionScheme non compatible with DRMSystem 94ce86fb-07ff-4f43-adb8-93d2fa968ca2".into(),
        ),
        (
            base.replace(r#"intendedTrackType="AUDIO""#, r#"intendedTrackType="VIDEO""#),
            "Malformed encryption contract".into(),
        ),
        (
            base.replace("<cpix:AudioFilter/>", r#"<cpix:AudioFilter/><cpix:VideoFilter minPixels="2073601"/>"#),
            "Requested CPIX encryption contract not supported".into(),
        ),
        (
            base.replace("<cpix:VideoFilter/>", "").replace("<cpix:AudioFilter/>", ""),
            "Missing CPIX encryption contract".into(),
        ),
    ];
    for (body, expected) in &cases {
        let err = refused(body.as_bytes(), V2_0, expected);
        assert_eq!(err.status(true), 422);
    }
    // The tenth string comes from the header, before the body is looked at.
    let err = SpekeVersion::from_header(Some("9.9")).unwrap_err();
    assert_eq!(err.body(), "Unsupported SPEKE version");
    assert_eq!(err.status(true), 422);
    assert_eq!(SpekeVersion::from_header(None).unwrap(), SpekeVersion::V1_0);
    assert_eq!(
        SpekeVersion::from_header(Some(" 2.0")).unwrap(),
        SpekeVersion::V2_0
    );
}

/// The ten SPEKE 2 error strings of AWS's table (two end with a value).
const AWS_STRINGS: [&str; 10] = [
    "Missing CPIX@contentId",
    "Missing CPIX@version",
    "Unsupported CPIX@version",
    "Missing ContentKey@commonEncryptionScheme for KID ",
    "Non compliant ContentKey@commonEncryptionScheme combination",
    "ContentKey@commonEncryptionScheme non compatible with DRMSystem ",
    "Unsupported SPEKE version",
    "Malformed encryption contract",
    "Requested CPIX encryption contract not supported",
    "Missing CPIX encryption contract",
];

#[test]
fn the_readme_says_which_refusals_carry_the_aws_strings() {
    let readme = String::from_utf8(common::read(&common::root().join("README.md"))).unwrap();
    let start = readme.find("### Refusals").expect("a Refusals section");
    let section = &readme[start..];
    let section = &section[..section[4..].find("\n#").map_or(section.len(), |i| i + 4)];
    for s in AWS_STRINGS {
        assert!(
            section.contains(&format!("`{}", s.trim_end())),
            "{s:?} not in the README's Refusals table"
        );
    }
    assert!(section.contains("cpixd's own message"));
    assert!(!readme.contains("Every SPEKE 2 refusal carries the exact AWS message"));
}

#[test]
fn structural_negatives_are_refused() {
    use SpekeVersion::{V1_0, V2_0};
    let base = own(V2_BASE);
    let doc = cpix::parse(base.as_bytes()).unwrap();
    let kid = doc.keys()[0].kid.to_string();
    let kid2 = doc.keys()[1].kid.to_string();
    let live = own("v2-video2-audio2-playready-live.xml");
    let cut = |s: &str, start: &str, end: &str| -> String {
        let a = s.find(start).unwrap();
        let b = s[a..].find(end).unwrap() + a + end.len();
        format!("{}{}", &s[..a], &s[b..])
    };
    // A list kept but with every child removed (`<L>…</L>` → `<L></L>`).
    let empty = |s: &str, list: &str| -> String {
        let (open, close) = (format!("<cpix:{list}>"), format!("</cpix:{list}>"));
        let a = s.find(&open).unwrap() + open.len();
        let b = s.find(&close).unwrap();
        format!("{}{}", &s[..a], &s[b..])
    };
    let self_closing = |s: &str, list: &str| -> String {
        let (open, close) = (format!("<cpix:{list}>"), format!("</cpix:{list}>"));
        let a = s.find(&open).unwrap();
        let b = s.find(&close).unwrap() + close.len();
        format!("{}<cpix:{list}/>{}", &s[..a], &s[b..])
    };
    let malformed = "Malformed encryption contract";
    let cases: Vec<(&str, String, SpekeVersion, Option<&str>)> = vec![
        ("empty body", String::new(), V2_0, None),
        (
            "truncated XML",
            base[..base.len() / 2].to_owned(),
            V2_0,
            None,
        ),
        ("not XML", "hello".into(), V1_0, None),
        (
            "DOCTYPE",
            base.replacen(
                "<cpix:CPIX",
                "<!DOCTYPE x [<!ENTITY a \"b\">]><cpix:CPIX",
                1,
            ),
            V2_0,
            None,
        ),
        (
            "no ContentKeyList",
            cut(&base, "<cpix:ContentKeyList>", "</cpix:ContentKeyList>"),
            V2_0,
            None,
        ),
        (
            "no DRMSystemList",
            cut(&base, "<cpix:DRMSystemList>", "</cpix:DRMSystemList>"),
            V2_0,
            None,
        ),
        (
            "no ContentKeyUsageRuleList",
            cut(
                &base,
                "<cpix:ContentKeyUsageRuleList>",
                "</cpix:ContentKeyUsageRuleList>",
            ),
            V2_0,
            Some("Missing CPIX encryption contract"),
        ),
        (
            "DRMSystem without systemId",
            base.replace(r#" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed""#, ""),
            V2_0,
            None,
        ),
        (
            "DRMSystem without kid",
            base.replacen(
                &format!(r#"<cpix:DRMSystem kid="{kid}""#),
                "<cpix:DRMSystem",
                1,
            ),
            V2_0,
            None,
        ),
        (
            "usage rule without intendedTrackType",
            base.replace(r#" intendedTrackType="AUDIO""#, ""),
            V2_0,
            Some(malformed),
        ),
        (
            "usage rule without kid",
            base.replace(
                &format!(r#"<cpix:ContentKeyUsageRule kid="{kid2}""#),
                "<cpix:ContentKeyUsageRule",
            ),
            V2_0,
            Some(malformed),
        ),
        (
            "ALL mixed with another rule",
            base.replace(r#"intendedTrackType="VIDEO""#, r#"intendedTrackType="ALL""#),
            V2_0,
            Some(malformed),
        ),
        (
            "ContentKeyList emptied",
            empty(&base, "ContentKeyList"),
            V2_0,
            None,
        ),
        (
            "ContentKeyList emptied (self-closing)",
            self_closing(&base, "ContentKeyList"),
            V2_0,
            None,
        ),
        (
            "DRMSystemList emptied",
            empty(&base, "DRMSystemList"),
            V2_0,
            None,
        ),
        (
            "DRMSystemList emptied (self-closing)",
            self_closing(&base, "DRMSystemList"),
            V2_0,
            None,
        ),
        (
            "ContentKeyUsageRuleList emptied",
            empty(&base, "ContentKeyUsageRuleList"),
            V2_0,
            Some("Missing CPIX encryption contract"),
        ),
        (
            "ContentKeyUsageRuleList emptied (self-closing)",
            self_closing(&base, "ContentKeyUsageRuleList"),
            V2_0,
            Some("Missing CPIX encryption contract"),
        ),
        (
            "all three lists emptied",
            empty(
                &empty(&empty(&base, "ContentKeyList"), "DRMSystemList"),
                "ContentKeyUsageRuleList",
            ),
            V2_0,
            None,
        ),
        (
            "ContentKeyList emptied (SPEKE 1.0)",
            empty(&own("v1-widevine-vod.xml"), "ContentKeyList"),
            V1_0,
            None,
        ),
        (
            "DRMSystemList emptied (SPEKE 1.0)",
            empty(&own("v1-widevine-vod.xml"), "DRMSystemList"),
            V1_0,
            None,
        ),
        (
            "usage rule names a KID not in the ContentKeyList",
            base.replacen(
                &format!(r#"<cpix:ContentKeyUsageRule kid="{kid2}""#),
                r#"<cpix:ContentKeyUsageRule kid="00000000-0000-4000-8000-000000000002""#,
                1,
            ),
            V2_0,
            Some(malformed),
        ),
        (
            "DRMSystem names an unknown KID",
            base.replacen(
                &format!(r#"<cpix:DRMSystem kid="{kid}""#),
                r#"<cpix:DRMSystem kid="00000000-0000-0000-0000-000000000001""#,
                1,
            ),
            V2_0,
            None,
        ),
        (
            "dangling KeyPeriodFilter",
            live.replacen(
                "<cpix:KeyPeriodFilter periodId=\"",
                "<cpix:KeyPeriodFilter periodId=\"x",
                1,
            ),
            V2_0,
            Some(malformed),
        ),
        (
            "non-UUID kid",
            base.replacen(&kid, "not-a-uuid", 1),
            V2_0,
            None,
        ),
        (
            "kid in braces (not the CPIX KeyIdType)",
            base.replace(&kid, &format!("{{{kid}}}")),
            V2_0,
            None,
        ),
        (
            "kid with a urn:uuid: prefix",
            base.replace(&kid, &format!("urn:uuid:{kid}")),
            V2_0,
            None,
        ),
        (
            "usage rule kid in braces",
            base.replacen(
                &format!(r#"<cpix:ContentKeyUsageRule kid="{kid2}""#),
                &format!(r#"<cpix:ContentKeyUsageRule kid="{{{kid2}}}""#),
                1,
            ),
            V2_0,
            Some(malformed),
        ),
        (
            "kid in braces (SPEKE 1.0)",
            {
                let v1 = own("v1-widevine-vod.xml");
                let k = cpix::parse(v1.as_bytes()).unwrap().keys()[0]
                    .kid
                    .to_string();
                v1.replace(&k, &format!("{{{k}}}"))
            },
            V1_0,
            None,
        ),
        (
            "unknown systemId",
            base.replace(
                "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
                "12345678-1234-1234-1234-123456789abc",
            ),
            V2_0,
            None,
        ),
        (
            "SPEKE 1.0 element in a 2.0 request",
            base.replacen("<cpix:PSSH/>", "<cpix:PSSH/><cpix:URIExtXKey/>", 1),
            V2_0,
            None,
        ),
        (
            "explicitIV that is not 16 bytes",
            base.replacen(
                r#" commonEncryptionScheme"#,
                r#" explicitIV="AAAA" commonEncryptionScheme"#,
                1,
            ),
            V2_0,
            None,
        ),
    ];
    for (what, body, version, exact) in &cases {
        let out = run(body.as_bytes(), *version);
        let err = match out.result {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e,
        };
        let status = err.status(version.is_v2());
        assert!((400..500).contains(&status), "{what}: {status} {err}");
        assert_eq!(out.keys_created, 0, "{what}: keys created");
        match exact {
            Some(exact) => assert_eq!(err.body(), *exact, "{what}: {:?}", err.detail()),
            // Outside AWS's error table: cpixd's own text, never one of the
            // ten AWS strings (the README says which is which).
            None => assert!(
                !AWS_STRINGS.iter().any(|a| err.body().starts_with(a)),
                "{what}: {}",
                err.body()
            ),
        }
        assert!(!err.body().is_empty());
    }
    let unknown = run(
        base.replace(
            "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
            "12345678-1234-1234-1234-123456789abc",
        )
        .as_bytes(),
        V2_0,
    );
    assert!(unknown
        .result
        .unwrap_err()
        .body()
        .contains("12345678-1234-1234-1234-123456789abc"));
}

#[test]
fn accepted_oddities() {
    use SpekeVersion::V2_0;
    let base = own(V2_BASE);
    // BitrateFilter and VideoFilter@wcg are ignored by SPEKE, not refused.
    let body = base.replace(
        "<cpix:VideoFilter/>",
        r#"<cpix:VideoFilter wcg="true"/><cpix:BitrateFilter maxBitrate="8000000"/>"#,
    );
    accepted(body.as_bytes(), V2_0);
    // Odd prefixes and a default namespace are the same document.
    let renamed = base
        .replace("cpix:", "c:")
        .replace("xmlns:cpix=", "xmlns:c=");
    accepted(renamed.as_bytes(), V2_0);
    // UTF-16 with BOM.
    let mut utf16 = vec![0xFF, 0xFE];
    base.replace("encoding=\"UTF-8\"", "encoding=\"UTF-16\"")
        .encode_utf16()
        .for_each(|u| utf16.extend_from_slice(&u.to_le_bytes()));
    accepted(&utf16, V2_0);
    // A v1 request with all six MediaPackage placeholders for Widevine.
    let v1 = own("v1-widevine-vod.xml").replace(
        "<cpix:PSSH/>",
        "<cpix:ContentProtectionData/><speke:KeyFormat/><speke:KeyFormatVersions/><speke:ProtectionHeader/><cpix:PSSH/><cpix:URIExtXKey/>",
    );
    let doc = accepted(v1.as_bytes(), SpekeVersion::V1_0);
    let d = &doc.systems()[0];
    assert!(d.pssh.is_some() && d.content_protection_data.is_some());
    assert!(
        d.uri_ext_x_key.is_none() && d.extensions.is_empty(),
        "irrelevant placeholders dropped"
    );
}

#[test]
fn kids_come_back_spelled_as_the_request_wrote_them() {
    use SpekeVersion::{V1_0, V2_0};
    // Checklist item 36: each ContentKey keeps its kid. A KID written in
    // upper case comes back in upper case, on the ContentKey, its
    // DRMSystems and (echoed verbatim anyway) its usage rule, so the
    // response stays consistent for a client that compares strings.
    let base = own(V2_BASE);
    let doc = cpix::parse(base.as_bytes()).unwrap();
    let lower = doc.keys()[0].kid.to_string();
    let upper = lower.to_uppercase();
    let shouting = base.replace(&lower, &upper);
    let answer = run(shouting.as_bytes(), V2_0).result.unwrap();
    let plain = run(base.as_bytes(), V2_0).result.unwrap();
    assert!(
        !answer.contains(&lower),
        "the lowercase spelling appears in the answer"
    );
    assert_eq!(
        answer.matches(&format!(r#"kid="{upper}""#)).count(),
        base.matches(&format!(r#"kid="{lower}""#)).count(),
        "every kid attribute keeps the request's spelling"
    );
    // Same keys and signalling: only the spelling differs.
    assert_eq!(answer.replace(&upper, &lower), plain);
    let parsed = cpix::parse(answer.as_bytes()).unwrap();
    assert!(check::problems(&parsed, true).is_empty());
    // Mixed: each attribute keeps its own spelling.
    let mixed = base.replacen(
        &format!(r#"<cpix:ContentKey kid="{lower}""#),
        &format!(r#"<cpix:ContentKey kid="{upper}""#),
        1,
    );
    let answer = run(mixed.as_bytes(), V2_0).result.unwrap();
    assert!(answer.contains(&format!(r#"<cpix:ContentKey kid="{upper}""#)));
    assert!(answer.contains(&format!(r#"<cpix:DRMSystem kid="{lower}""#)));
    // SPEKE 1.0 too.
    let v1 = own("v1-widevine-vod.xml");
    let k = cpix::parse(v1.as_bytes()).unwrap().keys()[0]
        .kid
        .to_string();
    let answer = run(v1.replace(&k, &k.to_uppercase()).as_bytes(), V1_0)
        .result
        .unwrap();
    assert!(answer.contains(&format!(r#"kid="{}""#, k.to_uppercase())));
    assert!(!answer.contains(&format!(r#"kid="{k}""#)));
}

#[test]
fn same_request_same_keys_different_kids_different_keys() {
    let rng = Arc::new(SeededRandom::new(9));
    let keys = MemoryKeySource::new(rng.clone());
    let settings = DrmSettings::default();
    let ctx = FillContext::new(&settings, &*rng);
    let body = own("v2-video5-audio3-widevine-playready-fairplay-live.xml");
    let a = speke::answer(
        body.as_bytes(),
        SpekeVersion::V2_0,
        &keys,
        &ctx,
        &Limits::default(),
    )
    .unwrap();
    let b = speke::answer(
        body.as_bytes(),
        SpekeVersion::V2_0,
        &keys,
        &ctx,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(a.body, b.body);
    let doc = cpix::parse(a.body.as_bytes()).unwrap();
    let values: std::collections::HashSet<Vec<u8>> = doc
        .keys()
        .iter()
        .map(|k| k.plain_value().unwrap().to_vec())
        .collect();
    assert_eq!(values.len(), 8, "eight KIDs, eight different keys");
    // The same KID under another content id is refused.
    let other = body.replace(r#"contentId="channel-5""#, r#"contentId="channel-other""#);
    let err = speke::answer(
        other.as_bytes(),
        SpekeVersion::V2_0,
        &keys,
        &ctx,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.status(true), 409);
    assert!(
        err.body().contains("channel-5") && err.body().contains("channel-other"),
        "{}",
        err.body()
    );
}
