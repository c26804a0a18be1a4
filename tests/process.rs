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
