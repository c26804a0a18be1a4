//! The add/edit form of a notification channel: one flat form for every kind (each kind's
//! page shows its own fields), turned into the input `notify` validates, and back.

use std::collections::BTreeMap;

use askama::Template;
use rocket::form::FromForm;
use serde_json::{Map, Value};

use crate::error::AppError;
use crate::notify::store::ChannelView;
use crate::notify::{ChannelKind, EventKind, NotifierId, Severity, ntfy, pushover};
use crate::web::layout::Layout;

/// The add/edit form: every field any channel kind has; each kind's form shows its own.
#[derive(Debug, Default, FromForm)]
pub struct ChannelForm {
    pub(super) name: Option<String>,
    pub(super) enabled: bool,
    pub(super) events: Vec<String>,
    pub(super) min_severity: Option<String>,
    pub(super) user_cooldown_minutes: Option<String>,
    /// Secret fields whose stored value is to be removed.
    pub(super) clear: Vec<String>,
    pub(super) host: Option<String>,
    pub(super) port: Option<String>,
    pub(super) security: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) from: Option<String>,
    pub(super) from_name: Option<String>,
    pub(super) to: Option<String>,
    pub(super) ca_cert: Option<String>,
    pub(super) token: Option<String>,
    pub(super) user: Option<String>,
    pub(super) device: Option<String>,
    pub(super) sound: Option<String>,
    pub(super) priority_low: Option<String>,
    pub(super) priority_warning: Option<String>,
    pub(super) priority_high: Option<String>,
    pub(super) retry: Option<String>,
    pub(super) expire: Option<String>,
    pub(super) api_url: Option<String>,
    pub(super) server_url: Option<String>,
    pub(super) topic: Option<String>,
    pub(super) tags: Option<String>,
    pub(super) webhook_url: Option<String>,
    pub(super) url: Option<String>,
    pub(super) method: Option<String>,
    pub(super) headers: Option<String>,
    pub(super) secret: Option<String>,
}

impl ChannelForm {
    fn config_value(&self, key: &str) -> Option<&str> {
        let value = match key {
            "host" => &self.host,
            "port" => &self.port,
            "security" => &self.security,
            "username" => &self.username,
            "password" => &self.password,
            "from" => &self.from,
            "from_name" => &self.from_name,
            "to" => &self.to,
            "ca_cert" => &self.ca_cert,
            "token" => &self.token,
            "user" => &self.user,
            "device" => &self.device,
            "sound" => &self.sound,
            "priority_low" => &self.priority_low,
            "priority_warning" => &self.priority_warning,
            "priority_high" => &self.priority_high,
            "retry" => &self.retry,
            "expire" => &self.expire,
            "api_url" => &self.api_url,
            "server_url" => &self.server_url,
            "topic" => &self.topic,
            "tags" => &self.tags,
            "webhook_url" => &self.webhook_url,
            "url" => &self.url,
            "method" => &self.method,
            "headers" => &self.headers,
            "secret" => &self.secret,
            _ => &None,
        };
        value.as_deref()
    }

    /// The input `notify` takes, as the API would send it. Checkboxes that are absent mean
    /// "off", so `enabled` and `events` are always given.
    pub(super) fn to_input(&self, kind: ChannelKind, creating: bool) -> Map<String, Value> {
        let mut input = Map::new();
        if creating {
            input.insert("kind".into(), kind.as_str().into());
        }
        let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        input.insert("name".into(), text(&self.name));
        input.insert("enabled".into(), self.enabled.into());
        input.insert("events".into(), self.events.clone().into());
        input.insert("min_severity".into(), text(&self.min_severity));
        input.insert("user_cooldown_minutes".into(), text(&self.user_cooldown_minutes));
        input.insert("clear".into(), self.clear.clone().into());
        let config: Map<String, Value> = kind
            .fields()
            .iter()
            .filter_map(|key| {
                self.config_value(key).map(|v| ((*key).to_owned(), Value::String(v.to_owned())))
            })
            .collect();
        input.insert("config".into(), Value::Object(config));
        input
    }

    /// What the user typed, to show again after an error (never the secrets).
    pub(super) fn values(&self, kind: ChannelKind) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        for (key, value) in [
            ("name", &self.name),
            ("min_severity", &self.min_severity),
            ("user_cooldown_minutes", &self.user_cooldown_minutes),
        ] {
            values.insert(key.to_owned(), value.clone().unwrap_or_default());
        }
        for key in kind.fields() {
            if !kind.secret_fields().contains(key) {
                values.insert(
                    (*key).to_owned(),
                    self.config_value(key).unwrap_or_default().to_owned(),
                );
            }
        }
        values
    }
}

/// The values of a stored channel, as the form shows them.
pub(super) fn stored_values(view: &ChannelView) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    values.insert("name".to_owned(), view.name.clone());
    values.insert("min_severity".to_owned(), view.min_severity.as_str().to_owned());
    values.insert("user_cooldown_minutes".to_owned(), view.user_cooldown_minutes.to_string());
    for (key, value) in &view.config {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => {
                items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
            }
            Value::Null => String::new(),
            other => other.to_string(),
        };
        values.insert(key.clone(), text);
    }
    values
}

#[derive(Template)]
#[template(path = "settings/notifications_form.html")]
pub struct ChannelFormPage {
    pub(super) layout: Layout,
    pub(super) tab: &'static str,
    pub(super) kind: ChannelKind,
    /// `None` while adding.
    pub(super) id: Option<NotifierId>,
    pub(super) values: BTreeMap<String, String>,
    pub(super) enabled: bool,
    pub(super) events: Vec<EventKind>,
    pub(super) secrets_set: Vec<&'static str>,
    pub(super) header_names: Vec<String>,
    /// The field in error (as the form names it) and the message.
    pub(super) error: Option<(String, String)>,
    pub(super) all_events: [EventKind; 7],
    pub(super) severities: [Severity; 3],
    pub(super) public_url_set: bool,
}

impl ChannelFormPage {
    fn v(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    fn invalid(&self, key: &str) -> bool {
        self.error.as_ref().is_some_and(|(field, _)| field == key)
    }

    fn error_message(&self) -> &str {
        self.error.as_ref().map_or("", |(_, m)| m.as_str())
    }

    fn secret_set(&self, key: &str) -> bool {
        self.secrets_set.contains(&key)
    }

    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "askama hands loop items over by reference"
    )]
    fn has_event(&self, kind: &EventKind) -> bool {
        self.events.contains(kind)
    }

    fn action(&self) -> String {
        match self.id {
            Some(id) => format!("{}/settings/notifications/{id}", self.layout.base),
            None => format!("{}/settings/notifications?kind={}", self.layout.base, self.kind),
        }
    }

    /// Options of a priority select: (value, label).
    fn priorities(&self) -> Vec<(i64, &'static str)> {
        match self.kind {
            ChannelKind::Pushover => vec![
                (-2, "−2 lowest: no alert"),
                (-1, "−1 low: quiet"),
                (0, "0 normal"),
                (1, "1 high: bypasses quiet hours"),
                (2, "2 emergency: repeats until acknowledged"),
            ],
            _ => vec![
                (1, "1 min"),
                (2, "2 low"),
                (3, "3 default"),
                (4, "4 high"),
                (5, "5 max (urgent)"),
            ],
        }
    }

    /// The selected priority for a severity's field (stored, typed, or the default).
    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "askama hands loop items over by reference"
    )]
    fn priority_selected(&self, key: &str, value: &i64) -> bool {
        let default = match self.kind {
            ChannelKind::Pushover => pushover::DEFAULT_PRIORITIES,
            _ => ntfy::DEFAULT_PRIORITIES,
        };
        let fallback = match key {
            "priority_low" => default.low,
            "priority_warning" => default.warning,
            _ => default.high,
        };
        self.v(key).parse::<i64>().unwrap_or(fallback) == *value
    }

    /// Whether the field `key` holds `value` (for selects).
    fn is(&self, key: &str, value: &str) -> bool {
        self.v(key) == value
    }
}

/// An error in a form field, named as the form names it (`config.host` is `host`).
pub(super) fn form_error(e: &AppError) -> Option<(String, String)> {
    match e {
        AppError::Validation { field, message } => {
            Some((field.strip_prefix("config.").unwrap_or(field).to_owned(), message.clone()))
        }
        _ => None,
    }
}

/// Form errors name the form's field, not the API's (`host`, not `config.host`).
pub(super) fn plain_field(e: AppError) -> AppError {
    match form_error(&e) {
        Some((field, message)) => AppError::Validation { field, message },
        None => e,
    }
}

pub(super) fn edit_page(
    layout: Layout,
    view: ChannelView,
    public_url_set: bool,
) -> ChannelFormPage {
    ChannelFormPage {
        layout: layout.nav("settings"),
        tab: "notifications",
        kind: view.kind,
        id: Some(view.id),
        values: stored_values(&view),
        enabled: view.enabled,
        events: view.events,
        secrets_set: view.secrets_set,
        header_names: view.header_names,
        error: None,
        all_events: EventKind::ALL,
        severities: Severity::ALL,
        public_url_set,
    }
}
