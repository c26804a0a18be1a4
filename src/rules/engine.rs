//! The rules engine's shell: a worker beside the poller. The poller hands it what happened
//! in a tick (sessions confirmed, quality or pause changes, the minute's schedule) with the
//! live view of that moment through its [`Handoff`], and goes on polling; the worker gathers
//! history, evaluates (pure, [`super::eval`]) and records each violation with everything its
//! actions decide in one transaction: trust changes, the alerts in the outbox, and the
//! streams to stop or message as rows due at a time. What needs the network runs after the
//! commit, and what waits (a terminate with a delay) runs when it is due on the poller's
//! clock, so a crash at any point neither loses nor repeats an alert or an action.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::actions::targets;
use super::eval::{Context, PlayFacts, UserFacts, Verdict, evaluate};
use super::facts;
use super::model::{Action, Field, Rule};
use super::trust::{Change, Reason, Recovery};
use crate::db::rules::{NewViolation, Outcome};
use crate::db::scheduled_actions::{self, DueAction};
use crate::db::{self, Db, households, persons};
use crate::error::{AppError, AppResult};
use crate::notify::{self, Event, EventKind, NotifierId};
use crate::poller::control::Control;
use crate::poller::handoff::{Handoff, Trigger, Why, Work};
use crate::poller::live::{LiveSession, LiveView};
use crate::poller::tracker::Ms;
use crate::tasks::StopSignal;

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

/// A failing trigger is logged at its first failure and then every this many.
const LOG_EVERY_ATTEMPTS: u32 = 60;
/// Due actions run per round.
const DUE_BATCH: u32 = 50;

/// The worker and what it needs.
pub struct Engine {
    db: Db,
    control: Arc<Control>,
    handoff: Arc<Handoff>,
    notifier: notify::Notifier,
    confirm_ms: Ms,
    clock: Mutex<SweepClock>,
    /// When the earliest pending action is due; 0: look (at start, leftovers of a crash).
    next_due_at: AtomicI64,
    /// Failed attempts per trigger, until it succeeds or is given up (for the log).
    attempts: Mutex<HashMap<Trigger, u32>>,
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

/// What an evaluation of one live session sees.
struct Scene {
    session: PlayFacts,
    user: UserFacts,
    others: Vec<PlayFacts>,
    history: Vec<PlayFacts>,
}

impl Scene {
    fn context(&self, now: Ms) -> Context<'_> {
        let (hour, weekday) = local_clock(now);
        Context::new(
            now,
            hour,
            weekday,
            Some(&self.session),
            &self.user,
            &self.others,
            &self.history,
        )
    }
}

impl Engine {
    pub fn new(
        db: Db,
        control: Arc<Control>,
        handoff: Arc<Handoff>,
        notifier: notify::Notifier,
        confirm_ms: Ms,
    ) -> Self {
        Self {
            db,
            control,
            handoff,
            notifier,
            confirm_ms,
            clock: Mutex::new(SweepClock::default()),
            next_due_at: AtomicI64::new(0),
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Resolves once everything the poller handed over has been worked through (tests).
    pub async fn settled(&self) {
        self.handoff.settled().await;
    }

    pub fn confirm_ms(&self) -> Ms {
        self.confirm_ms
    }

    /// Works through the hand-offs until shutdown.
    pub async fn run(self: Arc<Self>, mut stop: StopSignal) {
        loop {
            let work = tokio::select! {
                work = self.handoff.take() => work,
                () = stop.stopped() => break,
            };
            self.process(&work).await;
            self.handoff.done();
        }
    }

    /// Evaluates every trigger of `work`, then runs the actions that are due. A trigger
    /// that fails is handed back for the next round (its violation is not lost to a
    /// database that refused one write).
    async fn process(&self, work: &Work) {
        let rules: Vec<Rule> = match self.db.read(db::rules::list).await {
            Ok(rules) => rules.into_iter().filter(|r| r.enabled).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the rules; trying again next tick");
                self.retry(work, work.triggers.clone());
                return;
            }
        };
        let mut failed = Vec::new();
        for trigger in &work.triggers {
            let result = match *trigger {
                Trigger::Session { play_id, why } => {
                    self.on_session(&rules, play_id, why, work).await
                }
                Trigger::Sweep => self.sweep(&rules, work).await,
            };
            match result {
                Ok(()) => {
                    self.attempts().remove(trigger);
                }
                Err(e) => {
                    let mut attempts = self.attempts();
                    let n = attempts.entry(*trigger).or_insert(0);
                    *n += 1;
                    if *n % LOG_EVERY_ATTEMPTS == 1 {
                        tracing::warn!(error = %e, ?trigger, attempts = *n, "evaluating rules failed; trying again next tick");
                    }
                    failed.push(*trigger);
                }
            }
        }
        self.retry(work, failed);
        if let Err(e) = self.run_due(work.now, &work.view).await {
            tracing::warn!(error = %e, "running the due actions failed; trying again next tick");
        }
    }

    /// Hands `failed` back for the next round. A session's trigger is tried again while the
    /// session is live (a full disk may last minutes; the violation must not be lost to
    /// it); a failed sweep is not, the next one comes within a minute.
    fn retry(&self, work: &Work, failed: Vec<Trigger>) {
        let mut attempts = self.attempts();
        let again: Vec<Trigger> = failed
            .into_iter()
            .filter(|trigger| {
                let live = match trigger {
                    Trigger::Session { play_id, .. } => work.view.session(*play_id).is_some(),
                    Trigger::Sweep => false,
                };
                if !live {
                    attempts.remove(trigger);
                }
                live
            })
            .collect();
        drop(attempts);
        if !again.is_empty() {
            self.handoff.retry(again);
        }
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<Trigger, u32>> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn on_session(
        &self,
        rules: &[Rule],
        play_id: i64,
        why: Why,
        work: &Work,
    ) -> AppResult<()> {
        let Some(live) = work.session(play_id).filter(|s| facts::countable(s)) else {
            return Ok(());
        };
        let selected: Vec<&Rule> = rules
            .iter()
            .filter(|r| !r.is_user_level())
            .filter(|r| match why {
                Why::Confirmed => true,
                Why::Quality => r.uses(Field::is_quality),
                Why::Pause => {
                    r.uses(|f| matches!(f, Field::CurrentPauseMinutes | Field::TotalPauseMinutes))
                }
            })
            .collect();
        if !selected.is_empty() {
            self.evaluate_session(&selected, live, &work.view, work.now).await?;
        }
        Ok(())
    }

    /// The user, their households and history, and their other live sessions, for `live`.
    async fn scene(
        &self,
        live: &LiveSession,
        view: &LiveView,
        lookback_ms: Ms,
        now: Ms,
    ) -> AppResult<Option<Scene>> {
        let Some(mut session) = facts::from_live(live) else { return Ok(None) };
        let user_id = session.user_id;
        // A person's accounts are one user to the rules: their streams, households and
        // history together.
        let (user, accounts, networks, mut history) = self
            .db
            .read(move |conn| {
                let user = facts::user(conn, user_id)?;
                let accounts = persons::accounts_of(conn, user_id)?;
                let mut networks = Vec::new();
                for &account in &accounts {
                    networks.extend(households::confirmed(conn, account)?);
                }
                let history = facts::history(conn, &accounts, now - lookback_ms, now)?;
                Ok((user, accounts, networks, history))
            })
            .await?;
        let Some(user) = user else { return Ok(None) };
        let mut others = Self::others(view, &accounts, Some(session.play_id));
        facts::mark_households(std::slice::from_mut(&mut session), &networks);
        facts::mark_households(&mut others, &networks);
        facts::mark_households(&mut history, &networks);
        Ok(Some(Scene { session, user, others, history }))
    }

    /// The other countable live sessions in `view` of the accounts `accounts` (a user, or
    /// all accounts of their person).
    fn others(view: &LiveView, accounts: &[i64], except: Option<i64>) -> Vec<PlayFacts> {
        view.sessions
            .iter()
            .filter(|s| {
                facts::countable(s)
                    && s.user_id.is_some_and(|u| accounts.contains(&u))
                    && s.play_id != except
            })
            .filter_map(facts::from_live)
            .collect()
    }

    /// Evaluates `rules` for one live session and raises what matches.
    async fn evaluate_session(
        &self,
        rules: &[&Rule],
        live: &LiveSession,
        view: &LiveView,
        now: Ms,
    ) -> AppResult<()> {
        let lookback = rules.iter().map(|r| r.lookback_ms()).max().unwrap_or(0);
        let Some(scene) = self.scene(live, view, lookback, now).await? else { return Ok(()) };
        let ctx = scene.context(now);
        let matches: Vec<(Rule, Verdict)> = rules
            .iter()
            .filter(|rule| rule.applies_to(Some(scene.session.server_id), scene.user.id))
            .map(|rule| ((*rule).clone(), evaluate(rule, &ctx)))
            .filter(|(_, verdict)| verdict.matched)
            .collect();
        drop(ctx);
        for (rule, verdict) in matches {
            self.raise(&rule, &scene.user, Some(&scene.session), verdict, now).await?;
        }
        Ok(())
    }

    async fn sweep(&self, rules: &[Rule], work: &Work) -> AppResult<()> {
        let now = work.now;
        // Time-based conditions over the live sessions.
        let timed: Vec<&Rule> =
            rules.iter().filter(|r| !r.is_user_level() && r.uses(Field::is_time_based)).collect();
        if !timed.is_empty() {
            for live in work.view.sessions.iter().filter(|s| facts::countable(s)) {
                self.evaluate_session(&timed, live, &work.view, now).await?;
            }
        }
        let (users_due, hourly_due) = {
            let clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
            (now - clock.users_at >= USER_SWEEP_EVERY_MS, now - clock.hourly_at >= HOURLY_MS)
        };
        let per_user: Vec<&Rule> = rules.iter().filter(|r| r.is_user_level()).collect();
        if users_due && !per_user.is_empty() {
            let (users, person_of) =
                self.db.read(|c| Ok((facts::users(c)?, persons::refs(c)?))).await?;
            let (hour, weekday) = local_clock(now);
            for user in &users {
                let accounts: Vec<i64> = match person_of.get(&user.id) {
                    Some(p) => person_of
                        .iter()
                        .filter(|(_, q)| q.id == p.id)
                        .map(|(account, _)| *account)
                        .collect(),
                    None => vec![user.id],
                };
                let others = Self::others(&work.view, &accounts, None);
                let ctx = Context::new(now, hour, weekday, None, user, &others, &[]);
                let matched: Vec<(&Rule, Verdict)> = per_user
                    .iter()
                    .filter(|r| r.applies_to(None, user.id))
                    .map(|r| (*r, evaluate(r, &ctx)))
                    .filter(|(_, v)| v.matched)
                    .collect();
                drop(ctx);
                for (rule, verdict) in matched {
                    self.raise(rule, user, None, verdict, now).await?;
                }
            }
        }
        if hourly_due {
            self.hourly(now).await?;
        }
        // Only what went through counts as done: a failed sweep is tried again.
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        if users_due {
            clock.users_at = now;
        }
        if hourly_due {
            clock.hourly_at = now;
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

    /// Records a violation (once per rule, user and session) and, in the same transaction,
    /// everything its actions decide: trust changes, alerts in the outbox, cooldowns, and the
    /// streams to stop or message as rows due at a time. Those run after the commit
    /// ([`Engine::run_due`]); a crash in between leaves them due, not lost.
    async fn raise(
        &self,
        rule: &Rule,
        user: &UserFacts,
        session: Option<&PlayFacts>,
        verdict: Verdict,
        now: Ms,
    ) -> AppResult<()> {
        let raised = Raised::new(rule, user, session, verdict, now);
        let Some(recorded) = self.db.write(move |conn| raised.record(conn)).await? else {
            return Ok(());
        };
        tracing::info!(rule = %rule.name, user = %user.name, violation_id = recorded.violation_id, "violation");
        if recorded.alerts > 0 {
            self.notifier.wake();
        }
        if let Some(due) = recorded.first_due {
            self.next_due_at.fetch_min(due, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Runs the pending actions that are due at `now` (the poller's clock) on the live
    /// view `view`, and records what each did.
    async fn run_due(&self, now: Ms, view: &Arc<LiveView>) -> AppResult<()> {
        if self.next_due_at.load(Ordering::SeqCst) > now {
            return Ok(());
        }
        loop {
            let due = self.db.read(move |c| scheduled_actions::due(c, now, DUE_BATCH)).await?;
            for action in &due {
                let (outcome, message) = self.run_action(action, now, view).await;
                let (id, text) = (action.id, message.clone());
                self.db
                    .write(move |c| db::rules::update_action(c, id, outcome, &text, now))
                    .await?;
            }
            if due.len() < DUE_BATCH as usize {
                break;
            }
        }
        let next = self.db.read(scheduled_actions::next_due).await?;
        self.next_due_at.store(next.unwrap_or(Ms::MAX), Ordering::SeqCst);
        Ok(())
    }

    async fn run_action(&self, due: &DueAction, now: Ms, view: &LiveView) -> (Outcome, String) {
        if due.violation_status == "dismissed" {
            return (Outcome::Skipped, "the violation was dismissed".to_owned());
        }
        let Some(action) = &due.action else {
            return (Outcome::Failed, "this version cannot read the stored action".to_owned());
        };
        let Some(rule_id) = due.rule_id else {
            return (Outcome::Skipped, "the rule was deleted".to_owned());
        };
        match action {
            Action::Terminate { target, message, delay_seconds, cooldown_minutes } => {
                if self.cooling(rule_id, due.user_id, "terminate", now).await {
                    return (Outcome::Skipped, "in cooldown".to_owned());
                }
                if *delay_seconds > 0 {
                    match self.still_matches(rule_id, due.play_id, view, now).await {
                        Ok(true) => {}
                        Ok(false) => {
                            return (
                                Outcome::Skipped,
                                format!("after {delay_seconds} s the rule no longer matched"),
                            );
                        }
                        Err(e) => return (Outcome::Failed, e.public_message()),
                    }
                }
                let sessions = user_sessions(view, due.user_id);
                let ids = targets(*target, due.play_id, &sessions);
                let result =
                    self.stop(&ids, message.as_deref().unwrap_or(DEFAULT_STOP_MESSAGE)).await;
                if result.0 == Outcome::Done && *cooldown_minutes > 0 {
                    let until = now + i64::from(*cooldown_minutes) * 60_000;
                    self.arm(rule_id, due.user_id, "terminate", until).await;
                }
                result
            }
            Action::MessageClient { message, target } => {
                let sessions = user_sessions(view, due.user_id);
                let ids = targets(*target, due.play_id, &sessions);
                self.message(&ids, message).await
            }
            // Left pending by a version that published alerts after the commit: queue it now.
            Action::Notify { .. } => {
                let id = due.violation_id;
                let queued = self
                    .db
                    .write(move |conn| {
                        let tx = conn.transaction()?;
                        let Some(v) = db::rules::get_violation(&tx, id)? else {
                            return Ok(0);
                        };
                        let mut event = Event::new(EventKind::Violation, v.summary.clone())
                            .at(v.at)
                            .severity(v.severity)
                            .user(v.user_id, &v.user_name)
                            .link(format!("/violations/{id}"))
                            .data(serde_json::json!({"violation_id": id, "play_id": v.play_id}));
                        if let Some(rule_id) = v.rule_id {
                            event = event.rule(rule_id, &v.rule_name);
                        }
                        let n = notify::enqueue(&tx, &event)?.messages.len();
                        tx.commit()?;
                        Ok(n)
                    })
                    .await;
                match queued {
                    Ok(0) => {
                        (Outcome::Skipped, "no enabled channel takes this violation".to_owned())
                    }
                    Ok(n) => {
                        self.notifier.wake();
                        (Outcome::Done, queued_for(n))
                    }
                    Err(e) => (Outcome::Failed, e.public_message()),
                }
            }
            _ => (Outcome::Skipped, "nothing to do later".to_owned()),
        }
    }

    /// Whether rule `rule_id` still matches the live session `play_id` as it is now.
    async fn still_matches(
        &self,
        rule_id: i64,
        play_id: Option<i64>,
        view: &LiveView,
        now: Ms,
    ) -> AppResult<bool> {
        let Some(live) = play_id.and_then(|id| view.session(id)).filter(|s| facts::countable(s))
        else {
            return Ok(false);
        };
        let Some(rule) = self.db.read(move |c| db::rules::get(c, rule_id)).await? else {
            return Ok(false);
        };
        if !rule.enabled {
            return Ok(false);
        }
        let Some(scene) = self.scene(live, view, rule.lookback_ms(), now).await? else {
            return Ok(false);
        };
        Ok(evaluate(&rule, &scene.context(now)).matched)
    }

    /// Whether `action` of the rule rests for the user. A cooldown that cannot be read is
    /// taken as running: better one alert or stop too few than a storm.
    async fn cooling(&self, rule_id: i64, user_id: i64, action: &'static str, now: Ms) -> bool {
        match self.db.read(move |c| db::rules::cooldown_until(c, rule_id, user_id, action)).await {
            Ok(until) => until.is_some_and(|until| until > now),
            Err(e) => {
                tracing::warn!(error = %e, rule_id, user_id, action, "cannot read a cooldown; holding the action back");
                true
            }
        }
    }

    async fn arm(&self, rule_id: i64, user_id: i64, action: &'static str, until: Ms) {
        let written = self
            .db
            .write(move |c| db::rules::set_cooldown(c, rule_id, user_id, action, until))
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, rule_id, user_id, action, "cannot store a cooldown");
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
}

fn queued_for(n: usize) -> String {
    format!("queued for {n} channel{}", if n == 1 { "" } else { "s" })
}

/// A match on its way into the database: the violation and what its actions decide.
struct Raised {
    rule: Rule,
    user_id: i64,
    user_name: String,
    session: Option<PlayFacts>,
    verdict: Verdict,
    dedup_key: String,
    summary: String,
    now: Ms,
}

/// What [`Raised::record`] stored.
struct Recorded {
    violation_id: i64,
    /// Alerts queued in the outbox.
    alerts: usize,
    /// When the first action left for later is due.
    first_due: Option<Ms>,
}

impl Raised {
    fn new(
        rule: &Rule,
        user: &UserFacts,
        session: Option<&PlayFacts>,
        verdict: Verdict,
        now: Ms,
    ) -> Self {
        let dedup_key = match session {
            Some(s) => format!("play:{}", s.play_id),
            None => format!("user:{}", user.last_active_at.unwrap_or(user.first_seen_at)),
        };
        let summary = format!("{}: {} — {}", rule.name, user.name, verdict.summary());
        Self {
            rule: rule.clone(),
            user_id: user.id,
            user_name: user.name.clone(),
            session: session.cloned(),
            verdict,
            dedup_key,
            summary,
            now,
        }
    }

    /// One transaction: the violation (none if this rule already raised one for this user
    /// and session), then each action's work or its row due later.
    fn record(self, conn: &mut Connection) -> AppResult<Option<Recorded>> {
        let now = self.now;
        let tx = conn.transaction()?;
        let Some(id) = db::rules::insert_violation(
            &tx,
            &NewViolation {
                rule: &self.rule,
                user_id: self.user_id,
                play_id: self.session.as_ref().map(|s| s.play_id),
                server_id: self.session.as_ref().map(|s| s.server_id),
                dedup_key: self.dedup_key.clone(),
                at: now,
                summary: self.summary.clone(),
                verdict: &self.verdict,
            },
        )?
        else {
            return Ok(None);
        };
        let mut recorded = Recorded { violation_id: id, alerts: 0, first_due: None };
        // The score before this violation's first change and after its last.
        let mut trust: Option<(i64, i64)> = None;
        for action in &self.rule.actions {
            let change = match action {
                Action::AdjustTrust { amount } => Some(Change::Adjust(i64::from(*amount))),
                Action::SetTrust { value } => Some(Change::Set(i64::from(*value))),
                Action::ResetTrust => Some(Change::Reset),
                _ => None,
            };
            let (outcome, message) = if let Some(change) = change {
                let (delta, score) = db::trust::apply(
                    &tx,
                    self.user_id,
                    change,
                    Reason::Rule,
                    Some(id),
                    None,
                    &self.rule.name,
                    now,
                )?;
                trust = Some((trust.map_or(score - delta, |(before, _)| before), score));
                (Outcome::Done, format!("trust {delta:+}, now {score}"))
            } else {
                match action {
                    Action::LogOnly { message } => {
                        (Outcome::Done, message.clone().unwrap_or_else(|| "logged".to_owned()))
                    }
                    Action::Notify { channels, cooldown_minutes } => {
                        let (outcome, message, alerts) =
                            self.notify(&tx, id, channels, *cooldown_minutes)?;
                        recorded.alerts += alerts;
                        (outcome, message)
                    }
                    Action::Terminate { delay_seconds, .. } => {
                        if cooling(&tx, self.rule.id, self.user_id, "terminate", now)? {
                            (Outcome::Skipped, "in cooldown".to_owned())
                        } else {
                            let due = now + i64::from(*delay_seconds) * 1000;
                            let note = if *delay_seconds > 0 {
                                format!("re-checking in {delay_seconds} s")
                            } else {
                                String::new()
                            };
                            self.later(&tx, id, action, &note, due, &mut recorded)?;
                            continue;
                        }
                    }
                    Action::MessageClient { .. } => {
                        self.later(&tx, id, action, "", now, &mut recorded)?;
                        continue;
                    }
                    _ => unreachable!("trust actions are handled above"),
                }
            };
            db::rules::record_action(&tx, id, action, outcome, &message, now)?;
        }
        let low = i64::from(RulesSettings::load(&tx)?.trust_low_below);
        if let Some((before, after)) = trust.filter(|&(before, after)| before >= low && after < low)
        {
            let event = Event::new(
                EventKind::TrustLow,
                format!("Trust score {before} → {after} after {}", self.rule.name),
            )
            .at(now)
            .user(self.user_id, &self.user_name)
            .rule(self.rule.id, &self.rule.name)
            .link(format!("/users/{}", self.user_id))
            .data(serde_json::json!({"before": before, "after": after, "violation_id": id}));
            recorded.alerts += notify::enqueue(&tx, &event)?.messages.len();
        }
        tx.commit()?;
        Ok(Some(recorded))
    }

    fn later(
        &self,
        tx: &Connection,
        violation_id: i64,
        action: &Action,
        note: &str,
        due: Ms,
        recorded: &mut Recorded,
    ) -> AppResult<()> {
        scheduled_actions::schedule(tx, violation_id, action, note, self.now, due)?;
        recorded.first_due = Some(recorded.first_due.map_or(due, |at| at.min(due)));
        Ok(())
    }

    /// The violation's alert, queued in the outbox unless the rule's notify cooldown for
    /// this user still runs. Returns the outcome, its line and how many messages were queued.
    fn notify(
        &self,
        tx: &Connection,
        violation_id: i64,
        channels: &[i64],
        cooldown_minutes: u32,
    ) -> AppResult<(Outcome, String, usize)> {
        let now = self.now;
        if cooling(tx, self.rule.id, self.user_id, "notify", now)? {
            return Ok((Outcome::Skipped, "in cooldown".to_owned(), 0));
        }
        let session = self.session.as_ref();
        let mut event = Event::new(EventKind::Violation, self.verdict.summary())
            .at(now)
            .severity(self.rule.severity)
            .user(self.user_id, &self.user_name)
            .rule(self.rule.id, &self.rule.name)
            .link(format!("/violations/{violation_id}"))
            .data(serde_json::json!({
                "violation_id": violation_id,
                "play_id": session.map(|s| s.play_id),
                "title": session.map(|s| &s.title),
                "evidence": &self.verdict,
            }));
        if let Some(s) = session {
            event = event.server(s.server_id, &s.server_name);
        }
        if !channels.is_empty() {
            event = event.channels(channels.iter().map(|id| NotifierId(*id)).collect());
        }
        let published = notify::enqueue(tx, &event)?;
        let n = published.messages.len();
        if n == 0 {
            return Ok((Outcome::Skipped, "no enabled channel takes this violation".to_owned(), 0));
        }
        if cooldown_minutes > 0 {
            let until = now + i64::from(cooldown_minutes) * 60_000;
            db::rules::set_cooldown(tx, self.rule.id, self.user_id, "notify", until)?;
        }
        Ok((Outcome::Done, queued_for(n), n))
    }
}

/// Whether `action` of `rule_id` rests for `user_id`, inside a transaction: an error aborts
/// the whole violation (it is evaluated again), never acts unchecked.
fn cooling(tx: &Connection, rule_id: i64, user_id: i64, action: &str, now: Ms) -> AppResult<bool> {
    Ok(db::rules::cooldown_until(tx, rule_id, user_id, action)?.is_some_and(|until| until > now))
}

/// The countable live sessions of a user.
fn user_sessions(view: &LiveView, user_id: i64) -> Vec<&LiveSession> {
    view.sessions.iter().filter(|s| facts::countable(s) && s.user_id == Some(user_id)).collect()
}
