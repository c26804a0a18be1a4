//! The rules engine's shell: a worker beside the poller. The poller hands it what happened
//! in a tick (sessions confirmed, quality or pause changes, the minute's schedule) with the
//! live view of that moment, and goes on polling; the worker gathers history, evaluates
//! (pure, [`super::eval`]), records violations, and runs the actions, whose I/O (stopping a
//! stream, notifying) therefore never holds a poll up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::actions::targets;
use super::eval::{Context, PlayFacts, UserFacts, Verdict, evaluate};
use super::facts;
use super::model::{Action, Field, Rule};
use super::trust::{Change, Reason, Recovery};
use crate::db::rules::{NewViolation, Outcome};
use crate::db::{self, Db, households};
use crate::error::{AppError, AppResult};
use crate::poller::control::Control;
use crate::poller::live::{LiveSession, LiveView};
use crate::tasks::StopSignal;
use crate::time::Ms;

/// Settings of the engine, changed in Settings → Rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesSettings {
    /// Plays from one address that propose it as a household (0: never learn).
    pub household_learn_plays: u32,
    pub trust_recovery: Recovery,
    /// A rule that takes a user's trust below this raises a `trust_low` notification
    /// (0: never).
    #[serde(default = "default_trust_low_below")]
    pub trust_low_below: u32,
}

fn default_trust_low_below() -> u32 {
    40
}

impl Default for RulesSettings {
    fn default() -> Self {
        Self {
            household_learn_plays: 10,
            trust_recovery: Recovery::default(),
            trust_low_below: default_trust_low_below(),
        }
    }
}

impl RulesSettings {
    pub const KEY: &'static str = "rules";

    pub fn load(conn: &rusqlite::Connection) -> AppResult<Self> {
        Ok(db::settings::get(conn, Self::KEY)?.unwrap_or_default())
    }

    pub fn validate(&self) -> AppResult<()> {
        if self.household_learn_plays > 10_000 {
            return Err(AppError::validation("household_learn_plays", "at most 10000 plays"));
        }
        if self.trust_recovery.points_per_day > 100 {
            return Err(AppError::validation("points_per_day", "at most 100 points a day"));
        }
        if self.trust_recovery.after_days > 365 {
            return Err(AppError::validation("after_days", "at most 365 days"));
        }
        if self.trust_low_below > 100 {
            return Err(AppError::validation("trust_low_below", "a score from 0 to 100"));
        }
        Ok(())
    }
}

/// Why a session is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// It outlived the confirmation window: every rule.
    Confirmed,
    /// Its transcode decision or resolution changed: rules on quality.
    Quality,
    /// It paused or resumed: rules on pause time.
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Session {
        play_id: i64,
        why: Why,
    },
    /// The schedule: time-based rules over live sessions, inactivity over users, household
    /// learning and trust recovery.
    Sweep,
}

/// One tick's work.
#[derive(Debug, Clone)]
pub struct Job {
    pub triggers: Vec<Trigger>,
    /// The poller's clock.
    pub now: Ms,
    pub view: Arc<LiveView>,
}

/// The hand-off between the poller and the worker.
pub struct Queue {
    tx: mpsc::UnboundedSender<Job>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    pending: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            pending: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// Hands a tick's work to the worker; never waits.
    pub fn submit(&self, job: Job) {
        if job.triggers.is_empty() {
            return;
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(job).is_err() {
            self.done();
        }
    }

    fn hold(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    fn done(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Resolves once every submitted job (and delayed action) is finished.
    pub async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Every minute the poller asks for a sweep.
pub const SWEEP_EVERY_MS: Ms = 60_000;
const USER_SWEEP_EVERY_MS: Ms = 10 * 60_000;
const HOURLY_MS: Ms = 3_600_000;
/// How far back household learning counts plays.
const LEARN_WINDOW_MS: Ms = 90 * 86_400_000;
/// Shown on the client when a rule stops a stream and the rule gives no message.
pub const DEFAULT_STOP_MESSAGE: &str = "This stream was stopped: it broke a rule of this server.";

#[derive(Debug, Default)]
struct SweepClock {
    users_at: Ms,
    hourly_at: Ms,
}

/// The worker and what it needs.
pub struct Engine {
    db: Db,
    control: Arc<Control>,
    queue: Arc<Queue>,
    notifier: crate::notify::Notifier,
    confirm_ms: Ms,
    clock: Mutex<SweepClock>,
}

/// The hour (0-23) and weekday (Monday 0) of `ms` in the server's time zone.
pub fn local_clock(ms: Ms) -> (u8, u8) {
    let zoned = jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::system());
    (
        u8::try_from(zoned.hour()).unwrap_or(0),
        u8::try_from(zoned.weekday().to_monday_zero_offset()).unwrap_or(0),
    )
}

impl Engine {
    pub fn new(
        db: Db,
        control: Arc<Control>,
        queue: Arc<Queue>,
        notifier: crate::notify::Notifier,
        confirm_ms: Ms,
    ) -> Self {
        Self { db, control, queue, notifier, confirm_ms, clock: Mutex::new(SweepClock::default()) }
    }

    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    pub fn confirm_ms(&self) -> Ms {
        self.confirm_ms
    }

    /// Works through the queue until shutdown.
    pub async fn run(self: Arc<Self>, mut stop: StopSignal) {
        let Some(mut rx) =
            self.queue.rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
        else {
            tracing::error!("the rules worker is already running");
            return;
        };
        loop {
            let job = tokio::select! {
                job = rx.recv() => job,
                () = stop.stopped() => break,
            };
            let Some(job) = job else { break };
            if let Err(e) = self.process(job).await {
                tracing::warn!(error = %e, "evaluating rules failed");
            }
            self.queue.done();
        }
    }

    async fn process(&self, job: Job) -> AppResult<()> {
        let rules: Vec<Rule> =
            self.db.read(db::rules::list).await?.into_iter().filter(|r| r.enabled).collect();
        for trigger in &job.triggers {
            match *trigger {
                Trigger::Session { play_id, why } => {
                    let Some(live) = job.view.session(play_id).filter(|s| facts::countable(s))
                    else {
                        continue;
                    };
                    let selected: Vec<&Rule> = rules
                        .iter()
                        .filter(|r| !r.is_user_level())
                        .filter(|r| match why {
                            Why::Confirmed => true,
                            Why::Quality => r.uses(Field::is_quality),
                            Why::Pause => r.uses(|f| {
                                matches!(f, Field::CurrentPauseMinutes | Field::TotalPauseMinutes)
                            }),
                        })
                        .collect();
                    if !selected.is_empty() {
                        self.evaluate_session(&selected, live, &job.view, job.now).await?;
                    }
                }
                Trigger::Sweep => self.sweep(&rules, &job).await?,
            }
        }
        Ok(())
    }

    /// Gathers the user, their households and history, and the other live sessions.
    async fn gather(
        &self,
        user_id: i64,
        lookback_ms: Ms,
        now: Ms,
    ) -> AppResult<(Option<UserFacts>, Vec<ipnet::IpNet>, Vec<PlayFacts>)> {
        self.db
            .read(move |conn| {
                let user = facts::user(conn, user_id)?;
                let networks = households::confirmed(conn, user_id)?;
                let history = facts::history(conn, user_id, now - lookback_ms, now)?;
                Ok((user, networks, history))
            })
            .await
    }

    /// The user's other countable live sessions in `view`.
    fn others(view: &LiveView, user_id: i64, except: Option<i64>) -> Vec<PlayFacts> {
        view.sessions
            .iter()
            .filter(|s| facts::countable(s) && s.user_id == Some(user_id) && s.play_id != except)
            .filter_map(facts::from_live)
            .collect()
    }

    /// Evaluates `rules` for one live session; raises what matches. Returns the verdicts.
    async fn evaluate_session(
        &self,
        rules: &[&Rule],
        live: &LiveSession,
        view: &Arc<LiveView>,
        now: Ms,
    ) -> AppResult<Vec<(i64, Verdict)>> {
        let Some(mut session) = facts::from_live(live) else { return Ok(Vec::new()) };
        let lookback = rules.iter().map(|r| r.lookback_ms()).max().unwrap_or(0);
        let (user, networks, mut history) = self.gather(session.user_id, lookback, now).await?;
        let Some(user) = user else { return Ok(Vec::new()) };
        let mut others = Self::others(view, user.id, Some(session.play_id));
        facts::mark_households(std::slice::from_mut(&mut session), &networks);
        facts::mark_households(&mut others, &networks);
        facts::mark_households(&mut history, &networks);
        let (hour, weekday) = local_clock(now);
        let ctx = Context::new(now, hour, weekday, Some(&session), &user, &others, &history);
        let mut verdicts = Vec::new();
        let mut matches = Vec::new();
        for rule in rules {
            if !rule.applies_to(Some(session.server_id), user.id) {
                continue;
            }
            let verdict = evaluate(rule, &ctx);
            if verdict.matched {
                matches.push(((*rule).clone(), verdict.clone()));
            }
            verdicts.push((rule.id, verdict));
        }
        drop(ctx);
        for (rule, verdict) in matches {
            self.raise(&rule, &user, Some(&session), verdict, view, now).await?;
        }
        Ok(verdicts)
    }

    async fn sweep(&self, rules: &[Rule], job: &Job) -> AppResult<()> {
        let now = job.now;
        // Time-based conditions over the live sessions.
        let timed: Vec<&Rule> =
            rules.iter().filter(|r| !r.is_user_level() && r.uses(Field::is_time_based)).collect();
        if !timed.is_empty() {
            for live in job.view.sessions.iter().filter(|s| facts::countable(s)) {
                self.evaluate_session(&timed, live, &job.view, now).await?;
            }
        }
        let (users_due, hourly_due) = {
            let mut clock = self.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let users_due = now - clock.users_at >= USER_SWEEP_EVERY_MS;
            let hourly_due = now - clock.hourly_at >= HOURLY_MS;
            if users_due {
                clock.users_at = now;
            }
            if hourly_due {
                clock.hourly_at = now;
            }
            (users_due, hourly_due)
        };
        let per_user: Vec<&Rule> = rules.iter().filter(|r| r.is_user_level()).collect();
        if users_due && !per_user.is_empty() {
            let users = self.db.read(facts::users).await?;
            let (hour, weekday) = local_clock(now);
            for user in &users {
                let others = Self::others(&job.view, user.id, None);
                let ctx = Context::new(now, hour, weekday, None, user, &others, &[]);
                let matched: Vec<(&Rule, Verdict)> = per_user
                    .iter()
                    .filter(|r| r.applies_to(None, user.id))
                    .map(|r| (*r, evaluate(r, &ctx)))
                    .filter(|(_, v)| v.matched)
                    .collect();
                drop(ctx);
                for (rule, verdict) in matched {
                    self.raise(rule, user, None, verdict, &job.view, now).await?;
                }
            }
        }
        if hourly_due {
            self.hourly(now).await?;
        }
        Ok(())
    }

    /// Household learning and trust recovery.
    async fn hourly(&self, now: Ms) -> AppResult<()> {
        let (learned, recovered) = self
            .db
            .write(move |conn| {
                let settings = RulesSettings::load(conn)?;
                let tx = conn.transaction()?;
                let learned = households::learn(
                    &tx,
                    settings.household_learn_plays,
                    now - LEARN_WINDOW_MS,
                    now,
                )?;
                let mut recovered = 0;
                for (user_id, score, last_violation, last_recovery) in
                    db::trust::recovery_candidates(&tx)?
                {
                    let points = super::trust::recovery(
                        score,
                        last_violation,
                        last_recovery,
                        now,
                        settings.trust_recovery,
                    );
                    if points > 0 {
                        db::trust::apply(
                            &tx,
                            user_id,
                            Change::Adjust(points),
                            Reason::Recovery,
                            None,
                            None,
                            "a clean day",
                            now,
                        )?;
                        recovered += 1;
                    }
                }
                tx.commit()?;
                Ok((learned, recovered))
            })
            .await?;
        if learned > 0 || recovered > 0 {
            tracing::info!(learned, recovered, "households learned and trust recovered");
        }
        Ok(())
    }

    /// Records a violation (once per rule, user and session) and runs the rule's actions.
    async fn raise(
        &self,
        rule: &Rule,
        user: &UserFacts,
        session: Option<&PlayFacts>,
        verdict: Verdict,
        view: &Arc<LiveView>,
        now: Ms,
    ) -> AppResult<()> {
        let dedup_key = match session {
            Some(s) => format!("play:{}", s.play_id),
            None => format!("user:{}", user.last_active_at.unwrap_or(user.first_seen_at)),
        };
        let summary = format!("{}: {} — {}", rule.name, user.name, verdict.summary());
        let (rule_c, verdict_c, summary_c) = (rule.clone(), verdict.clone(), summary.clone());
        let (user_id, play_id, server_id) =
            (user.id, session.map(|s| s.play_id), session.map(|s| s.server_id));
        let recorded = self
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let Some(id) = db::rules::insert_violation(
                    &tx,
                    &NewViolation {
                        rule: &rule_c,
                        user_id,
                        play_id,
                        server_id,
                        dedup_key,
                        at: now,
                        summary: summary_c,
                        verdict: &verdict_c,
                    },
                )?
                else {
                    return Ok(None);
                };
                let mut later = Vec::new();
                // The score before this violation's first change and after its last.
                let mut trust: Option<(i64, i64)> = None;
                for action in &rule_c.actions {
                    let change = match action {
                        Action::AdjustTrust { amount } => Some(Change::Adjust(i64::from(*amount))),
                        Action::SetTrust { value } => Some(Change::Set(i64::from(*value))),
                        Action::ResetTrust => Some(Change::Reset),
                        _ => None,
                    };
                    if let Some(change) = change {
                        let (delta, score) = db::trust::apply(
                            &tx,
                            user_id,
                            change,
                            Reason::Rule,
                            Some(id),
                            None,
                            &rule_c.name,
                            now,
                        )?;
                        trust = Some((trust.map_or(score - delta, |(before, _)| before), score));
                        db::rules::record_action(
                            &tx,
                            id,
                            action,
                            Outcome::Done,
                            &format!("trust {delta:+}, now {score}"),
                            now,
                        )?;
                    } else if let Action::LogOnly { message } = action {
                        db::rules::record_action(
                            &tx,
                            id,
                            action,
                            Outcome::Done,
                            message.as_deref().unwrap_or("logged"),
                            now,
                        )?;
                    } else {
                        let row =
                            db::rules::record_action(&tx, id, action, Outcome::Pending, "", now)?;
                        later.push((row, action.clone()));
                    }
                }
                let low_below = RulesSettings::load(&tx)?.trust_low_below;
                tx.commit()?;
                let fell_low = trust.filter(|&(before, after)| {
                    let low = i64::from(low_below);
                    before >= low && after < low
                });
                Ok(Some((id, later, fell_low)))
            })
            .await?;
        let Some((violation_id, later, fell_low)) = recorded else { return Ok(()) };
        tracing::info!(rule = %rule.name, user = %user.name, violation_id, "violation");
        if let Some((before, after)) = fell_low {
            let event = crate::notify::Event::new(
                crate::notify::EventKind::TrustLow,
                format!("Trust score {before} → {after} after {}", rule.name),
            )
            .at(now)
            .user(user.id, &user.name)
            .rule(rule.id, &rule.name)
            .link(format!("/users/{}", user.id))
            .data(
                serde_json::json!({"before": before, "after": after, "violation_id": violation_id}),
            );
            if let Err(e) = self.notifier.publish(event).await {
                tracing::warn!(error = %e, "the low-trust notification could not be queued");
            }
        }
        for (row, action) in later {
            let (outcome, message) = match &action {
                Action::Notify { channels, cooldown_minutes } => {
                    let mut event = crate::notify::Event::new(
                        crate::notify::EventKind::Violation,
                        verdict.summary(),
                    )
                    .at(now)
                    .severity(rule.severity)
                    .user(user.id, &user.name)
                    .rule(rule.id, &rule.name)
                    .link(format!("/violations/{violation_id}"))
                    .data(serde_json::json!({
                        "violation_id": violation_id,
                        "play_id": session.map(|s| s.play_id),
                        "title": session.map(|s| &s.title),
                        "evidence": &verdict,
                    }));
                    if let Some(s) = session {
                        event = event.server(s.server_id, &s.server_name);
                    }
                    if !channels.is_empty() {
                        event = event.channels(
                            channels.iter().map(|id| crate::notify::NotifierId(*id)).collect(),
                        );
                    }
                    self.notify(rule.id, user.id, event, *cooldown_minutes, now).await
                }
                Action::Terminate { target, message, delay_seconds, cooldown_minutes } => {
                    if self.cooling(rule.id, user.id, "terminate", now).await {
                        (Outcome::Skipped, "in cooldown".to_owned())
                    } else if *delay_seconds > 0 {
                        self.terminate_later(
                            rule.clone(),
                            row,
                            session.map(|s| s.play_id),
                            user.id,
                            *target,
                            message.clone(),
                            *delay_seconds,
                            *cooldown_minutes,
                            now,
                        );
                        (Outcome::Pending, format!("re-checking in {delay_seconds} s"))
                    } else {
                        let sessions = user_sessions(view, user.id);
                        let ids = targets(*target, session.map(|s| s.play_id), &sessions);
                        let result = self
                            .stop(&ids, message.as_deref().unwrap_or(DEFAULT_STOP_MESSAGE))
                            .await;
                        if result.0 == Outcome::Done && *cooldown_minutes > 0 {
                            self.arm(
                                rule.id,
                                user.id,
                                "terminate",
                                now + i64::from(*cooldown_minutes) * 60_000,
                            )
                            .await;
                        }
                        result
                    }
                }
                Action::MessageClient { message, target } => {
                    let sessions = user_sessions(view, user.id);
                    let ids = targets(*target, session.map(|s| s.play_id), &sessions);
                    self.message(&ids, message).await
                }
                _ => continue,
            };
            self.record(row, outcome, message, now).await;
        }
        Ok(())
    }

    async fn record(&self, row: i64, outcome: Outcome, message: String, now: Ms) {
        let result =
            self.db.write(move |c| db::rules::update_action(c, row, outcome, &message, now)).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot record an action's outcome");
        }
    }

    async fn cooling(&self, rule_id: i64, user_id: i64, action: &'static str, now: Ms) -> bool {
        self.db
            .read(move |c| db::rules::cooldown_until(c, rule_id, user_id, action))
            .await
            .ok()
            .flatten()
            .is_some_and(|until| until > now)
    }

    async fn arm(&self, rule_id: i64, user_id: i64, action: &'static str, until: Ms) {
        let _ = self
            .db
            .write(move |c| db::rules::set_cooldown(c, rule_id, user_id, action, until))
            .await;
    }

    async fn notify(
        &self,
        rule_id: i64,
        user_id: i64,
        event: crate::notify::Event,
        cooldown_minutes: u32,
        now: Ms,
    ) -> (Outcome, String) {
        if self.cooling(rule_id, user_id, "notify", now).await {
            return (Outcome::Skipped, "in cooldown".to_owned());
        }
        match self.notifier.publish(event).await {
            Ok(published) if published.messages.is_empty() => {
                (Outcome::Skipped, "no enabled channel takes this violation".to_owned())
            }
            Ok(published) => {
                if cooldown_minutes > 0 {
                    self.arm(
                        rule_id,
                        user_id,
                        "notify",
                        now + i64::from(cooldown_minutes) * 60_000,
                    )
                    .await;
                }
                let n = published.messages.len();
                (Outcome::Done, format!("queued for {n} channel{}", if n == 1 { "" } else { "s" }))
            }
            Err(e) => (Outcome::Failed, e.public_message()),
        }
    }

    async fn stop(&self, ids: &[i64], message: &str) -> (Outcome, String) {
        if ids.is_empty() {
            return (Outcome::Skipped, "no live stream to stop".to_owned());
        }
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for id in ids {
            match self.control.terminate(*id, message).await {
                Ok(_) => done.push(id.to_string()),
                Err(e) => failed.push(format!("play {id}: {}", e.public_message())),
            }
        }
        if failed.is_empty() {
            (Outcome::Done, format!("stopped play {}", done.join(", ")))
        } else {
            (Outcome::Failed, failed.join("; "))
        }
    }

    async fn message(&self, ids: &[i64], text: &str) -> (Outcome, String) {
        if ids.is_empty() {
            return (Outcome::Skipped, "no live stream to message".to_owned());
        }
        let mut failed = Vec::new();
        for id in ids {
            if let Err(e) = self.control.message(*id, "Streamwarden", text).await {
                failed.push(format!("play {id}: {}", e.public_message()));
            }
        }
        if failed.is_empty() {
            (Outcome::Done, format!("messaged {} stream(s)", ids.len()))
        } else {
            (Outcome::Failed, failed.join("; "))
        }
    }

    /// A terminate with a delay: waits, then stops only if the rule still matches the
    /// triggering session as it is then.
    fn terminate_later(
        &self,
        rule: Rule,
        row: i64,
        play_id: Option<i64>,
        user_id: i64,
        target: super::model::Target,
        message: Option<String>,
        delay_seconds: u32,
        cooldown_minutes: u32,
        now: Ms,
    ) {
        let engine = Engine {
            db: self.db.clone(),
            control: Arc::clone(&self.control),
            queue: Arc::clone(&self.queue),
            notifier: self.notifier.clone(),
            confirm_ms: self.confirm_ms,
            clock: Mutex::new(SweepClock::default()),
        };
        self.queue.hold();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(delay_seconds))).await;
            let later = now + i64::from(delay_seconds) * 1000;
            let view = engine.control.live();
            let still =
                match play_id.and_then(|id| view.session(id)).filter(|s| facts::countable(s)) {
                    Some(live) => {
                        // Re-check without raising again: evaluate on the current view.
                        match engine.recheck(&rule, live, &view, later).await {
                            Ok(matched) => matched,
                            Err(e) => {
                                tracing::warn!(error = %e, "re-checking a rule failed");
                                false
                            }
                        }
                    }
                    None => false,
                };
            let (outcome, text) = if still {
                let sessions = user_sessions(&view, user_id);
                let ids = targets(target, play_id, &sessions);
                let result =
                    engine.stop(&ids, message.as_deref().unwrap_or(DEFAULT_STOP_MESSAGE)).await;
                if result.0 == Outcome::Done && cooldown_minutes > 0 {
                    engine
                        .arm(
                            rule.id,
                            user_id,
                            "terminate",
                            later + i64::from(cooldown_minutes) * 60_000,
                        )
                        .await;
                }
                result
            } else {
                (Outcome::Skipped, format!("after {delay_seconds} s the rule no longer matched"))
            };
            engine.record(row, outcome, text, later).await;
            engine.queue.done();
        });
    }

    async fn recheck(
        &self,
        rule: &Rule,
        live: &LiveSession,
        view: &Arc<LiveView>,
        now: Ms,
    ) -> AppResult<bool> {
        let Some(mut session) = facts::from_live(live) else { return Ok(false) };
        let (user, networks, mut history) =
            self.gather(session.user_id, rule.lookback_ms(), now).await?;
        let Some(user) = user else { return Ok(false) };
        let mut others = Self::others(view, user.id, Some(session.play_id));
        facts::mark_households(std::slice::from_mut(&mut session), &networks);
        facts::mark_households(&mut others, &networks);
        facts::mark_households(&mut history, &networks);
        let (hour, weekday) = local_clock(now);
        let ctx = Context::new(now, hour, weekday, Some(&session), &user, &others, &history);
        Ok(evaluate(rule, &ctx).matched)
    }
}

/// The countable live sessions of a user.
fn user_sessions(view: &LiveView, user_id: i64) -> Vec<&LiveSession> {
    view.sessions.iter().filter(|s| facts::countable(s) && s.user_id == Some(user_id)).collect()
}
