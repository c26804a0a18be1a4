//! Each HTTP channel sends exactly the request its service documents.

use base64::Engine as _;
use serde_json::json;
use streamwarden::notify::{Event, EventKind, Severity};

use crate::capture::{Capture, Reply};
use crate::harness::{Harness, PUBLIC_URL};

const TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
const USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";

fn violation(severity: Severity) -> Event {
    Event::new(EventKind::Violation, "Berlin → Sydney: 16,000 km in 20 min")
        .severity(severity)
        .user(5, "zoë")
        .server(1, "Plex")
        .rule(3, "Impossible travel ✈")
        .link("/violations/12")
        .at(1_700_000_000_000)
}

#[tokio::test]
async fn ntfy_publishes_json_to_the_server_root() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let ntfy = Capture::start().await;
    let id = h
        .channel(
            "ntfy",
            json!({"server_url": format!("{}/ntfy", ntfy.url()), "topic": "sw-alerts", "token": "tk_0123456789", "tags": "tv"}),
            json!({"events": ["violation"]}),
        )
        .await;
    for severity in [Severity::Low, Severity::Warning, Severity::High] {
        h.publish(violation(severity)).await;
    }
    assert_eq!(h.deliver().await, 3);
    let requests = ntfy.requests();
    assert_eq!(requests.len(), 3);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/ntfy/"),
        "JSON goes to the root URL"
    );
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Authorization"), Some("Bearer tk_0123456789"));
    assert!(r.header("User-Agent").unwrap().starts_with("Streamwarden/"));
    assert!(
        r.header("Title").is_none() && r.header("X-Title").is_none(),
        "UTF-8 titles go in the JSON"
    );
    assert_eq!(
        r.json(),
        json!({
            "topic": "sw-alerts",
            "title": "Impossible travel ✈: zoë",
            "message": "Berlin → Sydney: 16,000 km in 20 min\n\nUser: zoë\nServer: Plex\nRule: Impossible travel ✈\nSeverity: High",
            "priority": 5,
            "tags": ["rotating_light", "streamwarden", "violation", "tv"],
            "click": format!("{PUBLIC_URL}/violations/12"),
            "actions": [{"action": "view", "label": "Open", "url": format!("{PUBLIC_URL}/violations/12")}],
        })
    );
    let priorities: Vec<i64> =
        requests.iter().map(|r| r.json()["priority"].as_i64().unwrap()).collect();
    assert_eq!(priorities, [5, 4, 3], "high, warning, low by default: most severe first");
    assert!(h.messages(id).await.iter().all(|m| m.status == "sent"));
}

#[tokio::test]
async fn ntfy_basic_auth_custom_priorities_and_the_4096_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let ntfy = Capture::start().await;
    h.channel(
        "ntfy",
        json!({"server_url": ntfy.url(), "topic": "t", "username": "phil", "password": "pä55", "priority_low": 1, "priority_warning": "2", "priority_high": 4}),
        json!({"events": ["violation"]}),
    )
    .await;
    h.publish(violation(Severity::Low).at(1)).await;
    h.publish(Event::new(EventKind::Violation, "é".repeat(5000)).severity(Severity::High)).await;
    h.deliver().await;
    let requests = ntfy.requests();
    let basic = base64::engine::general_purpose::STANDARD.encode("phil:pä55");
    assert_eq!(requests[1].header("Authorization"), Some(format!("Basic {basic}").as_str()));
    assert_eq!(requests[1].json()["priority"], 1);
    let long = requests[0].json();
    assert_eq!(long["priority"], 4);
    let message = long["message"].as_str().unwrap();
    assert!(message.len() <= 4096, "{} bytes", message.len());
    assert!(message.ends_with('…'));
}

#[tokio::test]
async fn pushover_gets_its_documented_fields_priorities_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let pushover = Capture::start().await;
    let api_url = format!("{}/1/messages.json", pushover.url());
    h.channel(
        "pushover",
        json!({"token": TOKEN, "user": USER, "device": "phone", "sound": "siren", "api_url": api_url}),
        json!({"events": ["violation"]}),
    )
    .await;
    for severity in [Severity::Low, Severity::Warning, Severity::High] {
        h.publish(violation(severity)).await;
    }
    h.deliver().await;
    let requests = pushover.requests();
    assert_eq!(requests.len(), 3);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/1/messages.json"));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "token": TOKEN,
            "user": USER,
            "title": "Impossible travel ✈: zoë",
            "message": "Berlin → Sydney: 16,000 km in 20 min\n\nUser: zoë\nServer: Plex\nRule: Impossible travel ✈\nSeverity: High",
            "priority": 1,
            "timestamp": 1_700_000_000,
            "url": format!("{PUBLIC_URL}/violations/12"),
            "url_title": "Open in Streamwarden",
            "device": "phone",
            "sound": "siren",
        })
    );
    let priorities: Vec<i64> =
        requests.iter().map(|r| r.json()["priority"].as_i64().unwrap()).collect();
    assert_eq!(priorities, [1, 0, -1], "most severe first");
}

#[tokio::test]
async fn pushover_emergency_only_when_chosen_and_text_is_cut_to_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let pushover = Capture::start().await;
    h.channel(
        "pushover",
        json!({"token": TOKEN, "user": USER, "priority_high": 2, "retry": 30, "expire": 10800, "api_url": format!("{}/1/messages.json", pushover.url())}),
        json!({"events": ["violation"]}),
    )
    .await;
    let long = Event::new(EventKind::Violation, "ü".repeat(2000))
        .rule(1, "R".repeat(400))
        .severity(Severity::High);
    h.publish(long).await;
    h.publish(violation(Severity::Warning)).await;
    h.deliver().await;
    let requests = pushover.requests();
    let emergency = requests[0].json();
    assert_eq!(
        (emergency["priority"].clone(), emergency["retry"].clone(), emergency["expire"].clone()),
        (json!(2), json!(30), json!(10800))
    );
    assert_eq!(emergency["title"].as_str().unwrap().chars().count(), 250);
    assert_eq!(emergency["message"].as_str().unwrap().chars().count(), 1024);
    let normal = requests[1].json();
    assert_eq!(normal["priority"], 0);
    assert!(normal.get("retry").is_none() && normal.get("expire").is_none());
}

#[tokio::test]
async fn pushover_errors_are_reported_exactly_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let pushover = Capture::start().await;
    pushover.always(Reply::json(
        400,
        &json!({"token": "invalid", "errors": ["application token is invalid, see https://pushover.net/api"], "status": 0, "request": "5042853c"}),
    ));
    let id = h
        .channel("pushover", json!({"token": TOKEN, "user": USER, "api_url": format!("{}/1/messages.json", pushover.url())}), json!({"events": ["violation"]}))
        .await;
    h.publish(violation(Severity::High)).await;
    h.deliver().await;
    let m = &h.messages(id).await[0];
    assert_eq!(m.status, "failed", "a 400 will fail again: no retry");
    assert_eq!(
        m.last_error.as_deref(),
        Some(
            "Pushover answered 400 Bad Request: application token is invalid, see https://pushover.net/api"
        )
    );
    assert!(!m.last_error.as_deref().unwrap().contains(TOKEN));
}

#[tokio::test]
async fn discord_gets_one_embed_coloured_by_severity_without_mentions() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let discord = Capture::start().await;
    let webhook = format!("{}/api/webhooks/123/s3cr3t-token?thread_id=77", discord.url());
    let id = h
        .channel(
            "discord",
            json!({"webhook_url": webhook, "username": "Warden"}),
            json!({"events": ["violation", "server_down"]}),
        )
        .await;
    h.publish(violation(Severity::High)).await;
    h.publish(
        Event::new(EventKind::ServerDown, "no answer for 60 s")
            .server(1, "Plex @everyone")
            .severity(Severity::Warning),
    )
    .await;
    h.publish(
        Event::new(EventKind::Violation, "x".repeat(9000))
            .rule(1, "R".repeat(300))
            .user(1, "u")
            .severity(Severity::Low),
    )
    .await;
    h.deliver().await;
    let requests = discord.requests();
    assert_eq!(requests.len(), 3);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/api/webhooks/123/s3cr3t-token?thread_id=77&wait=true")
    );
    assert_eq!(
        r.json(),
        json!({
            "username": "Warden",
            "allowed_mentions": {"parse": []},
            "embeds": [{
                "title": "Impossible travel ✈\\: zoë",
                "description": "Berlin → Sydney\\: 16,000 km in 20 min",
                "url": format!("{PUBLIC_URL}/violations/12"),
                "color": 15_158_332,
                "timestamp": "2023-11-14T22:13:20Z",
                "footer": {"text": "Streamwarden"},
                "fields": [
                    {"name": "User", "value": "zoë", "inline": true},
                    {"name": "Server", "value": "Plex", "inline": true},
                    {"name": "Rule", "value": "Impossible travel ✈", "inline": true},
                    {"name": "Severity", "value": "High", "inline": true},
                ],
            }],
        })
    );
    let down = requests[1].json();
    assert_eq!(down["embeds"][0]["title"], "Plex @everyone is down");
    assert_eq!(down["embeds"][0]["color"], 0x00f3_9c12);
    assert_eq!(
        down["allowed_mentions"],
        json!({"parse": []}),
        "no @everyone ping, whatever the name"
    );
    let long = &requests[2].json()["embeds"][0];
    assert_eq!(long["color"], 0x0034_98db);
    assert_eq!(long["title"].as_str().unwrap().chars().count(), 256);
    let description = long["description"].as_str().unwrap().chars().count();
    assert!(description <= 4096, "{description}");
    let fields: usize = long["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["name"].as_str().unwrap().chars().count()
                + f["value"].as_str().unwrap().chars().count()
        })
        .sum();
    assert!(256 + description + fields + "Streamwarden".len() <= 6000);
    // The webhook URL is a secret: never in the log of the channel.
    assert!(h.messages(id).await.iter().all(|m| m.last_error.is_none()));
}

#[tokio::test]
async fn webhook_payload_v1_with_headers_and_a_verifiable_signature() {
    use hmac::{Hmac, Mac};
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let hook = Capture::start().await;
    let secret = "a-long-shared-secret-0123";
    h.channel(
        "webhook",
        json!({"url": format!("{}/hooks/sw?x=1", hook.url()), "method": "PUT", "headers": "Authorization: Bearer hook-token\nX-Team: ops", "secret": secret}),
        json!({"events": ["violation"]}),
    )
    .await;
    let event = violation(Severity::High).data(json!({"distance_km": 16000, "speed_kmh": 48000}));
    h.publish(event).await;
    h.deliver().await;
    let r = &hook.requests()[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("PUT", "/hooks/sw?x=1"));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Authorization"), Some("Bearer hook-token"));
    assert_eq!(r.header("X-Team"), Some("ops"));
    assert_eq!(r.header("X-Streamwarden-Event"), Some("violation"));
    let payload = r.json();
    assert_eq!(r.header("X-Streamwarden-Delivery"), payload["id"].as_str());
    assert_eq!(payload["id"].as_str().unwrap().len(), 32);
    assert_eq!(
        payload,
        json!({
            "version": 1,
            "id": payload["id"],
            "event": "violation",
            "severity": "high",
            "occurred_at": "2023-11-14T22:13:20Z",
            "title": "Impossible travel ✈: zoë",
            "message": "Berlin → Sydney: 16,000 km in 20 min",
            "url": format!("{PUBLIC_URL}/violations/12"),
            "user": {"id": 5, "name": "zoë"},
            "server": {"id": 1, "name": "Plex"},
            "rule": {"id": 3, "name": "Impossible travel ✈"},
            "data": {"distance_km": 16000, "speed_kmh": 48000},
            "test": false,
        })
    );
    // The receiver's check: HMAC-SHA256 over "{timestamp}.{raw body}".
    let timestamp = r.header("X-Streamwarden-Timestamp").unwrap();
    let age = streamwarden::time::now_ms() / 1000 - timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "a current timestamp: {timestamp}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("sha256={}", hex(&mac.finalize().into_bytes()));
    assert_eq!(r.header("X-Streamwarden-Signature"), Some(expected.as_str()));
}

#[tokio::test]
async fn webhook_without_a_secret_is_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(dir.path());
    let hook = Capture::start().await;
    h.channel("webhook", json!({"url": hook.url()}), json!({"events": ["server_up"]})).await;
    h.publish(Event::new(EventKind::ServerUp, "answers again").server(2, "Jellyfin")).await;
    h.deliver().await;
    let r = &hook.requests()[0];
    assert_eq!(r.method, "POST");
    assert!(r.header("X-Streamwarden-Signature").is_none());
    assert_eq!(r.json()["title"], "Jellyfin is back up");
    assert_eq!(r.json()["user"], serde_json::Value::Null);
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
