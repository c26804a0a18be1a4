//! One follower per server: it polls its server on its own schedule (so a server that
//! hangs delays nobody else), keeps the server's push source connected, and turns what
//! the push says into polls and positions for the poller.
//!
//! The poller decides the schedule (it knows the health and the sessions): after each
//! poll it answers when the next one is due. Normally every poll interval; while push is
//! healthy and no session is pending or fading, only every reconciliation interval. A
//! push that asks for a refresh is served at once (the leading edge) and then at most
//! every [`Timing::min_refresh_gap`], so fifty streams starting together cost a handful
//! of requests. A push that goes down makes the follower poll at once and at the normal
//! interval again.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::live::{LiveHub, LiveSession, LiveView};
use super::{Answer, poll_server};
use crate::media::model::PlaybackState;
use crate::media::push::{self, Note, NoteState, Realtime, Signal};
use crate::media::{ActiveSession, Connection, MediaServer};
use crate::time::Ms;

/// How often what happens; the defaults are the documented ones, tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Polls of a server whose push is not healthy, and while sessions are in transition.
    pub poll_every: Duration,
    /// Polls while push is healthy: the ground truth that catches anything push missed.
    pub reconcile_every: Duration,
    /// Refreshes a push asks for are at least this far apart.
    pub min_refresh_gap: Duration,
    /// Pushed positions reach the tracker at most this often (the dashboard extrapolates).
    pub positions_every: Duration,
    pub push: push::Timing,
}

impl Timing {
    /// The defaults for a poll interval: reconciliation every 30 s (or the interval, if
    /// longer).
    pub fn for_interval(poll_every: Duration) -> Self {
        Self {
            poll_every,
            reconcile_every: poll_every.max(Duration::from_secs(30)),
            min_refresh_gap: Duration::from_millis(100),
            positions_every: Duration::from_secs(1),
            push: push::Timing::default(),
        }
    }
}

/// When a server is to be polled next, as the poller decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextPoll {
    /// Unix milliseconds.
    pub at: Ms,
    /// Whether the next poll also reads the server's accounts.
    pub users: bool,
}

/// What a follower tells the poller.
pub enum Report {
    /// A poll's answer; the poller replies with the next poll.
    Polled { server_id: i64, asked_at: Ms, answer: Answer, reply: oneshot::Sender<NextPoll> },
    /// Positions a push reported, for sessions we know as they are.
    Positions { server_id: i64, notes: Vec<Note> },
    /// The push source changed.
    Realtime { server_id: i64, source: Realtime },
}

/// One server's follower.
pub struct Follower {
    pub server_id: i64,
    pub client: Arc<dyn MediaServer>,
    /// Where to follow the server's push; `None` when it is turned off.
    pub push: Option<Connection>,
    pub timing: Timing,
    pub reports: mpsc::Sender<Report>,
    /// Woken for an immediate poll ("poll now", a refresh the poller wants).
    pub poll_now: Arc<Notify>,
    pub hub: Arc<LiveHub>,
}

type PollFuture = Pin<Box<dyn Future<Output = (Ms, Answer)> + Send>>;

impl Follower {
    /// Follows until dropped (the poller aborts it when the server changes or at shutdown)
    /// or until the poller is gone.
    pub async fn run(self) {
        let (signals_tx, mut signals) = mpsc::unbounded_channel();
        let push_source = self.push.clone();
        let push_timing = self.timing.push;
        let push = async move {
            match push_source {
                Some(connection) => push::follow(connection, push_timing, signals_tx).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(push);

        let mut due = Instant::now();
        let mut fetch_users = true;
        let mut poll: Option<PollFuture> = None;
        let mut reply: Option<oneshot::Receiver<NextPoll>> = None;
        let mut refresh_wanted = false;
        let mut last_refresh: Option<Instant> = None;
        let mut notes: BTreeMap<String, Note> = BTreeMap::new();
        let mut notes_due: Option<Instant> = None;
        let mut source = Realtime::Polling;
        loop {
            let now = Instant::now();
            let refresh_at = refresh_wanted
                .then(|| last_refresh.map_or(now, |t| t + self.timing.min_refresh_gap));
            if poll.is_none()
                && reply.is_none()
                && (now >= due || refresh_at.is_some_and(|t| now >= t))
            {
                refresh_wanted = false;
                last_refresh = Some(now);
                let client = Arc::clone(&self.client);
                poll = Some(Box::pin(async move {
                    let asked_at = crate::time::now_ms();
                    (asked_at, poll_server(Ok(client), fetch_users).await)
                }));
            }
            let busy = poll.is_some() || reply.is_some();
            let mut wake = if busy { now + Duration::from_hours(1) } else { due };
            if let Some(at) = refresh_at.filter(|_| !busy) {
                wake = wake.min(at);
            }
            if let Some(at) = notes_due {
                wake = wake.min(at);
            }
            tokio::select! {
                () = &mut push => {}
                Some(signal) = signals.recv() => {
                    match signal {
                        Signal::Up(kind) => {
                            if source != kind {
                                tracing::info!(server_id = self.server_id, source = kind.as_str(), "following the server's push");
                            }
                            source = kind;
                            if !self.report(Report::Realtime { server_id: self.server_id, source }).await {
                                return;
                            }
                        }
                        Signal::Down(reason) => {
                            if source == Realtime::Polling {
                                tracing::debug!(server_id = self.server_id, reason = %reason, "no push");
                            } else {
                                tracing::info!(server_id = self.server_id, reason = %reason, "push lost; polling takes over");
                                source = Realtime::Polling;
                                let report = Report::Realtime { server_id: self.server_id, source };
                                if !self.report(report).await {
                                    return;
                                }
                                due = Instant::now();
                            }
                        }
                        other => {
                            let view = self.hub.current();
                            let judged = judge(&other, self.server_id, &view);
                            refresh_wanted |= judged.refresh;
                            for note in judged.positions {
                                notes.insert(note.session_id.clone(), note);
                            }
                            if !notes.is_empty() && notes_due.is_none() {
                                notes_due = Some(Instant::now() + self.timing.positions_every);
                            }
                        }
                    }
                }
                (asked_at, answer) = async { poll.as_mut().expect("guarded").await }, if poll.is_some() => {
                    poll = None;
                    let (tx, rx) = oneshot::channel();
                    let report = Report::Polled { server_id: self.server_id, asked_at, answer, reply: tx };
                    if !self.report(report).await {
                        return;
                    }
                    reply = Some(rx);
                }
                next = async { reply.as_mut().expect("guarded").await }, if reply.is_some() => {
                    reply = None;
                    let Ok(next) = next else { return };
                    let wait = u64::try_from((next.at - crate::time::now_ms()).max(0)).unwrap_or(0);
                    due = Instant::now() + Duration::from_millis(wait);
                    fetch_users = next.users;
                }
                () = self.poll_now.notified() => due = Instant::now(),
                () = tokio::time::sleep_until(wake) => {}
            }
            if notes_due.is_some_and(|at| Instant::now() >= at) {
                notes_due = None;
                let batch = std::mem::take(&mut notes).into_values().collect();
                if !self.report(Report::Positions { server_id: self.server_id, notes: batch }).await
                {
                    return;
                }
            }
        }
    }

    /// False when the poller is gone.
    async fn report(&self, report: Report) -> bool {
        self.reports.send(report).await.is_ok()
    }
}

/// What a push signal asks of the follower.
#[derive(Debug, Default, PartialEq)]
pub struct Judged {
    /// Read the session list now.
    pub refresh: bool,
    /// Positions of sessions we know, as they are.
    pub positions: Vec<Note>,
}

/// Decides, against the live view, whether a signal needs the session list or only moves
/// positions. The poller checks positions again against the tracker itself (the view may
/// lag a moment behind it).
pub fn judge(signal: &Signal, server_id: i64, view: &LiveView) -> Judged {
    let known = |id: &str| {
        view.sessions.iter().find(|s| s.server_id == server_id && s.session.session_id == id)
    };
    match signal {
        Signal::Changed => Judged { refresh: true, positions: Vec::new() },
        Signal::Note(note) => judge_note(note, known(&note.session_id)),
        Signal::Snapshot(sessions) => {
            let shown: Vec<&LiveSession> =
                view.sessions.iter().filter(|s| s.server_id == server_id && !s.fading).collect();
            judge_snapshot(sessions, &shown)
        }
        Signal::Up(_) | Signal::Down(_) => Judged::default(),
    }
}

fn same_state(note: NoteState, state: PlaybackState) -> bool {
    matches!(
        (note, state),
        (NoteState::Playing, PlaybackState::Playing)
            | (NoteState::Paused, PlaybackState::Paused)
            | (NoteState::Buffering, PlaybackState::Buffering)
    )
}

fn judge_note(note: &Note, known: Option<&LiveSession>) -> Judged {
    let refresh = Judged { refresh: true, positions: Vec::new() };
    let Some(live) = known.filter(|l| !l.fading) else {
        // A stop of a session we do not know (or that is fading already) is news to nobody.
        return if note.state == NoteState::Stopped { Judged::default() } else { refresh };
    };
    let same_item = note.item_id.as_deref().map(|id| id == live.session.item.id);
    match (note.state, same_item) {
        // Where it stopped, then the list to see it gone.
        (NoteState::Stopped, Some(true)) => Judged { refresh: true, positions: vec![note.clone()] },
        (NoteState::Started | NoteState::Stopped, _) | (_, Some(false)) => refresh,
        (state, _) if !same_state(state, live.session.state) => refresh,
        (_, Some(true)) => Judged { refresh: false, positions: vec![note.clone()] },
        // A source that cannot name the item (Emby's plugin) moves no position.
        (_, None) => Judged::default(),
    }
}

/// A pushed session list: the same sessions in the same items and states as shown means
/// only positions moved; anything else is for the poll to read.
fn judge_snapshot(sessions: &[ActiveSession], shown: &[&LiveSession]) -> Judged {
    let shape =
        |id: &str, item: &str, state: PlaybackState| (id.to_owned(), item.to_owned(), state);
    let mut pushed: Vec<_> =
        sessions.iter().map(|s| shape(&s.session_id, &s.item.id, s.state)).collect();
    let mut known: Vec<_> = shown
        .iter()
        .map(|l| shape(&l.session.session_id, &l.session.item.id, l.session.state))
        .collect();
    pushed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    known.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    if pushed != known {
        return Judged { refresh: true, positions: Vec::new() };
    }
    let positions = sessions
        .iter()
        .map(|s| Note {
            session_id: s.session_id.clone(),
            item_id: Some(s.item.id.clone()),
            state: match s.state {
                PlaybackState::Playing => NoteState::Playing,
                PlaybackState::Paused => NoteState::Paused,
                PlaybackState::Buffering => NoteState::Buffering,
            },
            position_ms: s.progress_ms,
        })
        .collect();
    Judged { refresh: false, positions }
}

/// The state a position note must find the session in (`None`: it stopped there).
pub fn expected_state(note: NoteState) -> Option<Option<PlaybackState>> {
    match note {
        NoteState::Playing => Some(Some(PlaybackState::Playing)),
        NoteState::Paused => Some(Some(PlaybackState::Paused)),
        NoteState::Buffering => Some(Some(PlaybackState::Buffering)),
        NoteState::Stopped => Some(None),
        NoteState::Started => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ServerKind;
    use crate::media::model::{Item, Player, StreamInfo, UserRef};

    fn session(id: &str, item: &str, state: PlaybackState, progress: i64) -> ActiveSession {
        ActiveSession {
            session_id: id.into(),
            control_id: None,
            user: UserRef { external_id: "u".into(), name: "u".into(), thumb: None },
            item: Item { id: item.into(), title: "T".into(), ..Item::default() },
            player: Player { device_id: "d".into(), ..Player::default() },
            ip: None,
            server_says_local: false,
            state,
            progress_ms: Some(progress),
            stream: StreamInfo::default(),
            can_control: true,
        }
    }

    fn live(session: ActiveSession, fading: bool) -> LiveSession {
        LiveSession {
            play_id: Some(1),
            server_id: 7,
            server_name: "S".into(),
            server_kind: ServerKind::Plex,
            user_id: None,
            pending: false,
            fading,
            session,
            started_at: 0,
            last_seen_at: 0,
            paused_ms: 0,
            paused_since: None,
            is_local: false,
            geo: None,
        }
    }

    fn view(sessions: Vec<LiveSession>) -> LiveView {
        LiveView { at: 1, sessions, servers: Vec::new() }
    }

    fn note(id: &str, item: Option<&str>, state: NoteState, pos: i64) -> Signal {
        Signal::Note(Note {
            session_id: id.into(),
            item_id: item.map(Into::into),
            state,
            position_ms: Some(pos),
        })
    }

    #[test]
    fn notes_of_known_sessions_as_they_are_move_positions_everything_else_refreshes() {
        let v = view(vec![live(session("1", "m", PlaybackState::Playing, 10), false)]);
        let j = |signal: Signal| judge(&signal, 7, &v);
        let position = j(note("1", Some("m"), NoteState::Playing, 20));
        assert!(!position.refresh);
        assert_eq!(position.positions.len(), 1);
        for (signal, why) in [
            (note("2", Some("m"), NoteState::Playing, 0), "a new session"),
            (note("1", Some("other"), NoteState::Playing, 0), "another item (autoplay)"),
            (note("1", Some("m"), NoteState::Paused, 20), "a pause"),
            (note("1", Some("m"), NoteState::Started, 0), "a restart"),
            (note("1", None, NoteState::Stopped, 0), "a stop without the item"),
            (Signal::Changed, "a transcode change"),
        ] {
            assert_eq!(j(signal), Judged { refresh: true, positions: vec![] }, "{why}");
        }
        let stop = j(note("1", Some("m"), NoteState::Stopped, 30));
        assert!(stop.refresh && stop.positions.len() == 1, "a stop: where, then the list");
        assert_eq!(
            j(note("9", Some("m"), NoteState::Stopped, 0)),
            Judged::default(),
            "a stop of a stranger"
        );
        assert_eq!(
            j(note("1", None, NoteState::Playing, 30)),
            Judged::default(),
            "no item, no position"
        );
        // Another server's session of the same key is not ours.
        assert!(judge(&note("1", Some("m"), NoteState::Playing, 20), 8, &v).refresh);
    }

    #[test]
    fn a_pushed_list_of_the_same_shape_moves_positions_any_other_refreshes() {
        let v = view(vec![
            live(session("a", "m", PlaybackState::Playing, 10), false),
            live(session("gone", "x", PlaybackState::Playing, 10), true),
        ]);
        let same = Signal::Snapshot(vec![session("a", "m", PlaybackState::Playing, 15)]);
        let j = judge(&same, 7, &v);
        assert!(!j.refresh);
        assert_eq!(j.positions[0].position_ms, Some(15));
        for changed in [
            vec![],
            vec![session("a", "m", PlaybackState::Paused, 15)],
            vec![session("a", "n", PlaybackState::Playing, 0)],
            vec![
                session("a", "m", PlaybackState::Playing, 15),
                session("b", "m", PlaybackState::Playing, 0),
            ],
        ] {
            assert!(judge(&Signal::Snapshot(changed.clone()), 7, &v).refresh, "{changed:?}");
        }
    }
}
