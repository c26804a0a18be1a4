//! Pushover: a JSON `POST` to `https://api.pushover.net/1/messages.json` with the
//! application token and the user (or group) key. Severity maps to Pushover's priority −2..2;
//! emergency (2) repeats every `retry` seconds until acknowledged or `expire` passes, and is
//! used only when chosen for a severity.

use reqwest::Url;
use serde::Serialize;
use serde_json::json;

use super::channel::{Channel, Delivery, Fields, Priorities, SendError, Sent};
use super::http;
use super::message::{Message, truncate_chars};
use crate::error::{AppError, AppResult};

pub const DEFAULT_API_URL: &str = "https://api.pushover.net/1/messages.json";
pub const MAX_TITLE_CHARS: usize = 250;
pub const MAX_MESSAGE_CHARS: usize = 1024;
pub const MAX_URL_CHARS: usize = 512;
pub const MAX_URL_TITLE_CHARS: usize = 100;
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = -2..=2;
pub const EMERGENCY: i64 = 2;
pub const DEFAULT_PRIORITIES: Priorities = Priorities { low: -1, warning: 0, high: 1 };
/// Seconds between repeats of an emergency message (Pushover's minimum is 30).
pub const DEFAULT_RETRY: i64 = 60;
/// Seconds an emergency message repeats (Pushover's maximum is 10800, three hours).
pub const DEFAULT_EXPIRE: i64 = 3600;

pub const FIELDS: &[&str] = &[
    "token",
    "user",
    "device",
    "sound",
    "priority_low",
    "priority_warning",
    "priority_high",
    "retry",
    "expire",
    "api_url",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushoverConfig {
    /// The application's API token.
    pub token: String,
    /// The user or group key.
    pub user: String,
    /// Only this device of the user (comma-separated names), or all.
    pub device: Option<String>,
    pub sound: Option<String>,
    #[serde(flatten)]
    pub priorities: Priorities,
    /// For emergency priority: seconds between repeats.
    pub retry: i64,
    /// For emergency priority: seconds until the repeats stop.
    pub expire: i64,
    /// The messages endpoint; change only for a gateway or tests.
    pub api_url: Url,
}

/// Pushover keys are 30 letters and digits.
fn check_key(key: &str, value: &str, what: &str) -> AppResult<()> {
    if value.len() == 30 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(AppError::validation(key, format!("{what} is 30 letters and digits")))
    }
}

impl PushoverConfig {
    pub fn parse(f: &mut Fields) -> AppResult<Self> {
        let token = f
            .raw_string("token")?
            .map(|t| t.trim().to_owned())
            .ok_or_else(|| AppError::validation("token", "enter the application's API token"))?;
        check_key("token", &token, "an application token")?;
        let user = f.required_string("user", "your user key or a group key")?;
        check_key("user", &user, "a user or group key")?;
        let device = f.string("device")?;
        let sound = f.string("sound")?;
        if let Some(sound) = &sound
            && !sound.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(AppError::validation("sound", "is a sound's name, e.g. siren or pushover"));
        }
        let priorities = Priorities::parse(f, DEFAULT_PRIORITIES, PRIORITY_RANGE)?;
        let retry = f.int("retry", 30..=10_800)?.unwrap_or(DEFAULT_RETRY);
        let expire = f.int("expire", 30..=10_800)?.unwrap_or(DEFAULT_EXPIRE);
        let api_url =
            f.url("api_url")?.unwrap_or_else(|| Url::parse(DEFAULT_API_URL).expect("valid"));
        Ok(Self { token, user, device, sound, priorities, retry, expire, api_url })
    }

    /// The JSON body for `message`.
    pub fn body(&self, message: &Message) -> serde_json::Value {
        let priority = self.priorities.for_severity(message.severity);
        let mut body = json!({
            "token": self.token,
            "user": self.user,
            "title": truncate_chars(&message.title, MAX_TITLE_CHARS),
            "message": truncate_chars(&message.text(), MAX_MESSAGE_CHARS),
            "priority": priority,
            "timestamp": message.at / 1000,
        });
        if priority == EMERGENCY {
            body["retry"] = json!(self.retry);
            body["expire"] = json!(self.expire);
        }
        if let Some(url) = message.url.as_deref().filter(|u| u.chars().count() <= MAX_URL_CHARS) {
            body["url"] = json!(url);
            body["url_title"] = json!(truncate_chars("Open in Streamwarden", MAX_URL_TITLE_CHARS));
        }
        if let Some(device) = &self.device {
            body["device"] = json!(device);
        }
        if let Some(sound) = &self.sound {
            body["sound"] = json!(sound);
        }
        body
    }
}

/// Pushover's errors: `{"user":"invalid","errors":["user identifier is invalid"],"status":0}`.
fn detail(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let errors: Vec<&str> =
        value.get("errors")?.as_array()?.iter().filter_map(|e| e.as_str()).collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

impl Channel for PushoverConfig {
    async fn send(&self, delivery: &Delivery<'_>, message: &Message) -> Result<Sent, SendError> {
        let request = delivery.http.post(self.api_url.clone()).json(&self.body(message));
        let answer = http::execute("Pushover", request).await?;
        http::check("Pushover", &answer, detail)?;
        Ok(Sent::default())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::notify::{Event, EventKind, Severity, message};

    const TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
    const USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";

    fn parse(v: Value) -> AppResult<PushoverConfig> {
        let Value::Object(map) = v else { panic!() };
        let mut f = Fields::new(map);
        let c = PushoverConfig::parse(&mut f)?;
        f.finish(crate::notify::ChannelKind::Pushover)?;
        Ok(c)
    }

    #[test]
    fn validation_names_fields() {
        let cases = [
            (json!({"user": USER}), "token"),
            (json!({"token": "short", "user": USER}), "token"),
            (json!({"token": TOKEN}), "user"),
            (json!({"token": TOKEN, "user": USER, "priority_high": 3}), "priority_high"),
            (json!({"token": TOKEN, "user": USER, "retry": 10}), "retry"),
            (json!({"token": TOKEN, "user": USER, "expire": 20000}), "expire"),
            (json!({"token": TOKEN, "user": USER, "sound": "a b"}), "sound"),
            (json!({"token": TOKEN, "user": USER, "api_url": "nope"}), "api_url"),
        ];
        for (input, field) in cases {
            match parse(input.clone()) {
                Err(AppError::Validation { field: f, .. }) => assert_eq!(f, field, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn priorities_and_emergency() {
        let c = parse(json!({"token": TOKEN, "user": USER, "sound": "siren"})).unwrap();
        let event =
            Event::new(EventKind::Violation, "x").rule(1, "r").user(1, "u").at(1_700_000_000_123);
        let body = |c: &PushoverConfig, s| {
            c.body(&message::render(&event.clone().severity(s), &message::Links::default(), false))
        };
        assert_eq!(body(&c, Severity::Low)["priority"], -1);
        assert_eq!(body(&c, Severity::Warning)["priority"], 0);
        let high = body(&c, Severity::High);
        assert_eq!(high["priority"], 1);
        assert_eq!(high["timestamp"], 1_700_000_000);
        assert_eq!(high["sound"], "siren");
        assert!(high.get("retry").is_none(), "retry only for emergency");
        let c = parse(json!({"token": TOKEN, "user": USER, "priority_high": "2", "retry": "30", "expire": 10800})).unwrap();
        let high = body(&c, Severity::High);
        assert_eq!(
            (high["priority"].clone(), high["retry"].clone(), high["expire"].clone()),
            (json!(2), json!(30), json!(10800))
        );
    }
}
