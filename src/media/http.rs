//! HTTP to media servers: one client per server, a timeout on every call, a cap on every body.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::MediaError;

/// Whole-request timeout: a media server that takes longer is as good as down this poll.
pub const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest session list we read (StreamMon uses the same cap); hundreds of sessions fit.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// Largest image we pass through.
pub const MAX_IMAGE: usize = 5 * 1024 * 1024;

/// A response read to the end.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A client bound to one server's base URL, sending its credentials on every request.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: Url,
}

impl Http {
    /// `base` is the server URL as the user typed it, possibly with a sub-path.
    pub fn new(base: &str, verify_tls: bool, headers: HeaderMap) -> Result<Self, MediaError> {
        let base = parse_base_url(base)?;
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .default_headers(headers)
            .user_agent(concat!("Streamwarden/", env!("CARGO_PKG_VERSION")))
            // Self-signed certificates are common on LAN media servers; the user opts in.
            .danger_accept_invalid_certs(!verify_tls)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| MediaError::Unreachable(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { client, base })
    }

    /// The URL of `path` (which starts with `/`) under the base URL, with `query`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{}", self.base.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request and reads the body, at most `cap` bytes.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(&'static str, &str)],
        body: Option<serde_json::Value>,
        cap: usize,
    ) -> Result<Reply, MediaError> {
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response.content_length().is_some_and(|len| len > cap as u64) {
            return Err(MediaError::TooLarge(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > cap {
                return Err(MediaError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply { status, content_type, body })
    }

    /// GET that must answer 2xx.
    pub async fn get_ok(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: &'static str,
        cap: usize,
    ) -> Result<Reply, MediaError> {
        let reply =
            self.send(Method::GET, self.url(path, query), &[("Accept", accept)], None, cap).await?;
        check_status(reply)
    }
}

/// Redirects followed within one request.
const MAX_REDIRECTS: usize = 3;

/// Follows a redirect only to the scheme, host and port of the server's URL. Every request
/// carries the token (`X-Plex-Token`, `X-Emby-Token`, `Authorization`) in its headers, and a
/// redirect elsewhere would hand it to an address the user never entered (reqwest strips only
/// the standard credential headers on a cross-host redirect, not these).
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else { return attempt.follow() };
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        if first.origin() == attempt.url().origin() {
            attempt.follow()
        } else {
            let to = CrossOriginRedirect(attempt.url().origin().ascii_serialization());
            attempt.error(to)
        }
    })
}

/// A redirect to another address, refused (the origin only: a path could hold a secret).
#[derive(Debug)]
struct CrossOriginRedirect(String);

impl std::fmt::Display for CrossOriginRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redirected to {}", self.0)
    }
}

impl std::error::Error for CrossOriginRedirect {}

/// Turns a non-2xx reply into the matching error.
pub fn check_status(reply: Reply) -> Result<Reply, MediaError> {
    match reply.status.as_u16() {
        200..=299 => Ok(reply),
        401 | 403 => Err(MediaError::Unauthorized(reply.status.as_u16())),
        code => {
            let detail = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            Err(MediaError::Status { status: code, detail })
        }
    }
}

/// Validates a server URL as typed by a user.
pub fn parse_base_url(raw: &str) -> Result<Url, MediaError> {
    let url = Url::parse(raw.trim()).map_err(|e| MediaError::BadUrl(format!("{raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(MediaError::BadUrl(format!("{raw:?} must start with http:// or https://")));
    }
    if url.host().is_none() {
        return Err(MediaError::BadUrl(format!("{raw:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(MediaError::BadUrl(format!(
            "{raw:?} must not contain a query, a fragment or credentials (the token goes in its own field)"
        )));
    }
    Ok(url)
}

/// Builds a header value, refusing characters HTTP cannot carry.
pub fn header_value(value: &str) -> Result<HeaderValue, MediaError> {
    HeaderValue::from_str(value).map_err(|_| {
        MediaError::BadToken("the token contains characters that cannot be sent".to_owned())
    })
}

/// A transport error in words a user can act on (never with the URL, which may hold a token).
fn describe(e: reqwest::Error) -> MediaError {
    if e.is_redirect() {
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            if let Some(CrossOriginRedirect(to)) = err.downcast_ref::<CrossOriginRedirect>() {
                return MediaError::Refused(format!(
                    "the server redirected to {to}, another address, and Streamwarden does not send the token there; if that is the server's real address, enter it as the server URL"
                ));
            }
            source = err.source();
        }
        return MediaError::Unreachable(format!(
            "the server redirects in a loop ({})",
            e.without_url()
        ));
    }
    if e.is_timeout() {
        MediaError::Timeout(TIMEOUT.as_secs())
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        let mut detail = String::from("connection failed");
        while let Some(err) = source {
            detail = err.to_string();
            source = err.source();
        }
        MediaError::Unreachable(detail)
    } else if e.is_body() || e.is_decode() {
        MediaError::Malformed(format!("the answer broke off: {}", e.without_url()))
    } else {
        MediaError::Unreachable(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_sub_path() {
        let http =
            Http::new("https://media.example.com/jellyfin/", true, HeaderMap::new()).unwrap();
        assert_eq!(
            http.url("/Sessions", &[]).as_str(),
            "https://media.example.com/jellyfin/Sessions"
        );
        let plex = Http::new("http://10.0.0.5:32400", true, HeaderMap::new()).unwrap();
        assert_eq!(
            plex.url("/status/sessions/terminate", &[("sessionId", "a b"), ("reason", "bye & go")])
                .as_str(),
            "http://10.0.0.5:32400/status/sessions/terminate?sessionId=a+b&reason=bye+%26+go"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for bad in [
            "",
            "10.0.0.5:32400",
            "ftp://x",
            "http://",
            "http://u:p@host",
            "http://host/?X-Plex-Token=abc",
        ] {
            assert!(matches!(parse_base_url(bad), Err(MediaError::BadUrl(_))), "{bad}");
        }
    }
}
