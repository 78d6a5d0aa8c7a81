//! Answers one of the engine bench's requests N times in process, for
//! instruction counts and profiles that do not depend on the machine's
//! neighbours:
//!
//!   cargo build --release --example answer_loop
//!   valgrind --tool=callgrind target/release/examples/answer_loop b 101
//!   valgrind --tool=callgrind target/release/examples/answer_loop b 1
//!
//! The difference of the two totals, divided by 100, is the cost of one
//! answer (keys exist after the first). Cases: `a` SPEKE 1.0, 1 key;
//! `b` SPEKE 2.0, 8 keys, 24 DRMSystems; `c` is `b` encrypted to one
//! 2048-bit recipient.

use cpixd::cpix::Limits;
use cpixd::crypto::SeededRandom;
use cpixd::drm::DrmSettings;
use cpixd::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
use std::hint::black_box;
use std::sync::Arc;

#[path = "../tests/common/certs.rs"]
#[allow(dead_code)]
mod certs;

/// The allocator of the `cpixd` binary.
#[path = "../src/allocator.rs"]
mod allocator;

#[global_allocator]
static ALLOC: allocator::Mimalloc = allocator::Mimalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "b".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let fixture = |f: &str| {
        std::fs::read_to_string(format!(
            "{}/fixtures/requests/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    };
    let (body, version) = match case.as_str() {
        "a" => (
            fixture("v1-widevine-playready-fairplay-live.xml"),
            SpekeVersion::V1_0,
        ),
        "b" => (
            fixture("v2-video5-audio3-widevine-playready-fairplay-live.xml"),
            SpekeVersion::V2_0,
        ),
        "c" => {
            let clear = fixture("v2-video5-audio3-widevine-playready-fairplay-live.xml");
            let recipient = certs::make(2048, 2020, 2099);
            (
                certs::with_recipients(&clear, &[&recipient.cert_der]),
                SpekeVersion::V2_0,
            )
        }
        other => panic!("case {other:?}: a, b or c"),
    };
    let mut settings = DrmSettings::default();
    settings.playready.la_url = Some("https://playready.example.com/rightsmanager.asmx".into());
    let limits = Limits::default();
    let rng = Arc::new(SeededRandom::new(1));
    let keys = MemoryKeySource::new(rng.clone());
    let ctx = FillContext::new(&settings, &*rng);
    let mut bytes = 0;
    for _ in 0..n {
        let answer = speke::answer(black_box(body.as_bytes()), version, &keys, &ctx, &limits)
            .expect("answer");
        bytes += answer.body.len();
    }
    println!("{n} answers, {bytes} bytes");
}
