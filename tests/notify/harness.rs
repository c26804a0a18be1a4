//! An application instance without the web server and without a running worker: the test
//! drives delivery itself, and time too (`deliver_at`), so nothing waits on a clock.

use std::path::Path;

use serde_json::{Map, Value, json};
use streamwarden::Config;
use streamwarden::crypto::SecretBox;
use streamwarden::db::Db;
use streamwarden::db::notify::OutboxRow;
use streamwarden::notify::message::Links;
use streamwarden::notify::store::Actor;
use streamwarden::notify::{Event, Notifier, NotifierId, Published, Worker};

pub const PUBLIC_URL: &str = "http://nas.lan:8484/sw";

pub struct Harness {
    pub db: Db,
    pub notifier: Notifier,
    pub worker: Worker,
}

pub fn actor() -> Actor {
    Actor { name: "user:test".into(), ip: None }
}

pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

impl Harness {
    /// Opens (or reopens: a restart) the instance whose data lives in `dir`, with the same
    /// keys the test web app uses.
    pub fn open(dir: &Path) -> Self {
        let mut config = Config::for_tests(dir);
        config.public_url = Some(PUBLIC_URL.parse().unwrap());
        let app = streamwarden::prepare_for_tests(config).expect("app prepares");
        let notifier = Notifier::new(
            app.db.clone(),
            SecretBox::new(&app.keys.encryption),
            Links::new(app.config.public_url.clone()),
        );
        let worker = notifier.worker();
        Self { db: app.db, notifier, worker }
    }

    /// Adds a channel: `kind`, its `config`, and top-level `extra` (`events`, `min_severity` ...).
    pub async fn channel(&self, kind: &str, config: Value, extra: Value) -> NotifierId {
        let mut input = object(
            json!({"kind": kind, "name": format!("{kind} {}", rand_suffix()), "config": config}),
        );
        input.extend(object(extra));
        self.notifier.create(input, actor()).await.expect("channel is valid").id
    }

    pub async fn publish(&self, event: Event) -> Published {
        self.notifier.publish(event).await.expect("published")
    }

    /// Sends what is due now.
    pub async fn deliver(&self) -> usize {
        self.deliver_at(streamwarden::time::now_ms()).await
    }

    /// Sends what is due at `unix_ms` (a time in the future stands for waiting).
    pub async fn deliver_at(&self, unix_ms: i64) -> usize {
        self.worker.deliver_due(unix_ms).await.expect("delivery runs")
    }

    /// The channel's messages, oldest first.
    pub async fn messages(&self, id: NotifierId) -> Vec<OutboxRow> {
        let mut rows = self.notifier.delivery_log(id, None, None, 1000).await.unwrap();
        rows.reverse();
        rows
    }

    /// `hold_until` of a channel.
    pub async fn hold_until(&self, id: NotifierId) -> Option<i64> {
        self.db
            .read(move |c| {
                Ok(c.query_row("SELECT hold_until FROM notifiers WHERE id = ?1", [id.0], |r| {
                    r.get(0)
                })?)
            })
            .await
            .unwrap()
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}
