//! The five statistics operations against a log filled with a known set of
//! requests: every system, type, status and error code, two tenants, times
//! crossing hour, day and month boundaries (UTC). Each answer is compared
//! with what the set implies, computed here independently; paging is
//! walked to the end; every bad parameter is a 400 naming it; one tenant
//! never sees the other's requests.

mod common;

use common::http::send;
use common::server::{config_toml, TestServer, ACME_KEY, GLOBEX_KEY};
use cpixd::ids::KeyId;
use cpixd::licence::log::{LicenceLog, LogEntry, RequestType};
use cpixd::licence::DrmSystem;
use cpixd::store::licence_log::EmbeddedLicenceLog;
use serde_json::Value;
use std::collections::BTreeMap;

/// 2025-01-31T22:30:00Z
const BASE: u64 = 1_738_362_600_000;
const STEP: u64 = 7 * 60_000;
const N: u64 = 40;

const SYSTEMS: [Option<DrmSystem>; 6] = [
    Some(DrmSystem::Widevine),
    Some(DrmSystem::PlayReady),
    Some(DrmSystem::FairPlay),
    Some(DrmSystem::ClearKey),
    Some(DrmSystem::Aes128),
    None,
];
const TYPES: [RequestType; 5] = [
    RequestType::License,
    RequestType::Renewal,
    RequestType::License,
    RequestType::Certificate,
    RequestType::Release,
];
const OUTCOMES: [(u16, Option<&str>); 4] = [
    (200, None),
    (403, Some("LICENSE_EXPIRED")),
    (401, Some("INVALID_TOKEN")),
    (502, Some("upstream_failed")),
];

fn known(tenant: &str) -> Vec<LogEntry> {
    (0..N)
        .map(|i| {
            let system = SYSTEMS[(i % 6) as usize];
            let request_type = match system {
                None => RequestType::Token,
                Some(DrmSystem::Aes128) => RequestType::Key,
                _ => TYPES[(i % 5) as usize],
            };
            let (status, code) = OUTCOMES[(i % 4) as usize];
            LogEntry {
                time_ms: BASE + i * STEP,
                tenant: tenant.into(),
                system,
                request_type,
                token_user_id: Some(format!("user-{}", i % 3)),
                token_content_id: Some(format!("movie-{}", i % 2)),
                http_status: status,
                error_code: code.map(str::to_owned),
                error_message: code.map(|c| format!("refused: {c}")),
                ip: Some(format!("198.51.100.{}", i % 5).parse().unwrap()),
                user_agent: Some(if i % 2 == 0 {
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36".into()
                } else {
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1".into()
                }),
                payload_length: 100 + i as u32,
                response_length: 1000 - i as u32,
                duration_us: 500,
                kids: vec![KeyId::from_bytes([i as u8; 16])],
                license_url: format!("https://drm.example.com/acquire-license/x?brandGuid={tenant}"),
            }
        })
        .collect()
}

async fn server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLicenceLog::open(&dir.path().join("licences.redb")).unwrap();
        let mut all = known("acme");
        all.extend(
            known("globex")
                .into_iter()
                .filter(|e| e.time_ms % 2 == 0 || e.http_status == 200),
        );
        log.append(&all).unwrap();
    }
    // The known set is in the past: keep it from the retention pruning.
    let toml = format!("{}\n[licence_log]\nretention_days = 36500\n", config_toml());
    let s = TestServer::start(dir.path(), &toml).await;
    (s, dir)
}

fn acme() -> Vec<(&'static str, &'static str)> {
    vec![("x-api-key", ACME_KEY), ("x-tenant-id", "acme")]
}

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    let r = send("GET", &s.url(path), &acme(), vec![]).await;
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

const RANGE: &str = "RequestTimeStart=2025-01-31T00:00:00Z&RequestTimeEnd=2025-02-02T00:00:00Z";

fn iso(ms: u64) -> String {
    cpixd::clock::rfc3339(ms / 1000)
}

#[tokio::test]
async fn list_requests_filters_pages_and_sorts() {
    let (s, _dir) = server().await;
    let set = known("acme");
    // Everything, oldest first, in one page.
    let (st, v) = get(&s, &format!("/drm/v1/list-requests?{RANGE}&Limit=1000")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["totalCount"], N);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), N as usize);
    let first = &items[0];
    assert_eq!(first["system"], "Widevine");
    assert_eq!(first["requestType"], "License");
    assert_eq!(first["tokenUserId"], "user-0");
    assert_eq!(first["tokenContentId"], "movie-0");
    assert_eq!(first["httpStatus"], 200);
    assert_eq!(first["ip"], "198.51.100.0");
    assert_eq!(first["deviceType"], "desktop");
    assert_eq!(first["payloadLength"], 100);
    assert_eq!(first["responseLength"], 1000);
    assert!(first["requestTime"]
        .as_str()
        .unwrap()
        .starts_with("2025-01-31T22:30:00.000"));
    assert!(first["licenseUrl"]
        .as_str()
        .unwrap()
        .contains("brandGuid=acme"));
    for (item, e) in items.iter().zip(&set) {
        assert_eq!(item["httpStatus"], e.http_status);
        assert_eq!(item["tenantId"], "acme");
        assert!(item.get("token").is_none());
    }
    // Paging walked to the end: 0-based pages, every item once.
    let mut seen = Vec::new();
    let mut page = 0;
    loop {
        let (_, v) = get(
            &s,
            &format!("/drm/v1/list-requests?{RANGE}&Limit=7&Page={page}"),
        )
        .await;
        assert_eq!(v["pageNumber"], page);
        assert_eq!(v["pageSize"], 7);
        assert_eq!(v["pageCount"], N.div_ceil(7));
        for it in v["items"].as_array().unwrap() {
            seen.push(it["id"].as_str().unwrap().to_owned());
        }
        if !v["hasMore"].as_bool().unwrap() {
            break;
        }
        page += 1;
    }
    assert_eq!(page, N.div_ceil(7) - 1);
    assert_eq!(seen.len(), N as usize);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), N as usize);
    // Filters, with both array spellings and commas.
    let count = |pred: &dyn Fn(&LogEntry) -> bool| set.iter().filter(|e| pred(e)).count() as u64;
    let cases: Vec<(&str, u64)> = vec![
        (
            "DrmSystem=Widevine&DrmSystem[]=Fairplay",
            count(&|e| matches!(e.system, Some(DrmSystem::Widevine | DrmSystem::FairPlay))),
        ),
        (
            "DrmSystem=widevine,PlayReady",
            count(&|e| matches!(e.system, Some(DrmSystem::Widevine | DrmSystem::PlayReady))),
        ),
        (
            "RequestType=Renewal",
            count(&|e| e.request_type == RequestType::Renewal),
        ),
        (
            "RequestType[]=Token&RequestType[]=Key",
            count(&|e| matches!(e.request_type, RequestType::Token | RequestType::Key)),
        ),
        (
            "HttpStatus=403&HttpStatus=401",
            count(&|e| matches!(e.http_status, 401 | 403)),
        ),
        (
            "ErrorCode=INVALID_TOKEN",
            count(&|e| e.error_code.as_deref() == Some("INVALID_TOKEN")),
        ),
        (
            "TokenUserId=user-1",
            count(&|e| e.token_user_id.as_deref() == Some("user-1")),
        ),
        (
            "TokenContentId=movie-1",
            count(&|e| e.token_content_id.as_deref() == Some("movie-1")),
        ),
        (
            "IP=198.51.100.3",
            count(&|e| e.ip == Some("198.51.100.3".parse().unwrap())),
        ),
        (
            "DeviceType=mobile",
            count(&|e| e.user_agent.as_deref().unwrap().contains("iPhone")),
        ),
        (
            "PlatformOS=Windows",
            count(&|e| e.user_agent.as_deref().unwrap().contains("Windows")),
        ),
        ("Country=PL", 0),
        ("Country=Unknown", N),
        (
            "HttpStatus=200&DrmSystem=ClearKey&TokenUserId=user-0",
            count(&|e| {
                e.http_status == 200
                    && e.system == Some(DrmSystem::ClearKey)
                    && e.token_user_id.as_deref() == Some("user-0")
            }),
        ),
    ];
    for (q, want) in cases {
        let (st, v) = get(&s, &format!("/drm/v1/list-requests?{RANGE}&{q}")).await;
        assert_eq!(st, 200, "{q}: {v}");
        assert_eq!(v["totalCount"], want, "{q}");
    }
    // Sorting: descending by status, time as the tie-breaker.
    let (_, v) = get(
        &s,
        &format!("/drm/v1/list-requests?{RANGE}&Sort=httpStatus&Desc=true&Limit=1000"),
    )
    .await;
    let statuses: Vec<u64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["httpStatus"].as_u64().unwrap())
        .collect();
    assert!(statuses.windows(2).all(|w| w[0] >= w[1]), "{statuses:?}");
    assert_eq!(statuses.len(), N as usize);
    let (_, v) = get(
        &s,
        &format!("/drm/v1/list-requests?{RANGE}&Desc=true&Limit=2"),
    )
    .await;
    assert_eq!(
        v["items"][0]["requestTime"].as_str().unwrap()[..19],
        iso(BASE + (N - 1) * STEP)[..19]
    );
    // The API's own date spelling; an end date takes in its whole day.
    let (_, v) = get(
        &s,
        "/drm/v1/list-requests?RequestTimeStart=1%2F31%2F2025&RequestTimeEnd=1%2F31%2F2025",
    )
    .await;
    let jan31 = set.iter().filter(|e| e.time_ms < 1_738_368_000_000).count();
    assert_eq!(v["totalCount"], jan31 as u64);
    s.stop().await;
}

#[tokio::test]
async fn counts_histograms_metrics_and_error_codes() {
    let (s, _dir) = server().await;
    let set = known("acme");
    let licences =
        |e: &&LogEntry| matches!(e.request_type, RequestType::License | RequestType::Renewal);
    // license-count, hour by hour: every bucket of the range, zero-filled.
    let (st, v) = get(
        &s,
        &format!("/drm/v1/license-count?Type=HourByHour&{RANGE}"),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 48);
    let mut want: BTreeMap<(u64, &str), u64> = BTreeMap::new();
    for e in set.iter().filter(licences) {
        let key = match e.system {
            Some(DrmSystem::Widevine) => "widevine",
            Some(DrmSystem::PlayReady) => "playready",
            Some(DrmSystem::FairPlay) => "fairplay",
            Some(DrmSystem::ClearKey) => "clearkey",
            _ => continue,
        };
        *want
            .entry((e.time_ms - e.time_ms % 3_600_000, key))
            .or_default() += 1;
    }
    let mut total = 0;
    for row in rows {
        let date = row["date"].as_str().unwrap();
        let t = cpixd::clock::parse_date_time(date).unwrap() as u64;
        for sys in ["widevine", "playready", "fairplay", "clearkey"] {
            let got = row[sys].as_u64().unwrap();
            assert_eq!(
                got,
                want.get(&(t, sys)).copied().unwrap_or(0),
                "{date} {sys}"
            );
            total += got;
        }
    }
    assert_eq!(
        total,
        set.iter()
            .filter(licences)
            .filter(|e| !matches!(e.system, None | Some(DrmSystem::Aes128)))
            .count() as u64
    );
    // Day by day and month by month cross the boundaries; the status filter.
    let (_, v) = get(
        &s,
        &format!("/drm/v1/license-count?Type=DayByDay&{RANGE}&HttpStatus=200"),
    )
    .await;
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["date"], "2025-01-31T00:00:00Z");
    assert_eq!(rows[1]["date"], "2025-02-01T00:00:00Z");
    let day_total: u64 = rows
        .iter()
        .map(|r| {
            ["widevine", "playready", "fairplay", "clearkey"]
                .iter()
                .map(|k| r[*k].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(
        day_total,
        set.iter()
            .filter(licences)
            .filter(|e| e.http_status == 200 && !matches!(e.system, None | Some(DrmSystem::Aes128)))
            .count() as u64
    );
    let (_, v) = get(
        &s,
        &format!("/drm/v1/license-count?Type=MonthByMonth&{RANGE}"),
    )
    .await;
    let dates: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"]);
    // Histogram: every request matching, per fifteen minutes.
    let (st, v) = get(&s, &format!("/drm/v1/histogram?{RANGE}&granularity=FifteenMinutes&DrmSystem=Widevine&DrmSystem=ClearKey")).await;
    assert_eq!(st, 200, "{v}");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 48 * 4);
    let sum: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(
        sum,
        set.iter()
            .filter(|e| matches!(e.system, Some(DrmSystem::Widevine | DrmSystem::ClearKey)))
            .count() as u64
    );
    for r in rows {
        let ts = r["timestamp"].as_u64().unwrap();
        assert_eq!(ts % 900_000, 0);
        assert!(r["date"].as_str().unwrap().ends_with("+00:00"));
        let want = set
            .iter()
            .filter(|e| {
                matches!(e.system, Some(DrmSystem::Widevine | DrmSystem::ClearKey))
                    && e.time_ms >= ts
                    && e.time_ms < ts + 900_000
            })
            .count() as u64;
        assert_eq!(r["count"], want);
    }
    // Metrics: per system and outcome, hourly.
    let (st, v) = get(
        &s,
        "/drm/v1/license-metrics?Start=2025-01-31T20:00:00Z&End=2025-02-01T06:00:00Z",
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let m = &v["metrics"];
    for sys in ["Widevine", "PlayReady", "Fairplay", "ClearKey"] {
        for (suffix, lo, hi) in [
            ("LicenseOk", 200, 399),
            ("LicenseFailed_4xx", 400, 499),
            ("LicenseFailed_5xx", 500, 599),
        ] {
            let id = format!("requests_{sys}_{suffix}");
            let entry = &m[&id];
            assert_eq!(entry["id"], id.as_str());
            assert_eq!(entry["unitName"], "Count");
            let got: f64 = entry["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["value"].as_f64().unwrap())
                .sum();
            let want = set
                .iter()
                .filter(licences)
                .filter(|e| {
                    e.system.map(|s| s.display_name()) == Some(sys)
                        && (lo..=hi).contains(&e.http_status)
                })
                .count();
            assert_eq!(got as usize, want, "{id}");
        }
    }
    let (_, v) = get(&s, "/drm/v1/license-error-codes").await;
    let codes: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(codes.contains(&"INVALID_TOKEN") && codes.contains(&"LICENSE_EXPIRED"));
    // Tenant isolation: globex sees its own entries only.
    let r = send(
        "GET",
        &s.url(&format!("/drm/v1/list-requests?{RANGE}&Limit=1000")),
        &[("x-api-key", GLOBEX_KEY), ("x-tenant-id", "globex")],
        vec![],
    )
    .await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let globex = known("globex")
        .into_iter()
        .filter(|e| e.time_ms % 2 == 0 || e.http_status == 200)
        .count();
    assert_eq!(v["totalCount"], globex as u64);
    assert!(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["tenantId"] == "globex"));
    s.stop().await;
}

#[tokio::test]
async fn each_bad_parameter_is_a_400_naming_it() {
    let (s, _dir) = server().await;
    let cases = [
        (
            "/drm/v1/list-requests?RequestTimeEnd=2025-02-01",
            "RequestTimeStart",
        ),
        (
            "/drm/v1/list-requests?RequestTimeStart=2025-02-01",
            "RequestTimeEnd",
        ),
        (
            "/drm/v1/list-requests?RequestTimeStart=yesterday&RequestTimeEnd=2025-02-01",
            "RequestTimeStart",
        ),
        (
            "/drm/v1/list-requests?RequestTimeStart=2025-02-30&RequestTimeEnd=2025-03-01",
            "RequestTimeStart",
        ),
        (
            "/drm/v1/list-requests?RequestTimeStart=2025-02-02&RequestTimeEnd=2025-02-01T00:00:00Z",
            "RequestTimeEnd",
        ),
        (
            "/drm/v1/list-requests?RequestTimeStart=2024-01-01&RequestTimeEnd=2025-02-01",
            "RequestTimeEnd",
        ),
        (&format!("/drm/v1/list-requests?{RANGE}&Limit=0"), "Limit"),
        (
            &format!("/drm/v1/list-requests?{RANGE}&Limit=5000"),
            "Limit",
        ),
        (&format!("/drm/v1/list-requests?{RANGE}&Page=-1"), "Page"),
        (
            &format!("/drm/v1/list-requests?{RANGE}&Sort=colour"),
            "Sort",
        ),
        (&format!("/drm/v1/list-requests?{RANGE}&Desc=maybe"), "Desc"),
        (
            &format!("/drm/v1/list-requests?{RANGE}&DrmSystem=vmx"),
            "DrmSystem",
        ),
        (
            &format!("/drm/v1/list-requests?{RANGE}&RequestType=Steal"),
            "RequestType",
        ),
        (
            &format!("/drm/v1/list-requests?{RANGE}&HttpStatus=abc"),
            "HttpStatus",
        ),
        (&format!("/drm/v1/list-requests?{RANGE}&IP=not-an-ip"), "IP"),
        (
            &format!("/drm/v1/list-requests?{RANGE}&DeviceType=toaster"),
            "DeviceType",
        ),
        (
            &format!("/drm/v1/list-requests?{RANGE}&Frobnicate=1"),
            "frobnicate",
        ),
        (
            &format!("/drm/v1/list-requests?{RANGE}&Page=1&Page=2"),
            "Page",
        ),
        (
            &format!("/drm/v1/histogram?{RANGE}&granularity=Week"),
            "granularity",
        ),
        (
            "/drm/v1/histogram?RequestTimeEnd=2025-02-01",
            "RequestTimeStart",
        ),
        ("/drm/v1/license-count", "Type"),
        ("/drm/v1/license-count?Type=Weekly", "Type"),
        (
            "/drm/v1/license-metrics?Start=2025-02-02&End=2025-02-01",
            "End",
        ),
    ];
    for (path, name) in cases {
        let (st, v) = get(&s, path).await;
        assert_eq!(st, 400, "{path}: {v}");
        assert_eq!(v["code"], "bad_parameter");
        assert!(
            v["message"].as_str().unwrap().starts_with(name),
            "{path}: {v}"
        );
    }
    // Credentials, as everywhere.
    let r = send(
        "GET",
        &s.url(&format!("/drm/v1/list-requests?{RANGE}")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 401);
    s.stop().await;
}
