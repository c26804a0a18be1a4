//! The [`Channel`] trait every channel implements, the typed [`ChannelConfig`], and how raw
//! input (API JSON or a form) becomes one, with errors that name the field.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::message::Message;
use super::{discord, email, ntfy, pushover, webhook};
use crate::error::{AppError, AppResult};

/// The kinds of channel. Names are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Email,
    Pushover,
    Ntfy,
    Discord,
    Webhook,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Email,
        ChannelKind::Pushover,
        ChannelKind::Ntfy,
        ChannelKind::Discord,
        ChannelKind::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Pushover => "pushover",
            ChannelKind::Ntfy => "ntfy",
            ChannelKind::Discord => "discord",
            ChannelKind::Webhook => "webhook",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ChannelKind::Email => "Email",
            ChannelKind::Pushover => "Pushover",
            ChannelKind::Ntfy => "ntfy",
            ChannelKind::Discord => "Discord",
            ChannelKind::Webhook => "Webhook",
        }
    }

    /// Config fields that are secrets: sealed at rest, never sent back, kept when an edit
    /// leaves them empty.
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            ChannelKind::Email => &["password"],
            ChannelKind::Pushover => &["token"],
            ChannelKind::Ntfy => &["token", "password"],
            // The webhook URL carries its token.
            ChannelKind::Discord => &["webhook_url"],
            ChannelKind::Webhook => &["secret", "headers"],
        }
    }

    /// Every config field of this kind, in form order.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ChannelKind::Email => email::FIELDS,
            ChannelKind::Pushover => pushover::FIELDS,
            ChannelKind::Ntfy => ntfy::FIELDS,
            ChannelKind::Discord => discord::FIELDS,
            ChannelKind::Webhook => webhook::FIELDS,
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("{s:?} is not a channel kind (email, pushover, ntfy, discord or webhook)")
        })
    }
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying: the service is unreachable, slow, overloaded (5xx) or rate limiting
    /// (429). `retry_after`: when the service said to come back.
    Transient { message: String, retry_after: Option<Duration> },
    /// Will fail again until the configuration changes (rejected credentials, a 4xx).
    Permanent { message: String },
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        SendError::Transient { message: message.into(), retry_after: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        SendError::Permanent { message: message.into() }
    }

    pub fn message(&self) -> &str {
        match self {
            SendError::Transient { message, .. } | SendError::Permanent { message } => message,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A successful send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// The service said its rate limit is used up: send nothing more for this long.
    pub hold: Option<Duration>,
}

/// What a send knows besides the message.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The shared HTTP client (timeouts set, no redirects).
    pub http: &'a reqwest::Client,
    /// The message's id, stable across retries (webhook `id`, email `Message-ID`).
    pub uid: &'a str,
    /// The event the message tells of (the webhook payload carries all of it).
    pub event: &'a super::Event,
}

/// One way of telling the owner. Each config type is its channel.
pub trait Channel {
    /// Sends `message`; every network step has a timeout.
    fn send(
        &self,
        delivery: &Delivery<'_>,
        message: &Message,
    ) -> impl Future<Output = Result<Sent, SendError>> + Send;
}

/// A channel's typed configuration, secrets included.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelConfig {
    Email(email::EmailConfig),
    Pushover(pushover::PushoverConfig),
    Ntfy(ntfy::NtfyConfig),
    Discord(discord::DiscordConfig),
    Webhook(webhook::WebhookConfig),
}

impl ChannelConfig {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelConfig::Email(_) => ChannelKind::Email,
            ChannelConfig::Pushover(_) => ChannelKind::Pushover,
            ChannelConfig::Ntfy(_) => ChannelKind::Ntfy,
            ChannelConfig::Discord(_) => ChannelKind::Discord,
            ChannelConfig::Webhook(_) => ChannelKind::Webhook,
        }
    }

    /// Parses and validates raw input; the error names the first bad field.
    pub fn parse(kind: ChannelKind, input: Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(input);
        let config = match kind {
            ChannelKind::Email => ChannelConfig::Email(email::EmailConfig::parse(&mut f)?),
            ChannelKind::Pushover => {
                ChannelConfig::Pushover(pushover::PushoverConfig::parse(&mut f)?)
            }
            ChannelKind::Ntfy => ChannelConfig::Ntfy(ntfy::NtfyConfig::parse(&mut f)?),
            ChannelKind::Discord => ChannelConfig::Discord(discord::DiscordConfig::parse(&mut f)?),
            ChannelKind::Webhook => ChannelConfig::Webhook(webhook::WebhookConfig::parse(&mut f)?),
        };
        f.finish(kind)?;
        Ok(config)
    }

    /// The whole config as JSON, secrets included (never shown to anyone: see [`Self::split`]).
    fn to_json(&self) -> Map<String, Value> {
        let value = match self {
            ChannelConfig::Email(c) => serde_json::to_value(c),
            ChannelConfig::Pushover(c) => serde_json::to_value(c),
            ChannelConfig::Ntfy(c) => serde_json::to_value(c),
            ChannelConfig::Discord(c) => serde_json::to_value(c),
            ChannelConfig::Webhook(c) => serde_json::to_value(c),
        };
        match value {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// The public part (safe to store in clear and to show) and the secrets.
    pub fn split(&self) -> (Map<String, Value>, Map<String, Value>) {
        let mut public = self.to_json();
        let mut secrets = Map::new();
        for field in self.kind().secret_fields() {
            if let Some(value) = public.remove(*field).filter(|v| !v.is_null()) {
                secrets.insert((*field).to_owned(), value);
            }
        }
        public.retain(|_, v| !v.is_null());
        (public, secrets)
    }

    /// Joins a stored public part and secrets back into a config.
    pub fn join(
        kind: ChannelKind,
        mut public: Map<String, Value>,
        secrets: Map<String, Value>,
    ) -> AppResult<Self> {
        public.extend(secrets);
        ChannelConfig::parse(kind, public).map_err(|e| {
            AppError::internal(format!("a stored {kind} channel does not load"), e.to_string())
        })
    }

    /// The raw config an edit asks for: `input` over the stored config (public part and
    /// secrets). A field given as `null` or an empty string is removed, except that a secret
    /// left empty keeps its stored value (a form never shows it); a secret named in `clear`
    /// is removed.
    pub fn merge(
        kind: ChannelKind,
        stored_public: &Map<String, Value>,
        stored_secrets: &Map<String, Value>,
        input: Map<String, Value>,
        clear: &[String],
    ) -> Map<String, Value> {
        let secret = |k: &str| kind.secret_fields().contains(&k);
        let mut merged = stored_public.clone();
        for (key, value) in stored_secrets {
            merged.insert(key.clone(), value.clone());
        }
        for (key, value) in input {
            let empty = matches!(&value, Value::String(s) if s.trim().is_empty());
            if secret(&key) && empty {
                continue;
            }
            if value.is_null() || empty {
                merged.remove(&key);
            } else {
                merged.insert(key, value);
            }
        }
        for key in clear {
            if secret(key) {
                merged.remove(key);
            }
        }
        merged
    }

    pub async fn send(
        &self,
        delivery: &Delivery<'_>,
        message: &Message,
    ) -> Result<Sent, SendError> {
        match self {
            ChannelConfig::Email(c) => c.send(delivery, message).await,
            ChannelConfig::Pushover(c) => c.send(delivery, message).await,
            ChannelConfig::Ntfy(c) => c.send(delivery, message).await,
            ChannelConfig::Discord(c) => c.send(delivery, message).await,
            ChannelConfig::Webhook(c) => c.send(delivery, message).await,
        }
    }
}

/// Reads typed values out of raw input, naming the field in every error. Accepts what the
/// API sends (JSON types) and what a form sends (strings) alike; empty strings are absent.
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Self { map }
    }

    /// Whether `key` was given at all (even empty).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        match self.map.remove(key)? {
            Value::Null => None,
            Value::String(s) if s.trim().is_empty() => None,
            other => Some(other),
        }
    }

    /// A trimmed string.
    pub fn string(&mut self, key: &str) -> AppResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(AppError::validation(key, "must be text")),
        }
    }

    /// A string kept exactly as given (passwords, tokens, certificates).
    pub fn raw_string(&mut self, key: &str) -> AppResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(AppError::validation(key, "must be text")),
        }
    }

    pub fn required_string(&mut self, key: &str, what: &str) -> AppResult<String> {
        self.string(key)?.ok_or_else(|| AppError::validation(key, format!("enter {what}")))
    }

    /// An integer within `range`.
    pub fn int(
        &mut self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> AppResult<Option<i64>> {
        let bad = || {
            AppError::validation(
                key,
                format!("must be a whole number from {} to {}", range.start(), range.end()),
            )
        };
        let n = match self.take(key) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(bad)?,
            Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| bad())?,
            Some(_) => return Err(bad()),
        };
        if range.contains(&n) { Ok(Some(n)) } else { Err(bad()) }
    }

    pub fn bool(&mut self, key: &str) -> AppResult<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => match s.trim() {
                "true" | "on" | "1" | "yes" => Ok(Some(true)),
                "false" | "off" | "0" | "no" => Ok(Some(false)),
                _ => Err(AppError::validation(key, "must be true or false")),
            },
            Some(_) => Err(AppError::validation(key, "must be true or false")),
        }
    }

    /// A list: a JSON array of strings, or text with one item per line or comma.
    pub fn list(&mut self, key: &str) -> AppResult<Vec<String>> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    _ => Err(AppError::validation(key, "must be a list of text")),
                })
                .filter(|r| r.as_ref().map_or(true, |s| !s.is_empty()))
                .collect(),
            Some(Value::String(s)) => Ok(s
                .split(['\n', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()),
            Some(_) => Err(AppError::validation(key, "must be a list of text")),
        }
    }

    /// Name-value pairs: a JSON object of strings, or text with one `Name: value` per line.
    pub fn pairs(&mut self, key: &str) -> AppResult<BTreeMap<String, String>> {
        match self.take(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.trim().to_owned(), s)),
                    _ => Err(AppError::validation(key, format!("the value of {k} must be text"))),
                })
                .collect(),
            Some(Value::String(s)) => s
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|line| {
                    line.split_once(':')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .ok_or_else(|| {
                            AppError::validation(
                                key,
                                format!("write one \"Name: value\" per line (line {line:?} has no colon)"),
                            )
                        })
                })
                .collect(),
            Some(_) => Err(AppError::validation(key, "must be name-value pairs")),
        }
    }

    /// An http(s) URL.
    pub fn url(&mut self, key: &str) -> AppResult<Option<reqwest::Url>> {
        let Some(text) = self.string(key)? else { return Ok(None) };
        let url = reqwest::Url::parse(&text)
            .map_err(|e| AppError::validation(key, format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AppError::validation(key, "must start with http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(AppError::validation(key, "must name a host"));
        }
        Ok(Some(url))
    }

    /// A JSON object.
    pub fn object(&mut self, key: &str) -> AppResult<Option<Map<String, Value>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(AppError::validation(key, "must be an object")),
        }
    }

    /// Fails on any field left over, listing the `known` ones.
    pub fn finish_known(self, known: &[&str]) -> AppResult<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => Err(AppError::validation(
                key.clone(),
                format!("is not a known field (known: {})", known.join(", ")),
            )),
        }
    }

    /// Fails on any field left over: a typo must not be silently ignored.
    pub fn finish(self, kind: ChannelKind) -> AppResult<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => Err(AppError::validation(
                key.clone(),
                format!(
                    "is not a setting of a {} channel (known: {})",
                    kind.label(),
                    kind.fields().join(", ")
                ),
            )),
        }
    }
}

/// A PEM bundle of CA certificates given to trust in addition to the system's.
pub fn check_pem_certificates(key: &str, pem: &str) -> AppResult<()> {
    let count = pem.matches("-----BEGIN CERTIFICATE-----").count();
    if count == 0 || count != pem.matches("-----END CERTIFICATE-----").count() {
        return Err(AppError::validation(
            key,
            "paste one or more PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
        ));
    }
    reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| AppError::validation(key, format!("is not a valid PEM certificate: {e}")))?;
    // Parsing PEM only decodes base64; building a trust store checks that each is a usable
    // certificate.
    let cert = lettre::transport::smtp::client::Certificate::from_pem(pem.as_bytes())
        .map_err(|e| AppError::validation(key, format!("is not a valid PEM certificate: {e}")))?;
    lettre::transport::smtp::client::TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(cert)
        .build_rustls()
        .map_err(|e| AppError::validation(key, format!("is not a usable CA certificate: {e}")))?;
    Ok(())
}

/// A priority for each severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priorities {
    #[serde(rename = "priority_low")]
    pub low: i64,
    #[serde(rename = "priority_warning")]
    pub warning: i64,
    #[serde(rename = "priority_high")]
    pub high: i64,
}

impl Priorities {
    pub fn for_severity(self, severity: super::Severity) -> i64 {
        match severity {
            super::Severity::Low => self.low,
            super::Severity::Warning => self.warning,
            super::Severity::High => self.high,
        }
    }

    /// Reads `priority_low`, `priority_warning` and `priority_high`, each in `range`.
    pub fn parse(
        f: &mut Fields,
        defaults: Priorities,
        range: std::ops::RangeInclusive<i64>,
    ) -> AppResult<Self> {
        Ok(Self {
            low: f.int("priority_low", range.clone())?.unwrap_or(defaults.low),
            warning: f.int("priority_warning", range.clone())?.unwrap_or(defaults.warning),
            high: f.int("priority_high", range)?.unwrap_or(defaults.high),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn fields_accept_json_and_form_strings_alike() {
        let mut f = Fields::new(map(json!({
            "a": " x ", "b": "", "n": "587", "m": 465, "t": "on", "l": "a@x, b@y\nc@z",
            "h": "Authorization: Bearer 1\nX-A: b:c", "arr": ["p", " ", "q"]
        })));
        assert_eq!(f.string("a").unwrap().as_deref(), Some("x"));
        assert_eq!(f.string("b").unwrap(), None, "empty is absent");
        assert_eq!(f.int("n", 1..=65535).unwrap(), Some(587));
        assert_eq!(f.int("m", 1..=65535).unwrap(), Some(465));
        assert_eq!(f.bool("t").unwrap(), Some(true));
        assert_eq!(f.list("l").unwrap(), ["a@x", "b@y", "c@z"]);
        assert_eq!(f.list("arr").unwrap(), ["p", "q"]);
        let h = f.pairs("h").unwrap();
        assert_eq!(h["Authorization"], "Bearer 1");
        assert_eq!(h["X-A"], "b:c");
        f.finish(ChannelKind::Ntfy).unwrap();
    }

    #[test]
    fn field_errors_name_the_field() {
        let mut f = Fields::new(map(json!({"port": "70000", "x": [1]})));
        let err = f.int("port", 1..=65535).unwrap_err();
        assert_eq!(err.to_string(), "port: must be a whole number from 1 to 65535");
        let f = Fields::new(map(json!({"hots": "x"})));
        let err = f.finish(ChannelKind::Email).unwrap_err();
        assert!(err.to_string().starts_with("hots: is not a setting of a Email channel"), "{err}");
        let mut f = Fields::new(map(json!({"u": "ftp://x"})));
        assert_eq!(f.url("u").unwrap_err().to_string(), "u: must start with http:// or https://");
    }

    #[test]
    fn secrets_split_off_and_merge_back() {
        let config = ChannelConfig::parse(
            ChannelKind::Ntfy,
            map(json!({"server_url": "http://ntfy.lan", "topic": "alerts", "token": "tk_secret"})),
        )
        .unwrap();
        let (public, secrets) = config.split();
        assert!(!Value::Object(public.clone()).to_string().contains("tk_secret"));
        assert_eq!(secrets["token"], "tk_secret");
        let back = ChannelConfig::join(ChannelKind::Ntfy, public.clone(), secrets.clone()).unwrap();
        assert_eq!(back, config);

        // An edit that leaves the token empty keeps it; `clear` removes it; other fields
        // given empty are removed, absent ones kept.
        let input = map(json!({"token": "", "tags": "tv", "server_url": ""}));
        let kept = ChannelConfig::merge(ChannelKind::Ntfy, &public, &secrets, input.clone(), &[]);
        assert_eq!(kept["token"], "tk_secret");
        assert_eq!(kept["tags"], "tv");
        assert_eq!(kept["topic"], "alerts");
        assert!(!kept.contains_key("server_url"));
        let cleared =
            ChannelConfig::merge(ChannelKind::Ntfy, &public, &secrets, input, &["token".into()]);
        let cleared = ChannelConfig::parse(ChannelKind::Ntfy, cleared).unwrap();
        assert!(cleared.split().1.is_empty());
        // The API's null removes a secret too.
        let nulled = ChannelConfig::merge(
            ChannelKind::Ntfy,
            &public,
            &secrets,
            map(json!({"token": null})),
            &[],
        );
        assert!(!nulled.contains_key("token"));
    }
}
