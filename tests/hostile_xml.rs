//! Hostile request bodies cost about what a benign body of the same size
//! costs: namespace declarations by the ten thousand, declarations piled
//! up by nesting, prefixes resolved against a full scope, attributes by
//! the dozen on every element. Each is compared with a valid key request of
//! the same size in the same run (a ratio, not an absolute time). Over
//! HTTP, a large body is parsed on the blocking pool, so `/healthz` answers
//! while such bodies wait for their turn.

mod common;

use common::hostile::{benign, hostile, SIZE};
use common::http::send;
use common::server::{config_toml, TestServer, ACME_KEY};
use cpixd::cpix::Limits;
use cpixd::speke::{self, SpekeVersion};
use std::time::{Duration, Instant};

/// The server's limits: 1 MiB bodies, depth 32, 50 000 elements.
fn limits() -> Limits {
    Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    }
}

/// The fastest of several parses of `body` and of `reference`, taken in
/// turn, so that a slow spell of the machine (the other test of this file
/// runs a server beside it) weighs on both alike (the answers do not
/// matter).
fn costs(body: &[u8], reference: &[u8]) -> (Duration, Duration) {
    let time = |b: &[u8]| {
        let t = Instant::now();
        let _ = speke::parse_request(b, SpekeVersion::V2_0, &limits());
        t.elapsed()
    };
    (0..5)
        .map(|_| (time(body), time(reference)))
        .fold((Duration::MAX, Duration::MAX), |(c, r), (c1, r1)| {
            (c.min(c1), r.min(r1))
        })
}

#[test]
fn hostile_bodies_cost_at_most_a_few_times_a_benign_one() {
    let benign = benign();
    assert!(
        speke::parse_request(benign.as_bytes(), SpekeVersion::V2_0, &limits()).is_ok(),
        "the benign body must be a valid request"
    );
    for (what, body) in hostile() {
        assert!(
            body.len() <= SIZE && body.len() > SIZE * 9 / 10,
            "{what}: {} bytes",
            body.len()
        );
        let (c, reference) = costs(body.as_bytes(), benign.as_bytes());
        let ratio = c.as_secs_f64() / reference.as_secs_f64();
        eprintln!("{what}: {c:?} vs benign {reference:?} ({ratio:.2}x)");
        assert!(
            ratio <= 4.0,
            "{what}: {c:?}, {ratio:.1} times the benign body's {reference:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_wait_on_the_blocking_pool_not_on_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config_toml()).await;
    // Take every heavy-work permit: large requests must now wait for one.
    let permits = s
        .state
        .heavy_work
        .acquire_many(s.state.heavy_work.available_permits() as u32)
        .await
        .unwrap();
    let body = benign().into_bytes();
    let url = s.url("/kms/v1/speke2");
    let waiting: Vec<_> = (0..4)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            tokio::spawn(async move {
                send(
                    "POST",
                    &url,
                    &[
                        ("x-api-key", ACME_KEY),
                        ("x-tenant-id", "acme"),
                        ("x-speke-version", "2.0"),
                    ],
                    body,
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The workers are free: health answers at once.
    let t = Instant::now();
    let health = send("GET", &s.url("/healthz"), &[], vec![]).await;
    assert_eq!(health.status, 200);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "a large body was handled without a permit"
    );
    drop(permits);
    for w in waiting {
        let r = w.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    s.stop().await;
}
