//! The statistics operations over a day of 1,000,000 logged player
//! requests of one tenant (plus 100,000 of another), in the embedded
//! licence log: each operation as the `/drm/v1/*` endpoints run it.
//!
//! Run: `cargo bench --bench licence_log` (filling the log takes a while
//! the first time; it is kept in `target/licence-log-bench/`). Under
//! `cargo test`, which runs each benchmark once to see that it works, the
//! day holds 10,000 requests instead: the same operations, without a
//! 300 MB file to fill first.

use cpixd::ids::KeyId;
use cpixd::licence::log::{LicenceLog, LogEntry, RequestType};
use cpixd::licence::stats::{self, Bucket, Filter, PageRequest, SortField, TimeRange};
use cpixd::licence::DrmSystem;
use cpixd::store::licence_log::EmbeddedLicenceLog;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

#[path = "../src/allocator.rs"]
mod allocator;

#[global_allocator]
static ALLOC: allocator::Mimalloc = allocator::Mimalloc;

/// 2026-01-01T00:00:00Z
const DAY: u64 = 1_767_225_600_000;

/// Requests of the main tenant in the day: a million when benchmarking
/// (`cargo bench` passes `--bench`), 10,000 in criterion's test mode.
fn entries() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    if benchmarking {
        1_000_000
    } else {
        10_000
    }
}

fn entry(tenant: &str, i: u64, entries: u64) -> LogEntry {
    let systems = [
        DrmSystem::Widevine,
        DrmSystem::PlayReady,
        DrmSystem::FairPlay,
        DrmSystem::ClearKey,
    ];
    LogEntry {
        time_ms: DAY + i * 86_400_000 / entries,
        tenant: tenant.into(),
        system: Some(systems[(i % 4) as usize]),
        request_type: if i % 10 == 0 { RequestType::Renewal } else { RequestType::License },
        token_user_id: Some(format!("user-{}", i % 50_000)),
        token_content_id: Some(format!("movie-{}", i % 2_000)),
        http_status: if i % 50 == 0 { 403 } else { 200 },
        error_code: (i % 50 == 0).then(|| "LICENSE_EXPIRED".to_owned()),
        error_message: (i % 50 == 0).then(|| "the token expired".to_owned()),
        ip: Some(std::net::IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8])),
        user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36".into()),
        payload_length: 2000,
        response_length: 900,
        duration_us: 700,
        kids: vec![KeyId::from_bytes([(i % 251) as u8; 16])],
        license_url: format!("https://drm.example.com/acquire-license/widevine?brandGuid={tenant}"),
    }
}

fn filled() -> EmbeddedLicenceLog {
    let entries = entries();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/licence-log-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("licences-{entries}.redb"));
    let ready = dir.join(format!("licences-{entries}.ready"));
    if !ready.exists() {
        let _ = std::fs::remove_file(&path);
        let log = EmbeddedLicenceLog::open(&path).expect("log");
        let t = std::time::Instant::now();
        for chunk in (0..entries).collect::<Vec<_>>().chunks(10_000) {
            let batch: Vec<LogEntry> = chunk.iter().map(|&i| entry("acme", i, entries)).collect();
            log.append(&batch).expect("append");
        }
        let other: Vec<LogEntry> = (0..entries / 10)
            .map(|i| entry("globex", i * 10, entries))
            .collect();
        log.append(&other).expect("append");
        eprintln!(
            "filled {} entries in {:?}",
            entries + entries / 10,
            t.elapsed()
        );
        std::fs::write(&ready, b"").expect("marker");
    }
    EmbeddedLicenceLog::open(&path).expect("log")
}

fn operations(c: &mut Criterion) {
    let log = filled();
    let day = TimeRange {
        from_ms: DAY,
        to_ms: DAY + 86_400_000,
    };
    let mut g = c.benchmark_group("licence_log_1m_day");
    g.sample_size(10);
    let page = PageRequest {
        page: 0,
        limit: 100,
        sort: SortField::RequestTime,
        desc: false,
    };
    g.bench_function("list_requests_first_page", |b| {
        b.iter(|| stats::list(&log, "acme", day, &Filter::default(), page).unwrap())
    });
    g.bench_function("list_requests_last_page_desc", |b| {
        let p = PageRequest {
            // The last page of the main tenant's day.
            page: (entries() / 100 - 1) as _,
            desc: true,
            ..page
        };
        b.iter(|| stats::list(&log, "acme", day, &Filter::default(), p).unwrap())
    });
    let by_user = Filter {
        user_id: Some("user-42".into()),
        ..Filter::default()
    };
    g.bench_function("list_requests_token_user_filter", |b| {
        b.iter(|| stats::list(&log, "acme", day, &by_user, page).unwrap())
    });
    g.bench_function("list_requests_sorted_by_status", |b| {
        let p = PageRequest {
            sort: SortField::HttpStatus,
            desc: true,
            ..page
        };
        b.iter(|| stats::list(&log, "acme", day, &Filter::default(), p).unwrap())
    });
    g.bench_function("license_count_hour_by_hour", |b| {
        b.iter(|| stats::license_count(&log, "acme", day, Bucket::Fixed(3_600_000), &[]).unwrap())
    });
    let failed = Filter {
        statuses: vec![403],
        ..Filter::default()
    };
    g.bench_function("histogram_fifteen_minutes_403", |b| {
        b.iter(|| stats::histogram(&log, "acme", day, Bucket::Fixed(900_000), &failed).unwrap())
    });
    g.bench_function("license_metrics", |b| {
        b.iter(|| stats::license_metrics(&log, "acme", day).unwrap())
    });
    g.finish();
    black_box(&log);
}

criterion_group!(benches, operations);
criterion_main!(benches);
