//! The SPEKE 2 encryption contract (`ContentKeyUsageRuleList`): presets
//! VIDEO-1..8, AUDIO-1..3, SHARED (`ALL`) and UNENCRYPTED are all valid
//! shapes of the rules checked here. The contract is validated, never
//! rewritten. AWS's own PRESET-VIDEO-8 request has `SD+HD1` with a single
//! `VideoFilter`, so the number of filters is not tied to the `+` parts.
//! Rules whose pixel or channel ranges overlap are valid: AWS's PRESET-VIDEO-3
//! requests send `HD` with only `minPixels`, overlapping `UHD`, and the
//! encryptor resolves a track that matches several rules by taking the
//! last one. What is refused is what the contract table calls malformed: a
//! rule without `kid`, `intendedTrackType` or Video/AudioFilter, a `kid`
//! outside the ContentKeyList, `ALL` beside other rules, a track type or a
//! key with two rules in one period, a key with no rule.

use super::SpekeError;
use crate::cpix::{AudioFilter, Document, Filter, UsageRuleView, VideoFilter};
use crate::ids::KeyId;
use crate::sorted::SortedSet;
use std::collections::{BTreeMap, BTreeSet};

/// Largest pixel count of HD (1920×1080); more is UHD.
const HD_MAX_PIXELS: u64 = 2_073_600;

fn malformed(msg: String) -> SpekeError {
    SpekeError::MalformedContract(msg)
}

/// Checks one rule on its own.
fn check_rule(i: usize, v: &UsageRuleView<'_>, track: &str) -> Result<(), SpekeError> {
    for f in &v.filters {
        match f {
            Filter::Label { .. } => {
                return Err(SpekeError::ContractNotSupported(format!(
                    "rule {i} ({track}): LabelFilter is not supported by SPEKE"
                )))
            }
            Filter::Unknown(e) => {
                return Err(SpekeError::ContractNotSupported(format!(
                    "rule {i} ({track}): unsupported filter {{{}}}{}",
                    e.ns.uri(),
                    e.local
                )))
            }
            _ => {}
        }
    }
    // The first filter of each kind, and whether there is a second.
    let (mut videos, mut audios) = (v.video_filters(), v.audio_filters());
    let (video, audio) = (videos.next(), audios.next());
    if video.is_none() && audio.is_none() {
        return Err(malformed(format!(
            "rule {i} ({track}) has no VideoFilter or AudioFilter"
        )));
    }
    if track == "ALL" {
        let bare = video.is_some_and(VideoFilter::is_bare)
            && audio.is_some_and(AudioFilter::is_bare)
            && videos.next().is_none()
            && audios.next().is_none();
        if !bare {
            return Err(malformed(format!(
                "rule {i}: intendedTrackType ALL needs exactly one VideoFilter and one AudioFilter without attributes"
            )));
        }
    } else if audio.is_some()
        && v.video_filters()
            .any(|f| f.max_pixels.is_none_or(|m| m > HD_MAX_PIXELS))
    {
        return Err(SpekeError::ContractNotSupported(format!(
            "rule {i} ({track}) shares one key between audio and UHD video"
        )));
    }
    Ok(())
}

/// The rules that apply to one period (or to every period), indexed so
/// that each new rule is checked against all of them in logarithmic time:
/// the whole contract is checked in n log n of its size.
#[derive(Default)]
struct Coexisting<'a> {
    /// The first rule, and the `ALL` rule if there is one.
    first: Option<usize>,
    all: Option<usize>,
    tracks: BTreeMap<&'a str, usize>,
    kids: BTreeMap<KeyId, usize>,
}

fn ordered(i: usize, j: usize) -> (usize, usize) {
    (i.min(j), i.max(j))
}

impl<'a> Coexisting<'a> {
    /// Refuses rule `j` if it cannot apply beside the rules already here:
    /// `ALL` stands alone, and track types and keys are one-to-one.
    fn check(&self, j: usize, track: &str, kid: KeyId) -> Result<(), SpekeError> {
        if let Some(i) = self.all.or(self.first.filter(|_| track == "ALL")) {
            let (a, b) = ordered(i, j);
            return Err(malformed(format!(
                "rules {a} and {b}: intendedTrackType ALL must be the only rule"
            )));
        }
        if let Some(&i) = self.tracks.get(track) {
            let (a, b) = ordered(i, j);
            return Err(malformed(format!(
                "rules {a} and {b}: intendedTrackType {track} appears twice"
            )));
        }
        if let Some(&i) = self.kids.get(&kid) {
            let (a, b) = ordered(i, j);
            return Err(malformed(format!(
                "rules {a} and {b}: key {kid} has more than one rule"
            )));
        }
        Ok(())
    }

    /// Checks rule `j`, then adds it.
    fn admit(&mut self, j: usize, track: &'a str, kid: KeyId) -> Result<(), SpekeError> {
        self.check(j, track, kid)?;
        self.first.get_or_insert(j);
        if track == "ALL" {
            self.all = Some(j);
        }
        self.tracks.insert(track, j);
        self.kids.insert(kid, j);
        Ok(())
    }
}

/// Validates the encryption contract of a SPEKE 2 request; returns the
/// views of its usage rules, in order.
pub fn check(doc: &Document) -> Result<Vec<UsageRuleView<'_>>, SpekeError> {
    let rules = doc.rules();
    if rules.is_empty() {
        return Err(SpekeError::MissingContract);
    }
    let views = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.view(&format_args!("ContentKeyUsageRule[{}]", i + 1))
                .map_err(|e| malformed(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if views
        .iter()
        .all(|v| v.video_filters().next().is_none() && v.audio_filters().next().is_none())
    {
        return Err(SpekeError::MissingContract);
    }
    let kids: SortedSet<KeyId> = doc.keys().iter().map(|k| k.kid).collect();
    let periods: SortedSet<&str> = doc.period_items().iter().filter_map(|p| p.id()).collect();
    let mut tracks = Vec::with_capacity(views.len());
    for (i, v) in views.iter().enumerate() {
        let n = i + 1;
        let track = v
            .intended_track_type
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| malformed(format!("rule {n} has no intendedTrackType")))?;
        if !kids.contains(&v.kid) {
            return Err(malformed(format!(
                "rule {n} ({track}) names key {} which is not in ContentKeyList",
                v.kid
            )));
        }
        if let Some(p) = v
            .period_ids()
            .find(|p| doc.periods.is_some() && !periods.contains(p))
        {
            return Err(malformed(format!(
                "rule {n} ({track}) names period {p:?} which is not in ContentKeyPeriodList"
            )));
        }
        check_rule(n, v, track)?;
        tracks.push(track);
    }
    // A rule without KeyPeriodFilter applies to every period, so it meets
    // every other rule; rules with periods meet those of the same period.
    // Without a ContentKeyPeriodList, period filters name nothing.
    let has_periods = doc.periods.is_some();
    let mut everywhere = Coexisting::default();
    for (i, v) in views.iter().enumerate() {
        if !has_periods || v.period_ids().next().is_none() {
            everywhere.admit(i + 1, tracks[i], v.kid)?;
        }
    }
    let mut by_period: BTreeMap<&str, Coexisting<'_>> = BTreeMap::new();
    for (i, v) in views.iter().enumerate().filter(|_| has_periods) {
        // A rule names one period, nearly always: a set of the ones seen is
        // needed (and allocated) only from the second on.
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut ids = v.period_ids();
        let first = ids.next();
        let rest = ids.filter(|p| Some(*p) != first && seen.insert(p));
        for p in first.into_iter().chain(rest) {
            everywhere.check(i + 1, tracks[i], v.kid)?;
            by_period
                .entry(p)
                .or_default()
                .admit(i + 1, tracks[i], v.kid)?;
        }
    }
    let ruled: SortedSet<KeyId> = views.iter().map(|v| v.kid).collect();
    if let Some(k) = doc.keys().iter().find(|k| !ruled.contains(&k.kid)) {
        return Err(malformed(format!("key {} has no usage rule", k.kid)));
    }
    Ok(views)
}
