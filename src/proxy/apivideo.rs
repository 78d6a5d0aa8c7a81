//! api.video: the API key is exchanged at `POST /auth/api-key` for a
//! one-hour bearer token, refreshed before expiry at `POST /auth/refresh`
//! (the refresh token rotates; a failed refresh falls back to a new
//! exchange). The two auth operations and the delegated `POST /upload`
//! (authorised by its `token` query parameter) go up without credentials.

use super::auth::{token_request, BoxFuture, CachedBearer, Mint, Token, TokenCache};
use super::client::Upstream;
use super::settings::Fields;
use super::{GatewayError, Setup};
use crate::crypto::SecretString;
use axum::http::{HeaderMap, Method};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_BASE: &str = "https://ws.api.video";

/// Operations that carry no cpixd-held credentials.
const UNAUTHENTICATED: [&str; 3] = ["POST_auth-api-key", "POST_auth-refresh", "POST_upload"];

/// Reads `[platforms.apivideo]`: `api_key` (or `api_key_file`,
/// `CPIXD_APIVIDEO_API_KEY`).
pub fn configure(f: &mut Fields) -> Option<Setup> {
    let api_key = f.required_secret("api_key")?;
    Some(Setup::new(
        &[("api", DEFAULT_BASE)],
        Arc::new(CachedBearer {
            cache: TokenCache::new(Exchange { api_key }),
            exempt: &UNAUTHENTICATED,
        }),
    ))
}

/// Mints tokens with the API key.
pub struct Exchange {
    api_key: SecretString,
}

#[derive(serde::Deserialize)]
struct Answer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

impl Exchange {
    async fn call(
        &self,
        up: &Upstream,
        base: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<Token, GatewayError> {
        let v = token_request(
            up,
            "apivideo",
            Method::POST,
            &format!("{base}{path}"),
            HeaderMap::new(),
            Some(body),
        )
        .await?;
        let a: Answer = serde_json::from_value(v).map_err(|_| {
            GatewayError::Credentials("apivideo", format!("{path} answered without access_token"))
        })?;
        Ok(Token::new(
            SecretString::new(a.access_token),
            a.refresh_token.map(SecretString::new),
            Duration::from_secs(a.expires_in.unwrap_or(3600)),
        ))
    }
}

impl Mint for Exchange {
    fn mint<'a>(
        &'a self,
        up: &'a Upstream,
        base: &'a str,
        previous: Option<&'a Token>,
    ) -> BoxFuture<'a, Result<Token, GatewayError>> {
        Box::pin(async move {
            if let Some(refresh) = previous.and_then(|t| t.refresh.as_ref()) {
                let body = json!({ "refreshToken": refresh.expose() });
                match self.call(up, base, "/auth/refresh", body).await {
                    Ok(t) => return Ok(t),
                    Err(e) => {
                        tracing::warn!(platform = "apivideo", error = %e, "token refresh failed; exchanging the API key again")
                    }
                }
            }
            let body = json!({ "apiKey": self.api_key.expose() });
            self.call(up, base, "/auth/api-key", body).await
        })
    }
}
