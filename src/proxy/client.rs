//! The one pooled upstream HTTP client (HTTP/1.1 and HTTP/2, rustls with
//! the Mozilla roots) every platform shares: one exchange at a time with
//! its connect and response timeouts, errors sorted by which side failed,
//! and the retry arithmetic (`Retry-After`, `X-RateLimit-Retry-After`,
//! exponential backoff with full jitter). Redirects are never followed.

use super::body::Stalled;
use super::settings::ClientSettings;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why one exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection (refused, DNS, TLS handshake).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// No response headers in time.
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The connection broke before the response headers.
    #[error("the connection failed before the answer: {0}")]
    Broken(String),
    /// The caller's request body failed or stalled.
    #[error("the request body could not be read: {0}")]
    ClientBody(String),
}

impl SendError {
    /// True for failures a replay may cure.
    pub fn transient(&self) -> bool {
        matches!(self, SendError::Connect(_) | SendError::Broken(_))
    }
}

/// The shared client.
pub struct Upstream {
    http: Client<HttpsConnector<HttpConnector>, Body>,
    /// Its settings.
    pub settings: ClientSettings,
}

impl Upstream {
    /// A client with `settings`.
    pub fn new(settings: ClientSettings) -> Result<Upstream, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build(https);
        Ok(Upstream { http, settings })
    }

    /// One exchange: sends the request and waits (at most `deadline`) for
    /// the response headers. The response body streams afterwards.
    pub async fn send_once(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Body,
        deadline: Duration,
    ) -> Result<Response<Incoming>, SendError> {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        match tokio::time::timeout(deadline, self.http.request(req)).await {
            Err(_) => Err(SendError::Timeout(deadline)),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(classify(&e)),
        }
    }
}

/// Sorts a client error by which side failed.
fn classify(e: &hyper_util::client::legacy::Error) -> SendError {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut from_client_body = false;
    while let Some(err) = cur {
        if err.is::<Stalled>() || err.is::<axum::Error>() {
            from_client_body = true;
        }
        chain.push(err.to_string());
        cur = err.source();
    }
    let text = chain.join(": ");
    if from_client_body {
        SendError::ClientBody(text)
    } else if e.is_connect() {
        SendError::Connect(text)
    } else {
        SendError::Broken(text)
    }
}

/// The wait a throttled or failing upstream asks for: `Retry-After`
/// (seconds or an HTTP date), else `X-RateLimit-Retry-After` (seconds).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(v) = text("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(when) = httpdate::parse_http_date(v) {
            return Some(when.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    text("x-ratelimit-retry-after")?
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Backoff before retry number `retry` (0-based): a uniform draw from zero
/// to `base * 2^retry`, capped at `max` ("full jitter").
pub fn backoff(retry: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .min(max);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn retry_after_in_both_spellings() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("x-ratelimit-retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(2)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        h.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff(0, base, max, 1.0), base);
        assert_eq!(backoff(2, base, max, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(2, base, max, 0.5), Duration::from_millis(200));
        assert_eq!(backoff(10, base, max, 1.0), max);
        assert_eq!(backoff(40, base, max, 1.0), max);
        assert_eq!(backoff(3, base, max, 0.0), Duration::ZERO);
    }

    #[tokio::test]
    async fn connection_refused_is_a_connect_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let up = Upstream::new(ClientSettings::default()).unwrap();
        let err = up
            .send_once(
                Method::GET,
                format!("http://127.0.0.1:{port}/").parse().unwrap(),
                HeaderMap::new(),
                Body::empty(),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Connect(_)), "{err:?}");
        assert!(err.transient());
    }
}
