//! Typed views of the parts of a CPIX document that are echoed verbatim:
//! key periods and usage rules with every filter type (`KeyPeriodFilter`,
//! `LabelFilter`, `VideoFilter`, `AudioFilter`, `BitrateFilter`, foreign
//! filters), plus builders that produce their XML.

use super::model::{ContentKeyPeriod, UsageRule};
use super::xml::{Element, Ns};
use super::CpixError;
use crate::ids::KeyId;
use std::fmt::Display;

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn invalid(element: &dyn Display, attribute: &str, value: &str, reason: &str) -> CpixError {
    CpixError::InvalidAttribute {
        element: element.to_string(),
        attribute: attribute.to_owned(),
        value: truncate(value),
        reason: reason.to_owned(),
    }
}

/// Parses an `xs:integer` that must be ≥ 0 and fit in a u64.
fn parse_u64(element: &dyn Display, attribute: &str, v: &str) -> Result<u64, CpixError> {
    let t = v.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(element, attribute, v, "not a non-negative integer"));
    }
    t.parse::<u64>()
        .map_err(|_| invalid(element, attribute, v, "integer out of range"))
}

fn opt_u64(el: &Element, path: &dyn Display, attribute: &str) -> Result<Option<u64>, CpixError> {
    el.attr(attribute)
        .map(|v| parse_u64(path, attribute, v))
        .transpose()
}

fn opt_bool(el: &Element, path: &dyn Display, attribute: &str) -> Result<Option<bool>, CpixError> {
    el.attr(attribute)
        .map(|v| match v.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(invalid(path, attribute, v, "not an xs:boolean")),
        })
        .transpose()
}

fn check_range(
    path: &dyn Display,
    min_name: &str,
    min: Option<u64>,
    max: Option<u64>,
) -> Result<(), CpixError> {
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(CpixError::InvalidContent {
                element: path.to_string(),
                reason: format!("{min_name} {lo} is greater than the maximum {hi}"),
            });
        }
    }
    Ok(())
}

/// Typed view of a `ContentKeyPeriod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodView<'a> {
    /// `@id`.
    pub id: Option<&'a str>,
    /// `@index`.
    pub index: Option<u64>,
    /// `@start` (xs:dateTime, as written).
    pub start: Option<&'a str>,
    /// `@end` (xs:dateTime, as written).
    pub end: Option<&'a str>,
    /// CPIX 2.4 `@startOffset` (xs:duration, as written).
    pub start_offset: Option<&'a str>,
    /// CPIX 2.4 `@endOffset`.
    pub end_offset: Option<&'a str>,
}

impl ContentKeyPeriod {
    /// `@id`, if any.
    pub fn id(&self) -> Option<&str> {
        self.0.attr("id")
    }

    /// The typed view; `path` names the element in errors.
    pub fn view(&self, path: &dyn Display) -> Result<PeriodView<'_>, CpixError> {
        let e = &self.0;
        Ok(PeriodView {
            id: e.attr("id"),
            index: opt_u64(e, path, "index")?,
            start: e.attr("start"),
            end: e.attr("end"),
            start_offset: e.attr("startOffset"),
            end_offset: e.attr("endOffset"),
        })
    }

    /// Builds a period with an id and an index.
    pub fn with_index(id: &str, index: u64) -> Self {
        ContentKeyPeriod(
            Element::new(Ns::Cpix, "ContentKeyPeriod")
                .with_attr("id", id)
                .with_attr("index", index.to_string()),
        )
    }
}

/// `VideoFilter` attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoFilter {
    /// `@minPixels` (inclusive).
    pub min_pixels: Option<u64>,
    /// `@maxPixels` (inclusive).
    pub max_pixels: Option<u64>,
    /// `@hdr`.
    pub hdr: Option<bool>,
    /// `@wcg`.
    pub wcg: Option<bool>,
    /// `@minFps` (exclusive).
    pub min_fps: Option<u64>,
    /// `@maxFps` (inclusive).
    pub max_fps: Option<u64>,
}

impl VideoFilter {
    /// True when the filter has no constraining attribute.
    pub fn is_bare(&self) -> bool {
        *self == VideoFilter::default()
    }
}

/// `AudioFilter` attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioFilter {
    /// `@minChannels` (inclusive).
    pub min_channels: Option<u64>,
    /// `@maxChannels` (inclusive).
    pub max_channels: Option<u64>,
}

impl AudioFilter {
    /// True when the filter has no constraining attribute.
    pub fn is_bare(&self) -> bool {
        *self == AudioFilter::default()
    }
}

/// `BitrateFilter` attributes (bits per second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BitrateFilter {
    /// `@minBitrate` (inclusive).
    pub min_bitrate: Option<u64>,
    /// `@maxBitrate` (inclusive).
    pub max_bitrate: Option<u64>,
}

/// One filter of a usage rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter<'a> {
    /// `KeyPeriodFilter@periodId`.
    KeyPeriod {
        /// The referenced `ContentKeyPeriod@id`.
        period_id: &'a str,
    },
    /// `LabelFilter@label`.
    Label {
        /// The label.
        label: &'a str,
    },
    /// `VideoFilter`.
    Video(VideoFilter),
    /// `AudioFilter`.
    Audio(AudioFilter),
    /// `BitrateFilter`.
    Bitrate(BitrateFilter),
    /// A filter this implementation does not understand (foreign namespace
    /// or unknown name); it makes the rule unusable for key resolution.
    Unknown(&'a Element),
}

impl Filter<'_> {
    /// Builds the XML element of a typed filter (not for `Unknown`, which
    /// already is an element).
    pub fn to_element(&self) -> Element {
        let num = |e: Element, name: &str, v: Option<u64>| match v {
            Some(v) => e.with_attr(name, v.to_string()),
            None => e,
        };
        let boolean = |e: Element, name: &str, v: Option<bool>| match v {
            Some(v) => e.with_attr(name, if v { "true" } else { "false" }),
            None => e,
        };
        match self {
            Filter::KeyPeriod { period_id } => {
                Element::new(Ns::Cpix, "KeyPeriodFilter").with_attr("periodId", *period_id)
            }
            Filter::Label { label } => {
                Element::new(Ns::Cpix, "LabelFilter").with_attr("label", *label)
            }
            Filter::Video(v) => {
                let e = Element::new(Ns::Cpix, "VideoFilter");
                let e = num(e, "minPixels", v.min_pixels);
                let e = num(e, "maxPixels", v.max_pixels);
                let e = boolean(e, "hdr", v.hdr);
                let e = boolean(e, "wcg", v.wcg);
                let e = num(e, "minFps", v.min_fps);
                num(e, "maxFps", v.max_fps)
            }
            Filter::Audio(a) => {
                let e = Element::new(Ns::Cpix, "AudioFilter");
                let e = num(e, "minChannels", a.min_channels);
                num(e, "maxChannels", a.max_channels)
            }
            Filter::Bitrate(b) => {
                let e = Element::new(Ns::Cpix, "BitrateFilter");
                let e = num(e, "minBitrate", b.min_bitrate);
                num(e, "maxBitrate", b.max_bitrate)
            }
            Filter::Unknown(e) => (*e).clone(),
        }
    }

    fn parse<'a>(e: &'a Element, path: &dyn Display) -> Result<Filter<'a>, CpixError> {
        if e.ns != Ns::Cpix {
            return Ok(Filter::Unknown(e));
        }
        let required = |name: &'static str| {
            e.attr(name).ok_or_else(|| CpixError::MissingAttribute {
                element: path.to_string(),
                attribute: name,
            })
        };
        Ok(match e.local.as_ref() {
            "KeyPeriodFilter" => Filter::KeyPeriod {
                period_id: required("periodId")?,
            },
            "LabelFilter" => Filter::Label {
                label: required("label")?,
            },
            "VideoFilter" => {
                let v = VideoFilter {
                    min_pixels: opt_u64(e, path, "minPixels")?,
                    max_pixels: opt_u64(e, path, "maxPixels")?,
                    hdr: opt_bool(e, path, "hdr")?,
                    wcg: opt_bool(e, path, "wcg")?,
                    min_fps: opt_u64(e, path, "minFps")?,
                    max_fps: opt_u64(e, path, "maxFps")?,
                };
                check_range(path, "minPixels", v.min_pixels, v.max_pixels)?;
                check_range(path, "minFps", v.min_fps, v.max_fps)?;
                Filter::Video(v)
            }
            "AudioFilter" => {
                let a = AudioFilter {
                    min_channels: opt_u64(e, path, "minChannels")?,
                    max_channels: opt_u64(e, path, "maxChannels")?,
                };
                check_range(path, "minChannels", a.min_channels, a.max_channels)?;
                Filter::Audio(a)
            }
            "BitrateFilter" => {
                let b = BitrateFilter {
                    min_bitrate: opt_u64(e, path, "minBitrate")?,
                    max_bitrate: opt_u64(e, path, "maxBitrate")?,
                };
                if b.min_bitrate.is_none() && b.max_bitrate.is_none() {
                    return Err(CpixError::InvalidContent {
                        element: path.to_string(),
                        reason: "BitrateFilter needs minBitrate or maxBitrate".into(),
                    });
                }
                check_range(path, "minBitrate", b.min_bitrate, b.max_bitrate)?;
                Filter::Bitrate(b)
            }
            _ => Filter::Unknown(e),
        })
    }
}

/// Typed view of a `ContentKeyUsageRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRuleView<'a> {
    /// `@kid`.
    pub kid: KeyId,
    /// `@intendedTrackType`.
    pub intended_track_type: Option<&'a str>,
    /// `@id`.
    pub id: Option<&'a str>,
    /// The filters in document order.
    pub filters: Vec<Filter<'a>>,
}

impl UsageRuleView<'_> {
    /// The video filters.
    pub fn video_filters(&self) -> impl Iterator<Item = &VideoFilter> {
        self.filters.iter().filter_map(|f| match f {
            Filter::Video(v) => Some(v),
            _ => None,
        })
    }

    /// The audio filters.
    pub fn audio_filters(&self) -> impl Iterator<Item = &AudioFilter> {
        self.filters.iter().filter_map(|f| match f {
            Filter::Audio(a) => Some(a),
            _ => None,
        })
    }

    /// The referenced period ids.
    pub fn period_ids(&self) -> impl Iterator<Item = &str> {
        self.filters.iter().filter_map(|f| match f {
            Filter::KeyPeriod { period_id } => Some(*period_id),
            _ => None,
        })
    }
}

impl UsageRule {
    /// `@kid` as written.
    pub fn kid_text(&self) -> Option<&str> {
        self.0.attr("kid")
    }

    /// Rewrites `@kid` (KID override).
    pub fn set_kid(&mut self, kid: KeyId) {
        super::xml::set_attr(&mut self.0.attributes, "kid", kid.to_string());
    }

    /// The typed view; `path` names the element in errors.
    pub fn view(&self, path: &dyn Display) -> Result<UsageRuleView<'_>, CpixError> {
        let e = &self.0;
        let kid_text = e.attr("kid").ok_or_else(|| CpixError::MissingAttribute {
            element: path.to_string(),
            attribute: "kid",
        })?;
        let kid = KeyId::parse_hyphenated(kid_text)
            .map_err(|_| invalid(path, "kid", kid_text, "not a UUID"))?;
        let filters = e
            .elements()
            .enumerate()
            .map(|(i, f)| Filter::parse(f, &format_args!("{path}/{}[{}]", f.local, i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UsageRuleView {
            kid,
            intended_track_type: e.attr("intendedTrackType"),
            id: e.attr("id"),
            filters,
        })
    }

    /// Builds a rule from typed parts.
    pub fn build(kid: KeyId, intended_track_type: Option<&str>, filters: &[Filter<'_>]) -> Self {
        let mut e = Element::new(Ns::Cpix, "ContentKeyUsageRule").with_attr("kid", kid.to_string());
        if let Some(t) = intended_track_type {
            e = e.with_attr("intendedTrackType", t);
        }
        for f in filters {
            e = e.with_child(f.to_element());
        }
        UsageRule(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpix::xml::{parse_document, Limits};

    fn rule(xml: &str) -> UsageRule {
        UsageRule(parse_document(xml.as_bytes(), &Limits::default()).unwrap())
    }

    const NS: &str = r#"xmlns="urn:dashif:org:cpix" xmlns:v="urn:vendor""#;

    #[test]
    fn every_filter_type_is_typed() {
        let r = rule(&format!(
            r#"<ContentKeyUsageRule {NS} kid="a466cdfd-e556-4b1d-8098-c1a4aa78997a" intendedTrackType="HD">
            <KeyPeriodFilter periodId="p1"/><LabelFilter label="ビデオ"/>
            <VideoFilter minPixels="589825" maxPixels="2073600" hdr="1" wcg="false" minFps="24" maxFps="60"/>
            <AudioFilter minChannels="3"/><BitrateFilter maxBitrate="4000000"/>
            <v:Custom x="y"/></ContentKeyUsageRule>"#
        ));
        let v = r.view(&"rule").unwrap();
        assert_eq!(v.intended_track_type, Some("HD"));
        assert_eq!(v.filters.len(), 6);
        assert_eq!(v.filters[0], Filter::KeyPeriod { period_id: "p1" });
        assert_eq!(v.filters[1], Filter::Label { label: "ビデオ" });
        assert_eq!(
            v.filters[2],
            Filter::Video(VideoFilter {
                min_pixels: Some(589825),
                max_pixels: Some(2073600),
                hdr: Some(true),
                wcg: Some(false),
                min_fps: Some(24),
                max_fps: Some(60)
            })
        );
        assert_eq!(
            v.filters[3],
            Filter::Audio(AudioFilter {
                min_channels: Some(3),
                max_channels: None
            })
        );
        assert!(matches!(v.filters[4], Filter::Bitrate(b) if b.max_bitrate == Some(4_000_000)));
        assert!(matches!(v.filters[5], Filter::Unknown(e) if e.local == "Custom"));
        assert_eq!(v.period_ids().collect::<Vec<_>>(), ["p1"]);
    }

    #[test]
    fn bad_filters_are_named() {
        let k = r#"kid="a466cdfd-e556-4b1d-8098-c1a4aa78997a""#;
        let cases = [
            (
                format!(
                    r#"<ContentKeyUsageRule {NS} {k}><VideoFilter minPixels="-1"/></ContentKeyUsageRule>"#
                ),
                "minPixels",
            ),
            (
                format!(
                    r#"<ContentKeyUsageRule {NS} {k}><VideoFilter minPixels="10" maxPixels="5"/></ContentKeyUsageRule>"#
                ),
                "greater",
            ),
            (
                format!(
                    r#"<ContentKeyUsageRule {NS} {k}><AudioFilter maxChannels="two"/></ContentKeyUsageRule>"#
                ),
                "maxChannels",
            ),
            (
                format!(
                    r#"<ContentKeyUsageRule {NS} {k}><VideoFilter hdr="yes"/></ContentKeyUsageRule>"#
                ),
                "hdr",
            ),
            (
                format!(r#"<ContentKeyUsageRule {NS} {k}><BitrateFilter/></ContentKeyUsageRule>"#),
                "BitrateFilter",
            ),
            (
                format!(
                    r#"<ContentKeyUsageRule {NS} {k}><KeyPeriodFilter/></ContentKeyUsageRule>"#
                ),
                "periodId",
            ),
            (
                format!(r#"<ContentKeyUsageRule {NS}><VideoFilter/></ContentKeyUsageRule>"#),
                "kid",
            ),
            (
                format!(
                    r#"<ContentKeyUsageRule {NS} kid="nope"><VideoFilter/></ContentKeyUsageRule>"#
                ),
                "kid",
            ),
        ];
        for (xml, needle) in cases {
            let err = rule(&xml)
                .view(&"ContentKeyUsageRuleList/ContentKeyUsageRule[1]")
                .unwrap_err();
            assert!(
                err.to_string().contains(needle),
                "{err} should mention {needle}"
            );
            assert!(err.to_string().contains("ContentKeyUsageRule[1]"), "{err}");
        }
    }

    #[test]
    fn builders_round_trip_through_views() {
        let kid = KeyId::parse_uuid("873f3740-2508-4a2d-94bc-9b0f86649251").unwrap();
        let filters = [
            Filter::KeyPeriod { period_id: "p" },
            Filter::Video(VideoFilter {
                min_pixels: Some(1),
                max_pixels: Some(9),
                hdr: Some(true),
                ..Default::default()
            }),
            Filter::Audio(AudioFilter::default()),
        ];
        let r = UsageRule::build(kid, Some("SD"), &filters);
        let v = r.view(&"r").unwrap();
        assert_eq!(v.kid, kid);
        assert_eq!(v.filters, filters);
        let p = ContentKeyPeriod::with_index("keyPeriod_1", 42);
        assert_eq!(p.view(&"p").unwrap().index, Some(42));
    }
}
