//! The five statistics operations over the licence log, in the shapes of
//! the Cloud Video Kit DRM API: the paged request list, licence counts per
//! day, month or hour, the request histogram, the licence metrics and the
//! error codes. Each is one scan of the tenant's time range; buckets are
//! UTC and every bucket of the range is present (zero-filled) where the
//! API returns a series.

use super::log::{Browser, DeviceType, LicenceLog, LogView, Os, RequestType};
use super::DrmSystem;
use crate::clock::{civil_from_days, days_from_civil, rfc3339, rfc3339_millis};
use crate::keys::StoreError;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The error codes cpixd answers player requests with.
pub const ERROR_CODES: [&str; 10] = [
    "INVALID_TOKEN",
    "LICENSE_EXPIRED",
    "bad_request",
    "not_found",
    "not_configured",
    "payload_too_large",
    "unknown_system",
    "unavailable",
    "upstream_failed",
    "upstream_timeout",
];

/// A half-open time range `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Start (milliseconds since the Unix epoch).
    pub from_ms: u64,
    /// End, excluded.
    pub to_ms: u64,
}

/// The API name of a system (`Widevine`, `PlayReady`, `Fairplay`,
/// `ClearKey`, `AES-128`).
pub fn system_name(s: DrmSystem) -> &'static str {
    s.display_name()
}

/// Parses a system as the API names it (also the lower-case URL names).
pub fn parse_system(s: &str) -> Option<DrmSystem> {
    DrmSystem::ALL
        .into_iter()
        .find(|d| d.display_name().eq_ignore_ascii_case(s.trim()))
        .or_else(|| DrmSystem::parse(s))
}

/// The filters of the list, the histogram and the licence count. Empty
/// lists match everything. The log knows no country, ISP or device brand:
/// those filters match only `Unknown`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `DrmSystem`.
    pub systems: Vec<DrmSystem>,
    /// `RequestType`.
    pub types: Vec<RequestType>,
    /// `HttpStatus`.
    pub statuses: Vec<u16>,
    /// `ErrorCode`.
    pub error_codes: Vec<String>,
    /// `TokenContentId`.
    pub content_ids: Vec<String>,
    /// `DeviceType`.
    pub device_types: Vec<DeviceType>,
    /// `PlatformOS`.
    pub platform_os: Vec<Os>,
    /// `Country`, `ISP`, `BrandName` (all unknown to the log).
    pub unknown_only: Vec<String>,
    /// `IP`.
    pub ip: Option<std::net::IpAddr>,
    /// `TokenUserId`.
    pub user_id: Option<String>,
}

impl Filter {
    /// True when `v` passes every filter.
    pub fn matches(&self, v: &LogView<'_>) -> bool {
        let any = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|x| list.iter().any(|l| l == x))
        };
        (self.systems.is_empty() || v.system.is_some_and(|s| self.systems.contains(&s)))
            && (self.types.is_empty() || self.types.contains(&v.request_type))
            && (self.statuses.is_empty() || self.statuses.contains(&v.http_status))
            && any(&self.error_codes, v.error_code)
            && any(&self.content_ids, v.token_content_id)
            && (self.device_types.is_empty() || self.device_types.contains(&v.device))
            && (self.platform_os.is_empty() || self.platform_os.contains(&v.os))
            && self
                .unknown_only
                .iter()
                .all(|u| u.eq_ignore_ascii_case("unknown"))
            && self.ip.is_none_or(|ip| v.ip == Some(ip))
            && self
                .user_id
                .as_deref()
                .is_none_or(|u| v.token_user_id == Some(u))
    }
}

/// One request as a list item.
pub fn item(tenant: &str, v: &LogView<'_>) -> Value {
    let mut o = json!({
        "id": v.id.to_string(),
        "tenantId": tenant,
        "system": v.system.map(system_name),
        "requestType": v.request_type.as_str(),
        "tokenUserId": v.token_user_id,
        "tokenContentId": v.token_content_id,
        "requestTime": rfc3339_millis(v.time_ms),
        "httpStatus": v.http_status,
        "errorCode": v.error_code,
        "errorMessage": v.error_message,
        "ip": v.ip.map(|ip| ip.to_string()),
        "userAgent": v.user_agent,
        "deviceType": v.device.as_str(),
        "os": v.os.as_str(),
        "browser": v.browser.as_str(),
        "licenseUrl": v.license_url,
        "payloadLength": v.payload_length,
        "responseLength": v.response_length,
        "durationMs": f64::from(v.duration_us) / 1000.0,
        "kids": v.kid_list().iter().map(|k| k.to_string()).collect::<Vec<_>>(),
    });
    if v.browser == Browser::Unknown {
        o["browser"] = Value::Null;
    }
    o
}

/// What `list-requests` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// `requestTime` (the default).
    RequestTime,
    /// `system`.
    System,
    /// `requestType`.
    RequestType,
    /// `httpStatus`.
    HttpStatus,
    /// `tokenUserId`.
    TokenUserId,
    /// `tokenContentId`.
    TokenContentId,
    /// `ip`.
    Ip,
    /// `errorCode`.
    ErrorCode,
    /// `payloadLength`.
    PayloadLength,
    /// `responseLength`.
    ResponseLength,
    /// `deviceType`.
    DeviceType,
}

impl SortField {
    /// Parses an item field name, ignoring case.
    pub fn parse(s: &str) -> Option<SortField> {
        use SortField::*;
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "requesttime" | "time" => RequestTime,
            "system" | "drmsystem" => System,
            "requesttype" => RequestType,
            "httpstatus" => HttpStatus,
            "tokenuserid" => TokenUserId,
            "tokencontentid" => TokenContentId,
            "ip" => Ip,
            "errorcode" => ErrorCode,
            "payloadlength" => PayloadLength,
            "responselength" => ResponseLength,
            "devicetype" => DeviceType,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Int(u64),
    Text(String),
}

fn sort_key(f: SortField, v: &LogView<'_>) -> SortKey {
    let text = |s: Option<&str>| SortKey::Text(s.unwrap_or_default().to_owned());
    match f {
        SortField::RequestTime => SortKey::Int(v.id),
        SortField::System => text(v.system.map(system_name)),
        SortField::RequestType => text(Some(v.request_type.as_str())),
        SortField::HttpStatus => SortKey::Int(u64::from(v.http_status)),
        SortField::TokenUserId => text(v.token_user_id),
        SortField::TokenContentId => text(v.token_content_id),
        SortField::Ip => text(v.ip.map(|i| i.to_string()).as_deref()),
        SortField::ErrorCode => text(v.error_code),
        SortField::PayloadLength => SortKey::Int(u64::from(v.payload_length)),
        SortField::ResponseLength => SortKey::Int(u64::from(v.response_length)),
        SortField::DeviceType => text(Some(v.device.as_str())),
    }
}

/// A page request of `list-requests`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// 0-based page.
    pub page: u64,
    /// Items per page.
    pub limit: u64,
    /// Sort field.
    pub sort: SortField,
    /// Descending.
    pub desc: bool,
}

/// `list-requests`: the envelope with one page of items.
pub fn list(
    log: &dyn LicenceLog,
    tenant: &str,
    range: TimeRange,
    filter: &Filter,
    p: PageRequest,
) -> Result<Value, StoreError> {
    let skip = p.page.saturating_mul(p.limit);
    let mut total = 0u64;
    let mut items = Vec::new();
    if p.sort == SortField::RequestTime {
        // Time order is the log's order: one scan, keeping one page.
        log.scan(tenant, range.from_ms, range.to_ms, p.desc, &mut |v| {
            if filter.matches(v) {
                if total >= skip && total < skip + p.limit {
                    items.push(item(tenant, v));
                }
                total += 1;
            }
            true
        })?;
    } else {
        let mut keys: Vec<(SortKey, u64)> = Vec::new();
        log.scan(tenant, range.from_ms, range.to_ms, false, &mut |v| {
            if filter.matches(v) {
                keys.push((sort_key(p.sort, v), v.id));
            }
            true
        })?;
        total = keys.len() as u64;
        // Ties keep time order, in the direction asked.
        if p.desc {
            keys.sort_by(|a, b| b.cmp(a));
        } else {
            keys.sort();
        }
        let ids: Vec<u64> = keys
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(p.limit).unwrap_or(usize::MAX))
            .map(|(_, id)| id)
            .collect();
        log.get(tenant, &ids, &mut |v| items.push(item(tenant, v)))?;
    }
    let page_count = total.div_ceil(p.limit.max(1));
    Ok(json!({
        "items": items,
        "pageCount": page_count,
        "pageSize": p.limit,
        "totalCount": total,
        "pageNumber": p.page,
        "hasMore": p.page + 1 < page_count,
    }))
}

/// A bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Fixed milliseconds.
    Fixed(u64),
    /// Calendar months.
    Month,
}

impl Bucket {
    /// `license-count`'s `Type`.
    pub fn from_count_type(s: &str) -> Option<Bucket> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "daybyday" => Bucket::Fixed(86_400_000),
            "hourbyhour" => Bucket::Fixed(3_600_000),
            "monthbymonth" => Bucket::Month,
            _ => return None,
        })
    }

    /// The histogram's `granularity`.
    pub fn from_granularity(s: &str) -> Option<Bucket> {
        Some(Bucket::Fixed(
            match s.trim().to_ascii_lowercase().as_str() {
                "fifteenminutes" => 900_000,
                "onehour" => 3_600_000,
                "sixhours" => 21_600_000,
                "day" => 86_400_000,
                _ => return None,
            },
        ))
    }

    /// Start of the bucket holding `ms`.
    pub fn floor(self, ms: u64) -> u64 {
        match self {
            Bucket::Fixed(n) => ms - ms % n,
            Bucket::Month => {
                let (y, m, _) = civil_from_days((ms / 86_400_000) as i64);
                (days_from_civil(y, m, 1).max(0) as u64) * 86_400_000
            }
        }
    }

    /// Start of the bucket after the one starting at `start`.
    pub fn next(self, start: u64) -> u64 {
        match self {
            Bucket::Fixed(n) => start + n,
            Bucket::Month => {
                let (y, m, _) = civil_from_days((start / 86_400_000) as i64);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (days_from_civil(y, m, 1).max(0) as u64) * 86_400_000
            }
        }
    }

    /// Every bucket start of `range`.
    pub fn starts(self, range: TimeRange) -> Vec<u64> {
        let mut out = Vec::new();
        let mut t = self.floor(range.from_ms);
        while t < range.to_ms {
            out.push(t);
            t = self.next(t);
        }
        out
    }
}

/// Counts per bucket start of the entries `count` picks (by a small key).
fn counts<K: Ord + Copy>(
    log: &dyn LicenceLog,
    tenant: &str,
    range: TimeRange,
    bucket: Bucket,
    mut key: impl FnMut(&LogView<'_>) -> Option<K>,
) -> Result<BTreeMap<(u64, K), u64>, StoreError> {
    let mut out: BTreeMap<(u64, K), u64> = BTreeMap::new();
    // Consecutive entries mostly fall in the same bucket.
    let mut current = (u64::MAX, 0u64);
    log.scan(tenant, range.from_ms, range.to_ms, false, &mut |v| {
        if let Some(k) = key(v) {
            if !(current.0..current.1).contains(&v.time_ms) {
                let start = bucket.floor(v.time_ms);
                current = (start, bucket.next(start));
            }
            *out.entry((current.0, k)).or_default() += 1;
        }
        true
    })?;
    Ok(out)
}

/// `license-count`: licences (and renewals) per bucket and system.
pub fn license_count(
    log: &dyn LicenceLog,
    tenant: &str,
    range: TimeRange,
    bucket: Bucket,
    statuses: &[u16],
) -> Result<Value, StoreError> {
    let by = counts(log, tenant, range, bucket, |v| {
        let licence = matches!(v.request_type, RequestType::License | RequestType::Renewal);
        let status = statuses.is_empty() || statuses.contains(&v.http_status);
        (licence && status).then_some(v.system).flatten()
    })?;
    let n = |t: u64, s: DrmSystem| by.get(&(t, s)).copied().unwrap_or(0);
    Ok(Value::Array(
        bucket
            .starts(range)
            .into_iter()
            .map(|t| {
                json!({
                    "date": rfc3339(t / 1000),
                    "widevine": n(t, DrmSystem::Widevine),
                    "fairplay": n(t, DrmSystem::FairPlay),
                    "playready": n(t, DrmSystem::PlayReady),
                    "clearkey": n(t, DrmSystem::ClearKey),
                })
            })
            .collect(),
    ))
}

/// `histogram`: matching requests per bucket.
pub fn histogram(
    log: &dyn LicenceLog,
    tenant: &str,
    range: TimeRange,
    bucket: Bucket,
    filter: &Filter,
) -> Result<Value, StoreError> {
    let by = counts(log, tenant, range, bucket, |v| {
        filter.matches(v).then_some(())
    })?;
    Ok(Value::Array(
        bucket
            .starts(range)
            .into_iter()
            .map(|t| {
                json!({
                    "date": format!("{}+00:00", rfc3339(t / 1000).trim_end_matches('Z')),
                    "timestamp": t,
                    "count": by.get(&(t, ())).copied().unwrap_or(0),
                })
            })
            .collect(),
    ))
}

/// The outcome classes of `license-metrics`.
const OUTCOMES: [(&str, &str); 3] = [
    ("LicenseOk", "License acquired"),
    ("LicenseFailed_4xx", "Licenses denied"),
    ("LicenseFailed_5xx", "Licenses failed"),
];

/// The bucket `license-metrics` uses for a range: an hour up to a week,
/// a day beyond.
pub fn metrics_bucket(range: TimeRange) -> Bucket {
    if range.to_ms - range.from_ms <= 7 * 86_400_000 {
        Bucket::Fixed(3_600_000)
    } else {
        Bucket::Fixed(86_400_000)
    }
}

/// `license-metrics`: per system and outcome, the licence requests of each
/// bucket (non-empty buckets only, as the API shows).
pub fn license_metrics(
    log: &dyn LicenceLog,
    tenant: &str,
    range: TimeRange,
) -> Result<Value, StoreError> {
    let bucket = metrics_bucket(range);
    let by = counts(log, tenant, range, bucket, |v| {
        if !matches!(v.request_type, RequestType::License | RequestType::Renewal) {
            return None;
        }
        let outcome = match v.http_status {
            200..=399 => 0usize,
            400..=499 => 1,
            _ => 2,
        };
        Some((v.system?, outcome))
    })?;
    let mut metrics = serde_json::Map::new();
    for system in [
        DrmSystem::Widevine,
        DrmSystem::FairPlay,
        DrmSystem::PlayReady,
        DrmSystem::ClearKey,
    ] {
        for (o, (suffix, what)) in OUTCOMES.iter().enumerate() {
            let id = format!("requests_{}_{suffix}", system_name(system));
            let data: Vec<Value> = by
                .iter()
                .filter(|((_, (s, out)), _)| *s == system && *out == o)
                .map(|((t, _), n)| json!({ "time": rfc3339(t / 1000), "value": *n as f64 }))
                .collect();
            metrics.insert(
                id.clone(),
                json!({
                    "id": id,
                    "description": format!("{} {what}", system_name(system)),
                    "unitName": "Count",
                    "unitSymbol": "",
                    "data": data,
                }),
            );
        }
    }
    Ok(json!({ "metrics": metrics }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        let jan31 = 1_738_281_600_000; // 2025-01-31T00:00:00Z
        let m = Bucket::Month;
        assert_eq!(
            rfc3339(m.floor(jan31 + 5_000) / 1000),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(m.next(m.floor(jan31)) / 1000),
            "2025-02-01T00:00:00Z"
        );
        let dec = 1_733_011_200_000; // 2024-12-01
        assert_eq!(rfc3339(m.next(dec) / 1000), "2025-01-01T00:00:00Z");
        let r = TimeRange {
            from_ms: dec + 1,
            to_ms: jan31 + 1,
        };
        assert_eq!(m.starts(r).len(), 2);
        let h = Bucket::from_granularity("FifteenMinutes").unwrap();
        assert_eq!(
            h.starts(TimeRange {
                from_ms: 0,
                to_ms: 3_600_000
            })
            .len(),
            4
        );
        assert_eq!(
            Bucket::from_count_type("HourByHour"),
            Some(Bucket::Fixed(3_600_000))
        );
        assert_eq!(Bucket::from_granularity("week"), None);
        assert_eq!(parse_system("Fairplay"), Some(DrmSystem::FairPlay));
        assert_eq!(parse_system("widevine"), Some(DrmSystem::Widevine));
    }
}
