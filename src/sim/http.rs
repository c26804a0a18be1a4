//! A deliberately small HTTP/1.1 server for the simulated media servers: one request per
//! connection, `Content-Length` bodies, nothing else. It only has to speak to our own
//! client, and being ours it can also misbehave on purpose (stall, send garbage).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Requests larger than this are refused.
const MAX_BODY: usize = 1024 * 1024;

/// A parsed request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    pub query: HashMap<String, String>,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

/// Work that takes the connection over instead of a response (an event stream, a
/// WebSocket): it writes its own head and lasts as long as it likes.
pub type Takeover = Box<
    dyn FnOnce(TcpStream) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>
        + Send,
>;

/// A [`Takeover`] inside a cloneable [`Response`]; taken once.
#[derive(Clone)]
pub struct TakeoverSlot(Arc<std::sync::Mutex<Option<Takeover>>>);

impl std::fmt::Debug for TakeoverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TakeoverSlot")
    }
}

/// What to send back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Wait this long before answering (a slow server).
    pub delay: Option<Duration>,
    /// Instead of a response: hand the connection to this.
    pub takeover: Option<TakeoverSlot>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self { status, content_type, body: body.into(), delay: None, takeover: None }
    }

    /// The connection goes to `work` (which writes the status line itself).
    pub fn takeover<F, Fut>(work: F) -> Self
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let boxed: Takeover = Box::new(move |stream| Box::pin(work(stream)));
        Self {
            takeover: Some(TakeoverSlot(Arc::new(std::sync::Mutex::new(Some(boxed))))),
            ..Self::empty(101)
        }
    }

    pub fn empty(status: u16) -> Self {
        Self::new(status, "text/plain", Vec::new())
    }

    pub fn json(body: &serde_json::Value) -> Self {
        Self::new(200, "application/json; charset=utf-8", body.to_string())
    }
}

/// Serves `handler` on `127.0.0.1` at an ephemeral port until the task is dropped; returns
/// the address.
pub async fn serve<H, F>(handler: H) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)>
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let handler = Arc::new(handler);
    #[expect(
        clippy::disallowed_methods,
        reason = "the listener belongs to the caller, who stops it through the handle; its connections live in its JoinSet and end with it"
    )]
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = Arc::clone(&handler);
            connections.spawn(async move {
                if let Err(e) = handle(stream, handler.as_ref()).await {
                    tracing::trace!(error = %e, "simulated server connection failed");
                }
            });
        }
    });
    Ok((addr, task))
}

async fn handle<H, F>(stream: TcpStream, handler: &H) -> std::io::Result<()>
where
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    let mut request = Request { method: method.to_owned(), ..Request::default() };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    request.path = decode(path);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        request.query.insert(decode(k), decode(v));
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            request.headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = request.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    if length > MAX_BODY {
        return reply(reader.into_inner(), &Response::empty(413)).await;
    }
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).await?;
    let response = handler(request).await;
    if let Some(slot) = &response.takeover {
        let work = slot.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(work) = work {
            return work(reader.into_inner()).await;
        }
    }
    if let Some(delay) = response.delay {
        tokio::time::sleep(delay).await;
    }
    reply(reader.into_inner(), &response).await
}

async fn reply(mut stream: TcpStream, response: &Response) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&response.body).await?;
    stream.shutdown().await
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Percent-decoding, with `+` as a space (query strings).
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decoding() {
        assert_eq!(super::decode("a+b%20c%26d"), "a b c&d");
        assert_eq!(super::decode("100%"), "100%");
        assert_eq!(super::decode("%zz"), "%zz");
    }
}
