//! Connection floods against a real `cpixd serve`: 1 500 half-sent
//! request heads and 500 silent connections, twice the configured cap,
//! cannot keep a legitimate client out (the longest-idle connection gives
//! way), and the server closes them at the header-read deadline by itself.
//! Everything stays on 127.0.0.1 and ends within seconds.

mod common;

use common::child;
use common::http::try_send;
use common::server::{config_toml, ACME_KEY, METRICS_AUTH};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The flood of the report: 1 500 half-sent heads and 500 silent
/// connections (scaled down, in the same proportions, where this process
/// may not open that many sockets).
const FLOOD: usize = 2000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A request that must be answered promptly while the flood is held.
fn legitimate(rt: &tokio::runtime::Runtime, base: &str) {
    let speke = std::fs::read(common::fixtures().join("requests/v1-widevine-vod.xml")).unwrap();
    for (path, body) in [("/healthz", vec![]), ("/kms/v1/speke", speke)] {
        let t = Instant::now();
        let method = if body.is_empty() { "GET" } else { "POST" };
        let r = rt
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(5),
                    try_send(
                        method,
                        &format!("{base}{path}"),
                        &[("x-api-key", ACME_KEY), ("x-tenant-id", "acme")],
                        body,
                    ),
                )
                .await
            })
            .unwrap_or_else(|_| panic!("{path} did not answer within 5 s"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        eprintln!("{path} answered in {:?} during the flood", t.elapsed());
    }
}

/// True once the server has closed `s` (end of stream or reset).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => true, // an error answer before closing is fine too
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn half_sent_heads_and_silent_connections_cannot_shut_out_a_client() {
    // The client side holds the whole flood.
    let fds = rlimit::increase_nofile_limit(8192).unwrap_or(1024) as usize;
    let flood_size = FLOOD.min(fds.saturating_sub(128));
    let half_sent = flood_size * 3 / 4;
    let cap = flood_size / 2;
    if flood_size < FLOOD {
        eprintln!("descriptor limit {fds}: a flood of {flood_size} against a cap of {cap}");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cpixd.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[limits]\nmax_connections = {cap}\nheader_read_timeout_secs = 5\nidle_timeout_secs = 5\n",
            config_toml()
        ),
    )
    .unwrap();
    let server = child::start(dir.path(), Some(&config), &[("CPIXD_LOG", "info")]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let rt = runtime();

    let started = Instant::now();
    let mut flood = Vec::with_capacity(flood_size);
    for i in 0..flood_size {
        let mut s = TcpStream::connect(&addr).expect("connect");
        if i < half_sent {
            s.write_all(b"POST /kms/v1/speke2 HTTP/1.1\r\nHost: x\r\nX-Api-Key: ")
                .unwrap();
        }
        flood.push(s);
    }
    eprintln!(
        "{} connections opened in {:?}",
        flood.len(),
        started.elapsed()
    );
    // More connections than the cap are held: a client still gets in.
    legitimate(&rt, &server.base);

    // The server closes the flood at the header-read deadline by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut open: Vec<TcpStream> = flood;
    while !open.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        open.retain_mut(|s| !closed_by_server(s));
    }
    assert!(
        open.is_empty(),
        "{} flood connections still open after the header-read timeout",
        open.len()
    );
    legitimate(&rt, &server.base);

    let metrics = rt
        .block_on(try_send(
            "GET",
            &format!("{}/metrics", server.base),
            &[METRICS_AUTH],
            vec![],
        ))
        .unwrap()
        .text();
    let count = |reason: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.contains(&format!("reason=\"{reason}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("evicted_at_cap") > 0, "{metrics}");
    assert!(count("idle_timeout") > 0, "{metrics}");
    server.sigterm();
}
