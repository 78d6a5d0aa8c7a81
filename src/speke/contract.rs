//! The SPEKE 2 encryption contract (`ContentKeyUsageRuleList`): presets
//! VIDEO-1..8, AUDIO-1..3, SHARED (`ALL`) and UNENCRYPTED are all valid
//! shapes of the rules checked here. The contract is validated, never
//! rewritten. AWS's own PRESET-VIDEO-8 request has `SD+HD1` with a single
//! `VideoFilter`, so the number of filters is not tied to the `+` parts.

use super::SpekeError;
use crate::cpix::{AudioFilter, Document, Filter, UsageRuleView, VideoFilter};

/// Largest pixel count of HD (1920×1080); more is UHD.
const HD_MAX_PIXELS: u64 = 2_073_600;

fn malformed(msg: String) -> SpekeError {
    SpekeError::MalformedContract(msg)
}

/// True when two rules can apply to the same period.
fn coexist(a: &UsageRuleView<'_>, b: &UsageRuleView<'_>) -> bool {
    let mut pa = a.period_ids().peekable();
    let mut pb = b.period_ids().peekable();
    pa.peek().is_none() || pb.peek().is_none() || pa.any(|p| b.period_ids().any(|q| q == p))
}

fn ranges_meet(a: (Option<u64>, Option<u64>), b: (Option<u64>, Option<u64>)) -> bool {
    let (alo, ahi) = (a.0.unwrap_or(0), a.1.unwrap_or(u64::MAX));
    let (blo, bhi) = (b.0.unwrap_or(0), b.1.unwrap_or(u64::MAX));
    alo <= bhi && blo <= ahi
}

/// Frame rates use `(minFps, maxFps]`.
fn fps_meet(a: &VideoFilter, b: &VideoFilter) -> bool {
    let lo = a.min_fps.unwrap_or(0).max(b.min_fps.unwrap_or(0));
    let hi = a
        .max_fps
        .unwrap_or(u64::MAX)
        .min(b.max_fps.unwrap_or(u64::MAX));
    lo < hi
}

fn videos_meet(a: &VideoFilter, b: &VideoFilter) -> bool {
    let flags = |x: Option<bool>, y: Option<bool>| x.is_none() || y.is_none() || x == y;
    ranges_meet((a.min_pixels, a.max_pixels), (b.min_pixels, b.max_pixels))
        && flags(a.hdr, b.hdr)
        && flags(a.wcg, b.wcg)
        && fps_meet(a, b)
}

fn audios_meet(a: &AudioFilter, b: &AudioFilter) -> bool {
    ranges_meet(
        (a.min_channels, a.max_channels),
        (b.min_channels, b.max_channels),
    )
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
    let videos: Vec<&VideoFilter> = v.video_filters().collect();
    let audios: Vec<&AudioFilter> = v.audio_filters().collect();
    if videos.is_empty() && audios.is_empty() {
        return Err(malformed(format!(
            "rule {i} ({track}) has no VideoFilter or AudioFilter"
        )));
    }
    if track == "ALL" {
        let bare =
            videos.len() == 1 && audios.len() == 1 && videos[0].is_bare() && audios[0].is_bare();
        if !bare {
            return Err(malformed(format!(
                "rule {i}: intendedTrackType ALL needs exactly one VideoFilter and one AudioFilter without attributes"
            )));
        }
    } else if !audios.is_empty()
        && videos
            .iter()
            .any(|f| f.max_pixels.is_none_or(|m| m > HD_MAX_PIXELS))
    {
        return Err(SpekeError::ContractNotSupported(format!(
            "rule {i} ({track}) shares one key between audio and UHD video"
        )));
    }
    Ok(())
}

/// Checks two rules that apply to the same period.
fn check_pair(
    (i, a, ta): (usize, &UsageRuleView<'_>, &str),
    (j, b, tb): (usize, &UsageRuleView<'_>, &str),
) -> Result<(), SpekeError> {
    if ta == "ALL" || tb == "ALL" {
        return Err(malformed(format!(
            "rules {i} and {j}: intendedTrackType ALL must be the only rule"
        )));
    }
    if ta == tb {
        return Err(malformed(format!(
            "rules {i} and {j}: intendedTrackType {ta} appears twice"
        )));
    }
    if a.kid == b.kid {
        return Err(malformed(format!(
            "rules {i} and {j}: key {} has more than one rule",
            a.kid
        )));
    }
    let video = a
        .video_filters()
        .any(|x| b.video_filters().any(|y| videos_meet(x, y)));
    let audio = a
        .audio_filters()
        .any(|x| b.audio_filters().any(|y| audios_meet(x, y)));
    if video || audio {
        return Err(malformed(format!(
            "rules {i} ({ta}) and {j} ({tb}) overlap: one {} track would match two keys",
            if video { "video" } else { "audio" }
        )));
    }
    Ok(())
}

/// Validates the encryption contract of a SPEKE 2 request.
pub fn check(doc: &Document) -> Result<(), SpekeError> {
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
    let kids: Vec<_> = doc.keys().iter().map(|k| k.kid).collect();
    let periods: Vec<&str> = doc.period_items().iter().filter_map(|p| p.id()).collect();
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
        if let Some(p) = v.period_ids().find(|p| !periods.contains(p)) {
            return Err(malformed(format!(
                "rule {n} ({track}) names period {p:?} which is not in ContentKeyPeriodList"
            )));
        }
        check_rule(n, v, track)?;
        tracks.push(track);
    }
    for i in 0..views.len() {
        for j in i + 1..views.len() {
            if coexist(&views[i], &views[j]) {
                check_pair((i + 1, &views[i], tracks[i]), (j + 1, &views[j], tracks[j]))?;
            }
        }
    }
    if let Some(k) = doc
        .keys()
        .iter()
        .find(|k| !views.iter().any(|v| v.kid == k.kid))
    {
        return Err(malformed(format!("key {} has no usage rule", k.kid)));
    }
    Ok(())
}
