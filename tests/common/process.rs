//! The real `streamwarden` binary on an ephemeral port, for start-up, shutdown and
//! end-to-end tests. Waiting is always polling against a deadline, never a bare sleep.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_streamwarden");

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A running server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log_path: PathBuf,
}

/// How to run the binary.
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Run as this uid/gid (through `setpriv`) when we are root.
    pub as_user: Option<u32>,
}

impl Launch {
    pub fn serve(data_dir: &Path) -> Self {
        Self {
            args: vec!["serve".into()],
            env: vec![("STREAMWARDEN_DATA_DIR".into(), data_dir.display().to_string())],
            as_user: None,
        }
    }

    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn command(&self, port: u16) -> Command {
        let mut cmd = match self.as_user {
            Some(uid) if is_root() => {
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".into(),
                ]);
                c.arg(BINARY);
                c
            }
            _ => Command::new(BINARY),
        };
        cmd.args(&self.args);
        // Only what we set: the developer's own STREAMWARDEN_* must not leak into tests.
        cmd.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("STREAMWARDEN_PORT", port.to_string());
        cmd.env("STREAMWARDEN_ADDRESS", "127.0.0.1");
        cmd.env("STREAMWARDEN_LOG", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs to completion (for commands that must fail at start): status and all output.
    pub fn run_to_end(&self, timeout: Duration) -> (ExitStatus, String) {
        let port = free_port();
        let mut child = self
            .command(port)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let status = wait_for(timeout, || child.try_wait().expect("wait")).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("did not exit within {timeout:?}");
        });
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
        (status, out)
    }

    /// Starts the server and waits until `/healthz` answers.
    pub fn start(&self, log_dir: &Path) -> Server {
        let port = free_port();
        let log_path = log_dir.join(format!("server-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = self
            .command(port)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("binary starts");
        let mut server = Server { child, port, log_path };
        let base = self
            .env
            .iter()
            .find(|(k, _)| k == "STREAMWARDEN_BASE_PATH")
            .map_or(String::new(), |(_, v)| v.clone());
        let url = format!("/{}/healthz", base.trim_matches('/'));
        let url = url.replace("//", "/");
        let up = wait_for(Duration::from_secs(20), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited with {status}:\n{}", server.log());
            }
            (http_get(port, &url).map(|(s, _)| s) == Some(200)).then_some(())
        });
        assert!(up.is_some(), "server did not come up:\n{}", server.log());
        server
    }
}

impl Server {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends `signal` (e.g. "TERM", "INT") and waits for the exit; returns the status and
    /// how long it took.
    pub fn stop_with(&mut self, signal: &str, timeout: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status =
            wait_for(timeout, || self.child.try_wait().expect("wait")).unwrap_or_else(|| {
                panic!("no exit within {timeout:?} after SIG{signal}:\n{}", self.log())
            });
        (status, started.elapsed())
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET on loopback: status and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_request(port, "GET", path, &[], None)
}

/// One HTTP/1.1 request on loopback; the status and the body, or `None` if nothing answered.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Option<(u16, String)> {
    use std::fmt::Write as _;
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ =
            write!(head, "Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    stream.write_all(head.as_bytes()).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
