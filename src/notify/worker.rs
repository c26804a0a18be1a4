//! The delivery worker: sends what the outbox holds, retries with backoff, gives up after a
//! bounded number of attempts, and never lets one channel hold up another.
//!
//! Each channel is a lane: at most one message in flight per channel (in outbox order), and
//! lanes run in parallel. A message is marked sent only after the service accepted it, so a
//! crash mid-send means one more send after the restart, never a lost alert.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::channel::{Delivery, SendError, Sent};
use super::event::Event;
use super::notifier::{DELIVERY_TIMEOUT, Notifier, Shared};
use super::{NotifierId, message, store};
use crate::db::notify::{self as sql, OutboxRow};
use crate::error::AppResult;
use crate::tasks::StopSignal;
use crate::time::now_ms;

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// Wait after the first failure; doubles with each further one.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 12 attempts over about three and a half hours: 10 s, 20 s, 40 s ... capped at 1 h.
    fn default() -> Self {
        Self {
            max_attempts: 12,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_hours(1),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failed attempt (1-based), before jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Messages read per look at the outbox.
const BATCH: u32 = 200;
/// Deliveries in flight at once, across channels.
const MAX_PARALLEL: usize = 8;
/// Look at the outbox at least this often, whatever the wake-ups say.
const IDLE_LOOK: Duration = Duration::from_mins(1);
/// Sent messages stay in the delivery log this long; failed and cancelled ones longer.
const KEEP_SENT: Duration = Duration::from_hours(720);
const KEEP_FAILED: Duration = Duration::from_hours(2160);
const PRUNE_EVERY: Duration = Duration::from_hours(1);
/// On shutdown, sends in progress get this long to finish; the rest are sent after restart.
const STOP_GRACE: Duration = Duration::from_millis(1500);

/// Which clock a delivery records: the real one, or a fixed time (tests drive time).
#[derive(Debug, Clone, Copy)]
enum Clock {
    Real,
    Fixed(i64),
}

impl Clock {
    fn now(self) -> i64 {
        match self {
            Clock::Real => now_ms(),
            Clock::Fixed(t) => t,
        }
    }
}

/// The delivery worker of one [`Notifier`].
#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
    policy: RetryPolicy,
}

impl Worker {
    pub fn new(notifier: Notifier) -> Self {
        Self { shared: notifier.shared, policy: RetryPolicy::default() }
    }

    #[must_use]
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Delivers until `stop` fires: wakes when a message is published, when a retry is due,
    /// when a delivery finishes, and at least every minute.
    pub async fn run(self, mut stop: StopSignal) {
        let mut in_flight: JoinSet<()> = JoinSet::new();
        let mut lanes: HashMap<tokio::task::Id, NotifierId> = HashMap::new();
        let mut busy: HashSet<NotifierId> = HashSet::new();
        let mut last_prune: Option<Instant> = None;
        tracing::debug!("notification delivery started");
        loop {
            if stop.is_stopped() {
                break;
            }
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(Instant::now());
                self.prune().await;
            }
            let now = now_ms();
            let wait = match self.start_due(now, &mut in_flight, &mut lanes, &mut busy).await {
                Ok(()) => self.until_next(now).await,
                Err(e) => {
                    tracing::warn!(error = %e, "notification delivery cannot read the outbox; trying again shortly");
                    Some(Duration::from_secs(5))
                }
            };
            tokio::select! {
                () = stop.stopped() => break,
                () = self.shared.wake.notified() => {}
                Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => {
                            tracing::error!(error = %e, "a notification delivery panicked");
                            e.id()
                        }
                    };
                    if let Some(channel) = lanes.remove(&id) {
                        busy.remove(&channel);
                    }
                }
                () = tokio::time::sleep(wait.unwrap_or(IDLE_LOOK)), if wait.is_some() || in_flight.is_empty() => {}
            }
        }
        // Let sends in progress finish briefly; whatever is cut off stays pending and goes
        // out after the restart.
        let _ = tokio::time::timeout(STOP_GRACE, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        in_flight.abort_all();
        tracing::debug!("notification delivery stopped");
    }

    /// Starts a delivery for the oldest due message of every idle channel.
    async fn start_due(
        &self,
        now: i64,
        in_flight: &mut JoinSet<()>,
        lanes: &mut HashMap<tokio::task::Id, NotifierId>,
        busy: &mut HashSet<NotifierId>,
    ) -> AppResult<()> {
        let due = self.shared.db.read(move |conn| sql::due_messages(conn, now, BATCH)).await?;
        for row in due {
            let channel = NotifierId(row.notifier_id);
            if busy.len() >= MAX_PARALLEL {
                break;
            }
            if busy.contains(&channel) {
                continue;
            }
            busy.insert(channel);
            let worker = self.clone();
            let handle = in_flight.spawn(async move { worker.deliver(row, Clock::Real).await });
            lanes.insert(handle.id(), channel);
        }
        Ok(())
    }

    /// How long until the next message is due: `None` when one is due already but its
    /// channel is busy (then the end of that delivery wakes us).
    async fn until_next(&self, now: i64) -> Option<Duration> {
        match self.shared.db.read(sql::next_due_at).await {
            Ok(Some(at)) if at <= now => None,
            Ok(Some(at)) => {
                Some(Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(IDLE_LOOK))
            }
            Ok(None) => Some(IDLE_LOOK),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the next due notification");
                Some(Duration::from_secs(5))
            }
        }
    }

    /// Sends every message that is due at `now`, channel by channel in parallel, and returns
    /// how many sends were attempted. Each message is tried at most once per call, so this
    /// ends. For tests and tools: they drive time by passing a later `now`.
    pub async fn deliver_due(&self, now: i64) -> AppResult<usize> {
        let mut tried = HashSet::new();
        loop {
            let due = self.shared.db.read(move |conn| sql::due_messages(conn, now, BATCH)).await?;
            let mut seen = HashSet::new();
            let mut round = JoinSet::new();
            for row in due {
                if !tried.contains(&row.id) && seen.insert(row.notifier_id) {
                    tried.insert(row.id);
                    let worker = self.clone();
                    round.spawn(async move { worker.deliver(row, Clock::Fixed(now)).await });
                }
            }
            if round.is_empty() {
                return Ok(tried.len());
            }
            while round.join_next().await.is_some() {}
        }
    }

    /// One attempt at one message, and its outcome recorded.
    async fn deliver(&self, row: OutboxRow, clock: Clock) {
        let channel = NotifierId(row.notifier_id);
        let secrets = self.shared.secrets.clone();
        let loaded = self.shared.db.read(move |conn| store::config(conn, &secrets, channel)).await;
        let (name, config) = match loaded {
            Ok((name, true, config)) => (name, config),
            // Disabled meanwhile (its messages are cancelled), or deleted with its messages.
            Ok((_, false, _)) | Err(crate::error::AppError::NotFound(_)) => return,
            Err(e) => {
                tracing::error!(channel = %channel, error = %e, "cannot load a notification channel");
                let reason = "the channel's settings cannot be read (was the encryption key changed?); edit and save the channel";
                self.record(&row, "", Err(SendError::permanent(reason)), clock.now()).await;
                return;
            }
        };
        let event: Event = match serde_json::from_str(&row.event) {
            Ok(event) => event,
            Err(e) => {
                let reason = format!("the stored message is unreadable: {e}");
                self.record(&row, &name, Err(SendError::permanent(reason)), clock.now()).await;
                return;
            }
        };
        let message = message::render(&event, &self.shared.links, row.is_test);
        let delivery = Delivery { http: &self.shared.http, uid: &row.uid, event: &event };
        let result =
            match tokio::time::timeout(DELIVERY_TIMEOUT, config.send(&delivery, &message)).await {
                Ok(result) => result,
                Err(_) => Err(SendError::transient(format!(
                    "no answer within {} s",
                    DELIVERY_TIMEOUT.as_secs()
                ))),
            };
        self.record(&row, &name, result, clock.now()).await;
    }

    /// Stores the outcome of an attempt: sent; failed for good; or retry later.
    async fn record(
        &self,
        row: &OutboxRow,
        channel_name: &str,
        result: Result<Sent, SendError>,
        now: i64,
    ) {
        let attempt = u32::try_from(row.attempts).unwrap_or(u32::MAX).saturating_add(1);
        let (id, notifier_id) = (row.id, row.notifier_id);
        let policy = self.policy;
        let outcome = result.clone();
        let written = self
            .shared
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let mut woke = false;
                match &outcome {
                    Ok(sent) => {
                        sql::mark_sent(&tx, id, now)?;
                        // The channel works: whatever waits for a retry goes now.
                        woke = sql::pull_forward(&tx, notifier_id, now)? > 0;
                        if let Some(hold) = sent.hold {
                            sql::hold_channel(&tx, notifier_id, now.saturating_add(millis(hold)))?;
                        }
                    }
                    Err(SendError::Permanent { message }) => {
                        sql::mark_failed(&tx, id, now, message)?;
                    }
                    Err(SendError::Transient { message, retry_after }) => {
                        if attempt >= policy.max_attempts {
                            let message = format!("{message} (gave up after {attempt} attempts)");
                            sql::mark_failed(&tx, id, now, &message)?;
                        } else {
                            let wait =
                                jitter(policy.delay(attempt)).max(retry_after.unwrap_or_default());
                            sql::mark_retry(
                                &tx,
                                id,
                                now,
                                now.saturating_add(millis(wait)),
                                message,
                            )?;
                            if let Some(after) = retry_after {
                                // The service asked for quiet: the whole channel waits.
                                sql::hold_channel(
                                    &tx,
                                    notifier_id,
                                    now.saturating_add(millis(*after)),
                                )?;
                            }
                        }
                    }
                }
                tx.commit()?;
                Ok(woke)
            })
            .await;
        match (written, &result) {
            (Err(e), _) => {
                // The send happened but its outcome is not stored: the message stays
                // pending and is sent again (a duplicate rather than a loss).
                tracing::error!(message = id, error = %e, "cannot record a notification delivery");
            }
            (Ok(woke), Ok(_)) => {
                tracing::debug!(channel = channel_name, message = id, attempt, "notification sent");
                if woke {
                    self.shared.wake.notify_one();
                }
            }
            (Ok(_), Err(SendError::Permanent { message })) => {
                tracing::warn!(channel = channel_name, message = id, attempt, error = %message, "notification failed");
            }
            (Ok(_), Err(SendError::Transient { message, .. })) => {
                if attempt >= policy.max_attempts {
                    tracing::warn!(channel = channel_name, message = id, attempt, error = %message, "notification failed; giving up");
                } else {
                    tracing::info!(channel = channel_name, message = id, attempt, error = %message, "notification not delivered; will retry");
                }
            }
        }
    }

    /// Forgets old delivery log entries and expired cooldowns.
    async fn prune(&self) {
        let now = now_ms();
        let result = self
            .shared
            .db
            .write(move |conn| {
                let n =
                    sql::prune_outbox(conn, now - millis(KEEP_SENT), now - millis(KEEP_FAILED))?;
                sql::prune_cooldowns(conn, now)?;
                Ok(n)
            })
            .await;
        match result {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "pruned the notification delivery log"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the notification delivery log"),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Up to 10 % more, so that many messages failing together do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    let r = f64::from(crate::crypto::random_bytes::<1>()[0]) / 255.0;
    d.mul_f64(1.0 + 0.1 * r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=12).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]);
        let total: u64 = (1..p.max_attempts).map(|n| p.delay(n).as_secs()).sum();
        assert!((3 * 3600..4 * 3600).contains(&total), "gives up after about 3.5 h: {total}");
        assert_eq!(p.delay(100), p.max_delay, "no overflow");
        let j = jitter(Duration::from_secs(100));
        assert!(j >= Duration::from_secs(100) && j <= Duration::from_secs(110));
    }
}
