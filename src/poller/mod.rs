//! Polling the media servers: the pure [`tracker`] and the shell around it.
//!
//! One [`Poller::tick`] polls every due server concurrently, feeds the answers to the
//! tracker, writes what changed in one transaction, and publishes the live view. A write
//! that fails (a full disk) is kept and retried on the next tick: a finished play is never
//! dropped. [`run`] loops around it every poll interval, wakes early on "poll now", backs
//! off from failing servers, and on shutdown writes the live state so a restart resumes it.

pub mod control;
pub mod follow;
pub mod handoff;
pub mod live;
pub mod notices;
pub mod registry;
pub mod tracker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rocket::futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use crate::db::servers::ServerRow;
use crate::db::{self, Db, media_users, plays, servers};
use crate::error::{AppError, AppResult};
use crate::geo;
use crate::media::push::{Note, Realtime};
use crate::media::{ActiveSession, MediaError, MediaServer, ServerUser};
use crate::tasks::StopSignal;
use crate::time::Ms;
use follow::{Follower, NextPoll, Report};
use handoff::{Handoff, SWEEP_EVERY_MS, Trigger, Why, Work};
use live::{LiveHub, LiveSession, LiveView, ServerStatus};
use registry::Registry;
use tracker::{Event, FinishedPlay, LiveKey, Noted, Poll, Tracker, TrackerSettings};

/// A live play's progress is written at least this often (state changes at once).
const FLUSH_EVERY_MS: Ms = 30_000;

/// When a live play's progress is next due to be written: every [`FLUSH_EVERY_MS`], each play
/// offset by up to as long again, so that plays started together are not all written in the
/// same tick.
fn flush_due(entry: &tracker::LiveEntry, now: Ms) -> bool {
    let offset = entry.play_id.unwrap_or(0).rem_euclid(10) * (FLUSH_EVERY_MS / 10);
    now - entry.meta.flushed_at >= FLUSH_EVERY_MS + offset
}
/// Longest wait between two tries of a failing server.
const MAX_BACKOFF_MS: Ms = 60_000;
/// A server's answer (sessions plus any metadata lookups) must arrive within this.
const SERVER_DEADLINE: Duration = Duration::from_secs(15);
/// How often the list of accounts of each server is refreshed.
const USER_SYNC_EVERY_MS: Ms = 60 * 60_000;
/// `last_ok_at` is written on recovery and then at most this often (no idle disk writes).
const HEALTH_WRITE_EVERY_MS: Ms = 10 * 60_000;
/// How long a stopped stream's key is kept to tell stale answers from new plays.
const TERMINATED_KEPT_MS: Ms = 5 * 60_000;

/// Settings of session tracking, changed in Settings → General.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingSettings {
    /// A play is watched at this share of its runtime (1-100).
    pub watched_percent: u8,
    /// Minutes a failing server's sessions are held before they are closed (1-1440).
    pub stop_grace_minutes: u32,
    /// Minutes within which a new play of the same item continues the earlier one (0-10080).
    pub resume_window_minutes: u32,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        Self { watched_percent: 85, stop_grace_minutes: 5, resume_window_minutes: 60 }
    }
}

impl TrackingSettings {
    pub const KEY: &'static str = "tracking";

    pub fn validate(&self) -> AppResult<()> {
        if !(1..=100).contains(&self.watched_percent) {
            return Err(AppError::validation("watched_percent", "must be from 1 to 100"));
        }
        if !(1..=1440).contains(&self.stop_grace_minutes) {
            return Err(AppError::validation(
                "stop_grace_minutes",
                "must be from 1 to 1440 minutes",
            ));
        }
        if self.resume_window_minutes > 10_080 {
            return Err(AppError::validation(
                "resume_window_minutes",
                "must be at most 10080 minutes (a week)",
            ));
        }
        Ok(())
    }

    pub fn load(conn: &rusqlite::Connection) -> AppResult<Self> {
        Ok(db::settings::get(conn, Self::KEY)?.unwrap_or_default())
    }

    fn tracker(self, confirm_window: Duration) -> TrackerSettings {
        TrackerSettings {
            confirm_window_ms: Ms::try_from(confirm_window.as_millis()).unwrap_or(Ms::MAX),
            stop_grace_ms: Ms::from(self.stop_grace_minutes) * 60_000,
            watched_percent: self.watched_percent,
            resume_window_ms: Ms::from(self.resume_window_minutes) * 60_000,
        }
    }
}

/// Requests from the web tier to the poller.
#[derive(Debug)]
pub enum Command {
    /// The server confirmed it stopped this session: end the play now.
    Terminated(LiveKey),
}

/// What one server answered, or what its push said.
pub enum Answer {
    Sessions {
        sessions: Vec<ActiveSession>,
        users: Option<Vec<ServerUser>>,
        /// When the list was asked for: a stream stopped after that may still be in it.
        asked_at: Ms,
    },
    Failed(String),
    /// In backoff: not asked this time.
    NotDue,
    /// Positions a push source reported for sessions we know.
    Positions(Vec<Note>),
    /// The server's push source changed.
    Realtime(Realtime),
}

/// Asks one server for its sessions (and its accounts when `users_due`), within the
/// server's deadline. Changes nothing.
async fn poll_server(client: AppResult<Arc<dyn MediaServer>>, users_due: bool) -> Answer {
    let asked_at = crate::time::now_ms();
    let client = match client {
        Ok(c) => c,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let sessions = match tokio::time::timeout(SERVER_DEADLINE, client.sessions()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Answer::Failed(e.to_string()),
        Err(_) => {
            return Answer::Failed(MediaError::Timeout(SERVER_DEADLINE.as_secs()).to_string());
        }
    };
    let users = if users_due {
        match tokio::time::timeout(SERVER_DEADLINE, client.users()).await {
            Ok(Ok(users)) => Some(users),
            _ => None,
        }
    } else {
        None
    };
    Answer::Sessions { sessions, users, asked_at }
}

/// A server's health between ticks.
#[derive(Debug, Clone, Default)]
struct Health {
    failures: i64,
    next_attempt_at: Ms,
    last_ok_at: Option<Ms>,
    last_ok_written_at: Ms,
    last_error_at: Option<Ms>,
    last_error: Option<String>,
    users_synced_at: Option<Ms>,
    /// A "server down" notification went out; "server up" follows when it answers.
    announced_down: bool,
}

/// A write that failed and waits for the next tick.
#[derive(Debug, Clone)]
enum Unsaved {
    Finished(Box<FinishedPlay>),
    Discard(i64),
}

/// A notification of this tick, stored in the outbox by the same transaction that saves
/// what it tells (so it is never lost, nor sent for a play that was not saved).
#[derive(Debug, Clone)]
enum Notice {
    /// A play was confirmed: "stream started", once it has its id.
    Started(LiveKey),
    Stopped(Box<FinishedPlay>),
    /// Complete already (a server down or up).
    Ready(Box<crate::notify::Event>),
}

/// What a tick did, for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub polled: usize,
    pub failed: usize,
    pub events: usize,
    /// False when the database write failed (it is retried next tick).
    pub saved: bool,
    /// Servers whose pushed positions did not fit what we know: read their lists now.
    pub refresh: Vec<i64>,
}

pub struct Poller {
    db: Db,
    registry: Arc<Registry>,
    hub: Arc<LiveHub>,
    tracker: Tracker,
    confirm_window: Duration,
    poll_interval_ms: Ms,
    servers: Vec<ServerRow>,
    seen_version: u64,
    health: HashMap<i64, Health>,
    unsaved: Vec<Unsaved>,
    commands: mpsc::UnboundedReceiver<Command>,
    last_write_error: Option<String>,
    notifier: crate::notify::Notifier,
    /// Notifications waiting for the next successful save.
    notices: Vec<Notice>,
    geo: Arc<geo::GeoIp>,
    rules: Arc<Handoff>,
    last_sweep_at: Ms,
    /// Streams stopped through us, and when: answers asked before then may still list them.
    terminated: Vec<(LiveKey, Ms)>,
    /// Per server: where its live picture comes from, and since when.
    realtime: HashMap<i64, (Realtime, Ms)>,
    /// Polls while push is healthy and nothing is in transition.
    reconcile_ms: Ms,
}

impl Poller {
    /// A poller resuming the live plays an earlier run left in the database. Blocking.
    pub fn new(
        db: Db,
        registry: Arc<Registry>,
        hub: Arc<LiveHub>,
        notifier: crate::notify::Notifier,
        poll_interval: Duration,
        confirm_window: Duration,
        commands: mpsc::UnboundedReceiver<Command>,
        geo: Arc<geo::GeoIp>,
        rules: Arc<Handoff>,
    ) -> AppResult<Self> {
        let (settings, restored) =
            db.read_blocking(|conn| Ok((TrackingSettings::load(conn)?, plays::load_live(conn)?)))?;
        let mut tracker = Tracker::new(settings.tracker(confirm_window));
        if !restored.is_empty() {
            tracing::info!(sessions = restored.len(), "resuming live sessions from the last run");
        }
        tracker.restore(restored);
        Ok(Self {
            db,
            registry,
            hub,
            tracker,
            confirm_window,
            poll_interval_ms: Ms::try_from(poll_interval.as_millis()).unwrap_or(5_000),
            servers: Vec::new(),
            seen_version: 0,
            health: HashMap::new(),
            unsaved: Vec::new(),
            commands,
            last_write_error: None,
            notifier,
            notices: Vec::new(),
            geo,
            rules,
            last_sweep_at: 0,
            terminated: Vec::new(),
            realtime: HashMap::new(),
            reconcile_ms: 30_000,
        })
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// One full pass: poll, track, save, publish.
    pub async fn tick(&mut self, now: Ms) -> TickReport {
        let answers = self.poll(now).await;
        self.apply(answers, now).await
    }

    /// Applies snapshots that arrived some other way (a benchmark) as if every listed
    /// server had just answered a poll.
    pub async fn apply_snapshots(
        &mut self,
        snapshots: Vec<(i64, Vec<ActiveSession>)>,
        now: Ms,
    ) -> TickReport {
        let answers = snapshots
            .into_iter()
            .map(|(id, sessions)| (id, Answer::Sessions { sessions, users: None, asked_at: now }))
            .collect();
        self.apply(answers, now).await
    }

    /// Applies what followers reported, and answers each poll with the next one.
    pub async fn apply_reports(&mut self, reports: Vec<Report>, now: Ms) -> TickReport {
        let mut answers = Vec::with_capacity(reports.len());
        let mut replies = Vec::new();
        for report in reports {
            match report {
                Report::Polled { server_id, asked_at, answer, reply } => {
                    let answer = match answer {
                        Answer::Sessions { sessions, users, .. } => {
                            Answer::Sessions { sessions, users, asked_at }
                        }
                        other => other,
                    };
                    answers.push((server_id, answer));
                    replies.push((server_id, reply));
                }
                Report::Positions { server_id, notes } => {
                    answers.push((server_id, Answer::Positions(notes)));
                }
                Report::Realtime { server_id, source } => {
                    answers.push((server_id, Answer::Realtime(source)));
                }
            }
        }
        let report = self.apply(answers, now).await;
        for (server_id, reply) in replies {
            // A follower that was replaced meanwhile no longer listens.
            let _ = reply.send(self.next_poll(server_id, now));
        }
        report
    }

    /// What a pass of the loop does between answers: servers in backoff hold their
    /// sessions (or let them go after the grace), positions are flushed when due, and the
    /// rules engine runs what is due on our clock.
    pub async fn housekeeping(&mut self, now: Ms) -> TickReport {
        let waiting: Vec<(i64, Answer)> = self
            .health
            .iter()
            .filter(|(_, h)| h.failures > 0)
            .map(|(id, _)| (*id, Answer::NotDue))
            .collect();
        self.apply(waiting, now).await
    }

    /// When `server_id` is to be polled next: in backoff while it fails; at the
    /// reconciliation interval while its push is healthy and none of its sessions is
    /// pending or fading; else at the poll interval.
    pub fn next_poll(&self, server_id: i64, now: Ms) -> NextPoll {
        let health = self.health.get(&server_id);
        let users =
            health.and_then(|h| h.users_synced_at).is_none_or(|at| now - at >= USER_SYNC_EVERY_MS);
        let at = match health {
            Some(h) if h.failures > 0 => h.next_attempt_at.max(now),
            _ => {
                let pushed =
                    self.realtime.get(&server_id).is_some_and(|(r, _)| *r != Realtime::Polling);
                let settling = self.tracker.entries().any(|e| {
                    e.server_id == server_id
                        && (e.status == tracker::LiveStatus::Pending || e.missing_polls > 0)
                });
                now + if pushed && !settling { self.reconcile_ms } else { self.poll_interval_ms }
            }
        };
        NextPoll { at, users }
    }

    /// The enabled servers, as of the last reload.
    pub fn servers(&self) -> &[ServerRow] {
        &self.servers
    }

    /// Asks every due server for its sessions, concurrently. Changes nothing, so it may
    /// be cancelled (shutdown) at any point.
    async fn poll(&mut self, now: Ms) -> Vec<(i64, Answer)> {
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "cannot read the server list; keeping the previous one");
        }
        let polls = self.servers.iter().map(|server| {
            let health = self.health.get(&server.id).cloned().unwrap_or_default();
            let client = self.registry.client(server);
            let id = server.id;
            async move {
                if health.next_attempt_at > now {
                    return (id, Answer::NotDue);
                }
                let users_due =
                    health.users_synced_at.is_none_or(|at| now - at >= USER_SYNC_EVERY_MS);
                match poll_server(client, users_due).await {
                    Answer::Sessions { sessions, users, .. } => {
                        (id, Answer::Sessions { sessions, users, asked_at: now })
                    }
                    other => (id, other),
                }
            }
        });
        join_all(polls).await
    }

    /// Reloads servers and settings when the registry says they changed.
    pub async fn reload(&mut self) -> AppResult<()> {
        let version = self.registry.version();
        if version == self.seen_version {
            return Ok(());
        }
        let (servers, settings) =
            self.db.read(|conn| Ok((servers::list(conn)?, TrackingSettings::load(conn)?))).await?;
        self.tracker.settings = settings.tracker(self.confirm_window);
        let enabled: Vec<ServerRow> = servers.into_iter().filter(|s| s.enabled).collect();
        let gone: Vec<i64> = self
            .tracker
            .entries()
            .map(|e| e.server_id)
            .filter(|id| !enabled.iter().any(|s| s.id == *id))
            .collect();
        for server_id in gone {
            let events = self.tracker.forget_server(server_id);
            self.queue_endings(&events);
        }
        self.health.retain(|id, _| enabled.iter().any(|s| s.id == *id));
        // A server that changed (push turned off, another URL) starts over from polling.
        self.realtime.retain(|id, _| {
            enabled.iter().any(|s| s.id == *id)
                && self.servers.iter().find(|old| old.id == *id).map(|old| old.updated_at)
                    == enabled.iter().find(|new| new.id == *id).map(|new| new.updated_at)
        });
        self.servers = enabled;
        self.seen_version = version;
        Ok(())
    }

    /// Feeds the answers to the tracker, writes, publishes.
    async fn apply(&mut self, answers: Vec<(i64, Answer)>, now: Ms) -> TickReport {
        let mut report = TickReport::default();
        let mut events = Vec::new();
        // A stream stopped while this tick's polls were in flight may still be in their
        // answers; taken as seen, it would come back as a new play.
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Terminated(key) => {
                    events.extend(self.tracker.terminate(&key, now));
                    self.terminated.push((key, now));
                }
            }
        }
        self.terminated.retain(|(_, at)| now - at < TERMINATED_KEPT_MS);
        let mut synced_users = Vec::new();
        for (server_id, answer) in answers {
            if !matches!(answer, Answer::Realtime(_)) {
                self.realtime.entry(server_id).or_insert((Realtime::Polling, now));
            }
            let health = self.health.entry(server_id).or_default();
            match answer {
                Answer::Realtime(source) => {
                    let current = self.realtime.get(&server_id).map(|(r, _)| *r);
                    if current != Some(source) {
                        self.realtime.insert(server_id, (source, now));
                    }
                }
                Answer::Positions(notes) => {
                    for note in notes {
                        let key = LiveKey { server_id, session_id: note.session_id };
                        let outcome = match (note.item_id, follow::expected_state(note.state)) {
                            (Some(item), Some(state)) => self.tracker.note_position(
                                &key,
                                &item,
                                state,
                                note.position_ms,
                                now,
                            ),
                            _ => Noted::Mismatch,
                        };
                        match outcome {
                            Noted::Applied(event) => events.extend(event),
                            Noted::Stale => {}
                            Noted::Mismatch => {
                                if !report.refresh.contains(&server_id) {
                                    report.refresh.push(server_id);
                                }
                            }
                        }
                    }
                }
                Answer::Sessions { mut sessions, users, asked_at } => {
                    let terminated = &self.terminated;
                    sessions.retain(|s| {
                        !terminated.iter().any(|(k, at)| {
                            k.server_id == server_id
                                && k.session_id == s.session_id
                                && *at >= asked_at
                        })
                    });
                    report.polled += 1;
                    if health.failures > 0 {
                        tracing::info!(server_id, "server answers again");
                    }
                    if std::mem::take(&mut health.announced_down) {
                        let name = server_name(&self.servers, server_id);
                        let event = notices::server_up(server_id, &name);
                        self.notices.push(Notice::Ready(Box::new(event)));
                    }
                    health.failures = 0;
                    health.next_attempt_at = 0;
                    health.last_ok_at = Some(now);
                    if let Some(users) = users {
                        health.users_synced_at = Some(now);
                        synced_users.push((server_id, users));
                    }
                    events.extend(self.tracker.observe(server_id, Poll::Answered(&sessions), now));
                }
                Answer::Failed(error) => {
                    report.failed += 1;
                    health.failures += 1;
                    let backoff = (self.poll_interval_ms << (health.failures - 1).min(10))
                        .min(MAX_BACKOFF_MS);
                    health.next_attempt_at = now + backoff;
                    if health.last_error.as_deref() != Some(error.as_str()) || health.failures == 1
                    {
                        tracing::warn!(server_id, failures = health.failures, error = %error, "server poll failed");
                    }
                    health.last_error_at = Some(now);
                    if health.failures >= notices::DOWN_AFTER_FAILURES && !health.announced_down {
                        health.announced_down = true;
                        let name = server_name(&self.servers, server_id);
                        let event = notices::server_down(server_id, &name, &error);
                        self.notices.push(Notice::Ready(Box::new(event)));
                    }
                    health.last_error = Some(error);
                    events.extend(self.tracker.observe(server_id, Poll::Failed, now));
                }
                Answer::NotDue => events.extend(self.tracker.observe(server_id, Poll::Failed, now)),
            }
        }
        report.events = events.len();
        self.note_events(&events);
        self.collect_notices(&events);
        report.saved = self.save(now, synced_users).await;
        self.publish(now);
        self.hand_to_rules(&events, now);
        report
    }

    /// The notifications of this tick's events, for the save to store.
    fn collect_notices(&mut self, events: &[Event]) {
        for event in events {
            match event {
                Event::Confirmed(key) => self.notices.push(Notice::Started(key.clone())),
                Event::Stopped(play) => self.notices.push(Notice::Stopped(play.clone())),
                _ => {}
            }
        }
    }

    /// Tells the rules worker what happened (it runs beside us; we never wait for it).
    fn hand_to_rules(&mut self, events: &[Event], now: Ms) {
        let play = |key: &LiveKey| self.tracker.get(key).and_then(|e| e.play_id);
        let mut triggers = Vec::new();
        for event in events {
            let found = match event {
                Event::Confirmed(key) => play(key).map(|id| (id, Why::Confirmed)),
                Event::Updated(key, changes) if changes.quality || changes.rekeyed => {
                    play(key).map(|id| (id, Why::Quality))
                }
                Event::Paused(key) | Event::Resumed(key) => play(key).map(|id| (id, Why::Pause)),
                _ => None,
            };
            if let Some((play_id, why)) = found {
                let trigger = Trigger::Session { play_id, why };
                if !triggers.contains(&trigger) {
                    triggers.push(trigger);
                }
            }
        }
        if now - self.last_sweep_at >= SWEEP_EVERY_MS {
            self.last_sweep_at = now;
            triggers.push(Trigger::Sweep);
        }
        // Every tick, with or without triggers: its clock runs the actions that are due.
        self.rules.submit(Work::new(triggers, now, self.hub.current()));
    }

    /// Marks what must be written, and queues the plays that ended.
    fn note_events(&mut self, events: &[Event]) {
        for event in events {
            match event {
                Event::Appeared(key) => {
                    if let Some(entry) = self.tracker.get(key) {
                        // Where it plays from is decided once, at the start: a later change
                        // of the GeoIP database never moves a play (no false travel).
                        let session = &entry.session;
                        let lookup = session.ip.map(|ip| self.geo.lookup(ip));
                        let is_local = session.server_says_local
                            || lookup.as_ref().is_some_and(|l| l.is_local);
                        let meta = self.tracker.meta_mut(key).expect("just appeared");
                        meta.is_local = is_local;
                        meta.geo = lookup.and_then(|l| l.geo).filter(|_| !is_local);
                        meta.dirty = true;
                    }
                }
                Event::Confirmed(key) => {
                    if let Some(meta) = self.tracker.meta_mut(key) {
                        meta.dirty = true;
                        meta.needs_resume_link = true;
                    }
                }
                Event::Updated(key, changes) => {
                    if (changes.state || changes.quality || changes.rekeyed)
                        && let Some(meta) = self.tracker.meta_mut(key)
                    {
                        meta.dirty = true;
                    }
                }
                Event::Paused(key) | Event::Resumed(key) => {
                    if let Some(meta) = self.tracker.meta_mut(key) {
                        meta.dirty = true;
                    }
                }
                Event::Stopped(_) | Event::Discarded { .. } => {}
            }
        }
        self.queue_endings(events);
    }

    fn queue_endings(&mut self, events: &[Event]) {
        for event in events {
            match event {
                Event::Stopped(play) => self.unsaved.push(Unsaved::Finished(play.clone())),
                Event::Discarded { play_id: Some(id), .. } => {
                    self.unsaved.push(Unsaved::Discard(*id));
                }
                _ => {}
            }
        }
    }

    /// Writes everything that changed in one transaction. On failure nothing is lost: the
    /// endings stay queued and the live entries stay marked.
    async fn save(&mut self, now: Ms, synced_users: Vec<(i64, Vec<ServerUser>)>) -> bool {
        let upserts: Vec<(LiveKey, tracker::LiveEntry)> = self
            .tracker
            .entries()
            .filter(|e| {
                e.play_id.is_none() || e.meta.dirty || e.meta.needs_resume_link || flush_due(e, now)
            })
            .map(|e| (e.key(), e.clone()))
            .collect();
        let unsaved = self.unsaved.clone();
        let health: Vec<(i64, Health)> = self
            .health
            .iter()
            .filter(|(_, h)| {
                h.last_error_at == Some(now)
                    || (h.last_ok_at == Some(now)
                        && (h.last_ok_written_at == 0
                            || now - h.last_ok_written_at >= HEALTH_WRITE_EVERY_MS))
            })
            .map(|(id, h)| (*id, h.clone()))
            .collect();
        let resume_window = self.tracker.settings.resume_window_ms;
        let notices = self.notices.clone();
        if upserts.is_empty()
            && unsaved.is_empty()
            && health.is_empty()
            && synced_users.is_empty()
            && notices.is_empty()
        {
            return true;
        }
        let names: HashMap<i64, String> =
            self.servers.iter().map(|s| (s.id, s.name.clone())).collect();
        let name = move |id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("server {id}"));

        let result = self
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let mut written = Vec::with_capacity(upserts.len());
                let mut saved: HashMap<LiveKey, tracker::LiveEntry> = HashMap::new();
                let mut new_devices: Vec<LiveKey> = Vec::new();
                let mut alerts = 0;
                for (key, entry) in &upserts {
                    let user_id = match entry.meta.user_id {
                        Some(id) => id,
                        None => media_users::upsert_from_session(
                            &tx,
                            entry.server_id,
                            &entry.session.user,
                            now,
                        )?,
                    };
                    let play_id = match entry.play_id {
                        Some(id) if plays::update_live(&tx, id, entry)? => id,
                        _ => plays::insert(&tx, entry, user_id, None)?,
                    };
                    let mut new_device = false;
                    let mut saved_entry = entry.clone();
                    saved_entry.play_id = Some(play_id);
                    saved_entry.meta.user_id = Some(user_id);
                    if entry.meta.needs_resume_link && entry.status == tracker::LiveStatus::Live {
                        plays::link_resume(
                            &tx,
                            play_id,
                            user_id,
                            &entry.session.item.id,
                            now - resume_window,
                        )?;
                        new_device = plays::is_new_device(
                            &tx,
                            play_id,
                            user_id,
                            &entry.session.player.device_id,
                        )?;
                    }
                    if new_device {
                        new_devices.push(key.clone());
                    }
                    saved.insert(key.clone(), saved_entry);
                    written.push((key.clone(), play_id, user_id, entry.status));
                }
                for item in &unsaved {
                    match item {
                        Unsaved::Finished(play) => {
                            let user_id = match play.entry.meta.user_id {
                                Some(id) => id,
                                None => media_users::upsert_from_session(
                                    &tx,
                                    play.entry.server_id,
                                    &play.entry.session.user,
                                    now,
                                )?,
                            };
                            plays::finish(&tx, play, user_id)?;
                        }
                        Unsaved::Discard(id) => plays::discard(&tx, *id)?,
                    }
                }
                for (server_id, h) in &health {
                    if h.last_error_at == Some(now) {
                        servers::record_error(
                            &tx,
                            *server_id,
                            now,
                            h.last_error.as_deref().unwrap_or_default(),
                            h.failures,
                        )?;
                    } else {
                        servers::record_ok(&tx, *server_id, now)?;
                    }
                }
                for (server_id, users) in &synced_users {
                    media_users::sync(&tx, *server_id, users, now)?;
                }
                // In the order they happened; a new device right after its stream's start.
                let mut events = Vec::new();
                for notice in &notices {
                    match notice {
                        Notice::Started(key) => {
                            let Some(entry) = saved.get(key) else { continue };
                            events.push(notices::stream_started(entry, &name(entry.server_id)));
                            if let Some(i) = new_devices.iter().position(|k| k == key) {
                                new_devices.remove(i);
                                events.push(notices::new_device(entry, &name(entry.server_id)));
                            }
                        }
                        Notice::Stopped(play) => {
                            events.push(notices::stream_stopped(play, &name(play.entry.server_id)));
                        }
                        Notice::Ready(event) => events.push((**event).clone()),
                    }
                }
                for key in &new_devices {
                    if let Some(entry) = saved.get(key) {
                        events.push(notices::new_device(entry, &name(entry.server_id)));
                    }
                }
                for event in &events {
                    alerts += crate::notify::enqueue(&tx, event)?.messages.len();
                }
                tx.commit()?;
                Ok((written, alerts))
            })
            .await;

        match result {
            Ok((written, alerts)) => {
                self.notices.clear();
                if alerts > 0 {
                    self.notifier.wake();
                }
                for (key, play_id, user_id, status) in written {
                    self.tracker.assign_play_id(&key, play_id);
                    if let Some(meta) = self.tracker.meta_mut(&key) {
                        meta.user_id = Some(user_id);
                        meta.dirty = false;
                        if status == tracker::LiveStatus::Live {
                            meta.needs_resume_link = false;
                        }
                        meta.flushed_at = now;
                    }
                }
                for h in self.health.values_mut() {
                    if h.last_ok_at == Some(now)
                        && (h.last_ok_written_at == 0
                            || now - h.last_ok_written_at >= HEALTH_WRITE_EVERY_MS)
                    {
                        h.last_ok_written_at = now;
                    }
                }
                let saved = self.unsaved.len();
                self.unsaved.drain(..saved);
                if self.last_write_error.take().is_some() {
                    tracing::info!("the database accepts writes again; nothing was lost");
                }
                true
            }
            Err(e) => {
                let message = e.to_string();
                if self.last_write_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %message, pending = self.unsaved.len(), "cannot save sessions; keeping them to retry");
                }
                self.last_write_error = Some(message);
                false
            }
        }
    }

    /// Publishes the live view for the dashboard, the API and the SSE streams.
    fn publish(&self, now: Ms) {
        let name_of = |id: i64| self.servers.iter().find(|s| s.id == id);
        let mut sessions: Vec<LiveSession> = self
            .tracker
            .entries()
            .map(|e| {
                let server = name_of(e.server_id);
                LiveSession {
                    play_id: e.play_id,
                    server_id: e.server_id,
                    server_name: server
                        .map_or_else(|| format!("server {}", e.server_id), |s| s.name.clone()),
                    server_kind: server.map_or(crate::media::ServerKind::Plex, |s| s.kind),
                    user_id: e.meta.user_id,
                    pending: e.status == tracker::LiveStatus::Pending,
                    fading: e.missing_polls > 0,
                    session: e.session.clone(),
                    started_at: e.started_at,
                    last_seen_at: e.last_seen_at,
                    paused_ms: e.total_paused_ms(now),
                    paused_since: e.paused_since,
                    is_local: e.meta.is_local,
                    geo: e.meta.geo.clone(),
                }
            })
            .collect();
        sessions.sort_by_key(|s| (s.started_at, s.play_id));
        let servers = self
            .servers
            .iter()
            .map(|s| {
                let h = self.health.get(&s.id);
                ServerStatus {
                    id: s.id,
                    name: s.name.clone(),
                    kind: s.kind,
                    last_ok_at: h.and_then(|h| h.last_ok_at).or(s.last_ok_at),
                    last_error_at: h.and_then(|h| h.last_error_at).or(s.last_error_at),
                    last_error: h
                        .and_then(|h| h.last_error.clone())
                        .or_else(|| s.last_error.clone()),
                    consecutive_failures: h.map_or(s.consecutive_failures, |h| h.failures),
                    next_attempt_at: h.map(|h| h.next_attempt_at).filter(|at| *at > now),
                    realtime: self.realtime.get(&s.id).map_or(Realtime::Polling, |(r, _)| *r),
                    realtime_since: self.realtime.get(&s.id).map(|(_, since)| *since),
                }
            })
            .collect();
        self.hub.publish(LiveView { at: now, sessions, servers });
    }

    /// Writes every live play as it is now (shutdown), so the next start resumes them.
    pub async fn persist_all(&mut self, now: Ms) -> bool {
        for entry in self.tracker.entries_mut() {
            entry.meta.dirty = true;
        }
        self.save(now, Vec::new()).await
    }
}

fn server_name(servers: &[ServerRow], id: i64) -> String {
    servers.iter().find(|s| s.id == id).map_or_else(|| format!("server {id}"), |s| s.name.clone())
}

/// The poller, shared by the background loop and (in tests) the code driving it.
pub type SharedPoller = Arc<Mutex<Poller>>;

/// A running follower, and what it was started for.
struct Running {
    /// The server row's `updated_at`: a changed row gets a new follower.
    version: i64,
    poll_now: Arc<Notify>,
    task: AbortHandle,
}

/// Polls until shutdown: one [`Follower`] per enabled server, each on its own schedule
/// and with its own deadline, so a server that hangs never delays another; their answers
/// are applied here, one at a time, in the order they come.
pub async fn run(
    poller: SharedPoller,
    registry: Arc<Registry>,
    hub: Arc<LiveHub>,
    timing: follow::Timing,
    mut stop: StopSignal,
) {
    let (reports_tx, mut reports) = mpsc::channel::<Report>(256);
    let mut running: HashMap<i64, Running> = HashMap::new();
    let mut followers = JoinSet::new();
    let mut housekeeping = tokio::time::interval(timing.poll_every);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    {
        let mut guard = poller.lock().await;
        guard.poll_interval_ms = Ms::try_from(timing.poll_every.as_millis()).unwrap_or(5_000);
        guard.reconcile_ms = Ms::try_from(timing.reconcile_every.as_millis()).unwrap_or(30_000);
    }
    loop {
        let servers = {
            let mut guard = poller.lock().await;
            if let Err(e) = guard.reload().await {
                tracing::warn!(error = %e, "cannot read the server list; keeping the previous one");
            }
            guard.servers().to_vec()
        };
        running.retain(|id, r| {
            let keep = servers.iter().any(|s| s.id == *id && s.updated_at == r.version)
                && !r.task.is_finished();
            if !keep {
                r.task.abort();
            }
            keep
        });
        for server in &servers {
            if running.contains_key(&server.id) {
                continue;
            }
            let client = match registry.client(server) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(server_id = server.id, error = %e, "cannot build the client; retrying at the next pass");
                    continue;
                }
            };
            let push = if server.push_enabled { registry.connection(server).ok() } else { None };
            let poll_now = Arc::new(Notify::new());
            let follower = Follower {
                server_id: server.id,
                client,
                push,
                timing,
                reports: reports_tx.clone(),
                poll_now: Arc::clone(&poll_now),
                hub: Arc::clone(&hub),
            };
            let task = followers.spawn(follower.run());
            running.insert(server.id, Running { version: server.updated_at, poll_now, task });
        }
        tokio::select! {
            Some(first) = reports.recv() => {
                let mut batch = vec![first];
                while batch.len() < 64 {
                    match reports.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                // Applying and saving is never cut short: it is what keeps history whole.
                let report = poller.lock().await.apply_reports(batch, crate::time::now_ms()).await;
                for id in report.refresh {
                    if let Some(r) = running.get(&id) {
                        r.poll_now.notify_one();
                    }
                }
            }
            _ = housekeeping.tick() => {
                poller.lock().await.housekeeping(crate::time::now_ms()).await;
            }
            () = registry.wake.notified() => {
                for r in running.values() {
                    r.poll_now.notify_one();
                }
            }
            Some(_) = followers.join_next(), if !followers.is_empty() => {}
            () = stop.stopped() => break,
        }
    }
    followers.abort_all();
    while followers.join_next().await.is_some() {}
    let saved = poller.lock().await.persist_all(crate::time::now_ms()).await;
    tracing::info!(saved, "poller stopped; live sessions saved for the next start");
}
