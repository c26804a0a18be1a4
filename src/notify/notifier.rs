//! [`Notifier`]: the handle everyone holds (managed state). Publishing routes an event and
//! stores its messages in the outbox before anything is sent, then wakes the worker.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::channel::{Delivery, SendError};
use super::event::Event;
use super::message::{self, Links};
use super::store::{self, Actor, ChannelView};
use super::{NotifierId, http, routing};
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::notify::{self as sql, NewMessage, OutboxCounts, OutboxRow};
use crate::error::{AppError, AppResult};
use crate::time::now_ms;

/// The longest a single delivery may take, whatever the channel (each channel has shorter
/// timeouts of its own; this is the backstop).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_mins(1);

/// Routes events to channels and keeps the outbox. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub db: Db,
    pub secrets: SecretBox,
    pub links: Links,
    pub http: reqwest::Client,
    /// Wakes the worker: a message is waiting.
    pub wake: Notify,
}

/// What [`Notifier::publish`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Outbox ids of the stored messages, one per channel.
    pub messages: Vec<i64>,
    /// True when the event's cooldown was still running: nothing was stored.
    pub suppressed: bool,
}

impl Notifier {
    pub fn new(db: Db, secrets: SecretBox, links: Links) -> Self {
        Self {
            shared: Arc::new(Shared {
                db,
                secrets,
                links,
                http: http::client(),
                wake: Notify::new(),
            }),
        }
    }

    /// Routes `event` to the channels that want it and stores one message per channel in the
    /// outbox (one transaction), then wakes the delivery worker. Returns as soon as the
    /// messages are stored: no network is involved. An error means nothing was stored.
    pub async fn publish(&self, event: Event) -> AppResult<Published> {
        let published =
            self.shared.db.write(move |conn| route_and_store(conn, &event, now_ms())).await?;
        if !published.messages.is_empty() {
            self.shared.wake.notify_one();
        }
        Ok(published)
    }

    /// Tells the worker to look at the outbox now.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// A delivery worker for this notifier's outbox (see [`super::Worker::run`]).
    pub fn worker(&self) -> super::Worker {
        super::Worker::new(self.clone())
    }

    // ---- channels: the operations behind Settings → Notifications and the API ----------

    pub async fn list(&self) -> AppResult<Vec<(ChannelView, OutboxCounts)>> {
        let secrets = self.shared.secrets.clone();
        self.shared
            .db
            .read(move |conn| {
                let mut counts = store::counts(conn)?;
                Ok(store::list(conn, &secrets)?
                    .into_iter()
                    .map(|view| {
                        let c = counts.remove(&view.id).unwrap_or_default();
                        (view, c)
                    })
                    .collect())
            })
            .await
    }

    pub async fn get(&self, id: NotifierId) -> AppResult<ChannelView> {
        let secrets = self.shared.secrets.clone();
        self.shared.db.read(move |conn| store::get(conn, &secrets, id)).await
    }

    pub async fn create(&self, input: Map<String, Value>, actor: Actor) -> AppResult<ChannelView> {
        let secrets = self.shared.secrets.clone();
        self.shared.db.write(move |conn| store::create(conn, &secrets, input, &actor)).await
    }

    pub async fn update(
        &self,
        id: NotifierId,
        input: Map<String, Value>,
        actor: Actor,
    ) -> AppResult<ChannelView> {
        let secrets = self.shared.secrets.clone();
        let view = self
            .shared
            .db
            .write(move |conn| store::update(conn, &secrets, id, input, &actor))
            .await?;
        self.wake();
        Ok(view)
    }

    pub async fn set_enabled(&self, id: NotifierId, enabled: bool, actor: Actor) -> AppResult<()> {
        self.shared.db.write(move |conn| store::set_enabled(conn, id, enabled, &actor)).await?;
        self.wake();
        Ok(())
    }

    pub async fn delete(&self, id: NotifierId, actor: Actor) -> AppResult<()> {
        self.shared.db.write(move |conn| store::delete(conn, id, &actor)).await
    }

    /// The channel's messages, newest first (`status`: pending, sent, failed, cancelled).
    pub async fn delivery_log(
        &self,
        id: NotifierId,
        status: Option<String>,
        before: Option<i64>,
        limit: u32,
    ) -> AppResult<Vec<OutboxRow>> {
        self.shared
            .db
            .read(move |conn| sql::delivery_log(conn, id.0, status.as_deref(), before, limit))
            .await
    }

    /// Queues the channel's failed messages again; returns how many.
    pub async fn retry_failed(&self, id: NotifierId) -> AppResult<usize> {
        let n = self
            .shared
            .db
            .write(move |conn| {
                store::ensure_exists(conn, id)?;
                sql::retry_failed(conn, id.0, now_ms())
            })
            .await?;
        self.wake();
        Ok(n)
    }

    /// Queues one failed or cancelled message again.
    pub async fn retry_message(&self, id: NotifierId, message_id: i64) -> AppResult<()> {
        let found = self
            .shared
            .db
            .write(move |conn| sql::retry_message(conn, id.0, message_id, now_ms()))
            .await?;
        if !found {
            return Err(AppError::not_found(format!(
                "failed message {message_id} of channel {id}"
            )));
        }
        self.wake();
        Ok(())
    }

    /// Sends a test message to the channel now (not through the outbox queue), records it in
    /// the delivery log, and returns the exact error if it failed. A success also retries the
    /// channel's waiting messages at once: it is evidently reachable.
    pub async fn send_test(
        &self,
        id: NotifierId,
        actor: Actor,
    ) -> AppResult<Result<(), SendError>> {
        let secrets = self.shared.secrets.clone();
        let (name, _enabled, config) =
            self.shared.db.read(move |conn| store::config(conn, &secrets, id)).await?;
        let event = Event::test(&name);
        let message = message::render(&event, &self.shared.links, true);
        let uid = new_uid();
        let delivery = Delivery { http: &self.shared.http, uid: &uid, event: &event };
        let started = now_ms();
        let result =
            match tokio::time::timeout(DELIVERY_TIMEOUT, config.send(&delivery, &message)).await {
                Ok(result) => result.map(|_| ()),
                Err(_) => Err(SendError::transient(format!(
                    "no answer within {} s",
                    DELIVERY_TIMEOUT.as_secs()
                ))),
            };
        let error = result.as_ref().err().map(ToString::to_string);
        let event_json = serde_json::to_string(&event)
            .map_err(|e| AppError::internal("encoding an event", e))?;
        let title = message.title.clone();
        let ok = result.is_ok();
        self.shared
            .db
            .write(move |conn| {
                let now = now_ms();
                let tx = conn.transaction()?;
                sql::insert_message(
                    &tx,
                    &NewMessage {
                        notifier_id: id.0,
                        uid: &uid,
                        kind: event.kind.as_str(),
                        severity: event.severity.as_str(),
                        title: &title,
                        event: &event_json,
                        status: if ok { "sent" } else { "failed" },
                        is_test: true,
                        attempts: 1,
                        next_attempt_at: started,
                        last_attempt_at: Some(now),
                        last_error: error.as_deref(),
                        created_at: started,
                        sent_at: ok.then_some(now),
                    },
                )?;
                if ok {
                    sql::pull_forward(&tx, id.0, now)?;
                }
                crate::db::audit::record(
                    &tx,
                    &crate::db::audit::NewEntry {
                        actor: &actor.name,
                        action: "notifier.test",
                        target: Some(&format!("notifier:{id}")),
                        details: Some(serde_json::json!({"ok": ok})),
                        ip: actor.ip.as_deref(),
                    },
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        if ok {
            self.wake();
        }
        Ok(result)
    }
}

/// A fresh message id: 128 random bits as hex.
pub(super) fn new_uid() -> String {
    super::to_hex(&crate::crypto::random_bytes::<16>())
}

/// Routing, cooldowns and storing, in one transaction.
fn route_and_store(conn: &mut Connection, event: &Event, now: i64) -> AppResult<Published> {
    let tx = conn.transaction()?;
    let published = enqueue_at(&tx, event, now)?;
    tx.commit()?;
    Ok(published)
}

/// Routes `event` and stores its messages in the outbox on `tx`, which must be inside the
/// caller's transaction: the alert then commits with what caused it (a violation, a finished
/// play), or not at all. Wake the worker ([`Notifier::wake`]) after the commit. The outbox
/// runs on the wall clock, whatever clock the caller's events are stamped with.
pub fn enqueue(tx: &Connection, event: &Event) -> AppResult<Published> {
    enqueue_at(tx, event, now_ms())
}

fn enqueue_at(tx: &Connection, event: &Event, now: i64) -> AppResult<Published> {
    let routes = store::routes(tx)?;
    let targets = routing::targets(event, &routes);
    if targets.is_empty() {
        return Ok(Published::default());
    }
    let event_key = event.cooldown_ms.filter(|ms| *ms > 0).map(|ms| (event.cooldown_key(), ms));
    if let Some((key, _)) = &event_key
        && sql::cooldown_active(tx, key, now)?
    {
        tracing::debug!(kind = %event.kind, key, "notification suppressed by its cooldown");
        return Ok(Published { messages: Vec::new(), suppressed: true });
    }
    let event_json =
        serde_json::to_string(event).map_err(|e| AppError::internal("encoding an event", e))?;
    let title = message::title(event);
    let mut messages = Vec::with_capacity(targets.len());
    for route in targets {
        if let (Some(user), false) = (&event.user, route.user_cooldown.is_zero()) {
            let key = format!("channel:{}:user:{}", route.id, user.id);
            if sql::cooldown_active(tx, &key, now)? {
                tracing::debug!(channel = %route.id, user = user.id, "notification suppressed by the channel's per-user cooldown");
                continue;
            }
            let until = now
                .saturating_add(i64::try_from(route.user_cooldown.as_millis()).unwrap_or(i64::MAX));
            sql::set_cooldown(tx, &key, until)?;
        }
        let uid = new_uid();
        let id = sql::insert_message(
            tx,
            &NewMessage {
                notifier_id: route.id.0,
                uid: &uid,
                kind: event.kind.as_str(),
                severity: event.severity.as_str(),
                title: &title,
                event: &event_json,
                status: "pending",
                is_test: false,
                attempts: 0,
                next_attempt_at: now,
                last_attempt_at: None,
                last_error: None,
                created_at: now,
                sent_at: None,
            },
        )?;
        messages.push(id);
    }
    if let (Some((key, ms)), false) = (&event_key, messages.is_empty()) {
        sql::set_cooldown(tx, key, now.saturating_add(i64::try_from(*ms).unwrap_or(i64::MAX)))?;
    }
    Ok(Published { messages, suppressed: false })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::notify::{EventKind, Severity};

    fn notifier() -> (tempfile::TempDir, Notifier) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("n.db")).unwrap();
        (dir, Notifier::new(db, SecretBox::new(&[3; 32]), Links::default()))
    }

    fn actor() -> Actor {
        Actor { name: "user:admin".into(), ip: None }
    }

    async fn channel(n: &Notifier, name: &str, extra: Value) -> NotifierId {
        let mut input = json!({"kind": "ntfy", "name": name, "config": {"topic": "t"}});
        input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let Value::Object(input) = input else { panic!() };
        n.create(input, actor()).await.unwrap().id
    }

    #[tokio::test]
    async fn publish_stores_one_message_per_interested_channel() {
        let (_dir, n) = notifier();
        let a = channel(&n, "a", json!({"events": ["violation"]})).await;
        let b = channel(&n, "b", json!({"events": ["violation"], "min_severity": "high"})).await;
        let _c = channel(&n, "c", json!({"events": ["stream_started"]})).await;
        let published = n
            .publish(Event::new(EventKind::Violation, "x").severity(Severity::High))
            .await
            .unwrap();
        assert_eq!(published.messages.len(), 2);
        let rows = n.delivery_log(a, None, None, 10).await.unwrap();
        assert_eq!((rows.len(), rows[0].status.as_str(), rows[0].attempts), (1, "pending", 0));
        assert_eq!(n.delivery_log(b, None, None, 10).await.unwrap().len(), 1);
        let none = n.publish(Event::new(EventKind::TrustLow, "x")).await.unwrap();
        assert_eq!(none, Published::default());
    }

    #[tokio::test]
    async fn cooldowns_per_rule_and_user_and_per_channel_user() {
        let (_dir, n) = notifier();
        let _a = channel(&n, "a", json!({"events": ["violation", "stream_started"]})).await;
        let _b =
            channel(&n, "b", json!({"events": ["stream_started"], "user_cooldown_minutes": 10}))
                .await;
        let violation = |user| {
            Event::new(EventKind::Violation, "x")
                .rule(1, "r")
                .user(user, "u")
                .cooldown(Duration::from_mins(10))
        };
        assert_eq!(n.publish(violation(5)).await.unwrap().messages.len(), 1);
        assert!(
            n.publish(violation(5)).await.unwrap().suppressed,
            "same rule and user: cooled down"
        );
        assert_eq!(n.publish(violation(6)).await.unwrap().messages.len(), 1, "another user is not");
        let started = |user| Event::new(EventKind::StreamStarted, "x").user(user, "u");
        assert_eq!(n.publish(started(5)).await.unwrap().messages.len(), 2);
        assert_eq!(
            n.publish(started(5)).await.unwrap().messages.len(),
            1,
            "b waits 10 min per user"
        );
        assert_eq!(n.publish(started(6)).await.unwrap().messages.len(), 2);
    }

    #[tokio::test]
    async fn named_channels_and_disabled_ones() {
        let (_dir, n) = notifier();
        let a = channel(&n, "a", json!({"events": ["server_down"]})).await;
        let b = channel(&n, "b", json!({"enabled": false})).await;
        let event = Event::new(EventKind::Violation, "x").channels(vec![a, b]);
        let published = n.publish(event).await.unwrap();
        assert_eq!(published.messages.len(), 1, "a by name; b is disabled");
        assert_eq!(n.delivery_log(a, None, None, 10).await.unwrap()[0].kind, "violation");
    }
}
