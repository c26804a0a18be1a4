//! A real SMTP server on loopback: `PyPI`'s `aiosmtpd` in the venv `.ci/test` prepares
//! (`STREAMWARDEN_TEST_PYTHON`), with certificates from a throwaway CA (`trustme`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// How the server protects the session.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Plain,
    Starttls,
    Tls,
}

/// A running SMTP server; stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// The Python with aiosmtpd and trustme, or a failure that says how to get it.
pub fn python() -> PathBuf {
    match std::env::var_os("STREAMWARDEN_TEST_PYTHON") {
        Some(path) if PathBuf::from(&path).exists() => PathBuf::from(path),
        Some(path) => panic!(
            "STREAMWARDEN_TEST_PYTHON={} does not exist: run .ci/test, which installs aiosmtpd and trustme into target/test-tools",
            PathBuf::from(path).display()
        ),
        None => panic!(
            "STREAMWARDEN_TEST_PYTHON is not set: run .ci/test, which installs aiosmtpd and trustme into target/test-tools and sets it"
        ),
    }
}

impl SmtpSink {
    /// Starts the server; `login` makes it require that user and password.
    pub async fn start(mode: Mode, login: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/notify/smtp_sink.py");
        let mode_arg = match mode {
            Mode::Plain => "plain",
            Mode::Starttls => "starttls",
            Mode::Tls => "tls",
        };
        let mut cmd = Command::new(python());
        cmd.arg(script).arg(mode_arg).arg(port.to_string()).arg(dir.path());
        if let Some((user, password)) = login {
            cmd.arg(user).arg(password);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the SMTP sink starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == "READY" {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            ready,
            Ok(true),
            "the SMTP sink (aiosmtpd) did not start; run .ci/test to install it"
        );
        Self { port, dir, child }
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap()
    }

    /// Messages received so far, in order.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut n = 1;
        let mut out = Vec::new();
        while let Ok(text) = std::fs::read_to_string(self.dir.path().join(format!("msg-{n}.json")))
        {
            out.push(serde_json::from_str(&text).unwrap());
            n += 1;
        }
        out
    }

    /// Waits (polling, with a deadline) until `n` messages arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} emails within {timeout:?}, got {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
