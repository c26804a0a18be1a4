//! The tracker: the sessions we believe are live, a server's snapshot, and the time in;
//! events and the new live set out. Pure: no clock, no database, no network.
//!
//! The rules, each learned from a bug the peers' users hit:
//! - A new session is *pending* until it has lasted the confirmation window, so phantoms and
//!   quick channel flips never reach history or rules (Tracearr's pending state).
//! - A session missing from one successful poll is held; missing from a second, it stops,
//!   at the last moment it was seen (no "dead stream for 5 minutes", no early stops).
//! - A server that fails to answer stops nothing; its sessions are closed at their last
//!   known position only after the stop grace (default 5 minutes).
//! - The same session key with another item (autoplay, next episode) closes one play and
//!   opens the next; a new key for the same user, device and item (a quality switch or a
//!   reconnect) continues the play instead of starting a second one.
//! - A new item on a device whose previous session just vanished closes that session at
//!   once, so back-to-back episodes never overlap as two streams.
//! - Pause time is accounted from the polls that saw the state change.

use std::collections::BTreeMap;

use crate::geo::model::Geo;
use crate::media::model::{ActiveSession, Decision, PlaybackState};
use crate::time::Ms;

/// How the tracker behaves; the defaults are the documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerSettings {
    /// How long a new session must last before it counts.
    pub confirm_window_ms: Ms,
    /// How long a failing server's sessions are held before they are closed.
    pub stop_grace_ms: Ms,
    /// A play is watched once its progress reaches this share of the runtime.
    pub watched_percent: u8,
    /// A new play of the same item by the same user within this time after the last one
    /// stopped (unwatched) continues that play's chain.
    pub resume_window_ms: Ms,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            confirm_window_ms: 30_000,
            stop_grace_ms: 5 * 60_000,
            watched_percent: 85,
            resume_window_ms: 60 * 60_000,
        }
    }
}

/// Identifies a live session: the server and the server's session key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LiveKey {
    pub server_id: i64,
    pub session_id: String,
}

/// Whether a live session counts yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Pending,
    Live,
}

/// Facts the shell attaches to an entry (who, where from, what is saved). The tracker
/// never reads them; it carries them along, through re-keys too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayMeta {
    /// The media user's row, once stored.
    pub user_id: Option<i64>,
    pub is_local: bool,
    pub geo: Option<Geo>,
    /// Changed in a way that must be written at once.
    pub dirty: bool,
    /// Confirmed, and its resume chain not looked up yet.
    pub needs_resume_link: bool,
    /// When the row was last written.
    pub flushed_at: Ms,
}

/// One session we believe is live.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEntry {
    /// The database row, once written (the shell assigns it).
    pub play_id: Option<i64>,
    pub server_id: i64,
    /// The latest snapshot of the session.
    pub session: ActiveSession,
    pub status: LiveStatus,
    /// When we first saw it.
    pub started_at: Ms,
    /// When a successful poll last reported it.
    pub last_seen_at: Ms,
    /// Pause time before the current pause.
    pub paused_ms: Ms,
    /// When the current pause was first seen.
    pub paused_since: Option<Ms>,
    /// Successful polls in a row that did not report it.
    pub missing_polls: u8,
    pub meta: PlayMeta,
}

impl LiveEntry {
    pub fn key(&self) -> LiveKey {
        LiveKey { server_id: self.server_id, session_id: self.session.session_id.clone() }
    }

    /// Counts for concurrency and rules: confirmed and not fading out.
    pub fn is_countable(&self) -> bool {
        self.status == LiveStatus::Live && self.missing_polls == 0
    }

    /// Pause time including the current pause, as of `now`.
    pub fn total_paused_ms(&self, now: Ms) -> Ms {
        self.paused_ms + self.paused_since.map_or(0, |since| (now - since).max(0))
    }
}

/// Why a play ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The server stopped reporting it.
    Stopped,
    /// The same session moved on to another item (autoplay, next episode).
    ItemChanged,
    /// The same device started another item.
    Superseded,
    /// The server did not answer for longer than the stop grace.
    ServerLost,
    /// An admin or a rule stopped it.
    Terminated,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::ItemChanged => "item_changed",
            Self::Superseded => "superseded",
            Self::ServerLost => "server_lost",
            Self::Terminated => "terminated",
        }
    }
}

/// A confirmed play that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedPlay {
    pub entry: LiveEntry,
    pub stopped_at: Ms,
    pub reason: StopReason,
    /// Time actually watched: the span minus the pauses.
    pub play_ms: Ms,
    pub watched: bool,
}

/// What changed in an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[expect(clippy::struct_excessive_bools, reason = "independent flags of one change set")]
pub struct Changes {
    pub progress: bool,
    pub state: bool,
    /// Decision or resolution changed (rules on transcoding run again).
    pub quality: bool,
    /// The session moved to a new key (same user, device and item).
    pub rekeyed: bool,
}

/// What happened, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new session, pending confirmation: write it (it shows on the dashboard).
    Appeared(LiveKey),
    /// It lasted the window: it counts now (history, rules).
    Confirmed(LiveKey),
    Updated(LiveKey, Changes),
    Paused(LiveKey),
    Resumed(LiveKey),
    /// A confirmed play ended.
    Stopped(Box<FinishedPlay>),
    /// A pending session vanished: it never happened (delete its row, if written).
    Discarded {
        key: LiveKey,
        play_id: Option<i64>,
    },
}

/// What became of a position a push source reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Noted {
    /// Taken: the session is where the note says (an `Updated` event if it moved).
    Applied(Option<Event>),
    /// Older than what we know, or about a session a poll just missed: left to the polls.
    Stale,
    /// Not the session we know (gone, another item, another state): read the list.
    Mismatch,
}

/// The outcome of polling one server.
#[derive(Clone, Copy)]
pub enum Poll<'a> {
    Answered(&'a [ActiveSession]),
    Failed,
}

/// The live set and the rules that move it.
#[derive(Debug, Default)]
pub struct Tracker {
    pub settings: TrackerSettings,
    live: BTreeMap<LiveKey, LiveEntry>,
}

impl Tracker {
    pub fn new(settings: TrackerSettings) -> Self {
        Self { settings, live: BTreeMap::new() }
    }

    /// Restores entries persisted by an earlier run.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = LiveEntry>) {
        for entry in entries {
            self.live.insert(entry.key(), entry);
        }
    }

    pub fn get(&self, key: &LiveKey) -> Option<&LiveEntry> {
        self.live.get(key)
    }

    pub fn entries(&self) -> impl Iterator<Item = &LiveEntry> {
        self.live.values()
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Records the database row of an entry.
    pub fn assign_play_id(&mut self, key: &LiveKey, play_id: i64) {
        if let Some(entry) = self.live.get_mut(key) {
            entry.play_id = Some(play_id);
        }
    }

    /// The shell's facts about an entry, to fill in or update.
    pub fn meta_mut(&mut self, key: &LiveKey) -> Option<&mut PlayMeta> {
        self.live.get_mut(key).map(|e| &mut e.meta)
    }

    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut LiveEntry> {
        self.live.values_mut()
    }

    /// Removes every entry of a server (deleted or disabled), finishing them at their last
    /// sighting.
    pub fn forget_server(&mut self, server_id: i64) -> Vec<Event> {
        let keys: Vec<LiveKey> =
            self.live.keys().filter(|k| k.server_id == server_id).cloned().collect();
        keys.into_iter()
            .filter_map(|k| self.live.remove(&k))
            .map(|entry| {
                let at = entry.last_seen_at;
                finish(&self.settings, entry, at, StopReason::Stopped)
            })
            .collect()
    }

    /// Ends one session now (a terminate that the server confirmed).
    pub fn terminate(&mut self, key: &LiveKey, now: Ms) -> Option<Event> {
        let entry = self.live.remove(key)?;
        Some(self.finish(entry, now, StopReason::Terminated))
    }

    /// A push source says that the session `key` plays `item_id` at `position_ms` as of
    /// `at`, in `state` (`None`: it just stopped there). Only the position and the moment
    /// it was last seen move, and only when everything else agrees with what we know;
    /// starts, stops, pauses and confirmations stay with the polls and their rules.
    pub fn note_position(
        &mut self,
        key: &LiveKey,
        item_id: &str,
        state: Option<PlaybackState>,
        position_ms: Option<i64>,
        at: Ms,
    ) -> Noted {
        let Some(entry) = self.live.get_mut(key) else { return Noted::Mismatch };
        if entry.session.item.id != item_id || state.is_some_and(|s| s != entry.session.state) {
            return Noted::Mismatch;
        }
        if entry.missing_polls > 0 || at < entry.last_seen_at {
            return Noted::Stale;
        }
        entry.last_seen_at = at;
        match position_ms {
            Some(p) if entry.session.progress_ms != Some(p) => {
                entry.session.progress_ms = Some(p);
                Noted::Applied(Some(Event::Updated(
                    key.clone(),
                    Changes { progress: true, ..Changes::default() },
                )))
            }
            _ => Noted::Applied(None),
        }
    }

    /// Applies one poll of `server_id` at `now`.
    pub fn observe(&mut self, server_id: i64, poll: Poll<'_>, now: Ms) -> Vec<Event> {
        match poll {
            Poll::Failed => self.server_failed(server_id, now),
            Poll::Answered(sessions) => self.server_answered(server_id, sessions, now),
        }
    }

    fn server_failed(&mut self, server_id: i64, now: Ms) -> Vec<Event> {
        let grace = self.settings.stop_grace_ms;
        let expired: Vec<LiveKey> = self
            .live
            .iter()
            .filter(|(k, e)| k.server_id == server_id && now - e.last_seen_at >= grace)
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| self.live.remove(&k))
            .map(|entry| {
                let at = entry.last_seen_at;
                finish(&self.settings, entry, at, StopReason::ServerLost)
            })
            .collect()
    }

    fn server_answered(
        &mut self,
        server_id: i64,
        sessions: &[ActiveSession],
        now: Ms,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        // A server listing one key twice is a server bug; the first row wins.
        let mut snapshot: BTreeMap<&str, &ActiveSession> = BTreeMap::new();
        for s in sessions {
            snapshot.entry(s.session_id.as_str()).or_insert(s);
        }
        let known: Vec<LiveKey> =
            self.live.keys().filter(|k| k.server_id == server_id).cloned().collect();
        let unmatched_new: Vec<&ActiveSession> = snapshot
            .values()
            .filter(|s| !known.iter().any(|k| k.session_id == s.session_id))
            .copied()
            .collect();
        let mut consumed_new: Vec<&str> = Vec::new();

        for key in known {
            if let Some(current) = snapshot.get(key.session_id.as_str()) {
                let entry = self.live.get(&key).expect("known key");
                if entry.session.item.id == current.item.id {
                    self.update(&key, current, now, &mut events);
                } else {
                    // Same session, new item: the old play ends where it was last seen.
                    let old = self.live.remove(&key).expect("known key");
                    let at = old.last_seen_at;
                    events.push(self.finish(old, at, StopReason::ItemChanged));
                    self.appear(server_id, current, now, &mut events);
                }
                continue;
            }

            // Missing from this poll. A new key for the same user and device?
            let entry = self.live.get(&key).expect("known key");
            let successor = unmatched_new
                .iter()
                .find(|s| {
                    !consumed_new.contains(&s.session_id.as_str())
                        && s.user.external_id == entry.session.user.external_id
                        && s.player.device_id == entry.session.player.device_id
                })
                .copied();
            match successor {
                Some(next) if next.item.id == entry.session.item.id => {
                    // A quality switch or a reconnect: the same play under a new key.
                    consumed_new.push(next.session_id.as_str());
                    let mut entry = self.live.remove(&key).expect("known key");
                    entry.session.session_id.clone_from(&next.session_id);
                    let new_key = entry.key();
                    self.live.insert(new_key.clone(), entry);
                    let changes = self.update(&new_key, next, now, &mut events);
                    let pushed = events.iter_mut().rev().find_map(|e| match e {
                        Event::Updated(k, c) if *k == new_key => Some(c),
                        _ => None,
                    });
                    match pushed {
                        Some(c) => c.rekeyed = true,
                        None => events
                            .push(Event::Updated(new_key, Changes { rekeyed: true, ..changes })),
                    }
                }
                Some(_) => {
                    // The device moved on to another item: this one is over now.
                    let old = self.live.remove(&key).expect("known key");
                    let at = old.last_seen_at;
                    events.push(self.finish(old, at, StopReason::Superseded));
                }
                None => {
                    let entry = self.live.get_mut(&key).expect("known key");
                    entry.missing_polls = entry.missing_polls.saturating_add(1);
                    if entry.missing_polls >= 2 {
                        let old = self.live.remove(&key).expect("known key");
                        let at = old.last_seen_at;
                        events.push(self.finish(old, at, StopReason::Stopped));
                    }
                }
            }
        }

        for session in unmatched_new {
            if !consumed_new.contains(&session.session_id.as_str()) {
                self.appear(server_id, session, now, &mut events);
            }
        }
        events
    }

    fn appear(
        &mut self,
        server_id: i64,
        session: &ActiveSession,
        now: Ms,
        events: &mut Vec<Event>,
    ) {
        let paused = session.state == PlaybackState::Paused;
        let entry = LiveEntry {
            play_id: None,
            server_id,
            session: session.clone(),
            status: LiveStatus::Pending,
            started_at: now,
            last_seen_at: now,
            paused_ms: 0,
            paused_since: paused.then_some(now),
            missing_polls: 0,
            meta: PlayMeta::default(),
        };
        let key = entry.key();
        self.live.insert(key.clone(), entry);
        events.push(Event::Appeared(key.clone()));
        if self.settings.confirm_window_ms <= 0 {
            self.live.get_mut(&key).expect("just inserted").status = LiveStatus::Live;
            events.push(Event::Confirmed(key));
        }
    }

    /// Applies a fresh snapshot of a known session; returns what changed.
    fn update(
        &mut self,
        key: &LiveKey,
        current: &ActiveSession,
        now: Ms,
        events: &mut Vec<Event>,
    ) -> Changes {
        let confirm_after = self.settings.confirm_window_ms;
        let entry = self.live.get_mut(key).expect("known key");
        let before = &entry.session;
        let was_paused = before.state == PlaybackState::Paused;
        let is_paused = current.state == PlaybackState::Paused;
        let changes = Changes {
            progress: before.progress_ms != current.progress_ms,
            state: before.state != current.state,
            quality: quality(before) != quality(current),
            rekeyed: false,
        };
        if !was_paused && is_paused {
            entry.paused_since = Some(now);
            events.push(Event::Paused(key.clone()));
        } else if was_paused && !is_paused {
            if let Some(since) = entry.paused_since.take() {
                entry.paused_ms += (now - since).max(0);
            }
            events.push(Event::Resumed(key.clone()));
        }
        entry.session = current.clone();
        entry.last_seen_at = now;
        entry.missing_polls = 0;
        if changes != Changes::default() {
            events.push(Event::Updated(key.clone(), changes));
        }
        if entry.status == LiveStatus::Pending && now - entry.started_at >= confirm_after {
            entry.status = LiveStatus::Live;
            events.push(Event::Confirmed(key.clone()));
        }
        changes
    }

    fn finish(&self, entry: LiveEntry, stopped_at: Ms, reason: StopReason) -> Event {
        finish(&self.settings, entry, stopped_at, reason)
    }
}

/// The event for an entry that ended at `stopped_at`: discarded if it never counted.
fn finish(
    settings: &TrackerSettings,
    mut entry: LiveEntry,
    stopped_at: Ms,
    reason: StopReason,
) -> Event {
    if entry.status == LiveStatus::Pending {
        return Event::Discarded { key: entry.key(), play_id: entry.play_id };
    }
    let stopped_at = stopped_at.max(entry.started_at);
    if let Some(since) = entry.paused_since.take() {
        entry.paused_ms += (stopped_at - since).max(0);
    }
    let play_ms = (stopped_at - entry.started_at - entry.paused_ms).max(0);
    let watched = is_watched(&entry.session, settings.watched_percent);
    Event::Stopped(Box::new(FinishedPlay { entry, stopped_at, reason, play_ms, watched }))
}

/// What makes a quality change: how it is delivered and at what resolution.
fn quality(s: &ActiveSession) -> (Decision, Option<&str>, Option<&str>) {
    (s.stream.decision, s.stream.stream_resolution.as_deref(), s.stream.video_decision.as_deref())
}

/// Progress at or past `percent` of the runtime, or within ten seconds of the end (credits
/// are often skipped, and players stop reporting just before the end).
pub fn is_watched(session: &ActiveSession, percent: u8) -> bool {
    match (session.progress_ms, session.item.duration_ms) {
        (Some(progress), Some(duration)) if duration > 0 => {
            progress * 100 >= duration * i64::from(percent) || duration - progress <= 10_000
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::model::{Item, Player, StreamInfo, UserRef};

    const S: Ms = 1000;

    fn session(id: &str, user: &str, device: &str, item: &str) -> ActiveSession {
        ActiveSession {
            session_id: id.into(),
            control_id: Some(format!("ctl-{id}")),
            user: UserRef { external_id: user.into(), name: user.into(), thumb: None },
            item: Item {
                id: item.into(),
                title: format!("Item {item}"),
                duration_ms: Some(3_600 * S),
                ..Item::default()
            },
            player: Player { device_id: device.into(), ..Player::default() },
            ip: None,
            server_says_local: false,
            state: PlaybackState::Playing,
            progress_ms: Some(0),
            stream: StreamInfo::default(),
            can_control: true,
        }
    }

    fn key(id: &str) -> LiveKey {
        LiveKey { server_id: 1, session_id: id.into() }
    }

    /// A tracker with a 30 s window, polled every 5 s.
    fn tracker() -> Tracker {
        Tracker::new(TrackerSettings::default())
    }

    fn poll(t: &mut Tracker, sessions: &[ActiveSession], now: Ms) -> Vec<Event> {
        t.observe(1, Poll::Answered(sessions), now)
    }

    fn stopped(events: &[Event]) -> Vec<&FinishedPlay> {
        events
            .iter()
            .filter_map(|e| if let Event::Stopped(p) = e { Some(p.as_ref()) } else { None })
            .collect()
    }

    /// Polls `sessions` every 5 s from `from` to `to` (inclusive), returning all events.
    fn run(t: &mut Tracker, sessions: &[ActiveSession], from: Ms, to: Ms) -> Vec<Event> {
        let mut all = Vec::new();
        let mut now = from;
        while now <= to {
            all.extend(poll(t, sessions, now));
            now += 5 * S;
        }
        all
    }

    #[test]
    fn a_pushed_position_moves_only_a_session_that_agrees_and_never_back_in_time() {
        let mut t = tracker();
        let a = session("a", "u", "d", "m");
        run(&mut t, std::slice::from_ref(&a), 0, 30 * S);
        let before = t.get(&key("a")).unwrap().clone();
        assert_eq!(before.status, LiveStatus::Live);
        let playing = Some(PlaybackState::Playing);
        assert_eq!(
            t.note_position(&key("a"), "m", playing, Some(33 * S), 33 * S),
            Noted::Applied(Some(Event::Updated(
                key("a"),
                Changes { progress: true, ..Changes::default() }
            )))
        );
        let after = t.get(&key("a")).unwrap();
        assert_eq!((after.session.progress_ms, after.last_seen_at), (Some(33 * S), 33 * S));
        assert_eq!(
            (after.status, after.paused_ms, after.started_at),
            (before.status, before.paused_ms, before.started_at)
        );
        // Older than the last sighting, another item, another state, an unknown session.
        assert_eq!(t.note_position(&key("a"), "m", playing, Some(31 * S), 31 * S), Noted::Stale);
        assert_eq!(t.note_position(&key("a"), "other", playing, Some(1), 34 * S), Noted::Mismatch);
        assert_eq!(
            t.note_position(&key("a"), "m", Some(PlaybackState::Paused), Some(1), 34 * S),
            Noted::Mismatch
        );
        assert_eq!(t.note_position(&key("zz"), "m", playing, Some(1), 34 * S), Noted::Mismatch);
        // A stop's last position (no state) counts; the stop itself is the polls' business.
        assert_eq!(
            t.note_position(&key("a"), "m", None, Some(36 * S), 36 * S).clone(),
            Noted::Applied(Some(Event::Updated(
                key("a"),
                Changes { progress: true, ..Changes::default() }
            )))
        );
        assert!(t.get(&key("a")).is_some());
        // A session a poll missed is the polls' to decide.
        assert!(poll(&mut t, &[], 40 * S).is_empty());
        assert_eq!(t.note_position(&key("a"), "m", playing, Some(41 * S), 41 * S), Noted::Stale);
        let ended = stopped(&poll(&mut t, &[], 45 * S)).into_iter().cloned().collect::<Vec<_>>();
        assert_eq!(ended[0].stopped_at, 36 * S, "stopped where push last saw it");
        assert_eq!(ended[0].entry.session.progress_ms, Some(36 * S));
    }

    #[test]
    fn a_session_is_pending_until_the_window_passes_then_live() {
        let mut t = tracker();
        let a = session("a", "u", "d", "m");
        assert_eq!(poll(&mut t, std::slice::from_ref(&a), 0), [Event::Appeared(key("a"))]);
        assert_eq!(t.get(&key("a")).unwrap().status, LiveStatus::Pending);
        let events = run(&mut t, std::slice::from_ref(&a), 5 * S, 25 * S);
        assert!(!events.iter().any(|e| matches!(e, Event::Confirmed(_))));
        assert_eq!(poll(&mut t, std::slice::from_ref(&a), 30 * S), [Event::Confirmed(key("a"))]);
        assert!(t.get(&key("a")).unwrap().is_countable());
    }

    #[test]
    fn a_phantom_never_becomes_history() {
        let mut t = tracker();
        let a = session("a", "u", "d", "m");
        run(&mut t, std::slice::from_ref(&a), 0, 20 * S);
        assert!(poll(&mut t, &[], 25 * S).is_empty(), "held once");
        let events = poll(&mut t, &[], 30 * S);
        assert_eq!(events, [Event::Discarded { key: key("a"), play_id: None }]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_stop_needs_two_missing_polls_and_ends_at_the_last_sighting() {
        let mut t = tracker();
        let mut a = session("a", "u", "d", "m");
        run(&mut t, std::slice::from_ref(&a), 0, 60 * S);
        a.progress_ms = Some(60 * S);
        poll(&mut t, std::slice::from_ref(&a), 65 * S);
        assert!(poll(&mut t, &[], 70 * S).is_empty());
        assert!(!t.get(&key("a")).unwrap().is_countable(), "a held session does not count");
        // It comes back: no stop, no second play.
        assert!(
            poll(&mut t, std::slice::from_ref(&a), 75 * S)
                .iter()
                .all(|e| !matches!(e, Event::Stopped(_) | Event::Appeared(_)))
        );
        poll(&mut t, &[], 80 * S);
        let events = poll(&mut t, &[], 85 * S);
        let plays = stopped(&events);
        assert_eq!(plays.len(), 1);
        assert_eq!(plays[0].stopped_at, 75 * S);
        assert_eq!(plays[0].reason, StopReason::Stopped);
        assert_eq!(plays[0].play_ms, 75 * S);
        assert_eq!(plays[0].entry.session.progress_ms, Some(60 * S));
    }

    #[test]
    fn a_failing_server_stops_nothing_until_the_grace_passes() {
        let mut t = tracker();
        let a = session("a", "u", "d", "m");
        run(&mut t, std::slice::from_ref(&a), 0, 60 * S);
        let mut now = 65 * S;
        while now < 60 * S + 5 * 60 * S {
            assert!(t.observe(1, Poll::Failed, now).is_empty(), "at {now}");
            now += 5 * S;
        }
        // Back before the grace: the same play continues.
        assert!(
            poll(&mut t, std::slice::from_ref(&a), now - 5 * S)
                .iter()
                .all(|e| !matches!(e, Event::Appeared(_)))
        );
        let last_seen = now - 5 * S;
        let mut now = last_seen + 5 * S;
        let mut events = Vec::new();
        while events.is_empty() {
            events = t.observe(1, Poll::Failed, now);
            now += 5 * S;
        }
        let plays = stopped(&events);
        assert_eq!(plays[0].reason, StopReason::ServerLost);
        assert_eq!(plays[0].stopped_at, last_seen, "closed at its last known position");
        assert!(now - 5 * S - last_seen >= 5 * 60 * S);
        // Another server's failure never touches this server's sessions.
        let mut t = tracker();
        run(&mut t, std::slice::from_ref(&a), 0, 60 * S);
        assert!(t.observe(2, Poll::Failed, 3_600 * S).is_empty());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn autoplay_closes_one_play_and_opens_the_next() {
        let mut t = tracker();
        let mut ep1 = session("a", "u", "d", "ep1");
        ep1.progress_ms = Some(3_500 * S);
        run(&mut t, std::slice::from_ref(&ep1), 0, 60 * S);
        let ep2 = session("a", "u", "d", "ep2");
        let events = poll(&mut t, std::slice::from_ref(&ep2), 65 * S);
        let plays = stopped(&events);
        assert_eq!(plays.len(), 1);
        assert_eq!(plays[0].reason, StopReason::ItemChanged);
        assert!(plays[0].watched, "3500 of 3600 s");
        assert!(events.contains(&Event::Appeared(key("a"))));
        assert_eq!(t.get(&key("a")).unwrap().session.item.id, "ep2");
        assert_eq!(t.get(&key("a")).unwrap().status, LiveStatus::Pending);
    }

    #[test]
    fn back_to_back_episodes_on_one_device_never_overlap() {
        // Plex gives the next episode a new session key: the old one must not linger as a
        // second stream for a poll.
        let mut t = tracker();
        run(&mut t, &[session("a", "u", "tv", "ep1")], 0, 60 * S);
        let events = poll(&mut t, &[session("b", "u", "tv", "ep2")], 65 * S);
        let plays = stopped(&events);
        assert_eq!(plays.len(), 1);
        assert_eq!(plays[0].reason, StopReason::Superseded);
        assert_eq!(t.len(), 1, "only the new episode is live");
    }

    #[test]
    fn a_quality_switch_under_a_new_key_continues_the_play() {
        let mut t = tracker();
        run(&mut t, &[session("a", "u", "tv", "movie")], 0, 60 * S);
        t.assign_play_id(&key("a"), 42);
        let mut switched = session("b", "u", "tv", "movie");
        switched.stream.decision = Decision::Transcode;
        switched.stream.stream_resolution = Some("720p".into());
        let events = poll(&mut t, &[switched], 65 * S);
        assert!(stopped(&events).is_empty());
        assert!(!events.iter().any(|e| matches!(e, Event::Appeared(_))));
        let entry = t.get(&key("b")).unwrap();
        assert_eq!(entry.play_id, Some(42), "the same play, now under key b");
        assert_eq!(entry.started_at, 0);
        assert!(events.iter().any(
            |e| matches!(e, Event::Updated(k, c) if *k == key("b") && c.rekeyed && c.quality)
        ));
    }

    #[test]
    fn a_quality_change_under_the_same_key_is_an_update() {
        let mut t = tracker();
        let mut a = session("a", "u", "d", "m");
        run(&mut t, std::slice::from_ref(&a), 0, 60 * S);
        a.stream.decision = Decision::Transcode;
        let events = poll(&mut t, std::slice::from_ref(&a), 65 * S);
        assert_eq!(
            events,
            [Event::Updated(key("a"), Changes { quality: true, ..Changes::default() })]
        );
    }

    #[test]
    fn two_devices_playing_the_same_item_are_two_streams() {
        let mut t = tracker();
        let events =
            poll(&mut t, &[session("a", "u", "tv", "m"), session("b", "u", "phone", "m")], 0);
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Appeared(_))).count(), 2);
    }

    #[test]
    fn pause_time_is_accounted() {
        let mut t = tracker();
        let mut a = session("a", "u", "d", "m");
        run(&mut t, std::slice::from_ref(&a), 0, 60 * S);
        a.state = PlaybackState::Paused;
        assert!(poll(&mut t, std::slice::from_ref(&a), 65 * S).contains(&Event::Paused(key("a"))));
        run(&mut t, std::slice::from_ref(&a), 70 * S, 120 * S);
        assert_eq!(t.get(&key("a")).unwrap().total_paused_ms(125 * S), 60 * S);
        a.state = PlaybackState::Playing;
        assert!(
            poll(&mut t, std::slice::from_ref(&a), 125 * S).contains(&Event::Resumed(key("a")))
        );
        assert_eq!(t.get(&key("a")).unwrap().paused_ms, 60 * S);
        // Paused again, then stopped while paused: the open pause counts up to the stop.
        a.state = PlaybackState::Paused;
        poll(&mut t, std::slice::from_ref(&a), 130 * S);
        poll(&mut t, std::slice::from_ref(&a), 140 * S);
        poll(&mut t, &[], 145 * S);
        let events = poll(&mut t, &[], 150 * S);
        let play = stopped(&events)[0];
        assert_eq!(play.entry.paused_ms, 70 * S);
        assert_eq!(play.play_ms, 140 * S - 70 * S);
    }

    #[test]
    fn watched_at_the_threshold_or_near_the_end() {
        let mut s = session("a", "u", "d", "m");
        s.item.duration_ms = Some(1000 * S);
        for (progress, percent, watched) in [
            (849, 85, false),
            (850, 85, true),
            (500, 50, true),
            (991, 100, true),
            (989, 100, false),
        ] {
            s.progress_ms = Some(progress * S);
            assert_eq!(is_watched(&s, percent), watched, "{progress} at {percent}%");
        }
        s.item.duration_ms = None;
        assert!(!is_watched(&s, 85), "unknown runtime: not watched");
    }

    #[test]
    fn restored_entries_resume_without_duplicates() {
        let mut first = tracker();
        let a = session("a", "u", "d", "m");
        run(&mut first, std::slice::from_ref(&a), 0, 60 * S);
        first.assign_play_id(&key("a"), 7);
        let saved: Vec<LiveEntry> = first.entries().cloned().collect();

        // A new process (after kill -9): the server still reports the session.
        let mut second = tracker();
        second.restore(saved.clone());
        let events = poll(&mut second, std::slice::from_ref(&a), 600 * S);
        assert!(!events.iter().any(|e| matches!(e, Event::Appeared(_) | Event::Stopped(_))));
        assert_eq!(second.get(&key("a")).unwrap().play_id, Some(7));

        // Or it ended while we were down: closed once, at its last known sighting.
        let mut third = tracker();
        third.restore(saved);
        poll(&mut third, &[], 600 * S);
        let events = poll(&mut third, &[], 605 * S);
        let plays = stopped(&events);
        assert_eq!(plays.len(), 1);
        assert_eq!(plays[0].stopped_at, 60 * S);
        assert_eq!(plays[0].entry.play_id, Some(7));
    }

    #[test]
    fn a_zero_window_confirms_at_once_and_terminate_finishes_now() {
        let mut t =
            Tracker::new(TrackerSettings { confirm_window_ms: 0, ..TrackerSettings::default() });
        assert_eq!(
            poll(&mut t, &[session("a", "u", "d", "m")], 0),
            [Event::Appeared(key("a")), Event::Confirmed(key("a"))]
        );
        let Some(Event::Stopped(play)) = t.terminate(&key("a"), 10 * S) else { panic!("a stop") };
        assert_eq!((play.reason, play.stopped_at), (StopReason::Terminated, 10 * S));
        assert!(t.is_empty());
        let mut t = tracker();
        poll(&mut t, &[session("a", "u", "d", "m")], 0);
        assert_eq!(t.forget_server(1), [Event::Discarded { key: key("a"), play_id: None }]);
    }
}
