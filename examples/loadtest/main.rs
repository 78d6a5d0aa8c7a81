//! Load test of `cpixd serve` on loopback. Runs, in one go:
//!
//! 1. a baseline: a minimal axum server (this program, in a child process)
//!    returning a body of the same size as cpixd's response;
//! 2. (a) repeated SPEKE 2.0 requests for existing keys against cpixd
//!    (PRESET-VIDEO-5 + PRESET-AUDIO-3, Widevine + PlayReady + FairPlay:
//!    8 keys, 24 DRMSystems), same connections and duration as the baseline.
//!    The request repeats byte for byte, so with the default configuration
//!    these are answered from the response cache;
//! 3. (a') the same against a second cpixd with the response cache disabled
//!    (`limits.response_cache_bytes = 0`): every request is parsed,
//!    validated, looked up in the store, filled and written;
//! 4. (a'') new content without pause: every request names a new content
//!    id and 8 new KIDs, so every answer waits for its keys to be durable
//!    (same connections and duration, on the server of (a'));
//! 5. (b) a channel-start storm: N concurrent requests for new content
//!    (fresh content ids and KIDs, so every key is a durable write), then
//!    SIGKILL, restart, and a check that every key comes back identical;
//! 6. (c) ClearKey licences for 2 KIDs with a DRM token, every request
//!    recorded in the licence log, and (c') the same with the log off,
//!    beside a baseline handler returning a body of the licence's size; then
//!    each again at a steady rate (`--licence-rate`, default 2000/s, below
//!    saturation, as licence traffic is), where the latency a player sees is
//!    compared with the log on and off.
//!
//! It prints requests/s, p50/p99 latency and each cpixd's peak RSS. Traffic
//! goes to 127.0.0.1 only and the run is bounded in count and time.
//!
//! With `--multinode [ADMIN_URL]` it runs (d) instead: several nodes on one
//! PostgreSQL database (see `multinode.rs`).
//!
//!   cargo build --release --bin cpixd --example loadtest
//!   target/release/examples/loadtest [--seconds 10] [--connections 32] [--storm 1000] [--licence-rate 2000]
//!   target/release/examples/loadtest --multinode [postgres://…]

mod multinode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const API_KEY: &str = "loadtest-api-key";
const REQUEST: &str = "fixtures/requests/v2-video5-audio3-widevine-playready-fairplay-live.xml";

struct Args {
    seconds: u64,
    connections: usize,
    storm: usize,
    licence_rate: u64,
    cpixd: PathBuf,
    /// `--multinode [ADMIN_URL]`: run (d) only.
    multinode: Option<Option<String>>,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        connections: 32,
        storm: 1000,
        licence_rate: 2000,
        cpixd: PathBuf::from("target/release/cpixd"),
        multinode: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("missing value");
        match flag.as_str() {
            "--seconds" => a.seconds = value().parse().expect("--seconds N"),
            "--connections" => a.connections = value().parse().expect("--connections N"),
            "--storm" => a.storm = value().parse().expect("--storm N"),
            "--licence-rate" => a.licence_rate = value().parse().expect("--licence-rate N"),
            "--cpixd" => a.cpixd = value().into(),
            "--multinode" => {
                a.multinode = Some(it.next_if(|v| !v.starts_with("--")));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Waits for a child's "listening on http://ADDR" line on stderr.
fn wait_listening(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let addr = line[i + "listening on http://".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("server start")
}

/// Starts cpixd on `dir`; `cache_bytes` sets `limits.response_cache_bytes`
/// (`None`: the default, 16 MiB).
fn start_cpixd(bin: &Path, dir: &Path, cache_bytes: Option<usize>) -> (Child, String) {
    let limits = cache_bytes
        .map(|n| format!("[limits]\nresponse_cache_bytes = {n}\n"))
        .unwrap_or_default();
    start_cpixd_with(bin, dir, &limits)
}

/// Starts cpixd on `dir` with `extra` configuration tables.
fn start_cpixd_with(bin: &Path, dir: &Path, extra: &str) -> (Child, String) {
    let cfg = dir.join("cpixd.toml");
    let limits = extra;
    std::fs::write(
        &cfg,
        format!(
            "{limits}[log]\nlevel = \"warn,cpixd=info\"\n[[tenant]]\nid = \"load\"\napi_key_sha256 = [\"{}\"]\n",
            cpixd::crypto::sha256_hex(API_KEY.as_bytes())
        ),
    )
    .unwrap();
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cpixd (build it with cargo build --release)");
    let addr = wait_listening(&mut child);
    (child, addr)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .build_http()
}

async fn post(c: &HttpClient, url: &str, body: &Bytes) -> Result<(u16, Bytes), String> {
    send(c, url, body, None).await
}

/// A SPEKE 2.0 request, or (with `bearer`) a licence request.
async fn send(
    c: &HttpClient,
    url: &str,
    body: &Bytes,
    bearer: Option<&str>,
) -> Result<(u16, Bytes), String> {
    let req = match bearer {
        None => hyper::Request::post(url)
            .header("x-api-key", API_KEY)
            .header("x-tenant-id", "load")
            .header("x-speke-version", "2.0")
            .header("content-type", "application/xml"),
        Some(token) => hyper::Request::post(url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json"),
    }
    .body(Full::new(body.clone()))
    .map_err(|e| e.to_string())?;
    let resp = c.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes))
}

struct Stats {
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
}

impl Stats {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// `connections` workers send `body` to `url` for `seconds`.
async fn closed_loop(url: &str, body: Bytes, connections: usize, seconds: u64) -> Stats {
    closed_loop_as(url, body, None, connections, seconds).await
}

/// [`closed_loop`], as a player with a DRM token when `bearer` is set.
async fn closed_loop_as(
    url: &str,
    body: Bytes,
    bearer: Option<String>,
    connections: usize,
    seconds: u64,
) -> Stats {
    closed_loop_over(
        &[url.to_owned()],
        Arc::new(move |_| body.clone()),
        bearer,
        connections,
        seconds,
    )
    .await
}

/// Makes the body of the `n`th request of a run.
type BodyFn = Arc<dyn Fn(usize) -> Bytes + Send + Sync>;

/// `connections` workers for `seconds`; worker `i` sends to
/// `urls[i % N]` the body of the request's number.
async fn closed_loop_over(
    urls: &[String],
    body: BodyFn,
    bearer: Option<String>,
    connections: usize,
    seconds: u64,
) -> Stats {
    let c = client();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..connections {
        let (c, url, body, bearer, counter) = (
            c.clone(),
            urls[i % urls.len()].clone(),
            body.clone(),
            bearer.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0;
            while Instant::now() < deadline {
                let b = body(counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                let t = Instant::now();
                match send(&c, &url, &b, bearer.as_deref()).await {
                    Ok((200, _)) => lat.push(t.elapsed().as_micros() as u64),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Stats {
        requests: all.len(),
        errors,
        seconds,
        latencies_us: all,
    }
}

/// `rate` requests a second to `url` for `seconds`, each sent on its own
/// schedule whatever the others do (an open loop), as a player with a DRM
/// token when `bearer` is set. Latency runs from each request's send.
async fn paced(url: &str, body: Bytes, bearer: Option<String>, rate: u64, seconds: u64) -> Stats {
    let c = client();
    let started = tokio::time::Instant::now();
    let total = rate * seconds;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate as f64)).await;
        let (c, url, body, bearer) = (c.clone(), url.to_owned(), body.clone(), bearer.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            match send(&c, &url, &body, bearer.as_deref()).await {
                Ok((200, _)) => Some(t.elapsed().as_micros() as u64),
                _ => None,
            }
        }));
    }
    let mut all = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for t in tasks {
        match t.await.unwrap() {
            Some(l) => all.push(l),
            None => errors += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Stats {
        requests: all.len(),
        errors,
        seconds,
        latencies_us: all,
    }
}

/// The closed loop of `args` against the minimal axum handler (this
/// program, in a child process) answering `size` bytes to `body`.
fn baseline(rt: &tokio::runtime::Runtime, size: usize, body: Bytes, args: &Args) -> Stats {
    let mut server = Command::new(std::env::current_exe().unwrap())
        .args(["--baseline-server", &size.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = wait_listening(&mut server);
    let url = format!("http://{addr}/");
    let stats = rt.block_on(closed_loop(&url, body, args.connections, args.seconds));
    let _ = server.kill();
    let _ = server.wait();
    stats
}

/// The load request cut where the content id and the first 8 hex digits
/// of each KID go, so that the body for channel `n` (new content: its own
/// content id and KIDs) is built by concatenation, cheap enough not to
/// load the client.
pub(crate) struct NewContent {
    /// Text around the holes; one more piece than holes.
    pieces: Vec<String>,
}

impl NewContent {
    pub(crate) fn new(template: &str, kids: &[String]) -> NewContent {
        let mut marked = template.replace("contentId=\"channel-5\"", "contentId=\"\0\"");
        for k in kids {
            marked = marked.replace(k.as_str(), &format!("\0{}", &k[8..]));
        }
        let pieces: Vec<String> = marked.split('\0').map(str::to_owned).collect();
        assert!(
            pieces[0].ends_with("contentId=\"") && pieces.len() > 2,
            "the content id comes first, then the KIDs"
        );
        NewContent { pieces }
    }

    /// The request for channel `n`: content id `storm-n`, KIDs starting
    /// with `n` in hex.
    pub(crate) fn body(&self, n: usize) -> Bytes {
        let mut s = String::with_capacity(self.pieces.iter().map(String::len).sum::<usize>() + 256);
        s.push_str(&self.pieces[0]);
        s.push_str(&format!("storm-{n}"));
        for p in &self.pieces[1..self.pieces.len() - 1] {
            s.push_str(p);
            s.push_str(&format!("{n:08x}"));
        }
        s.push_str(&self.pieces[self.pieces.len() - 1]);
        Bytes::from(s)
    }
}

/// Sends every request at once, request `i` to `urls[i % N]`; the
/// answers in request order (empty for a failure).
async fn storm(urls: &[String], requests: &[Bytes]) -> (Stats, Vec<Bytes>) {
    let c = client();
    let started = Instant::now();
    let tasks: Vec<_> = requests
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let (c, url, b) = (c.clone(), urls[i % urls.len()].clone(), b.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let r = post(&c, &url, &b).await;
                (t.elapsed().as_micros() as u64, r)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut bodies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await.unwrap() {
            (us, Ok((200, body))) => {
                lat.push(us);
                bodies.push(body);
            }
            (_, r) => {
                errors += 1;
                if errors < 5 {
                    eprintln!(
                        "storm error: {:?}",
                        r.map(|(s, b)| (s, String::from_utf8_lossy(&b).into_owned()))
                    );
                }
                bodies.push(Bytes::new());
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    (
        Stats {
            requests: lat.len(),
            errors,
            seconds,
            latencies_us: lat,
        },
        bodies,
    )
}

fn keys_of(body: &[u8]) -> Vec<Vec<u8>> {
    cpixd::cpix::parse(body)
        .map(|d| {
            d.keys()
                .iter()
                .filter_map(|k| k.plain_value().map(<[u8]>::to_vec))
                .collect()
        })
        .unwrap_or_default()
}

/// The baseline server: `POST` anything → a fixed body of `size` bytes.
async fn baseline_server(size: usize) {
    use axum::routing::post as route_post;
    let body = Bytes::from(vec![b'x'; size]);
    let app = axum::Router::new().route(
        "/",
        route_post(move |_: Bytes| {
            let body = body.clone();
            async move { ([("content-type", "application/xml; charset=utf-8")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    eprintln!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

fn main() {
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some("--baseline-server") {
        let size: usize = raw.next().and_then(|s| s.parse().ok()).expect("size");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(baseline_server(size));
        return;
    }
    let a = args();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let template = std::fs::read_to_string(REQUEST).expect("run from the repository root");
    if let Some(admin) = a.multinode.clone() {
        multinode::run(&rt, &a, &template, admin);
        return;
    }
    let body = Bytes::from(template.clone());
    let dir = tempfile::tempdir().unwrap();

    let (mut cpixd, addr) = start_cpixd(&a.cpixd, dir.path(), None);
    let url = format!("http://{addr}/kms/v1/speke2");
    let first = rt
        .block_on(post(&client(), &url, &body))
        .expect("first request");
    assert_eq!(first.0, 200, "{}", String::from_utf8_lossy(&first.1));
    let size = first.1.len();

    let base = baseline(&rt, size, body.clone(), &a);
    let existing = rt.block_on(closed_loop(&url, body.clone(), a.connections, a.seconds));

    // (a') The same without the response cache, on its own data directory.
    let uncached_dir = tempfile::tempdir().unwrap();
    let (mut uncached, uncached_addr) = start_cpixd(&a.cpixd, uncached_dir.path(), Some(0));
    let uncached_url = format!("http://{uncached_addr}/kms/v1/speke2");
    let warm = rt
        .block_on(post(&client(), &uncached_url, &body))
        .expect("first request (no cache)");
    assert_eq!(warm.0, 200, "{}", String::from_utf8_lossy(&warm.1));
    assert_eq!(warm.1.len(), size, "same response size without the cache");
    let no_cache = rt.block_on(closed_loop(
        &uncached_url,
        body.clone(),
        a.connections,
        a.seconds,
    ));
    let kids: Vec<String> = cpixd::cpix::parse(template.as_bytes())
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.kid.to_string())
        .collect();

    // (a'') New content on every request, on the same server.
    let fresh = Arc::new(NewContent::new(&template, &kids));
    let check = rt
        .block_on(post(&client(), &uncached_url, &fresh.body(0xffff_ffff)))
        .expect("a new-content request");
    assert_eq!(check.0, 200, "{}", String::from_utf8_lossy(&check.1));
    assert_eq!(
        keys_of(&check.1).len(),
        kids.len(),
        "every new key answered"
    );
    let generator = fresh.clone();
    let new_content = rt.block_on(closed_loop_over(
        std::slice::from_ref(&uncached_url),
        Arc::new(move |n| generator.body(n)),
        None,
        a.connections,
        a.seconds,
    ));
    let uncached_rss = peak_rss_mib(uncached.id());
    let _ = uncached.kill();
    let _ = uncached.wait();

    let requests: Vec<Bytes> = (0..a.storm).map(|n| fresh.body(n)).collect();
    let (storm_stats, bodies) = rt.block_on(storm(std::slice::from_ref(&url), &requests));
    let rss = peak_rss_mib(cpixd.id());

    // Durability: kill without warning, restart, every key must come back.
    let _ = cpixd.kill();
    let _ = cpixd.wait();
    let (mut again, addr2) = start_cpixd(&a.cpixd, dir.path(), None);
    let url2 = format!("http://{addr2}/kms/v1/speke2");
    let (_, bodies2) = rt.block_on(storm(&[url2], &requests));
    let durable = bodies
        .iter()
        .zip(&bodies2)
        .filter(|(x, y)| !x.is_empty() && keys_of(x) == keys_of(y) && !keys_of(x).is_empty())
        .count();
    let _ = again.kill();
    let _ = again.wait();

    // (c) ClearKey licences, with and without the licence log.
    let mut licences = Vec::new();
    let mut licence_size = 0;
    for (name, extra) in [
        ("log on", ""),
        ("log off", "[licence_log]\nenabled = false\n"),
    ] {
        let ldir = tempfile::tempdir().unwrap();
        let (mut server, laddr) = start_cpixd_with(&a.cpixd, ldir.path(), extra);
        let lreq =
            Bytes::from(template.replace("contentId=\"channel-5\"", "contentId=\"licence-load\""));
        let r = rt
            .block_on(post(
                &client(),
                &format!("http://{laddr}/kms/v1/speke2"),
                &lreq,
            ))
            .expect("keys for the licence runs");
        assert_eq!(r.0, 200, "{}", String::from_utf8_lossy(&r.1));
        let token = rt.block_on(async {
            let req = hyper::Request::get(format!("http://{laddr}/drm/v1/token/licence-load"))
                .header("x-api-key", API_KEY)
                .header("x-tenant-id", "load")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = client().request(req).await.expect("token");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).expect("token JSON");
            v["token"].as_str().expect("token").to_owned()
        });
        let b64 = |k: &str| {
            let mut s = String::new();
            cpixd::b64::encode_url_into(
                cpixd::ids::KeyId::parse_uuid(k).unwrap().as_bytes(),
                &mut s,
            );
            s
        };
        let lbody = Bytes::from(format!(
            r#"{{"kids":["{}","{}"],"type":"temporary"}}"#,
            b64(&kids[0]),
            b64(&kids[1])
        ));
        let lurl = format!("http://{laddr}/acquire-license/clearkey");
        let first = rt
            .block_on(send(&client(), &lurl, &lbody, Some(&token)))
            .expect("licence");
        assert_eq!(first.0, 200, "{}", String::from_utf8_lossy(&first.1));
        assert!(
            first.1.windows(3).any(|w| w == b"oct"),
            "licence carries keys"
        );
        licence_size = first.1.len();
        let stats = rt.block_on(closed_loop_as(
            &lurl,
            lbody.clone(),
            Some(token.clone()),
            a.connections,
            a.seconds,
        ));
        let steady = rt.block_on(paced(&lurl, lbody, Some(token), a.licence_rate, a.seconds));
        let _ = server.kill();
        let _ = server.wait();
        licences.push((name, stats, steady));
    }
    let licence_base = baseline(&rt, licence_size, Bytes::from_static(b"{}"), &a);

    let steady_names = [
        format!("(c) the same, log on, steady {}/s", a.licence_rate),
        format!("(c') the same, log off, steady {}/s", a.licence_rate),
    ];
    println!("| run | requests | errors | req/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for (name, s) in [
        ("baseline axum, same body size", &base),
        (
            "(a) cpixd, existing keys, response cache on (default)",
            &existing,
        ),
        ("(a') cpixd, existing keys, response cache off", &no_cache),
        (
            "(a'') cpixd, new content (8 new KIDs) on every request",
            &new_content,
        ),
        ("(b) cpixd, storm of new content", &storm_stats),
        ("baseline axum, licence-sized body", &licence_base),
        (
            "(c) ClearKey licence, 2 KIDs, licence log on (default)",
            &licences[0].1,
        ),
        (
            "(c') ClearKey licence, 2 KIDs, licence log off",
            &licences[1].1,
        ),
        (&steady_names[0], &licences[0].2),
        (&steady_names[1], &licences[1].2),
    ] {
        println!(
            "| {name} | {} | {} | {:.0} | {:.2} | {:.2} |",
            s.requests,
            s.errors,
            s.rps(),
            s.pct(0.5),
            s.pct(0.99)
        );
    }
    println!();
    println!(
        "response {size} bytes; {} connections for {} s; (a)/baseline = {:.0} %; (a')/baseline = {:.0} %; (a'')/baseline = {:.0} %",
        a.connections,
        a.seconds,
        100.0 * existing.rps() / base.rps(),
        100.0 * no_cache.rps() / base.rps(),
        100.0 * new_content.rps() / base.rps()
    );
    println!(
        "storm: {} concurrent new-content requests answered in {:.2} s; {durable}/{} identical after SIGKILL + restart",
        a.storm, storm_stats.seconds, a.storm
    );
    println!(
        "cpixd peak RSS (VmHWM): {rss:.1} MiB over (a) and (b); {uncached_rss:.1} MiB over (a') and (a'')"
    );
    println!(
        "licences ({licence_size} bytes): (c)/baseline = {:.0} %, (c')/baseline = {:.0} %; p50 with the log {:.2} ms, without {:.2} ms",
        100.0 * licences[0].1.rps() / licence_base.rps(),
        100.0 * licences[1].1.rps() / licence_base.rps(),
        licences[0].1.pct(0.5),
        licences[1].1.pct(0.5)
    );
    let (on, off) = (&licences[0].2, &licences[1].2);
    println!(
        "licences at a steady {}/s: p50 {:.3} ms with the log, {:.3} ms without; p99 {:.3} ms with, {:.3} ms without; p99.9 {:.3} ms with, {:.3} ms without",
        a.licence_rate,
        on.pct(0.5),
        off.pct(0.5),
        on.pct(0.99),
        off.pct(0.99),
        on.pct(0.999),
        off.pct(0.999)
    );
}
