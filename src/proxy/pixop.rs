//! Pixop: the account's email and password (HTTP Basic) are exchanged at
//! `GET /accounts/v1/token` (optionally for one team) for a JWT that lives
//! 15 minutes and cannot be refreshed, so it is minted anew before it runs
//! out. The token operation itself goes up with Basic; after a signing-key
//! rotation (`generate_auth_secret`) cached tokens are dropped. Absolute
//! upstream URLs in answers are rewritten to the gateway by default.

use super::auth::{
    jwt_lifetime, secret_header, token_request, BoxFuture, CachedBearer, Credentials, Grant, Mint,
    Target, Token, TokenCache,
};
use super::client::Upstream;
use super::settings::Fields;
use super::{GatewayError, Setup};
use crate::crypto::SecretString;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const DEFAULT_BASE: &str = "https://staging-api.pixop.com";
/// The operation that mints tokens: called with Basic, not a token.
const TOKEN_OPERATION: &str = "generate_jwt_token";
/// A Pixop JWT's documented lifetime.
const JWT_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Reads `[platforms.pixop]`: `email`, `password` (or `password_file`,
/// `CPIXD_PIXOP_PASSWORD`) and optionally `team_id`.
pub fn configure(f: &mut Fields) -> Option<Setup> {
    let email = f.string("email");
    if email.as_deref().is_none_or(str::is_empty) {
        f.errors.push(format!("{}: required", f.path("email")));
    }
    let password = f.required_secret("password");
    let team_id = f.string("team_id");
    let basic = format!(
        "Basic {}",
        crate::b64::encode(format!("{}:{}", email?, password?.expose()).as_bytes())
    );
    let basic = secret_header(&basic)
        .map_err(|e| f.errors.push(format!("{}: {e}", f.path("email"))))
        .ok()?;
    let mut setup = Setup::new(
        &[("api", DEFAULT_BASE)],
        Arc::new(Jwt {
            tokens: CachedBearer {
                cache: TokenCache::new(Login {
                    basic: basic.clone(),
                    team_id,
                }),
                exempt: &[TOKEN_OPERATION],
            },
            basic,
        }),
    );
    setup.rewrite_urls = true;
    Some(setup)
}

/// Mints a JWT with Basic credentials.
pub struct Login {
    basic: HeaderValue,
    team_id: Option<String>,
}

impl Mint for Login {
    fn mint<'a>(
        &'a self,
        up: &'a Upstream,
        base: &'a str,
        _previous: Option<&'a Token>,
    ) -> BoxFuture<'a, Result<Token, GatewayError>> {
        Box::pin(async move {
            let mut url = format!("{base}/accounts/v1/token");
            if let Some(team) = &self.team_id {
                url.push_str("?team-id=");
                url.push_str(&super::percent_encode(team));
            }
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, self.basic.clone());
            let v = token_request(up, "pixop", Method::GET, &url, headers, None).await?;
            let jwt = v
                .get("jwtToken")
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    GatewayError::Credentials(
                        "pixop",
                        "/accounts/v1/token answered without jwtToken".into(),
                    )
                })?;
            let lifetime = jwt_lifetime(jwt, SystemTime::now()).unwrap_or(JWT_LIFETIME);
            Ok(Token::new(SecretString::new(jwt), None, lifetime))
        })
    }
}

/// The credentials: Basic for the token operation, a cached JWT for the rest.
pub struct Jwt {
    tokens: CachedBearer<Login>,
    basic: HeaderValue,
}

impl Credentials for Jwt {
    fn apply<'a>(
        &'a self,
        up: &'a Upstream,
        target: Target<'a>,
        headers: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<Grant, GatewayError>> {
        if target.is(TOKEN_OPERATION) {
            headers.insert(header::AUTHORIZATION, self.basic.clone());
        }
        self.tokens.apply(up, target, headers)
    }

    fn refused(&self, grant: u64) -> BoxFuture<'_, bool> {
        self.tokens.refused(grant)
    }

    fn finished<'a>(&'a self, target: Target<'a>, status: StatusCode) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if target.is("generate_auth_secret") && status.is_success() {
                self.tokens.cache.clear().await;
            }
            if target.is("update_password") && status.is_success() {
                tracing::warn!(
                    platform = "pixop",
                    "the Pixop password changed: update platforms.pixop.password before the current token expires"
                );
            }
        })
    }

    fn mints(&self) -> u64 {
        self.tokens.mints()
    }
}
