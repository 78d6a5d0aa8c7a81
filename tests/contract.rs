//! The SPEKE 2 encryption contract against the wording of AWS's contract
//! table: overlapping pixel and channel ranges are valid (the encryptor
//! applies the last matching rule), while what the table calls malformed
//! is refused with `Malformed encryption contract` and no key created.
//! Also: the check costs time linear in the number of rules.

mod common;

use cpixd::cpix::Limits;
use cpixd::crypto::SeededRandom;
use cpixd::drm::DrmSettings;
use cpixd::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
use std::sync::Arc;

const WIDEVINE: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";

/// One usage rule: kid index, track type, periods, filter elements.
struct Rule<'a> {
    key: usize,
    track: Option<&'a str>,
    periods: &'a [&'a str],
    filters: &'a str,
}

fn kid(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-000000000001")
}

/// A SPEKE 2.0 Widevine request with `keys` keys, `periods` period ids and
/// the rules given.
fn request(keys: usize, periods: &[&str], rules: &[Rule<'_>]) -> String {
    let mut s = String::from(
        r#"<cpix:CPIX contentId="c" version="2.3" xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"><cpix:ContentKeyList>"#,
    );
    for i in 0..keys {
        s.push_str(&format!(
            r#"<cpix:ContentKey kid="{}" commonEncryptionScheme="cenc"/>"#,
            kid(i)
        ));
    }
    s.push_str("</cpix:ContentKeyList><cpix:DRMSystemList>");
    for i in 0..keys {
        s.push_str(&format!(
            r#"<cpix:DRMSystem kid="{}" systemId="{WIDEVINE}"><cpix:PSSH/></cpix:DRMSystem>"#,
            kid(i)
        ));
    }
    s.push_str("</cpix:DRMSystemList>");
    if !periods.is_empty() {
        s.push_str("<cpix:ContentKeyPeriodList>");
        for (n, p) in periods.iter().enumerate() {
            s.push_str(&format!(r#"<cpix:ContentKeyPeriod id="{p}" index="{n}"/>"#));
        }
        s.push_str("</cpix:ContentKeyPeriodList>");
    }
    s.push_str("<cpix:ContentKeyUsageRuleList>");
    for r in rules {
        let track = r
            .track
            .map(|t| format!(r#" intendedTrackType="{t}""#))
            .unwrap_or_default();
        s.push_str(&format!(
            r#"<cpix:ContentKeyUsageRule kid="{}"{track}>"#,
            kid(r.key)
        ));
        for p in r.periods {
            s.push_str(&format!(r#"<cpix:KeyPeriodFilter periodId="{p}"/>"#));
        }
        s.push_str(r.filters);
        s.push_str("</cpix:ContentKeyUsageRule>");
    }
    s.push_str("</cpix:ContentKeyUsageRuleList></cpix:CPIX>");
    s
}

/// The answer's status body, or "ok"; and how many keys were created.
fn outcome(body: &str) -> (String, usize) {
    let rng = Arc::new(SeededRandom::new(9));
    let keys = MemoryKeySource::new(rng.clone());
    let settings = DrmSettings::default();
    let ctx = FillContext::new(&settings, &*rng);
    match speke::answer(
        body.as_bytes(),
        SpekeVersion::V2_0,
        &keys,
        &ctx,
        &Limits::default(),
    ) {
        Ok(_) => ("ok".into(), keys.len()),
        Err(e) => {
            assert_eq!(e.status(true), 422, "{e}");
            (e.body(), keys.len())
        }
    }
}

const SD: &str = r#"<cpix:VideoFilter maxPixels="589824"/>"#;
const HD_OPEN: &str = r#"<cpix:VideoFilter minPixels="589825"/>"#;
const UHD: &str = r#"<cpix:VideoFilter minPixels="2073601"/>"#;
const STEREO: &str = r#"<cpix:AudioFilter maxChannels="2"/>"#;
const MULTI: &str = r#"<cpix:AudioFilter minChannels="3"/>"#;
const MALFORMED: &str = "Malformed encryption contract";

fn rule<'a>(key: usize, track: &'a str, periods: &'a [&'a str], filters: &'a str) -> Rule<'a> {
    Rule {
        key,
        track: Some(track),
        periods,
        filters,
    }
}

#[test]
fn overlapping_ranges_are_answered() {
    let p: &[&str] = &["p0"];
    for periods in [p, &[][..]] {
        let rules = [
            rule(0, "SD", periods, SD),
            rule(1, "HD", periods, HD_OPEN),
            rule(2, "UHD", periods, UHD),
            rule(3, "STEREO_AUDIO", periods, STEREO),
            rule(4, "MULTICHANNEL_AUDIO", periods, MULTI),
        ];
        assert_eq!(outcome(&request(5, periods, &rules)).0, "ok");
        // Channel ranges that overlap, and identical ranges, too.
        let rules = [
            rule(0, "VIDEO", periods, "<cpix:VideoFilter/>"),
            rule(
                1,
                "AUDIO_A",
                periods,
                r#"<cpix:AudioFilter maxChannels="6"/>"#,
            ),
            rule(2, "AUDIO_B", periods, MULTI),
            rule(3, "AUDIO_C", periods, MULTI),
        ];
        assert_eq!(outcome(&request(4, periods, &rules)).0, "ok");
    }
    // Key rotation: the same track types again in another period.
    let rules = [
        rule(0, "SD", &["p0"], SD),
        rule(1, "HD", &["p0"], HD_OPEN),
        rule(2, "SD", &["p1"], SD),
        rule(3, "HD", &["p1"], HD_OPEN),
    ];
    assert_eq!(outcome(&request(4, &["p0", "p1"], &rules)).0, "ok");
    // ALL alone with one bare VideoFilter and one bare AudioFilter.
    let all = [rule(0, "ALL", p, "<cpix:VideoFilter/><cpix:AudioFilter/>")];
    assert_eq!(outcome(&request(1, p, &all)).0, "ok");
    // A rule that names its period twice, or two periods, meets each once.
    let rules = [
        rule(0, "SD", &["p0", "p0"], SD),
        rule(1, "SD", &["p1", "p1"], SD),
        rule(2, "HD", &["p0", "p1", "p0"], HD_OPEN),
    ];
    assert_eq!(outcome(&request(3, &["p0", "p1"], &rules)).0, "ok");
}

#[test]
fn what_the_table_calls_malformed_is_refused() {
    let p: &[&str] = &["p0"];
    let cases: Vec<(&str, String)> = vec![
        (
            "a rule without intendedTrackType",
            request(
                2,
                p,
                &[
                    rule(0, "SD", p, SD),
                    Rule {
                        key: 1,
                        track: None,
                        periods: p,
                        filters: HD_OPEN,
                    },
                ],
            ),
        ),
        (
            "a rule naming a key outside the ContentKeyList",
            request(2, p, &[rule(0, "SD", p, SD), rule(7, "HD", p, HD_OPEN)]),
        ),
        (
            "a rule without Video or AudioFilter",
            request(
                2,
                p,
                &[
                    rule(0, "SD", p, SD),
                    rule(1, "HD", p, r#"<cpix:BitrateFilter maxBitrate="5"/>"#),
                ],
            ),
        ),
        (
            "ALL beside another rule",
            request(
                2,
                p,
                &[
                    rule(0, "ALL", p, "<cpix:VideoFilter/><cpix:AudioFilter/>"),
                    rule(1, "AUDIO", p, STEREO),
                ],
            ),
        ),
        (
            "a key with no rule",
            request(3, p, &[rule(0, "SD", p, SD), rule(1, "HD", p, HD_OPEN)]),
        ),
        (
            "a track type twice in one period",
            request(2, p, &[rule(0, "SD", p, SD), rule(1, "SD", p, HD_OPEN)]),
        ),
        (
            "a key with two rules in one period",
            request(
                2,
                p,
                &[
                    rule(0, "SD", p, SD),
                    rule(0, "HD", p, HD_OPEN),
                    rule(1, "A", p, STEREO),
                ],
            ),
        ),
        (
            "a KeyPeriodFilter naming an unlisted period",
            request(
                2,
                p,
                &[rule(0, "SD", p, SD), rule(1, "HD", &["p9"], HD_OPEN)],
            ),
        ),
        (
            "ALL with two VideoFilters",
            request(
                1,
                p,
                &[rule(
                    0,
                    "ALL",
                    p,
                    "<cpix:VideoFilter/><cpix:VideoFilter/><cpix:AudioFilter/>",
                )],
            ),
        ),
        (
            "ALL with two AudioFilters",
            request(
                1,
                p,
                &[rule(
                    0,
                    "ALL",
                    p,
                    "<cpix:VideoFilter/><cpix:AudioFilter/><cpix:AudioFilter/>",
                )],
            ),
        ),
        (
            "ALL with a constraining filter",
            request(
                1,
                p,
                &[rule(0, "ALL", p, &format!("{SD}<cpix:AudioFilter/>"))],
            ),
        ),
        (
            "ALL without an AudioFilter",
            request(1, p, &[rule(0, "ALL", p, "<cpix:VideoFilter/>")]),
        ),
        (
            "a key with two rules in one period, named twice by one of them",
            request(
                2,
                &["p0", "p1"],
                &[
                    rule(0, "SD", &["p1", "p0", "p1"], SD),
                    rule(0, "HD", &["p0"], HD_OPEN),
                    rule(1, "A", &["p0", "p1"], STEREO),
                ],
            ),
        ),
        (
            "a rule without KeyPeriodFilter beside one with (both apply to p0)",
            request(2, p, &[rule(0, "SD", p, SD), rule(1, "SD", &[], HD_OPEN)]),
        ),
    ];
    for (what, body) in cases {
        let (result, created) = outcome(&body);
        assert_eq!(result, MALFORMED, "{what}");
        assert_eq!(created, 0, "{what}: keys were created");
    }
    // No Video/AudioFilter anywhere is the "Missing" string, not malformed.
    let bitrate = r#"<cpix:BitrateFilter maxBitrate="5"/>"#;
    let body = request(1, p, &[rule(0, "SD", p, bitrate)]);
    assert_eq!(outcome(&body).0, "Missing CPIX encryption contract");
    // One key for audio and UHD video breaks the security-level policy.
    let body = request(
        1,
        p,
        &[rule(
            0,
            "UHD+AUDIO",
            p,
            "<cpix:VideoFilter/><cpix:AudioFilter/>",
        )],
    );
    assert_eq!(
        outcome(&body).0,
        "Requested CPIX encryption contract not supported"
    );
}

/// Time of `f`, the fastest of a few runs.
fn fastest(f: impl Fn()) -> std::time::Duration {
    (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn the_contract_check_is_linear_in_the_number_of_rules() {
    // n keys, each with its own track type and period: every pair of rules
    // used to be compared. Ten times the rules must cost far less than a
    // hundred times the time.
    let doc = |n: usize| {
        let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        let periods: Vec<&str> = names.iter().map(String::as_str).collect();
        let tracks: Vec<String> = (0..n).map(|i| format!("T{i}")).collect();
        let rules: Vec<Rule<'_>> = (0..n)
            .map(|i| Rule {
                key: i,
                track: Some(&tracks[i]),
                periods: &periods[i..=i],
                filters: SD,
            })
            .collect();
        let text = request(n, &periods, &rules);
        cpixd::cpix::parse(text.as_bytes()).unwrap()
    };
    let (small, large) = (doc(500), doc(5000));
    let check = |d: &cpixd::cpix::Document| {
        speke::contract::check(d).unwrap();
    };
    let t_small = fastest(|| check(&small));
    let t_large = fastest(|| check(&large));
    let ratio = t_large.as_secs_f64() / t_small.as_secs_f64().max(1e-9);
    assert!(
        ratio < 40.0,
        "10x the rules cost {ratio:.1}x the time ({t_small:?} -> {t_large:?})"
    );
}
