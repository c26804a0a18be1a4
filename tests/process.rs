//! The real binary: start-up checks, key and database reuse, health probe, orderly stop.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use common::process::{Launch, is_root};

#[test]
fn starting_twice_reuses_keys_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let launch = Launch::serve(&data);

    let mut first = launch.start(dir.path());
    let keys = |name: &str| std::fs::read(data.join(name)).unwrap();
    let (cookie, encryption) = (keys("cookie.key"), keys("encryption.key"));
    let (status, _) = first.stop_with("TERM", Duration::from_secs(10));
    assert!(status.success());
    assert!(first.log().contains("applied database migration"));

    let mut second = launch.start(dir.path());
    assert_eq!(keys("cookie.key"), cookie, "cookie key reused");
    assert_eq!(keys("encryption.key"), encryption, "encryption key reused");
    assert!(
        !second.log().contains("applied database migration"),
        "no migration on the second start"
    );
    assert!(!second.log().contains("generated a new key"));
    second.stop_with("TERM", Duration::from_secs(10));
}

#[test]
fn sigterm_and_ctrl_c_stop_in_order_within_five_seconds() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Launch::serve(&dir.path().join("data")).start(dir.path());
        assert_eq!(server.get("/healthz").map(|(s, _)| s), Some(200));
        let (status, took) = server.stop_with(signal, Duration::from_secs(10));
        assert!(status.success(), "SIG{signal}: {status}\n{}", server.log());
        assert!(took < Duration::from_secs(5), "SIG{signal} took {took:?}");
        let log = server.log();
        let order: Vec<usize> = [
            "shutdown requested",
            "background tasks stopped",
            "database checkpointed",
            "streamwarden: stopped",
        ]
        .iter()
        .map(|line| log.find(line).unwrap_or_else(|| panic!("{line:?} missing:\n{log}")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "out of order:\n{log}");
        // The checkpoint folded the WAL back: the main file alone holds the data.
        let wal = dir.path().join("data/streamwarden.db-wal");
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    }
}

#[test]
fn healthcheck_subcommand_reports_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Launch::serve(&data).env("STREAMWARDEN_BASE_PATH", "/sw").start(dir.path());
    let port = server.port;
    let probe = |base: &str| Launch {
        args: vec!["healthcheck".into()],
        env: vec![
            ("STREAMWARDEN_PORT".into(), port.to_string()),
            ("STREAMWARDEN_BASE_PATH".into(), base.into()),
        ],
        as_user: None,
    };
    // `command()` sets a random port first; ours, pushed later, wins.
    let (ok, out) = probe("/sw").run_to_end(Duration::from_secs(10));
    assert!(ok.success(), "{out}");
    let (wrong_path, out) = probe("").run_to_end(Duration::from_secs(10));
    assert!(!wrong_path.success(), "{out}");
    drop(server);
    let (down, out) = probe("/sw").run_to_end(Duration::from_secs(10));
    assert!(!down.success());
    assert!(out.contains("unhealthy"), "{out}");
}

#[test]
fn a_malformed_variable_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("STREAMWARDEN_PORT", "eighty"),
        ("STREAMWARDEN_POLL_INTERVAL", "1"),
        ("STREAMWARDEN_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("STREAMWARDEN_ENCRYPTION_KEY", "short"),
    ] {
        let (status, out) = Launch::serve(&dir.path().join("data"))
            .env(var, value)
            .run_to_end(Duration::from_secs(10));
        assert!(!status.success());
        let first = out.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("streamwarden: {var}: ")), "{var}: {out}");
        assert_eq!(out.lines().count(), 1, "one line: {out}");
    }
}

#[test]
fn an_unwritable_data_directory_fails_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // Readable and traversable by everyone, writable by nobody but its (root) owner.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();

    // Root ignores permissions, so run as an unprivileged user then (like Unraid's 99:100).
    let as_user = is_root().then_some(65534);
    for data in [locked.clone(), locked.join("data")] {
        let mut launch = Launch::serve(&data);
        launch.as_user = as_user;
        let (status, out) = launch.run_to_end(Duration::from_secs(10));
        assert!(!status.success());
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains(&data.display().to_string()), "names the path: {out}");
    }

    // A path below a regular file cannot be created, whoever we are.
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let (status, out) = Launch::serve(&file.join("data")).run_to_end(Duration::from_secs(10));
    assert!(!status.success());
    assert!(out.starts_with("streamwarden: cannot create the data directory"), "{out}");
}

/// The API as a script would call it, with the admin key from the environment.
struct Api {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
}

const API_KEY: &str = "e2e-admin-key-0123456789";

impl Api {
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.rt.block_on(async {
            let mut req =
                self.http.request(method, format!("{}{path}", self.base)).bearer_auth(API_KEY);
            if let Some(body) = body {
                req = req.json(&body);
            }
            match req.send().await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    (status, res.json().await.unwrap_or(serde_json::Value::Null))
                }
                Err(_) => (0, serde_json::Value::Null),
            }
        })
    }

    fn get(&self, path: &str) -> serde_json::Value {
        self.call(reqwest::Method::GET, path, None).1
    }
}

#[test]
fn kill_9_then_restart_resumes_the_play_without_losing_or_doubling_it() {
    use streamwarden::media::ServerKind;
    use streamwarden::sim::{Cluster, World, world};

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let cluster = rt.block_on(async {
        let mut w = World::new();
        w.add_server(ServerKind::Plex, "Sim Plex", &[("1", "owner"), ("11", "alice")]);
        Cluster::start(w).await.unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let launch = Launch::serve(&data)
        .env("STREAMWARDEN_API_KEY", API_KEY)
        .env("STREAMWARDEN_POLL_INTERVAL", "2")
        .env("STREAMWARDEN_CONFIRM_SECONDS", "2");
    let mut server = launch.start(dir.path());
    let mut api =
        Api { rt, http: reqwest::Client::new(), base: format!("http://127.0.0.1:{}", server.port) };

    let e = &cluster.endpoints[0];
    let (status, created) = api.call(
        reqwest::Method::POST,
        "/api/v1/servers",
        Some(serde_json::json!({"name": e.name, "kind": "plex", "url": e.url, "token": e.token})),
    );
    assert_eq!(status, 201, "{created}");
    let key = cluster.with(|w| {
        let tv = world::device("tv", "TV", "Plex for Roku", "Roku");
        w.start(
            0,
            "alice",
            &tv,
            "81.2.69.142".parse().unwrap(),
            false,
            &world::movie("1", "Sintel", 2010, 15, 1080),
        )
    });
    let confirmed = |api: &Api| {
        let sessions = api.get("/api/v1/sessions");
        sessions
            .as_array()
            .and_then(|s| s.first())
            .filter(|s| s["pending"] == false)
            .map(|s| s["id"].clone())
    };
    let id = common::process::wait_for(Duration::from_secs(20), || confirmed(&api))
        .expect("the session is confirmed");

    // SIGKILL: no shutdown hook runs.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = launch.start(dir.path());
    api.base = format!("http://127.0.0.1:{}", server.port);
    let resumed =
        common::process::wait_for(Duration::from_secs(20), || confirmed(&api)).expect("resumed");
    assert_eq!(resumed, id, "the same play, not a second one");
    assert!(server.log().contains("resuming live sessions from the last run"), "{}", server.log());

    cluster.with(|w| w.stop(&key));
    let history = common::process::wait_for(Duration::from_secs(20), || {
        let items = api.get("/api/v1/history")["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .expect("the play reaches history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], id);
    drop(server);
}

/// An ntfy stand-in on a std thread: answers 200 to every request and counts them.
fn counting_server(
    listener: std::net::TcpListener,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::io::{BufRead as _, Read as _, Write as _};
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = reader.get_mut().write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    count
}

#[test]
fn a_kill_9_between_a_violation_and_its_alert_still_delivers_the_alert_once() {
    use common::process::{free_port, http_request, wait_for};
    use std::sync::atomic::Ordering;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = "durability-test-admin-key-0123456789";
    let launch = Launch {
        args: vec!["demo".into()],
        env: vec![
            ("STREAMWARDEN_DATA_DIR".into(), data.display().to_string()),
            ("STREAMWARDEN_API_KEY".into(), key.into()),
        ],
        as_user: None,
    };
    // The phone's ntfy server is not there yet: alerts wait in the outbox.
    let ntfy_port = free_port();
    let mut first = launch.start(dir.path());
    let auth = format!("Bearer {key}");
    let api = |port: u16, method: &str, path: &str, body: Option<&str>| {
        let (status, body) = http_request(port, method, path, &[("Authorization", &auth)], body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer"));
        (status, serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default())
    };
    let channel = format!(
        r#"{{"kind": "ntfy", "name": "phone", "events": ["violation"], "config": {{"server_url": "http://127.0.0.1:{ntfy_port}", "topic": "sharing"}}}}"#
    );
    assert_eq!(api(first.port, "POST", "/api/v1/notifiers", Some(&channel)).0, 201);
    // The demo's rules, told to notify.
    let (_, rules) = api(first.port, "GET", "/api/v1/rules", None);
    for rule in rules.as_array().unwrap() {
        let mut actions = rule["actions"].as_array().unwrap().clone();
        actions.push(serde_json::json!({"type": "notify", "channels": [], "cooldown_minutes": 0}));
        let patch = serde_json::json!({ "actions": actions }).to_string();
        let rule_path = format!("/api/v1/rules/{}", rule["id"]);
        assert_eq!(api(first.port, "PATCH", &rule_path, Some(&patch)).0, 200);
    }
    // The demo's story raises a violation within a minute or two; kill -9 at once.
    let raised = wait_for(Duration::from_mins(3), || {
        let (_, list) = api(first.port, "GET", "/api/v1/violations", None);
        (!list["items"].as_array()?.is_empty()).then_some(())
    });
    assert!(raised.is_some(), "no violation in the demo:\n{}", first.log());
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let db = rusqlite::Connection::open(data.join("streamwarden.db")).unwrap();
    let one = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    let violations = one("SELECT count(*) FROM violations");
    assert!(violations >= 1);
    assert_eq!(
        one("SELECT count(*) FROM notify_outbox WHERE kind = 'violation'"),
        violations,
        "every stored violation has its alert stored with it"
    );
    assert_eq!(one("SELECT count(*) FROM notify_outbox WHERE status = 'sent'"), 0);
    let stored_before = one("SELECT max(id) FROM notify_outbox");
    drop(db);

    // ntfy is back, and so is Streamwarden.
    let delivered = counting_server(std::net::TcpListener::bind(("127.0.0.1", ntfy_port)).unwrap());
    let mut second = launch.start(dir.path());
    let db = rusqlite::Connection::open(data.join("streamwarden.db")).unwrap();
    let sent_before = wait_for(Duration::from_mins(1), || {
        let sent: i64 = db
            .query_row(
                "SELECT count(*) FROM notify_outbox WHERE id <= ?1 AND status = 'sent'",
                [stored_before],
                |r| r.get(0),
            )
            .ok()?;
        (sent == violations).then_some(sent)
    });
    assert_eq!(
        sent_before,
        Some(violations),
        "the alerts of before the kill went out:\n{}",
        second.log()
    );
    second.stop_with("TERM", Duration::from_secs(10));
    let all_sent: i64 = db
        .query_row("SELECT count(*) FROM notify_outbox WHERE status = 'sent'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        i64::try_from(delivered.load(Ordering::SeqCst)).unwrap(),
        all_sent,
        "one request per stored alert: none lost, none twice"
    );
}
