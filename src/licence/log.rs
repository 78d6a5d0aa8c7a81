//! The licence request log: one [`LogEntry`] per player request (licences,
//! renewals, releases, certificates, AES-128 keys, DRM tokens), kept by a
//! [`LicenceLog`] backend in a compact binary record ([`encode`],
//! [`LogView`]) and written off the request path by a [`LogWriter`] that
//! batches entries on its own thread and flushes them on shutdown. Never a
//! key, a token's signature or a credential in it: the token contributes
//! its user and content ids only.

use super::DrmSystem;
use crate::drm::ByteReader;
use crate::ids::KeyId;
use crate::keys::StoreError;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a player request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestType {
    /// A new licence.
    License,
    /// A licence renewal.
    Renewal,
    /// A service or application certificate.
    Certificate,
    /// A licence release.
    Release,
    /// An HLS AES-128 key.
    Key,
    /// A DRM token.
    Token,
}

impl RequestType {
    /// Every type, in code order.
    pub const ALL: [RequestType; 6] = [
        RequestType::License,
        RequestType::Renewal,
        RequestType::Certificate,
        RequestType::Release,
        RequestType::Key,
        RequestType::Token,
    ];

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::License => "License",
            RequestType::Renewal => "Renewal",
            RequestType::Certificate => "Certificate",
            RequestType::Release => "Release",
            RequestType::Key => "Key",
            RequestType::Token => "Token",
        }
    }

    /// Parses a name, ignoring case.
    pub fn parse(s: &str) -> Option<RequestType> {
        RequestType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: u8) -> Option<RequestType> {
        RequestType::ALL.get(usize::from(c)).copied()
    }
}

/// The kind of device a user agent describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceType {
    /// No user agent, or one not recognised.
    Unknown,
    /// A desktop or laptop browser.
    Desktop,
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// A TV, set-top box or streaming stick.
    Tv,
}

/// An operating system a user agent names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Os {
    /// Not recognised.
    Unknown,
    /// Windows.
    Windows,
    /// macOS.
    MacOs,
    /// iOS or iPadOS.
    Ios,
    /// Android.
    Android,
    /// Linux.
    Linux,
    /// ChromeOS.
    ChromeOs,
    /// Tizen (Samsung TVs).
    Tizen,
    /// webOS (LG TVs).
    WebOs,
}

/// A browser a user agent names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Browser {
    /// Not recognised.
    Unknown,
    /// Google Chrome or Chromium.
    Chrome,
    /// Mozilla Firefox.
    Firefox,
    /// Apple Safari.
    Safari,
    /// Microsoft Edge.
    Edge,
}

macro_rules! names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// Every value, in code order.
            pub const ALL: &'static [$t] = &[$(<$t>::$v),*];
            /// The API's spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            /// Parses a name, ignoring case.
            pub fn parse(s: &str) -> Option<$t> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            }
            fn from_code(c: u8) -> $t {
                Self::ALL.get(usize::from(c)).copied().unwrap_or(Self::ALL[0])
            }
        }
    };
}

names!(DeviceType { Unknown => "unknown", Desktop => "desktop", Mobile => "mobile", Tablet => "tablet", Tv => "tv" });
names!(Os { Unknown => "Unknown", Windows => "Windows", MacOs => "Mac", Ios => "iOS", Android => "Android", Linux => "Linux", ChromeOs => "ChromeOS", Tizen => "Tizen", WebOs => "webOS" });
names!(Browser { Unknown => "Unknown", Chrome => "Chrome", Firefox => "Firefox", Safari => "Safari", Edge => "Edge" });

/// Device, OS and browser of a user agent (simple substring rules; enough
/// for the statistics' filters).
pub fn classify(user_agent: Option<&str>) -> (DeviceType, Os, Browser) {
    let Some(ua) = user_agent else {
        return (DeviceType::Unknown, Os::Unknown, Browser::Unknown);
    };
    let has = |s: &str| ua.contains(s);
    let os = if has("Tizen") {
        Os::Tizen
    } else if has("Web0S") || has("webOS") {
        Os::WebOs
    } else if has("Windows") {
        Os::Windows
    } else if has("iPhone") || has("iPad") || has("iPod") {
        Os::Ios
    } else if has("Android") {
        Os::Android
    } else if has("CrOS") {
        Os::ChromeOs
    } else if has("Mac OS X") || has("Macintosh") {
        Os::MacOs
    } else if has("Linux") {
        Os::Linux
    } else {
        Os::Unknown
    };
    let device = if has("SmartTV")
        || has("SMART-TV")
        || matches!(os, Os::Tizen | Os::WebOs)
        || has("CrKey")
        || has("AppleTV")
        || has("Roku")
        || has("AFT")
    {
        DeviceType::Tv
    } else if has("iPad") || has("Tablet") || (os == Os::Android && !has("Mobile")) {
        DeviceType::Tablet
    } else if has("Mobile") || has("iPhone") {
        DeviceType::Mobile
    } else if matches!(os, Os::Windows | Os::MacOs | Os::Linux | Os::ChromeOs) {
        DeviceType::Desktop
    } else {
        DeviceType::Unknown
    };
    let browser = if has("Edg/") || has("Edge/") {
        Browser::Edge
    } else if has("Firefox/") {
        Browser::Firefox
    } else if has("Chrome/") || has("Chromium/") {
        Browser::Chrome
    } else if has("Safari/") {
        Browser::Safari
    } else {
        Browser::Unknown
    };
    (device, os, browser)
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// When it arrived (milliseconds since the Unix epoch).
    pub time_ms: u64,
    /// The tenant.
    pub tenant: String,
    /// The DRM system (none for a token request).
    pub system: Option<DrmSystem>,
    /// What it asked for.
    pub request_type: RequestType,
    /// The token's user id.
    pub token_user_id: Option<String>,
    /// The token's content id.
    pub token_content_id: Option<String>,
    /// The HTTP status answered.
    pub http_status: u16,
    /// The error code answered (`INVALID_TOKEN`, …).
    pub error_code: Option<String>,
    /// The error message answered.
    pub error_message: Option<String>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Request body size.
    pub payload_length: u32,
    /// Response body size.
    pub response_length: u32,
    /// Time taken, in microseconds.
    pub duration_us: u32,
    /// The KIDs asked for, where the request format says.
    pub kids: Vec<KeyId>,
    /// The URL asked (token removed).
    pub license_url: String,
}

/// Record format of [`encode`].
const FORMAT: u8 = 1;

/// Longest text kept per field (longer text is cut).
const MAX_TEXT: usize = 2048;

/// Most KIDs kept per entry.
pub const MAX_KIDS: usize = 64;

fn put_text(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.extend_from_slice(&u16::MAX.to_be_bytes()),
        Some(s) => {
            let mut end = s.len().min(MAX_TEXT);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            out.extend_from_slice(&(end as u16).to_be_bytes());
            out.extend_from_slice(&s.as_bytes()[..end]);
        }
    }
}

/// The record of an entry (the tenant and time live in the backend's key).
pub fn encode(e: &LogEntry) -> Vec<u8> {
    let (device, os, browser) = classify(e.user_agent.as_deref());
    let mut out = Vec::with_capacity(96 + e.kids.len() * 16);
    out.push(FORMAT);
    out.push(e.system.map_or(0, |s| s as u8 + 1));
    out.push(e.request_type.code());
    out.extend_from_slice(&e.http_status.to_be_bytes());
    out.push(device as u8);
    out.push(os as u8);
    out.push(browser as u8);
    out.extend_from_slice(&e.payload_length.to_be_bytes());
    out.extend_from_slice(&e.response_length.to_be_bytes());
    out.extend_from_slice(&e.duration_us.to_be_bytes());
    match e.ip {
        None => out.push(0),
        Some(IpAddr::V4(v4)) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    for t in [
        e.token_user_id.as_deref(),
        e.token_content_id.as_deref(),
        e.error_code.as_deref(),
        e.error_message.as_deref(),
        e.user_agent.as_deref(),
        Some(e.license_url.as_str()),
    ] {
        put_text(&mut out, t);
    }
    let kids = &e.kids[..e.kids.len().min(MAX_KIDS)];
    out.push(kids.len() as u8);
    for k in kids {
        out.extend_from_slice(k.as_bytes());
    }
    out
}

/// A stored entry, decoded without copying: what scans hand to their
/// visitor.
#[derive(Debug, Clone, Copy)]
pub struct LogView<'a> {
    /// Identifies the entry within its tenant (time and sequence).
    pub id: u64,
    /// When it arrived (milliseconds since the Unix epoch).
    pub time_ms: u64,
    /// The DRM system.
    pub system: Option<DrmSystem>,
    /// What it asked for.
    pub request_type: RequestType,
    /// The HTTP status answered.
    pub http_status: u16,
    /// Device of the user agent.
    pub device: DeviceType,
    /// OS of the user agent.
    pub os: Os,
    /// Browser of the user agent.
    pub browser: Browser,
    /// Request body size.
    pub payload_length: u32,
    /// Response body size.
    pub response_length: u32,
    /// Time taken, in microseconds.
    pub duration_us: u32,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The token's user id.
    pub token_user_id: Option<&'a str>,
    /// The token's content id.
    pub token_content_id: Option<&'a str>,
    /// The error code answered.
    pub error_code: Option<&'a str>,
    /// The error message answered.
    pub error_message: Option<&'a str>,
    /// The user agent.
    pub user_agent: Option<&'a str>,
    /// The URL asked.
    pub license_url: &'a str,
    /// The KIDs, 16 bytes each.
    pub kids: &'a [u8],
}

/// A text written by [`put_text`]: `u16::MAX` for none, else its length.
fn read_text<'a>(r: &mut ByteReader<'a>) -> Option<Option<&'a str>> {
    let len = r.u16_be()?;
    if len == u16::MAX {
        return Some(None);
    }
    std::str::from_utf8(r.take(usize::from(len))?)
        .ok()
        .map(Some)
}

impl<'a> LogView<'a> {
    /// Decodes a record written by [`encode`]; `None` if it is damaged.
    pub fn decode(id: u64, time_ms: u64, bytes: &'a [u8]) -> Option<LogView<'a>> {
        let mut r = ByteReader::new(bytes);
        if r.u8()? != FORMAT {
            return None;
        }
        let system = match r.u8()? {
            0 => None,
            n => Some(*DrmSystem::ALL.get(usize::from(n - 1))?),
        };
        let request_type = RequestType::from_code(r.u8()?)?;
        let http_status = r.u16_be()?;
        let device = DeviceType::from_code(r.u8()?);
        let os = Os::from_code(r.u8()?);
        let browser = Browser::from_code(r.u8()?);
        let payload_length = r.u32_be()?;
        let response_length = r.u32_be()?;
        let duration_us = r.u32_be()?;
        let ip = match r.u8()? {
            0 => None,
            4 => Some(IpAddr::from(*r.array::<4>()?)),
            6 => Some(IpAddr::from(*r.array::<16>()?)),
            _ => return None,
        };
        let token_user_id = read_text(&mut r)?;
        let token_content_id = read_text(&mut r)?;
        let error_code = read_text(&mut r)?;
        let error_message = read_text(&mut r)?;
        let user_agent = read_text(&mut r)?;
        let license_url = read_text(&mut r)?.unwrap_or_default();
        let n = usize::from(r.u8()?);
        let kids = r.take(n * 16)?;
        Some(LogView {
            id,
            time_ms,
            system,
            request_type,
            http_status,
            device,
            os,
            browser,
            payload_length,
            response_length,
            duration_us,
            ip,
            token_user_id,
            token_content_id,
            error_code,
            error_message,
            user_agent,
            license_url,
            kids,
        })
    }

    /// The KIDs.
    pub fn kid_list(&self) -> Vec<KeyId> {
        self.kids
            .chunks_exact(16)
            .filter_map(|c| c.try_into().ok().map(KeyId::from_bytes))
            .collect()
    }
}

/// Where the log lives. Backends share one semantics: entries of a tenant
/// in time order, each with an id unique within the tenant.
pub trait LicenceLog: Send + Sync {
    /// Stores `entries` (one transaction); durable when it returns.
    fn append(&self, entries: &[LogEntry]) -> Result<(), StoreError>;

    /// Calls `visit` for each entry of `tenant` with `from_ms <= time <
    /// to_ms`, oldest first (newest first when `newest_first`), until it
    /// returns `false`.
    fn scan(
        &self,
        tenant: &str,
        from_ms: u64,
        to_ms: u64,
        newest_first: bool,
        visit: &mut dyn FnMut(&LogView<'_>) -> bool,
    ) -> Result<(), StoreError>;

    /// Calls `visit` for the entries of `tenant` with these ids (in the
    /// order given; ids not found are skipped).
    fn get(
        &self,
        tenant: &str,
        ids: &[u64],
        visit: &mut dyn FnMut(&LogView<'_>),
    ) -> Result<(), StoreError>;

    /// Deletes entries older than `before_ms`, and the oldest ones beyond
    /// `max_rows_per_tenant` per tenant. Returns how many went.
    fn prune(&self, before_ms: u64, max_rows_per_tenant: u64) -> Result<u64, StoreError>;
}

/// Entries waiting for the writer; beyond this, new entries are dropped
/// (and counted, `cpixd_licence_log_entries_total{outcome="dropped"}`)
/// rather than slowing requests down.
const QUEUE: usize = 1 << 16;

/// Most entries written in one transaction.
const BATCH: usize = 4096;

/// How long the writer waits to fill a batch.
const BATCH_WAIT: Duration = Duration::from_millis(50);

/// How often old entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Retention of the log.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Entries older than this go.
    pub max_age: Duration,
    /// Entries beyond this many per tenant go, oldest first.
    pub max_rows_per_tenant: u64,
}

/// Counters of the writer.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Entries stored.
    pub written: AtomicU64,
    /// Entries dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Entries lost to a failed write.
    pub failed: AtomicU64,
    /// Entries pruned.
    pub pruned: AtomicU64,
}

/// What the request side hands to the writer thread.
#[derive(Default)]
struct Pending {
    entries: Vec<LogEntry>,
    /// Answered once everything queued before them is written.
    flushes: Vec<SyncSender<()>>,
    closed: bool,
}

/// The queue between requests and the writer: a vector under a mutex, so
/// recording an entry is a push (no wake-up, no system call); the writer
/// takes the whole vector every [`BATCH_WAIT`], or sooner when a batch is
/// full, a flush is asked for or the writer is stopped.
#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// Writes entries on its own thread, in batches; [`LogWriter::shutdown`]
/// (also on drop) writes everything still queued.
pub struct LogWriter {
    queue: Arc<Queue>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The counters.
    pub stats: Arc<WriterStats>,
}

impl LogWriter {
    /// Starts the writer over `log`.
    pub fn start(log: Arc<dyn LicenceLog>, retention: Retention) -> LogWriter {
        let queue = Arc::new(Queue::default());
        let stats = Arc::new(WriterStats::default());
        let (q, s) = (queue.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("cpixd-licence-log".into())
            .spawn(move || run(&*log, &q, &s, retention))
            .ok();
        if thread.is_none() {
            queue
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .closed = true;
        }
        LogWriter {
            queue,
            thread: Mutex::new(thread),
            stats,
        }
    }

    /// Queues an entry; never waits for the disk.
    pub fn record(&self, entry: LogEntry) {
        let mut p = self.queue.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.closed || p.entries.len() >= QUEUE {
            drop(p);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        p.entries.push(entry);
        if p.entries.len() == BATCH {
            self.queue.wake.notify_one();
        }
    }

    /// Waits (at most `timeout`) until every entry queued so far is
    /// written, so that a query sees them.
    pub fn flush(&self, timeout: Duration) {
        let (done, wait) = mpsc::sync_channel(1);
        {
            let mut p = self.queue.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.closed {
                return;
            }
            p.flushes.push(done);
        }
        self.queue.wake.notify_one();
        let _ = wait.recv_timeout(timeout);
    }

    /// Writes what is queued and stops.
    pub fn shutdown(&self) {
        self.queue
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.queue.wake.notify_one();
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn now_ms() -> u64 {
    crate::keys::now_ms()
}

fn prune(log: &dyn LicenceLog, stats: &WriterStats, retention: Retention) {
    let age = u64::try_from(retention.max_age.as_millis()).unwrap_or(u64::MAX);
    match log.prune(now_ms().saturating_sub(age), retention.max_rows_per_tenant) {
        Ok(n) => {
            stats.pruned.fetch_add(n, Ordering::Relaxed);
            if n > 0 {
                tracing::info!(entries = n, "licence log pruned");
            }
        }
        Err(e) => tracing::warn!(error = %e, "licence log pruning failed"),
    }
}

fn run(log: &dyn LicenceLog, queue: &Queue, stats: &WriterStats, retention: Retention) {
    prune(log, stats, retention);
    let mut pruned_at = Instant::now();
    loop {
        let (batch, flushes, closed) = {
            let p = queue.pending.lock().unwrap_or_else(|e| e.into_inner());
            let (mut p, _) = queue
                .wake
                .wait_timeout_while(p, BATCH_WAIT, |p| {
                    !p.closed && p.flushes.is_empty() && p.entries.len() < BATCH
                })
                .unwrap_or_else(|e| e.into_inner());
            (
                std::mem::take(&mut p.entries),
                std::mem::take(&mut p.flushes),
                p.closed,
            )
        };
        for chunk in batch.chunks(BATCH) {
            write(log, stats, chunk);
        }
        for done in flushes {
            let _ = done.try_send(());
        }
        if closed {
            return;
        }
        if pruned_at.elapsed() >= PRUNE_EVERY {
            prune(log, stats, retention);
            pruned_at = Instant::now();
        }
    }
}

fn write(log: &dyn LicenceLog, stats: &WriterStats, batch: &[LogEntry]) {
    if batch.is_empty() {
        return;
    }
    match log.append(batch) {
        Ok(()) => {
            stats
                .written
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            stats
                .failed
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::warn!(error = %e, entries = batch.len(), "licence log write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn entry(time_ms: u64) -> LogEntry {
        LogEntry {
            time_ms,
            tenant: "acme".into(),
            system: Some(DrmSystem::Widevine),
            request_type: RequestType::Renewal,
            token_user_id: Some("viewer-1".into()),
            token_content_id: None,
            http_status: 403,
            error_code: Some("LICENSE_EXPIRED".into()),
            error_message: Some("the token expired".into()),
            ip: Some("2001:db8::7".parse().unwrap()),
            user_agent: Some("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36".into()),
            payload_length: 2048,
            response_length: 120,
            duration_us: 1500,
            kids: vec![KeyId::from_bytes([7; 16]), KeyId::from_bytes([9; 16])],
            license_url: "https://drm.example.com/acquire-license/widevine?brandGuid=acme".into(),
        }
    }

    /// Records the size of every batch it is given. With a gate, its first
    /// append says it started and then waits to be released.
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<usize>>,
        started: Mutex<Option<SyncSender<()>>>,
        release: Mutex<Option<mpsc::Receiver<()>>>,
    }

    impl LicenceLog for Recorder {
        fn append(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
            if let Some(started) = self.started.lock().unwrap().take() {
                started.send(()).unwrap();
            }
            if let Some(release) = self.release.lock().unwrap().take() {
                release.recv().unwrap();
            }
            self.batches.lock().unwrap().push(entries.len());
            Ok(())
        }
        fn scan(
            &self,
            _: &str,
            _: u64,
            _: u64,
            _: bool,
            _: &mut dyn FnMut(&LogView<'_>) -> bool,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        fn get(
            &self,
            _: &str,
            _: &[u64],
            _: &mut dyn FnMut(&LogView<'_>),
        ) -> Result<(), StoreError> {
            Ok(())
        }
        fn prune(&self, _: u64, _: u64) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    const KEEP: Retention = Retention {
        max_age: Duration::from_secs(86_400),
        max_rows_per_tenant: u64::MAX,
    };

    #[test]
    fn writer_batches_flushes_and_writes_everything_on_shutdown() {
        let log = Arc::new(Recorder::default());
        let w = LogWriter::start(log.clone(), KEEP);
        for i in 0..10 {
            w.record(entry(i));
        }
        w.flush(Duration::from_secs(10));
        assert_eq!(log.batches.lock().unwrap().iter().sum::<usize>(), 10);
        // A full batch is written without waiting; the rest on shutdown.
        for i in 0..(BATCH as u64 + 5) {
            w.record(entry(i));
        }
        w.shutdown();
        let batches = log.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 10 + BATCH + 5, "{batches:?}");
        assert!(batches.iter().all(|&n| n <= BATCH), "{batches:?}");
        assert_eq!(
            w.stats.written.load(Ordering::Relaxed),
            (10 + BATCH + 5) as u64
        );
        // After shutdown nothing is queued: it is counted as dropped.
        w.record(entry(1));
        assert_eq!(w.stats.dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_stalled_backend_drops_beyond_the_queue_and_never_blocks() {
        let (started_tx, started) = mpsc::sync_channel(1);
        let (release, release_rx) = mpsc::sync_channel(1);
        let log = Arc::new(Recorder {
            started: Mutex::new(Some(started_tx)),
            release: Mutex::new(Some(release_rx)),
            ..Recorder::default()
        });
        let w = LogWriter::start(log.clone(), KEEP);
        for i in 0..BATCH as u64 {
            w.record(entry(i));
        }
        // The writer took that batch and is stuck writing it: the queue
        // holds QUEUE entries, and recording more returns at once.
        started.recv().unwrap();
        let extra = 1000;
        for i in 0..(QUEUE + extra) as u64 {
            w.record(entry(i));
        }
        assert_eq!(w.stats.dropped.load(Ordering::Relaxed), extra as u64);
        release.send(()).unwrap();
        w.shutdown();
        assert_eq!(
            w.stats.written.load(Ordering::Relaxed),
            (BATCH + QUEUE) as u64
        );
    }

    #[test]
    fn records_round_trip() {
        let e = entry(1234);
        let bytes = encode(&e);
        let v = LogView::decode(1, 1234, &bytes).unwrap();
        assert_eq!(v.system, Some(DrmSystem::Widevine));
        assert_eq!(v.request_type, RequestType::Renewal);
        assert_eq!(v.http_status, 403);
        assert_eq!(v.ip, e.ip);
        assert_eq!(v.token_user_id, Some("viewer-1"));
        assert_eq!(v.token_content_id, None);
        assert_eq!(v.error_code, Some("LICENSE_EXPIRED"));
        assert_eq!(v.license_url, e.license_url);
        assert_eq!(v.kid_list(), e.kids);
        assert_eq!(
            (v.device, v.os, v.browser),
            (DeviceType::Mobile, Os::Android, Browser::Chrome)
        );
        for cut in 0..bytes.len() {
            assert!(LogView::decode(1, 1, &bytes[..cut]).is_none());
        }
        let long = LogEntry {
            user_agent: Some("é".repeat(3000)),
            ..entry(1)
        };
        let v = encode(&long);
        assert!(LogView::decode(1, 1, &v).unwrap().user_agent.unwrap().len() <= MAX_TEXT);
    }

    #[test]
    fn user_agents() {
        let c = |ua: &str| classify(Some(ua));
        assert_eq!(
            c("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) Safari/604.1"),
            (DeviceType::Tablet, Os::Ios, Browser::Safari)
        );
        assert_eq!(
            c("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36 Edg/126.0"),
            (DeviceType::Desktop, Os::Windows, Browser::Edge)
        );
        assert_eq!(
            c("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36"),
            (DeviceType::Tv, Os::Tizen, Browser::Unknown)
        );
        assert_eq!(
            classify(None),
            (DeviceType::Unknown, Os::Unknown, Browser::Unknown)
        );
        assert_eq!(DeviceType::parse("tv"), Some(DeviceType::Tv));
        assert_eq!(RequestType::parse("renewal"), Some(RequestType::Renewal));
    }
}
