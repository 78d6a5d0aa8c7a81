//! Upstream credentials: the [`Credentials`] each platform implements, and
//! the [`TokenCache`] behind the exchanged ones (api.video, Pixop): one
//! mint or refresh in flight at a time, renewal before expiry, and
//! forgetting a token the upstream refused so the next call mints anew.

use super::client::{SendError, Upstream};
use super::routes::Operation;
use super::GatewayError;
use crate::crypto::SecretString;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A boxed future that may cross threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which exchanged token an attempt carried, to forget it after a 401.
pub type Grant = Option<u64>;

/// Where a request is going, as far as credentials care.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The documented operation, if any.
    pub operation: Option<&'a Operation>,
    /// The host key (`api`, `upload`, …).
    pub host: &'a str,
    /// Base URL of every host key of the platform.
    pub hosts: &'a std::collections::BTreeMap<String, String>,
}

impl Target<'_> {
    /// True when the operation is called `name`.
    pub fn is(&self, name: &str) -> bool {
        self.operation.is_some_and(|o| o.name == name)
    }

    /// Base URL of the `api` host (where tokens are minted).
    pub fn api_base(&self) -> &str {
        self.hosts.get("api").map_or("", String::as_str)
    }
}

/// A platform's way of authenticating cpixd upstream.
pub trait Credentials: Send + Sync {
    /// Adds the credentials for `target` to `headers`.
    fn apply<'a>(
        &'a self,
        up: &'a Upstream,
        target: Target<'a>,
        headers: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<Grant, GatewayError>>;

    /// The upstream refused the token of `grant`: forget it. True when a
    /// fresh one is worth one replay.
    fn refused(&self, _grant: u64) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }

    /// An operation finished with `status` (Pixop drops its tokens after a
    /// signing-key rotation).
    fn finished<'a>(&'a self, _target: Target<'a>, _status: StatusCode) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Tokens minted so far (for metrics and tests).
    fn mints(&self) -> u64 {
        0
    }
}

/// Fixed headers on every call (API keys, static tokens), some of them
/// left off on given hosts.
pub struct StaticHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
    skip: Vec<(&'static str, HeaderName)>,
}

impl StaticHeaders {
    /// Sends `headers` on every call.
    pub fn new(headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        StaticHeaders {
            headers,
            skip: Vec::new(),
        }
    }

    /// Leaves `name` off calls to the `host` key.
    pub fn except_on(mut self, host: &'static str, name: HeaderName) -> Self {
        self.skip.push((host, name));
        self
    }
}

impl Credentials for StaticHeaders {
    fn apply<'a>(
        &'a self,
        _up: &'a Upstream,
        target: Target<'a>,
        headers: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<Grant, GatewayError>> {
        for (name, value) in &self.headers {
            if !self
                .skip
                .iter()
                .any(|(h, n)| *h == target.host && n == name)
            {
                headers.insert(name.clone(), value.clone());
            }
        }
        Box::pin(async { Ok(None) })
    }
}

/// A Bearer token from a [`TokenCache`] on every call but the `exempt`
/// operations (token endpoints, calls authorised otherwise).
pub struct CachedBearer<M> {
    /// The tokens.
    pub cache: TokenCache<M>,
    /// Operations that go up without the token.
    pub exempt: &'static [&'static str],
}

impl<M: Mint> Credentials for CachedBearer<M> {
    /// Adds `Authorization: Bearer` unless the operation is exempt.
    fn apply<'a>(
        &'a self,
        up: &'a Upstream,
        target: Target<'a>,
        headers: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<Grant, GatewayError>> {
        Box::pin(async move {
            if self.exempt.iter().any(|n| target.is(n)) {
                return Ok(None);
            }
            let (token, generation) = self.cache.get(up, target.api_base()).await?;
            headers.insert(header::AUTHORIZATION, bearer(&token)?);
            Ok(Some(generation))
        })
    }

    fn refused(&self, grant: u64) -> BoxFuture<'_, bool> {
        Box::pin(self.cache.refuse(grant))
    }

    fn mints(&self) -> u64 {
        self.cache.mints()
    }
}

/// A header value that marks itself sensitive (kept out of HTTP/2 tables
/// and debug output).
pub fn secret_header(value: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value).map_err(|_| "not a valid header value".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &SecretString) -> Result<HeaderValue, GatewayError> {
    secret_header(&format!("Bearer {}", token.expose()))
        .map_err(|e| GatewayError::Credentials("upstream", format!("token: {e}")))
}

/// An exchanged access token.
pub struct Token {
    /// The access token.
    pub value: SecretString,
    /// The refresh token, where the platform has one.
    pub refresh: Option<SecretString>,
    /// When it stops working.
    pub expires_at: Instant,
    /// How long it was valid when minted.
    pub lifetime: Duration,
}

/// Longest lifetime believed of a minted token: an upstream's `expires_in`
/// or `exp` can say anything (2^64 − 1 seconds included), and the token is
/// simply minted again after this.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

impl Token {
    /// A token valid for `lifetime` from now (at most
    /// [`MAX_TOKEN_LIFETIME`]).
    pub fn new(value: SecretString, refresh: Option<SecretString>, lifetime: Duration) -> Token {
        let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
        Token {
            value,
            refresh,
            expires_at: Instant::now() + lifetime,
            lifetime,
        }
    }

    /// True when it should be renewed at `now`: within a fifth of its
    /// lifetime of expiry (at most five minutes early), e.g. after 12 of
    /// Pixop's 15 minutes and 55 of api.video's 60.
    pub fn renewal_due(&self, now: Instant) -> bool {
        let margin = (self.lifetime / 5).min(Duration::from_secs(300));
        now + margin >= self.expires_at
    }
}

/// How a platform obtains a token (given the previous one, to refresh it).
pub trait Mint: Send + Sync {
    /// Mints or refreshes a token.
    fn mint<'a>(
        &'a self,
        up: &'a Upstream,
        base: &'a str,
        previous: Option<&'a Token>,
    ) -> BoxFuture<'a, Result<Token, GatewayError>>;
}

/// A cached token with single-flight renewal.
pub struct TokenCache<M> {
    minter: M,
    current: tokio::sync::Mutex<Option<(Token, u64)>>,
    generation: AtomicU64,
}

impl<M: Mint> TokenCache<M> {
    /// An empty cache over `minter`.
    pub fn new(minter: M) -> Self {
        TokenCache {
            minter,
            current: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// The current token, minting or refreshing it first when due. Callers
    /// queue behind one renewal instead of starting their own.
    pub async fn get(
        &self,
        up: &Upstream,
        base: &str,
    ) -> Result<(SecretString, u64), GatewayError> {
        let mut current = self.current.lock().await;
        if let Some((t, g)) = current.as_ref() {
            if !t.renewal_due(Instant::now()) {
                return Ok((t.value.clone(), *g));
            }
        }
        let previous = current.as_ref().map(|(t, _)| t);
        match self.minter.mint(up, base, previous).await {
            Ok(token) => {
                let g = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                let value = token.value.clone();
                *current = Some((token, g));
                Ok((value, g))
            }
            // Renewing early failed: the old token still works for now.
            Err(e) => match current.as_ref() {
                Some((t, g)) if Instant::now() < t.expires_at => {
                    tracing::warn!(error = %e, "token renewal failed; using the current token until it expires");
                    Ok((t.value.clone(), *g))
                }
                _ => Err(e),
            },
        }
    }

    /// Forgets the token of `generation` (if still current) so the next
    /// call renews it. True when it was current.
    pub async fn refuse(&self, generation: u64) -> bool {
        let mut current = self.current.lock().await;
        match current.as_mut() {
            Some((t, g)) if *g == generation => {
                t.expires_at = Instant::now();
                true
            }
            // Already replaced by a fresh token: a replay may use that one.
            Some(_) => true,
            None => false,
        }
    }

    /// Drops the token altogether (the next call mints from scratch).
    pub async fn clear(&self) {
        *self.current.lock().await = None;
    }

    /// Tokens minted or refreshed so far.
    pub fn mints(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}

/// Calls an upstream token endpoint and returns its JSON answer.
pub async fn token_request(
    up: &Upstream,
    platform: &'static str,
    method: Method,
    url: &str,
    mut headers: HeaderMap,
    json_body: Option<serde_json::Value>,
) -> Result<serde_json::Value, GatewayError> {
    let fail = |m: String| GatewayError::Credentials(platform, m);
    let what = url.rsplit_once("://").map_or(url, |(_, r)| r);
    let what = what.split_once('/').map_or("/", |(_, p)| p);
    let body = match json_body {
        Some(v) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let uri = url
        .parse()
        .map_err(|_| fail(format!("bad token URL /{what}")))?;
    let timeout = up.settings.timeout;
    let resp = up
        .send_once(method, uri, headers, body, timeout)
        .await
        .map_err(|e| match e {
            SendError::Timeout(d) => GatewayError::Timeout(platform, d),
            e => fail(format!("token request to /{what} failed: {e}")),
        })?;
    let status = resp.status();
    let bytes = http_body_util::Limited::new(resp.into_body(), 64 << 10)
        .collect()
        .await
        .map_err(|e| fail(format!("token answer from /{what} unreadable: {e}")))?
        .to_bytes();
    if !status.is_success() {
        return Err(fail(format!(
            "/{what} refused cpixd's credentials (HTTP {})",
            status.as_u16()
        )));
    }
    serde_json::from_slice(&bytes).map_err(|_| fail(format!("/{what} answered with no JSON")))
}

/// The `exp` claim of a JWT as time left from now, if it has one.
pub fn jwt_lifetime(jwt: &str, now: std::time::SystemTime) -> Option<Duration> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = crate::b64::decode_url(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    // A date beyond what the clock can hold is "very long"; Token::new caps it.
    let Some(exp) = std::time::UNIX_EPOCH.checked_add(Duration::from_secs(exp)) else {
        return Some(Duration::MAX);
    };
    Some(exp.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_a_fifth_before_expiry_at_most_five_minutes() {
        let t0 = Instant::now();
        let pixop = Token {
            value: SecretString::new("x"),
            refresh: None,
            expires_at: t0 + Duration::from_secs(900),
            lifetime: Duration::from_secs(900),
        };
        assert!(!pixop.renewal_due(t0 + Duration::from_secs(11 * 60 + 59)));
        assert!(pixop.renewal_due(t0 + Duration::from_secs(12 * 60)));
        let apivideo = Token {
            expires_at: t0 + Duration::from_secs(3600),
            lifetime: Duration::from_secs(3600),
            ..Token::new(SecretString::new("y"), None, Duration::ZERO)
        };
        assert!(!apivideo.renewal_due(t0 + Duration::from_secs(54 * 60)));
        assert!(apivideo.renewal_due(t0 + Duration::from_secs(55 * 60)));
    }

    #[test]
    fn jwt_expiry_is_read_from_the_payload() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let url = |b: &[u8]| {
            let mut s = String::new();
            crate::b64::encode_url_into(b, &mut s);
            s
        };
        let jwt = format!("e30.{}.sig", url(br#"{"sub":"u","exp":1000900}"#));
        assert_eq!(jwt_lifetime(&jwt, now), Some(Duration::from_secs(900)));
        assert_eq!(jwt_lifetime("not-a-jwt", now), None);
        let no_exp = format!("e30.{}.sig", url(br#"{"sub":"u"}"#));
        assert_eq!(jwt_lifetime(&no_exp, now), None);
        // An `exp` at the end of time neither panics nor lives forever.
        let huge = format!(
            "e30.{}.sig",
            url(br#"{"sub":"u","exp":18446744073709551615}"#)
        );
        let lifetime = jwt_lifetime(&huge, now).unwrap();
        let t = Token::new(SecretString::new("t".to_owned()), None, lifetime);
        assert_eq!(t.lifetime, MAX_TOKEN_LIFETIME);
        assert!(!t.renewal_due(Instant::now()));
        let t = Token::new(
            SecretString::new("t".to_owned()),
            None,
            Duration::from_secs(u64::MAX),
        );
        assert_eq!(t.lifetime, MAX_TOKEN_LIFETIME);
    }
}
