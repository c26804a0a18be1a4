//! Discord: one embed per message through a channel webhook, coloured by severity, within
//! Discord's limits, and never pinging anyone (`allowed_mentions` parses nothing).

use std::time::Duration;

use reqwest::Url;
use serde::Serialize;
use serde_json::json;

use super::channel::{Channel, Delivery, Fields, SendError, Sent};
use super::http;
use super::message::{Message, truncate_chars};
use crate::error::{AppError, AppResult};
use crate::rules::model::Severity;

pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_FIELDS: usize = 25;
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
pub const MAX_FOOTER: usize = 2048;
pub const MAX_USERNAME: usize = 80;
/// Characters across all of a message's embeds.
pub const MAX_EMBED_TOTAL: usize = 6000;
pub const FOOTER: &str = "Streamwarden";

pub const FIELDS: &[&str] = &["webhook_url", "username"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscordConfig {
    /// `https://discord.com/api/webhooks/{id}/{token}` (a secret: it carries the token).
    pub webhook_url: Url,
    /// The name the messages appear under (default: the webhook's own name).
    pub username: Option<String>,
}

/// The embed colour of a severity, as the decimal integer Discord wants.
pub fn colour(severity: Severity) -> u32 {
    match severity {
        Severity::Low => 0x0034_98db,
        Severity::Warning => 0x00f3_9c12,
        Severity::High => 0x00e7_4c3c,
    }
}

impl DiscordConfig {
    pub fn parse(f: &mut Fields) -> AppResult<Self> {
        let webhook_url = f.url("webhook_url")?.ok_or_else(|| {
            AppError::validation(
                "webhook_url",
                "paste the webhook URL from Discord (Server Settings → Integrations → Webhooks)",
            )
        })?;
        let username = f.string("username")?;
        if let Some(name) = &username {
            if name.chars().count() > MAX_USERNAME {
                return Err(AppError::validation(
                    "username",
                    format!("at most {MAX_USERNAME} characters"),
                ));
            }
            if name.to_lowercase().contains("discord") {
                return Err(AppError::validation(
                    "username",
                    "Discord refuses names containing \"discord\"",
                ));
            }
        }
        Ok(Self { webhook_url, username })
    }

    /// The URL posted to: the webhook with `wait=true`, so that Discord answers with errors
    /// instead of accepting and dropping; a `thread_id` in the URL is kept.
    pub fn post_url(&self) -> Url {
        let mut url = self.webhook_url.clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "wait")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept).append_pair("wait", "true");
        url
    }

    /// The JSON body for `message`.
    pub fn body(&self, message: &Message) -> serde_json::Value {
        let title = markdown_within(&message.title, MAX_TITLE);
        let footer = FOOTER.to_owned();
        let mut budget = MAX_EMBED_TOTAL
            .saturating_sub(title.chars().count())
            .saturating_sub(footer.chars().count());
        let mut fields = Vec::new();
        for (name, value) in message.facts.iter().take(MAX_FIELDS) {
            // The label is ours; the value may hold a user's or a server's name.
            let name = truncate_chars(name, MAX_FIELD_NAME);
            let value = markdown_within(value, MAX_FIELD_VALUE);
            let cost = name.chars().count() + value.chars().count();
            if cost > budget {
                break;
            }
            budget -= cost;
            fields.push(json!({ "name": name, "value": value, "inline": true }));
        }
        let description = markdown_within(&message.body, MAX_DESCRIPTION.min(budget));
        let mut embed = json!({
            "title": title,
            "description": description,
            "color": colour(message.severity),
            "fields": fields,
            "footer": { "text": footer },
            "timestamp": message.at_rfc3339(),
        });
        if let Some(url) = &message.url {
            embed["url"] = json!(url);
        }
        let mut body = json!({
            "embeds": [embed],
            // No @everyone, @here, role or user pings, whatever a user or rule is called.
            "allowed_mentions": { "parse": [] },
        });
        if let Some(username) = &self.username {
            body["username"] = json!(username);
        }
        body
    }
}

/// Discord renders markdown in embed titles, descriptions and field values: these take a
/// backslash so a name like `**admin**`, `||x||` or `[login](https://evil)` shows as typed.
const MARKDOWN: &[char] =
    &['\\', '*', '_', '~', '`', '|', '>', '#', '-', '[', ']', '(', ')', '<', ':'];

/// `text` with Discord's markdown escaped, at most `max` characters (cut between escapes,
/// never inside one, ending with `…` when cut).
fn markdown_within(text: &str, max: usize) -> String {
    let escaped = |c: char| if MARKDOWN.contains(&c) { 2 } else { 1 };
    let whole: usize = text.chars().map(escaped).sum();
    let budget = if whole <= max { max } else { max.saturating_sub(1) };
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        used += escaped(c);
        if used > budget {
            out.push('…');
            break;
        }
        if MARKDOWN.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Discord's errors: `{"message": "Invalid Webhook Token", "code": 50027}`.
fn detail(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = value.get("message")?.as_str()?;
    Some(match value.get("code").and_then(serde_json::Value::as_i64) {
        Some(code) if code != 0 => format!("{message} (code {code})"),
        _ => message.to_owned(),
    })
}

/// After a success: Discord says when its bucket is empty and when it refills.
fn rate_limit_hold(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-ratelimit-remaining")?.trim() != "0" {
        return None;
    }
    let seconds: f64 = header("x-ratelimit-reset-after")?.trim().parse().ok()?;
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

impl Channel for DiscordConfig {
    async fn send(&self, delivery: &Delivery<'_>, message: &Message) -> Result<Sent, SendError> {
        let request = delivery.http.post(self.post_url()).json(&self.body(message));
        let answer = http::execute("Discord", request).await?;
        match http::check("Discord", &answer, detail) {
            Ok(()) => Ok(Sent { hold: rate_limit_hold(&answer.headers) }),
            // A 429 body carries a more precise `retry_after` (seconds) than the header.
            Err(SendError::Transient { message, retry_after }) if answer.status.as_u16() == 429 => {
                let precise = serde_json::from_str::<serde_json::Value>(&answer.body)
                    .ok()
                    .and_then(|v| v.get("retry_after")?.as_f64())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s.min(http::MAX_RETRY_AFTER.as_secs_f64())));
                Err(SendError::Transient { message, retry_after: retry_after.max(precise) })
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::notify::{Event, EventKind, message};

    fn config(v: Value) -> AppResult<DiscordConfig> {
        let Value::Object(map) = v else { panic!() };
        DiscordConfig::parse(&mut Fields::new(map))
    }

    #[test]
    fn url_keeps_thread_and_waits() {
        let c =
            config(json!({"webhook_url": "https://discord.com/api/webhooks/1/abc?thread_id=9"}))
                .unwrap();
        assert_eq!(
            c.post_url().as_str(),
            "https://discord.com/api/webhooks/1/abc?thread_id=9&wait=true"
        );
        assert!(
            matches!(config(json!({})), Err(AppError::Validation { field, .. }) if field == "webhook_url")
        );
        assert!(
            matches!(config(json!({"webhook_url": "https://x/y", "username": "My Discord bot"})), Err(AppError::Validation { field, .. }) if field == "username")
        );
    }

    #[test]
    fn embed_within_limits_without_mentions() {
        let c = config(json!({"webhook_url": "https://discord.com/api/webhooks/1/abc"})).unwrap();
        let event = Event::new(EventKind::Violation, "x".repeat(10_000))
            .rule(1, "R".repeat(300))
            .user(2, "@everyone")
            .severity(Severity::High);
        let body = c.body(&message::render(&event, &message::Links::default(), false));
        let embed = &body["embeds"][0];
        assert_eq!(embed["color"], 0x00e7_4c3c);
        assert_eq!(embed["title"].as_str().unwrap().chars().count(), MAX_TITLE);
        let total: usize = [&embed["title"], &embed["description"], &embed["footer"]["text"]]
            .iter()
            .map(|v| v.as_str().unwrap().chars().count())
            .sum::<usize>()
            + embed["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    f["name"].as_str().unwrap().chars().count()
                        + f["value"].as_str().unwrap().chars().count()
                })
                .sum::<usize>();
        assert!(total <= MAX_EMBED_TOTAL, "{total}");
        assert!(embed["description"].as_str().unwrap().chars().count() <= MAX_DESCRIPTION);
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    }

    #[test]
    fn names_show_as_typed_not_as_markdown() {
        let c = config(json!({"webhook_url": "https://discord.com/api/webhooks/1/abc"})).unwrap();
        let event = Event::new(EventKind::Violation, "played from [here](https://evil.example)")
            .rule(1, "Too ~~many~~ streams")
            .user(2, "**admin**_x_")
            .severity(Severity::High);
        let body = c.body(&message::render(&event, &message::Links::default(), false));
        let embed = &body["embeds"][0];
        let user =
            embed["fields"].as_array().unwrap().iter().find(|f| f["name"] == "User").unwrap();
        assert_eq!(user["value"], r"\*\*admin\*\*\_x\_");
        assert!(embed["title"].as_str().unwrap().contains(r"\*\*admin\*\*"), "{embed}");
        assert!(
            embed["description"].as_str().unwrap().contains(r"\[here\]\(https\://evil.example\)"),
            "{embed}"
        );
        // Cut to size between escapes, never inside one.
        assert_eq!(markdown_within("ab*cd", 5), "ab\\*…");
        assert_eq!(markdown_within("a*", 3), "a\\*");
        assert_eq!(markdown_within("**", 3), "\\*…");
    }

    #[test]
    fn rate_limit_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset-after", "1.5".parse().unwrap());
        assert_eq!(rate_limit_hold(&h), Some(Duration::from_millis(1500)));
        h.insert("x-ratelimit-remaining", "3".parse().unwrap());
        assert_eq!(rate_limit_hold(&h), None);
    }
}
