//! Criterion benches of the pure engine: parse, fill and write, separately
//! and end to end, for (a) a SPEKE 1.0 request with one key and three DRM
//! systems and (b) a SPEKE 2.0 PRESET-VIDEO-5 + PRESET-AUDIO-3 request with
//! Widevine, PlayReady and FairPlay (8 keys, 24 DRMSystems).
//!
//! (c) is (b) with one 2048-bit recipient certificate: every key encrypted
//! (two RSA-OAEP wraps, AES-256-CBC and HMAC-SHA512 per key).
//!
//! (d) parses a valid 1 MB request and, beside it, bodies of the same size
//! that attack namespace resolution (the cost of each should stay within a
//! few times the valid one's).
//!
//! Run: `cargo bench --bench engine` (uses mimalloc, like the binary).

use cpixd::cpix::Limits;
use cpixd::crypto::SeededRandom;
use cpixd::drm::DrmSettings;
use cpixd::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;

#[path = "../tests/common/certs.rs"]
#[allow(dead_code)]
mod certs;

#[path = "../tests/common/hostile.rs"]
mod hostile;

/// The allocator of the `cpixd` binary, so the figures are the server's.
#[path = "../src/allocator.rs"]
mod allocator;

#[global_allocator]
static ALLOC: allocator::Mimalloc = allocator::Mimalloc;

const CASES: &[(&str, &str, SpekeVersion)] = &[
    (
        "a_v1_1key_3drm",
        "v1-widevine-playready-fairplay-live.xml",
        SpekeVersion::V1_0,
    ),
    (
        "b_v2_video5_audio3_3drm",
        "v2-video5-audio3-widevine-playready-fairplay-live.xml",
        SpekeVersion::V2_0,
    ),
];

fn engine(c: &mut Criterion) {
    let mut settings = DrmSettings::default();
    settings.playready.la_url = Some("https://playready.example.com/rightsmanager.asmx".into());
    let limits = Limits::default();
    for &(name, file, version) in CASES {
        let path = format!("{}/fixtures/requests/{file}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read(&path).expect("bench fixture");
        let rng = Arc::new(SeededRandom::new(1));
        let keys = MemoryKeySource::new(rng.clone());
        let ctx = FillContext::new(&settings, &*rng);
        // Keys exist after the first answer: the benches measure the
        // engine, not key generation.
        let first = speke::answer(&body, version, &keys, &ctx, &limits).expect("answer");
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(1));
        g.bench_function("parse", |b| {
            b.iter(|| speke::parse_request(black_box(&body), version, &limits).unwrap())
        });
        let parsed = speke::parse_request(&body, version, &limits).unwrap();
        g.bench_function("fill", |b| {
            b.iter_batched(
                || parsed.clone(),
                |mut req| {
                    speke::fill(&mut req, &keys, &ctx).unwrap();
                    req
                },
                BatchSize::SmallInput,
            )
        });
        let mut filled = parsed.clone();
        speke::fill(&mut filled, &keys, &ctx).unwrap();
        g.throughput(Throughput::Bytes(first.body.len() as u64));
        g.bench_function("write", |b| {
            b.iter(|| speke::write_response(black_box(&filled)))
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function("end_to_end", |b| {
            b.iter(|| speke::answer(black_box(&body), version, &keys, &ctx, &limits).unwrap())
        });
        g.finish();
    }
}

fn encrypted(c: &mut Criterion) {
    let settings = DrmSettings::default();
    let limits = Limits::default();
    let path = format!(
        "{}/fixtures/requests/v2-video5-audio3-widevine-playready-fairplay-live.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let clear = std::fs::read_to_string(&path).expect("bench fixture");
    let recipient = certs::make(2048, 2020, 2099);
    let body = certs::with_recipients(&clear, &[&recipient.cert_der]);
    let rng = Arc::new(SeededRandom::new(2));
    let keys = MemoryKeySource::new(rng.clone());
    let ctx = FillContext::new(&settings, &*rng);
    speke::answer(body.as_bytes(), SpekeVersion::V2_0, &keys, &ctx, &limits).expect("answer");
    let mut g = c.benchmark_group("c_v2_video5_audio3_3drm_encrypted_1_recipient");
    g.bench_function("end_to_end", |b| {
        b.iter(|| {
            speke::answer(
                black_box(body.as_bytes()),
                SpekeVersion::V2_0,
                &keys,
                &ctx,
                &limits,
            )
            .unwrap()
        })
    });
    g.finish();
}

fn hostile_xml(c: &mut Criterion) {
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut g = c.benchmark_group("d_hostile_xml_1mb_parse");
    g.sample_size(20);
    let benign = hostile::benign();
    g.bench_function("valid_request", |b| {
        b.iter(|| speke::parse_request(black_box(benign.as_bytes()), SpekeVersion::V2_0, &limits))
    });
    for (what, body) in hostile::hostile() {
        let name = what.replace(' ', "_");
        g.bench_function(name, |b| {
            b.iter(|| speke::parse_request(black_box(body.as_bytes()), SpekeVersion::V2_0, &limits))
        });
    }
    g.finish();
}

criterion_group!(benches, engine, encrypted, hostile_xml);
criterion_main!(benches);
