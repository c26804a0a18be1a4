//! Channels at rest: validation of the input (API JSON or a form, same rules), secrets sealed
//! with the [`SecretBox`], the audit trail. Synchronous, on a connection: the caller picks
//! the reader or the writer (see [`super::Notifier`]).

use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Map, Value};

use super::NotifierId;
use super::channel::{ChannelConfig, ChannelKind, Fields};
use super::event::EventKind;
use super::routing::Route;
use crate::crypto::SecretBox;
use crate::db::audit::{self, NewEntry};
use crate::db::notify::{self as sql, ChannelRow, ChannelWrite, OutboxCounts};
use crate::error::{AppError, AppResult};
use crate::rules::model::Severity;

/// Purpose of the sealed secrets column (see [`SecretBox::seal`]).
const SECRETS_PURPOSE: &str = "notifiers.secrets";
/// Top-level fields of a channel in the API (and the form, flattened).
pub const TOP_FIELDS: &[&str] = &[
    "kind",
    "name",
    "enabled",
    "events",
    "min_severity",
    "user_cooldown_minutes",
    "config",
    "clear",
];
pub const MAX_NAME_CHARS: usize = 80;
/// A day: longer cooldowns hide too much.
pub const MAX_USER_COOLDOWN_MINUTES: i64 = 1440;

/// A channel as people and the API see it: the public config, and which secrets are set.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    pub id: NotifierId,
    pub kind: ChannelKind,
    pub name: String,
    pub enabled: bool,
    pub events: Vec<EventKind>,
    pub min_severity: Severity,
    pub user_cooldown_minutes: i64,
    /// The config without its secrets.
    pub config: Map<String, Value>,
    /// Names of the secret fields that hold a value (the values never leave the server).
    pub secrets_set: Vec<&'static str>,
    /// For webhooks: the names of the stored custom headers (their values are secret).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header_names: Vec<String>,
    /// Unix ms.
    #[serde(skip)]
    pub created_at: i64,
    #[serde(skip)]
    pub updated_at: i64,
}

/// Who made a change, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `user:alice`, `api-key:ci`.
    pub name: String,
    pub ip: Option<String>,
}

/// A stored row, decoded.
struct Decoded {
    kind: ChannelKind,
    events: Vec<EventKind>,
    min_severity: Severity,
    public: Map<String, Value>,
    secrets: Map<String, Value>,
}

fn corrupt(row: &ChannelRow, what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::internal(
        format!("notification channel {} ({}): {what}", row.id, row.name),
        e.to_string(),
    )
}

fn decode(row: &ChannelRow, secrets_box: &SecretBox) -> AppResult<Decoded> {
    let kind: ChannelKind = row.kind.parse().map_err(|e| corrupt(row, "kind", e))?;
    let events: Vec<EventKind> =
        serde_json::from_str(&row.events).map_err(|e| corrupt(row, "events", e))?;
    let min_severity: Severity =
        row.min_severity.parse().map_err(|e| corrupt(row, "minimum severity", e))?;
    let public: Map<String, Value> =
        serde_json::from_str(&row.config).map_err(|e| corrupt(row, "config", e))?;
    let secrets = match &row.secrets_sealed {
        None => Map::new(),
        Some(sealed) => {
            let json = secrets_box
                .open(SECRETS_PURPOSE, sealed)
                .map_err(|e| corrupt(row, "secrets", e))?;
            serde_json::from_str(&json).map_err(|e| corrupt(row, "secrets", e))?
        }
    };
    Ok(Decoded { kind, events, min_severity, public, secrets })
}

fn view(row: &ChannelRow, decoded: Decoded) -> ChannelView {
    let mut secrets_set: Vec<&'static str> = decoded
        .kind
        .secret_fields()
        .iter()
        .copied()
        .filter(|f| decoded.secrets.contains_key(*f))
        .collect();
    secrets_set.sort_unstable();
    let header_names = match decoded.secrets.get("headers") {
        Some(Value::Object(headers)) => headers.keys().cloned().collect(),
        _ => Vec::new(),
    };
    ChannelView {
        id: NotifierId(row.id),
        kind: decoded.kind,
        name: row.name.clone(),
        enabled: row.enabled,
        events: decoded.events,
        min_severity: decoded.min_severity,
        user_cooldown_minutes: row.user_cooldown_minutes,
        config: decoded.public,
        secrets_set,
        header_names,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Every channel, by name.
pub fn list(conn: &Connection, secrets: &SecretBox) -> AppResult<Vec<ChannelView>> {
    sql::list_channels(conn)?.iter().map(|row| Ok(view(row, decode(row, secrets)?))).collect()
}

pub fn get(conn: &Connection, secrets: &SecretBox, id: NotifierId) -> AppResult<ChannelView> {
    let row = find(conn, id)?;
    Ok(view(&row, decode(&row, secrets)?))
}

/// Message counts per channel.
pub fn counts(conn: &Connection) -> AppResult<std::collections::HashMap<NotifierId, OutboxCounts>> {
    Ok(sql::outbox_counts(conn)?.into_iter().map(|(id, c)| (NotifierId(id), c)).collect())
}

/// `NotFound` unless the channel exists.
pub fn ensure_exists(conn: &Connection, id: NotifierId) -> AppResult<()> {
    find(conn, id).map(drop)
}

fn find(conn: &Connection, id: NotifierId) -> AppResult<ChannelRow> {
    sql::get_channel(conn, id.0)?
        .ok_or_else(|| AppError::not_found(format!("notification channel {id}")))
}

/// The channel's name and its full config (secrets included), for sending.
pub fn config(
    conn: &Connection,
    secrets: &SecretBox,
    id: NotifierId,
) -> AppResult<(String, bool, ChannelConfig)> {
    let row = find(conn, id)?;
    let decoded = decode(&row, secrets)?;
    let config = ChannelConfig::join(decoded.kind, decoded.public, decoded.secrets)?;
    Ok((row.name, row.enabled, config))
}

/// What routing needs about every channel; a channel that does not decode is left out (and
/// logged) rather than stopping the others.
pub fn routes(conn: &Connection) -> AppResult<Vec<Route>> {
    let rows = sql::list_channels(conn)?;
    let mut routes = Vec::with_capacity(rows.len());
    for row in rows {
        let events: Result<Vec<EventKind>, _> = serde_json::from_str(&row.events);
        let min: Result<Severity, _> = row.min_severity.parse();
        if let (Ok(events), Ok(min_severity)) = (events, min) {
            routes.push(Route {
                id: NotifierId(row.id),
                enabled: row.enabled,
                events,
                min_severity,
                user_cooldown: std::time::Duration::from_secs(
                    u64::try_from(row.user_cooldown_minutes).unwrap_or(0) * 60,
                ),
            });
        } else {
            tracing::error!(
                channel = row.id,
                "a notification channel's events do not decode; skipping it"
            );
        }
    }
    Ok(routes)
}

/// The settings every channel has.
struct Settings {
    name: String,
    enabled: bool,
    events: Vec<EventKind>,
    min_severity: Severity,
    user_cooldown_minutes: i64,
}

/// Reads the common settings; a field left out keeps `current` (or the default).
fn parse_settings(f: &mut Fields, current: Option<&Settings>) -> AppResult<Settings> {
    let name = match f.string("name")? {
        Some(name) => name,
        None => current
            .map(|c| c.name.clone())
            .ok_or_else(|| AppError::validation("name", "give the channel a name"))?,
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::validation("name", format!("at most {MAX_NAME_CHARS} characters")));
    }
    let enabled = f.bool("enabled")?.or(current.map(|c| c.enabled)).unwrap_or(true);
    let events = if f.has("events") {
        let names = f.list("events")?;
        let events = names
            .iter()
            .map(|n| n.parse::<EventKind>().map_err(|e| AppError::validation("events", e)))
            .collect::<AppResult<Vec<_>>>()?;
        if events.is_empty() {
            return Err(AppError::validation("events", "choose at least one event"));
        }
        let mut events = events;
        events.sort_unstable();
        events.dedup();
        events
    } else {
        current.map_or_else(|| EventKind::DEFAULTS.to_vec(), |c| c.events.clone())
    };
    let min_severity = match f.string("min_severity")? {
        Some(s) => s.parse().map_err(|e| AppError::validation("min_severity", e))?,
        None => current.map_or(Severity::Low, |c| c.min_severity),
    };
    let user_cooldown_minutes = f
        .int("user_cooldown_minutes", 0..=MAX_USER_COOLDOWN_MINUTES)?
        .or(current.map(|c| c.user_cooldown_minutes))
        .unwrap_or(0);
    Ok(Settings { name, enabled, events, min_severity, user_cooldown_minutes })
}

/// Config errors name their field as the API nests it: `config.host`.
fn in_config(e: AppError) -> AppError {
    match e {
        AppError::Validation { field, message } => {
            AppError::Validation { field: format!("config.{field}"), message }
        }
        other => other,
    }
}

fn seal(secrets_box: &SecretBox, secrets: &Map<String, Value>) -> Option<String> {
    (!secrets.is_empty())
        .then(|| secrets_box.seal(SECRETS_PURPOSE, &Value::Object(secrets.clone()).to_string()))
}

fn check_name(conn: &Connection, name: &str, except: i64) -> AppResult<()> {
    if sql::channel_name_taken(conn, name, except)? {
        return Err(AppError::Conflict(format!(
            "A channel named \"{name}\" already exists; choose another name."
        )));
    }
    Ok(())
}

fn audit(
    conn: &Connection,
    actor: &Actor,
    action: &str,
    id: NotifierId,
    details: Value,
) -> AppResult<()> {
    let target = format!("notifier:{id}");
    audit::record(
        conn,
        &NewEntry {
            actor: &actor.name,
            action,
            target: Some(&target),
            details: Some(details),
            ip: actor.ip.as_deref(),
        },
    )
}

/// Creates a channel from `input`: `{kind, name, config, enabled?, events?, min_severity?,
/// user_cooldown_minutes?}`.
pub fn create(
    conn: &mut Connection,
    secrets_box: &SecretBox,
    input: Map<String, Value>,
    actor: &Actor,
) -> AppResult<ChannelView> {
    let mut f = Fields::new(input);
    let kind: ChannelKind = f
        .required_string("kind", "the kind of channel (email, pushover, ntfy, discord or webhook)")?
        .parse()
        .map_err(|e| AppError::validation("kind", e))?;
    let config_input = f.object("config")?.unwrap_or_default();
    let clear = f.list("clear")?;
    let settings = parse_settings(&mut f, None)?;
    f.finish_known(TOP_FIELDS)?;
    let merged = ChannelConfig::merge(kind, &Map::new(), &Map::new(), config_input, &clear);
    let config = ChannelConfig::parse(kind, merged).map_err(in_config)?;
    let (public, secrets) = config.split();

    let tx = conn.transaction()?;
    check_name(&tx, &settings.name, 0)?;
    let events = serde_json::to_string(&settings.events)
        .map_err(|e| AppError::internal("encoding events", e))?;
    let sealed = seal(secrets_box, &secrets);
    let row = sql::insert_channel(
        &tx,
        &ChannelWrite {
            kind: kind.as_str(),
            name: &settings.name,
            enabled: settings.enabled,
            events: &events,
            min_severity: settings.min_severity.as_str(),
            user_cooldown_minutes: settings.user_cooldown_minutes,
            config: &Value::Object(public).to_string(),
            secrets_sealed: sealed.as_deref(),
        },
    )?;
    let id = NotifierId(row.id);
    audit(&tx, actor, "notifier.create", id, serde_json::json!({"name": row.name, "kind": kind}))?;
    tx.commit()?;
    Ok(view(&row, decode(&row, secrets_box)?))
}

/// Changes a channel. Fields left out keep their value; see [`ChannelConfig::merge`] for
/// the config. The kind cannot change.
pub fn update(
    conn: &mut Connection,
    secrets_box: &SecretBox,
    id: NotifierId,
    input: Map<String, Value>,
    actor: &Actor,
) -> AppResult<ChannelView> {
    let tx = conn.transaction()?;
    let row = find(&tx, id)?;
    let stored = decode(&row, secrets_box)?;
    let current = Settings {
        name: row.name.clone(),
        enabled: row.enabled,
        events: stored.events.clone(),
        min_severity: stored.min_severity,
        user_cooldown_minutes: row.user_cooldown_minutes,
    };
    let mut f = Fields::new(input);
    if let Some(kind) = f.string("kind")?
        && kind != stored.kind.as_str()
    {
        return Err(AppError::validation("kind", "cannot change; create a new channel instead"));
    }
    let config_input = f.object("config")?.unwrap_or_default();
    let clear = f.list("clear")?;
    let settings = parse_settings(&mut f, Some(&current))?;
    f.finish_known(TOP_FIELDS)?;
    let merged =
        ChannelConfig::merge(stored.kind, &stored.public, &stored.secrets, config_input, &clear);
    let config = ChannelConfig::parse(stored.kind, merged).map_err(in_config)?;
    let (public, secrets) = config.split();

    check_name(&tx, &settings.name, row.id)?;
    let events = serde_json::to_string(&settings.events)
        .map_err(|e| AppError::internal("encoding events", e))?;
    let sealed = seal(secrets_box, &secrets);
    let updated = sql::update_channel(
        &tx,
        row.id,
        &ChannelWrite {
            kind: stored.kind.as_str(),
            name: &settings.name,
            enabled: settings.enabled,
            events: &events,
            min_severity: settings.min_severity.as_str(),
            user_cooldown_minutes: settings.user_cooldown_minutes,
            config: &Value::Object(public).to_string(),
            secrets_sealed: sealed.as_deref(),
        },
    )?
    .ok_or_else(|| AppError::not_found(format!("notification channel {id}")))?;
    let now = crate::time::now_ms();
    if settings.enabled {
        // The edit may have fixed what made messages fail: try the waiting ones now.
        sql::pull_forward(&tx, row.id, now)?;
    } else if row.enabled {
        sql::cancel_pending(&tx, row.id, "cancelled: the channel was disabled")?;
    }
    let changed_secrets: Vec<&str> = stored
        .kind
        .secret_fields()
        .iter()
        .copied()
        .filter(|f| stored.secrets.get(*f) != secrets.get(*f))
        .collect();
    audit(
        &tx,
        actor,
        "notifier.update",
        id,
        serde_json::json!({"name": updated.name, "kind": stored.kind, "secrets_changed": changed_secrets}),
    )?;
    tx.commit()?;
    Ok(view(&updated, decode(&updated, secrets_box)?))
}

/// Enables or disables a channel; disabling cancels its waiting messages.
pub fn set_enabled(
    conn: &mut Connection,
    id: NotifierId,
    enabled: bool,
    actor: &Actor,
) -> AppResult<()> {
    let tx = conn.transaction()?;
    let row = find(&tx, id)?;
    sql::set_channel_enabled(&tx, row.id, enabled)?;
    if enabled {
        sql::pull_forward(&tx, row.id, crate::time::now_ms())?;
    } else {
        sql::cancel_pending(&tx, row.id, "cancelled: the channel was disabled")?;
    }
    let action = if enabled { "notifier.enable" } else { "notifier.disable" };
    audit(&tx, actor, action, id, serde_json::json!({"name": row.name}))?;
    tx.commit()?;
    Ok(())
}

/// Deletes a channel and its delivery log.
pub fn delete(conn: &mut Connection, id: NotifierId, actor: &Actor) -> AppResult<()> {
    let tx = conn.transaction()?;
    let row = find(&tx, id)?;
    sql::delete_channel(&tx, row.id)?;
    audit(
        &tx,
        actor,
        "notifier.delete",
        id,
        serde_json::json!({"name": row.name, "kind": row.kind}),
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("s.db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        (dir, conn)
    }

    fn map(v: Value) -> Map<String, Value> {
        let Value::Object(m) = v else { panic!() };
        m
    }

    fn actor() -> Actor {
        Actor { name: "user:admin".into(), ip: None }
    }

    #[test]
    fn create_seals_secrets_and_update_keeps_them() {
        let (_dir, mut conn) = db();
        let sb = SecretBox::new(&[1; 32]);
        let created = create(
            &mut conn,
            &sb,
            map(json!({"kind": "ntfy", "name": "Phone", "config": {"topic": "alerts", "token": "tk_verysecret"}})),
            &actor(),
        )
        .unwrap();
        assert_eq!(created.secrets_set, ["token"]);
        assert_eq!(created.events, EventKind::DEFAULTS);
        assert!(!serde_json::to_string(&created).unwrap().contains("tk_verysecret"));
        let raw: (String, String) = conn
            .query_row("SELECT config, secrets_sealed FROM notifiers", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(!raw.0.contains("tk_verysecret") && !raw.1.contains("tk_verysecret"));

        let updated = update(
            &mut conn,
            &sb,
            created.id,
            map(json!({"events": ["violation"], "min_severity": "high", "config": {"token": "", "topic": "other"}})),
            &actor(),
        )
        .unwrap();
        assert_eq!(updated.events, [EventKind::Violation]);
        assert_eq!(updated.name, "Phone", "left out, kept");
        let (_, _, config) = config(&conn, &sb, created.id).unwrap();
        let ChannelConfig::Ntfy(ntfy) = config else { panic!() };
        assert_eq!((ntfy.topic.as_str(), ntfy.token.as_deref()), ("other", Some("tk_verysecret")));

        let audit: Vec<String> = conn
            .prepare("SELECT action || ' ' || details FROM audit_log ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(audit.len(), 2);
        assert!(audit.iter().all(|a| !a.contains("tk_verysecret")));
    }

    #[test]
    fn errors_name_fields_and_nothing_is_written() {
        let (_dir, mut conn) = db();
        let sb = SecretBox::new(&[1; 32]);
        let cases = [
            (json!({"name": "x", "config": {}}), "kind"),
            (json!({"kind": "sms", "name": "x"}), "kind"),
            (json!({"kind": "ntfy", "config": {"topic": "a"}}), "name"),
            (json!({"kind": "ntfy", "name": "x", "config": {}}), "config.topic"),
            (
                json!({"kind": "ntfy", "name": "x", "config": {"topic": "a", "hots": 1}}),
                "config.hots",
            ),
            (
                json!({"kind": "ntfy", "name": "x", "events": [], "config": {"topic": "a"}}),
                "events",
            ),
            (
                json!({"kind": "ntfy", "name": "x", "events": ["everything"], "config": {"topic": "a"}}),
                "events",
            ),
            (
                json!({"kind": "ntfy", "name": "x", "min_severity": "critical", "config": {"topic": "a"}}),
                "min_severity",
            ),
            (
                json!({"kind": "ntfy", "name": "x", "user_cooldown_minutes": 5000, "config": {"topic": "a"}}),
                "user_cooldown_minutes",
            ),
            (
                json!({"kind": "ntfy", "name": "x", "colour": "red", "config": {"topic": "a"}}),
                "colour",
            ),
        ];
        for (input, field) in cases {
            match create(&mut conn, &sb, map(input.clone()), &actor()) {
                Err(AppError::Validation { field: f, .. }) => assert_eq!(f, field, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(sql::list_channels(&conn).unwrap().is_empty());
        create(
            &mut conn,
            &sb,
            map(json!({"kind": "ntfy", "name": "Phone", "config": {"topic": "a"}})),
            &actor(),
        )
        .unwrap();
        let dup = create(
            &mut conn,
            &sb,
            map(json!({"kind": "ntfy", "name": "phone", "config": {"topic": "a"}})),
            &actor(),
        );
        assert!(matches!(dup, Err(AppError::Conflict(_))));
    }

    #[test]
    fn a_wrong_key_is_an_internal_error_not_a_panic() {
        let (_dir, mut conn) = db();
        let created = create(
            &mut conn,
            &SecretBox::new(&[1; 32]),
            map(json!({"kind": "ntfy", "name": "P", "config": {"topic": "a", "token": "tk_x"}})),
            &actor(),
        )
        .unwrap();
        let other = SecretBox::new(&[2; 32]);
        assert!(matches!(get(&conn, &other, created.id), Err(AppError::Internal { .. })));
        assert!(matches!(config(&conn, &other, created.id), Err(AppError::Internal { .. })));
    }
}
