//! HTTP to Radarr, Sonarr and Seerr: one client per instance, the API key in `X-Api-Key` on
//! every request, a timeout on every call, no redirects (they would carry the key
//! elsewhere), and answers read into errors that never contain the key.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

/// Longest wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one request and its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer read (a Sonarr series list of a big library fits).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Why a call failed, in words for the deletion log and the connection test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("not found (HTTP 404)")]
    NotFound,
    #[error("the API key was refused (HTTP {0}): copy it again from the app's Settings → General")]
    Unauthorized(u16),
    #[error("answered HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status { status: u16, detail: String },
    #[error("cannot reach it: {0}")]
    Unreachable(String),
    #[error("no answer within {0} seconds")]
    Timeout(u64),
    #[error("the answer could not be understood: {0}")]
    Malformed(String),
}

/// A client bound to one instance's base URL.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: Url,
}

impl Http {
    pub fn new(base: &str, api_key: &str, verify_tls: bool) -> Result<Self, String> {
        let base = crate::media::http::parse_base_url(base).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        let key = HeaderValue::from_str(api_key)
            .map_err(|_| "the API key contains characters that cannot be sent".to_owned())?;
        headers.insert("X-Api-Key", key);
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(!verify_tls)
            .user_agent(concat!("Streamwarden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self { client, base })
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request; a 2xx answer's body, or the error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<Vec<u8>, CallError> {
        let mut request =
            self.client.request(method, self.url(path, query)).header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(CallError::Malformed(format!("larger than {MAX_BODY} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        check(status, bytes)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, CallError> {
        let body = self.call(Method::GET, path, query, None).await?;
        serde_json::from_slice(&body).map_err(|e| CallError::Malformed(format!("{path}: {e}")))
    }
}

fn check(status: StatusCode, body: Vec<u8>) -> Result<Vec<u8>, CallError> {
    match status.as_u16() {
        200..=299 => Ok(body),
        404 => Err(CallError::NotFound),
        401 | 403 => Err(CallError::Unauthorized(status.as_u16())),
        code => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
            Err(CallError::Status {
                status: code,
                detail: text.split_whitespace().collect::<Vec<_>>().join(" "),
            })
        }
    }
}

/// A transport error in words, never with the URL.
fn describe(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::Timeout(REQUEST_TIMEOUT.as_secs())
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        let mut detail = String::from("connection failed");
        while let Some(err) = source {
            detail = err.to_string();
            source = err.source();
        }
        CallError::Unreachable(detail)
    } else {
        CallError::Unreachable(e.without_url().to_string())
    }
}
