//! Golden responses: every request under `fixtures/requests/` is answered
//! with a fixed seed and must equal `fixtures/responses/` byte for byte.
//! `CPIXD_BLESS=1` rewrites the golden files (review the diff by hand).
//! Every response also passes the spec-based checker in `common::check`,
//! and echoes the request's periods and usage rules unchanged.

mod common;

use common::check;
use cpixd::cpix::{self, Limits};
use cpixd::crypto::SeededRandom;
use cpixd::drm::DrmSettings;
use cpixd::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
use std::sync::Arc;

/// Seed of the golden files.
const SEED: u64 = 20261122;

fn settings() -> DrmSettings {
    let mut s = DrmSettings::default();
    s.playready.la_url = Some("https://playready.example.com/rightsmanager.asmx?cfg=1&x=2".into());
    s.fairplay.key_uri_template = "skd://keys.example.com/{content_id}/{kid}".into();
    s.hls_aes128.key_uri_template = "https://keys.example.com/hls/{content_id}/{kid}".into();
    s.clearkey.license_url_template = "https://keys.example.com/clearkey/license".into();
    s
}

fn answer(request: &[u8]) -> (SpekeVersion, String) {
    let doc = cpix::parse(request).unwrap();
    let version = SpekeVersion::for_document_version(doc.version());
    let rng = Arc::new(SeededRandom::new(SEED));
    let keys = MemoryKeySource::new(rng.clone());
    let settings = settings();
    let ctx = FillContext::new(&settings, &*rng);
    let resp = speke::answer(request, version, &keys, &ctx, &Limits::default())
        .unwrap_or_else(|e| panic!("{e} {:?}", e.detail()));
    (version, resp.body)
}

#[test]
fn golden_responses_match_and_are_correct() {
    let dir = common::fixtures();
    let bless = std::env::var_os("CPIXD_BLESS").is_some();
    let mut names: Vec<_> = std::fs::read_dir(dir.join("requests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    assert!(names.len() >= 16, "fixtures missing: {names:?}");
    let mut mismatches = Vec::new();
    for name in &names {
        let request = common::read(&dir.join("requests").join(name));
        let (version, body) = answer(&request);
        let golden_path = dir.join("responses").join(name);
        if bless {
            std::fs::write(&golden_path, &body).unwrap();
        } else {
            let golden = std::fs::read_to_string(&golden_path).unwrap_or_default();
            if golden != body {
                mismatches.push(name.clone());
            }
        }
        let doc = cpix::parse(body.as_bytes()).unwrap();
        let problems = check::problems(&doc, version.is_v2());
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        let req = cpix::parse(&request).unwrap();
        assert_eq!(doc.periods, req.periods, "{name}: periods echoed");
        assert_eq!(
            doc.usage_rules, req.usage_rules,
            "{name}: usage rules echoed"
        );
        assert_eq!(doc.content_id(), req.content_id(), "{name}: contentId");
        assert_eq!(doc.version(), req.version(), "{name}: version");
        let kids = |d: &cpix::Document| d.keys().iter().map(|k| k.kid).collect::<Vec<_>>();
        assert_eq!(kids(&doc), kids(&req), "{name}: keys in order");
        assert_eq!(
            doc.systems().len(),
            req.systems().len(),
            "{name}: DRM systems"
        );
        // Answering twice (same store) gives the same document.
        assert_eq!(answer(&request).1, body, "{name}: deterministic");
    }
    assert!(
        mismatches.is_empty(),
        "responses differ from fixtures/responses for {mismatches:?}; \
         rerun with CPIXD_BLESS=1 and review the diff"
    );
}

#[test]
fn golden_set_covers_every_preset_and_drm_combination() {
    let dir = common::fixtures().join("requests");
    let mut tracks = std::collections::BTreeSet::new();
    let mut combos = std::collections::BTreeSet::new();
    let (mut live, mut vod, mut unencrypted_audio) = (false, false, false);
    for e in std::fs::read_dir(&dir).unwrap() {
        let doc = cpix::parse(&common::read(&e.unwrap().path())).unwrap();
        for r in doc.rules() {
            if let Some(t) = r.0.attr("intendedTrackType") {
                tracks.insert(t.to_owned());
            }
        }
        if doc.version().is_some()
            && !doc.rules().is_empty()
            && doc
                .rules()
                .iter()
                .all(|r| r.0.child(&cpix::xml::Ns::Cpix, "AudioFilter").is_none())
        {
            unencrypted_audio = true;
        }
        let mut combo = Vec::new();
        for (id, name) in [
            (cpixd::ids::SystemId::WIDEVINE, "W"),
            (cpixd::ids::SystemId::PLAYREADY, "P"),
            (cpixd::ids::SystemId::FAIRPLAY, "F"),
        ] {
            if doc.systems().iter().any(|d| d.system_id == id) {
                combo.push(name);
            }
        }
        combos.insert(combo.concat());
        live |= doc.periods.is_some();
        vod |= doc.periods.is_none();
    }
    for t in [
        "VIDEO",
        "SD",
        "HD",
        "HD1",
        "HD2",
        "UHD",
        "UHD1",
        "UHD2",
        "SD+HD1",
        "AUDIO",
        "STEREO_AUDIO",
        "MULTICHANNEL_AUDIO",
        "MULTICHANNEL_AUDIO_3_6",
        "MULTICHANNEL_AUDIO_7",
        "ALL",
    ] {
        assert!(tracks.contains(t), "no fixture uses intendedTrackType {t}");
    }
    for c in ["W", "P", "F", "WP", "WF", "PF", "WPF"] {
        assert!(combos.contains(c), "no fixture with exactly {c}");
    }
    assert!(live && vod && unencrypted_audio);
}
