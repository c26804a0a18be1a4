//! An HTTP/1.1 server on loopback that records every request and answers as scripted: it
//! stands in for Pushover, ntfy, Discord and webhook receivers.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status we answered.
    pub answered: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: String::new() }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    /// Answers for the next requests, in order; then `default`.
    queue: VecDeque<Reply>,
    default: Option<Reply>,
}

/// A running capture server; stops when dropped.
pub struct Capture {
    pub port: u16,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    task: Option<JoinHandle<()>>,
}

impl Capture {
    /// Listens on a free port, answering 200 `{}` unless told otherwise.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (0: any free one).
    pub async fn start_on(port: u16) -> Self {
        let mut capture = Self {
            port,
            state: Arc::new(Mutex::new(State::default())),
            arrived: Arc::new(Notify::new()),
            task: None,
        };
        capture.listen().await;
        capture
    }

    async fn listen(&mut self) {
        let listener =
            TcpListener::bind(("127.0.0.1", self.port)).await.expect("bind capture port");
        self.port = listener.local_addr().unwrap().port();
        let (state, arrived) = (Arc::clone(&self.state), Arc::clone(&self.arrived));
        #[expect(clippy::disallowed_methods, reason = "the capture owns its listener task")]
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (state, arrived) = (Arc::clone(&state), Arc::clone(&arrived));
                connections.spawn(async move {
                    let _ = serve(stream, &state, &arrived).await;
                });
            }
        });
        self.task = Some(task);
    }

    /// Stops listening: connections are refused until [`Capture::resume`].
    pub fn pause(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) {
        self.pause();
        // The aborted task drops its listener once it is polled again; retry briefly.
        for _ in 0..100 {
            if TcpListener::bind(("127.0.0.1", self.port)).await.is_ok() {
                break;
            }
            tokio::task::yield_now().await;
        }
        self.listen().await;
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers every request with `reply` from now on.
    pub fn always(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    /// Answers the next request with `reply` (before the default).
    pub fn next(&self, reply: Reply) {
        self.state.lock().unwrap().queue.push_back(reply);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests we answered with 2xx.
    pub fn accepted(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| (200..300).contains(&r.answered)).collect()
    }

    /// Waits until at least `n` requests arrived (or panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                tokio::time::timeout_at(deadline, notified).await.is_ok(),
                "expected {n} requests within {timeout:?}, got {}: {requests:#?}",
                requests.len()
            );
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.pause();
    }
}

/// Reads one request, records it, answers, closes.
async fn serve(
    mut stream: tokio::net::TcpStream,
    state: &Mutex<State>,
    arrived: &Notify,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let reply = {
        let mut state = state.lock().unwrap();
        let reply = state
            .queue
            .pop_front()
            .or_else(|| state.default.clone())
            .unwrap_or_else(|| Reply::json(200, &serde_json::json!({})));
        state.requests.push(Request { method, target, headers, body, answered: reply.status });
        reply
    };
    arrived.notify_waiters();
    let mut response = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        let _ = write!(response, "{k}: {v}\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&reply.body);
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
