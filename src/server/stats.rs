//! The DRM statistics endpoints over the licence request log, with the
//! Cloud Video Kit parameters: `GET /drm/v1/list-requests`,
//! `/drm/v1/license-count`, `/drm/v1/histogram`, `/drm/v1/license-metrics`
//! and `/drm/v1/license-error-codes`. Parameter names are matched ignoring
//! case; array filters take repeated keys, `Name[]=` and comma lists;
//! dates are ISO 8601 or `M/D/YYYY` (UTC; ranges include their start and
//! exclude their end, except that an end given as a date without a time
//! includes that whole day). A bad parameter is a 400 naming
//! it. Queries run on the blocking pool.

use super::auth::{authenticate_as, query_tenant};
use super::error::ApiError;
use super::AppState;
use crate::clock::parse_date_time;
use crate::licence::log::{DeviceType, LicenceLog, Os, RequestType};
use crate::licence::stats::{
    self, parse_system, Bucket, Filter, PageRequest, SortField, TimeRange, ERROR_CODES,
};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

/// Largest page of `list-requests`.
const MAX_LIMIT: u64 = 1000;

/// The query's parameters: lower-cased names (`[]` and `[n]` dropped),
/// decoded values.
struct Params(Vec<(String, String)>);

fn bad(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        format!("{name}: {why}"),
    )
}

impl Params {
    fn parse(query: Option<&str>) -> Params {
        Params(
            super::form::pairs(query.unwrap_or_default())
                .map(|(k, v)| {
                    let name = match k.find('[') {
                        Some(i) if k.ends_with(']') => &k[..i],
                        _ => &k,
                    };
                    (name.to_ascii_lowercase(), v)
                })
                .collect(),
        )
    }

    /// Refuses names outside `known` (and `tenantId`).
    fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self
            .0
            .iter()
            .find(|(k, _)| k != "tenantid" && !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
        {
            Some((k, _)) => Err(bad(k, "unknown parameter")),
            None => Ok(()),
        }
    }

    fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let lower = name.to_ascii_lowercase();
        let mut it = self.0.iter().filter(|(k, _)| *k == lower);
        match (it.next(), it.next()) {
            (None, _) => Ok(None),
            (Some((_, v)), None) => Ok(Some(v.as_str())),
            _ => Err(bad(name, "given more than once")),
        }
    }

    /// Every value of an array parameter; `split` also splits on commas.
    fn many(&self, name: &str, split: bool) -> Vec<&str> {
        let lower = name.to_ascii_lowercase();
        self.0
            .iter()
            .filter(|(k, _)| *k == lower)
            .flat_map(|(_, v)| {
                if split {
                    v.split(',').map(str::trim).collect::<Vec<_>>()
                } else {
                    vec![v.as_str()]
                }
            })
            .filter(|v| !v.is_empty())
            .collect()
    }

    fn parsed<T>(
        &self,
        name: &str,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, ApiError> {
        self.many(name, true)
            .into_iter()
            .map(|v| parse(v).ok_or_else(|| bad(name, format!("{v:?} is not {what}"))))
            .collect()
    }

    fn date(&self, name: &str) -> Result<Option<(u64, bool)>, ApiError> {
        self.one(name)?
            .map(|v| {
                let ms = parse_date_time(v).filter(|ms| *ms >= 0).ok_or_else(|| {
                    bad(
                        name,
                        format!("{v:?} is not a date-time (ISO 8601 or M/D/YYYY)"),
                    )
                })?;
                let date_only = !v.trim().contains([':', 'T', 't']);
                Ok((ms as u64, date_only))
            })
            .transpose()
    }

    /// The range of `start`/`end` (required or defaulting to `default_span`
    /// before now), at most `max_days` long.
    fn range(
        &self,
        start: &str,
        end: &str,
        required: bool,
        default_span_ms: u64,
        max_days: u64,
    ) -> Result<TimeRange, ApiError> {
        let s = self.date(start)?;
        let e = self.date(end)?;
        if required {
            if s.is_none() {
                return Err(bad(start, "required"));
            }
            if e.is_none() {
                return Err(bad(end, "required"));
            }
        }
        // An end without a time takes in its whole day; with a time, the
        // range stops just before it.
        let to_ms = match e {
            Some((ms, true)) => ms + 86_400_000,
            Some((ms, false)) => ms,
            None => crate::keys::now_ms(),
        };
        let from_ms = match s {
            Some((ms, _)) => ms,
            None => to_ms.saturating_sub(default_span_ms),
        };
        if from_ms >= to_ms {
            return Err(bad(end, format!("must be after {start}")));
        }
        if to_ms - from_ms > max_days.saturating_mul(86_400_000) {
            return Err(bad(
                end,
                format!("the range spans more than {max_days} days"),
            ));
        }
        Ok(TimeRange { from_ms, to_ms })
    }

    fn filter(&self) -> Result<Filter, ApiError> {
        let ip = self
            .one("IP")?
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| bad("IP", format!("{v:?} is not an IP address")))
            })
            .transpose()?;
        let mut unknown_only = Vec::new();
        for name in ["Country", "ISP", "BrandName"] {
            unknown_only.extend(self.many(name, false).into_iter().map(str::to_owned));
        }
        Ok(Filter {
            systems: self.parsed(
                "DrmSystem",
                "Widevine, PlayReady, Fairplay, ClearKey or AES-128",
                parse_system,
            )?,
            types: self.parsed(
                "RequestType",
                "License, Renewal, Certificate, Release, Key or Token",
                RequestType::parse,
            )?,
            statuses: self.parsed("HttpStatus", "an HTTP status", |v| {
                v.parse::<u16>().ok().filter(|s| (100..600).contains(s))
            })?,
            error_codes: self
                .many("ErrorCode", true)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            content_ids: self
                .many("TokenContentId", false)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            device_types: self.parsed(
                "DeviceType",
                "desktop, mobile, tablet, tv or unknown",
                DeviceType::parse,
            )?,
            platform_os: self.parsed("PlatformOS", "a known OS", Os::parse)?,
            unknown_only,
            ip,
            user_id: self.one("TokenUserId")?.map(str::to_owned),
        })
    }
}

const FILTERS: [&str; 12] = [
    "DrmSystem",
    "RequestType",
    "HttpStatus",
    "ErrorCode",
    "Country",
    "ISP",
    "IP",
    "TokenUserId",
    "TokenContentId",
    "DeviceType",
    "PlatformOS",
    "BrandName",
];

type Query =
    Box<dyn FnOnce(&dyn LicenceLog, &str) -> Result<Value, crate::keys::StoreError> + Send>;

/// Authenticates, parses with `prepare`, and runs the query on the
/// blocking pool.
async fn run(
    state: Arc<AppState>,
    headers: HeaderMap,
    query: Option<String>,
    prepare: impl FnOnce(&Params, &AppState) -> Result<Query, ApiError>,
) -> Response {
    let who = match authenticate_as(
        &state.tenants,
        &headers,
        query_tenant(query.as_deref()).as_deref(),
    ) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let params = Params::parse(query.as_deref());
    let job = match prepare(&params, &state) {
        Ok(j) => j,
        Err(e) => return e.into_response(),
    };
    let Some(log) = state.licence_log.clone() else {
        return ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_configured",
            "the licence log is off ([licence_log] enabled = false)",
        )
        .into_response();
    };
    let tenant = who.tenant.id.clone();
    let done = tokio::task::spawn_blocking(move || {
        // Entries still queued belong to the answer.
        if let Some(w) = &state.log_writer {
            w.flush(std::time::Duration::from_secs(2));
        }
        job(&*log, &tenant)
    })
    .await;
    match done {
        Ok(Ok(v)) => {
            let mut r = Json(v).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "licence log query failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the licence log is unavailable",
            )
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "licence log query panicked");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
            .into_response()
        }
    }
}

fn max_days(state: &AppState) -> u64 {
    state.config.licence_log.max_query_days
}

/// `GET /drm/v1/list-requests`
pub async fn list_requests(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    run(s, h, q, |p, state| {
        let mut known = vec![
            "RequestTimeStart",
            "RequestTimeEnd",
            "Page",
            "Limit",
            "Sort",
            "Desc",
        ];
        known.extend(FILTERS);
        p.only(&known)?;
        let range = p.range(
            "RequestTimeStart",
            "RequestTimeEnd",
            true,
            0,
            max_days(state),
        )?;
        let filter = p.filter()?;
        let page = p
            .one("Page")?
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| bad("Page", "a page number from 0"))
            })
            .transpose()?
            .unwrap_or(0);
        let limit = p
            .one("Limit")?
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad("Limit", format!("1 to {MAX_LIMIT}")))
            })
            .transpose()?
            .unwrap_or(100);
        let sort = p
            .one("Sort")?
            .map(|v| {
                SortField::parse(v)
                    .ok_or_else(|| bad("Sort", format!("{v:?} is not a sortable field")))
            })
            .transpose()?
            .unwrap_or(SortField::RequestTime);
        let desc = match p.one("Desc")?.map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            Some(v) => return Err(bad("Desc", format!("{v:?} is not true or false"))),
        };
        let req = PageRequest {
            page,
            limit,
            sort,
            desc,
        };
        Ok(Box::new(move |log: &dyn LicenceLog, tenant: &str| {
            stats::list(log, tenant, range, &filter, req)
        }) as Query)
    })
    .await
}

/// `GET /drm/v1/license-count`
pub async fn license_count(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    run(s, h, q, |p, state| {
        p.only(&["Type", "RequestTimeStart", "RequestTimeEnd", "HttpStatus"])?;
        let t = p
            .one("Type")?
            .ok_or_else(|| bad("Type", "required (DayByDay, MonthByMonth or HourByHour)"))?;
        let bucket = Bucket::from_count_type(t).ok_or_else(|| {
            bad(
                "Type",
                format!("{t:?} is not DayByDay, MonthByMonth or HourByHour"),
            )
        })?;
        let default_span = match bucket {
            Bucket::Fixed(3_600_000) => 2 * 86_400_000,
            Bucket::Month => 90 * 86_400_000,
            _ => 30 * 86_400_000,
        };
        let range = p.range(
            "RequestTimeStart",
            "RequestTimeEnd",
            false,
            default_span,
            max_days(state),
        )?;
        let statuses = p.filter()?.statuses;
        Ok(Box::new(move |log: &dyn LicenceLog, tenant: &str| {
            stats::license_count(log, tenant, range, bucket, &statuses)
        }) as Query)
    })
    .await
}

/// `GET /drm/v1/histogram`
pub async fn histogram(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    run(s, h, q, |p, state| {
        let mut known = vec!["RequestTimeStart", "RequestTimeEnd", "granularity"];
        known.extend(FILTERS);
        p.only(&known)?;
        let range = p.range(
            "RequestTimeStart",
            "RequestTimeEnd",
            true,
            0,
            max_days(state),
        )?;
        let bucket = match p.one("granularity")? {
            None => Bucket::Fixed(3_600_000),
            Some(g) => Bucket::from_granularity(g).ok_or_else(|| {
                bad(
                    "granularity",
                    format!("{g:?} is not FifteenMinutes, OneHour, SixHours or Day"),
                )
            })?,
        };
        let filter = p.filter()?;
        Ok(Box::new(move |log: &dyn LicenceLog, tenant: &str| {
            stats::histogram(log, tenant, range, bucket, &filter)
        }) as Query)
    })
    .await
}

/// `GET /drm/v1/license-metrics`
pub async fn license_metrics(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    run(s, h, q, |p, state| {
        p.only(&["Start", "End"])?;
        let range = p.range("Start", "End", false, 86_400_000, max_days(state))?;
        Ok(Box::new(move |log: &dyn LicenceLog, tenant: &str| {
            stats::license_metrics(log, tenant, range)
        }) as Query)
    })
    .await
}

/// `GET /drm/v1/license-error-codes`: the codes cpixd answers with.
pub async fn license_error_codes(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    if let Err(e) = authenticate_as(&s.tenants, &h, query_tenant(q.as_deref()).as_deref()) {
        return e.into_response();
    }
    Json(ERROR_CODES.to_vec()).into_response()
}
