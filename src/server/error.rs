//! The one place errors become HTTP responses: JSON `{"code","status",
//! "message"}` for the JSON and gateway endpoints, plain text with the exact
//! SPEKE strings for the SPEKE endpoints. 5xx bodies are generic; the detail
//! goes to the log only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answered as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`unauthorized`, `payload_too_large`, …).
    pub code: &'static str,
    /// Human-readable message (generic for 5xx).
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The JSON body: `{"code": …, "status": …, "message": …}`.
    pub fn body(&self) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            code: &'a str,
            status: u16,
            message: &'a str,
        }
        serde_json::to_string(&Body {
            code: self.code,
            status: self.status.as_u16(),
            message: &self.message,
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"cpixd\", charset=\"UTF-8\""),
            );
        }
        resp
    }
}

/// A plain-text response (SPEKE error bodies are plain strings).
pub fn plain(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Makes text safe for a response header: printable ASCII, at most 300
/// characters.
pub fn header_text(s: &str) -> HeaderValue {
    let clean: String = s
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(300)
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("-"))
}
