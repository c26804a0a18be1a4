//! What the poller hands to the rules engine after each tick, and how.
//!
//! The poller never waits for the engine, and the engine must never fall behind without
//! bound: the hand-off is one slot, not a queue. A tick's work is merged into whatever is
//! still waiting there (the union of the triggers; the newest clock and live view win), so
//! a slow evaluation costs at most one merged batch, never a backlog of stale snapshots.
//! The engine takes the slot, works, and says when it is done ([`Handoff::done`]), which
//! is what [`Handoff::settled`] waits for in tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::live::{LiveSession, LiveView};
use crate::time::Ms;

/// Every minute the poller asks for a sweep.
pub const SWEEP_EVERY_MS: Ms = 60_000;

/// Why a session is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    /// It outlived the confirmation window: every rule.
    Confirmed,
    /// Its transcode decision or resolution changed: rules on quality.
    Quality,
    /// It paused or resumed: rules on pause time.
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    Session {
        play_id: i64,
        why: Why,
    },
    /// The schedule: time-based rules over live sessions, inactivity over users, household
    /// learning and trust recovery.
    Sweep,
}

/// The work waiting for the engine: one or more ticks' worth, merged.
#[derive(Debug, Clone)]
pub struct Work {
    /// Without duplicates, in the order they first came.
    pub triggers: Vec<Trigger>,
    /// The poller's clock at the newest merged tick (Unix milliseconds).
    pub now: Ms,
    /// The live view of the newest merged tick.
    pub view: Arc<LiveView>,
    /// The views of older merged ticks, newest first: a session that was confirmed and
    /// then ended before the engine got to it is still evaluated as it was.
    earlier: Vec<Arc<LiveView>>,
}

/// Older views kept per slot; beyond this the engine is far behind and the oldest go.
const EARLIER_VIEWS: usize = 8;

impl Work {
    pub fn new(triggers: Vec<Trigger>, now: Ms, view: Arc<LiveView>) -> Self {
        let mut work = Self { triggers: Vec::new(), now, view, earlier: Vec::new() };
        work.add_triggers(triggers);
        work
    }

    /// The session `play_id` as the newest view has it, or as the newest older view that
    /// still had it.
    pub fn session(&self, play_id: i64) -> Option<&LiveSession> {
        std::iter::once(&self.view).chain(&self.earlier).find_map(|view| view.session(play_id))
    }

    fn add_triggers(&mut self, triggers: impl IntoIterator<Item = Trigger>) {
        for trigger in triggers {
            if !self.triggers.contains(&trigger) {
                self.triggers.push(trigger);
            }
        }
    }

    /// Folds a newer tick into this one.
    fn merge(&mut self, newer: Work) {
        let older = std::mem::replace(&mut self.view, newer.view);
        if !Arc::ptr_eq(&older, &self.view) {
            self.earlier.insert(0, older);
            self.earlier.truncate(EARLIER_VIEWS);
        }
        self.now = self.now.max(newer.now);
        self.add_triggers(newer.triggers);
    }
}

/// The slot between the poller and the engine.
#[derive(Default)]
pub struct Handoff {
    slot: Mutex<Option<Work>>,
    /// Failed triggers waiting for the next tick.
    retries: Mutex<Vec<Trigger>>,
    /// Hand-offs not yet finished by the engine: the one in the slot and the one it works on.
    outstanding: AtomicUsize,
    ready: tokio::sync::Notify,
    idle: tokio::sync::Notify,
}

impl Handoff {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands a tick's work over; never waits. A tick without triggers still carries the
    /// clock, so the engine can run what was due (a delayed terminate) on the poller's time.
    pub fn submit(&self, mut work: Work) {
        let retries =
            std::mem::take(&mut *self.retries.lock().unwrap_or_else(PoisonError::into_inner));
        if !retries.is_empty() {
            let new = std::mem::take(&mut work.triggers);
            work.add_triggers(retries.into_iter().chain(new));
        }
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_mut() {
            Some(waiting) => waiting.merge(work),
            None => {
                self.outstanding.fetch_add(1, Ordering::SeqCst);
                *slot = Some(work);
            }
        }
        drop(slot);
        self.ready.notify_one();
    }

    /// Puts triggers that failed back for the next round: they join the next tick's work,
    /// without waking the engine now (nor counting as outstanding until then).
    pub fn retry(&self, triggers: Vec<Trigger>) {
        self.retries.lock().unwrap_or_else(PoisonError::into_inner).extend(triggers);
    }

    /// Waits for work; the engine calls [`Handoff::done`] when it has finished it.
    pub async fn take(&self) -> Work {
        loop {
            let ready = self.ready.notified();
            if let Some(work) = self.slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
                return work;
            }
            ready.await;
        }
    }

    pub fn done(&self) {
        if self.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Resolves once everything handed over has been worked through.
    pub async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.outstanding.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(at: Ms) -> Arc<LiveView> {
        Arc::new(LiveView { at, ..LiveView::default() })
    }

    fn session(play_id: i64, why: Why) -> Trigger {
        Trigger::Session { play_id, why }
    }

    #[tokio::test]
    async fn ticks_merge_into_one_slot_newest_view_wins_and_no_trigger_is_lost() {
        let handoff = Handoff::new();
        handoff.submit(Work::new(vec![session(1, Why::Confirmed)], 5_000, view(5_000)));
        handoff.submit(Work::new(
            vec![session(1, Why::Confirmed), Trigger::Sweep],
            10_000,
            view(10_000),
        ));
        handoff.submit(Work::new(vec![session(2, Why::Pause)], 15_000, view(15_000)));
        let work = handoff.take().await;
        assert_eq!(
            work.triggers,
            [session(1, Why::Confirmed), Trigger::Sweep, session(2, Why::Pause)]
        );
        assert_eq!((work.now, work.view.at), (15_000, 15_000));
        assert_eq!(work.earlier.iter().map(|v| v.at).collect::<Vec<_>>(), [10_000, 5_000]);
        // One hand-off outstanding, however many ticks were merged into it.
        let settled = handoff.settled();
        tokio::pin!(settled);
        assert!(futures_poll(&mut settled).is_pending());
        handoff.done();
        settled.await;
    }

    #[tokio::test]
    async fn a_retry_waits_for_the_next_tick() {
        let handoff = Handoff::new();
        handoff.retry(vec![session(3, Why::Quality)]);
        handoff.settled().await; // nothing outstanding until the next tick brings it
        handoff.submit(Work::new(vec![session(4, Why::Pause)], 6_000, view(6_000)));
        let work = handoff.take().await;
        assert_eq!(work.triggers, [session(3, Why::Quality), session(4, Why::Pause)]);
        assert_eq!(work.now, 6_000);
        handoff.done();
        handoff.settled().await;
    }

    /// Polls a future once.
    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        std::pin::Pin::new(f).poll(&mut cx)
    }
}
