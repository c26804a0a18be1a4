//! The HTTP side shared by Pushover, ntfy, Discord and webhooks: one client with timeouts,
//! and one reading of answers into sent / retry (with `Retry-After`) / give up.

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};

use super::channel::SendError;

/// Longest wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a whole request and its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest `Retry-After` we honour; a longer one is capped (and retried then).
pub const MAX_RETRY_AFTER: Duration = Duration::from_hours(6);
/// How much of an error answer's body we quote.
const BODY_QUOTE_CHARS: usize = 300;

/// The client every HTTP channel shares.
pub fn client() -> Client {
    builder().build().expect("a client without custom TLS settings builds")
}

/// A client that also trusts the CA certificates in `pem` (a self-hosted ntfy or webhook
/// receiver with its own CA).
pub fn client_trusting(pem: &str) -> Result<Client, SendError> {
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| SendError::permanent(format!("the extra CA certificate is invalid: {e}")))?;
    builder()
        .tls_certs_merge(certs)
        .build()
        .map_err(|e| SendError::permanent(format!("the extra CA certificate is unusable: {e}")))
}

fn builder() -> reqwest::ClientBuilder {
    Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        // A redirect would resend our tokens somewhere we were not told about; say so instead.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Streamwarden/", env!("CARGO_PKG_VERSION")))
}

/// A readable answer from a service.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// Sends `request` to `service` ("ntfy", "Discord", ...) and reads the answer. Errors never
/// include the URL: webhook URLs and query strings carry tokens.
pub async fn execute(service: &str, request: RequestBuilder) -> Result<Answer, SendError> {
    let response = request.send().await.map_err(|e| transport_error(service, e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Ok(Answer { status, headers, body })
}

/// Reads an answer: 2xx is sent; 408, 425, 429 and 5xx are worth retrying (after
/// `Retry-After` when given); any other status will fail again. `detail` pulls the
/// service's own error text out of the body, when it has a known shape.
pub fn check(
    service: &str,
    answer: &Answer,
    detail: impl Fn(&str) -> Option<String>,
) -> Result<(), SendError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(());
    }
    let mut message = format!("{service} answered {}", status_text(status));
    let said = detail(&answer.body).unwrap_or_else(|| quote_body(&answer.body));
    if !said.is_empty() {
        let _ = write!(message, ": {said}");
    }
    if status.is_redirection() {
        let to = answer
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(redact_url)
            .unwrap_or_default();
        let _ = write!(message, " (redirected to {to}; use that address instead)");
        return Err(SendError::permanent(message));
    }
    let retryable = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
    if retryable {
        let retry_after = retry_after(&answer.headers, jiff::Timestamp::now());
        Err(SendError::Transient { message, retry_after })
    } else {
        Err(SendError::permanent(message))
    }
}

/// `404 Not Found`.
fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The start of a body, on one line.
fn quote_body(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    super::message::truncate_chars(&line, BODY_QUOTE_CHARS)
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(seconds) = value.parse::<f64>() {
        if !seconds.is_finite() || seconds < 0.0 {
            return None;
        }
        Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
        let seconds = at.as_second().saturating_sub(now.as_second());
        Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// What went wrong before any answer, without the URL.
fn transport_error(service: &str, e: reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
    } else if e.is_connect() {
        // The innermost cause says it best: "Connection refused (os error 111)",
        // "invalid peer certificate: UnknownIssuer", "failed to lookup address ...".
        format!("cannot connect: {}", root_cause(&e))
    } else {
        source_chain(e)
    };
    SendError::transient(format!("{service}: {what}"))
}

/// The innermost cause of `e` (never the URL).
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if std::ptr::addr_eq(cause, e) { "connection failed".to_owned() } else { cause.to_string() }
}

/// The error's causes joined, without reqwest's own "error sending request for url (...)".
fn source_chain(e: reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        // No cause: reqwest's own message, with the URL taken out.
        return e.without_url().to_string();
    }
    parts.join(": ")
}

/// `https://discord.com/api/webhooks/1/abc` → `https://discord.com/…`: for messages.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or_default()),
        Err(_) => "another address".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Answer { status: StatusCode::from_u16(status).unwrap(), headers: map, body: body.into() }
    }

    #[test]
    fn statuses_are_classified() {
        let none = |_: &str| None;
        assert_eq!(check("ntfy", &answer(200, &[], ""), none), Ok(()));
        assert_eq!(check("ntfy", &answer(204, &[], ""), none), Ok(()));
        for status in [500, 502, 503, 408, 429] {
            assert!(
                matches!(
                    check("x", &answer(status, &[], ""), none),
                    Err(SendError::Transient { .. })
                ),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 413] {
            assert!(
                matches!(
                    check("x", &answer(status, &[], ""), none),
                    Err(SendError::Permanent { .. })
                ),
                "{status}"
            );
        }
        let err =
            check("ntfy", &answer(403, &[], "{\"error\":\"forbidden\"}\n"), none).unwrap_err();
        assert_eq!(err.message(), "ntfy answered 403 Forbidden: {\"error\":\"forbidden\"}");
        let err = check("Pushover", &answer(400, &[], "{}"), |_| Some("token invalid".into()))
            .unwrap_err();
        assert_eq!(err.message(), "Pushover answered 400 Bad Request: token invalid");
        let err = check(
            "Discord",
            &answer(301, &[("location", "https://discord.com/api/webhooks/1/SECRET")], ""),
            none,
        )
        .unwrap_err();
        assert!(!err.message().contains("SECRET"), "{err}");
        assert!(matches!(err, SendError::Permanent { .. }));
    }

    #[test]
    fn retry_after_seconds_or_date() {
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(retry_after(&headers("120"), now), Some(Duration::from_mins(2)));
        assert_eq!(retry_after(&headers("1.5"), now), Some(Duration::from_millis(1500)));
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            retry_after(&headers("Tue, 14 Nov 2023 22:14:20 GMT"), now),
            Some(Duration::from_mins(1))
        );
        assert_eq!(
            retry_after(&headers("Tue, 14 Nov 2023 22:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("999999999"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[tokio::test]
    async fn transport_errors_never_show_the_url() {
        // A port nobody listens on: connection refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/api/webhooks/1/SECRET-TOKEN?auth=SECRET");
        let err = execute("Discord", client().post(url)).await.unwrap_err();
        assert!(matches!(err, SendError::Transient { .. }));
        assert!(err.message().starts_with("Discord: cannot connect"), "{err}");
        assert!(!err.message().contains("SECRET"), "{err}");
    }
}
